// Video and social posts in updates, privacy first: a link alone in its paragraph to a known
// provider becomes a placeholder naming the provider and the link. Nothing is requested from the
// provider until the reader asks ("Load content from YouTube"), or chose to always load that
// provider's content in this browser. Then the provider's own player or post loads in an
// iframe, which the Content-Security-Policy's frame-src allows for these hosts only. Without
// JavaScript the link stays a link.
(function () {
  "use strict";
  var MASTODON = (document.body.dataset.mastodon || "").split(",").filter(Boolean);  // the servers the CSP allows

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
    { name: "Instagram", shape: "post", re: /^https:\/\/(?:www\.)?instagram\.com\/(p|reel)\/([A-Za-z0-9_-]{5,40})\/?(?:\?[^\s]*)?$/,
      src: function (m) { return "https://www.instagram.com/" + m[1] + "/" + m[2] + "/embed"; } },
    { name: "TikTok", shape: "post", re: /^https:\/\/(?:www\.)?tiktok\.com\/@[A-Za-z0-9_.]{1,24}\/video\/([0-9]{1,20})\/?(?:\?[^\s]*)?$/,
      src: function (m) { return "https://www.tiktok.com/embed/v2/" + m[1]; } },
    { name: "Mastodon", shape: "post", re: /^https:\/\/([a-z0-9.-]{1,100})\/@[A-Za-z0-9_]{1,30}\/([0-9]{1,20})\/?$/,
      src: function (m) { return MASTODON.indexOf(m[1]) === -1 ? null : m[0].replace(/\/$/, "") + "/embed"; } }
  ];

  function match(url) {
    for (var i = 0; i < PROVIDERS.length; i++) {
      var m = PROVIDERS[i].re.exec(url);
      var src = m && PROVIDERS[i].src(m);
      if (src) return { provider: PROVIDERS[i], src: src };
    }
    return null;
  }

  function remembered(name) {
    try { return localStorage.getItem("tracker:consent:" + name) === "yes"; } catch (e) { return false; }
  }

  function remember(name) {
    try { localStorage.setItem("tracker:consent:" + name, "yes"); } catch (e) { /* asked again next time */ }
  }

  function load(box, found, url) {
    var frame = document.createElement("iframe");
    frame.src = found.src;
    frame.title = found.provider.name + ": " + url;
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
    var url = link.href, name = found.provider.name;
    var box = document.createElement("div");
    box.className = "embed embed--" + found.provider.shape;
    box.dataset.embed = name;
    var label = document.createElement("p");
    label.className = "embed__provider";
    label.textContent = "Content from " + name;
    var copy = link.cloneNode(true);
    var note = document.createElement("p");
    note.className = "embed__note";
    note.textContent = "Loading it lets " + name + " see that you visit this page.";
    var button = document.createElement("button");
    button.type = "button";
    button.className = "button embed__load";
    button.textContent = "Load content from " + name;
    var always = document.createElement("label");
    always.className = "embed__always";
    var check = document.createElement("input");
    check.type = "checkbox";
    check.id = "embed-always-" + (++count);
    always.htmlFor = check.id;
    always.append(check, " Always load content from " + name);
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

  window.TrackerEmbeds = { scan: scan, match: match };
  scan(document);
})();
