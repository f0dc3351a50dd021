// The colour theme: the system's (prefers-color-scheme) unless the reader chose light or dark with the
// header's toggle, remembered in localStorage. Loaded in <head> without defer, so that the chosen
// theme's data-theme="light|dark" is on <html> before the first paint.
(function () {
  "use strict";
  var KEY = "tracker-theme";
  var html = document.documentElement;
  var system = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  var choice = null;  // "light", "dark", or null: follow the system
  try { choice = window.localStorage.getItem(KEY); } catch (e) { /* storage blocked: follow the system */ }
  if (choice !== "light" && choice !== "dark") choice = null;

  function systemTheme() { return system && system.matches ? "dark" : "light"; }
  function current() { return choice || systemTheme(); }

  function apply() {
    if (choice) html.setAttribute("data-theme", choice); else html.removeAttribute("data-theme");
    document.querySelectorAll("[data-theme-toggle]").forEach(function (button) {
      button.setAttribute("aria-pressed", current() === "dark" ? "true" : "false");
    });
  }

  function choose(theme) {
    choice = theme === systemTheme() ? null : theme;  // matching the system again: follow it from now on
    try {
      if (choice) window.localStorage.setItem(KEY, choice); else window.localStorage.removeItem(KEY);
    } catch (e) { /* this page only, then */ }
    apply();
  }

  // A <details data-open-wide> (the story's key events) is a side column, open, on a wide screen and a
  // closed disclosure on a narrow one; the CSS shows it on wide screens without JavaScript too.
  var wide = window.matchMedia ? window.matchMedia("(min-width: 50rem)") : null;
  // There it is no control: its summary leaves the tab order and a click does not close it.
  function disclose() {
    var open = !!(wide && wide.matches);
    document.querySelectorAll("details[data-open-wide]").forEach(function (details) {
      details.open = open;
      var summary = details.querySelector("summary");
      if (summary) summary.tabIndex = open ? -1 : 0;
    });
  }
  document.addEventListener("click", function (event) {
    var summary = event.target.closest && event.target.closest("details[data-open-wide] > summary");
    if (summary && wide && wide.matches) event.preventDefault();
  });
  if (wide && wide.addEventListener) wide.addEventListener("change", disclose);

  apply();
  document.addEventListener("DOMContentLoaded", function () {
    disclose();
    document.querySelectorAll("[data-theme-toggle]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { choose(current() === "dark" ? "light" : "dark"); });
    });
    apply();
  });
  if (system && system.addEventListener) system.addEventListener("change", apply);
})();
