// Shows <time> elements in the reader's own time zone and keeps "3 min ago" labels fresh.
(function () {
  "use strict";
  // In the page's language (a story's own), not the browser's: a French story shows French dates.
  // The browser's own variant of that language keeps its region's customs (en-GB: a 24-hour clock).
  var page = document.documentElement.lang || undefined;
  var browser = navigator.language || "";
  var language = !page || browser.split("-")[0] === page.split("-")[0] ? browser || page : page;
  var timeFormat = new Intl.DateTimeFormat(language, { hour: "2-digit", minute: "2-digit" });
  var dateTimeFormat = new Intl.DateTimeFormat(language, {
    day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit"
  });
  var fullFormat = new Intl.DateTimeFormat(language, { dateStyle: "full", timeStyle: "long" });
  var relative = new Intl.RelativeTimeFormat(language, { numeric: "auto" });

  function sameDay(a, b) { return a.toDateString() === b.toDateString(); }

  function ago(date, now) {
    var seconds = Math.round((date - now) / 1000);
    if (Math.abs(seconds) < 45) return t("just now");
    var minutes = Math.round(seconds / 60);
    if (Math.abs(minutes) < 60) return relative.format(minutes, "minute");
    var hours = Math.round(minutes / 60);
    if (Math.abs(hours) < 24) return relative.format(hours, "hour");
    return relative.format(Math.round(hours / 24), "day");
  }

  function render(root) {
    var now = new Date();
    (root || document).querySelectorAll("time[data-format]").forEach(function (el) {
      var date = new Date(el.getAttribute("datetime"));
      if (isNaN(date)) return;
      var short = el.dataset.format === "time" && sameDay(date, now);
      el.textContent = short ? timeFormat.format(date) : dateTimeFormat.format(date);
      el.title = fullFormat.format(date);
    });
    (root || document).querySelectorAll("[data-ago]").forEach(function (el) {
      var date = new Date(el.dataset.ago);
      if (!isNaN(date)) el.textContent = ago(date, now);
    });
  }

  window.TrackerTimes = { render: render };
  render();
  setInterval(render, 30000);
})();
