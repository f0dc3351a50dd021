// Sending the editor's forms with fetch (they work without JavaScript too): the shared helper.
(function () {
  "use strict";

  function randomKey() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }

  // POST a form (with the button that sent it) and resolve with the JSON answer: { ok, error, ... }.
  // Rejects only when nothing came back (a connection problem).
  function post(form, submitter, url) {
    var body = new FormData(form);
    if (submitter && submitter.name) body.append(submitter.name, submitter.value);
    return fetch(url || form.action, { method: "POST", body: body, credentials: "same-origin",
                                       headers: { Accept: "application/json" } })
      .then(function (r) {
        if (r.redirected && new URL(r.url).pathname === "/login") {
          return { ok: false, error: t("You are logged out. Log in again in another tab, then send again: your text is kept.") };
        }
        return r.json().catch(function () { return { ok: false, error: t("The server answered %(status)s.", { status: r.status }) }; })
          .then(function (data) { data.status = r.status; return data; });
      });
  }

  // Changes made here reach the other modules as a `tracker:entry` event on the page's root.
  function announce(entry) {
    var root = document.getElementById("story");
    if (root && entry) root.dispatchEvent(new CustomEvent("tracker:entry", { detail: entry }));
  }

  // Fill each form's tz_offset with the browser's offset from UTC at the time chosen in it (not
  // today's: daylight saving may differ), so the server reads "09:30" as the editor meant it.
  function offsets() {
    document.querySelectorAll("[data-tz-offset]").forEach(function (input) {
      var when = input.form && input.form.querySelector("[name=publish_at]");
      var date = when && when.value ? new Date(when.value) : new Date();
      input.value = (isNaN(date) ? new Date() : date).getTimezoneOffset();
    });
  }

  // Unsent text kept in this browser (localStorage) under a key, until `value` is null. When storage
  // is full or off nothing is kept; the pages' beforeunload warnings still guard the text.
  function keep(key, value) {
    try {
      if (value) localStorage.setItem(key, JSON.stringify(value)); else localStorage.removeItem(key);
    } catch (e) { /* nothing kept */ }
  }

  function kept(key) {
    try { return JSON.parse(localStorage.getItem(key) || "null"); } catch (e) { return null; }
  }

  window.TrackerForms = { post: post, randomKey: randomKey, announce: announce, offsets: offsets, keep: keep,
                          kept: kept };
})();
