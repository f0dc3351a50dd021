// The story's desk: who else is here and what they are doing, and the drafts, review queue and
// schedule, live over the page's Socket.IO connection (signed-in staff only).
(function () {
  "use strict";
  var root = document.getElementById("story");
  var list = root && root.querySelector("[data-desk]");
  var socket = window.trackerSocket;
  if (!list || !socket) return;
  var forms = window.TrackerForms;
  var slug = root.dataset.story;
  var me = root.dataset.me;
  var publisher = root.dataset.publisher === "1";
  var presenceEl = root.querySelector("[data-presence]");
  var template = document.getElementById("desk-template").content.firstElementChild;
  var labels = { draft: t("Draft"), submitted: t("Waiting for review"), scheduled: t("Scheduled") };
  var doing = "", correcting = null;

  // Presence

  function others(here) {
    var rest = here.slice(), mine = rest.indexOf(me);
    if (mine !== -1) rest.splice(mine, 1);
    return rest;
  }

  function showPresence(state) {
    if (!state || !state.here) return;
    var names = others(state.here);
    var text = !names.length ? t("Only you are on this story.") :
      names.length === 1 ? t("%(name)s is here.", { name: names[0] }) : t("%(names)s are here.", { names: names.join(", ") });
    var busy = (state.people || []).filter(function (p) { return p.name !== me; });
    var writers = busy.filter(function (p) { return p.writing; }).map(function (p) { return p.name; });
    if (writers.length) {
      text += " " + (writers.length === 1 ? t("%(name)s is writing an update.", { name: writers[0] })
        : t("%(names)s are writing an update.", { names: writers.join(", ") }));
    }
    presenceEl.hidden = false;
    if (presenceEl.textContent !== text) presenceEl.textContent = text;  // a live region: only news is read out
    showCorrecting(busy);
  }

  // Who is correcting which update: a note after the update's buttons, where the others look before
  // they open it, and where it moves none of them. Notes that still hold are left in place.
  function showCorrecting(busy) {
    var wanted = {};
    busy.forEach(function (p) {
      p.correcting.forEach(function (id) {
        var text = t("%(name)s is correcting this update.", { name: p.name });
        wanted[id] = wanted[id] ? wanted[id] + " " + text : text;
      });
    });
    root.querySelectorAll("[data-correcting]").forEach(function (note) {
      if (wanted[note.dataset.correcting] === note.textContent) delete wanted[note.dataset.correcting];
      else note.remove();
    });
    Object.keys(wanted).forEach(function (id) {
      var card = document.getElementById("entry-" + id) || document.getElementById("desk-" + id);
      if (!card) return;
      var note = document.createElement("p");
      note.className = "entry__correcting";
      note.dataset.correcting = id;
      note.textContent = wanted[id];
      (card.querySelector("[data-entry-controls], .desk-item__controls") || card).appendChild(note);
    });
  }

  function tellDesk() {
    var data = { story: slug, doing: correcting ? "correcting" : doing };
    if (correcting) data.entry = correcting;
    socket.emit("desk", data, function (ack) { if (ack && ack.ok) showPresence(ack); });
  }

  socket.on("connect", tellDesk);
  if (socket.connected) tellDesk();
  socket.on("presence", function (state) { if (state.story === slug) showPresence(state); });
  // Said again now and then, so a tab that vanished without a goodbye fades out for the others.
  setInterval(function () { if (socket.connected) tellDesk(); }, (parseInt(root.dataset.presenceSeconds, 10) || 45) * 1000 / 3);
  root.addEventListener("tracker:doing", function (event) {
    if (event.detail.entry !== undefined) correcting = event.detail.entry;
    if (event.detail.doing !== undefined && event.detail.entry === undefined) doing = event.detail.doing;
    if (socket.connected) tellDesk();
  });

  // The desk's entries

  function card(id) { return document.getElementById("desk-" + id); }

  function fill(el, e) {
    el.id = "desk-" + e.id;
    el.dataset.id = e.id;
    el.dataset.rev = e.rev;
    el.dataset.status = e.status;
    el.className = "desk-item desk-item--" + e.status;
    var badge = el.querySelector("[data-desk-status]");
    badge.textContent = labels[e.status];
    badge.className = "badge badge--" + e.status;
    el.querySelector("[data-desk-author]").textContent = e.author ? "By " + e.author : "";
    var scheduled = el.querySelector("[data-desk-scheduled]");
    scheduled.hidden = e.status !== "scheduled";
    if (e.publish_at) scheduled.querySelector("time").setAttribute("datetime", e.publish_at);
    el.querySelector(".desk-item__changed [data-ago]").dataset.ago = e.updated_at;
    var note = el.querySelector("[data-desk-note]");
    note.hidden = !e.review_note;
    note.querySelector("span").textContent = e.review_note || "";
    var h = el.querySelector("[data-desk-headline]");
    h.textContent = e.headline;
    h.hidden = !e.headline;
    el.querySelector("[data-desk-body]").innerHTML = e.html;  // sanitized by the server on write
    if (window.TrackerMedia) window.TrackerMedia.render(el.querySelector("[data-entry-media]"), e.media);
    el.querySelectorAll("form, a[data-step]").forEach(function (node) {
      var attr = node.tagName === "FORM" ? "action" : "href";
      node.setAttribute(attr, node.getAttribute(attr).replace(/\/entries\/\d+\//, "/entries/" + e.id + "/"));
    });
    el.querySelectorAll("[name=base_rev]").forEach(function (input) { input.value = e.rev; });
    el.querySelectorAll("label[for], textarea, input[id]").forEach(function (node) {
      if (node.id) node.id = node.id.replace(/-\d+$/, "-" + e.id);
      if (node.htmlFor) node.htmlFor = node.htmlFor.replace(/-\d+$/, "-" + e.id);
    });
    var shown = { submit: e.status === "draft", "return": e.status !== "draft",
                  edit: publisher || e.status !== "scheduled" };
    el.querySelectorAll("[data-step]").forEach(function (node) {
      if (shown[node.dataset.step] !== undefined) node.hidden = !shown[node.dataset.step];
    });
    var summary = el.querySelector('[data-step="schedule"] summary');
    if (summary) summary.textContent = e.status === "scheduled" ? t("Reschedule…") : t("Schedule…");
    if (window.TrackerTimes) window.TrackerTimes.render(el);
    return el;
  }

  var gone = new Set();  // published or deleted: a late draft event must not bring the card back

  function show(e) {
    if (gone.has(e.id)) return;
    var el = card(e.id);
    // Unpublished entries count their changes down (see the README's "Entry states").
    if (el && e.rev < 0 && e.rev >= +el.dataset.rev) return;
    if (!el && !publisher && e.author !== me) return;  // a contributor's desk lists their own
    if (e.deleted || e.status === "published") {
      gone.add(e.id);
      if (el) el.remove();
    } else {
      var fresh = !el;
      el = fill(el || template.cloneNode(true), e);
      if (fresh) list.insertBefore(el, list.firstChild);
    }
    root.querySelector("[data-desk-empty]").hidden = !!list.querySelector(".desk-item");
  }

  socket.on("draft", function (e) { if (e.story === slug) show(e); });
  socket.on("entry", function (e) { if (e.story === slug && card(e.id)) show(e); });
  root.addEventListener("tracker:entry", function (event) { show(event.detail); });

  list.addEventListener("submit", function (event) {
    var form = event.target.closest(".js-action");
    if (!form) return;
    event.preventDefault();
    if (form.dataset.step === "delete" && !window.confirm("Delete this draft? Nobody will be able to publish it.")) return;
    forms.offsets();
    forms.post(form).then(function (data) {
      if (data.ok) forms.announce(data.entry); else window.alert(data.error);
    }).catch(function () { window.alert(t("Connection problem: nothing was changed. Try again.")); });
  });

  // End story (and anything else that says so) asks first.
  root.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);
})();
