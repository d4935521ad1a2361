// web/util.js under Node.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  NICK_RE, ROOM_RE, sameNick, sortNicks, nickClass, newCid, fmtSize, byteLength, cleanRoom,
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
