// web/room.js under Node: merging messages by seq (duplicates, any order,
// history pages, holes), catching up after a gap, paging older history,
// members and typing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  newRoom, merge, forget, rejoinSince, startCatchUp, continueCatchUp, olderBefore, olderArrived,
  setMembers, addMember, removeMember, renameMember, renameSelf, startTyping, typingNames, typingText,
  CATCH_UP_PAGE, PAGE, TYPING_SHOW_MS,
} from '../../web/room.js';

const msg = (seq, text = 'm' + seq) => ({ type: 'message', room: 'lobby', seq, from: 'ada', text });
const msgs = (...seqs) => seqs.map((s) => msg(s));
const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
// merge's answer as [seq, where] pairs.
const plan = (room, list) => merge(room, list).map((s) => [s.msg.seq, s.where]);
const held = (room) => [...room.seqs].sort((a, b) => a - b);

// ------------------------------------------------------------------ merge

test('merge: live messages in order go at the end', () => {
  const r = newRoom();
  assert.deepEqual(plan(r, msgs(1)), [[1, 'end']]);
  assert.deepEqual(plan(r, msgs(2)), [[2, 'end']]);
  assert.deepEqual(plan(r, msgs(3, 4)), [[3, 'end'], [4, 'end']]);
  assert.deepEqual([r.minSeq, r.maxSeq, r.lastSeq], [1, 4, 4]);
});

test('merge: a batch in any order is taken in seq order', () => {
  const r = newRoom();
  assert.deepEqual(plan(r, msgs(7, 5, 6)), [[5, 'end'], [6, 'end'], [7, 'end']]);
  assert.deepEqual(held(r), [5, 6, 7]);
});

test('merge: duplicates are shown once, within a batch and across batches', () => {
  const r = newRoom();
  assert.deepEqual(plan(r, msgs(1, 2, 2, 3)), [[1, 'end'], [2, 'end'], [2, null], [3, 'end']]);
  // A catch-up overlapping what a live message already brought.
  assert.deepEqual(plan(r, msgs(2, 3, 4)), [[2, null], [3, null], [4, 'end']]);
  assert.deepEqual(plan(r, msgs(4)), [[4, null]]);
  assert.deepEqual(held(r), [1, 2, 3, 4]);
});

test('merge: a message that fills a hole goes between its neighbours', () => {
  const r = newRoom();
  merge(r, msgs(1, 2, 5, 6));
  assert.deepEqual(plan(r, msgs(4)), [[4, 'between']]);
  assert.deepEqual(plan(r, msgs(3, 7)), [[3, 'between'], [7, 'end']]);
  assert.deepEqual(held(r), range(1, 7));
});

test('merge: a history page older than everything held goes on top, as one block in order', () => {
  const r = newRoom();
  merge(r, msgs(51, 52, 53));
  assert.deepEqual(plan(r, msgs(48, 50, 49)), [[48, 'top'], [49, 'top'], [50, 'top']]);
  assert.equal(r.minSeq, 48);
  // A mixed batch: older, a duplicate, a hole, newer.
  merge(r, msgs(60));
  assert.deepEqual(plan(r, msgs(47, 52, 55, 61)), [[47, 'top'], [52, null], [55, 'between'], [61, 'end']]);
});

test('merge: into an empty room nothing is "older": the first batch goes at the end', () => {
  const r = newRoom();
  r.lastSeq = 100; // the room has had 100 messages; we hold none
  assert.deepEqual(plan(r, msgs(99, 100)), [[99, 'end'], [100, 'end']]);
  assert.equal(r.lastSeq, 100);
});

test('merge: messages without a numeric seq are left out', () => {
  const r = newRoom();
  const steps = merge(r, [null, { text: 'no seq' }, { seq: '3' }, msg(1)]);
  assert.deepEqual(steps.map((s) => s.msg.seq), [1]);
});

test('merge: lastSeq follows the highest seq seen', () => {
  const r = newRoom();
  r.lastSeq = 3; // from a joined's last_seq
  merge(r, msgs(1, 2));
  assert.equal(r.lastSeq, 3);
  merge(r, msgs(9));
  assert.equal(r.lastSeq, 9);
});

test('merge, reconnect scenario: live messages, a drop, then the catch-up out of order with repeats', () => {
  const r = newRoom();
  merge(r, msgs(1, 2, 3)); // joined
  merge(r, msgs(4)); // live
  // Dropped; others wrote 5..9. The rejoin asks since 4; meanwhile a live 9
  // arrives first, then the catch-up (which repeats 4 and holds 9 too).
  assert.equal(rejoinSince(r), 4);
  assert.deepEqual(plan(r, msgs(9)), [[9, 'end']]);
  assert.deepEqual(plan(r, msgs(4, 5, 6, 7, 8, 9)), [[4, null], [5, 'between'], [6, 'between'], [7, 'between'], [8, 'between'], [9, null]]);
  assert.deepEqual(held(r), range(1, 9));
});

test('forget: a reset history is held afresh', () => {
  const r = newRoom();
  merge(r, msgs(1, 2, 3));
  r.reachedStart = true;
  r.cursor = 3;
  forget(r);
  assert.deepEqual([r.seqs.size, r.minSeq, r.maxSeq, r.cursor, r.reachedStart], [0, 0, 0, 0, false]);
  assert.equal(rejoinSince(r), undefined);
  assert.deepEqual(plan(r, msgs(1)), [[1, 'end']], 'seq 1 of the new history is new');
});

// ---------------------------------------------------------------- catch-up

test('gap: catch-up pages follow each other until a short one', () => {
  const r = newRoom();
  merge(r, msgs(1, 2, 3));
  // The joined said gap and brought no messages: continue after what we hold.
  assert.equal(startCatchUp(r, []), 3);
  const page1 = msgs(...range(4, 3 + CATCH_UP_PAGE));
  merge(r, page1);
  assert.equal(continueCatchUp(r, page1), 3 + CATCH_UP_PAGE);
  const page2 = msgs(...range(4 + CATCH_UP_PAGE, 3 + CATCH_UP_PAGE + 10));
  merge(r, page2);
  assert.equal(continueCatchUp(r, page2), 0, 'a short page is the last');
  assert.deepEqual(held(r), range(1, 3 + CATCH_UP_PAGE + 10));
});

test('gap: the catch-up starts after the newest message the joined brought', () => {
  const r = newRoom();
  assert.equal(startCatchUp(r, msgs(40, 42, 41)), 42);
  assert.equal(r.cursor, 42);
});

test('gap: a full page that brings nothing newer stops the catch-up', () => {
  const r = newRoom();
  r.cursor = 500;
  assert.equal(continueCatchUp(r, msgs(...range(301, 300 + CATCH_UP_PAGE))), 0);
  assert.equal(r.cursor, 500);
});

// ------------------------------------------------------------------- older

test('older history: pages before the oldest held, until the first message', () => {
  const r = newRoom();
  r.lastSeq = 120;
  merge(r, msgs(...range(71, 120)));
  assert.equal(olderBefore(r), 71);
  assert.equal(r.loadingOlder, true);
  const page = msgs(...range(21, 70));
  merge(r, page);
  olderArrived(r, page.length);
  assert.equal(r.loadingOlder, false);
  assert.equal(r.reachedStart, false);
  assert.equal(olderBefore(r), 21);
  const last = msgs(...range(1, 20));
  merge(r, last);
  olderArrived(r, last.length);
  assert.equal(r.reachedStart, true, 'a short page: nothing older');
  assert.equal(olderBefore(r), 0);
});

test('older history: a full page that reaches seq 1 is the start', () => {
  const r = newRoom();
  merge(r, msgs(...range(PAGE + 1, PAGE + 5)));
  olderBefore(r);
  merge(r, msgs(...range(1, PAGE)));
  olderArrived(r, PAGE);
  assert.equal(r.reachedStart, true);
});

test('older history: with nothing held, ask before the last seq the room has', () => {
  const r = newRoom();
  r.lastSeq = 30;
  assert.equal(olderBefore(r), 31);
  const empty = newRoom();
  assert.equal(olderBefore(empty), 0, 'an empty room has nothing to load');
  assert.equal(empty.reachedStart, true);
  assert.equal(empty.loadingOlder, false);
});

// ---------------------------------------------------------------- members

test('members: sorted without regard to case, each nick once', () => {
  const r = newRoom();
  setMembers(r, ['bob', 'Ada', 42, 'carl']);
  assert.deepEqual(r.members, ['Ada', 'bob', 'carl']);
  addMember(r, 'ADA');
  assert.deepEqual(r.members, ['Ada', 'bob', 'carl']);
  addMember(r, 'Bea');
  assert.deepEqual(r.members, ['Ada', 'Bea', 'bob', 'carl']);
  startTyping(r, 'bob', 0);
  removeMember(r, 'bob');
  assert.deepEqual(r.members, ['Ada', 'Bea', 'carl']);
  assert.equal(r.typing.has('bob'), false, 'who leaves stops typing');
});

test('members: a rename keeps the typing notice under the new nick', () => {
  const r = newRoom();
  setMembers(r, ['ada', 'bob']);
  startTyping(r, 'bob', 1000);
  renameMember(r, 'bob', 'Aaron');
  assert.deepEqual(r.members, ['Aaron', 'ada']);
  assert.equal(r.typing.get('Aaron'), 1000 + TYPING_SHOW_MS);
  assert.equal(r.typing.has('bob'), false);
});

test('members: our own rename replaces us where we are listed', () => {
  const r = newRoom();
  setMembers(r, ['ada', 'zed']);
  renameSelf(r, 'ADA', 'zara');
  assert.deepEqual(r.members, ['zara', 'zed']);
  renameSelf(r, 'nobody', 'x');
  assert.deepEqual(r.members, ['zara', 'zed'], 'not listed: not added');
});

// ----------------------------------------------------------------- typing

test('typing: a notice lasts TYPING_SHOW_MS; names are sorted', () => {
  const r = newRoom();
  startTyping(r, 'carl', 0);
  startTyping(r, 'Ada', 1000);
  assert.deepEqual(typingNames(r, 5999), ['Ada', 'carl']);
  assert.deepEqual(typingNames(r, 6000), ['Ada'], "carl's notice ran out");
  assert.equal(r.typing.has('carl'), false);
  assert.deepEqual(typingNames(r, 7000), []);
});

test('typing: the line under the messages', () => {
  assert.equal(typingText([]), '');
  assert.equal(typingText(['ada']), 'ada is typing…');
  assert.equal(typingText(['ada', 'bob']), 'ada and bob are typing…');
  assert.equal(typingText(['ada', 'bob', 'cy']), 'ada, bob and cy are typing…');
  assert.equal(typingText(['ada', 'bob', 'cy', 'di', 'ed']), 'ada, bob and 3 others are typing…');
});
