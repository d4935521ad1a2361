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
// It decides nothing about the protocol: chat.js, composer.js and the other
// modules call it. room.js says where merged messages go; this module puts
// them there.

import { S, client, saveState } from './state.js';
import { ui, el, timeEl, appendText } from './dom.js';
import { MEDIA_RE, sameNick, sortNicks, nickClass, fmtSize } from './util.js';
import { PAGE, newRoom, merge, forget, olderBefore, typingNames, typingText } from './room.js';

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
  if (t.kind === 'room' && !(opts && opts.keepHash)) setHash(t.name);
  saveState();
  if (!(opts && opts.noFocus) && window.matchMedia('(pointer: fine)').matches) ui.input.focus();
  requestAnimationFrame(maybeFill);
}

export function removeTab(t) {
  const i = S.order.indexOf(t);
  if (i < 0) return;
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
  t.tabEl.classList.toggle('has-unread', !!t.unread);
  t.tabEl.setAttribute('aria-label', (t.kind === 'room' ? '#' : 'direct messages with ') + t.name +
    (t.unread ? ', ' + t.unread + ' unread' : ''));
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
  // Older than everything shown (a page of history): one block on top.
  const older = document.createDocumentFragment();
  for (const { msg, where } of merge(r, msgs)) {
    resolveOutbox(msg);
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
  if (active) {
    if (stick && !prepended) scrollToBottom();
    else if (prepended) box.scrollTop = box.scrollHeight - fromBottom;
  }
  if (live) {
    for (const msg of added) noteIncoming(r, msg.from, msg.action ? '* ' + msg.from + ' ' + msg.text : msg.text || (msg.image ? '[image]' : ''));
  }
  return added.length;
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
export function noteIncoming(t, from, text) {
  const visible = t === S.active && !document.hidden && !S.landingOpen;
  if (!visible) {
    t.unread += 1;
    renderBadge(t);
    updateTitle();
  }
  if (S.notify && (document.hidden || !document.hasFocus()) && 'Notification' in window &&
      Notification.permission === 'granted') {
    try {
      const n = new Notification(t.kind === 'room' ? from + ' in #' + t.name : from + ' (direct)', {
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
  if (typeof m.seq === 'number') d.dataset.seq = String(m.seq);
  if (m.action) d.classList.add('action');
  const from = typeof m.from === 'string' ? m.from : '?';
  if (sameNick(from, S.nick)) d.classList.add('mine');
  d.appendChild(timeEl(m.ts));
  d.appendChild(document.createTextNode(' '));
  if (m.action) d.appendChild(el('span', 'star', '*'));
  d.appendChild(el('span', 'nick ' + nickClass(from), from));
  d.appendChild(document.createTextNode(' '));
  const text = el('span', 'text');
  appendText(text, m.text);
  d.appendChild(text);
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
  if (S.nick && typeof m.text === 'string' && !sameNick(from, S.nick) &&
      new RegExp('(^|[^A-Za-z0-9_-])' + S.nick.replace(/[-]/g, '\\-') + '($|[^A-Za-z0-9_-])', 'i').test(m.text)) {
    d.classList.add('mention');
  }
  return d;
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
  if (t && t.kind === 'room') list = t.members;
  else if (t && t.kind === 'dm') list = sortNicks(sameNick(t.name, S.nick) ? [S.nick] : [t.name, S.nick]);
  const frag = document.createDocumentFragment();
  for (const n of list) {
    const li = el('li', sameNick(n, S.nick) ? 'self' : null);
    li.dataset.nick = n;
    const b = el('button', 'member ' + nickClass(n), n);
    b.type = 'button';
    b.title = sameNick(n, S.nick) ? 'This is you' : 'Send ' + n + ' a direct message';
    b.addEventListener('click', () => {
      if (sameNick(n, S.nick)) return;
      activate(dmTab(n));
      closeMembersOnPhone();
    });
    li.appendChild(b);
    frag.appendChild(li);
  }
  ui.members.textContent = '';
  ui.members.appendChild(frag);
  ui.membersToggle.textContent = 'Members (' + list.length + ')';
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
  ui.copyNote.textContent = '';
  if (!S.preview) ui.input.placeholder = placeholder();
  ui.attach.disabled = !room;
  ui.loadOlder.hidden = !room || t.reachedStart || !t.seqs.size;
  ui.loadOlder.textContent = room && t.loadingOlder ? 'Loading…' : 'Load older messages';
  if (!room) clearPreview();
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

  // A list that follows new messages stays at the bottom when it changes size
  // (the phone keyboard, the image preview, the typing line).
  if ('ResizeObserver' in window) {
    new ResizeObserver(() => {
      if (S.stick) ui.messages.scrollTop = ui.messages.scrollHeight;
    }).observe(ui.messages);
  }
}
