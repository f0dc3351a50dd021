#!/usr/bin/env node
// Fan-out load client: N raw-websocket readers speaking Engine.IO v4 / Socket.IO v5 text frames.
//
//   node loadclient.js --url ws://127.0.0.1:5000/socket.io/?EIO=4&transport=websocket \
//        --readers 1000 --story slug [--since rev] [--concurrency 200] [--connect-timeout 120]
//        [--local-addresses 127.0.1.1,127.0.2.1,...]
// Readers join with `since` (default 0), as a page rendered at that revision does.
// --local-addresses: reader i connects from address i % n of the list (all of 127/8 is loopback
// on Linux), so that a proxy hashing the client address (nginx ip_hash) sees many clients.
//
// Protocol with the parent (one line each, on stdout / stdin):
//   stdout "READY {json}"          all readers joined (or failed); json has connect stats
//   stdin  "collect {json}"        json = {"publish": {"<seq>": <publish ms since epoch>, ...},
//                                          "timeout": <seconds>}; the client waits until every
//                                  joined reader has every seq (or the timeout), then
//   stdout "RESULT {json}"         and keeps the readers open.
//   stdin  "storm {json}"          json = {"seq": <seq>, "timeout": <seconds>}: the server is about
//                                  to restart; every reader reconnects with the reader page's
//                                  backoff (1 s doubling to 15 s, +-50 % jitter), joins again with
//                                  the last revision it saw, and counts as caught up once it has
//                                  entry <seq> (live or in the join ack's catch-up); then
//   stdout "STORM {json}"          and exits.
// Entries are identified by a headline "bench #<seq>". Receive times are
// performance.timeOrigin + performance.now() (ms since epoch, sub-ms resolution).
'use strict';
const WebSocket = require('ws');
const { performance } = require('perf_hooks');
const readline = require('readline');

function parseArgs(argv) {
  const o = { concurrency: 200, connectTimeout: 120, readers: 10, story: 'bench', since: 0 };
  for (let i = 2; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, ''), v = argv[i + 1];
    if (k === 'url') o.url = v;
    else if (k === 'readers') o.readers = parseInt(v, 10);
    else if (k === 'story') o.story = v;
    else if (k === 'since') o.since = parseInt(v, 10);
    else if (k === 'concurrency') o.concurrency = parseInt(v, 10);
    else if (k === 'connect-timeout') o.connectTimeout = parseFloat(v);
    else if (k === 'local-addresses') o.localAddresses = v.split(',').map((a) => a.trim()).filter(Boolean);
    else throw new Error(`unknown option ${argv[i]}`);
  }
  if (!o.url) throw new Error('--url is required');
  return o;
}

const opts = parseArgs(process.argv);
const now = () => performance.timeOrigin + performance.now();
const SEQ_RE = /"headline"\s*:\s*"bench #(\d+)/;
const REV_RE = /"rev"\s*:\s*(\d+)/;

const readers = [];            // {ws, joined, seqs: Map(seq -> t)}
const errors = {};             // message -> count
let joined = 0, failed = 0, dropped = 0, started = 0, settled = 0, duplicates = 0, unmatched = 0;
let firstJoinAt = null, lastJoinAt = null;
const t0 = now();
let readyPrinted = false;
let collectState = null;       // {publish, expectedSeqs, deadline}
let stormState = null;         // {seq, start, caughtUp, rejoinMs: [], attempts}

function countError(msg) { errors[msg] = (errors[msg] || 0) + 1; }

function settle(r, ok, why) {
  if (r.settled) return;
  r.settled = true;
  settled++;
  if (ok) { joined++; r.joined = true; lastJoinAt = now(); if (firstJoinAt === null) firstJoinAt = lastJoinAt; }
  else { failed++; countError(why); }
  if (started < opts.readers) openOne();
  maybeReady();
}

function maybeReady() {
  if (readyPrinted || settled < opts.readers) return;
  readyPrinted = true;
  clearTimeout(connectTimer);
  process.stdout.write('READY ' + JSON.stringify(connectStats()) + '\n');
}

function connectStats() {
  return {
    requested: opts.readers, joined, failed, dropped, errors,
    connect_all_ms: lastJoinAt === null ? null : lastJoinAt - t0,
  };
}

function openOne() {
  const r = { joined: false, settled: false, seqs: new Map(), rev: opts.since, index: started };
  started++;
  readers.push(r);
  connect(r);
}

function connect(r) {
  let ws;
  try {
    // Offers compression, as every browser does: a server that accepts it keeps a compressor per reader.
    const wsOpts = { perMessageDeflate: true, handshakeTimeout: 60000 };
    if (opts.localAddresses && opts.localAddresses.length) {
      wsOpts.localAddress = opts.localAddresses[r.index % opts.localAddresses.length];
    }
    ws = new WebSocket(opts.url, wsOpts);
  } catch (e) { settle(r, false, 'construct: ' + e.message); return; }
  r.ws = ws;
  let stage = 0; // 0 await open packet, 1 await 40, 2 await 430 ack, 3 joined
  ws.on('message', (data) => {
    const s = data.toString();
    const type = s.charCodeAt(0);
    if (type === 0x32 /* '2' ping */ && s.length === 1) { ws.send('3'); return; }
    if (stage === 3) {
      if (s.startsWith('42["entry"')) {
        const t = now();
        const m = SEQ_RE.exec(s);
        if (!m) { unmatched++; return; }
        const seq = +m[1];
        r.rev = Math.max(r.rev, +REV_RE.exec(s)[1]);
        if (r.seqs.has(seq)) duplicates++;
        else r.seqs.set(seq, t);
        if (stormState) checkStorm(r);
        else if (collectState) checkCollectDone();
      }
      return; // other events ("rev", "story") are ignored
    }
    if (stage === 0 && s[0] === '0') { stage = 1; ws.send('40'); return; }
    if (stage === 1 && s.startsWith('40')) {
      stage = 2;
      ws.send('420' + JSON.stringify(['join', { story: opts.story, since: r.rev }]));
      return;
    }
    if (stage === 1 && s.startsWith('44')) { settle(r, false, 'connect refused: ' + s.slice(0, 120)); ws.terminate(); return; }
    if (stage === 2 && s.startsWith('430')) {
      let ack;
      try { ack = JSON.parse(s.slice(3))[0]; } catch (e) { ack = null; }
      if (ack && ack.ok) {
        stage = 3;
        r.rev = Math.max(r.rev, ack.rev || 0);
        for (const e of ack.entries || []) {
          const m = /^bench #(\d+)/.exec(e.headline || '');
          if (m && !r.seqs.has(+m[1])) r.seqs.set(+m[1], now());
          r.rev = Math.max(r.rev, e.rev || 0);
        }
        if (r.storming) { r.storming = false; stormState.rejoinMs.push(now() - stormState.start); checkStorm(r); }
        else settle(r, true);
      } else if (r.storming) { countError('rejoin nack: ' + s.slice(0, 120)); ws.terminate(); }
      else { settle(r, false, 'join nack: ' + s.slice(0, 120)); ws.terminate(); }
    }
  });
  ws.on('error', (e) => {
    if (!r.settled) settle(r, false, 'ws error: ' + (e.code || e.message));
    else if (r.joined && !stormState) countError('ws error after join: ' + (e.code || e.message));
  });
  ws.on('close', (code) => {
    if (!r.settled) settle(r, false, 'closed before join: ' + code);
    else if (stormState && r.joined && !shuttingDown) reconnectLater(r);
    else if (r.joined && !shuttingDown) { dropped++; countError('closed after join: ' + code); }
  });
}

// The reader page's settings (static/js/live.js): reconnectionDelay 1000, reconnectionDelayMax
// 15000, randomizationFactor 0.5, i.e. 1, 2, 4, 8, 15 s, each +-50 %.
function reconnectLater(r) {
  r.storming = true;
  const base = Math.min(1000 * Math.pow(2, r.attempts || 0), 15000);
  r.attempts = (r.attempts || 0) + 1;
  stormState.attempts++;
  setTimeout(() => connect(r), base * (1 + (Math.random() * 2 - 1) * 0.5));
}

function checkStorm(r) {
  if (r.caughtUp || r.storming || !r.seqs.has(stormState.seq)) return;
  r.caughtUp = true;
  stormState.caughtUpMs.push(now() - stormState.start);
  if (stormState.caughtUpMs.length === joined) finishStorm();
}

function finishStorm() {
  if (stormState.done) return;
  stormState.done = true;
  clearTimeout(stormState.timer);
  const caught = stormState.caughtUpMs.slice().sort((a, b) => a - b);
  const rejoin = stormState.rejoinMs.slice().sort((a, b) => a - b);
  const res = {
    readers: joined, caught_up: caught.length, rejoined: rejoin.length, attempts: stormState.attempts, errors,
    caught_up_all_ms: caught.length === joined ? caught[caught.length - 1] : null,
    caught_up_ms: { p50: quantile(caught, 0.5), p99: quantile(caught, 0.99), max: caught.length ? caught[caught.length - 1] : null },
    rejoin_ms: { p50: quantile(rejoin, 0.5), p99: quantile(rejoin, 0.99), max: rejoin.length ? rejoin[rejoin.length - 1] : null },
  };
  shuttingDown = true;
  process.stdout.write('STORM ' + JSON.stringify(res) + '\n', () => {
    for (const r of readers) if (r.ws) r.ws.terminate();
    process.exit(0);
  });
}

let shuttingDown = false;
const connectTimer = setTimeout(() => {
  // Give up on readers still handshaking; report what we have.
  for (const r of readers) if (!r.settled) { settle(r, false, 'connect timeout'); }
  while (started < opts.readers) { const r = { settled: false, seqs: new Map() }; started++; readers.push(r); settle(r, false, 'not started (connect timeout)'); }
  maybeReady();
}, opts.connectTimeout * 1000);

for (let i = 0; i < Math.min(opts.concurrency, opts.readers); i++) openOne();

function quantile(sorted, q) {
  if (!sorted.length) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

function checkCollectDone(force) {
  if (!collectState || collectState.done) return;
  if (!force) {
    const need = collectState.expectedSeqs.length;
    for (const r of readers) if (r.joined && r.seqs.size < need) return;
  }
  collectState.done = true;
  clearTimeout(collectState.timer);
  finish();
}

function finish() {
  const { publish, expectedSeqs } = collectState;
  const lat = [];
  const perEntry = {};
  let received = 0, extra = 0;
  for (const seq of expectedSeqs) {
    const p = publish[seq];
    const arr = [];
    for (const r of readers) {
      if (!r.joined) continue;
      const t = r.seqs.get(seq);
      if (t !== undefined) arr.push(t - p);
    }
    received += arr.length;
    arr.sort((a, b) => a - b);
    perEntry[seq] = { n: arr.length, p50: quantile(arr, 0.5), p99: quantile(arr, 0.99), max: arr.length ? arr[arr.length - 1] : null };
    for (const v of arr) lat.push(v);
  }
  for (const r of readers) for (const seq of r.seqs.keys()) if (!(seq in publish)) extra++;
  lat.sort((a, b) => a - b);
  const res = Object.assign(connectStats(), {
    entries: expectedSeqs.length,
    expected: opts.readers * expectedSeqs.length,
    received, lost: opts.readers * expectedSeqs.length - received,
    duplicates, unmatched, unexpected: extra,
    latency_ms: { p50: quantile(lat, 0.5), p90: quantile(lat, 0.9), p99: quantile(lat, 0.99), max: lat.length ? lat[lat.length - 1] : null, min: lat.length ? lat[0] : null },
    per_entry: perEntry,
  });
  process.stdout.write('RESULT ' + JSON.stringify(res) + '\n');
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const sp = line.indexOf(' ');
  const cmd = sp < 0 ? line : line.slice(0, sp);
  if (cmd === 'collect') {
    const arg = JSON.parse(line.slice(sp + 1));
    const publish = {};
    for (const [k, v] of Object.entries(arg.publish)) publish[+k] = v;
    collectState = { publish, expectedSeqs: Object.keys(publish).map(Number), done: false };
    collectState.timer = setTimeout(() => checkCollectDone(true), (arg.timeout || 30) * 1000);
    checkCollectDone();
  } else if (cmd === 'storm') {
    const arg = JSON.parse(line.slice(sp + 1));
    for (const k of Object.keys(errors)) delete errors[k];
    stormState = { seq: arg.seq, start: now(), caughtUpMs: [], rejoinMs: [], attempts: 0, done: false };
    stormState.timer = setTimeout(finishStorm, (arg.timeout || 60) * 1000);
  } else if (cmd === 'stats') {
    process.stdout.write('STATS ' + JSON.stringify(connectStats()) + '\n');
  } else if (cmd === 'quit') {
    shuttingDown = true;
    process.exit(0);
  }
});
rl.on('close', () => { if (!collectState) { shuttingDown = true; process.exit(0); } });
