// room.js: what the page knows about one room, without the page: which
// messages it holds, who is there and who is typing.
//
// Every message in a room has the server's `seq` (1, 2, 3, ... per room).
// Messages reach the page several ways: live, in the catch-up a `joined`
// brings after a reconnect (everything after the highest seq held; with
// `gap` when that was too much, and the rest is fetched in history pages),
// and in older history pages when scrolling up. They may overlap and come
// in any order: merge() keeps each seq once and says where each new one goes
// in the list (view.js does the DOM part).
//
// A room is a plain object (newRoom()); view.js adds a tab's own fields to
// it. No DOM and no `window`: tests/web runs this under Node.

import { sameNick, sortNicks } from './util.js';

export const PAGE = 50; // history page when scrolling up
export const CATCH_UP_PAGE = 200; // history page when filling a gap
export const TYPING_SHOW_MS = 6000; // a typing notice shows this long

export function newRoom() {
  return {
    seqs: new Set(), // every seq held
    minSeq: 0, // the lowest held (0: none)
    maxSeq: 0, // the highest held
    lastSeq: 0, // the highest the room is known to have (held or not)
    members: [], // sorted
    typing: new Map(), // nick -> until when the notice shows
    reachedStart: false, // nothing older to load
    loadingOlder: false, // an older page has been asked for
    cursor: 0, // catching up after a gap: the highest seq asked after
    storeId: '', // the server's history store these seqs belong to
  };
}

// Forgets the messages held (the server's history was reset).
export function forget(room) {
  room.seqs.clear();
  room.minSeq = 0;
  room.maxSeq = 0;
  room.cursor = 0;
  room.reachedStart = false;
  room.loadingOlder = false;
}

// Takes in a batch of messages; those without a numeric seq are ignored.
// Returns one step per message, in seq order: {msg, where}, where `where` is
//   null       a seq already held: a duplicate, not shown again;
//   'top'      older than all held before this batch (a page of history):
//              these go together, in order, above everything;
//   'end'      newer than all held so far: after the last one;
//   'between'  a seq inside the held range, filling a hole.
export function merge(room, msgs) {
  const sorted = msgs.filter((x) => x && typeof x.seq === 'number').sort((a, b) => a.seq - b.seq);
  const oldMin = room.minSeq;
  const hadAny = room.seqs.size > 0;
  const steps = [];
  for (const msg of sorted) {
    if (room.seqs.has(msg.seq)) {
      steps.push({ msg, where: null });
      continue;
    }
    let where = 'between';
    if (hadAny && msg.seq < oldMin) where = 'top';
    else if (!room.seqs.size || msg.seq > room.maxSeq) where = 'end';
    room.seqs.add(msg.seq);
    if (!room.minSeq || msg.seq < room.minSeq) room.minSeq = msg.seq;
    if (msg.seq > room.maxSeq) room.maxSeq = msg.seq;
    if (msg.seq > room.lastSeq) room.lastSeq = msg.seq;
    steps.push({ msg, where });
  }
  return steps;
}

export const maxSeqOf = (msgs) => msgs.reduce((a, x) => (typeof x.seq === 'number' && x.seq > a ? x.seq : a), 0);

// Rejoining after a reconnect: the `since` to ask with, so that the server
// sends only what came after (undefined: the room holds nothing yet).
export const rejoinSince = (room) => (room.seqs.size ? room.maxSeq : undefined);

// A `joined` said `gap`: the catch-up continues after the newest seq it
// brought. Returns the `after` of the first history request.
export function startCatchUp(room, msgs) {
  room.cursor = maxSeqOf(msgs) || room.maxSeq;
  return room.cursor;
}

// A catch-up page arrived (and was merged): the `after` of the next request,
// or 0 when this one was the last (a short page).
export function continueCatchUp(room, msgs) {
  const top = maxSeqOf(msgs);
  if (msgs.length >= CATCH_UP_PAGE && top > room.cursor) {
    room.cursor = top;
    return top;
  }
  return 0;
}

// Scrolling up: the `before` of the next older page, or 0 if there is
// nothing older (then reachedStart is set).
export function olderBefore(room) {
  const before = room.seqs.size ? room.minSeq : room.lastSeq + 1;
  if (before <= 1) {
    room.reachedStart = true;
    return 0;
  }
  room.loadingOlder = true;
  return before;
}

// An older page of `count` messages arrived (and was merged).
export function olderArrived(room, count) {
  room.loadingOlder = false;
  if (count < PAGE || room.minSeq <= 1) room.reachedStart = true;
}

// ---------------------------------------------------------------- members

export function setMembers(room, list) {
  room.members = sortNicks(list);
}

export function addMember(room, nick) {
  if (!room.members.some((n) => sameNick(n, nick))) room.members = sortNicks(room.members.concat([nick]));
}

export function removeMember(room, nick) {
  room.members = room.members.filter((n) => !sameNick(n, nick));
  room.typing.delete(nick);
}

// Someone in the room changed nick (`presence` with event `nick`).
export function renameMember(room, old, nick) {
  room.members = sortNicks(room.members.filter((n) => !sameNick(n, old)).concat([nick]));
  if (room.typing.has(old)) {
    room.typing.set(nick, room.typing.get(old));
    room.typing.delete(old);
  }
}

// Our own nick changed: renamed in place where it is listed.
export function renameSelf(room, old, nick) {
  const i = room.members.findIndex((n) => sameNick(n, old));
  if (i >= 0) room.members[i] = nick;
  room.members = sortNicks(room.members);
}

// ----------------------------------------------------------------- typing

export function startTyping(room, nick, now) {
  room.typing.set(nick, now + TYPING_SHOW_MS);
}

// Who is typing now, sorted; expired notices are dropped.
export function typingNames(room, now) {
  const names = [];
  for (const [n, until] of room.typing) {
    if (until <= now) room.typing.delete(n);
    else names.push(n);
  }
  return sortNicks(names);
}

export function typingText(names) {
  if (names.length === 1) return names[0] + ' is typing…';
  if (names.length === 2) return names[0] + ' and ' + names[1] + ' are typing…';
  if (names.length === 3) return names[0] + ', ' + names[1] + ' and ' + names[2] + ' are typing…';
  if (names.length > 3) return names[0] + ', ' + names[1] + ' and ' + (names.length - 2) + ' others are typing…';
  return '';
}
