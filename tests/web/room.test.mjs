// web/room.js under Node: merging messages by seq (duplicates, any order,
// history pages, holes), catching up after a gap, paging older history,
// members and typing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  newRoom, merge, forget, rejoinSince, startCatchUp, continueCatchUp, olderBefore, olderArrived,
  setMembers, addMember, removeMember, renameMember, renameSelf, startTyping, typingNames, typingText,
  CATCH_UP_PAGE, PAGE, TYPING_SHOW_MS,
  setInfo, roleOf, canModerate, isAccount, markAccount, renameAccount, memberActions, applyMod, modText,
  muteOf, mutedNow, leaveIsNews,
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

// ----------------------------------------------------- settings and roles

const joined = (over = {}) => ({
  type: 'joined', room: 'lobby', members: ['ada', 'Bob', 'carl', 'dee'],
  topic: 'be nice', owner: 'ada', ops: ['carl'], invite_only: false, role: 'owner', accounts: ['ada', 'carl'],
  ...over,
});
const T0 = 1_700_000_000_000;
const ev = (action, more = {}) => ({ type: 'mod', room: 'lobby', action, by: 'ada', ts: T0, ...more });
const words = (parts) => parts.map((p) => (typeof p === 'string' ? p : '<' + p.nick + '>')).join('');

test('joined: topic, owner, ops, invite-only, your role and the account marks', () => {
  const r = newRoom();
  setInfo(r, joined(), 'ada');
  assert.equal(r.topic, 'be nice');
  assert.equal(r.owner, 'ada');
  assert.deepEqual(r.ops, ['carl']);
  assert.equal(r.inviteOnly, false);
  assert.equal(r.role, 'owner');
  assert.equal(canModerate(r), true);
  assert.deepEqual([roleOf(r, 'ADA'), roleOf(r, 'carl'), roleOf(r, 'bob')], ['owner', 'op', '']);
  assert.deepEqual(['ada', 'Carl', 'bob', 'dee'].map((n) => isAccount(r, n)), [true, true, false, false]);
  // A guest's room: no owner, no topic; fields missing or wrong are taken as none.
  setInfo(r, { type: 'joined', room: 'lobby', members: [], topic: '', ops: 'carl', role: 'king', accounts: null, invite_only: 'yes' }, 'bob');
  assert.deepEqual([r.topic, r.owner, r.ops, r.inviteOnly, r.role, r.accounts.size], [null, null, [], false, 'member', 0]);
  assert.equal(canModerate(r), false);
});

test('account marks follow joins, nick changes, leaves and messages', () => {
  const r = newRoom();
  setInfo(r, joined(), 'ada');
  markAccount(r, 'eve', 'eve'); // presence join with account
  markAccount(r, 'fay', undefined); // a guest joins
  assert.deepEqual([isAccount(r, 'eve'), isAccount(r, 'fay')], [true, false]);
  // A guest logs in: the nick event carries the account.
  renameAccount(r, 'fay', 'Faye', 'Faye');
  assert.deepEqual([isAccount(r, 'fay'), isAccount(r, 'faye')], [false, true]);
  // A logout: back to a guest nick, without account.
  renameAccount(r, 'Faye', 'quiet-heron-42', null);
  assert.deepEqual([isAccount(r, 'faye'), isAccount(r, 'quiet-heron-42')], [false, false]);
  removeMember(r, 'eve');
  assert.equal(isAccount(r, 'eve'), false);
  // Your own rename moves your mark with you.
  renameSelf(r, 'ada', 'Ada2');
  assert.equal(isAccount(r, 'ada2'), true);
});

test('logging in where the account is in the room already: its nick is listed once', () => {
  const r = newRoom();
  setMembers(r, ['ada', 'quiet-heron-42', 'bob']);
  renameSelf(r, 'quiet-heron-42', 'Ada');
  assert.deepEqual(r.members, ['ada', 'bob']);
  renameSelf(r, 'bob', 'BOB');
  assert.deepEqual(r.members, ['ada', 'BOB'], 'a change of case only is still a rename');
});

test('member menu: what an op, the owner and a member may do to whom', () => {
  const r = newRoom();
  setInfo(r, joined(), 'ada');
  const acts = (nick, me = 'ada') => memberActions(r, nick, me).map((a) => a.action + (a.secs ? ':' + a.secs : a.action === 'mute' ? ':forever' : ''));
  // The owner, on a guest: no op (ops are accounts).
  assert.deepEqual(acts('bob'), ['kick', 'ban', 'mute:300', 'mute:3600', 'mute:forever', 'unmute']);
  // The owner, on an op / on another account.
  assert.deepEqual(acts('carl').slice(-1), ['deop']);
  markAccount(r, 'dee', 'dee');
  assert.deepEqual(acts('dee').slice(-1), ['op']);
  assert.deepEqual(acts('ada'), [], 'nothing on yourself');
  assert.ok(memberActions(r, 'bob', 'ada').find((a) => a.action === 'kick').ask, 'kick asks for a reason');
  // An op: moderates, but neither names ops nor touches the owner or
  // another op (nobody moderates their own rank or above).
  setInfo(r, joined({ role: 'op', ops: ['carl', 'eve'] }), 'carl');
  assert.deepEqual(acts('dee', 'carl'), ['kick', 'ban', 'mute:300', 'mute:3600', 'mute:forever', 'unmute']);
  assert.deepEqual(acts('ada', 'carl'), []);
  assert.deepEqual(acts('eve', 'carl'), []);
  // An --admin (an op not in the list) outranks everyone, and names ops.
  setInfo(r, joined({ role: 'op', accounts: ['ada', 'carl', 'dee'] }), 'root');
  assert.equal(r.admin, true);
  assert.deepEqual(acts('ada', 'root'), ['kick', 'ban', 'mute:300', 'mute:3600', 'mute:forever', 'unmute'], 'the owner, but not made op');
  assert.deepEqual(acts('carl', 'root').slice(-1), ['deop']);
  assert.deepEqual(acts('dee', 'root').slice(-1), ['op']);
  // A member (a guest): no menu at all.
  setInfo(r, joined({ role: 'member' }), 'bob');
  assert.deepEqual(acts('dee', 'bob'), []);
});

test('mod events: topic, invite-only and ops change the room', () => {
  const r = newRoom();
  setInfo(r, joined(), 'ada');
  applyMod(r, ev('topic', { text: 'new topic' }), 'ada', T0);
  assert.equal(r.topic, 'new topic');
  applyMod(r, ev('topic', { text: '' }), 'ada', T0);
  assert.equal(r.topic, null, 'empty text clears it');
  applyMod(r, ev('invite_only', { on: true }), 'ada', T0);
  assert.equal(r.inviteOnly, true);
  applyMod(r, ev('invite_only', { on: false }), 'ada', T0);
  assert.equal(r.inviteOnly, false);
  applyMod(r, ev('op', { nick: 'dee' }), 'ada', T0);
  applyMod(r, ev('op', { nick: 'Dee' }), 'ada', T0);
  assert.deepEqual(r.ops, ['carl', 'dee'], 'listed once');
  applyMod(r, ev('deop', { nick: 'carl' }), 'ada', T0);
  assert.deepEqual(r.ops, ['dee']);
});

test('mod events: your own role changes with op and deop, but not an admin\'s or the owner\'s', () => {
  const r = newRoom();
  setInfo(r, joined({ role: 'member' }), 'dee');
  assert.equal(canModerate(r), false);
  assert.deepEqual(applyMod(r, ev('op', { nick: 'dee' }), 'dee', T0), { self: true, removed: false });
  assert.equal(r.role, 'op');
  assert.equal(canModerate(r), true);
  applyMod(r, ev('deop', { nick: 'DEE' }), 'dee', T0);
  assert.equal(r.role, 'member');
  assert.equal(canModerate(r), false);
  // Someone else's op changes nothing of yours.
  applyMod(r, ev('op', { nick: 'bob' }), 'dee', T0);
  assert.equal(r.role, 'member');
  // An --admin is an op without being in the list: a deop does not end it.
  setInfo(r, joined({ role: 'op' }), 'root');
  assert.equal(r.admin, true);
  applyMod(r, ev('deop', { nick: 'root' }), 'root', T0);
  assert.equal(r.role, 'op');
  // The owner stays the owner.
  setInfo(r, joined(), 'ada');
  applyMod(r, ev('deop', { nick: 'ada' }), 'ada', T0);
  assert.equal(r.role, 'owner');
});

test('mod events: mutes, yours and others\', with their end', () => {
  const r = newRoom();
  setInfo(r, joined({ role: 'member' }), 'bob');
  applyMod(r, ev('mute', { nick: 'bob', secs: 300, until: T0 + 300_000 }), 'bob', T0);
  assert.deepEqual(mutedNow(r, T0 + 1000), { until: T0 + 300_000, by: 'ada' });
  assert.equal(mutedNow(r, T0 + 300_000), null, 'over at `until`');
  // No `until` but `secs`: counted from the event's ts.
  applyMod(r, ev('mute', { nick: 'bob', secs: 60 }), 'bob', T0 + 5000);
  assert.equal(mutedNow(r, T0).until, T0 + 60_000);
  // Until unmuted.
  applyMod(r, ev('mute', { nick: 'bob' }), 'bob', T0);
  assert.deepEqual(mutedNow(r, T0 + 1e12), { until: null, by: 'ada' });
  applyMod(r, ev('unmute', { nick: 'bob' }), 'bob', T0);
  assert.equal(mutedNow(r, T0), null);
  // Someone else's mute: known for the member list, not yours.
  applyMod(r, ev('mute', { nick: 'dee', secs: 3600, until: T0 + 3_600_000 }), 'bob', T0);
  assert.equal(mutedNow(r, T0), null);
  assert.equal(muteOf(r, 'DEE', T0).until, T0 + 3_600_000);
  assert.equal(muteOf(r, 'dee', T0 + 3_600_000), null);
});

test('mod events: a kick or ban of you ends the room; of another, its leave is not said twice', () => {
  const r = newRoom();
  setInfo(r, joined({ role: 'member' }), 'bob');
  assert.deepEqual(applyMod(r, ev('kick', { nick: 'dee', reason: 'spam' }), 'bob', T0), { self: false, removed: false });
  assert.equal(leaveIsNews(r, 'dee', 'kicked'), false, 'the mod line said it');
  assert.equal(leaveIsNews(r, 'dee', 'kicked'), true, 'only once');
  assert.equal(leaveIsNews(r, 'carl', 'leave'), true);
  assert.equal(leaveIsNews(r, 'carl', 'banned'), true, 'a ban the page did not see is news');
  assert.deepEqual(applyMod(r, ev('ban', { nick: 'Bob', reason: 'spam' }), 'bob', T0), { self: true, removed: true });
  assert.deepEqual(r.removed, { action: 'ban', by: 'ada', reason: 'spam' });
  assert.equal(canModerate(r), false);
  // Joining again (a new `joined`) starts afresh.
  setInfo(r, joined({ role: 'member' }), 'bob');
  assert.equal(r.removed, null);
});

test('mod events in words, for you and for the others', () => {
  const at = () => '12:05';
  const say = (e, me = 'bob') => words(modText(e, me, at));
  assert.equal(say(ev('kick', { nick: 'dee', reason: 'spam' })), '<ada> kicked <dee>: spam');
  assert.equal(say(ev('kick', { nick: 'bob' })), 'You were kicked from #lobby by <ada>');
  assert.equal(say(ev('ban', { nick: 'bob', reason: 'flood' })), 'You were banned from #lobby by <ada>: flood');
  assert.equal(say(ev('ban', { nick: 'dee' })), '<ada> banned <dee>');
  assert.equal(say(ev('unban', { nick: 'dee' })), '<ada> unbanned <dee>');
  assert.equal(say(ev('mute', { nick: 'dee', secs: 300, until: T0 + 300_000 })), '<ada> muted <dee> for 5 minutes (until 12:05)');
  assert.equal(say(ev('mute', { nick: 'bob', secs: 3600 })), '<ada> muted you for 1 hour: you cannot send messages here meanwhile.');
  assert.equal(say(ev('mute', { nick: 'dee' })), '<ada> muted <dee> until unmuted');
  assert.equal(say(ev('unmute', { nick: 'bob' })), '<ada> unmuted you: you can send messages again.');
  assert.equal(say(ev('op', { nick: 'bob' })), '<ada> made you an op of #lobby');
  assert.equal(say(ev('deop', { nick: 'dee' })), '<ada> removed <dee> as op');
  assert.equal(say(ev('topic', { text: '<b>hi</b>' })), '<ada> set the topic: <b>hi</b>', 'the topic is text');
  assert.equal(say(ev('topic', { text: '' })), '<ada> cleared the topic');
  assert.equal(say(ev('invite_only', { on: true })), '<ada> made the room invite-only');
  assert.equal(say(ev('invite_only', { on: false })), '<ada> opened the room to all');
  assert.equal(say(ev('invite', { nick: 'bob' })), '<ada> invited you');
  assert.equal(say(ev('frobnicate', { by: undefined })), '<an op> did frobnicate');
});
