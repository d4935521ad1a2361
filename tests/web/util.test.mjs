// web/util.js under Node.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  NICK_RE, ROOM_RE, sameNick, sortNicks, nickClass, newCid, fmtSize, byteLength, cleanRoom,
  passwordProblem, fmtDuration, errorText,
} from '../../web/util.js';

test('nicks and rooms: the server\'s rules', () => {
  for (const ok of ['a', 'Ada', 'a_b-c9', 'x'.repeat(24)]) assert.ok(NICK_RE.test(ok), ok);
  for (const bad of ['', '9lives', '_a', 'a b', 'x'.repeat(25), 'é']) assert.ok(!NICK_RE.test(bad), bad);
  for (const ok of ['lobby', 'k7m2qa', '9', 'a'.repeat(32)]) assert.ok(ROOM_RE.test(ok), ok);
  for (const bad of ['', '#lobby', 'a b', 'a'.repeat(33)]) assert.ok(!ROOM_RE.test(bad), bad);
  assert.equal(cleanRoom('  #lobby '), 'lobby');
  assert.equal(cleanRoom(undefined), '');
});

test('nicks compare and sort without regard to case', () => {
  assert.ok(sameNick('Ada', 'aDA'));
  assert.ok(!sameNick('ada', undefined));
  assert.deepEqual(sortNicks(['bob', 'Ada', null, 'carl', 'aaron']), ['aaron', 'Ada', 'bob', 'carl']);
  assert.deepEqual(sortNicks('not a list'), []);
});

test('a nick has the same colour class whatever its case', () => {
  assert.equal(nickClass('Ada'), nickClass('ada'));
  assert.match(nickClass('ada'), /^nc([0-9]|1[01])$/);
  const classes = new Set(['ada', 'bob', 'carl', 'dee', 'eve', 'fay', 'gus', 'hal'].map(nickClass));
  assert.ok(classes.size > 1, 'different nicks get different colours');
});

test('cids are 24 hex digits, different each time', () => {
  const a = newCid();
  assert.match(a, /^[0-9a-f]{24}$/);
  assert.notEqual(newCid(), a);
});

test('sizes', () => {
  assert.equal(fmtSize(1023), '1023 B');
  assert.equal(fmtSize(1536), '2 KiB');
  assert.equal(fmtSize(1048576), '1 MiB');
  assert.equal(fmtSize(1572864), '1.5 MiB');
  assert.equal(byteLength('é€😀'), 2 + 3 + 4);
});

test('passwords: 8 to 128 bytes', () => {
  assert.match(passwordProblem('1234567'), /at least 8/);
  assert.equal(passwordProblem('12345678'), '');
  assert.equal(passwordProblem('with spaces ok'), '');
  assert.equal(passwordProblem('x'.repeat(128)), '');
  assert.match(passwordProblem('x'.repeat(129)), /at most 128/);
  assert.match(passwordProblem('€'.repeat(43)), /at most 128/, '129 bytes in 43 characters');
  assert.match(passwordProblem(undefined), /at least 8/);
});

test('durations', () => {
  assert.equal(fmtDuration(300), '5 minutes');
  assert.equal(fmtDuration(60), '1 minute');
  assert.equal(fmtDuration(3600), '1 hour');
  assert.equal(fmtDuration(7200), '2 hours');
  assert.equal(fmtDuration(86400), '1 day');
  assert.equal(fmtDuration(90), '90 seconds');
  assert.equal(fmtDuration(1), '1 second');
});

test('error texts: the new codes in plain words, the server\'s own for the rest', () => {
  const e = (code, message = 'server words', ctx) => errorText({ type: 'error', code, message }, ctx);
  assert.match(e('nick_registered'), /belongs to an account: log in/);
  assert.equal(e('login_failed'), 'Wrong name or password.');
  assert.match(e('login_required'), /log in or sign up/);
  assert.match(e('insecure'), /encrypted/);
  assert.match(e('not_permitted'), /not allowed/);
  assert.match(e('not_permitted', 'x', 'register'), /Sign-up is closed/);
  assert.match(e('not_permitted', 'only ops', 'mod'), /not allowed to do that in this room \(only ops\)/);
  assert.match(e('banned'), /banned from that room/);
  assert.match(e('invite_only'), /invite-only: ask one of its ops/);
  assert.match(e('rate_limited'), /wait a minute/);
  // muted: the server says until when.
  assert.equal(e('muted', 'you are muted in #lobby until 12:05:00 UTC'), 'You are muted in #lobby until 12:05:00 UTC');
  assert.equal(e('muted', 'until 12:05'), 'You are muted: until 12:05');
  assert.equal(e('muted', ''), 'You are muted in this room.');
  assert.equal(e('nick_taken', 'that nick is taken'), 'that nick is taken (nick_taken)');
  assert.equal(errorText({}), 'something went wrong');
});
