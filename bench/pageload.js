#!/usr/bin/env node
// Page-load generator: C keep-alive connections, each asking for one URL back to back for D seconds.
//
//   node pageload.js --url http://127.0.0.1:8080/stories/bench [--connections 20] [--duration 10]
//        [--header 'Cookie: session=x'] [--warmup 1]
//
// Prints one line, "PAGELOAD {json}": requests, requests per second, the answers by status
// (200, 304, other), by X-Cache (nginx's $upstream_cache_status, where sent), transport errors,
// bytes, and latency p50/p90/p99/max in ms. Requests of the first --warmup seconds are not counted.
// Plain GETs without If-None-Match, as a reader arriving from a link makes them.
'use strict';
const http = require('http');
const { performance } = require('perf_hooks');

function parseArgs(argv) {
  const o = { connections: 20, duration: 10, warmup: 1, headers: {} };
  for (let i = 2; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, ''), v = argv[i + 1];
    if (k === 'url') o.url = v;
    else if (k === 'connections') o.connections = parseInt(v, 10);
    else if (k === 'duration') o.duration = parseFloat(v);
    else if (k === 'warmup') o.warmup = parseFloat(v);
    else if (k === 'header') { const c = v.indexOf(':'); o.headers[v.slice(0, c).trim()] = v.slice(c + 1).trim(); }
    else throw new Error(`unknown option ${argv[i]}`);
  }
  if (!o.url) throw new Error('--url is required');
  return o;
}

const opts = parseArgs(process.argv);
const url = new URL(opts.url);
const agent = new http.Agent({ keepAlive: true, maxSockets: opts.connections, maxFreeSockets: opts.connections });
const startAt = performance.now();
const countFrom = startAt + opts.warmup * 1000;
const stopAt = countFrom + opts.duration * 1000;
const lat = [];
const status = { 200: 0, 304: 0, other: 0 };
const cache = {};
const errors = {};
let bytes = 0, requests = 0, running = opts.connections;

function one(done) {
  const t = performance.now();
  const req = http.request({ host: url.hostname, port: url.port, path: url.pathname + url.search, agent,
                             headers: opts.headers }, (res) => {
    let n = 0;
    res.on('data', (chunk) => { n += chunk.length; });
    res.on('end', () => {
      const end = performance.now();
      if (t >= countFrom && end <= stopAt) {
        requests++;
        bytes += n;
        lat.push(end - t);
        const key = res.statusCode === 200 || res.statusCode === 304 ? res.statusCode : 'other';
        status[key]++;
        const xc = res.headers['x-cache'];
        if (xc) cache[xc] = (cache[xc] || 0) + 1;
      }
      done();
    });
  });
  req.on('error', (e) => {
    const key = e.code || e.message;
    errors[key] = (errors[key] || 0) + 1;
    setTimeout(done, 10); // do not spin on a refused connection
  });
  req.end();
}

function loop() {
  if (performance.now() >= stopAt) { if (--running === 0) report(); return; }
  one(loop);
}

function quantile(sorted, q) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

function report() {
  lat.sort((a, b) => a - b);
  const r = {
    url: opts.url, connections: opts.connections, duration_s: opts.duration, requests,
    per_s: Math.round(requests / opts.duration * 10) / 10, status, x_cache: cache, errors, bytes,
    latency_ms: { p50: quantile(lat, 0.5), p90: quantile(lat, 0.9), p99: quantile(lat, 0.99),
                  max: lat.length ? lat[lat.length - 1] : null },
  };
  process.stdout.write('PAGELOAD ' + JSON.stringify(r) + '\n', () => process.exit(0));
}

for (let i = 0; i < opts.connections; i++) loop();
