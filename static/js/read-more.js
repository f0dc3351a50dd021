// Widgets: an update taller than about 12rem shows its start, with "Read more" to show the rest
// (and "Show less"), so one long update does not make the widget run on. The card gets the classes
// .entry--clamped / .entry--expanded; its body is cut at the height here so it works with any CSS.
(function () {
  "use strict";
  var root = document.getElementById("story");
  if (!root || root.dataset.embed !== "1") return;
  var CLAMP_REM = 12;

  function limit() { return CLAMP_REM * parseFloat(getComputedStyle(document.documentElement).fontSize); }

  function changed() { window.dispatchEvent(new CustomEvent("tracker:resize")); }

  function check(card) {
    var body = card.querySelector(".entry__body");
    if (!body || !+card.dataset.id) return;
    var button = card.querySelector(":scope > .read-more");
    if (card.classList.contains("entry--expanded")) return;
    body.style.maxHeight = "";
    body.style.overflow = "";
    var tall = body.scrollHeight > limit() * 1.25;  // not worth cutting just a line or two
    card.classList.toggle("entry--clamped", tall);
    if (tall) {
      body.style.maxHeight = CLAMP_REM + "rem";
      body.style.overflow = "hidden";
      if (!button) {
        body.id = body.id || "entry-" + card.dataset.id + "-body";
        button = document.createElement("button");
        button.type = "button";
        button.className = "read-more";
        button.setAttribute("aria-controls", body.id);
        body.after(button);
      }
      if (button.getAttribute("aria-expanded") !== "false") {
        button.setAttribute("aria-expanded", "false");
        button.textContent = t("Read more");
      }
    } else if (button) {
      button.remove();
    }
  }

  root.addEventListener("click", function (event) {
    var button = event.target.closest(".read-more");
    if (!button) return;
    var card = button.closest("article.entry");
    var body = card.querySelector(".entry__body");
    var expand = !card.classList.contains("entry--expanded");
    card.classList.toggle("entry--expanded", expand);
    body.style.maxHeight = expand ? "" : CLAMP_REM + "rem";
    button.setAttribute("aria-expanded", String(expand));
    button.textContent = expand ? t("Show less") : t("Read more");
    if (!expand) card.scrollIntoView({ block: "nearest" });
    changed();  // embed-frame.js tells the host page the new height
  });

  var feed = root.querySelector("[data-entries]");
  if (!feed) return;
  feed.querySelectorAll(":scope > article.entry").forEach(check);
  // Cards added or corrected live: check them again (their text may have grown or shrunk).
  new MutationObserver(function (changes) {
    var cards = new Set();
    changes.forEach(function (change) {
      if (change.target.closest && change.target.closest(".read-more")) return;  // its own button
      var card = change.target.closest && change.target.closest("article.entry");
      if (card) cards.add(card);
      change.addedNodes.forEach(function (node) {
        if (node.matches && node.matches("article.entry")) cards.add(node);
        else if (card && node.matches && node.matches(".read-more") && change.addedNodes.length === 1) cards.delete(card);
      });
    });
    cards.forEach(function (card) { if (card.isConnected) check(card); });
  }).observe(feed, { childList: true, subtree: true });
})();
