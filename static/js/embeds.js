// Video and social posts in updates, privacy first: a link alone in its paragraph to a known
// provider becomes a placeholder naming the provider and the link. Nothing is requested from the
// provider until the reader asks ("Load content from YouTube"), or chose to always load that
// provider's content in this browser. Then the provider's own player or post loads in an
// iframe, which the Content-Security-Policy's frame-src allows for these hosts only. Without
// JavaScript the link stays a link.
(function () {
  "use strict";
  var MASTODON = (document.body.dataset.mastodon || "").split(",").filter(Boolean);  // the servers the CSP allows
  var BSKY_RESOLVE = "https://public.api.bsky.app/xrpc/com.atproto.identity.resolveHandle?handle=";

  // Each: a name, the URL pattern (whole URL), the iframe address made from its match, and a shape.
  var PROVIDERS = [
    { name: "YouTube", shape: "video",
      re: /^https:\/\/(?:www\.|m\.)?youtube\.com\/(?:watch\?v=|shorts\/)([A-Za-z0-9_-]{11})(?:[&?#][^\s]*)?$/,
      src: function (m) { return "https://www.youtube-nocookie.com/embed/" + m[1]; } },
    { name: "YouTube", shape: "video", re: /^https:\/\/youtu\.be\/([A-Za-z0-9_-]{11})(?:[?#][^\s]*)?$/,
      src: function (m) { return "https://www.youtube-nocookie.com/embed/" + m[1]; } },
    { name: "Vimeo", shape: "video", re: /^https:\/\/(?:www\.)?vimeo\.com\/([0-9]{1,12})\/?$/,
      src: function (m) { return "https://player.vimeo.com/video/" + m[1] + "?dnt=1"; } },
    { name: "X", shape: "post", re: /^https:\/\/(?:www\.|mobile\.)?(?:x|twitter)\.com\/[A-Za-z0-9_]{1,15}\/status\/([0-9]{1,20})\/?(?:\?[^\s]*)?$/,
      src: function (m) { return "https://platform.twitter.com/embed/Tweet.html?id=" + m[1] + "&dnt=true"; } },
    { name: "Bluesky", shape: "post", re: /^https:\/\/bsky\.app\/profile\/(did:plc:[a-z2-7]{24})\/post\/([a-z2-7]{13})\/?$/,
      src: function (m) { return "https://embed.bsky.app/embed/" + m[1] + "/app.bsky.feed.post/" + m[2]; } },
    // A handle (a domain name) is resolved to its DID by Bluesky's public API, after consent.
    { name: "Bluesky", shape: "post",
      re: /^https:\/\/bsky\.app\/profile\/((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9])\/post\/([a-z2-7]{13})\/?$/i,
      src: function (m) { return BSKY_RESOLVE + encodeURIComponent(m[1].toLowerCase()); },
      resolve: function (answer, m) {
        return /^did:plc:[a-z2-7]{24}$/.test(answer.did) &&
          "https://embed.bsky.app/embed/" + answer.did + "/app.bsky.feed.post/" + m[2];
      } },
    { name: "Instagram", shape: "post", re: /^https:\/\/(?:www\.)?instagram\.com\/(p|reel)\/([A-Za-z0-9_-]{5,40})\/?(?:\?[^\s]*)?$/,
      src: function (m) { return "https://www.instagram.com/" + m[1] + "/" + m[2] + "/embed"; } },
    { name: "TikTok", shape: "post", re: /^https:\/\/(?:www\.)?tiktok\.com\/@[A-Za-z0-9_.]{1,24}\/video\/([0-9]{1,20})\/?(?:\?[^\s]*)?$/,
      src: function (m) { return "https://www.tiktok.com/embed/v2/" + m[1]; } },
    // Each Mastodon server is its own provider: the reader consents to that server.
    { name: "Mastodon", shape: "post", re: /^https:\/\/([a-z0-9.-]{1,100})\/@[A-Za-z0-9_]{1,30}\/([0-9]{1,20})\/?$/,
      label: function (m) { return m[1] + " (Mastodon)"; },
      src: function (m) { return MASTODON.indexOf(m[1]) === -1 ? null : m[0].replace(/\/$/, "") + "/embed"; } }
  ];

  function match(url) {
    for (var i = 0; i < PROVIDERS.length; i++) {
      var m = PROVIDERS[i].re.exec(url);
      var src = m && PROVIDERS[i].src(m);
      if (src) {
        var p = PROVIDERS[i];
        return { provider: p, src: src, name: p.label ? p.label(m) : p.name, match: m };
      }
    }
    return null;
  }

  function remembered(name) {
    try { return localStorage.getItem("tracker:consent:" + name) === "yes"; } catch (e) { return false; }
  }

  function remember(name) {
    try { localStorage.setItem("tracker:consent:" + name, "yes"); } catch (e) { /* asked again next time */ }
  }

  // The address to frame: found.src, or for a provider that must look something up first, what
  // its answer gives (null when it cannot).
  function frameSrc(found) {
    if (!found.provider.resolve) return Promise.resolve(found.src);
    return fetch(found.src, { credentials: "omit", referrerPolicy: "no-referrer" })
      .then(function (response) { return response.ok ? response.json() : {}; })
      .then(function (answer) { return found.provider.resolve(answer, found.match) || null; })
      .catch(function () { return null; });
  }

  function load(box, found, url) {
    box.setAttribute("aria-busy", "true");
    frameSrc(found).then(function (src) {
      box.removeAttribute("aria-busy");
      if (src) { show(box, found, url, src); return; }
      var failed = box.querySelector(".embed__note");
      failed.textContent = t("This post could not be loaded from %(provider)s. The link above opens it.", { provider: found.name });
      failed.setAttribute("role", "status");
    });
  }

  function show(box, found, url, src) {
    var frame = document.createElement("iframe");
    frame.src = src;
    frame.title = found.name + ": " + url;
    frame.loading = "lazy";
    frame.referrerPolicy = "strict-origin-when-cross-origin";
    frame.setAttribute("allow", "encrypted-media; picture-in-picture; fullscreen");
    frame.setAttribute("sandbox", "allow-scripts allow-same-origin allow-popups allow-presentation");
    frame.className = "embed__frame embed__frame--" + found.provider.shape;
    box.replaceChildren(frame);
    box.classList.add("embed--loaded");
  }

  var count = 0;
  function placeholder(paragraph, link, found) {
    var url = link.href, name = found.name;
    var box = document.createElement("div");
    box.className = "embed embed--" + found.provider.shape;
    box.dataset.embed = name;
    box.dataset.url = url;
    var label = document.createElement("p");
    label.className = "embed__provider";
    label.textContent = t("Content from %(provider)s", { provider: name });
    var copy = link.cloneNode(true);
    var note = document.createElement("p");
    note.className = "embed__note";
    note.textContent = t("Loading it lets %(provider)s see that you visit this page.", { provider: name });
    var button = document.createElement("button");
    button.type = "button";
    button.className = "button embed__load";
    button.textContent = t("Load content from %(provider)s", { provider: name });
    var always = document.createElement("label");
    always.className = "embed__always";
    var check = document.createElement("input");
    check.type = "checkbox";
    check.id = "embed-always-" + (++count);
    always.htmlFor = check.id;
    always.append(check, " " + t("Always load content from %(provider)s", { provider: name }));
    button.addEventListener("click", function () {
      if (check.checked) remember(name);
      load(box, found, url);
    });
    var linkLine = document.createElement("p");
    linkLine.append(copy);
    box.append(label, linkLine, note, button, always);
    paragraph.replaceWith(box);
    if (remembered(name)) load(box, found, url);
  }

  // Replace each lone provider link in these elements' update bodies with its placeholder.
  function scan(scope) {
    (scope || document).querySelectorAll(".entry__body > p").forEach(function (paragraph) {
      var link = paragraph.querySelector("a");
      if (!link || paragraph.children.length !== 1 || paragraph.textContent.trim() !== link.textContent.trim()) return;
      var found = match(link.getAttribute("href") || "");
      if (found) placeholder(paragraph, link, found);
    });
  }

  // Replace an update's body with new HTML, keeping each embed the reader has loaded whose link
  // is still there in place, so a correction to the text does not stop a playing video (moving
  // an iframe in the document would reload it).
  function update(body, html) {
    if (body.trackerHtml === html) return;
    body.trackerHtml = html;
    var loaded = {};
    body.querySelectorAll(":scope > .embed--loaded").forEach(function (box) { loaded[box.dataset.url] = box; });
    var fresh = document.createElement("div");
    fresh.className = "entry__body";
    fresh.innerHTML = html;  // sanitized by the server on write
    scan(fresh);
    var wanted = Array.prototype.map.call(fresh.childNodes, function (node) {
      var kept = node.dataset && node.dataset.url && loaded[node.dataset.url];
      if (kept) delete loaded[node.dataset.url];
      return kept || node;
    });
    var keep = new Set(wanted);
    Array.prototype.slice.call(body.childNodes).forEach(function (node) { if (!keep.has(node)) node.remove(); });
    var cursor = body.firstChild;
    wanted.forEach(function (node) {
      if (node === cursor) cursor = cursor.nextSibling;
      else body.insertBefore(node, cursor);
    });
  }

  window.TrackerEmbeds = { scan: scan, match: match, update: update };
  scan(document);
})();
