// The compose form: a counter instead of a silent cut, autosave in this browser per story, a
// warning before leaving unsent text, Ctrl/Cmd+Enter, a preview, and sending without a reload.
(function () {
  "use strict";
  var root = document.getElementById("story");
  var form = root && root.querySelector("[data-compose]");
  if (!form) return;
  var forms = window.TrackerForms;
  var body = form.querySelector("[name=body]");
  var headline = form.querySelector("[name=headline]");
  var counter = form.querySelector("[data-counter]");
  var status = form.querySelector("[data-compose-status]");
  var savedNote = form.querySelector("[data-autosave]");
  var previewButton = form.querySelector("[data-preview]");
  var pane = form.querySelector("[data-preview-pane]");
  var limit = parseInt(body.dataset.limit, 10) || 20000;
  var storageKey = "tracker:compose:" + root.dataset.story;
  var sending = false;

  // Characters as the server counts them: code points, a line break as one.
  function length(text) { return Array.from(text.replace(/\r\n/g, "\n")).length; }

  function say(message, isError) {
    status.textContent = message;
    status.classList.toggle("compose__status--error", !!isError);
    status.setAttribute("role", isError ? "alert" : "status");
  }

  function count() {
    var n = length(body.value), over = n - limit;
    counter.textContent = n.toLocaleString() + " / " + limit.toLocaleString() +
      (over > 0 ? ": " + over.toLocaleString() + " too many, shorten it before sending" : "");
    counter.classList.toggle("compose__count--over", over > 0);
    body.setAttribute("aria-invalid", over > 0 ? "true" : "false");
    return over;
  }

  function unsent() { return body.value.trim() !== "" || headline.value.trim() !== ""; }

  // Autosave on every change (no delay to lose): the text survives a reload, a crash or a
  // closed tab, until it is sent.
  function save() {
    forms.keep(storageKey, unsent() ? { headline: headline.value, body: body.value, at: Date.now() } : null);
  }

  function forget() {
    forms.keep(storageKey, null);
    savedNote.hidden = true;
  }

  function restore() {
    var kept = forms.kept(storageKey);
    if (!kept || unsent()) return;
    headline.value = kept.headline || "";
    body.value = kept.body || "";
    savedNote.hidden = false;
    savedNote.textContent = "Your unsent text from " + new Date(kept.at).toLocaleString() + " is back. ";
    var discard = document.createElement("button");
    discard.type = "button";
    discard.className = "button button--small";
    discard.textContent = "Discard it";
    discard.addEventListener("click", function () { form.reset(); forget(); count(); doing(); body.focus(); });
    savedNote.appendChild(discard);
  }

  // Tell the desk (desk.js) whether this person is writing an update.
  var wasWriting = false;
  function doing() {
    var writing = unsent();
    if (writing === wasWriting) return;
    wasWriting = writing;
    root.dispatchEvent(new CustomEvent("tracker:doing", { detail: { doing: writing ? "writing" : "" } }));
  }


  form.addEventListener("input", function () { count(); save(); doing(); });
  form.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit(form.querySelector("[data-default]"));
    }
  });
  window.addEventListener("beforeunload", function (event) {
    if (unsent() && !sending) { event.preventDefault(); event.returnValue = ""; }
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (sending) return;
    forms.offsets();
    var over = count();
    if (over > 0) {
      say("Not sent: the update is " + over.toLocaleString() + " characters over the " + limit.toLocaleString() +
          "-character limit. Nothing was cut; shorten it and send again.", true);
      body.focus();
      return;
    }
    if (form.querySelector("li.upload:not([data-media])")) {
      say("Not sent: an image is not attached yet. Upload it (it needs its alt text) or remove it; " +
          "your text is kept.", true);
      return;
    }
    sending = true;
    form.setAttribute("aria-busy", "true");
    say("Sending…");
    forms.post(form, event.submitter).then(function (data) {
      if (!data.ok) { say(data.error || "Not sent.", true); return; }
      forms.announce(data.entry);
      form.dispatchEvent(new CustomEvent("tracker:sent"));
      form.reset();
      forget();
      form.querySelector("[name=idempotency_key]").value = forms.randomKey();
      pane.hidden = true;
      say(data.message || "Sent.");
      count();
      doing();
      body.focus();
    }).catch(function () {
      // The same idempotency key stays, so sending again cannot publish twice.
      say("Not sent: connection problem. Your text is kept; try again.", true);
    }).finally(function () { sending = false; form.removeAttribute("aria-busy"); });
  });

  previewButton.hidden = false;
  previewButton.addEventListener("click", function () {
    forms.post(form, null, form.dataset.previewUrl).then(function (data) {
      if (!data.ok) { say(data.error || "No preview.", true); return; }
      var h = pane.querySelector("[data-preview-headline]");
      h.textContent = data.headline;
      h.hidden = !data.headline;
      pane.querySelector("[data-preview-body]").innerHTML = data.html;  // sanitized by the server, as when publishing
      pane.hidden = false;
      say("");
    }).catch(function () { say("No preview: connection problem.", true); });
  });

  forms.offsets();
  restore();
  count();
  doing();
})();
