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
// Messages live (issue 16): each entry of a room's history has a seq, the
// messages and the changes to them (`edit`, `delete`, `react`, each with
// its own seq and a `target`). merge() takes both: a change is held as a
// seen seq (so a catch-up asks only after it) and applied to the message it
// targets if the page holds it (`msgs`: seq -> the message as it is now).
// A change to a message the page does not hold is only noted: that message
// comes "as it is now" whenever a history page brings it.
//
// It also keeps the room's settings and who moderates it (the topic, the
// owner, the ops, invite-only, your own role), which members are logged in
// (an account mark beside their names), and applies moderation events
// (`mod`) to all of it; modText says each event in words.
//
// A room is a plain object (newRoom()); view.js adds a tab's own fields to
// it. No DOM and no `window`: tests/web runs this under Node.

import { sameNick, sortNicks, fmtDuration } from './util.js';

export const PAGE = 50; // history page when scrolling up
export const CATCH_UP_PAGE = 200; // history page when filling a gap
export const TYPING_SHOW_MS = 6000; // a typing notice shows this long

export function newRoom() {
  return {
    seqs: new Set(), // every seq held (messages and changes)
    msgs: new Map(), // seq -> the message as it is now (edited, deleted, reacted to)
    minSeq: 0, // the lowest held (0: none)
    maxSeq: 0, // the highest held
    lastSeq: 0, // the highest the room is known to have (held or not)
    members: [], // sorted
    typing: new Map(), // nick -> until when the notice shows
    reachedStart: false, // nothing older to load
    loadingOlder: false, // an older page has been asked for
    cursor: 0, // catching up after a gap: the highest seq asked after
    storeId: '', // the server's history store these seqs belong to
    topic: null, // the room's topic (null: none)
    owner: null, // the owning account (null: a guest's room)
    ops: [], // the accounts the owner made ops
    inviteOnly: false,
    role: 'member', // yours: 'owner', 'op' or 'member'
    admin: false, // an op by --admin (not in `ops`): a deop does not end it
    accounts: new Set(), // lowercase nicks of the members logged in
    mutes: new Map(), // lowercase nick -> {until (ms, null: until unmuted), by}: mutes seen here
    muted: null, // you are muted: {until, by} (until null: until unmuted or unknown)
    removed: null, // you were kicked or banned: {action, by, reason}, until `left` ends the room
    quietLeave: new Set(), // lowercase nicks whose kick/ban was said: their presence leave is not
  };
}

// Forgets the messages held (the server's history was reset).
export function forget(room) {
  room.seqs.clear();
  room.msgs.clear();
  room.minSeq = 0;
  room.maxSeq = 0;
  room.cursor = 0;
  room.reachedStart = false;
  room.loadingOlder = false;
}

// Takes in a batch of entries (messages, and changes to them); those
// without a numeric seq are ignored. Returns one step per entry, in seq
// order: {msg, where}, where `where` is
//   null       a seq already held: a duplicate, not shown again;
//   'top'      older than all held before this batch (a page of history):
//              these go together, in order, above everything;
//   'end'      newer than all held so far: after the last one;
//   'between'  a seq inside the held range, filling a hole;
//   'amend'    a change (edit, delete, react), applied: `changed` lists the
//              seqs of the messages held that look different now (its
//              target, and replies quoting it).
export function merge(room, msgs) {
  const sorted = msgs.filter((x) => x && typeof x.seq === 'number').sort((a, b) => a.seq - b.seq);
  const oldMin = room.minSeq;
  const hadAny = room.seqs.size > 0;
  const steps = [];
  let topMsg = maxMessageSeq(room);
  for (const msg of sorted) {
    if (room.seqs.has(msg.seq)) {
      steps.push({ msg, where: null });
      continue;
    }
    room.seqs.add(msg.seq);
    if (msg.seq > room.maxSeq) room.maxSeq = msg.seq;
    if (msg.seq > room.lastSeq) room.lastSeq = msg.seq;
    if (isAmend(msg)) {
      steps.push({ msg, where: 'amend', changed: applyAmend(room, msg) });
      continue;
    }
    let where = 'between';
    if (hadAny && msg.seq < oldMin) where = 'top';
    else if (!room.msgs.size || msg.seq > topMsg) where = 'end';
    if (msg.seq > topMsg) topMsg = msg.seq;
    if (!room.minSeq || msg.seq < room.minSeq) room.minSeq = msg.seq;
    room.msgs.set(msg.seq, msg);
    steps.push({ msg, where });
  }
  return steps;
}

function maxMessageSeq(room) {
  let top = 0;
  for (const seq of room.msgs.keys()) if (seq > top) top = seq;
  return top;
}

// ------------------------------------------------------------ changes

export const AMENDS = ['edit', 'delete', 'react'];
export const isAmend = (x) => !!x && AMENDS.includes(x.type) && typeof x.target === 'number';

export const QUOTE_CHARS = 100; // a reply quotes the first 100 characters

// The start of a text as a reply quotes it (code points, not UTF-16 units).
export function quoteOf(text) {
  const cps = Array.from(String(text || ''));
  return cps.length > QUOTE_CHARS ? cps.slice(0, QUOTE_CHARS).join('') : cps.join('');
}

// Applies a change to the message it targets, if held. Returns the seqs of
// the messages held that changed (the target, and replies quoting it).
export function applyAmend(room, a) {
  const m = room.msgs.get(a.target);
  if (!m) return [];
  const changed = [a.target];
  if (a.type === 'edit') {
    if (m.deleted) return [];
    if (typeof a.text === 'string') m.text = a.text;
    m.edited_ts = typeof a.ts === 'number' ? a.ts : Date.now();
    // Replies keep quoting what was answered (the server's reply_to is
    // taken when the reply is sent; only a delete takes the quote away).
  } else if (a.type === 'delete') {
    if (m.deleted) return [];
    m.deleted = true;
    for (const k of ['text', 'image', 'reactions', 'edited_ts', 'reply_to', 'mentions', 'action']) delete m[k];
    changed.push(...requote(room, a.target));
  } else if (a.type === 'react') {
    if (m.deleted || typeof a.emoji !== 'string' || !a.emoji || typeof a.from !== 'string') return [];
    const reactions = m.reactions && typeof m.reactions === 'object' ? m.reactions : {};
    const who = Array.isArray(reactions[a.emoji]) ? reactions[a.emoji].filter((n) => !sameNick(n, a.from)) : [];
    if (a.on !== false) who.push(a.from);
    if (who.length) reactions[a.emoji] = who;
    else delete reactions[a.emoji];
    m.reactions = reactions;
  }
  return changed;
}

// Replies held that quote `seq`, deleted: their quote loses its text (they
// keep who and where, as the server's do).
function requote(room, seq) {
  const out = [];
  for (const [s, r] of room.msgs) {
    if (!r.reply_to || r.reply_to.seq !== seq || typeof r.reply_to.text !== 'string') continue;
    delete r.reply_to.text;
    out.push(s);
  }
  return out;
}

// A message's reactions as [emoji, nicks] pairs, in the order they came.
export function reactionList(m) {
  const r = m && m.reactions && typeof m.reactions === 'object' ? m.reactions : null;
  if (!r) return [];
  return Object.keys(r)
    .map((e) => [e, Array.isArray(r[e]) ? r[e].filter((n) => typeof n === 'string') : []])
    .filter(([, who]) => who.length);
}

// Whether `nick` is among a message's `mentions`.
export const mentions = (m, nick) => !!m && Array.isArray(m.mentions) && m.mentions.some((n) => sameNick(n, nick));

// An emoji a user typed for a reaction: 1 to 32 bytes (UTF-8), no spaces,
// no control characters. Returns it trimmed, or '' if it is not one.
export function cleanEmoji(s) {
  const e = String(s || '').trim();
  if (!e || /[\s\u0000-\u001f\u007f-\u009f]/.test(e)) return '';
  const bytes = new TextEncoder().encode(e).length;
  return bytes >= 1 && bytes <= 32 ? e : '';
}

// The last message of yours held (Up-arrow edits it): the highest seq
// from `nick` that is not deleted, or null.
export function lastOwn(room, nick) {
  let best = null;
  for (const m of room.msgs.values()) {
    if (m.deleted || !sameNick(m.from, nick)) continue;
    if (!best || m.seq > best.seq) best = m;
  }
  return best;
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
  const before = room.msgs.size ? room.minSeq : room.lastSeq + 1;
  if (before <= 1) {
    room.reachedStart = true;
    return 0;
  }
  room.loadingOlder = true;
  return before;
}

// An older page of `count` messages arrived (and was merged).
export function olderArrived(room, count, limit = PAGE) {
  room.loadingOlder = false;
  if (count < limit || room.minSeq <= 1) room.reachedStart = true;
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
  room.accounts.delete(String(nick).toLowerCase());
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
// (Logging in where another connection of the account is already in the
// room: that nick is listed already, and the old one just goes.)
export function renameSelf(room, old, nick) {
  if (room.members.some((n) => sameNick(n, nick)) && !sameNick(old, nick)) {
    room.members = room.members.filter((n) => !sameNick(n, old));
  } else {
    const i = room.members.findIndex((n) => sameNick(n, old));
    if (i >= 0) room.members[i] = nick;
  }
  room.members = sortNicks(room.members);
  if (room.accounts.delete(String(old).toLowerCase())) room.accounts.add(String(nick).toLowerCase());
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

// ----------------------------------------------------- settings and roles

const ROLES = ['owner', 'op', 'member'];
const lower = (s) => String(s).toLowerCase();
const strings = (list) => (Array.isArray(list) ? list.filter((x) => typeof x === 'string' && x) : []);

// A `joined` (also on every rejoin): the room's settings, your role and
// who is logged in. `me` is your nick.
export function setInfo(room, m, me) {
  room.topic = typeof m.topic === 'string' && m.topic ? m.topic : null;
  room.owner = typeof m.owner === 'string' && m.owner ? m.owner : null;
  room.ops = sortNicks(strings(m.ops));
  room.inviteOnly = m.invite_only === true;
  room.role = ROLES.includes(m.role) ? m.role : 'member';
  room.admin = room.role === 'op' && !isOp(room, me) && !sameNick(room.owner, me);
  room.accounts = new Set(strings(m.accounts).map(lower));
  room.removed = null;
}

export const isOp = (room, nick) => room.ops.some((n) => sameNick(n, nick));

// What a member is in the room, for a badge: 'owner', 'op' or ''.
export function roleOf(room, nick) {
  if (room.owner && sameNick(room.owner, nick)) return 'owner';
  if (isOp(room, nick)) return 'op';
  return '';
}

export const canModerate = (room) => !room.removed && (room.role === 'owner' || room.role === 'op');

// ---------------------------------------------------------- account marks

export const isAccount = (room, nick) => typeof nick === 'string' && room.accounts.has(lower(nick));

// `account` (the name, or null/undefined for a guest) for `nick`, as a
// presence `join` or a message tells it.
export function markAccount(room, nick, account) {
  if (typeof nick !== 'string') return;
  if (typeof account === 'string' && account) room.accounts.add(lower(nick));
  else room.accounts.delete(lower(nick));
}

// A presence `nick`: the mark follows what the event says of the new nick.
export function renameAccount(room, old, nick, account) {
  room.accounts.delete(lower(old));
  markAccount(room, nick, account);
}

// ------------------------------------------------------------- moderation

// The actions an op may take on a member, for the member menu: what to
// send ({action, secs}) and its label. The server's ranks: an --admin over
// the owner over ops over everyone else, and nobody moderates their own
// rank or above. So none on yourself, none for a member (or guest), none
// on the owner, none by an op on another op; `op`/`deop` only for the
// owner (or an admin), and only on a member who is logged in (ops are
// accounts).
export const MUTES = [
  { secs: 300, label: 'Mute for 5 minutes' },
  { secs: 3600, label: 'Mute for 1 hour' },
  { secs: null, label: 'Mute until unmuted' },
];

export function memberActions(room, nick, me) {
  if (!canModerate(room) || typeof nick !== 'string' || sameNick(nick, me)) return [];
  if (room.owner && sameNick(room.owner, nick) && !room.admin) return [];
  if (isOp(room, nick) && room.role === 'op' && !room.admin) return [];
  const list = [
    { action: 'kick', label: 'Kick', ask: true },
    { action: 'ban', label: 'Ban', ask: true },
  ];
  for (const m of MUTES) list.push({ action: 'mute', secs: m.secs, label: m.label });
  list.push({ action: 'unmute', label: 'Unmute' });
  if ((room.role === 'owner' || room.admin) && isAccount(room, nick) && !sameNick(room.owner, nick)) {
    if (isOp(room, nick)) list.push({ action: 'deop', label: 'Remove as op' });
    else list.push({ action: 'op', label: 'Make op' });
  }
  return list;
}

// A member's mute as seen here: {until, by} while it lasts, else null.
export function muteOf(room, nick, now) {
  const m = room.mutes.get(lower(nick));
  if (!m) return null;
  if (m.until !== null && m.until <= now) {
    room.mutes.delete(lower(nick));
    return null;
  }
  return m;
}

// Your own mute in this room, while it lasts (null: not muted as far as
// the page knows).
export function mutedNow(room, now) {
  if (room.muted && room.muted.until !== null && room.muted.until <= now) room.muted = null;
  return room.muted;
}

// A `mod` event for this room: updates what the room knows and returns
// {self, removed}: whether it was about you, and whether you were kicked or
// banned (the `left` that follows ends the room: view.js keeps its tab,
// saying so). `me` is your nick, `now` the time in ms.
export function applyMod(room, ev, me, now) {
  const nick = typeof ev.nick === 'string' ? ev.nick : '';
  const self = !!nick && sameNick(nick, me);
  const by = typeof ev.by === 'string' ? ev.by : '';
  let removed = false;
  switch (ev.action) {
    case 'kick':
    case 'ban':
      if (self) {
        room.removed = { action: ev.action, by, reason: typeof ev.reason === 'string' ? ev.reason : '' };
        removed = true;
      } else if (nick) {
        room.quietLeave.add(lower(nick));
        room.mutes.delete(lower(nick));
      }
      break;
    case 'mute': {
      const until = typeof ev.until === 'number' ? ev.until
        : typeof ev.secs === 'number' && ev.secs > 0 ? (typeof ev.ts === 'number' ? ev.ts : now) + ev.secs * 1000 : null;
      if (nick) room.mutes.set(lower(nick), { until, by });
      if (self) room.muted = { until, by };
      break;
    }
    case 'unmute':
      if (nick) room.mutes.delete(lower(nick));
      if (self) room.muted = null;
      break;
    case 'op':
      if (nick && !isOp(room, nick)) room.ops = sortNicks(room.ops.concat([nick]));
      if (self && room.role === 'member') room.role = 'op';
      break;
    case 'deop':
      room.ops = room.ops.filter((n) => !sameNick(n, nick));
      if (self && room.role === 'op' && !room.admin) room.role = 'member';
      break;
    case 'topic':
      room.topic = typeof ev.text === 'string' && ev.text ? ev.text : null;
      break;
    case 'invite_only':
      room.inviteOnly = ev.on === true;
      break;
    default:
      break;
  }
  return { self, removed };
}

// A presence `leave`: whether to say it (a kick or ban already said, by
// its `mod` event, is not said twice).
export function leaveIsNews(room, nick, reason) {
  if ((reason === 'kicked' || reason === 'banned') && room.quietLeave.delete(lower(nick))) return false;
  return true;
}

// A mod event in words: a list of strings and {nick} parts (view.js's
// systemLine shows those in the nick's colour). `me` is your nick,
// `fmtTime(ms)` writes a time of day.
export function modText(ev, me, fmtTime = (ms) => new Date(ms).toISOString().slice(11, 16)) {
  const by = typeof ev.by === 'string' && ev.by ? ev.by : 'an op';
  const nick = typeof ev.nick === 'string' ? ev.nick : '';
  const self = !!nick && sameNick(nick, me);
  const you = self ? 'you' : { nick };
  const why = typeof ev.reason === 'string' && ev.reason ? ': ' + ev.reason : '';
  const room = typeof ev.room === 'string' ? '#' + ev.room : 'the room';
  switch (ev.action) {
    case 'kick':
      return self ? ['You were kicked from ' + room + ' by ', { nick: by }, why] : [{ nick: by }, ' kicked ', { nick }, why];
    case 'ban':
      return self ? ['You were banned from ' + room + ' by ', { nick: by }, why] : [{ nick: by }, ' banned ', { nick }, why];
    case 'unban':
      return [{ nick: by }, ' unbanned ', you];
    case 'mute': {
      const secs = typeof ev.secs === 'number' && ev.secs > 0 ? ev.secs : 0;
      const until = typeof ev.until === 'number' ? ev.until : 0;
      let how = ' until unmuted';
      if (secs) how = ' for ' + fmtDuration(secs) + (until ? ' (until ' + fmtTime(until) + ')' : '');
      else if (until) how = ' until ' + fmtTime(until);
      const tail = self ? how + ': you cannot send messages here meanwhile.' : how;
      return [{ nick: by }, ' muted ', you, tail];
    }
    case 'unmute':
      return [{ nick: by }, ' unmuted ', you, self ? ': you can send messages again.' : ''];
    case 'op':
      return [{ nick: by }, ' made ', you, ' an op' + (self ? ' of ' + room : '')];
    case 'deop':
      return [{ nick: by }, ' removed ', you, ' as op'];
    case 'topic':
      return typeof ev.text === 'string' && ev.text
        ? [{ nick: by }, ' set the topic: ' + ev.text]
        : [{ nick: by }, ' cleared the topic'];
    case 'invite_only':
      return [{ nick: by }, ev.on === true ? ' made the room invite-only' : ' opened the room to all'];
    case 'invite':
      return [{ nick: by }, ' invited ', you];
    default:
      return [{ nick: by }, ' did ' + String(ev.action || 'something') + (nick ? ' to ' : ''), ...(nick ? [you] : [])];
  }
}
