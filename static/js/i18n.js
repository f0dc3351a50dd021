// The interface's strings in the page's language. The server writes them, translated, into
// <script type="application/json" id="i18n"> (tracker/i18n.py, SCRIPT_STRINGS); t("English text",
// {name: value}) answers the translation with %(name)s filled in, or the English text.
(function () {
  "use strict";
  var strings = {};
  var source = document.getElementById("i18n");
  try { strings = source ? JSON.parse(source.textContent) : {}; } catch (e) { /* English, then */ }
  window.t = function (message, values) {
    return (strings[message] || message).replace(/%\((\w+)\)s/g, function (whole, name) {
      return values && name in values ? String(values[name]) : whole;
    });
  };
})();
