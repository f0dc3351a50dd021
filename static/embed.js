// Tracker embed: <script src="https://TRACKER/static/embed.js" data-story="SLUG" async></script>
// Inserts the live widget as an iframe and sizes it to its content. Options (data-*):
// data-theme="light|dark", data-limit="10", data-key-events="1", data-entry="ID" (one update).
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.dataset.story) return;
  var origin = new URL(script.src).origin;
  var params = new URLSearchParams();
  ["theme", "limit"].forEach(function (name) { if (script.dataset[name]) params.set(name, script.dataset[name]); });
  if (script.dataset.keyEvents === "1") params.set("key_events", "1");
  var path = "/embed/" + encodeURIComponent(script.dataset.story) +
    (script.dataset.entry ? "/entries/" + encodeURIComponent(script.dataset.entry) : "");
  var frame = document.createElement("iframe");
  frame.src = origin + path + (params.toString() ? "?" + params : "");
  frame.title = "Live updates";
  frame.loading = "lazy";
  frame.setAttribute("scrolling", "no");
  frame.style.cssText = "display:block;width:100%;border:0;height:400px;overflow:hidden";
  script.parentNode.insertBefore(frame, script.nextSibling);
  window.addEventListener("message", function (event) {
    // Only our own frame, from the Tracker origin, may resize it.
    if (event.origin !== origin || event.source !== frame.contentWindow) return;
    var data = event.data || {};
    if (data.type === "tracker:resize" && typeof data.height === "number" && data.height > 0) {
      frame.style.height = Math.min(data.height, 20000) + "px";
    }
  });
})();
