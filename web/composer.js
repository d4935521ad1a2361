// composer.js: the message box. Enter sends (each line typed with
// Shift+Enter as its own message), a line starting with '/' is a command
// (the line protocol's: /nick, /join, /msg, /me, ...; '//' sends a literal
// '/'), and typing in a room tells the others, at most once a second.
// While replying, the first message sent carries `reply_to`; while editing
// (below), Enter saves the edit; Up-arrow in an empty box edits your
// last message, Escape cancels an edit or a reply.

import { S, client, currentRoom } from './state.js';
import { ui, el } from './dom.js';
import { ROOM_RE, byteLength, cleanRoom, fmtSize, newCid, sameNick } from './util.js';
import { quoteOf, lastOwn } from './room.js';
import { activate, dmTab, removeTab, systemLine, enqueue, clearPreview, autosize, clearInput, msgNode } from './view.js';
import { changeNick, joinRoom, createRoom, quit, logout, sendMod } from './chat.js';
import { sendPreview } from './images.js';
import { openAccount } from './landing.js';
import { openSettings } from './roombar.js';

const TYPING_SEND_MS = 1000; // at most one typing notice a second

function tooLong(t, size) {
  systemLine(t, 'That message is ' + size + ' bytes; at most ' + S.limits.max_message + ' can be sent.', 'error');
}

// A message (or a /me action) to the active tab.
function sendText(text, action) {
  const t = S.active;
  if (!t) return false;
  if (!text.trim()) return false;
  const size = byteLength(text);
  if (size > S.limits.max_message) {
    tooLong(t, size);
    return false;
  }
  const cid = newCid();
  if (t.kind === 'room') {
    const payload = { type: 'say', room: t.name, text, cid, ref: cid };
    if (action) payload.action = true;
    const shown = { from: S.nick, text, action, ts: Date.now() };
    const reply = takeReply(t);
    if (reply) {
      payload.reply_to = reply.seq;
      shown.reply_to = reply;
    }
    enqueue(payload, t, shown);
  } else {
    if (action) {
      systemLine(t, '/me works in rooms only.', 'error');
      return false;
    }
    enqueue({ type: 'dm', to: t.name, text, cid, ref: cid }, t, { from: S.nick, text, ts: Date.now() });
  }
  return true;
}

// /msg NICK TEXT: opens (or shows) the conversation's tab.
function sendDm(to, text) {
  const size = byteLength(text);
  const t = dmTab(to);
  activate(t);
  if (size > S.limits.max_message) {
    tooLong(t, size);
    return false;
  }
  const cid = newCid();
  enqueue({ type: 'dm', to, text, cid, ref: cid }, t, { from: S.nick, text, ts: Date.now() });
  return true;
}

function submit() {
  if (S.preview) {
    sendPreview();
    return;
  }
  if (S.active && S.active.compose && S.active.compose.mode === 'edit') {
    sendEdit(ui.input.value);
    return;
  }
  // The server turns control characters (newlines too) into U+FFFD, so
  // each line typed with Shift+Enter goes as its own message, as if typed
  // one after the other.
  const lines = ui.input.value.split(/\r?\n/).map((l) => l.replace(/\s+$/, '')).filter((l) => l.trim());
  if (!lines.length) return;
  const most = Math.max(1, Number(S.limits.burst) || 20);
  if (lines.length > most) {
    if (S.active) systemLine(S.active, 'That is ' + lines.length + ' lines; at most ' + most + ' can be sent at once.', 'error');
    return;
  }
  const long = lines.find((l) => byteLength(l) > S.limits.max_message);
  if (long) {
    if (S.active) systemLine(S.active, 'A message is ' + byteLength(long) + ' bytes; at most ' + S.limits.max_message + ' can be sent.', 'error');
    return;
  }
  for (const raw of lines) {
    if (raw.startsWith('/') && !raw.startsWith('//')) command(raw.trim());
    else sendText(raw.startsWith('//') ? raw.slice(1) : raw, false);
  }
  clearInput();
}

function help(t) {
  const lines = [
    'Commands:',
    '/nick NAME: change your name',
    '/join ROOM: join ROOM (made if absent) and switch to it',
    '/create: make an unlisted room with a fresh code',
    '/leave [ROOM] or /part: leave ROOM or this room',
    '/rooms: the open rooms with their member counts',
    '/who [ROOM]: who is in ROOM or this room',
    '/msg NICK TEXT: a direct message (opens its own tab)',
    '/me TEXT: an action',
    '/history [N]: the last N messages of this room (default 20, at most 200)',
    '/quit: leave every room now and start afresh',
    '/login, /register: log in, or make your name an account (a dialog asks for the password); /logout',
    'Ops: /kick NICK [REASON], /ban NICK [REASON], /unban NICK, /mute NICK [SECS], /unmute NICK, /topic TEXT,',
    '  /invite NICK, /invite-only on|off, /bans, /settings; the owner: /op NICK, /deop NICK',
    '/topic: this room\'s topic',
    '//text: send “/text”',
    'Enter sends, Shift+Enter starts a new line; paste or drop an image to send it. Limits: messages up to ' +
      S.limits.max_message + ' bytes, images up to ' + fmtSize(S.limits.max_image) + '.',
  ];
  for (const l of lines) systemLine(t, l, 'help');
}

function needConnection(t) {
  if (client.ready()) return true;
  systemLine(t, 'Not connected right now; try again once the connection is back.', 'error');
  return false;
}

function command(line) {
  const m = line.match(/^\/(\S+)\s*([\s\S]*)$/);
  const t = S.active;
  if (!m || !t) return;
  const cmd = m[1].toLowerCase();
  const rest = m[2].trim();
  const usage = (u) => systemLine(t, 'Usage: ' + u, 'error');
  switch (cmd) {
    case 'nick':
      if (!rest) return usage('/nick NAME');
      if (needConnection(t)) changeNick(rest);
      return;
    case 'join': {
      const room = cleanRoom(rest);
      if (!room) return usage('/join ROOM');
      if (!ROOM_RE.test(room)) return systemLine(t, 'A room name is 1–32 letters, digits, _ or -.', 'error');
      if (needConnection(t)) joinRoom(room);
      return;
    }
    case 'create':
      if (needConnection(t)) createRoom();
      return;
    case 'leave':
    case 'part': {
      const room = cleanRoom(rest.split(/\s+/)[0]);
      if (!room && t.kind === 'dm') return removeTab(t);
      const target = room || currentRoom();
      if (!target) return usage('/leave ROOM');
      if (needConnection(t)) {
        const tab = S.rooms.get(target);
        if (tab) tab.leaving = true; // see roombar.js's Leave
        client.send({ type: 'leave', room: target, ref: 'leave:' + target });
      }
      return;
    }
    case 'rooms':
    case 'list':
      if (needConnection(t)) client.send({ type: 'rooms', ref: 'cmd:rooms' });
      return;
    case 'who':
    case 'names': {
      const room = cleanRoom(rest.split(/\s+/)[0]) || currentRoom();
      if (!room) return usage('/who ROOM');
      if (needConnection(t)) client.send({ type: 'who', room, ref: 'cmd:who' });
      return;
    }
    case 'msg':
    case 'query': {
      const mm = rest.match(/^(\S+)\s+([\s\S]+)$/);
      if (!mm) return usage('/msg NICK TEXT');
      sendDm(mm[1], mm[2]);
      return;
    }
    case 'me':
      if (!rest) return usage('/me TEXT');
      sendText(rest, true);
      return;
    case 'history': {
      const room = currentRoom();
      if (!room) return systemLine(t, '/history works in rooms only.', 'error');
      let n = 20;
      if (rest) {
        if (!/^\d+$/.test(rest)) return usage('/history [N]');
        n = Math.min(200, parseInt(rest, 10));
      }
      if (n === 0) return systemLine(t, 'History of #' + room + ': no messages.');
      if (needConnection(t)) client.send({ type: 'history', room, limit: n, ref: 'hc:' + room });
      return;
    }
    case 'help':
      help(t);
      return;
    case 'login':
      openAccount('login');
      return;
    case 'register':
    case 'signup':
      openAccount('signup');
      return;
    case 'logout':
      if (!S.account) return systemLine(t, 'You are not logged in.', 'error');
      if (needConnection(t)) logout();
      return;
    case 'kick':
    case 'ban':
    case 'unban':
    case 'mute':
    case 'unmute':
    case 'op':
    case 'deop':
    case 'invite':
    case 'topic':
    case 'invite-only':
    case 'bans':
    case 'settings':
      modCommand(t, cmd, rest, usage);
      return;
    case 'quit':
      quit();
      return;
    default:
      systemLine(t, 'Unknown command /' + m[1] + ': /help lists the commands.', 'error');
  }
}

// The moderation commands, for the current room; the server says whether
// you may.
function modCommand(t, cmd, rest, usage) {
  const room = currentRoom();
  if (!room) return systemLine(t, '/' + cmd + ' works in rooms only.', 'error');
  const r = S.rooms.get(room);
  const m = rest.match(/^(\S+)\s*([\s\S]*)$/);
  const nick = m ? m[1] : '';
  const more = m ? m[2].trim() : '';
  switch (cmd) {
    case 'topic':
      if (!rest) return systemLine(t, r && r.topic ? 'Topic of #' + room + ': ' + r.topic : '#' + room + ' has no topic.');
      if (needConnection(t)) sendMod(room, 'topic', { text: rest });
      return;
    case 'invite-only': {
      const on = { on: true, off: false }[rest.toLowerCase()];
      if (on === undefined) return usage('/invite-only on|off');
      if (needConnection(t)) sendMod(room, 'invite_only', { on });
      return;
    }
    case 'bans':
      if (needConnection(t)) client.request({ type: 'mod', room, action: 'bans', ref: 'cmd:bans' });
      return;
    case 'settings':
      if (r) openSettings(r);
      return;
    case 'mute': {
      if (!nick) return usage('/mute NICK [SECS]');
      if (more && !/^\d+$/.test(more)) return usage('/mute NICK [SECS]');
      const fields = { nick };
      if (more && Number(more) > 0) fields.secs = Number(more);
      if (needConnection(t)) sendMod(room, 'mute', fields);
      return;
    }
    case 'kick':
    case 'ban':
      if (!nick) return usage('/' + cmd + ' NICK [REASON]');
      if (needConnection(t)) sendMod(room, cmd, { nick, reason: more });
      return;
    default:
      if (!nick || more) return usage('/' + cmd + ' NICK');
      if (needConnection(t)) sendMod(room, cmd, { nick });
  }
}

// ---------------------------------------------------- replying and editing
//
// A reply and an edit happen in the message box: a bar above it says
// "Replying to X" or "Editing your message", with ✕ (or Escape) to cancel;
// Up-arrow in an empty box edits your last message. Each tab keeps its own
// (`compose`); an edit is cancelled when you switch tabs, since the box is
// shared. Nothing changes on the page until the server's `edit` event
// comes back (room.js applies it, view.js redraws the message).

export function startReply(t, m) {
  if (!t || t.kind !== 'room' || !m || m.deleted) return;
  if (t.compose && t.compose.mode === 'edit') cancelCompose(false);
  const text = typeof m.text === 'string' && m.text ? m.text : m.image ? '[image]' : '';
  t.compose = { mode: 'reply', seq: m.seq, from: m.from, text: quoteOf(text) };
  renderComposeBar();
  ui.input.focus();
}

export function startEdit(t, m) {
  if (!t || t.kind !== 'room' || !m || m.deleted || !sameNick(m.from, S.nick)) return;
  const draft = t.compose && t.compose.mode === 'edit' ? t.compose.draft : ui.input.value;
  t.compose = { mode: 'edit', seq: m.seq, draft, reply: t.compose && t.compose.mode === 'reply' ? t.compose : null };
  ui.input.value = typeof m.text === 'string' ? m.text : '';
  autosize();
  renderComposeBar();
  ui.input.focus();
  const end = ui.input.value.length;
  ui.input.setSelectionRange(end, end);
}

// Up-arrow in an empty box: edit your last message in the active room.
// Whether there was one to edit.
export function editLast() {
  const t = S.active;
  if (!t || t.kind !== 'room' || t.gone) return false;
  const m = lastOwn(t, S.nick);
  if (!m) return false;
  startEdit(t, m);
  return true;
}

// ✕ or Escape: no more reply or edit. An edit gives the box back what was
// typed before it started.
export function cancelCompose(focus = true) {
  const t = S.active;
  if (!t || !t.compose) return false;
  const c = t.compose;
  t.compose = null;
  if (c.mode === 'edit') {
    ui.input.value = c.draft || '';
    autosize();
    if (c.reply) t.compose = c.reply;
  }
  renderComposeBar();
  if (focus) ui.input.focus();
  return true;
}

// A tab is left: an edit in the shared box does not follow to another tab.
export function leaveTab(t) {
  if (t && t === S.active && t.compose && t.compose.mode === 'edit') cancelCompose(false);
}

// Enter while editing (composer.js): sends the edit. Whether the box may
// be cleared.
export function sendEdit(raw) {
  const t = S.active;
  const c = t && t.compose;
  if (!c || c.mode !== 'edit') return false;
  // The server turns newlines into U+FFFD: an edit is one line.
  const text = raw.split(/\r?\n/).map((l) => l.trim()).filter(Boolean).join(' ');
  const m = t.msgs.get(c.seq);
  if (!text) {
    systemLine(t, 'An edit cannot be empty: delete the message instead.', 'error');
    return false;
  }
  if (byteLength(text) > S.limits.max_message) {
    systemLine(t, 'That message is ' + byteLength(text) + ' bytes; at most ' + S.limits.max_message + ' can be sent.', 'error');
    return false;
  }
  if (!m || m.deleted) {
    systemLine(t, 'That message is not there any more.', 'error');
    cancelCompose();
    return false;
  }
  if (text !== m.text) {
    client.request({ type: 'edit', room: t.name, seq: c.seq, text, ref: 'ed:' + t.name + ':' + c.seq });
    const n = msgNode(c.seq);
    if (n) n.classList.add('saving');
  }
  cancelCompose();
  return true;
}

// The reply to attach to a message about to be sent (and forgotten: one
// message answers it). null when not replying.
export function takeReply(t) {
  const c = t && t.compose;
  if (!c || c.mode !== 'reply') return null;
  t.compose = null;
  renderComposeBar();
  return { seq: c.seq, from: c.from, text: c.text };
}

// The bar above the message box.
export function renderComposeBar() {
  const t = S.active;
  const c = t && t.kind === 'room' && !t.gone ? t.compose : null;
  ui.composeCtx.hidden = !c;
  ui.composer.classList.toggle('editing', !!c && c.mode === 'edit');
  ui.composeCtxText.textContent = '';
  if (!c) {
    ui.input.removeAttribute('aria-label');
    return;
  }
  if (c.mode === 'reply') {
    ui.composeCtxText.append('Replying to ', el('strong', 'who', c.from));
    if (c.text) ui.composeCtxText.append(el('span', 'ctx-quote', c.text));
    ui.composeCtxCancel.setAttribute('aria-label', 'Cancel the reply');
    ui.composeCtxCancel.title = 'Cancel the reply (Escape)';
    ui.input.setAttribute('aria-label', 'Reply to ' + c.from);
  } else {
    ui.composeCtxText.append(el('strong', null, 'Editing'), ' your message: Enter saves, Escape cancels');
    ui.composeCtxCancel.setAttribute('aria-label', 'Cancel editing');
    ui.composeCtxCancel.title = 'Cancel editing (Escape)';
    ui.input.setAttribute('aria-label', 'Edit your message');
  }
}

export function wireComposer() {
  ui.input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      submit();
    } else if (e.key === 'Escape' && S.preview) {
      clearPreview();
    } else if (e.key === 'Escape') {
      if (cancelCompose()) e.preventDefault();
    } else if (e.key === 'ArrowUp' && !ui.input.value && !S.preview && !e.shiftKey && !e.altKey &&
        !e.ctrlKey && !e.metaKey && !e.isComposing) {
      if (editLast()) e.preventDefault();
    }
  });

  ui.input.addEventListener('input', () => {
    autosize();
    const t = S.active;
    const v = ui.input.value;
    if (!t || t.kind !== 'room' || !v.trim() || (v.startsWith('/') && !v.startsWith('//'))) return;
    if (t.compose && t.compose.mode === 'edit') return;
    const now = Date.now();
    if (now - S.lastTyping >= TYPING_SEND_MS && client.ready()) {
      S.lastTyping = now;
      client.send({ type: 'typing', room: t.name });
    }
  });

  ui.composer.addEventListener('submit', (e) => {
    e.preventDefault();
    submit();
    ui.input.focus();
  });

  ui.composeCtxCancel.addEventListener('click', () => cancelCompose());
}
