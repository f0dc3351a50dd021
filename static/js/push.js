// The reader page's "Notify me of key events" button: subscribes this browser through its push service and
// tells the server (POST /push/subscriptions), or stops (DELETE). Shown only where the browser can do it.
(function () {
  "use strict";
  var box = document.querySelector("[data-push]");
  var root = document.getElementById("story");
  if (!box || !root || !("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    return;
  }
  var button = box.querySelector("[data-push-toggle]");
  var status = box.querySelector("[data-push-status]");
  var slug = root.dataset.story;
  var STORE = "tracker:push";  // the slugs of the stories this browser asked to be told of
  var UNREACHABLE = t("The server could not be reached; try again in a moment.");
  var registration = navigator.serviceWorker.register("/sw.js", { scope: "/stories/" });

  function followed() {
    try { return JSON.parse(localStorage.getItem(STORE) || "[]"); } catch (e) { return []; }
  }

  function follow(slugs) {
    try { localStorage.setItem(STORE, JSON.stringify(slugs)); } catch (e) { /* then the button starts "off" */ }
  }

  function show(on, message) {
    button.textContent = on ? t("Stop notifications") : t("Notify me of key events");
    button.dataset.subscribed = on ? "1" : "";
    button.disabled = false;
    status.textContent = message || "";
  }

  // JSON to the server without cookies (readers have none); rejects with the server's message.
  function send(path, method, body) {
    var options = { method: method, credentials: "omit", headers: { Accept: "application/json" } };
    if (body) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(path, options).catch(function () { throw new Error(UNREACHABLE); }).then(function (r) {
      return r.status === 204 ? {} : r.json().catch(function () { return {}; }).then(function (data) {
        if (!r.ok) throw new Error(data.error || t("The server answered %(status)s.", { status: r.status }));
        return data;
      });
    });
  }

  // The server's base64url key as the bytes pushManager.subscribe takes.
  function keyBytes(key) {
    var base64 = key.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((key.length + 3) % 4);
    return Uint8Array.from(atob(base64), function (c) { return c.charCodeAt(0); });
  }

  function sameKey(subscription, key) {
    var own = new Uint8Array((subscription.options && subscription.options.applicationServerKey) || []);
    return own.length === key.length && own.every(function (byte, i) { return byte === key[i]; });
  }

  function subscribe() {
    return Notification.requestPermission().then(function (permission) {
      if (permission !== "granted") {
        throw new Error(t("Notifications are blocked for this site; allow them in your browser's site settings."));
      }
      return Promise.all([registration.then(function () { return navigator.serviceWorker.ready; }),
                          send("/push/key", "GET")]);
    }).then(function (found) {
      var worker = found[0], key = keyBytes(found[1].key);
      return worker.pushManager.getSubscription().then(function (existing) {
        if (existing && sameKey(existing, key)) return existing;
        // Made with another key (the site's changed): push services would refuse this site's pushes for it.
        return (existing ? existing.unsubscribe() : Promise.resolve()).then(function () {
          return worker.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
        }).catch(function () {
          throw new Error(t("This browser could not sign up with its push service, so notifications can't be turned on here. Live updates on this page still work."));
        });
      });
    }).then(function (subscription) {
      return send("/push/subscriptions", "POST", { story: slug, subscription: subscription.toJSON() });
    }).then(function () {
      follow(followed().filter(function (s) { return s !== slug; }).concat([slug]));
      show(true, t("You will be notified of key events in this story."));
    });
  }

  function unsubscribe() {
    return registration.then(function (worker) { return worker.pushManager.getSubscription(); })
      .then(function (subscription) {
        var others = followed().filter(function (s) { return s !== slug; });
        if (!subscription) return follow(others);
        return send("/push/subscriptions", "DELETE", { story: slug, endpoint: subscription.endpoint })
          .then(function () {
            follow(others);
            // One browser subscription serves every story followed here: it ends with the last of them.
            if (!others.length) return subscription.unsubscribe();
          });
      }).then(function () { show(false, t("Notifications of this story's key events are off.")); });
  }

  button.addEventListener("click", function () {
    var on = button.dataset.subscribed === "1";
    button.disabled = true;
    status.textContent = on ? t("Turning notifications off…") : t("Turning notifications on…");
    (on ? unsubscribe() : subscribe()).catch(function (error) { show(on, error.message); });
  });

  registration.then(function (worker) { return worker.pushManager.getSubscription(); })
    .then(function (subscription) {
      show(Boolean(subscription) && Notification.permission === "granted" && followed().indexOf(slug) >= 0);
      box.hidden = false;
    })
    .catch(function () { /* no service worker here (a private window, say): the button stays hidden */ });
})();
