// Corrections in place on the editor's story page: the Edit button opens the text inside the
// update's card. Kept in this browser until saved; a correction someone else saved first is
// shown beside yours, and nothing is overwritten.
(function () {
  "use strict";
  var root = document.getElementById("story");
  if (!root || root.dataset.editor !== "1") return;
  var forms = window.TrackerForms;
  var csrf = root.querySelector("input[name=csrf_token]");
  var open = new Map();  // entry id -> its open editor element

  function keyFor(id) { return "tracker:correct:" + id; }

  function kept(id) { return forms.kept(keyFor(id)); }

  function keep(id, form) {
    forms.keep(keyFor(id), { headline: form.headline.value, body: form.body.value, base_rev: form.base_rev.value,
                            at: Date.now() });
  }

  function forget(id) { forms.keep(keyFor(id), null); }

  function tell(id) {
    root.dispatchEvent(new CustomEvent("tracker:doing", { detail: { entry: id } }));
  }

  function close(id) {
    var el = open.get(id);
    if (el) el.remove();
    open.delete(id);
    forget(id);
    prune();
    var still = Array.from(open.keys());
    tell(still.length ? still[0] : null);
  }

  function build(id, url, data) {
    var form = document.createElement("form");
    form.className = "form correction";
    form.method = "post";
    form.action = url;
    form.noValidate = true;
    form.innerHTML =
      '<input type="hidden" name="csrf_token"><input type="hidden" name="base_rev">' +
      '<div class="field"><label>Headline (optional)</label><input type="text" name="headline"></div>' +
      '<div class="field"><label>Update</label><textarea name="body" rows="6"></textarea></div>' +
      '<p class="correction__status" role="status"></p>' +
      '<button class="button button--primary" type="submit">Save correction</button> ' +
      '<button class="button" type="button" data-cancel>Cancel</button>' +
      '<section class="conflict" hidden><h4></h4><p>Your text is still in the form above. Saving again replaces that version with yours.</p>' +
      '<div class="conflict__theirs"></div></section>';
    var labels = form.querySelectorAll("label");
    labels[0].htmlFor = form.headline.id = "correct-headline-" + id;
    labels[1].htmlFor = form.body.id = "correct-body-" + id;
    form.csrf_token.value = csrf ? csrf.value : "";
    var mine = kept(id);
    form.headline.value = mine ? mine.headline : data.headline;
    form.body.value = mine ? mine.body : data.body;
    form.base_rev.value = mine ? mine.base_rev : data.base_rev;
    if (mine) form.querySelector(".correction__status").textContent = "Your unsaved correction is back.";
    form.querySelector("[data-cancel]").addEventListener("click", function () {
      if (form.body.value === data.body && form.headline.value === data.headline ||
          window.confirm("Discard your correction?")) close(id);
    });
    form.addEventListener("input", function () { keep(id, form); });
    form.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); form.requestSubmit(); }
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      save(id, form);
    });
    return form;
  }

  function save(id, form) {
    var status = form.querySelector(".correction__status");
    status.textContent = "Saving…";
    forms.post(form).then(function (data) {
      if (data.ok) { close(id); forms.announce(data.entry); return; }
      status.textContent = data.error || "Not saved.";
      status.setAttribute("role", "alert");
      if (data.current) {
        // Someone else saved first: show theirs beside, keep ours; saving again is a knowing choice.
        var conflict = form.querySelector(".conflict");
        conflict.hidden = false;
        conflict.querySelector("h4").textContent = "The update as it is now";
        conflict.querySelector(".conflict__theirs").innerHTML = data.current.html;  // sanitized by the server
        form.base_rev.value = data.current.rev;
        keep(id, form);
        forms.announce(data.current);
      }
    }).catch(function () { status.textContent = "Not saved: connection problem. Your text is kept; try again."; });
  }

  root.addEventListener("click", function (event) {
    var link = event.target.closest("[data-entry-controls] a, a[data-step=edit]");
    if (!link) return;
    var cardEl = link.closest("article");
    var id = +cardEl.dataset.id;
    event.preventDefault();
    if (open.has(id)) { open.get(id).querySelector("textarea").focus(); return; }
    fetch(link.href, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        if (!data.ok) { window.alert(data.error || "This update cannot be changed."); return; }
        var form = build(id, link.href, data);
        open.set(id, form);
        cardEl.appendChild(form);
        form.body.focus();
        tell(id);
      })
      .catch(function () { window.location.href = link.href; });  // the edit page works without this
  });

  // A card can go while its correction is open (the update was published or deleted meanwhile).
  function prune() {
    open.forEach(function (form, id) { if (!form.isConnected) { open.delete(id); forget(id); } });
  }

  window.addEventListener("beforeunload", function (event) {
    prune();
    if (open.size) { event.preventDefault(); event.returnValue = ""; }
  });

  // Corrections left unsaved in this browser reopen after a reload.
  root.querySelectorAll("article[data-id]").forEach(function (cardEl) {
    var id = +cardEl.dataset.id;
    var link = cardEl.querySelector("[data-entry-controls] a, a[data-step=edit]");
    if (id && link && kept(id)) link.click();
  });
})();
