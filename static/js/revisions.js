// A live page's revision bookkeeping (README, "Event protocol"), with no DOM: live.js uses it in
// the browser and tests/js/revisions.test.js in Node.
//   held:  every change up to this revision is on the page; the next join asks from it.
//   early: later revisions that arrived before one below them; they wait until the gap closes.
//   entries: each entry's newest revision applied, so duplicates and reordering are harmless.
(function (exports) {
  "use strict";

  function Revisions(held) {
    this.held = held || 0;
    this.early = new Set();
    this.entries = new Map();
  }

  // Count a revision that arrived live. Answers the newest revision still waiting behind a gap
  // (the page should join again if it is still open a moment later), or 0 when there is none.
  Revisions.prototype.note = function (rev) {
    if (rev > this.held) this.early.add(rev);
    this.close();
    return this.early.size ? Math.max.apply(null, Array.from(this.early)) : 0;
  };

  // A join (and any catch-up pages after it) brought everything up to `rev`.
  Revisions.prototype.caughtUp = function (rev) {
    if (rev > this.held) this.held = rev;
    this.close();
  };

  Revisions.prototype.close = function () {
    var self = this;
    this.early.forEach(function (rev) { if (rev <= self.held) self.early.delete(rev); });
    while (this.early.has(this.held + 1)) { this.early.delete(this.held + 1); this.held += 1; }
  };

  // Is this state of an entry newer than the one applied? If so it is recorded as applied.
  Revisions.prototype.fresh = function (id, rev) {
    var have = this.entries.get(id);
    if (have !== undefined && have >= rev) return false;
    this.entries.set(id, rev);
    return true;
  };

  // Was this entry seen at all (in any state)?
  Revisions.prototype.seen = function (id) { return this.entries.has(id); };

  exports.Revisions = Revisions;
})(typeof module === "object" && module.exports ? module.exports : (window.TrackerRevisions = {}));
