// view.js: everything the page draws. The status line, the tabs (a room or
// a direct conversation each), the message list of the active tab, members
// and typing, the room bar, which pane shows (landing, name prompt or chat)
// and the list of open rooms.
//
// Each tab keeps its messages in its own element (`box`) while another tab
// is shown; the active tab's are moved into #messages. A message the page
// sent shows at once with the class `pending` (always last in the list)
// until the server's copy replaces it.
//
// Accounts and moderation: an account mark (.acct) beside the names of
// members and senders who are logged in, the room's head (name, topic,
// invite-only, your role), the member list's moderation menus for ops, the
// notice of your own mute, and a room you were kicked or banned from: its
// tab stays, saying so, without the message box, until it is closed or
// joined again.
//
// A room message is drawn as it is now (room.js's msgs): an edit shows in
// place with "(edited)", a delete as "message deleted", a reply with the
// start of the message it answers, reactions as chips under it; a change
// arriving later redraws it in place (rerender). What one does to a
// message (its toolbar, the emoji picker, the delete dialog) and the
// reaction chips are toolbar.js's; jumping to a message (a reply's quote,
// a search result) is further down here.
//
// It decides nothing about the protocol: chat.js, composer.js and the other
// modules call it. room.js says where merged messages go; this module puts
// them there.

import { S, client, saveState } from './state.js';
import { ui, el, timeEl, appendText } from './dom.js';
import { MEDIA_RE, sameNick, sortNicks, nickClass, fmtSize } from './util.js';
import {
  PAGE, CATCH_UP_PAGE, newRoom, merge, forget, olderBefore, typingNames, typingText, canModerate, roleOf, isAccount,
  memberActions, muteOf, mutedNow, reactionList, mentions,
} from './room.js';
import { memberAction } from './roombar.js';
import { renderComposeBar, leaveTab } from './composer.js';
import { decorate, pickerFor, reactionsEl } from './toolbar.js';
import { renderSearch } from './search.js';

// ------------------------------------------------------------ status line

const STATUS_TEXT = {
  connecting: 'connecting…',
  connected: 'connected',
  reconnecting: 'reconnecting…',
  offline: 'offline',
};

export function refreshState() {
  const s = client.status();
  if (s !== S.state || ui.status.dataset.state !== s) {
    S.state = s;
    ui.status.dataset.state = s;
    ui.status.textContent = STATUS_TEXT[s];
  }
  ui.retry.hidden = !(s === 'reconnecting' && !client.ws);
  document.body.dataset.conn = s;
  const queued = client.outbox.size;
  ui.status.title = queued && s !== 'connected' ? queued + ' message(s) waiting to be sent' : '';
}

// ------------------------------------------------------------------- tabs

export function makeTab(kind, name) {
  const t = {
    kind,
    name, // room name, or the peer's nick
    key: (kind === 'room' ? 'r:' : 'd:') + name.toLowerCase(),
    box: document.createElement('div'),
    unread: 0,
    scroll: null,
    ...newRoom(),
    created: false,
  };
  const b = el('button', 'tab');
  b.type = 'button';
  b.setAttribute('role', 'tab');
  b.setAttribute('aria-selected', 'false');
  b.setAttribute('aria-controls', 'messages');
  b.tabIndex = -1;
  if (kind === 'room') b.dataset.room = name;
  else b.dataset.dm = name;
  t.labelEl = el('span', 'label', kind === 'room' ? '#' + name : '@' + name);
  t.badgeEl = el('span', 'unread');
  t.badgeEl.hidden = true;
  t.badgeEl.setAttribute('aria-label', 'unread messages');
  b.append(t.labelEl, t.badgeEl);
  b.addEventListener('click', () => activate(t));
  b.addEventListener('keydown', tabKeys);
  t.tabEl = b;
  ui.tabs.appendChild(b);
  S.order.push(t);
  if (kind === 'room') S.rooms.set(name, t);
  else S.dms.set(name.toLowerCase(), t);
  return t;
}

function tabKeys(e) {
  const i = S.order.findIndex((t) => t.tabEl === e.currentTarget);
  if (i < 0) return;
  let j = -1;
  if (e.key === 'ArrowRight') j = (i + 1) % S.order.length;
  else if (e.key === 'ArrowLeft') j = (i - 1 + S.order.length) % S.order.length;
  else if (e.key === 'Home') j = 0;
  else if (e.key === 'End') j = S.order.length - 1;
  if (j < 0) return;
  e.preventDefault();
  activate(S.order[j]);
  S.order[j].tabEl.focus();
}

// The element holding a tab's messages.
export const listOf = (t) => (t === S.active ? ui.messages : t.box);

function moveChildren(from, to) {
  const f = document.createDocumentFragment();
  while (from.firstChild) f.appendChild(from.firstChild);
  to.appendChild(f);
}

export function activate(t, opts) {
  if (!t) return;
  showChat(); // first: scrolling needs the list laid out
  if (S.active && S.active !== t) {
    leaveTab(S.active);
    S.active.scroll = S.stick ? null : ui.messages.scrollTop;
    ui.messages.setAttribute('aria-busy', 'true');
    moveChildren(ui.messages, S.active.box);
  }
  if (S.active !== t) {
    S.active = t;
    renderRoomBar(); // before scrolling: it changes the list's height
    moveChildren(t.box, ui.messages);
    ui.messages.setAttribute('aria-busy', 'false');
    if (t.scroll === null) scrollToBottom();
    else ui.messages.scrollTop = t.scroll;
    S.stick = t.scroll === null;
  }
  for (const o of S.order) {
    const on = o === t;
    o.tabEl.setAttribute('aria-selected', on ? 'true' : 'false');
    o.tabEl.tabIndex = on ? 0 : -1;
  }
  t.tabEl.scrollIntoView({ block: 'nearest', inline: 'nearest' });
  markRead(t);
  renderRoomBar();
  renderMembers();
  renderTyping();
  renderComposeBar();
  renderSearch();
  if (t.kind === 'room' && !(opts && opts.keepHash)) setHash(t.name);
  saveState();
  if (!(opts && opts.noFocus) && window.matchMedia('(pointer: fine)').matches) ui.input.focus();
  requestAnimationFrame(maybeFill);
}

export function removeTab(t) {
  const i = S.order.indexOf(t);
  if (i < 0) return;
  leaveTab(t);
  S.order.splice(i, 1);
  t.tabEl.remove();
  if (t.kind === 'room') S.rooms.delete(t.name);
  else S.dms.delete(t.name.toLowerCase());
  client.forget((e) => e.tab === t);
  if (S.active === t) {
    ui.messages.textContent = '';
    S.active = null;
    const next = S.order[Math.min(i, S.order.length - 1)] || S.order[i - 1];
    if (next) activate(next);
    else {
      setHash('');
      showLanding();
      renderMembers();
      renderTyping();
    }
  }
  updateTitle();
  saveState();
}

// The tab of a direct conversation, made if absent.
export function dmTab(peer) {
  let t = S.dms.get(peer.toLowerCase());
  if (!t) t = makeTab('dm', peer);
  if (!S.active) activate(t);
  return t;
}

export function markRead(t) {
  if (document.hidden || S.landingOpen) return;
  if (t.unread) {
    t.unread = 0;
    renderBadge(t);
  }
  updateTitle();
}

export function renderBadge(t) {
  t.badgeEl.textContent = t.unread ? String(t.unread) : '';
  t.badgeEl.hidden = !t.unread;
  if (!t.unread) t.mentioned = false;
  t.tabEl.classList.toggle('has-unread', !!t.unread);
  t.tabEl.classList.toggle('has-mention', !!t.unread && !!t.mentioned);
  t.tabEl.setAttribute('aria-label', (t.kind === 'room' ? '#' : 'direct messages with ') + t.name +
    (t.unread ? ', ' + t.unread + ' unread' + (t.mentioned ? ', you were mentioned' : '') : ''));
}

export function updateTitle() {
  let n = 0;
  for (const t of S.order) n += t.unread;
  const where = S.active ? (S.active.kind === 'room' ? '#' + S.active.name : '@' + S.active.name) + ' · ' : '';
  document.title = (n ? '(' + n + ') ' : '') + where + 'natter';
}

// ------------------------------------------------------------------ panes

export function showChat() {
  hidePrompt();
  S.landingOpen = false;
  ui.landing.hidden = true;
  ui.chat.hidden = false;
  S.notice = '';
  clearLandingError();
  if (S.active) markRead(S.active);
}

export function showLanding() {
  hidePrompt();
  S.landingOpen = true;
  ui.chat.hidden = true;
  ui.landing.hidden = false;
  ui.backToChat.hidden = S.order.length === 0;
  if (client.ready()) client.send({ type: 'rooms', ref: 'landing' });
  else fetchRooms();
}

export function setHash(room) {
  const want = room ? '#' + room : '';
  if (location.hash === want || (!room && !location.hash)) return;
  try {
    history.replaceState(null, '', location.pathname + location.search + want);
  } catch (e) {
    /* ignore */
  }
}

export function showLandingError(text) {
  ui.landingError.textContent = text;
}

export function clearLandingError() {
  ui.landingError.textContent = '';
}

// The open rooms on the landing page. Each item is an li[data-room] with a
// button; landing.js handles the clicks.
export function renderOpenRooms(rooms) {
  const frag = document.createDocumentFragment();
  for (const x of rooms) {
    if (!x || typeof x.name !== 'string') continue;
    const li = el('li');
    li.dataset.room = x.name;
    const b = el('button', 'room-btn');
    b.type = 'button';
    b.appendChild(el('span', 'room-name', '#' + x.name));
    const n = Number(x.members) || 0;
    b.appendChild(el('span', 'room-count', n + (n === 1 ? ' person' : ' people')));
    b.setAttribute('aria-label', 'Join #' + x.name + ', ' + n + (n === 1 ? ' person' : ' people') + ' here');
    li.appendChild(b);
    frag.appendChild(li);
  }
  ui.openRooms.textContent = '';
  ui.openRooms.appendChild(frag);
  ui.noRooms.hidden = rooms.length > 0;
}

// The open rooms over plain HTTP, for when the WebSocket is not ready.
export function fetchRooms() {
  fetch('/api/rooms', { cache: 'no-store' })
    .then((r) => (r.ok ? r.json() : null))
    .then((j) => {
      if (j && Array.isArray(j.rooms)) renderOpenRooms(j.rooms);
    })
    .catch(() => {});
}

// A share link (/#CODE) opened without a session asks for a name first
// (landing.js); this shows and hides that prompt.
export function showPrompt(room) {
  S.prompt = room;
  S.promptJoin = null;
  S.landingOpen = false;
  ui.landing.hidden = true;
  ui.chat.hidden = true;
  ui.prompt.hidden = false;
  document.body.classList.add('prompting');
  ui.promptRoom.textContent = '#' + room;
  document.title = 'Join #' + room + ' · natter';
  clearPromptError();
  resetPromptButton();
  const name = S.pendingNick || S.wantNick || S.nick;
  if (!ui.promptName.value.trim() && name) {
    ui.promptName.value = name;
    S.promptShown = name;
  }
  ui.promptName.focus();
  ui.promptName.select();
}

export function hidePrompt() {
  if (!S.prompt && ui.prompt.hidden) return;
  S.prompt = '';
  S.promptJoin = null;
  ui.prompt.hidden = true;
  document.body.classList.remove('prompting');
  resetPromptButton();
  clearPromptError();
}

export function resetPromptButton() {
  ui.promptJoin.disabled = false;
  ui.promptJoin.textContent = 'Join';
  ui.promptName.removeAttribute('aria-invalid');
}

export function showPromptError(text) {
  ui.promptError.textContent = text;
  ui.promptName.setAttribute('aria-invalid', 'true');
}

export function clearPromptError() {
  ui.promptError.textContent = '';
}

// --------------------------------------------------------------- messages

export function isAtBottom() {
  const b = ui.messages;
  return b.scrollHeight - b.scrollTop - b.clientHeight < 48;
}

export function scrollToBottom() {
  ui.messages.scrollTop = ui.messages.scrollHeight;
  S.stick = true;
}

// A room's messages start afresh (the server's history was reset); our
// pending messages stay.
export function resetRoom(r) {
  listOf(r).textContent = '';
  forget(r);
  for (const e of client.outbox.values()) if (e.tab === r && e.node) listOf(r).appendChild(e.node);
}

// Shows room messages in seq order, each seq once (room.js's merge). `live`:
// someone else's new message, counted as unread and notified. Returns how
// many were new.
export function mergeRoom(r, msgs, live) {
  const box = listOf(r);
  const active = r === S.active;
  const stick = active && (S.stick || isAtBottom());
  const fromBottom = active ? box.scrollHeight - box.scrollTop : 0;
  let prepended = false;
  const added = [];
  const changed = new Set();
  // Older than everything shown (a page of history): one block on top.
  const older = document.createDocumentFragment();
  for (const { msg, where, changed: ch } of merge(r, msgs)) {
    resolveOutbox(msg);
    if (where === 'amend') {
      for (const seq of ch) changed.add(seq);
      continue;
    }
    if (!where) continue;
    const node = renderMessage(msg);
    if (where === 'top') {
      older.appendChild(node);
      prepended = true;
    } else if (where === 'end') {
      box.insertBefore(node, firstPending(box));
    } else {
      insertMiddle(box, node, msg.seq);
    }
    added.push(msg);
  }
  if (prepended) box.insertBefore(older, box.firstChild);
  if (changed.size) rerender(r, changed);
  if (active) {
    if (stick && !prepended) scrollToBottom();
    else if (prepended) box.scrollTop = box.scrollHeight - fromBottom;
  }
  if (live) {
    for (const msg of added) {
      noteIncoming(r, msg.from, msg.action ? '* ' + msg.from + ' ' + msg.text : msg.text || (msg.image ? '[image]' : ''),
        mentions(msg, S.nick));
    }
  }
  return added.length;
}

// Draws again, in place, the messages of room `r` with these seqs (a change
// reached them). The focus stays where it was (the message, or the same
// button in it).
export function rerender(r, seqs) {
  const box = listOf(r);
  for (const seq of seqs) {
    const old = box.querySelector('.msg[data-seq="' + seq + '"]');
    const m = r.msgs.get(seq);
    if (!old || !m) continue;
    const node = renderMessage(m);
    for (const c of ['flash', 'show-actions', 'kb']) if (old.classList.contains(c)) node.classList.add(c);
    const a = document.activeElement;
    let key = null;
    if (a && old.contains(a)) key = a === old ? '' : a.dataset.k || '';
    old.replaceWith(node);
    if (key !== null) {
      const target = (key && node.querySelector('[data-k="' + CSS.escape(key) + '"]')) || node;
      target.focus({ preventScroll: true });
    }
  }
}

export function firstPending(box) {
  for (let n = box.firstElementChild; n; n = n.nextElementSibling) if (n.classList.contains('pending')) return n;
  return null;
}

function insertMiddle(box, node, seq) {
  for (let n = box.lastElementChild; n; n = n.previousElementSibling) {
    if (n.dataset.seq && Number(n.dataset.seq) < seq) {
      box.insertBefore(node, n.nextSibling);
      return;
    }
  }
  box.insertBefore(node, box.firstChild);
}

// The server's copy of a message we sent (same cid): the pending one goes.
export function resolveOutbox(msg) {
  const e = client.take(msg.cid);
  if (!e) return false;
  if (e.node) e.node.remove();
  refreshState();
  return true;
}

// Unread counts, the title and desktop notifications for someone else's message.
// A mention of you (`mention`) marks the tab too, and is notified even
// while the page has the focus, if it is another tab that is showing.
export function noteIncoming(t, from, text, mention) {
  const visible = t === S.active && !document.hidden && !S.landingOpen;
  if (!visible) {
    t.unread += 1;
    if (mention) t.mentioned = true;
    renderBadge(t);
    updateTitle();
  }
  const away = document.hidden || !document.hasFocus() || (mention && !visible);
  if (S.notify && away && 'Notification' in window && Notification.permission === 'granted') {
    try {
      const title = t.kind === 'room' ? from + (mention ? ' mentioned you in #' : ' in #') + t.name : from + ' (direct)';
      const n = new Notification(title, {
        body: String(text).slice(0, 200),
        tag: t.key,
      });
      n.onclick = () => {
        window.focus();
        activate(t);
        n.close();
      };
    } catch (e) {
      /* some browsers only allow notifications from a service worker */
    }
  }
}

export function renderMessage(m) {
  const d = el('div', 'msg');
  const room = typeof m.seq === 'number' && typeof m.room === 'string';
  if (typeof m.seq === 'number') d.dataset.seq = String(m.seq);
  if (m.action) d.classList.add('action');
  const from = typeof m.from === 'string' ? m.from : '?';
  if (sameNick(from, S.nick)) d.classList.add('mine');
  if (m.reply_to && typeof m.reply_to === 'object' && typeof m.reply_to.seq === 'number') d.appendChild(quoteEl(m.reply_to));
  d.appendChild(timeEl(m.ts));
  d.appendChild(document.createTextNode(' '));
  if (m.action) d.appendChild(el('span', 'star', '*'));
  d.appendChild(el('span', 'nick ' + nickClass(from), from));
  if (typeof m.account === 'string' && m.account) d.appendChild(acctMark());
  d.appendChild(document.createTextNode(' '));
  if (m.deleted) {
    d.classList.add('deleted');
    d.appendChild(el('span', 'text gone', 'message deleted'));
    if (room) decorate(d, m);
    return d;
  }
  const text = el('span', 'text');
  const named = Array.isArray(m.mentions) ? m.mentions.filter((n) => typeof n === 'string') : [];
  appendText(text, m.text, { mentions: named, me: named.some((n) => sameNick(n, S.nick)) ? S.nick : '' });
  d.appendChild(text);
  if (typeof m.edited_ts === 'number') {
    const e = el('span', 'edited', '(edited)');
    e.title = 'Edited ' + new Date(m.edited_ts).toLocaleString();
    d.appendChild(document.createTextNode(' '));
    d.appendChild(e);
  }
  if (m.image && typeof m.image.url === 'string' && MEDIA_RE.test(m.image.url)) {
    d.classList.add('image');
    const a = el('a', 'media');
    a.href = m.image.url;
    a.target = '_blank';
    a.rel = 'noopener';
    const img = el('img');
    img.src = m.image.url;
    img.alt = m.text ? 'image from ' + from + ': ' + m.text : 'image from ' + from;
    img.loading = 'lazy';
    img.decoding = 'async';
    img.addEventListener('load', () => {
      if (d.parentNode === ui.messages && S.stick) scrollToBottom();
    });
    a.appendChild(img);
    d.appendChild(a);
    if (typeof m.image.size === 'number') {
      a.title = (m.image.mime || 'image') + ', ' + fmtSize(m.image.size);
    }
  }
  // A mention of you (the server's `mentions`; a direct message says
  // `@you` in its text).
  if (S.nick && !sameNick(from, S.nick) && (mentions(m, S.nick) ||
      (!room && typeof m.text === 'string' && new RegExp('(^|[^A-Za-z0-9_-])@' + S.nick.replace(/[-]/g, '\\-') + '($|[^A-Za-z0-9_-])', 'i').test(m.text)))) {
    d.classList.add('mention');
  }
  const chips = reactionList(m);
  if (chips.length) d.appendChild(reactionsEl(chips));
  if (room) decorate(d, m);
  const p = pickerFor(m);
  if (p) d.appendChild(p);
  return d;
}

// The quote above a reply: who and the start of what they said; a button
// that jumps to the message (jumpTo).
function quoteEl(q) {
  const b = el('button', 'quote');
  b.type = 'button';
  b.dataset.k = 'quote';
  b.dataset.target = String(q.seq);
  const who = typeof q.from === 'string' ? q.from : '?';
  b.appendChild(el('span', 'quote-from ' + nickClass(who), who));
  b.appendChild(document.createTextNode(' '));
  const deleted = typeof q.text !== 'string';
  b.appendChild(el('span', 'quote-text' + (deleted ? ' gone' : ''), deleted ? 'message deleted' : q.text));
  b.title = 'Show the message ' + who + ' wrote';
  b.setAttribute('aria-label', 'Reply to ' + who + (deleted ? ' (message deleted)' : ': ' + q.text) + '. Show that message');
  return b;
}

// A line from the page itself (joins, errors, help). `text` is a string,
// or a list of strings and {nick} parts (shown in the nick's colour). With
// no tab it goes to the landing page's error line, if that is showing.
export function systemLine(t, text, extra) {
  const d = el('div', 'system' + (extra ? ' ' + extra : ''));
  d.appendChild(timeEl(Date.now()));
  d.appendChild(document.createTextNode(' '));
  const span = el('span', 'text');
  if (Array.isArray(text)) {
    for (const part of text) {
      if (typeof part === 'string') span.appendChild(document.createTextNode(part));
      else span.appendChild(el('span', 'who ' + nickClass(part.nick), part.nick));
    }
  } else {
    span.textContent = text;
  }
  d.appendChild(span);
  if (!t) {
    if (S.landingOpen) showLandingError(typeof text === 'string' ? text : span.textContent);
    return d;
  }
  const box = listOf(t);
  const stick = t === S.active && (S.stick || isAtBottom());
  box.insertBefore(d, firstPending(box));
  if (stick) scrollToBottom();
  return d;
}

// ------------------------------------------------------- pending messages

// Shows a message we send (`shown`: how it looks) as pending, and hands it
// to the outbox, which sends it until the server confirms it.
export function enqueue(payload, t, shown) {
  const e = { cid: payload.cid, payload, tab: t, node: null, sentConn: 0 };
  const node = renderMessage(shown);
  node.classList.add('pending');
  node.dataset.cid = payload.cid;
  node.title = 'Not confirmed by the server yet';
  e.node = node;
  listOf(t).appendChild(node);
  if (t === S.active) scrollToBottom();
  client.enqueue(e);
  refreshState();
}

// The server refused a message: it stays, marked, with Retry and Dismiss.
export function markFailed(e, why) {
  if (!e.node) return;
  const n = e.node;
  n.classList.add('failed');
  n.title = 'Not sent: ' + why;
  const note = el('span', 'fail-note', ' Not sent: ' + why + ' ');
  const retry = el('button', 'small', 'Retry');
  retry.type = 'button';
  retry.addEventListener('click', () => {
    note.remove();
    retry.remove();
    n.classList.remove('failed');
    // Keep it last among the pending ones.
    listOf(e.tab).appendChild(n);
    client.enqueue(e);
    refreshState();
  });
  const dismiss = el('button', 'small', 'Dismiss');
  dismiss.type = 'button';
  dismiss.addEventListener('click', () => n.remove());
  n.append(note, retry, dismiss);
}

// ------------------------------------------------------ members and typing

export function renderMembers() {
  const t = S.active;
  let list = [];
  const room = t && t.kind === 'room' && !t.gone ? t : null;
  if (room) list = t.members;
  else if (t && t.kind === 'dm') list = sortNicks(sameNick(t.name, S.nick) ? [S.nick] : [t.name, S.nick]);
  if (!room) S.menuFor = '';
  const refocus = memberFocus();
  const now = Date.now();
  const frag = document.createDocumentFragment();
  let open = false;
  list.forEach((n, i) => {
    const self = sameNick(n, S.nick);
    const li = el('li', self ? 'self' : null);
    li.dataset.nick = n;
    const row = el('div', 'member-row');
    const b = el('button', 'member ' + nickClass(n));
    b.type = 'button';
    b.appendChild(el('span', 'name', n));
    if (room ? isAccount(room, n) : self && !!S.account) b.appendChild(acctMark());
    const role = room ? roleOf(room, n) : '';
    if (role) b.appendChild(el('span', 'badge role', role));
    if (room && muteOf(room, n, now)) b.appendChild(el('span', 'badge muted', 'muted'));
    b.title = self ? 'This is you' : 'Send ' + n + ' a direct message';
    b.addEventListener('click', () => {
      if (sameNick(n, S.nick)) return;
      activate(dmTab(n));
      closeMembersOnPhone();
    });
    row.appendChild(b);
    li.appendChild(row);
    // An op's menu for this member (room.js's memberActions says which).
    const actions = room ? memberActions(room, n, S.nick) : [];
    if (actions.length) {
      const key = n.toLowerCase();
      const isOpen = S.menuFor === key;
      open = open || isOpen;
      const menuId = 'member-menu-' + i;
      const mb = el('button', 'mod-btn small', '⋯');
      mb.type = 'button';
      mb.title = 'Moderate ' + n;
      mb.setAttribute('aria-label', 'Moderate ' + n);
      mb.setAttribute('aria-haspopup', 'menu');
      mb.setAttribute('aria-expanded', isOpen ? 'true' : 'false');
      mb.setAttribute('aria-controls', menuId);
      mb.addEventListener('click', () => toggleMenu(key));
      mb.addEventListener('keydown', (e) => {
        if (e.key === 'ArrowDown' && S.menuFor !== key) {
          e.preventDefault();
          toggleMenu(key);
        }
      });
      row.appendChild(mb);
      const menu = el('div', 'member-menu');
      menu.id = menuId;
      menu.setAttribute('role', 'menu');
      menu.setAttribute('aria-label', 'Moderate ' + n);
      menu.hidden = !isOpen;
      for (const a of actions) {
        const item = el('button', 'menu-item' + (a.action === 'kick' || a.action === 'ban' ? ' danger' : ''), a.label + (a.ask ? '…' : ''));
        item.type = 'button';
        item.setAttribute('role', 'menuitem');
        item.tabIndex = -1;
        item.dataset.action = a.action;
        if (a.secs) item.dataset.secs = String(a.secs);
        item.addEventListener('click', () => {
          closeMenu(false);
          memberAction(room, n, a);
        });
        menu.appendChild(item);
      }
      menu.addEventListener('keydown', menuKeys);
      li.appendChild(menu);
    }
    frag.appendChild(li);
  });
  if (!open) S.menuFor = '';
  ui.members.textContent = '';
  ui.members.appendChild(frag);
  ui.membersToggle.textContent = 'Members (' + list.length + ')';
  if (refocus) restoreMemberFocus(refocus);
}

// The account mark beside a name (style.css draws it).
export function acctMark() {
  const s = el('span', 'acct');
  s.setAttribute('role', 'img');
  s.setAttribute('aria-label', '(logged in)');
  s.title = 'Logged in: this name is a registered account';
  return s;
}

// What had the focus in the member list, to have it again after a redraw.
function memberFocus() {
  const a = document.activeElement;
  if (!a || !ui.members.contains(a)) return null;
  const li = a.closest('li');
  if (!li) return null;
  let what = 'member';
  if (a.classList.contains('mod-btn')) what = 'mod';
  else if (a.classList.contains('menu-item')) what = 'item:' + [...li.querySelectorAll('.menu-item')].indexOf(a);
  return { nick: li.dataset.nick.toLowerCase(), what };
}

function restoreMemberFocus(f) {
  const li = [...ui.members.children].find((x) => x.dataset.nick.toLowerCase() === f.nick);
  if (!li) return;
  let target = li.querySelector('.member');
  if (f.what === 'mod') target = li.querySelector('.mod-btn') || target;
  else if (f.what.startsWith('item:')) {
    const items = li.querySelectorAll('.menu-item');
    target = items[Math.min(Number(f.what.slice(5)), items.length - 1)] || li.querySelector('.mod-btn') || target;
  }
  if (target) target.focus();
}

function menuButtonOf(key) {
  const li = [...ui.members.children].find((x) => x.dataset.nick.toLowerCase() === key);
  return li ? li.querySelector('.mod-btn') : null;
}

// Opens (and focuses the first item of) the member's menu, or closes it.
function toggleMenu(key) {
  if (S.menuFor === key) {
    closeMenu(true);
    return;
  }
  S.menuFor = key;
  renderMembers();
  const b = menuButtonOf(key);
  const first = b && b.closest('li').querySelector('.menu-item');
  if (first) first.focus();
}

export function closeMenu(focusButton) {
  if (!S.menuFor) return;
  const key = S.menuFor;
  S.menuFor = '';
  for (const m of ui.members.querySelectorAll('.member-menu')) m.hidden = true;
  for (const b of ui.members.querySelectorAll('.mod-btn')) b.setAttribute('aria-expanded', 'false');
  const b = menuButtonOf(key);
  if (focusButton && b) b.focus();
}

function menuKeys(e) {
  const items = [...e.currentTarget.querySelectorAll('.menu-item')];
  const i = items.indexOf(document.activeElement);
  let j = -1;
  if (e.key === 'ArrowDown') j = (i + 1) % items.length;
  else if (e.key === 'ArrowUp') j = (i - 1 + items.length) % items.length;
  else if (e.key === 'Home') j = 0;
  else if (e.key === 'End') j = items.length - 1;
  else if (e.key === 'Escape') {
    e.preventDefault();
    e.stopPropagation(); // the menu closes, not the members drawer
    closeMenu(true);
    return;
  } else if (e.key === 'Tab') {
    closeMenu(false);
    return;
  }
  if (j < 0) return;
  e.preventDefault();
  items[j].focus();
}

export function closeMembersOnPhone() {
  ui.chat.classList.remove('show-members');
  ui.membersToggle.setAttribute('aria-expanded', 'false');
}

export function renderTyping() {
  const t = S.active;
  const names = t && t.kind === 'room' ? typingNames(t, Date.now()) : [];
  const text = typingText(names);
  if (ui.typing.textContent !== text) ui.typing.textContent = text;
}

// --------------------------------------------------------------- room bar

export function renderRoomBar() {
  const t = S.active;
  const room = t && t.kind === 'room';
  ui.share.hidden = !room;
  if (room) {
    const link = location.origin + '/#' + t.name;
    ui.roomCode.textContent = t.name;
    ui.shareLink.href = link;
    ui.shareLink.firstChild.textContent = location.origin;
    ui.shareLink.lastChild.textContent = '/#' + t.name;
    ui.shareLink.title = 'Link that joins #' + t.name;
    ui.leave.textContent = 'Leave';
    ui.leave.setAttribute('aria-label', 'Leave #' + t.name);
  } else {
    ui.roomCode.textContent = '';
    ui.shareLink.setAttribute('href', '/');
    ui.shareLink.firstChild.textContent = '';
    ui.shareLink.lastChild.textContent = '';
    ui.leave.textContent = 'Close';
    ui.leave.setAttribute('aria-label', t ? 'Close the conversation with ' + t.name : 'Close');
  }
  renderRoomHead();
  ui.copyNote.textContent = '';
  if (!S.preview) ui.input.placeholder = placeholder();
  ui.attach.disabled = !room;
  ui.messages.classList.toggle('can-mod', !!room && canModerate(t));
  ui.loadOlder.hidden = !room || t.reachedStart || !t.seqs.size;
  ui.loadOlder.textContent = room && t.loadingOlder ? 'Loading…' : 'Load older messages';
  if (!room) clearPreview();
}

// The room's name, topic, invite-only and your role; Settings for ops;
// a room you were kicked or banned from says so instead of the message box.
function renderRoomHead() {
  const t = S.active;
  const room = !!t && t.kind === 'room';
  if (room) {
    ui.roomName.textContent = '#' + t.name;
    ui.roomLock.hidden = !t.inviteOnly || !!t.gone;
    const role = t.gone ? '' : t.role === 'owner' ? 'owner' : t.role === 'op' ? 'op' : '';
    ui.roomRole.hidden = !role;
    ui.roomRole.textContent = role ? 'you: ' + role : '';
    ui.roomRole.title = role === 'owner' ? 'You own this room: you moderate it and name its ops' : role ? 'You are an op: you moderate this room' : '';
    const topic = t.gone ? '' : t.topic || '';
    if (ui.roomTopic.textContent !== topic) {
      ui.roomTopic.textContent = topic;
      ui.roomTopic.classList.remove('expanded');
      ui.roomTopic.setAttribute('aria-expanded', 'false');
    }
    ui.roomTopic.hidden = !topic;
  }
  ui.roomSettings.hidden = !(room && !t.gone && canModerate(t));
  // Shown in every room: the search box, and a topic, invite-only, your role.
  ui.roomHead.hidden = !room; // the search box is always there
  const gone = room && !!t.gone;
  ui.share.hidden = !room || gone;
  ui.membersToggle.hidden = gone;
  ui.notify.hidden = gone;
  // The ended room's own notice has Close: the bar above has nothing to do.
  ui.chat.classList.toggle('ended', gone);
  ui.roomEnded.hidden = !gone;
  ui.composer.hidden = !!gone;
  if (gone) {
    ui.roomEndedText.textContent = goneText(t);
    ui.rejoin.hidden = t.gone.action === 'ban';
  }
  renderRoomNotice();
}

function goneText(t) {
  const g = t.gone;
  if (g.text) return g.text;
  const by = g.by ? ' by ' + g.by : '';
  const why = g.reason ? ': ' + g.reason : '';
  return g.action === 'ban'
    ? 'You were banned from #' + t.name + by + why + '. You cannot join it again unless an op unbans you.'
    : 'You were kicked from #' + t.name + by + why + '. You may join it again.';
}

// Your own mute in the active room (room.js's mutedNow; the 1 s tick
// takes it away when it ends).
export function renderRoomNotice() {
  const t = S.active;
  const m = t && t.kind === 'room' && !t.gone ? mutedNow(t, Date.now()) : null;
  let text = '';
  if (m && m.said) text = m.said + ' Your messages in #' + t.name + ' are refused meanwhile.';
  else if (m) {
    text = 'You are muted in #' + t.name + (m.until ? ' until ' + fmtClock(m.until) : ' until an op unmutes you') +
      (m.by ? ' (by ' + m.by + ')' : '') + ': your messages here are refused meanwhile.';
  }
  if (ui.roomNotice.textContent !== text) ui.roomNotice.textContent = text;
  ui.roomNotice.hidden = !text;
}

export const fmtClock = (ms) => new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

// You were kicked or banned (room.js's applyMod set `removed`) and the
// server's `left` followed: the tab stays, saying so, and is no longer one
// of the rooms the page is in (not rejoined, not saved).
export function endRoom(t) {
  t.gone = t.removed || { action: 'kick', by: '', reason: '' };
  t.removed = null;
  if (S.rooms.get(t.name) === t) S.rooms.delete(t.name);
  t.members = [];
  t.typing.clear();
  t.accounts.clear();
  t.mutes.clear();
  t.muted = null;
  t.tabEl.classList.add('ended');
  t.labelEl.title = t.gone.action === 'ban' ? 'You were banned from this room' : 'You were kicked from this room';
  if (t === S.active) {
    renderMembers();
    renderTyping();
    renderRoomBar();
  } else {
    t.unread += 1;
    renderBadge(t);
    updateTitle();
  }
  saveState();
}

// An ended room's tab, if there is one for this room.
export function endedTab(room) {
  return S.order.find((t) => t.kind === 'room' && t.gone && sameNick(t.name, room)) || null;
}

// Joined again: the ended tab is a room of the page's again.
export function reviveRoom(t, name) {
  t.gone = null;
  t.name = name;
  t.tabEl.classList.remove('ended');
  t.labelEl.title = '';
  S.rooms.set(name, t);
}

// ------------------------------------------------------------- account

// The top bar (your account mark, the account button) and the account
// dialog's two faces (landing.js handles its forms).
export function renderAccount() {
  const a = S.account;
  ui.meAcct.hidden = !a;
  ui.accountBtn.firstChild.textContent = a ? 'Account' : 'Log in / Sign up';
  ui.accountBtn.lastChild.textContent = a ? 'Account' : 'Log in';
  ui.accountBtn.setAttribute('aria-label', a ? 'Your account (logged in as ' + a + ')' : 'Log in or sign up');
  document.body.classList.toggle('logged-in', !!a);
  ui.accountGuest.hidden = !!a;
  ui.accountUser.hidden = !a;
  ui.accountTitle.textContent = a ? 'Your account' : 'Log in or sign up';
  ui.accountName.textContent = a || '';
  ui.pwUser.value = a || '';
  // Logged in, the name is the account's (the server refuses /nick).
  if (!ui.nameHint.dataset.guest) ui.nameHint.dataset.guest = ui.nameHint.textContent;
  ui.name.readOnly = !!a;
  if (a && S.nick) {
    ui.name.value = S.nick;
    S.shownName = S.nick;
  }
  ui.nameBtn.disabled = !!a;
  ui.nameHint.textContent = a ? 'You are logged in: your name is your account’s. Log out (top right) to use another one.' : ui.nameHint.dataset.guest;
}

// Something to tell the user where they are looking: the name prompt, the
// landing page or the active tab.
export function tell(text, cls = 'error') {
  if (S.prompt) showPromptError(text);
  else if (S.landingOpen || !S.active) showLandingError(text);
  else systemLine(S.active, text, cls);
}

function placeholder() {
  const t = S.active;
  if (!t) return 'Message';
  return t.kind === 'room' ? 'Message #' + t.name : 'Message @' + t.name;
}

export function renderNotify() {
  ui.notify.setAttribute('aria-pressed', S.notify ? 'true' : 'false');
  ui.notify.textContent = S.notify ? 'Notifications on' : 'Notifications off';
}

// ------------------------------------------------------------ message box

// The image about to be sent (images.js) goes away.
export function clearPreview() {
  if (!S.preview) return;
  URL.revokeObjectURL(S.preview.url);
  S.preview = null;
  ui.preview.hidden = true;
  ui.previewImg.removeAttribute('src');
  ui.previewText.textContent = '';
  ui.input.placeholder = placeholder();
}

export function autosize() {
  const lines = ui.input.value.split('\n').length;
  ui.input.rows = Math.max(1, Math.min(6, lines));
}

export function clearInput() {
  ui.input.value = '';
  autosize();
}

// ------------------------------------------------------------------- jump
//
// Jumping to a message (a reply's quote, a search result): older history
// is loaded until it is on the page, then it is highlighted. What one does
// to a message (its toolbar, the emoji picker, the delete dialog, the
// reaction chips) is toolbar.js's.

const FLASH_MS = 2500;
const JUMP_PAGES = 25; // at most this many pages of 200 are loaded to reach a message

// A room message on the page (the active tab's), or null.
export function msgNode(seq) {
  return ui.messages.querySelector('.msg[data-seq="' + seq + '"]');
}

// Shows message `seq` of room tab `t`, loading older history until it is
// on the page, and highlights it briefly.
export function jumpTo(t, seq) {
  if (!t || t.kind !== 'room' || typeof seq !== 'number') return;
  if (t !== S.active) activate(t, { noFocus: true });
  const n = msgNode(seq);
  if (n) {
    S.jump = null;
    flash(n);
    return;
  }
  S.jump = { tab: t, seq, pages: 0, probed: false };
  jumpStep(t);
}

function jumpStep(t) {
  const j = S.jump;
  if (!j || j.tab !== t) return;
  if (t.msgs.has(j.seq) && msgNode(j.seq)) {
    S.jump = null;
    flash(msgNode(j.seq));
    return;
  }
  if (!client.ready()) return; // tried again on the next page that arrives
  if (t.msgs.size && j.seq > t.minSeq) {
    // Inside what the page holds, yet not there: ask for that one seq.
    if (j.probed) return jumpFailed(t);
    j.probed = true;
    client.send({ type: 'history', room: t.name, before: j.seq + 1, limit: 1, ref: 'hp:' + t.name });
    return;
  }
  if (t.reachedStart || j.pages >= JUMP_PAGES) return jumpFailed(t);
  if (t.loadingOlder) return; // a page is on its way: this goes on when it comes
  const before = olderBefore(t);
  if (!before) return jumpFailed(t);
  j.pages += 1;
  client.send({ type: 'history', room: t.name, before, limit: CATCH_UP_PAGE, ref: 'hj:' + t.name });
  renderRoomBar();
}

function jumpFailed(t) {
  S.jump = null;
  systemLine(t, 'That message is not in the history any more.', 'error');
}

// A page of history arrived in room tab `r` (chat.js): a jump goes on.
export function jumpArrived(r) {
  if (S.jump && S.jump.tab === r) jumpStep(r);
}

// A history request of a jump failed.
export function jumpError(r) {
  if (S.jump && S.jump.tab === r) S.jump = null;
}

function flash(n) {
  n.scrollIntoView({ block: 'center' });
  S.stick = false;
  n.classList.remove('flash');
  void n.offsetWidth; // restart the animation
  n.classList.add('flash');
  clearTimeout(n.flashTimer);
  n.flashTimer = setTimeout(() => n.classList.remove('flash'), FLASH_MS);
  n.focus({ preventScroll: true });
}

// -------------------------------------------------------------- scrolling

// A list shorter than its box cannot be scrolled up: load older at once.
export function maybeFill() {
  const t = S.active;
  if (!t || t.kind !== 'room') return;
  renderRoomBar();
  const b = ui.messages;
  if (b.scrollHeight <= b.clientHeight + 8 && !t.reachedStart && t.seqs.size) loadOlder(t);
}

function loadOlder(r) {
  if (!r || r.kind !== 'room' || r.reachedStart || r.loadingOlder || !client.ready()) return;
  const before = olderBefore(r);
  if (before) client.send({ type: 'history', room: r.name, before, limit: PAGE, ref: 'hb:' + r.name });
  renderRoomBar();
}

export function wireView() {
  ui.messages.addEventListener('scroll', () => {
    S.stick = isAtBottom();
    if (ui.messages.scrollTop < 80 && S.active) loadOlder(S.active);
  }, { passive: true });

  ui.loadOlder.addEventListener('click', () => loadOlder(S.active));

  // A member menu closes on a click anywhere else.
  document.addEventListener('click', (e) => {
    if (S.menuFor && !(e.target instanceof Element && e.target.closest('.member-menu, .mod-btn'))) closeMenu(false);
  });

  // A long topic shows in full when clicked (or Enter on it).
  const toggleTopic = () => {
    const on = !ui.roomTopic.classList.contains('expanded');
    ui.roomTopic.classList.toggle('expanded', on);
    ui.roomTopic.setAttribute('aria-expanded', on ? 'true' : 'false');
  };
  ui.roomTopic.addEventListener('click', toggleTopic);
  ui.roomTopic.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      toggleTopic();
    }
  });

  // A list that follows new messages stays at the bottom when it changes size
  // (the phone keyboard, the image preview, the typing line).
  if ('ResizeObserver' in window) {
    new ResizeObserver(() => {
      if (S.stick) ui.messages.scrollTop = ui.messages.scrollHeight;
    }).observe(ui.messages);
  }
}
