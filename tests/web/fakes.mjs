// Stand-ins for what the browser gives the page's pure modules: a
// WebSocket the test plays the server for, timers on a clock the test moves
// by hand, and Storage.

// A WebSocket as protocol.js uses it. The test plays the server: accept()
// (the handshake is done), receive(msg) (a frame from the server),
// drop(code) (the connection closes). `sent` holds what the page sent,
// parsed; `closedWith` the code the page closed it with (null: none given).
export class FakeSocket {
  constructor(url) {
    this.url = url;
    this.readyState = 0; // CONNECTING
    this.sent = [];
    this.closedWith = undefined;
    this.onmessage = null;
    this.onclose = null;
    this.onerror = null;
  }

  send(text) {
    if (this.readyState !== 1) throw new Error('InvalidStateError: not open');
    this.sent.push(JSON.parse(text));
  }

  close(code) {
    this.closedWith = code === undefined ? null : code;
    this.readyState = 3;
  }

  accept() {
    this.readyState = 1;
  }

  receive(msg) {
    if (this.onmessage) this.onmessage({ data: typeof msg === 'string' ? msg : JSON.stringify(msg) });
  }

  drop(code = 1006) {
    this.readyState = 3;
    if (this.onclose) this.onclose({ code });
  }
}

// The `env` of protocol.js's Client: a clock that only moves with
// advance(ms), which also runs the timers that fall due, in order.
export function fakeEnv({ random = 0.5 } = {}) {
  const timers = new Map();
  let nextId = 1;
  const env = {
    time: 1_000_000,
    isOnline: true,
    sockets: [],
    delays: [], // every setTimeout's delay, in order
    random: () => random,
    now: () => env.time,
    online: () => env.isOnline,
    url: () => 'ws://chat.test/ws',
    open(url) {
      const ws = new FakeSocket(url);
      env.sockets.push(ws);
      return ws;
    },
    setTimeout(fn, ms) {
      const id = nextId++;
      timers.set(id, { fn, at: env.time + ms });
      env.delays.push(ms);
      return id;
    },
    clearTimeout(id) {
      timers.delete(id);
    },
    pendingTimers: () => timers.size,
    get socket() {
      return env.sockets[env.sockets.length - 1];
    },
    advance(ms) {
      const end = env.time + ms;
      for (;;) {
        let due = null;
        for (const [id, t] of timers) if (t.at <= end && (!due || t.at < due.t.at)) due = { id, t };
        if (!due) break;
        timers.delete(due.id);
        env.time = due.t.at;
        due.t.fn();
      }
      env.time = end;
    },
  };
  return env;
}

// window.Storage in memory. `broken`: every call throws, as when the
// browser has storage turned off.
export class FakeStorage {
  constructor({ broken = false } = {}) {
    this.map = new Map();
    this.broken = broken;
  }

  check() {
    if (this.broken) throw new Error('SecurityError: storage is disabled');
  }

  getItem(k) {
    this.check();
    return this.map.has(k) ? this.map.get(k) : null;
  }

  setItem(k, v) {
    this.check();
    this.map.set(k, String(v));
  }

  removeItem(k) {
    this.check();
    this.map.delete(k);
  }
}
