// Share one update: the system's share sheet where there is one (navigator.share), otherwise its
// permalink copied to the clipboard. The cards' [data-share] buttons stay hidden without this
// script or without either way to share; cards added live get theirs shown as they arrive.
(function () {
  "use strict";
  var root = document.getElementById("story");
  if (!root) return;
  var canShare = typeof navigator.share === "function";
  var canCopy = !!(navigator.clipboard && navigator.clipboard.writeText);
  if (!canShare && !canCopy) return;

  function reveal(scope) {
    scope.querySelectorAll("[data-share][hidden]").forEach(function (button) {
      if (button.closest("article.entry:not([data-id='0'])")) button.hidden = false;
    });
  }
  reveal(root);
  new MutationObserver(function (changes) {
    changes.forEach(function (change) {
      change.addedNodes.forEach(function (node) { if (node.nodeType === 1) reveal(node.parentNode || node); });
    });
  }).observe(root, { childList: true, subtree: true });

  // Say what happened, politely, for everyone: in the page's live region and on the button.
  var announcer = root.querySelector("[data-announcer]");
  function say(button, message) {
    if (announcer) announcer.textContent = message;
    var label = button.dataset.label || button.textContent;
    button.dataset.label = label;
    button.textContent = message;
    clearTimeout(button.shareTimer);
    button.shareTimer = setTimeout(function () { button.textContent = label; }, 3000);
  }

  root.addEventListener("click", function (event) {
    var button = event.target.closest("[data-share]");
    if (!button) return;
    var card = button.closest("article.entry");
    var link = card && card.querySelector(".entry__permalink");
    if (!link) return;
    var url = new URL(link.getAttribute("href"), window.location.href).href;
    var headline = card.querySelector(".entry__headline");
    var story = document.querySelector("[data-story-title]");
    var title = (headline && headline.textContent.trim()) || (story && story.textContent.trim()) || document.title;
    if (canShare) {
      navigator.share({ title: title, url: url }).catch(function (error) {
        if (error && error.name === "AbortError") return;  // the reader closed the share sheet
        say(button, t("Could not share this update"));
      });
      return;
    }
    navigator.clipboard.writeText(url).then(function () { say(button, t("Link copied")); },
      function () { say(button, t("Could not copy the link")); });
  });
})();
