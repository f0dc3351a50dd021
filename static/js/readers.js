// How many are reading the story: the count a join answers with, then the `readers` event the
// server sends a story's readers at a tick when the count changed (never one per joining
// reader), in [data-readers].
(function () {
  "use strict";
  var root = document.getElementById("story");
  var box = root && root.querySelector("[data-readers]");
  if (!box || !window.trackerSocket) return;

  function show(count) {
    if (typeof count !== "number" || count < 1) return;
    box.textContent = t("%(count)s reading now", { count: count.toLocaleString(document.documentElement.lang || undefined) });
    box.hidden = false;
  }

  root.addEventListener("tracker:readers", function (event) { show(event.detail); });
  window.trackerSocket.on("readers", function (message) {
    if (message.story === root.dataset.story) show(message.readers);
  });
})();
