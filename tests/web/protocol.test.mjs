// web/protocol.js under Node: reconnect with backoff, resume, the probe,
// the request queue and the cid outbox, with a fake socket and clock.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Client, backoffDelay, BACKOFF_MAX_ATTEMPT, PROBE_IDLE_MS, PROBE_WAIT_MS,
} from '../../web/protocol.js';
import { fakeEnv } from './fakes.mjs';

// A client whose page does what chat.js's onWelcome does with the
// connection: welcome, then the queue, then the outbox. Everything else
// the server sends is collected in `received`.
function setup(opts) {
  const env = fakeEnv(opts);
  const client = new Client(env);
  const log = { received: [], drops: [], changes: 0, welcomes: [] };
  client.onmessage = (m) => {
    if (m.type === 'welcome') {
      log.welcomes.push(client.welcome(m));
      client.flushQueued();
      client.flushOutbox();
    } else {
      log.received.push(m);
    }
  };
  client.ondrop = (code) => log.drops.push(code);
  client.onchange = () => { log.changes += 1; };
  return { env, client, log };
}

// The server accepts the current socket and welcomes it.
function welcome(env, session = 'tok-aaaaaaaa', nick = 'ada') {
  env.socket.accept();
  env.socket.receive({ type: 'welcome', session, nick });
}

const say = (cid, text = 'hi') => ({ cid, payload: { type: 'say', room: 'lobby', text, cid, ref: cid } });
const sentTypes = (ws) => ws.sent.map((m) => m.type);

// ---------------------------------------------------------------- backoff

test('backoff: the cap doubles from 500 ms to 30 s; the wait is half the cap plus up to half', () => {
  const caps = [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000, 30000, 30000, 30000];
  caps.forEach((cap, attempt) => {
    assert.equal(backoffDelay(attempt, () => 0), cap / 2, `attempt ${attempt}, least`);
    assert.equal(backoffDelay(attempt, () => 0.999999), cap / 2 + 0.999999 * (cap / 2), `attempt ${attempt}, most`);
  });
});

test('backoff: failed attempts wait longer each time, up to the cap, and a welcome starts over', () => {
  const { env, client, log } = setup({ random: 1 });
  assert.equal(client.status(), 'connecting');
  client.connect();
  assert.equal(env.sockets.length, 1);
  assert.equal(env.socket.url, 'ws://chat.test/ws');
  // The server is down: every socket closes before its welcome.
  for (let i = 0; i < 15; i++) {
    env.socket.drop(1006);
    assert.equal(client.status(), 'reconnecting');
    env.advance(30000); // the longest wait: the next attempt has started
  }
  assert.deepEqual(env.delays, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000, 30000, 30000, 30000, 30000, 30000]);
  assert.equal(env.sockets.length, 16);
  assert.equal(client.attempt, BACKOFF_MAX_ATTEMPT);
  assert.deepEqual(log.drops, Array(15).fill(1006));
  // It is back: the count starts over.
  welcome(env);
  assert.equal(client.status(), 'connected');
  assert.equal(client.attempt, 0);
  env.socket.drop(1006);
  assert.equal(env.delays[env.delays.length - 1], 500);
});

test('backoff: the jitter spreads the first retry between 250 and 500 ms', () => {
  for (const [random, at] of [[0, 250], [0.5, 375], [0.999, 499.75]]) {
    const { env, client } = setup({ random });
    client.connect();
    env.socket.drop();
    env.advance(at - 0.25);
    assert.equal(env.sockets.length, 1, `random() = ${random}: not before ${at} ms`);
    env.advance(0.25);
    assert.equal(env.sockets.length, 2, `random() = ${random}: at ${at} ms`);
  }
});

test('reconnectNow skips the wait and resets the backoff', () => {
  const { env, client } = setup();
  client.connect();
  env.socket.drop();
  env.advance(1000);
  env.socket.drop();
  assert.equal(client.attempt, 2);
  assert.equal(env.pendingTimers(), 1);
  client.reconnectNow();
  assert.equal(env.sockets.length, 3);
  assert.equal(env.pendingTimers(), 0, 'the pending retry is cancelled');
  assert.equal(client.attempt, 0);
});

test('a socket that cannot even be made is retried like a dropped one', () => {
  const { env, client } = setup();
  env.open = () => { throw new Error('SyntaxError'); };
  client.connect();
  assert.equal(client.ws, null);
  assert.equal(env.pendingTimers(), 1);
  assert.equal(client.status(), 'reconnecting');
});

// ----------------------------------------------------------------- resume

test('resume: after a drop the page asks for its session back, and knows whether it got it', () => {
  const { env, client, log } = setup();
  client.connect();
  assert.equal(env.socket.url, 'ws://chat.test/ws', 'no session yet: no resume');
  welcome(env, 'tok-first-1');
  assert.deepEqual(log.welcomes.pop(), { resumed: false, wasConnected: false, login: false });
  assert.equal(client.session, 'tok-first-1');

  env.socket.drop(1006);
  env.advance(500);
  assert.equal(env.socket.url, 'ws://chat.test/ws?resume=tok-first-1');
  welcome(env, 'tok-first-1');
  assert.deepEqual(log.welcomes.pop(), { resumed: true, wasConnected: true, login: false });

  // Too late (the grace ran out): the server starts a new session.
  env.socket.drop(1006);
  env.advance(500);
  assert.equal(env.socket.url, 'ws://chat.test/ws?resume=tok-first-1');
  welcome(env, 'tok-second');
  assert.deepEqual(log.welcomes.pop(), { resumed: false, wasConnected: true, login: false });
  assert.equal(client.session, 'tok-second');
});

test('resume: the token is URL-encoded', () => {
  const { env, client } = setup();
  client.session = 'a+b/c=d';
  client.connect();
  assert.equal(env.socket.url, 'ws://chat.test/ws?resume=a%2Bb%2Fc%3Dd');
});

test('resume: a close with 4000 (taken over elsewhere) forgets the session', () => {
  const { env, client, log } = setup();
  client.connect();
  welcome(env, 'tok-taken-1');
  env.socket.drop(4000);
  assert.deepEqual(log.drops, [4000]);
  assert.equal(client.session, '');
  env.advance(500);
  assert.equal(env.socket.url, 'ws://chat.test/ws', 'a fresh session');
});

test('a replaced socket is forgotten: its late events change nothing', () => {
  const { env, client, log } = setup();
  client.connect();
  const old = env.socket;
  const onmessage = old.onmessage;
  const onclose = old.onclose;
  client.reconnectNow();
  assert.equal(old.closedWith, null, 'the old socket is closed');
  assert.equal(old.onmessage, null);
  // Even handlers captured before: they check which connection they belong to.
  onmessage({ data: JSON.stringify({ type: 'rooms', rooms: [] }) });
  onclose({ code: 1006 });
  assert.deepEqual(log.received, []);
  assert.deepEqual(log.drops, []);
  assert.equal(client.ws, env.socket);
});

test('frames that are not JSON objects are ignored', () => {
  const { env, client, log } = setup();
  client.connect();
  welcome(env);
  env.socket.receive('not json');
  env.socket.receive('42');
  env.socket.receive('null');
  env.socket.receive({ type: 'rooms', rooms: [] });
  assert.deepEqual(log.received, [{ type: 'rooms', rooms: [] }]);
});

// ------------------------------------------------------------------ probe

test('probe: a quiet connection is asked something; no answer gives it up, keeping the session', () => {
  const { env, client, log } = setup();
  client.connect();
  welcome(env, 'tok-probe-1');
  const ws = env.socket;
  env.advance(PROBE_IDLE_MS);
  client.probe();
  assert.deepEqual(ws.sent, [], 'not quiet long enough yet');
  env.advance(1);
  client.probe();
  assert.deepEqual(ws.sent, [{ type: 'rooms', ref: 'probe' }]);
  // An answer: all is well.
  ws.receive({ type: 'rooms', ref: 'probe', rooms: [] });
  assert.equal(client.probeAt, 0);
  env.advance(PROBE_IDLE_MS + 1);
  client.probe();
  assert.equal(ws.sent.length, 2, 'asked again after another quiet spell');
  // No answer this time.
  env.advance(PROBE_WAIT_MS);
  client.probe();
  assert.equal(client.ws, ws, 'still waiting');
  env.advance(1);
  client.probe();
  assert.equal(ws.closedWith, null, 'dropped (close without a code)');
  assert.deepEqual(log.drops, [0]);
  assert.equal(client.status(), 'reconnecting');
  env.advance(500);
  assert.equal(env.socket.url, 'ws://chat.test/ws?resume=tok-probe-1');
});

test('wake: a visible page checks a quiet connection at once, and reconnects now rather than later', () => {
  const { env, client } = setup();
  client.connect();
  welcome(env);
  env.advance(PROBE_IDLE_MS + 1);
  client.wake();
  assert.deepEqual(env.socket.sent, [{ type: 'rooms', ref: 'probe' }]);
  env.socket.drop();
  assert.equal(env.sockets.length, 1);
  client.wake();
  assert.equal(env.sockets.length, 2, 'reconnected without waiting');
});

test('networkBack: an open socket is checked and its outbox flushed; a closed one reconnects now', () => {
  const { env, client } = setup();
  client.connect();
  welcome(env);
  env.isOnline = false;
  assert.equal(client.status(), 'offline');
  client.enqueue(say('c1'));
  assert.deepEqual(env.socket.sent, [], 'offline: held');
  env.isOnline = true;
  client.networkBack();
  assert.deepEqual(sentTypes(env.socket), ['say', 'rooms']);
  env.socket.drop();
  client.networkBack();
  assert.equal(env.sockets.length, 2);
});

// ------------------------------------------------------------------ queue

test('requests made before the welcome wait, and go in order once welcomed', () => {
  const { env, client } = setup();
  client.request({ type: 'nick', nick: 'ada', ref: 'nick:ada' });
  client.connect();
  client.request({ type: 'join', room: 'lobby', ref: 'j:lobby' });
  env.socket.accept();
  client.request({ type: 'join', room: 'side', ref: 'j:side' });
  assert.deepEqual(env.socket.sent, [], 'open but not welcomed: still waiting');
  welcome(env);
  assert.deepEqual(env.socket.sent.map((m) => m.ref), ['nick:ada', 'j:lobby', 'j:side']);
  client.request({ type: 'rooms', ref: 'x' });
  assert.equal(env.socket.sent.length, 4, 'ready: sent at once');
  assert.deepEqual(client.queued, []);
});

test('send() only writes to an open socket', () => {
  const { env, client } = setup();
  assert.equal(client.send({ type: 'rooms' }), false);
  client.connect();
  assert.equal(client.send({ type: 'rooms' }), false, 'still connecting');
  env.socket.accept();
  assert.equal(client.send({ type: 'rooms' }), true);
  env.socket.send = () => { throw new Error('gone'); };
  assert.equal(client.send({ type: 'rooms' }), false);
});

// ----------------------------------------------------------------- outbox

test('outbox: a message waits for the connection, goes once, and leaves when the server echoes its cid', () => {
  const { env, client } = setup();
  const e = say('c1');
  client.enqueue(e);
  assert.equal(client.pending('c1'), true);
  client.connect();
  welcome(env);
  assert.deepEqual(env.socket.sent, [e.payload]);
  client.flushOutbox();
  client.flushOutbox();
  assert.equal(env.socket.sent.length, 1, 'not sent twice on one connection');
  // The server stored it: its copy carries our cid.
  assert.equal(client.take('c1'), e);
  assert.equal(client.pending('c1'), false);
  assert.equal(client.take('c1'), null, 'a second echo is not ours any more');
  assert.equal(client.take(undefined), null);
});

test('outbox: what was not confirmed is sent again on the next connection, in order', () => {
  const { env, client } = setup();
  client.connect();
  welcome(env, 'tok-outbox-1');
  client.enqueue(say('c1', 'one'));
  client.enqueue(say('c2', 'two'));
  client.enqueue(say('c3', 'three'));
  const first = env.socket;
  assert.deepEqual(first.sent.map((m) => m.cid), ['c1', 'c2', 'c3']);
  client.take('c1'); // confirmed before the drop
  first.drop(1006); // c2 and c3 may or may not have reached the server
  client.enqueue(say('c4', 'four')); // typed while offline
  assert.equal(client.outbox.size, 3);
  env.advance(500);
  welcome(env, 'tok-outbox-1');
  assert.deepEqual(env.socket.sent.map((m) => m.cid), ['c2', 'c3', 'c4'], 'resent with the same cids');
  // The server drops the repeats it already stored and echoes the rest.
  for (const cid of ['c2', 'c3', 'c4']) assert.ok(client.take(cid));
  assert.equal(client.outbox.size, 0);
  env.socket.drop(1006);
  env.advance(500);
  welcome(env, 'tok-outbox-1');
  assert.deepEqual(env.socket.sent, [], 'nothing left to resend');
});

test('outbox: a refused message leaves it; Retry puts it back and sends it again', () => {
  const { env, client } = setup();
  client.connect();
  welcome(env);
  const e = say('c9');
  client.enqueue(e);
  // {type:'error', ref:'c9'}: the page takes it out and shows Retry.
  assert.equal(client.take('c9'), e);
  client.flushOutbox();
  assert.equal(env.socket.sent.length, 1);
  client.enqueue(e); // Retry
  assert.deepEqual(env.socket.sent, [e.payload, e.payload]);
  assert.equal(client.pending('c9'), true);
});

test('outbox: forget drops a closed tab\'s messages', () => {
  const { client } = setup();
  client.enqueue({ ...say('a'), tab: 'lobby' });
  client.enqueue({ ...say('b'), tab: 'side' });
  client.forget((e) => e.tab === 'lobby');
  assert.deepEqual(Array.from(client.outbox.keys()), ['b']);
});

// ----------------------------------------------------------------- ending

test('quit: end() forgets everything; the old socket is closed with 1000, then one new connection', () => {
  const { env, client, log } = setup();
  client.connect();
  welcome(env, 'tok-quit-1');
  client.enqueue(say('c1'));
  env.socket.drop(1006);
  client.request({ type: 'join', room: 'x' });
  client.reconnectNow();
  env.socket.accept();
  const ws = client.end();
  assert.equal(client.session, '');
  assert.equal(client.outbox.size, 0);
  assert.deepEqual(client.queued, []);
  assert.equal(env.pendingTimers(), 0);
  client.closeThenConnect(ws);
  assert.equal(ws.closedWith, 1000);
  assert.equal(env.sockets.length, 2, 'waits for the server to answer the close');
  ws.onclose({ code: 1000 });
  assert.equal(env.sockets.length, 3);
  assert.equal(env.socket.url, 'ws://chat.test/ws', 'a fresh session');
  env.advance(3000);
  assert.equal(env.sockets.length, 3, 'the 3 s fallback does not connect again');
  assert.deepEqual(log.drops, [1006]);
});

test('quit: with no answer to the close, it connects after 3 s', () => {
  const { env, client } = setup();
  client.connect();
  welcome(env);
  client.closeThenConnect(client.end());
  env.advance(2999);
  assert.equal(env.sockets.length, 1);
  env.advance(1);
  assert.equal(env.sockets.length, 2);
});

test('hangUp closes with 1000 and does not reconnect', () => {
  const { env, client, log } = setup();
  client.connect();
  welcome(env);
  const ws = env.socket;
  client.hangUp();
  assert.equal(ws.closedWith, 1000);
  assert.equal(client.ws, null);
  ws.drop(1000); // late close event: ignored
  env.advance(60000);
  assert.equal(env.sockets.length, 1);
  assert.deepEqual(log.drops, []);
});

test('status: connecting, connected, reconnecting, offline', () => {
  const { env, client } = setup();
  assert.equal(client.status(), 'connecting');
  client.connect();
  assert.equal(client.status(), 'connecting');
  env.socket.accept();
  assert.equal(client.status(), 'connecting', 'open, but not welcomed');
  welcome(env);
  assert.equal(client.status(), 'connected');
  assert.equal(client.ready(), true);
  env.isOnline = false;
  assert.equal(client.status(), 'offline');
  assert.equal(client.ready(), false);
  env.isOnline = true;
  env.socket.drop();
  assert.equal(client.status(), 'reconnecting');
});

// ------------------------------------------------------------ login token

const LOGIN = 'Zm9vYmFyYmF6cXV4cXV1eA';

// A welcome with an account (logged in) or without (a guest).
function welcomeAs(env, { session = 'tok-aaaaaaaa', nick = 'ada', account = null } = {}) {
  env.socket.accept();
  env.socket.receive({ type: 'welcome', session, nick, account });
}

test('login token: every connection opens with it, next to resume; none without one', () => {
  const { env, client, log } = setup();
  client.connect();
  assert.equal(env.socket.url, 'ws://chat.test/ws', 'no token, no session: a bare /ws');
  welcomeAs(env);
  client.token = LOGIN;
  env.socket.drop(1006);
  env.advance(500);
  assert.equal(env.socket.url, 'ws://chat.test/ws?resume=tok-aaaaaaaa&token=' + LOGIN);
  welcomeAs(env, { account: 'ada' });
  assert.deepEqual(log.welcomes.pop(), { resumed: true, wasConnected: true, login: false });
  assert.equal(client.account, 'ada');
  // The session is gone (4000): the next connection opens with the token alone.
  env.socket.drop(4000);
  env.advance(500);
  assert.equal(env.socket.url, 'ws://chat.test/ws?token=' + LOGIN);
  // Characters a URL would misread are escaped.
  client.token = 'a+b/c=d'.repeat(3);
  client.reconnectNow();
  assert.equal(env.socket.url, 'ws://chat.test/ws?token=' + encodeURIComponent('a+b/c=d'.repeat(3)));
});

test('login token: a guest welcome then login_failed (no ref) means the token is refused', () => {
  const { env, client } = setup();
  client.token = LOGIN;
  client.connect();
  welcomeAs(env, { nick: 'quiet-heron-42' });
  assert.equal(client.account, null);
  assert.equal(client.tokenCheck, true);
  // Some other error first: not about the token.
  assert.equal(client.tokenRefused({ type: 'error', code: 'nick_taken', message: 'x' }), false);
  assert.equal(client.tokenRefused({ type: 'error', code: 'login_failed', message: 'no' }), true);
  assert.equal(client.token, '', 'dropped: the page forgets its stored copy');
  env.socket.drop(1006);
  env.advance(500);
  assert.equal(env.socket.url, 'ws://chat.test/ws?resume=tok-aaaaaaaa', 'the next connection has no token');
});

test('login token: a login_failed for a password login is not about the token', () => {
  const { env, client } = setup();
  client.token = LOGIN;
  client.connect();
  welcomeAs(env, { account: 'ada' });
  assert.equal(client.tokenCheck, false, 'logged in at connect: nothing to check');
  assert.equal(client.tokenRefused({ type: 'error', code: 'login_failed', message: 'no' }), false);
  assert.equal(client.tokenRefused({ type: 'error', code: 'login_failed', ref: 'acct:login' }), false);
  assert.equal(client.token, LOGIN);
  // Without a token there is nothing to refuse.
  const other = setup();
  other.client.connect();
  welcomeAs(other.env);
  assert.equal(other.client.tokenRefused({ type: 'error', code: 'login_failed' }), false);
});

test('login token: a resumed guest session logs in with a login request, whose failure refuses the token', () => {
  const { env, client, log } = setup();
  client.connect();
  welcomeAs(env); // a guest session
  client.token = LOGIN; // another tab logged in meanwhile
  env.socket.drop(1006);
  env.advance(500);
  welcomeAs(env); // resumed as it was: a guest
  assert.deepEqual(log.welcomes.pop(), { resumed: true, wasConnected: true, login: true });
  assert.equal(client.tokenCheck, false, 'resumed: the server did not look at the token');
  assert.deepEqual(client.loginRequest(), { type: 'login', token: LOGIN, ref: 'acct:token' });
  assert.equal(client.tokenRefused({ type: 'error', code: 'login_failed', ref: 'acct:token' }), true);
  assert.equal(client.token, '');
});

test('login token: account answers set and clear it', () => {
  const { env, client } = setup();
  client.connect();
  welcomeAs(env);
  assert.deepEqual(client.accountChanged({ type: 'account', account: 'ada', token: LOGIN }), { account: 'ada', token: LOGIN });
  assert.equal(client.token, LOGIN);
  assert.equal(client.account, 'ada');
  // A password change brings a new token (the old ones are revoked).
  assert.deepEqual(client.accountChanged({ type: 'account', account: 'ada', token: LOGIN + 'x' }), { account: 'ada', token: LOGIN + 'x' });
  // Logout: no account, no token, and the next connection is a guest's.
  assert.deepEqual(client.accountChanged({ type: 'account', account: null }), { account: null, token: '' });
  assert.equal(client.token, '');
  assert.equal(client.account, null);
  env.socket.drop(1006);
  env.advance(500);
  assert.equal(env.socket.url, 'ws://chat.test/ws?resume=tok-aaaaaaaa');
});

test('login token: an old server (no account in welcome) leaves the page a guest, checking the token', () => {
  const { env, client } = setup();
  client.token = LOGIN;
  client.connect();
  env.socket.accept();
  env.socket.receive({ type: 'welcome', session: 'tok-aaaaaaaa', nick: 'ada' });
  assert.equal(client.account, null);
  assert.equal(client.tokenCheck, true);
  assert.equal(client.token, LOGIN, 'kept until the server refuses it');
});
