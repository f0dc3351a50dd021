// The service worker (served at /sw.js, scope /stories/): shows each pushed key event as a notification
// and opens its permalink when the notification is clicked. It handles no fetch, so pages load as before.
"use strict";

self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (event) { event.waitUntil(self.clients.claim()); });

// The push's JSON (tracker.push.message): headline, url (the permalink), title (the story's), tag.
self.addEventListener("push", function (event) {
  var data = {};
  try { data = event.data ? event.data.json() : {}; } catch (e) { /* shown as a generic key event below */ }
  // A push must show a notification (userVisibleOnly), so one that says little still shows something.
  event.waitUntil(self.registration.showNotification(data.headline || "New key event", {
    body: data.title || "",
    tag: data.tag || "",
    data: { url: sameOrigin(data.url) || self.registration.scope }
  }));
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var url = event.notification.data && event.notification.data.url;
  event.waitUntil(self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (windows) {
    var open = windows.find(function (client) { return client.url === url && "focus" in client; });
    return open ? open.focus() : self.clients.openWindow(url);
  }));
});

// Only this site's pages are opened, whatever a push says.
function sameOrigin(url) {
  try {
    var parsed = new URL(url, self.location.origin);
    return parsed.origin === self.location.origin ? parsed.href : null;
  } catch (e) {
    return null;
  }
}
