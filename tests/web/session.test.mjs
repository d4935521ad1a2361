// web/session.js under Node: which session a starting page resumes (its
// own after a reload, a closed tab's in a new tab, none in a copy of an
// open tab), the live marks, and storage that is turned off.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SessionStore, RESUME_MS, LIVE_MS, RELEASED_KEY, LIVE_KEY, NAME_KEY, LOGIN_KEY } from '../../web/session.js';
import { FakeStorage } from './fakes.mjs';

// One browser: localStorage shared by its tabs, sessionStorage per tab.
function browser() {
  const clock = { time: 10_000_000 };
  const local = new FakeStorage();
  return {
    clock,
    local,
    // A new tab: its own sessionStorage (or a copy of another's).
    open(sessionStorage = new FakeStorage()) {
      const store = new SessionStore({ session: () => sessionStorage, local: () => local, now: () => clock.time });
      store.sessionStorage = sessionStorage;
      return store;
    },
  };
}

const TOKEN_A = 'tok-aaaaaaaa';
const TOKEN_B = 'tok-bbbbbbbb';

test('a fresh tab resumes nothing and offers the name chosen last time', () => {
  const b = browser();
  assert.deepEqual(b.open().startup(''), { session: '', nick: '', restore: null });
  b.local.setItem(NAME_KEY, 'Ada');
  assert.deepEqual(b.open().startup(''), { session: '', nick: 'Ada', restore: null });
  b.local.setItem(NAME_KEY, '1nvalid name');
  assert.equal(b.open().startup('').nick, '', 'a stored name that is not a nick is ignored');
});

test('a reload resumes the tab\'s own session, rooms and active room', () => {
  const b = browser();
  const tab = b.open();
  tab.markLive(true, TOKEN_A);
  tab.save({ nick: 'ada', rooms: ['lobby', 'side'], active: 'side', session: TOKEN_A });
  // pagehide: the mark comes off and the session is released.
  tab.markLive(false, TOKEN_A);
  tab.release({ session: TOKEN_A, nick: 'ada', rooms: ['lobby', 'side'], active: 'side' });
  // The same tab loads again: same sessionStorage.
  const again = b.open(tab.sessionStorage);
  assert.deepEqual(again.startup(''), {
    session: TOKEN_A,
    nick: 'ada',
    restore: { rooms: ['lobby', 'side'], active: 'side' },
  });
  assert.equal(b.local.getItem(RELEASED_KEY), null, 'taken back: no other tab may claim it');
});

test('a closed tab\'s session is claimed by the next tab opened within the grace', () => {
  const b = browser();
  const tab = b.open();
  tab.release({ session: TOKEN_A, nick: 'ada', rooms: ['lobby'], active: 'lobby' });
  b.clock.time += RESUME_MS - 1;
  const next = b.open();
  assert.deepEqual(next.startup(''), { session: TOKEN_A, nick: 'ada', restore: { rooms: ['lobby'], active: 'lobby' } });
  assert.deepEqual(b.open().startup(''), { session: '', nick: '', restore: null }, 'claimed once only');
});

test('a released session is not resumed after the grace', () => {
  const b = browser();
  b.open().release({ session: TOKEN_A, nick: 'ada', rooms: ['lobby'], active: '' });
  b.clock.time += RESUME_MS;
  assert.equal(b.open().startup('').session, '');
});

test('the newest released session is claimed first, and one live elsewhere is skipped', () => {
  const b = browser();
  b.open().release({ session: TOKEN_A, nick: 'ada', rooms: ['a'], active: 'a' });
  b.clock.time += 1000;
  b.open().release({ session: TOKEN_B, nick: 'bob', rooms: ['b'], active: 'b' });
  // TOKEN_B was reopened by a tab that is still open (its back/forward copy, say).
  b.open().markLive(true, TOKEN_B);
  const next = b.open();
  assert.equal(next.startup('').session, TOKEN_A);
});

test('a copy of an open tab (same sessionStorage, session live) starts afresh', () => {
  const b = browser();
  const open = b.open();
  open.save({ nick: 'ada', rooms: ['lobby'], active: 'lobby', session: TOKEN_A });
  open.markLive(true, TOKEN_A);
  // "Duplicate tab" or window.open copies sessionStorage.
  const copy = new FakeStorage();
  copy.setItem('natter.state', open.sessionStorage.getItem('natter.state'));
  assert.deepEqual(b.open(copy).startup(''), { session: '', nick: '', restore: null });
});

test('a share link\'s room is left out of what is rejoined, and chooses the active room', () => {
  const b = browser();
  const tab = b.open();
  tab.save({ nick: 'ada', rooms: ['lobby', 'Party'], active: 'lobby', session: TOKEN_A });
  const back = b.open(tab.sessionStorage).startup('party');
  assert.deepEqual(back.restore, { rooms: ['lobby'], active: '' });
});

test('stored state that is not what the page writes is ignored', () => {
  const b = browser();
  const s = new FakeStorage();
  s.setItem('natter.state', JSON.stringify({ nick: 'no spaces allowed', rooms: ['ok', 'not ok', 7], session: 'short' }));
  const back = b.open(s).startup('');
  assert.equal(back.session, '');
  assert.equal(back.nick, '');
  assert.deepEqual(back.restore, { rooms: ['ok'], active: '' }, 'rooms to rejoin without a session');
  const garbage = new FakeStorage();
  garbage.setItem('natter.state', '{not json');
  assert.deepEqual(b.open(garbage).startup(''), { session: '', nick: '', restore: null });
  b.local.setItem(RELEASED_KEY, '"a string"');
  assert.deepEqual(b.open().readReleased(), []);
});

test('live marks: one per open tab, swept once stale, taken off on leaving', () => {
  const b = browser();
  const one = b.open();
  const two = b.open();
  one.markLive(true, TOKEN_A);
  two.markLive(true, TOKEN_B);
  assert.equal(one.isLive(TOKEN_B), true);
  assert.equal(one.liveAt, b.clock.time);
  // one's session changes (a new session after a reconnect): the old mark goes.
  one.markLive(true, 'tok-cccccccc');
  assert.deepEqual(Object.keys(JSON.parse(b.local.getItem(LIVE_KEY))).sort(), [TOKEN_B, 'tok-cccccccc']);
  // two stops refreshing (closed without pagehide): stale after LIVE_MS.
  b.clock.time += LIVE_MS;
  assert.equal(one.isLive(TOKEN_B), false);
  one.markLive(true, 'tok-cccccccc');
  assert.deepEqual(Object.keys(JSON.parse(b.local.getItem(LIVE_KEY))), ['tok-cccccccc']);
  one.markLive(false, 'tok-cccccccc');
  assert.equal(b.local.getItem(LIVE_KEY), null);
});

test('release keeps at most five sessions', () => {
  const b = browser();
  const tab = b.open();
  for (let i = 0; i < 8; i++) {
    tab.release({ session: 'tok-' + String(i).repeat(8), nick: 'n' + i, rooms: [], active: '' });
    b.clock.time += 10;
  }
  assert.deepEqual(tab.readReleased().map((x) => x.nick), ['n3', 'n4', 'n5', 'n6', 'n7']);
  assert.equal(tab.unrelease('tok-55555555'), true);
  assert.equal(tab.unrelease('tok-55555555'), false);
});

test('names and the notification switch are remembered', () => {
  const b = browser();
  const tab = b.open();
  tab.rememberName('Ada');
  assert.equal(b.open().rememberedName(), 'Ada');
  assert.equal(tab.notifyOn(), false);
  tab.setNotify(true);
  assert.equal(b.open().notifyOn(), true);
  tab.setNotify(false);
  assert.equal(tab.notifyOn(), false);
});

test('with storage turned off nothing throws and nothing is remembered', () => {
  const broken = new FakeStorage({ broken: true });
  const throwing = () => { throw new Error('SecurityError'); };
  for (const env of [
    { session: () => broken, local: () => broken, now: () => 0 },
    { session: throwing, local: throwing, now: () => 0 },
  ]) {
    const s = new SessionStore(env);
    s.save({ nick: 'ada', rooms: [], active: '', session: '' });
    s.rememberName('ada');
    s.setNotify(true);
    s.markLive(true, TOKEN_A);
    s.release({ session: TOKEN_A, nick: 'ada', rooms: [], active: '' });
    assert.equal(s.load(), null);
    assert.equal(s.rememberedName(), '');
    assert.equal(s.notifyOn(), false);
    assert.equal(s.isLive(TOKEN_A), false);
    assert.deepEqual(s.startup(''), { session: '', nick: '', restore: null });
  }
});

// ---------------------------------------------------------------- login

test('the login is remembered for every tab, until it is forgotten', () => {
  const b = browser();
  const tab = b.open();
  assert.equal(tab.login(), null);
  assert.equal(tab.loginToken(), '');
  tab.saveLogin('Ada', 'Zm9vYmFyYmF6cXV4cXV1eA');
  const other = b.open();
  assert.deepEqual(other.login(), { account: 'Ada', token: 'Zm9vYmFyYmF6cXV4cXV1eA' });
  assert.equal(other.loginToken(), 'Zm9vYmFyYmF6cXV4cXV1eA');
  // A refused token is forgotten only if it is still the one stored:
  // another tab may have logged in anew meanwhile.
  other.saveLogin('Ada', 'bmV3ZXJ0b2tlbm5ld2VydG9rZW4');
  tab.forgetLogin('Zm9vYmFyYmF6cXV4cXV1eA');
  assert.equal(tab.loginToken(), 'bmV3ZXJ0b2tlbm5ld2VydG9rZW4');
  tab.forgetLogin('bmV3ZXJ0b2tlbm5ld2VydG9rZW4');
  assert.equal(tab.login(), null);
  // Logging out forgets whatever is stored.
  tab.saveLogin('Ada', 'Zm9vYmFyYmF6cXV4cXV1eA');
  tab.forgetLogin();
  assert.equal(b.local.getItem(LOGIN_KEY), null);
});

test('a stored login that is not what the page writes is ignored, and nothing bad is stored', () => {
  const b = browser();
  const tab = b.open();
  for (const bad of ['{no json', '"str"', JSON.stringify({ account: 'Ada' }), JSON.stringify({ account: 'no spaces', token: 'Zm9vYmFyYmF6cXV4cXV1eA' }),
    JSON.stringify({ account: 'Ada', token: 'short' }), JSON.stringify({ account: 'Ada', token: 'has spaces in it, it does' })]) {
    b.local.setItem(LOGIN_KEY, bad);
    assert.equal(tab.login(), null, bad);
  }
  b.local.removeItem(LOGIN_KEY);
  tab.saveLogin('Ada', 'short');
  tab.saveLogin(null, 'Zm9vYmFyYmF6cXV4cXV1eA');
  assert.equal(b.local.getItem(LOGIN_KEY), null);
});

test('with storage turned off the login is not remembered, and nothing throws', () => {
  const broken = new FakeStorage({ broken: true });
  const s = new SessionStore({ session: () => broken, local: () => broken, now: () => 0 });
  s.saveLogin('Ada', 'Zm9vYmFyYmF6cXV4cXV1eA');
  assert.equal(s.login(), null);
  s.forgetLogin();
});
