// The live page's revision logic (static/js/revisions.js), in Node: `node --test tests/js` (make test runs it).
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const { Revisions } = require("../../static/js/revisions.js");

test("revisions in order move the held revision along", () => {
  const revs = new Revisions(5);
  assert.equal(revs.note(6), 0);
  assert.equal(revs.note(7), 0);
  assert.equal(revs.held, 7);
});

test("a revision that arrives early waits until the gap below it closes", () => {
  const revs = new Revisions(5);
  assert.equal(revs.note(8), 8, "a gap at 6 and 7: the page should rejoin if it stays open");
  assert.equal(revs.note(7), 8);
  assert.equal(revs.held, 5, "never skips the missing 6");
  assert.equal(revs.note(6), 0);
  assert.equal(revs.held, 8);
});

test("duplicates and revisions already held change nothing", () => {
  const revs = new Revisions(5);
  assert.equal(revs.note(3), 0);
  assert.equal(revs.note(5), 0);
  revs.note(6);
  revs.note(6);
  assert.equal(revs.held, 6);
  assert.equal(revs.early.size, 0);
});

test("a join's catch-up closes every gap below what it brought", () => {
  const revs = new Revisions(5);
  revs.note(9);
  revs.note(12);
  revs.caughtUp(10);
  assert.equal(revs.held, 10, "9 is covered; 11 is still missing, so 12 waits");
  assert.deepEqual(Array.from(revs.early), [12]);
  assert.equal(revs.note(11), 0);
  assert.equal(revs.held, 12);
});

test("a catch-up behind what is held never moves it back", () => {
  const revs = new Revisions(20);
  revs.caughtUp(15);
  assert.equal(revs.held, 20);
});

test("an entry's older or repeated states are not applied", () => {
  const revs = new Revisions(0);
  assert.equal(revs.fresh(7, 3), true);
  assert.equal(revs.fresh(7, 3), false, "a duplicate");
  assert.equal(revs.fresh(7, 2), false, "an older state, arriving late");
  assert.equal(revs.fresh(7, 9), true);
  assert.equal(revs.seen(7), true);
  assert.equal(revs.seen(8), false);
});
