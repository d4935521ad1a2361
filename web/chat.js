// chat.js: what the page does with each message from the server (handle),
// and the requests the page makes on the user's behalf: change the nick,
// join or create a room, quit, sign up, log in and out, change the
// password, moderate.
//
// The protocol is docs/PROTOCOL.md. Requests carry a `ref` that the answer
// (or an error) echoes; its prefix says what it was for:
//   j:ROOM  a join the user asked for (open the room)
//   c:ID    a room the user created
//   rj:ROOM a rejoin after a reconnect (quietly, in the background)
//   hb:ROOM an older page of history (scrolling up)
//   ha:ROOM a catch-up page after a gap
//   hc:ROOM /history typed in the box
//   nick:NAME, nick:restore  a nick asked for by the user, or asked back
//   CID     a message or image (the outbox's cid)
//   acct:login, acct:register, acct:password, acct:logout, acct:token
//           the account requests (acct:token: a login with the stored token)
//   su:NAME the nick asked for before signing up under it
//   mod:ROOM:ACTION  a moderation request; bans:ROOM the ban list
//   ed:ROOM:SEQ, del:ROOM:SEQ, re:ROOM:SEQ  an edit, a delete, a reaction
//   sr:ROOM, srm:ROOM  a search, and its next page
//   hj:ROOM, hp:ROOM   older pages loaded to reach a message (a jump), and
//           the one message asked for when it should be held and is not

import { S, client, store, saveState } from './state.js';
import { ui } from './dom.js';
import { NICK_RE, ROOM_RE, sameNick, sortNicks, cleanRoom, newCid, errorText } from './util.js';
import {
  CATCH_UP_PAGE, rejoinSince, startCatchUp, continueCatchUp, olderArrived, setMembers, addMember,
  removeMember, renameMember, renameSelf, startTyping, setInfo, applyMod, modText, markAccount,
  renameAccount, leaveIsNews,
} from './room.js';
import {
  refreshState, makeTab, activate, removeTab, dmTab, renderBadge, updateTitle, showLanding,
  showLandingError, clearLandingError, renderOpenRooms, resetPromptButton, showPromptError,
  isAtBottom, scrollToBottom, resetRoom, mergeRoom, firstPending, resolveOutbox, noteIncoming,
  renderMessage, systemLine, markFailed, renderMembers, renderTyping, renderRoomBar, maybeFill,
  listOf, endRoom, endedTab, reviveRoom, renderAccount, renderRoomNotice, tell, fmtClock, rerender, jumpArrived, jumpError,
} from './view.js';
import { accountShown, accountDone, accountError } from './landing.js';
import { settingsShownFor, renderSettings, renderBans, settingsError, settingsDone } from './roombar.js';
import { onSearch, searchError } from './search.js';

// --------------------------------------------------------------- dispatch

export function handle(m) {
  switch (m.type) {
    case 'welcome': return onWelcome(m);
    case 'nick': return onNick(m);
    case 'joined': return onJoined(m);
    case 'left': return onLeft(m);
    case 'message': return onMessage(m);
    case 'presence': return onPresence(m);
    case 'typing': return onTyping(m);
    case 'dm': return onDm(m);
    case 'history': return onHistory(m);
    case 'rooms': return onRooms(m);
    case 'who': return onWho(m);
    case 'error': return onError(m);
    case 'account': return onAccount(m);
    case 'mod': return onMod(m);
    case 'bans': return onBans(m);
    case 'edit':
    case 'delete':
    case 'react': return onAmend(m);
    case 'search': return onSearch(m);
    default: return undefined;
  }
}

// The socket closed; protocol.js reconnects.
export function onDropped(code) {
  if (code === 4000) systemLine(S.active, 'This session was opened elsewhere; reconnecting with a new one.');
  for (const r of S.rooms.values()) r.typing.clear();
  renderTyping();
}

function onWelcome(m) {
  const { resumed, wasConnected, login } = client.welcome(m);
  store.markLive(true, client.session);
  setAccount(client.account);
  if (client.account) {
    S.loginName = client.account;
    S.wantNick = m.nick; // logged in at connect: the account's nick
  }
  if (m.limits && typeof m.limits === 'object') Object.assign(S.limits, m.limits);
  const storeChanged = !!S.storeId && !!m.store_id && m.store_id !== S.storeId;
  if (m.store_id) S.storeId = m.store_id;
  // A new session has a generated nick: ours is asked back below. Known
  // before the generated one shows, so the name fields keep ours.
  // Not when logged in (the nick is the account's), nor for the name of
  // the stored login (registered: a guest may not have it).
  const restoring = !resumed && !!S.wantNick && S.wantNick !== m.nick && !client.account &&
    !(S.loginName && sameNick(S.wantNick, S.loginName));
  if (restoring) S.pendingNick = S.wantNick;
  setNick(m.nick);
  refreshState();

  if (storeChanged) {
    // Our seq positions mean nothing any more: start the rooms afresh.
    for (const r of S.rooms.values()) {
      resetRoom(r);
      r.storeId = m.store_id;
      systemLine(r, 'The server’s history was reset; reloading.');
    }
  }
  if (wasConnected) {
    for (const t of S.order) systemLine(t, resumed ? 'Reconnected.' : 'Reconnected (new session).');
  }
  if (resumed) {
    S.wantNick = m.nick;
  } else if (restoring) {
    client.send({ type: 'nick', nick: S.wantNick, ref: 'nick:restore' });
  }
  // After a reload: a resumed session is sent its rooms by the server; a
  // lost one (expired, or the server restarted) joins them again.
  const restore = S.restore;
  S.restore = null;
  if (restore && resumed) {
    S.resumeActive = restore.active || '';
  } else if (restore) {
    for (const room of restore.rooms) {
      if (S.rooms.has(room)) continue;
      client.send({ type: 'join', room, ref: (room === restore.active ? 'j:' : 'rj:') + room });
    }
  }
  // Catch up on every room we were in, from the highest seq we hold.
  for (const r of S.rooms.values()) {
    const req = { type: 'join', room: r.name, ref: 'rj:' + r.name };
    const since = rejoinSince(r);
    if (since !== undefined) req.since = since;
    client.send(req);
  }
  if (login) client.send(client.loginRequest());
  client.flushQueued();
  client.flushOutbox();
  if (S.landingOpen) client.send({ type: 'rooms', ref: 'landing' });
  // A share link opened while logged in: the name is the account's, no
  // need to ask for one.
  if (S.prompt && client.account && !S.promptJoin) joinRoom(S.prompt);
}

// ---------------------------------------------------------------- account

function setAccount(account) {
  const was = S.account;
  S.account = account || null;
  if (was !== S.account) {
    for (const r of S.rooms.values()) markAccount(r, S.nick, S.account);
    renderMembers();
  }
  renderAccount();
}

// The answer to register, login, a password change or logout.
function onAccount(m) {
  const before = S.account;
  const ref = typeof m.ref === 'string' ? m.ref : '';
  const { account, token } = client.accountChanged(m);
  if (account && token) store.saveLogin(account, token);
  if (!account) store.forgetLogin();
  S.signup = null;
  S.loginName = account || '';
  setAccount(account);
  let text;
  if (!account) text = 'You are logged out; you are now ' + S.nick + '.';
  else if (ref === 'acct:password') text = 'Your password is changed. Your other logins are logged out.';
  else if (ref === 'acct:register') text = 'You signed up: ' + account + ' is your account now, and this browser stays logged in.';
  else if (before !== account) text = 'You are logged in as ' + account + '.';
  if (account) {
    store.rememberName(account);
    S.wantNick = account;
  }
  if (text) {
    if (S.active && !S.landingOpen) systemLine(S.active, text);
    accountDone(text, ref === 'acct:password');
  }
  // Logged in from a share link's prompt: in you go, under the account's name.
  if (account && S.prompt && !S.promptJoin) {
    S.promptJoin = { room: S.prompt, nick: account };
    finishPrompt();
  }
}

export function login(nick, password) {
  client.request({ type: 'login', nick, password, ref: 'acct:login' });
}

// Sign up under `nick`: registers the current nick, so a different one is
// asked for first (onNick sends the register once it is ours).
export function signUp(nick, password) {
  if (sameNick(nick, S.nick) && !S.pendingNick) {
    S.signup = null;
    client.request({ type: 'register', password, ref: 'acct:register' });
    return;
  }
  S.signup = { nick, password };
  S.pendingNick = nick;
  client.request({ type: 'nick', nick, ref: 'su:' + nick });
}

export function logout() {
  client.request({ type: 'logout', ref: 'acct:logout' });
}

export function changePassword(old, nw) {
  client.request({ type: 'password', old, new: nw, ref: 'acct:password' });
}

// ------------------------------------------------------------- moderation

// A moderation request for `room`: {nick, reason, secs, text, on} as the
// action needs.
export function sendMod(room, action, fields = {}) {
  const req = { type: 'mod', room, action, ref: 'mod:' + room + ':' + action };
  for (const k of ['nick', 'reason', 'secs', 'text', 'on']) {
    if (fields[k] !== undefined && fields[k] !== null && fields[k] !== '') req[k] = fields[k];
  }
  if (action === 'topic') req.text = typeof fields.text === 'string' ? fields.text : '';
  client.request(req);
}

export function askBans(room) {
  client.request({ type: 'mod', room, action: 'bans', ref: 'bans:' + room });
}

function onMod(m) {
  if (typeof m.room !== 'string' || typeof m.action !== 'string') return;
  const r = S.rooms.get(m.room);
  const ref = typeof m.ref === 'string' ? m.ref : '';
  if (ref.startsWith('mod:')) settingsDone(m);
  if (!r) return;
  const { self } = applyMod(r, m, S.nick, Date.now());
  systemLine(r, modText(m, S.nick, fmtClock), 'mod' + (self ? ' self' : ''));
  if (self && r !== S.active) {
    r.unread += 1;
    renderBadge(r);
    updateTitle();
  }
  if (r === S.active) {
    renderMembers();
    renderRoomBar();
  }
  if (settingsShownFor(r)) {
    renderSettings();
    if (m.action === 'ban' || m.action === 'unban') askBans(r.name);
  }
}

function onBans(m) {
  const r = S.rooms.get(m.room);
  const bans = Array.isArray(m.bans) ? m.bans.filter((b) => b && typeof b.nick === 'string') : [];
  if (r && settingsShownFor(r)) renderBans(bans);
  if (m.ref === 'cmd:bans' && r) {
    systemLine(r, bans.length
      ? 'Banned from #' + r.name + ': ' + bans.map((b) => b.nick + (b.reason ? ' (' + b.reason + ')' : '')).join(', ')
      : 'Nobody is banned from #' + r.name + '.');
  }
}

// ------------------------------------------------------------------ names

function setNick(nick) {
  if (typeof nick !== 'string' || !nick) return;
  const old = S.nick;
  S.nick = nick;
  if (!S.wantNick) S.wantNick = nick;
  ui.me.textContent = nick;
  showName(nick);
  if (old && old !== nick) {
    for (const r of S.rooms.values()) renameSelf(r, old, nick);
    renderMembers();
  }
  saveState();
}

// The name field shows the nick, but never over a name typed since the
// page last filled it in: the answer to an earlier request (restoring the
// nick after a reload, say) may arrive while the user types, and what
// they typed is asked for when they submit it.
function showName(nick) {
  fillName(ui.name, 'shownName', nick);
  fillName(ui.promptName, 'promptShown', nick);
}

function fillName(field, shown, nick) {
  const typed = field.value.trim();
  // A nick asked for is on its way: the field keeps showing it meanwhile.
  if (S.pendingNick && sameNick(typed, S.pendingNick) && !sameNick(nick, S.pendingNick)) return;
  if (!typed || typed === S[shown] || sameNick(typed, nick)) {
    const replaced = field.value !== nick;
    field.value = nick;
    S[shown] = nick;
    // Offered, not typed: selected, so typing replaces it and Enter keeps it.
    if (replaced && field === ui.promptName && document.activeElement === field) field.select();
  }
}

function onNick(m) {
  const old = S.nick;
  const ref = typeof m.ref === 'string' ? m.ref : '';
  S.pendingNick = null;
  S.wantNick = m.nick;
  setNick(m.nick);
  clearLandingError();
  // A name the user chose (not one the page asked back) is kept for the next visit.
  if (ref.startsWith('nick:') && ref !== 'nick:restore') store.rememberName(m.nick);
  if (old && old !== m.nick && S.active) systemLine(S.active, 'You are now known as ' + m.nick + '.');
  if (S.promptJoin && sameNick(m.nick, S.promptJoin.nick)) finishPrompt();
  // Signing up under a new name: the name is ours, now register it.
  if (S.signup && sameNick(m.nick, S.signup.nick)) {
    const pw = S.signup.password;
    S.signup = null;
    client.request({ type: 'register', password: pw, ref: 'acct:register' });
  }
}

// ------------------------------------------------------------ room events

function onJoined(m) {
  if (typeof m.room !== 'string') return;
  const ref = typeof m.ref === 'string' ? m.ref : '';
  let r = S.rooms.get(m.room);
  // Back in a room you were kicked from: its tab again.
  const ended = r ? null : endedTab(m.room);
  if (ended) {
    reviveRoom(ended, m.room);
    r = ended;
  }
  const fresh = !r;
  if (!r) r = makeTab('room', m.room);
  if (r.storeId && m.store_id && r.storeId !== m.store_id) resetRoom(r);
  if (m.store_id) r.storeId = m.store_id;
  setMembers(r, m.members);
  setInfo(r, m, S.nick);
  if (typeof m.last_seq === 'number') r.lastSeq = m.last_seq;
  const msgs = Array.isArray(m.messages) ? m.messages : [];
  const userJoin = ref.startsWith('j:') || ref.startsWith('c:');
  mergeRoom(r, msgs, false);
  if (r.lastSeq === 0 || r.minSeq === 1) r.reachedStart = true;
  if (m.gap) {
    const after = startCatchUp(r, msgs);
    client.send({ type: 'history', room: r.name, after, limit: CATCH_UP_PAGE, ref: 'ha:' + r.name });
  }
  if (ref.startsWith('c:')) {
    r.created = true;
    systemLine(r, 'You created the unlisted room ' + r.name + '. Only people with its code or link can join: share them with the buttons above.');
  } else if ((fresh || ended) && userJoin) {
    systemLine(r, 'You joined #' + r.name + ' (' + r.members.length + ' here).');
    if (r.topic) systemLine(r, 'Topic: ' + r.topic, 'topic');
  }
  if (S.notice && userJoin) systemLine(r, S.notice, 'error');
  const wasActive = !!S.resumeActive && r.name === S.resumeActive; // shown before the reload
  if (wasActive) S.resumeActive = '';
  if (userJoin || !S.active || wasActive) activate(r);
  else if (r === S.active) {
    renderMembers();
    renderRoomBar();
  }
  saveState();
}

function onLeft(m) {
  const r = S.rooms.get(m.room);
  if (!r) return;
  // Kicked or banned (its mod event came first): the tab stays, saying so.
  if (r.removed) endRoom(r);
  else removeTab(r);
}

function onMessage(m) {
  const r = S.rooms.get(m.room);
  if (!r) {
    resolveOutbox(m);
    return;
  }
  if (typeof m.from === 'string' && r.typing.delete(m.from) && r === S.active) renderTyping();
  // Sent while logged in: the sender is an account (a guest can never
  // hold that nick), so it is marked; an old message without says nothing.
  if (typeof m.account === 'string' && m.account && typeof m.from === 'string' && !r.accounts.has(m.from.toLowerCase())) {
    markAccount(r, m.from, m.account);
    if (r === S.active) renderMembers();
  }
  const own = client.pending(m.cid);
  mergeRoom(r, [m], !own && !sameNick(m.from, S.nick));
  if (own && r === S.active) scrollToBottom();
}

// A change to a message (`edit`, `delete`, `react`), live or the answer
// to our own request: applied in place (room.js's merge, view.js).
function onAmend(m) {
  const r = typeof m.room === 'string' ? S.rooms.get(m.room) : null;
  if (!r || typeof m.seq !== 'number') return;
  mergeRoom(r, [m], false);
}

const LEAVE_REASONS = {
  leave: '',
  quit: 'quit',
  disconnect: 'disconnected',
  timeout: 'timed out',
  slow_consumer: 'too slow',
  shutdown: 'server shutting down',
  kicked: 'kicked',
  banned: 'banned',
};

function onPresence(m) {
  const r = S.rooms.get(m.room);
  if (!r || typeof m.nick !== 'string') return;
  if (m.event === 'join') {
    addMember(r, m.nick);
    markAccount(r, m.nick, m.account);
    systemLine(r, [{ nick: m.nick }, ' joined'], 'presence join');
  } else if (m.event === 'leave') {
    removeMember(r, m.nick);
    if (!leaveIsNews(r, m.nick, m.reason)) {
      if (r === S.active) renderMembers();
      return;
    }
    let why = LEAVE_REASONS[m.reason] !== undefined ? LEAVE_REASONS[m.reason] : String(m.reason || '');
    if (m.reason === 'quit' && typeof m.message === 'string' && m.message) why = 'quit: ' + m.message;
    systemLine(r, [{ nick: m.nick }, ' left' + (why ? ' (' + why + ')' : '')], 'presence leave');
  } else if (m.event === 'nick' && typeof m.old === 'string') {
    renameMember(r, m.old, m.nick);
    renameAccount(r, m.old, m.nick, m.account);
    systemLine(r, [{ nick: m.old }, ' is now known as ', { nick: m.nick }], 'presence nick');
    renameDm(m.old, m.nick);
  }
  if (r === S.active) {
    renderMembers();
    renderTyping();
  }
}

function renameDm(old, nick) {
  const t = S.dms.get(old.toLowerCase());
  if (!t || S.dms.has(nick.toLowerCase())) return;
  S.dms.delete(old.toLowerCase());
  t.name = nick;
  t.key = 'd:' + nick.toLowerCase();
  t.tabEl.dataset.dm = nick;
  t.labelEl.textContent = '@' + nick;
  S.dms.set(nick.toLowerCase(), t);
  systemLine(t, [{ nick: old }, ' is now known as ', { nick }], 'presence nick');
  renderBadge(t);
  if (t === S.active) {
    renderMembers();
    updateTitle();
  }
}

function onTyping(m) {
  const r = S.rooms.get(m.room);
  if (!r || typeof m.nick !== 'string' || sameNick(m.nick, S.nick)) return;
  startTyping(r, m.nick, Date.now());
  if (r === S.active) renderTyping();
}

function onDm(m) {
  if (typeof m.from !== 'string' || typeof m.to !== 'string') return;
  const mine = sameNick(m.from, S.nick);
  const hadEntry = client.pending(m.cid);
  // A DM to yourself comes back twice; only the copy with our cid is shown.
  if (mine && sameNick(m.to, S.nick) && !hadEntry && typeof m.cid !== 'string') return;
  const peer = mine ? m.to : m.from;
  const t = dmTab(peer);
  resolveOutbox(m);
  const box = listOf(t);
  const stick = t === S.active && (S.stick || isAtBottom());
  box.insertBefore(renderMessage(m), firstPending(box));
  if (stick || hadEntry) {
    if (t === S.active) scrollToBottom();
  }
  if (!mine) noteIncoming(t, m.from, m.text);
}

function onHistory(m) {
  const r = S.rooms.get(m.room);
  const ref = typeof m.ref === 'string' ? m.ref : '';
  const msgs = Array.isArray(m.messages) ? m.messages : [];
  if (!r) return;
  if (ref.startsWith('hb:')) {
    mergeRoom(r, msgs, false);
    olderArrived(r, msgs.length);
    renderRoomBar();
    requestAnimationFrame(maybeFill);
    jumpArrived(r);
  } else if (ref.startsWith('hj:')) {
    mergeRoom(r, msgs, false);
    olderArrived(r, msgs.length, CATCH_UP_PAGE);
    renderRoomBar();
    jumpArrived(r);
  } else if (ref.startsWith('hp:')) {
    mergeRoom(r, msgs, false);
    jumpArrived(r);
  } else if (ref.startsWith('ha:')) {
    mergeRoom(r, msgs, false);
    const after = continueCatchUp(r, msgs);
    if (after) client.send({ type: 'history', room: r.name, after, limit: CATCH_UP_PAGE, ref: 'ha:' + r.name });
  } else if (ref.startsWith('hc:')) {
    const n = mergeRoom(r, msgs, false);
    if (r.minSeq === 1) r.reachedStart = true;
    systemLine(r, msgs.length
      ? 'History of #' + r.name + ': the last ' + msgs.length + (msgs.length === 1 ? ' message' : ' messages') +
        (n ? ' (' + n + ' not shown before)' : ', all shown above') + '.'
      : 'History of #' + r.name + ': no messages.');
  } else {
    mergeRoom(r, msgs, false);
  }
}

function onRooms(m) {
  const rooms = Array.isArray(m.rooms) ? m.rooms : [];
  renderOpenRooms(rooms);
  if (m.ref === 'cmd:rooms' && S.active) {
    systemLine(S.active, rooms.length
      ? 'Rooms: ' + rooms.map((x) => '#' + x.name + ' (' + x.members + ')').join(', ')
      : 'Rooms: none.');
  }
}

function onWho(m) {
  const r = S.rooms.get(m.room);
  const members = sortNicks(m.members);
  if (r) {
    r.members = members;
    if (r === S.active) renderMembers();
  }
  if (m.ref === 'cmd:who' && S.active) {
    systemLine(S.active, '#' + m.room + ' (' + members.length + '): ' + members.join(', '));
  }
}

function onError(m) {
  const ref = typeof m.ref === 'string' ? m.ref : '';
  // The stored login token refused (expired, or ended by a logout or a
  // password change elsewhere): forgotten; the page stays a guest.
  const token = client.token;
  if (client.tokenRefused(m)) {
    store.forgetLogin(token);
    S.loginName = '';
    setAccount(null);
    const msg = 'Your saved login has expired or was ended elsewhere: log in again to use your account.';
    if (accountShown()) accountError(msg);
    tell(msg);
    return;
  }
  // A leave refused: the room is kept again if the tab closes.
  if (ref.startsWith('leave:')) {
    const left = S.rooms.get(ref.slice(6));
    if (left) left.leaving = false;
  }
  let ctx = '';
  if (ref === 'acct:register' || ref.startsWith('su:')) ctx = 'register';
  else if (ref.startsWith('acct:')) ctx = 'login';
  else if (ref.startsWith('mod:') || ref.startsWith('bans:')) ctx = 'mod';
  else if (ref.startsWith('j:') || ref.startsWith('rj:') || ref.startsWith('c:')) ctx = 'join';
  const text = errorText(m, ctx);
  const e = ref && client.take(ref);
  if (e) {
    markFailed(e, text);
    // Refused for a mute the page had not heard of (set while it was away).
    if (m.code === 'muted' && e.tab && e.tab.kind === 'room') {
      if (!e.tab.muted) e.tab.muted = { until: null, by: '', said: text };
      if (e.tab === S.active) renderRoomNotice();
    }
    refreshState();
    return;
  }
  if (ref.startsWith('acct:') || ref.startsWith('su:')) {
    let msg = text;
    if (ref.startsWith('su:')) {
      S.signup = null;
      S.pendingNick = null;
      S.wantNick = S.nick;
      msg = 'Could not sign up as ' + ref.slice(3) + ': ' + text;
    }
    if (accountShown()) accountError(msg);
    else tell(msg);
    return;
  }
  if (ref.startsWith('mod:') || ref.startsWith('bans:')) {
    const r = S.rooms.get(ref.split(':')[1]);
    if (r && settingsShownFor(r)) {
      settingsError(text);
      renderSettings(); // a switch flipped in vain flips back
    } else if (r) systemLine(r, text, 'error');
    else tell(text);
    return;
  }
  if (ref === 'nick:restore' && m.code === 'nick_registered') {
    // The name of a login that is gone: a guest may not have it.
    S.pendingNick = null;
    S.wantNick = S.nick;
    const msg = 'Your name from last time belongs to an account: log in to use it, or pick another name.';
    if (S.prompt) {
      S.promptJoin = null;
      resetPromptButton();
      showPromptError(msg);
      return;
    }
    tell(msg);
    return;
  }
  if (ref.startsWith('nick')) {
    S.pendingNick = null;
    if (ref === 'nick:restore') S.wantNick = S.nick;
    const msg = 'Could not change your name: ' + text;
    if (S.prompt) {
      // The name prompt stays, with the name that failed, to be edited.
      S.promptJoin = null;
      resetPromptButton();
      showPromptError(ref === 'nick:restore' ? 'Your name from last time is not free: ' + text : msg);
      ui.promptName.focus();
      ui.promptName.select();
      return;
    }
    if (S.landingOpen) {
      showLandingError(msg);
      ui.name.focus();
      S.notice = msg; // a join sent with it may open the chat next
    }
    if (S.active) systemLine(S.active, msg, 'error');
    if (ref === 'nick:' + ui.name.value.trim()) {
      ui.name.value = S.nick;
      S.shownName = S.nick;
    }
    return;
  }
  if (ref.startsWith('hb:') || ref.startsWith('hj:') || ref.startsWith('hp:')) {
    const r = S.rooms.get(ref.slice(3));
    if (r) {
      r.loadingOlder = false;
      if (!ref.startsWith('hb:')) jumpError(r);
    }
  }
  // An edit, a delete or a reaction refused: said in its room.
  const change = /^(ed|del|re):([^:]+):(\d+)$/.exec(ref);
  if (change) {
    const r = S.rooms.get(change[2]);
    const what = { ed: 'Could not edit that message: ', del: 'Could not delete that message: ', re: 'Could not react: ' }[change[1]];
    const said = errorText(m, 'message');
    if (r) {
      rerender(r, [Number(change[3])]); // no longer "saving"
      systemLine(r, what + said, 'error');
    } else tell(what + said);
    return;
  }
  if (ref.startsWith('sr:') || ref.startsWith('srm:')) {
    searchError(ref, m);
    return;
  }
  if (ref.startsWith('rj:')) {
    const r = S.rooms.get(ref.slice(3));
    if (!r) return;
    systemLine(r, 'Could not rejoin #' + r.name + ': ' + text, 'error');
    // Banned, or the room became invite-only, while the page was away: the
    // room is not ours any more; its tab says so.
    if (m.code === 'banned' || m.code === 'invite_only' || m.code === 'login_required') {
      r.removed = { action: m.code === 'banned' ? 'ban' : 'refused', by: '', reason: '', text: 'Could not rejoin #' + r.name + ': ' + text };
      endRoom(r);
    }
    return;
  }
  const joinText = ref.startsWith('j:') && ctx === 'join' && m.code !== 'nick_taken'
    ? 'Could not join #' + ref.slice(2) + ': ' + text : text;
  if (S.prompt) {
    S.promptJoin = null;
    resetPromptButton();
    showPromptError(joinText);
    return;
  }
  if (S.landingOpen || !S.active) showLandingError(joinText);
  else systemLine(S.active, joinText, 'error');
}

// ---------------------------------------------------------------- actions

export function changeNick(name) {
  if (S.account && !sameNick(name, S.nick)) {
    const msg = 'You are logged in as ' + S.account + ': your name is your account’s. Log out first to use another one.';
    if (S.landingOpen) showLandingError(msg);
    else if (S.active) systemLine(S.active, msg, 'error');
    return false;
  }
  if (!NICK_RE.test(name)) {
    const msg = 'A name is 1–24 letters, digits, _ or -, starting with a letter.';
    if (S.landingOpen) showLandingError(msg);
    else if (S.active) systemLine(S.active, msg, 'error');
    return false;
  }
  if (name === S.nick || name === S.pendingNick) return true;
  S.pendingNick = name;
  S.wantNick = name;
  client.request({ type: 'nick', nick: name, ref: 'nick:' + name });
  return true;
}

// The landing page's name field, if it was changed: asked for before a
// join or a create. False if the name is not valid.
export function applyName() {
  const v = ui.name.value.trim();
  if (!v || v === S.nick || v === S.pendingNick) return true;
  return changeNick(v);
}

export function joinRoom(room) {
  room = cleanRoom(room);
  if (!ROOM_RE.test(room)) {
    const msg = 'A room code or name is 1–32 letters, digits, _ or -.';
    if (S.landingOpen || !S.active) showLandingError(msg);
    else systemLine(S.active, msg, 'error');
    return;
  }
  // A room you were kicked from keeps its tab: back in, after what it holds.
  const known = S.rooms.get(room.toLowerCase()) || endedTab(room);
  const req = { type: 'join', room, ref: 'j:' + room.toLowerCase() };
  if (known) {
    activate(known);
    const since = rejoinSince(known);
    if (since !== undefined) req.since = since;
  }
  client.request(req);
}

export function createRoom() {
  client.request({ type: 'create', ref: 'c:' + newCid().slice(0, 8) });
}

// The name prompt's nick is confirmed: join its room under it.
export function finishPrompt() {
  const p = S.promptJoin;
  if (!p) return;
  S.promptJoin = null;
  store.rememberName(p.nick);
  joinRoom(p.room); // its joined opens the chat, which hides the prompt
}

// /quit: the session ends now (every room sees the leave at once) and is
// forgotten; the page starts afresh on the landing, keeping the name.
export function quit() {
  const ws = client.end();
  S.restore = null;
  for (const t of S.order.slice()) removeTab(t);
  saveState();
  showLanding();
  showLandingError('You quit: your rooms saw you leave. Pick a room to chat again.');
  client.closeThenConnect(ws);
}
