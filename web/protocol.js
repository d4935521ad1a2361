// protocol.js: the page's connection to the server, without the page.
//
// One WebSocket at /ws speaks the JSON protocol of docs/PROTOCOL.md. A
// Client keeps it going:
//
// - it reconnects after a drop, waiting longer after each failed attempt
//   (exponential backoff with jitter, from 0.25-0.5 s up to 15-30 s);
// - it asks for the same session back (`/ws?resume=TOKEN`), so a short drop
//   goes unnoticed by the rooms; a close with code 4000 (the session was
//   taken over elsewhere) forgets the token;
// - the browser hides the server's pings, so after 25 s without a frame it
//   asks for something (a probe), and gives the socket up 10 s later;
// - requests made while not connected wait in `queued`;
// - every chat message goes with a client id (`cid`) and stays in `outbox`
//   until the server echoes that cid (stored) or refuses it (an error with
//   the cid as `ref`); it is sent again on each new connection until then;
// - with a login token (`token`, kept by the page in localStorage) every
//   connection logs in as it opens (`/ws?token=TOKEN`, next to `resume`);
//   a resumed session that turns out to be a guest's logs in with a
//   `login` request instead, and a token the server refuses (`login_failed`
//   right after a guest welcome) is dropped, for the page to forget.
//
// It never touches the DOM or `window`: the socket, timers, clock,
// randomness and the online check are given to it (`env`), so tests/web runs
// it under Node with fakes. The page reacts through three callbacks:
// onmessage (a parsed server message), ondrop (the socket closed) and
// onchange (something the status line shows may have changed).

export const BACKOFF_BASE_MS = 500;
export const BACKOFF_MAX_MS = 30000;
export const BACKOFF_MAX_ATTEMPT = 12; // the attempt count stops growing here
export const PROBE_IDLE_MS = 25000; // ask something after this long without a frame
export const PROBE_WAIT_MS = 10000; // and give the connection up this long after

const OPEN = 1; // WebSocket.OPEN

// How long to wait before reconnect attempt `attempt` (0 for the first):
// a cap that doubles with each attempt (500 ms, 1 s, 2 s, ... at most 30 s),
// and a random wait between half the cap and the cap, so that clients
// dropped together do not all come back at the same instant.
export function backoffDelay(attempt, random = Math.random) {
  const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** attempt);
  return cap / 2 + random() * (cap / 2);
}

export class Client {
  // env: {
  //   open(url)          a new WebSocket-like object (readyState, send, close,
  //                      onmessage, onclose, onerror)
  //   url()              the /ws address, without the query
  //   setTimeout(fn, ms), clearTimeout(id), now(), random()
  //   online()           false when the browser knows it is offline
  // }
  constructor(env) {
    this.env = env;
    this.ws = null; // the current socket, or null between connections
    this.conn = 0; // counts connections; a stale socket's events are ignored
    this.welcomed = false; // the server has sent `welcome` on this socket
    this.everConnected = false;
    this.attempt = 0; // failed attempts since the last welcome: sets the backoff
    this.retryTimer = 0;
    this.lastFrame = 0; // when the last frame arrived
    this.probeAt = 0; // when the probe went out (0: none is out)
    this.session = ''; // this session's resume token
    this.token = ''; // the login token to log in with ('' for none)
    this.account = null; // the account this connection is logged in as
    this.sentToken = ''; // the login token this connection opened with
    this.tokenCheck = false; // a guest welcome after sentToken: a login_failed now refuses it
    this.queued = []; // requests made before the connection was ready
    this.outbox = new Map(); // cid -> {cid, payload, sentConn, ...the page's own fields}
    this.onmessage = () => {};
    this.ondrop = () => {};
    this.onchange = () => {};
  }

  isOpen() {
    return !!this.ws && this.ws.readyState === OPEN;
  }

  // Open, welcomed and online: requests go out at once.
  ready() {
    return this.isOpen() && this.welcomed && this.env.online();
  }

  // What the status line shows.
  status() {
    if (!this.env.online()) return 'offline';
    if (this.isOpen() && this.welcomed) return 'connected';
    if (!this.everConnected && this.attempt === 0) return 'connecting';
    return 'reconnecting';
  }

  // Sends now if the socket is open; whether it went.
  send(obj) {
    if (!this.isOpen()) return false;
    try {
      this.ws.send(JSON.stringify(obj));
      return true;
    } catch (e) {
      return false;
    }
  }

  // A request (not a message): sent now, or as soon as we are connected.
  request(obj) {
    if (this.ready()) this.send(obj);
    else this.queued.push(obj);
  }

  connect() {
    const env = this.env;
    env.clearTimeout(this.retryTimer);
    this.retryTimer = 0;
    if (this.ws) this.detach();
    let url = env.url();
    const query = [];
    if (this.session) query.push('resume=' + encodeURIComponent(this.session));
    if (this.token) query.push('token=' + encodeURIComponent(this.token));
    if (query.length) url += '?' + query.join('&');
    this.sentToken = this.token;
    this.tokenCheck = false;
    const conn = ++this.conn;
    let ws;
    try {
      ws = env.open(url);
    } catch (e) {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.welcomed = false;
    this.probeAt = 0;
    this.lastFrame = env.now();
    this.onchange();
    ws.onmessage = (e) => {
      if (conn !== this.conn) return;
      this.lastFrame = env.now();
      this.probeAt = 0;
      let m;
      try {
        m = JSON.parse(e.data);
      } catch (err) {
        return;
      }
      if (m && typeof m === 'object') this.onmessage(m);
    };
    ws.onclose = (e) => {
      if (conn !== this.conn) return;
      this.dropped(e.code);
    };
    ws.onerror = () => {}; // a close event follows
  }

  // The server's `welcome` on this socket. It resumed our session if it
  // carries the token we asked with. The page then sends what it must
  // (rejoins, catch-ups, `loginRequest()` when `login` says so) and calls
  // flushQueued and flushOutbox.
  //
  // Returns {resumed, wasConnected, login}: `login` is true when the page
  // should log in with the token now (a resumed session that is a guest's:
  // the server resumes it as it was and does not look at the token).
  welcome(m) {
    const resumed = !!this.session && m.session === this.session;
    const wasConnected = this.everConnected;
    this.session = typeof m.session === 'string' ? m.session : '';
    this.welcomed = true;
    this.everConnected = true;
    this.attempt = 0;
    this.account = typeof m.account === 'string' && m.account ? m.account : null;
    // Opened with a token, welcomed as a guest: the server's login_failed
    // (no ref) follows if the token is no good.
    this.tokenCheck = !!this.sentToken && !this.account && !resumed;
    const login = !!this.token && !this.account && resumed;
    return { resumed, wasConnected, login };
  }

  // A `login` with the token (after a resumed guest session, or when a page
  // wants to log in with a token it was given).
  loginRequest() {
    this.tokenCheck = false;
    return { type: 'login', token: this.token, ref: 'acct:token' };
  }

  // The server's `account` answer (register, login, password change,
  // logout): the account now, and the token to keep ('' after a logout,
  // when it is forgotten). Returns {account, token}.
  accountChanged(m) {
    this.tokenCheck = false;
    this.account = typeof m.account === 'string' && m.account ? m.account : null;
    if (!this.account) this.token = '';
    else if (typeof m.token === 'string' && m.token) this.token = m.token;
    return { account: this.account, token: this.account ? this.token : '' };
  }

  // An `error`: whether it is the server refusing our login token (expired,
  // revoked by a logout or a password change elsewhere). The token is then
  // dropped; the page forgets its stored copy and stays a guest.
  tokenRefused(m) {
    if (!m || m.type !== 'error' || m.code !== 'login_failed' || !this.token) return false;
    const ref = typeof m.ref === 'string' ? m.ref : '';
    if (ref === 'acct:token' || (!ref && this.tokenCheck)) {
      this.tokenCheck = false;
      this.token = '';
      return true;
    }
    return false;
  }

  flushQueued() {
    const queued = this.queued;
    this.queued = [];
    for (const q of queued) this.send(q);
  }

  // Forget the current socket without waiting for it.
  detach() {
    const ws = this.ws;
    this.ws = null;
    this.welcomed = false;
    if (!ws) return;
    ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close();
    } catch (e) {
      /* already gone */
    }
  }

  dropped(code) {
    this.ws = null;
    this.welcomed = false;
    // 4000: another connection took this session over; start a fresh one.
    if (code === 4000) this.session = '';
    this.ondrop(code);
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    this.env.clearTimeout(this.retryTimer);
    const delay = backoffDelay(this.attempt, this.env.random);
    this.attempt = Math.min(this.attempt + 1, BACKOFF_MAX_ATTEMPT);
    this.retryTimer = this.env.setTimeout(() => this.connect(), delay);
    this.onchange();
  }

  reconnectNow() {
    this.attempt = 0;
    this.connect();
  }

  // Called every second. Liveness: after a quiet spell ask for something; no
  // answer at all means the connection is dead. Dropping it without a close
  // frame keeps the session resumable on the server.
  probe() {
    if (!this.isOpen() || !this.welcomed) return;
    const now = this.env.now();
    if (this.probeAt) {
      if (now - this.probeAt > PROBE_WAIT_MS) {
        this.detach();
        this.dropped(0);
      }
    } else if (now - this.lastFrame > PROBE_IDLE_MS) {
      this.probeNow();
    }
  }

  probeNow() {
    this.probeAt = this.env.now();
    this.send({ type: 'rooms', ref: 'probe' });
  }

  // The browser says the network is back: check the socket at once, or
  // reconnect without waiting for the backoff.
  networkBack() {
    if (this.isOpen()) {
      this.flushOutbox();
      this.probeNow();
    } else {
      this.reconnectNow();
    }
  }

  // The page is visible again (timers in a hidden tab may have waited a
  // minute): check a quiet connection now, and reconnect now if waiting.
  wake() {
    if (this.ws && this.welcomed && this.env.now() - this.lastFrame > PROBE_IDLE_MS && !this.probeAt) this.probeNow();
    if (!this.ws && this.retryTimer) this.reconnectNow();
  }

  // ---------------------------------------------------------------- outbox

  // Keeps a message (`entry.payload` carries `entry.cid`) until the server
  // confirms or refuses it, and sends it now if connected.
  enqueue(entry) {
    entry.sentConn = 0;
    this.outbox.set(entry.cid, entry);
    this.flushOutbox();
  }

  // Sends what this connection has not sent yet, in the order it was queued.
  flushOutbox() {
    if (!this.ready()) return;
    for (const e of this.outbox.values()) {
      if (e.sentConn === this.conn) continue;
      if (this.send(e.payload)) e.sentConn = this.conn;
    }
  }

  pending(cid) {
    return typeof cid === 'string' && this.outbox.has(cid);
  }

  // Takes the entry with this cid out of the outbox (the server echoed the
  // cid, or refused the message); null if there is none.
  take(cid) {
    if (typeof cid !== 'string') return null;
    const e = this.outbox.get(cid);
    if (!e) return null;
    this.outbox.delete(cid);
    return e;
  }

  // Drops the entries `pred` picks (a closed tab's).
  forget(pred) {
    for (const [cid, e] of this.outbox) if (pred(e)) this.outbox.delete(cid);
  }

  // ------------------------------------------------------------ ending

  // /quit: the session is over and forgotten, with whatever waited to be
  // sent. Returns the old socket for closeThenConnect.
  end() {
    const ws = this.ws;
    this.conn += 1; // the old socket's events are ignored from now on
    this.ws = null;
    this.welcomed = false;
    this.session = '';
    this.queued = [];
    this.outbox.clear();
    this.env.clearTimeout(this.retryTimer);
    return ws;
  }

  // After end(): a close frame with 1000 is a quit for the server. Connect
  // again once it has answered (or after 3 s), so that the name is free.
  closeThenConnect(ws) {
    if (!ws) {
      this.connect();
      return;
    }
    let again = () => {
      again = () => {};
      if (!this.ws) this.connect();
    };
    ws.onmessage = ws.onerror = null;
    ws.onclose = () => again();
    this.env.setTimeout(() => again(), 3000);
    try {
      ws.close(1000);
    } catch (e) {
      again();
    }
  }

  // Leaving the page with nothing to resume: end the session now (close
  // 1000), and do not reconnect.
  hangUp() {
    const ws = this.ws;
    if (!ws) return;
    this.conn += 1;
    this.ws = null;
    this.welcomed = false;
    ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close(1000);
    } catch (e) {
      /* already gone */
    }
  }
}
