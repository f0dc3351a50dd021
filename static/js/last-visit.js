// "New since your last visit": the browser remembers (localStorage, per story) the newest update
// the reader had on screen when they left; coming back, a line between the updates new since then
// and those already seen shows where they stopped. Nothing is sent anywhere. Not in widgets.
(function () {
  "use strict";
  var root = document.getElementById("story");
  if (!root || root.dataset.embed === "1" || root.dataset.editor === "1" || root.dataset.head !== "1") return;
  var feed = root.querySelector("[data-entries]");
  if (!feed) return;
  var key = "tracker:last-seen:" + root.dataset.story;

  function read() {
    try { return JSON.parse(window.localStorage.getItem(key)); } catch (e) { return null; }
  }

  // Entry positions compare by creation time, then id (as live.js sorts them).
  function after(el, mark) {
    return el.dataset.created > mark.created || (el.dataset.created === mark.created && +el.dataset.id > mark.id);
  }

  function newestShown() {
    var newest = null;
    root.querySelectorAll("[data-entries] > article.entry, [data-pinned-slot] > article.entry").forEach(function (el) {
      if (+el.dataset.id && (!newest || after(el, { created: newest.created, id: newest.id }))) {
        newest = { created: el.dataset.created, id: +el.dataset.id };
      }
    });
    return newest;
  }

  function remember() {
    var newest = newestShown();
    var stored = read();
    if (!newest || (stored && !after({ dataset: { created: newest.created, id: newest.id } }, stored))) return;
    try { window.localStorage.setItem(key, JSON.stringify(newest)); } catch (e) { /* not remembered */ }
  }

  var since = read();  // the last visit's newest update, read before this visit is remembered
  var marker = null;

  // Put the line between the new updates and the seen ones, in whichever order the feed shows them;
  // only where both are on the page (none new, or none seen here: no line).
  function mark() {
    if (!since || typeof since.created !== "string") return;
    var items = Array.from(feed.querySelectorAll(":scope > article.entry"));
    var isNew = items.map(function (el) { return after(el, since); });
    for (var i = 1; i < items.length; i++) {
      if (isNew[i] === isNew[i - 1]) continue;
      if (!marker) {
        marker = document.createElement("p");
        marker.className = "since-last-visit";
        marker.setAttribute("role", "note");
        marker.textContent = t("New since your last visit");
      }
      if (marker.nextElementSibling !== items[i]) feed.insertBefore(marker, items[i]);
      return;
    }
    if (marker && marker.parentNode) marker.remove();
  }

  mark();
  root.addEventListener("tracker:order", mark);
  // A cached copy of the page gets the updates since then from its catch-up, after it loads.
  new MutationObserver(mark).observe(feed, { childList: true });
  window.addEventListener("pagehide", remember);
  document.addEventListener("visibilitychange", function () { if (document.hidden) remember(); });
})();
