// Inside an embed: tell the host page (embed.js) how tall the widget is, whenever that changes.
(function () {
  "use strict";
  if (window.parent === window) return;
  var story = document.getElementById("story").dataset.story;
  var last = 0;
  function report() {
    var height = Math.ceil(document.documentElement.getBoundingClientRect().height);
    if (height === last) return;
    last = height;
    // The height is not secret, so any host may read it; embed.js checks where it came from.
    window.parent.postMessage({ type: "tracker:resize", story: story, height: height }, "*");
  }
  new ResizeObserver(report).observe(document.documentElement);
  window.addEventListener("tracker:resize", report);  // read-more.js: an update opened or closed
  report();
})();
