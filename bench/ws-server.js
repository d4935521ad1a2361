// A plain broadcast server on Node's `ws` package, the comparison point for
// `make bench-compare`. It speaks just enough of natter's WebSocket JSON
// protocol (docs/PROTOCOL.md) for examples/loadgen.rs:
//
//   GET /ws?nick=NICK&room=ROOM    -> {"type":"welcome",...} then {"type":"joined",...}
//   {"type":"join","room":R}       -> {"type":"joined",...}
//   {"type":"say","room":R,"text":T[,"cid":C][,"ref":F]}
//                                  -> {"type":"message","room":R,"seq":N,"ts":MS,"from":NICK,"text":T}
//                                     to every member of R, the sender included (its
//                                     acknowledgement; with its cid and ref when it gave them)
//
// Per room a seq counter and a set of members; each message is rendered
// once (one JSON.stringify, one Buffer) and that buffer is sent to every
// member, as natter renders once. Nothing is stored: natter commits every
// message to SQLite before sending it; this server keeps no history at all.
// No presence, no flood control, no nick checks.
//
//   node bench/ws-server.js [--host 127.0.0.1] [--port 0]
//
// First stdout line: `ws listening on HOST:PORT` (the real port for 0).

'use strict';

const { WebSocketServer } = require('ws');

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

const host = arg('--host', '127.0.0.1');
const port = Number(arg('--port', '0'));

/** room name -> { seq, members: Set<ws> } */
const rooms = new Map();
let anon = 0;

function room(name) {
  let r = rooms.get(name);
  if (!r) {
    r = { seq: 0, members: new Set() };
    rooms.set(name, r);
  }
  return r;
}

function join(ws, name) {
  const r = room(name);
  r.members.add(ws);
  ws.rooms.add(name);
  const members = [];
  for (const m of r.members) members.push(m.nick);
  ws.send(JSON.stringify({
    type: 'joined', room: name, members, messages: [], last_seq: r.seq,
  }));
}

function error(ws, code, ref) {
  const e = { type: 'error', code, message: code };
  if (ref !== undefined) e.ref = ref;
  ws.send(JSON.stringify(e));
}

const wss = new WebSocketServer({
  host, port, path: '/ws', perMessageDeflate: false, clientTracking: false,
});

wss.on('listening', () => {
  const a = wss.address();
  process.stdout.write(`ws listening on ${a.address}:${a.port}\n`);
});

wss.on('connection', (ws, req) => {
  const q = new URL(req.url, 'http://x').searchParams;
  ws.nick = q.get('nick') || `anon-${++anon}`;
  ws.rooms = new Set();
  ws.send(JSON.stringify({ type: 'welcome', nick: ws.nick, server: 'ws-bench' }));
  const first = q.get('room');
  if (first) join(ws, first);

  ws.on('message', (data, isBinary) => {
    if (isBinary) return ws.close(1003);
    let m;
    try {
      m = JSON.parse(data);
    } catch {
      return error(ws, 'bad_request');
    }
    if (m === null || typeof m !== 'object') return error(ws, 'bad_request');
    if (m.type === 'say') {
      if (typeof m.room !== 'string' || typeof m.text !== 'string') {
        return error(ws, 'bad_request', m.ref);
      }
      const r = rooms.get(m.room);
      if (!r || !r.members.has(ws)) return error(ws, 'not_member', m.ref);
      const msg = {
        type: 'message', room: m.room, seq: ++r.seq, ts: Date.now(), from: ws.nick, text: m.text,
      };
      const out = Buffer.from(JSON.stringify(msg)); // rendered once for the room
      let own = out;
      if (m.cid !== undefined || m.ref !== undefined) {
        if (m.cid !== undefined) msg.cid = m.cid;
        if (m.ref !== undefined) msg.ref = m.ref;
        own = Buffer.from(JSON.stringify(msg));
      }
      for (const peer of r.members) {
        peer.send(peer === ws ? own : out, { binary: false });
      }
    } else if (m.type === 'join') {
      if (typeof m.room !== 'string') return error(ws, 'bad_request', m.ref);
      join(ws, m.room);
    } else {
      error(ws, 'unsupported', m.ref);
    }
  });

  ws.on('close', () => {
    for (const name of ws.rooms) {
      const r = rooms.get(name);
      if (r) r.members.delete(ws);
    }
  });
  ws.on('error', () => {});
});

for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
