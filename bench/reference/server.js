#!/usr/bin/env node
// Reference fan-out server: plain Node socket.io with Tracker's event shape, no database.
//   node reference/server.js --port 5100 [--host 127.0.0.1]
// join {story, since} -> room "story:<slug>", ack {ok, rev, story: {slug}, entries: [published after since]}
// POST /publish with a JSON entry body (must have "story" and "rev") -> kept in memory (the
// catch-up of later joins), emitted as "entry" to the room, 200.
'use strict';
const http = require('http');
const { Server } = require('socket.io');

let port = 5100, host = '127.0.0.1';
for (let i = 2; i < process.argv.length; i += 2) {
  if (process.argv[i] === '--port') port = parseInt(process.argv[i + 1], 10);
  else if (process.argv[i] === '--host') host = process.argv[i + 1];
}

const published = {};  // story -> entries in publish order

const server = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/publish') {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let body;
      try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch (e) { body = null; }
      if (!body || typeof body.story !== 'string') {
        res.writeHead(400, { 'Content-Type': 'application/json' });
        res.end('{"ok":false,"error":"JSON body with \\"story\\" expected"}');
        return;
      }
      (published[body.story] = published[body.story] || []).push(body);
      io.to('story:' + body.story).emit('entry', body);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"ok":true}');
    });
    return;
  }
  if (req.method === 'GET' && req.url === '/health') { res.writeHead(200); res.end('ok'); return; }
  if (req.url.startsWith('/socket.io/')) return; // handled by engine.io
  res.writeHead(404); res.end();
});

// Flask-SocketIO / python-engineio defaults: ping_interval 25 s, ping_timeout 20 s;
// socket.io's defaults are the same (25000 / 20000), stated explicitly here.
const io = new Server(server, { pingInterval: 25000, pingTimeout: 20000, serveClient: false });

io.on('connection', (socket) => {
  socket.on('join', (data, ack) => {
    if (typeof ack !== 'function') return;
    if (!data || typeof data.story !== 'string' || !data.story) {
      ack({ ok: false, error: 'join expects an object like {"story": "slug", "since": 0}.' });
      return;
    }
    socket.join('story:' + data.story);
    const all = published[data.story] || [];
    const since = Number.isInteger(data.since) ? data.since : 0;
    ack({ ok: true, rev: all.length ? all[all.length - 1].rev : 0, story: { slug: data.story },
          entries: all.filter((e) => e.rev > since).slice(-500) });
  });
  socket.on('leave', (data) => { if (data && typeof data.story === 'string') socket.leave('story:' + data.story); });
});

server.listen({ port, host, backlog: 4096 }, () => {
  console.log(`reference serving on http://${host}:${port}`);
});
