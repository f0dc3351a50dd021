// Live story page (reader and editor): joins the story over Socket.IO, applies entry and
// story states by revision, and catches up after any disconnect. See README "Event protocol".
(function () {
  "use strict";
  var root = document.getElementById("story");
  if (!root || typeof io === "undefined" || !window.TrackerRevisions) return;

  var slug = root.dataset.story;
  var editor = root.dataset.editor === "1";
  var embed = root.dataset.embed === "1";          // a widget framed by another site
  var limit = parseInt(root.dataset.limit, 10) || 0;  // widgets show at most this many entries
  var single = root.dataset.single ? +root.dataset.single : null;  // a one-entry widget
  var atHead = root.dataset.head === "1";
  var nextCursor = root.dataset.next || null;
  var feed = root.querySelector("[data-entries]");
  var pinnedSlot = root.querySelector("[data-pinned-slot]");
  var keyList = root.querySelector("[data-key-events]");
  var announcer = root.querySelector("[data-announcer]");
  var newButton = root.querySelector("[data-new-updates]");
  var stateEl = root.querySelector("[data-connection]");
  var toggle = root.querySelector("[data-live-toggle]");
  var orderToggle = root.querySelector("[data-order-toggle]");
  var ordering = !!orderToggle && atHead && !editor && !embed;  // the reader may choose the order
  var older = root.querySelector("[data-load-older]");
  var template = document.getElementById("entry-template").content.firstElementChild;
  var baseTitle = document.title;

  // Revision bookkeeping (static/js/revisions.js): `revs.held` is the revision every change up to
  // which is on the page (the next join asks from it); `revs.fresh` tells newer entry states apart.
  var revs = new window.TrackerRevisions.Revisions(parseInt(root.dataset.rev, 10) || 0);
  var storyRev = revs.held;
  var offPage = new Map();  // newest states of entries not shown, for "Load older"
  var pending = new Map();  // new entries held back while the reader is scrolled down
  var unseen = 0;           // new entries that arrived while the tab was hidden
  var live = true;
  var statusEl = root.querySelector("[data-story-status]");
  var ended = (stateEl && stateEl.dataset.connection === "ended") ||
    !!(statusEl && statusEl.classList.contains("status--ended"));
  var connection = "connecting";  // what the socket is doing (the bar may say "ended" instead)

  // Reading order: newest first, or oldest first (the story's default, or the reader's choice,
  // remembered per story). Oldest first, new updates join the end once the reader has reached it.
  var orderKey = "tracker:order:" + slug;
  var oldestFirst = false;
  var loadingOrder = false;  // the first page in the chosen order is on its way
  var waiting = new Set();   // oldest first, short of the end: new entries, counted on "Load more"

  var newestAtLoad = "";  // created_at of the newest entry the page came with: later ones are new
  root.querySelectorAll("article.entry").forEach(function (el) {
    revs.fresh(+el.dataset.id, +el.dataset.rev);
    if (+el.dataset.id && el.dataset.created > newestAtLoad) newestAtLoad = el.dataset.created;
  });

  function noteRev(r) {
    var behind = revs.note(r);
    if (behind) resyncIfStillBehind(behind);
  }

  // Events can be lost (the server's message queue was down) or just late. If the page is
  // still behind a revision the server has reached after a grace period, join again: the
  // ack brings exactly what is missing.
  var resyncTimer = null;
  function resyncIfStillBehind(target) {
    if (target <= revs.held || resyncTimer) return;
    resyncTimer = setTimeout(function () {
      resyncTimer = null;
      if (target > revs.held && live && socket.connected) join();
    }, 2000);
  }

  // Rendering

  function elementFor(id) { return document.getElementById("entry-" + id); }

  function excerpt(entry) { return entry.headline || entry.excerpt; }

  function fill(el, e) {
    el.id = "entry-" + e.id;
    el.dataset.id = e.id;
    el.dataset.rev = e.rev;
    el.dataset.created = e.created_at;
    el.dataset.pinned = e.pinned ? "1" : "0";
    el.classList.toggle("entry--key", e.key);
    el.classList.toggle("entry--pinned", e.pinned);
    var created = el.querySelector(".entry__time time");
    created.setAttribute("datetime", e.created_at);
    el.querySelector(".entry__ago").dataset.ago = e.created_at;
    el.querySelector(".entry__time").setAttribute("href", embed ? e.url : "#entry-" + e.id);
    el.querySelector(".entry__permalink").href = e.url;
    var updated = el.querySelector(".entry__updated");
    updated.hidden = !e.edited_at;
    updated.href = e.url + "#history";
    if (e.edited_at) updated.querySelector("time").setAttribute("datetime", e.edited_at);
    el.querySelector(".badge--key").hidden = !e.key;
    el.querySelector(".badge--pinned").hidden = !e.pinned;
    var headline = el.querySelector(".entry__headline");
    headline.textContent = e.headline;
    headline.hidden = !e.headline;
    var body = el.querySelector(".entry__body");
    if (window.TrackerEmbeds) window.TrackerEmbeds.update(body, e.html);
    else body.innerHTML = e.html;  // sanitized by the server on write
    if (window.TrackerMedia) window.TrackerMedia.render(el.querySelector("[data-entry-media]"), e.media);
    el.querySelector(".entry__author").textContent = e.author ? t("By %(name)s", { name: e.author }) : "";
    var avatar = el.querySelector(".entry__avatar");  // the byline's initials, as the entry_card macro writes them
    if (avatar) {
      var words = (e.author || "").split(/\s+/).filter(Boolean);
      avatar.textContent = words.length ? (Array.from(words[0])[0] +
        (words.length > 1 ? Array.from(words[words.length - 1])[0] : "")).toUpperCase() : "";
      avatar.hidden = !words.length;
    }
    el.querySelectorAll("[data-entry-controls] a, [data-entry-controls] form").forEach(function (node) {
      var attr = node.tagName === "FORM" ? "action" : "href";
      node.setAttribute(attr, node.getAttribute(attr).replace(/\/entries\/\d+\//, "/entries/" + e.id + "/"));
      var shown = { pin: !e.pinned, unpin: e.pinned, key: !e.key, unkey: e.key }[node.dataset.action];
      if (shown !== undefined) node.hidden = !shown;
    });
    if (window.TrackerTimes) window.TrackerTimes.render(el);
    return el;
  }

  function newer(a, b) {  // does entry element a sort before (is newer than) b?
    return a.dataset.created > b.dataset.created ||
      (a.dataset.created === b.dataset.created && +a.dataset.id > +b.dataset.id);
  }

  function entriesInFeed() { return feed.querySelectorAll(":scope > article.entry"); }

  function insertSorted(el) {
    var items = entriesInFeed();
    for (var i = 0; i < items.length; i++) {
      if (items[i] !== el && (oldestFirst ? newer(items[i], el) : newer(el, items[i]))) {
        feed.insertBefore(el, items[i]);
        return;
      }
    }
    feed.appendChild(el);
  }

  // An entry belongs on this page if it is no older than the oldest one shown, or all are shown;
  // oldest first, if the page reaches the newest entries.
  function belongs(e) {
    if (!atHead || loadingOrder) return false;
    if (pinnedSlot && e.pinned) return true;
    if (oldestFirst) return !nextCursor;
    var items = entriesInFeed();
    var oldest = items[items.length - 1];
    return !nextCursor || !oldest || e.created_at > oldest.dataset.created ||
      (e.created_at === oldest.dataset.created && e.id > +oldest.dataset.id);
  }

  function place(el, e) {
    if (pinnedSlot && e.pinned && atHead) {
      var current = pinnedSlot.querySelector("article.entry");
      if (current && current !== el) {
        current.dataset.pinned = "0";
        placeInFeed(current, { id: +current.dataset.id, created_at: current.dataset.created });
      }
      pinnedSlot.appendChild(el);
      pinnedSlot.hidden = false;
      return;
    }
    placeInFeed(el, e);
  }

  function placeInFeed(el, e) {
    if (belongs({ id: e.id, created_at: e.created_at })) insertSorted(el); else el.remove();
    if (pinnedSlot) pinnedSlot.hidden = !pinnedSlot.querySelector("article.entry");
  }

  function updateKeyEvents(e) {
    if (!keyList) return;
    var item = keyList.querySelector('li[data-id="' + e.id + '"]');
    if (!e.key || e.deleted) {
      if (item) item.remove();
    } else {
      if (!item) {
        item = document.createElement("li");
        item.dataset.id = e.id;
        item.innerHTML = '<a><time data-format="time"></time> <span></span></a>';
        var before = Array.prototype.find.call(keyList.children, function (li) { return li.dataset.created < e.created_at; });
        keyList.insertBefore(item, before || null);
      }
      item.dataset.created = e.created_at;
      item.querySelector("a").href = elementFor(e.id) ? "#entry-" + e.id : e.url;
      item.querySelector("time").setAttribute("datetime", e.created_at);
      item.querySelector("span").textContent = excerpt(e);
      if (window.TrackerTimes) window.TrackerTimes.render(item);
    }
    root.querySelector("[data-key-empty]").hidden = keyList.children.length > 0;
    var count = root.querySelector("[data-key-count]");
    if (count) {
      count.textContent = "(" + keyList.children.length.toLocaleString(document.documentElement.lang || undefined) + ")";
      count.hidden = !keyList.children.length;
    }
  }

  function refreshEmpty() {
    var empty = root.querySelector("[data-entries-empty]");
    if (empty) empty.hidden = !!root.querySelector("article.entry:not([data-id='0'])");
  }

  // Reader attention: new entries never push the page while the reader is scrolled down (oldest
  // first they join the end, so they never push it).

  function scrolledDown() {
    return !editor && !embed && !oldestFirst && feed.getBoundingClientRect().top < 0;
  }

  function trim() {
    var items = entriesInFeed();
    for (var i = limit; limit && i < items.length; i++) {
      items[i].remove();
      nextCursor = nextCursor || "more";  // older entries now exist beyond the widget's list
    }
  }

  function updateCounters() {
    if (embed) return;
    if (newButton) {
      newButton.hidden = pending.size === 0;
      newButton.querySelector("[data-new-count]").textContent = pending.size;
      newButton.querySelector("[data-new-noun]").textContent = pending.size === 1 ? t("update") : t("updates");
    }
    var unread = pending.size + unseen;
    document.title = unread ? "(" + unread + ") " + baseTitle : baseTitle;
  }

  function announce(entries) {
    if (!announcer || !entries.length) return;
    announcer.textContent = entries.length === 1 ? t("New update: %(text)s", { text: excerpt(entries[0]) })
      : t("%(count)s new updates", { count: entries.length });
  }

  function showPending() {
    var states = Array.from(pending.values());
    pending.clear();
    states.forEach(function (e) { render(e); });
    updateCounters();
    if (states.length) feed.scrollIntoView({ block: "start" });
  }

  // Applying states: newest revision wins, so duplicates and reordering are harmless.

  function render(e) {
    var el = elementFor(e.id);
    if (e.deleted) {
      if (el) el.remove();
      if (pinnedSlot) pinnedSlot.hidden = !pinnedSlot.querySelector("article.entry");
    } else {
      var wasPinned = el && el.dataset.pinned === "1";
      el = fill(el || template.cloneNode(true), e);
      if (!el.parentNode || wasPinned !== e.pinned) place(el, e);
      trim();
    }
    updateKeyEvents(e);
    refreshEmpty();
  }

  function apply(e) {
    if (e.status && e.status !== "published") return null;  // the desk's (desk.js), never a reader's
    noteRev(e.rev);
    touched(e.updated_at);
    if (single !== null && e.id !== single) return null;
    var seen = revs.seen(e.id);
    if (!revs.fresh(e.id, e.rev)) return null;
    if (!elementFor(e.id) && !belongs(e)) offPage.set(e.id, e);
    // Only an entry that appears on this page is news; a change to an older one is not.
    var isNew = !seen && !e.deleted && belongs(e);
    if (oldestFirst && atHead && !elementFor(e.id) && (waiting.has(e.id) || (!isNew && e.created_at > newestAtLoad))) {
      if (e.deleted) waiting.delete(e.id); else waiting.add(e.id);
      labelOrder();
    }
    if (pending.has(e.id) || (isNew && scrolledDown())) {
      if (e.deleted) pending.delete(e.id); else pending.set(e.id, e);
      updateCounters();
      return isNew ? e : null;
    }
    render(e);
    if (isNew && document.hidden) { unseen += 1; updateCounters(); }
    return isNew && elementFor(e.id) ? e : null;
  }

  function setEnded(value) {
    ended = value;
    if (toggle) toggle.hidden = ended;
    setState(connection);
  }

  function applyStory(s) {
    noteRev(s.rev);
    if (s.rev <= storyRev) return;
    storyRev = s.rev;
    root.querySelectorAll("[data-story-title]").forEach(function (el) { el.textContent = s.title; });
    baseTitle = (editor ? t("Edit: %(title)s", { title: s.title }) : s.title) + " · Tracker";
    var summary = root.querySelector("[data-story-summary]");
    if (summary) { summary.textContent = s.summary; summary.hidden = !s.summary; }
    statusEl.textContent = s.status === "live" ? t("Live") : t("Ended");
    statusEl.className = "status status--" + s.status;
    var endedNote = root.querySelector("[data-story-ended]");
    if (endedNote) endedNote.hidden = s.status === "live";
    if ((s.status === "ended") !== ended) setEnded(s.status === "ended");
    var lead = root.querySelector("[data-story-lead]");
    if (lead && "image" in s && window.TrackerMedia) window.TrackerMedia.render(lead, s.image ? [s.image] : []);
    var uploaded = "image" in s ? s.image : lead && !lead.hidden;  // a join's story state leaves it out
    var image = root.querySelector("[data-story-image]");
    if (image) { image.hidden = !s.image_url || !!uploaded; if (s.image_url) image.src = s.image_url; }
    if (s.order && s.order !== root.dataset.order) {
      root.dataset.order = s.order;
      if (ordering && !storedOrder()) setOrder(s.order === "oldest", false);
    }
    touched(s.updated_at);
    updateCounters();
  }

  function touched(when) {
    var updated = root.querySelector("[data-story-updated]");
    if (!updated || !when || when <= updated.getAttribute("datetime")) return;
    updated.setAttribute("datetime", when);
    window.TrackerTimes.render(updated.parentNode);
  }

  // Connection: the bar says what is true. An ended story says so (corrections still arrive).

  var labels = {
    connecting: t("Connecting…"), live: t("Live: updates appear automatically"),
    reconnecting: t("Reconnecting…"), offline: t("Offline: the page will catch up when the connection is back"),
    paused: t("Live updates paused"), ended: t("Coverage ended")
  };

  function setState(state, detail) {
    connection = state;
    if (!stateEl) return;
    if (ended && !detail && (state === "live" || state === "connecting")) state = "ended";
    stateEl.dataset.connection = state;
    stateEl.textContent = detail || labels[state];
  }

  function disconnected() {
    setState(!live ? "paused" : navigator.onLine === false ? "offline" : "reconnecting");
  }

  // Reconnection uses socket.io's exponential backoff with jitter (randomizationFactor).
  var socket = io({ transports: ["websocket", "polling"], tryAllTransports: true,
                    reconnectionDelay: 1000, reconnectionDelayMax: 15000, randomizationFactor: 0.5 });
  window.trackerSocket = socket;
  setState("connecting");

  // A refused join (the server could not read the story just now) is tried again with the
  // same backoff as reconnecting: 1 s doubling to 15 s, +-50 %.
  var joinFailures = 0, joinRetry = null;
  function retryJoin() {
    clearTimeout(joinRetry);
    var delay = Math.min(15000, 1000 * Math.pow(2, joinFailures++)) * (0.5 + Math.random());
    joinRetry = setTimeout(function () { if (live && socket.connected) join(); }, delay);
  }

  // When the browser says the network is back, or the reader comes back to the tab, there is no
  // point waiting out the backoff timer: connect (and so catch up) at once.
  function reconnectNow() {
    if (!live || socket.connected) return;
    setState("connecting");
    socket.disconnect();  // also drops the manager's pending attempt and resets its backoff
    socket.connect();
  }

  function join() {
    socket.timeout(10000).emit("join", { story: slug, since: revs.held }, function (err, ack) {
      if (err) { socket.disconnect().connect(); return; }
      if (!ack.ok) { setState("offline", ack.error); retryJoin(); return; }
      joinFailures = 0;
      clearTimeout(joinRetry);
      // Too far behind to replay, or the server's history was reset: start from a fresh page.
      if (ack.reset || ack.rev < revs.held) { window.location.reload(); return; }
      applyStory(ack.story);
      root.dispatchEvent(new CustomEvent("tracker:readers", { detail: ack.readers }));
      var fresh = ack.entries.map(function (e) { return apply(e); }).filter(Boolean);
      if (ack.next_after_rev == null) { finishJoin(ack.rev, fresh); return; }
      catchUp(ack.next_after_rev, ack.rev, fresh);
    });
  }

  // A reader far behind gets the rest of the changes in pages over HTTP, oldest first; live
  // events that arrive meanwhile are applied as usual (each entry keeps its newest revision).
  function catchUp(after, target, fresh) {
    var url = "/api/stories/" + encodeURIComponent(slug) + "/entries?limit=100&after_rev=" + after;
    fetch(url, { headers: { Accept: "application/json" }, credentials: "omit" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (page) {
        page.entries.forEach(function (e) { var f = apply(e); if (f) fresh.push(f); });
        if (page.next_after_rev == null) finishJoin(target, fresh);
        else catchUp(page.next_after_rev, target, fresh);
      })
      .catch(function () { setState("offline"); retryJoin(); });
  }

  function finishJoin(target, fresh) {
    revs.caughtUp(target);
    root.dataset.rev = revs.held;
    announce(fresh);
    setState("live");
  }

  socket.on("connect", join);
  socket.on("disconnect", disconnected);
  socket.on("connect_error", disconnected);
  socket.io.on("reconnect_attempt", function () { setState(navigator.onLine === false ? "offline" : "reconnecting"); });
  socket.on("entry", function (e) {
    if (e.story !== slug) return;
    var fresh = apply(e);
    root.dataset.rev = revs.held;
    if (fresh) announce([fresh]);
  });
  socket.on("story", function (s) { if (s.slug === slug) { applyStory(s); root.dataset.rev = revs.held; } });
  socket.on("rev", function (beacon) { if (beacon.story === slug) resyncIfStillBehind(beacon.rev); });

  window.addEventListener("online", reconnectNow);
  window.addEventListener("offline", function () {
    // The connection is most likely gone with the network: say so now, and let the socket notice
    // (it reconnects with backoff, or at once when the network is back) rather than trust it.
    if (!live) return;
    setState("offline");
    if (socket.io.engine) socket.io.engine.close();
  });

  if (toggle) {
    toggle.hidden = ended;
    toggle.textContent = t("Pause live updates");
    toggle.addEventListener("click", function () {
      live = !live;
      toggle.setAttribute("aria-pressed", String(live));
      toggle.textContent = live ? t("Pause live updates") : t("Resume live updates");
      if (live) { setState("connecting"); socket.connect(); } else { socket.disconnect(); setState("paused"); }
    });
  }
  if (newButton) newButton.addEventListener("click", showPending);
  window.addEventListener("scroll", function () { if (pending.size && !scrolledDown()) showPending(); }, { passive: true });
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) return;
    unseen = 0;
    updateCounters();
    reconnectNow();
  });

  // Pages of entries as JSON: older ones newest first (`before`), or oldest first (`after`).
  function fetchPage(query) {
    var url = "/stories/" + encodeURIComponent(slug) + "/entries?" + query + (editor ? "&pinned=1" : "");
    return fetch(url, { headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(r.statusText); return r.json(); });
  }

  // Entries that changed live while not on the page, which now belong on it (published while a
  // page was loading, or the end of an oldest-first feed reached).
  function showBelonging() {
    offPage.forEach(function (e) {
      if (e.deleted || elementFor(e.id) || !belongs(e)) return;
      offPage.delete(e.id);
      render(e);
    });
  }

  function addPage(page) {
    page.entries.forEach(function (e) {
      // A state that arrived live while the page was loading is newer: show that one.
      var newest = offPage.get(e.id);
      if (newest && newest.rev > e.rev) e = newest;
      offPage.delete(e.id);
      if (e.deleted || elementFor(e.id)) return;
      revs.fresh(e.id, e.rev);
      feed.appendChild(fill(template.cloneNode(true), e));
    });
    nextCursor = page.next;
    if (older) older.parentNode.hidden = !nextCursor;
    waiting.forEach(function (id) { if (elementFor(id) || !nextCursor) waiting.delete(id); });
    labelOrder();
    showBelonging();
    refreshEmpty();
  }

  // Load older entries by cursor (the link works without JavaScript too); oldest first, newer ones.
  if (older) {
    older.addEventListener("click", function (event) {
      event.preventDefault();
      if (!nextCursor || loadingOrder) return;
      fetchPage(oldestFirst ? "order=oldest&after=" + nextCursor : "before=" + nextCursor)
        .then(addPage)
        .catch(function () { older.textContent = t("Could not load more updates. Try again"); });
    });
  }

  // Reading order

  function storedOrder() {
    try { return window.localStorage.getItem(orderKey); } catch (e) { return null; }
  }

  function labelOrder() {
    if (orderToggle) orderToggle.textContent = oldestFirst ? t("Newest first") : t("Oldest first");
    if (!older) return;
    older.textContent = !oldestFirst ? t("Load older updates")
      : waiting.size ? t("Load more updates (%(count)s new)", { count: waiting.size }) : t("Load more updates");
  }

  // Show the feed in the other order: all of it is on the page, so reverse it; otherwise load the
  // first page in that order from the server (it replaces the feed).
  function setOrder(oldest, remember) {
    if (remember) {
      try { window.localStorage.setItem(orderKey, oldest ? "oldest" : "newest"); } catch (e) { /* not kept */ }
    }
    if (oldest === oldestFirst || loadingOrder) return;
    if (pending.size) showPending();
    waiting.clear();
    oldestFirst = oldest;
    root.dataset.showing = oldest ? "oldest" : "newest";
    labelOrder();
    if (!nextCursor) {
      var items = Array.from(entriesInFeed()).reverse();
      items.forEach(function (el) { feed.appendChild(el); });
      root.dispatchEvent(new CustomEvent("tracker:order", { detail: { oldest: oldest } }));
      return;
    }
    loadingOrder = true;
    feed.setAttribute("aria-busy", "true");
    feed.style.visibility = "hidden";  // not the old order for a moment: the new one is on its way
    fetchPage(oldest ? "order=oldest" : "order=newest").then(function (page) {
      entriesInFeed().forEach(function (el) { el.remove(); });
      loadingOrder = false;
      addPage(page);
      root.dispatchEvent(new CustomEvent("tracker:order", { detail: { oldest: oldest } }));
    }).catch(function () {
      loadingOrder = false;  // the page stays as it was, in the order it was
      oldestFirst = !oldest;
      root.dataset.showing = oldestFirst ? "oldest" : "newest";
      labelOrder();
      showBelonging();
    }).then(function () {
      feed.removeAttribute("aria-busy");
      feed.style.visibility = "";
    });
  }

  if (ordering) {
    orderToggle.hidden = false;
    labelOrder();
    orderToggle.addEventListener("click", function () { setOrder(!oldestFirst, true); });
    setOrder((storedOrder() || root.dataset.order) === "oldest", false);
  }

  // Editor: entry controls act without a page reload (the forms work without JavaScript too);
  // changes made by the composer and the desk arrive as `tracker:entry` events.
  root.addEventListener("tracker:entry", function (event) {
    var fresh = apply(event.detail);
    if (fresh) announce([fresh]);
  });

  root.addEventListener("submit", function (event) {
    var form = event.target.closest(".js-action");
    if (!form || form.closest("[data-desk]")) return;
    event.preventDefault();
    if (form.dataset.action === "delete" && !window.confirm(t("Delete this update? Readers will no longer see it."))) return;
    window.TrackerForms.post(form).then(function (data) {
      if (data.ok) apply(data.entry); else window.alert(data.error);
    }).catch(function () { window.alert(t("Connection problem: nothing was changed. Try again.")); });
  });
})();
