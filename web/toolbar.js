// toolbar.js: what one does to a room message (issue 16), and the
// reaction chips under it. Every room message gets a toolbar: React (a
// small picker of common emoji, or any typed one), Reply, Edit (yours) and
// Delete (yours; an op's list shows it on every message, by style.css's
// #messages.can-mod). It shows on hover (a mouse), on a long press (a
// phone), and from the keyboard: in the message list Up and Down move
// between messages (each is focusable), Tab reaches the focused message's
// toolbar, Left and Right move along it, Escape goes back to the message.
// A chip's click toggles your reaction. Nothing changes on the page until
// the server's event (`edit`, `delete`, `react`) comes back: room.js
// applies it and view.js's rerender draws the message again in place.
//
// view.js's renderMessage calls decorate, pickerFor and reactionsEl while
// it draws a message; wireMessages (app.js calls it) handles the list's
// clicks, keys and long presses. Reply and Edit hand over to composer.js
// (startReply, startEdit; Up-arrow to edit your last message is there
// too); a reply's quote jumps with view.js's jumpTo.

import { S, client } from './state.js';
import { ui, el } from './dom.js';
import { sameNick } from './util.js';
import { canModerate, quoteOf, cleanEmoji } from './room.js';
import { rerender, msgNode, jumpTo } from './view.js';
import { startReply, startEdit } from './composer.js';
import { showDialog, hideDialog } from './roombar.js';

export const QUICK_EMOJI = ['👍', '❤️', '😂', '🎉', '😮', '😢', '🙏', '👀'];
const LONG_PRESS_MS = 500;

// ---------------------------------------------------------------- toolbar

// Makes a room message focusable and gives it its toolbar (view.js calls
// this from renderMessage). A deleted message has no actions.
export function decorate(d, m) {
  d.tabIndex = -1;
  if (m.deleted) return;
  const bar = el('div', 'tools');
  bar.setAttribute('role', 'toolbar');
  bar.setAttribute('aria-label', 'Actions for the message from ' + (typeof m.from === 'string' ? m.from : '?'));
  const tool = (k, label, text, cls) => {
    const b = el('button', 'tool ' + cls, text);
    b.type = 'button';
    b.dataset.k = k;
    b.title = label;
    if (label !== text) b.setAttribute('aria-label', label);
    bar.appendChild(b);
    return b;
  };
  const react = tool('react', 'Add a reaction', 'React', 'react');
  react.setAttribute('aria-haspopup', 'true');
  react.setAttribute('aria-expanded', isPicking(m) ? 'true' : 'false');
  tool('reply', 'Reply', 'Reply', 'reply');
  const mine = sameNick(m.from, S.nick);
  if (mine) tool('edit', 'Edit', 'Edit', 'edit');
  // Shown for your own messages, and for an op on every message (style.css,
  // by #messages.can-mod): a role that changes needs no redraw.
  tool('delete', 'Delete', 'Delete', 'del');
  d.appendChild(bar);
  if (isPicking(m)) d.classList.add('picking');
}

const isPicking = (m) => !!S.picker && S.picker.tab === S.active && S.picker.seq === m.seq;

// The emoji picker, if it is open for this message (view.js appends it).
export function pickerFor(m) {
  if (!isPicking(m) || m.deleted) return null;
  const p = el('div', 'picker');
  p.setAttribute('role', 'group');
  p.setAttribute('aria-label', 'Pick a reaction');
  for (const e of QUICK_EMOJI) {
    const b = el('button', 'pick', e);
    b.type = 'button';
    b.dataset.k = 'emoji:' + e;
    b.dataset.emoji = e;
    b.title = 'React with ' + e;
    b.setAttribute('aria-label', 'React with ' + e);
    p.appendChild(b);
  }
  const f = el('form', 'picker-other');
  f.noValidate = true;
  const input = el('input');
  input.dataset.k = 'other';
  input.maxLength = 32;
  input.autocomplete = 'off';
  input.spellcheck = false;
  input.placeholder = 'other…';
  input.setAttribute('aria-label', 'Another emoji to react with');
  const add = el('button', 'small', 'Add');
  add.type = 'submit';
  add.dataset.k = 'other-add';
  f.append(input, add);
  p.appendChild(f);
  return p;
}

function openPicker(t, seq) {
  closePicker(false);
  S.picker = { tab: t, seq };
  redraw(t, seq);
  const first = msgNode(seq) && msgNode(seq).querySelector('.pick');
  if (first) first.focus();
}

// Closes the picker; `refocus`: the focus goes back to its React button.
export function closePicker(refocus) {
  const p = S.picker;
  if (!p) return;
  S.picker = null;
  if (p.tab !== S.active) return;
  redraw(p.tab, p.seq);
  const b = msgNode(p.seq) && msgNode(p.seq).querySelector('.tool.react');
  if (refocus && b) b.focus();
}

function redraw(t, seq) {
  rerender(t, [seq]);
}

// Asks for `emoji` on message `seq`; the server toggles it (yours is taken
// back if it was there).
export function react(t, seq, emoji) {
  if (!t || t.kind !== 'room') return;
  client.request({ type: 'react', room: t.name, seq, emoji, ref: 're:' + t.name + ':' + seq });
}

// ------------------------------------------------------------------ chips

// The reaction chips under a message: the emoji and how many, who in the
// title; yours pressed. A click toggles yours (wireMessages).
export function reactionsEl(chips) {
  const box = el('div', 'reactions');
  for (const [emoji, who] of chips) {
    const mine = who.some((n) => sameNick(n, S.nick));
    const b = el('button', 'chip' + (mine ? ' mine' : ''));
    b.type = 'button';
    b.dataset.k = 'chip:' + emoji;
    b.dataset.emoji = emoji;
    b.setAttribute('aria-pressed', mine ? 'true' : 'false');
    b.appendChild(el('span', 'emoji', emoji));
    b.appendChild(el('span', 'count', String(who.length)));
    const names = who.join(', ');
    b.title = names + ' reacted with ' + emoji + (mine ? ' (click to take yours back)' : ' (click to add yours)');
    b.setAttribute('aria-label', emoji + ' ' + who.length + ': ' + names + (mine ? ', including you' : ''));
    box.appendChild(b);
  }
  return box;
}

// ----------------------------------------------------------------- delete

let deleteFor = null; // {tab, seq}

function askDelete(t, m) {
  if (!t || t.kind !== 'room' || !m || m.deleted) return;
  const mine = sameNick(m.from, S.nick);
  if (!mine && !canModerate(t)) return;
  deleteFor = { tab: t, seq: m.seq };
  ui.deleteHint.textContent = mine
    ? 'Everyone in #' + t.name + ' will see “message deleted” in its place.'
    : 'You are deleting a message by ' + m.from + ' as an op of #' + t.name + '. Everyone will see “message deleted” in its place.';
  const q = typeof m.text === 'string' && m.text ? quoteOf(m.text) : m.image ? '[image]' : '';
  ui.deleteQuote.textContent = q;
  ui.deleteQuote.hidden = !q;
  showDialog(ui.deleteDialog);
  ui.deleteCancel.focus();
}

// Back on the message after an action; `kb`: the action came from the
// keyboard, so its toolbar stays in reach.
function focusMessage(seq, kb) {
  const n = msgNode(seq);
  if (n && kb) keyFocus(n);
  else if (n) n.focus({ preventScroll: true });
  else ui.input.focus();
}

// ------------------------------------------------------------- keyboard

const focusable = () => [...ui.messages.querySelectorAll('.msg[data-seq]')];

function visibleMessages() {
  const box = ui.messages.getBoundingClientRect();
  return focusable().filter((n) => {
    const r = n.getBoundingClientRect();
    return r.bottom > box.top && r.top < box.bottom;
  });
}

// A message focused from the keyboard shows its toolbar (class `kb`) until
// the focus leaves it: a toolbar shown by :focus-visible alone would hide
// as the focus moves onto its own buttons, and Tab would find nothing.
function keyFocus(n) {
  n.classList.add('kb');
  n.focus({ preventScroll: true });
}

function keyFocusLeft(e) {
  for (const n of ui.messages.querySelectorAll('.msg.kb')) if (!n.contains(e.target)) n.classList.remove('kb');
}

function listKeys(e) {
  const a = document.activeElement;
  const inMsg = a && a.classList && a.classList.contains('msg') && a.dataset.seq;
  if (a === ui.messages || inMsg) {
    const all = focusable();
    if (!all.length) return;
    let next = null;
    if (a === ui.messages) {
      const vis = visibleMessages();
      if (e.key === 'ArrowUp') next = vis[vis.length - 1] || all[all.length - 1];
      else if (e.key === 'ArrowDown') next = vis[0] || all[0];
    } else {
      const i = all.indexOf(a);
      if (e.key === 'ArrowUp') next = all[Math.max(0, i - 1)];
      else if (e.key === 'ArrowDown') next = all[Math.min(all.length - 1, i + 1)];
      else if (e.key === 'Home') next = all[0];
      else if (e.key === 'End') next = all[all.length - 1];
      else if (e.key === 'Enter' || e.key === ' ') {
        const first = a.querySelector('.tool');
        if (first) {
          e.preventDefault();
          first.focus();
        }
        return;
      } else if (e.key === 'Escape') {
        e.preventDefault();
        ui.input.focus();
        return;
      }
    }
    if (!next) return;
    e.preventDefault();
    keyFocus(next);
    next.scrollIntoView({ block: 'nearest' });
    return;
  }
  const group = a && a.closest && (a.closest('.tools') || a.closest('.picker'));
  if (!group || !ui.messages.contains(group)) return;
  const picker = group.classList.contains('picker');
  if (e.key === 'Escape') {
    e.preventDefault();
    if (picker) closePicker(true);
    else keyFocus(a.closest('.msg'));
    return;
  }
  if (a.tagName === 'INPUT') return;
  const items = [...group.querySelectorAll(picker ? '.pick' : '.tool')].filter((b) => b.offsetParent !== null);
  const i = items.indexOf(a);
  let j = -1;
  if (e.key === 'ArrowRight') j = (i + 1) % items.length;
  else if (e.key === 'ArrowLeft') j = (i - 1 + items.length) % items.length;
  else if (e.key === 'Home') j = 0;
  else if (e.key === 'End') j = items.length - 1;
  if (j < 0 || i < 0) return;
  e.preventDefault();
  items[j].focus();
}

// ------------------------------------------------------------- long press

function showActions(n) {
  for (const o of ui.messages.querySelectorAll('.msg.show-actions')) if (o !== n) o.classList.remove('show-actions');
  n.classList.add('show-actions');
  const first = n.querySelector('.tool');
  if (first) first.focus({ preventScroll: true });
  n.scrollIntoView({ block: 'nearest' });
}

function hideActions(except) {
  for (const o of ui.messages.querySelectorAll('.msg.show-actions')) if (o !== except) o.classList.remove('show-actions');
}

function wireLongPress() {
  let press = null;
  let fired = 0; // when a long press last opened a toolbar (its click is not a click)
  const cancel = () => {
    if (press) clearTimeout(press.timer);
    press = null;
  };
  ui.messages.addEventListener('pointerdown', (e) => {
    if (e.pointerType === 'mouse') return;
    const n = e.target.closest('.msg[data-seq]');
    if (!n || !n.querySelector('.tools') || e.target.closest('button, a, input')) return;
    cancel();
    press = {
      x: e.clientX,
      y: e.clientY,
      timer: setTimeout(() => {
        press = null;
        fired = Date.now();
        showActions(n);
      }, LONG_PRESS_MS),
    };
  });
  ui.messages.addEventListener('pointermove', (e) => {
    if (press && Math.hypot(e.clientX - press.x, e.clientY - press.y) > 10) cancel();
  });
  for (const ev of ['pointerup', 'pointercancel', 'pointerleave']) ui.messages.addEventListener(ev, cancel);
  // A long press also makes the browser's context menu (Android): ours instead.
  ui.messages.addEventListener('contextmenu', (e) => {
    const n = e.target.closest('.msg[data-seq]');
    if (!n || !n.querySelector('.tools') || e.target.closest('a, img')) return;
    if (e.pointerType === 'mouse' && !press) return;
    e.preventDefault();
    cancel();
    fired = Date.now();
    showActions(n);
  });
  ui.messages.addEventListener('click', (e) => {
    if (fired && Date.now() - fired < 800 && !e.target.closest('button')) {
      e.preventDefault();
      e.stopPropagation();
    }
  }, true);
  // A tap anywhere else puts the toolbar away.
  document.addEventListener('pointerdown', (e) => {
    const n = e.target instanceof Element ? e.target.closest('.msg') : null;
    hideActions(n);
    // (A press inside the picker's own message is left to its click.)
    if (S.picker && !(n && n.dataset.seq === String(S.picker.seq))) closePicker(false);
  });
}

// ----------------------------------------------------------------- wiring

export function wireMessages() {
  ui.messages.addEventListener('click', (e) => {
    const b = e.target instanceof Element ? e.target.closest('button') : null;
    if (!b || !ui.messages.contains(b)) return;
    const n = b.closest('.msg[data-seq]');
    const t = S.active;
    if (!n || !t || t.kind !== 'room') return;
    const seq = Number(n.dataset.seq);
    const m = t.msgs.get(seq);
    const k = b.dataset.k || '';
    if (!m) return;
    // Another action closes the picker (not its own buttons: Enter in its
    // field clicks Add before the form's submit).
    if (S.picker && k !== 'react' && k !== 'other-add' && !k.startsWith('emoji:')) closePicker(false);
    if (k === 'quote') {
      jumpTo(t, Number(b.dataset.target));
    } else if (k.startsWith('chip:')) {
      react(t, seq, b.dataset.emoji);
    } else if (k.startsWith('emoji:')) {
      react(t, seq, b.dataset.emoji);
      closePicker(false);
      focusMessage(seq, e.detail === 0);
    } else if (k === 'react') {
      if (S.picker && S.picker.seq === seq && S.picker.tab === t) closePicker(true);
      else openPicker(t, seq);
    } else if (k === 'reply') {
      hideActions(null);
      startReply(t, m);
    } else if (k === 'edit') {
      hideActions(null);
      startEdit(t, m);
    } else if (k === 'delete') {
      hideActions(null);
      askDelete(t, m);
    }
  });

  // The picker's own emoji.
  ui.messages.addEventListener('submit', (e) => {
    const f = e.target;
    if (!(f instanceof HTMLFormElement) || !f.classList.contains('picker-other')) return;
    e.preventDefault();
    const n = f.closest('.msg[data-seq]');
    const t = S.active;
    if (!n || !t) return;
    const input = f.querySelector('input');
    const emoji = cleanEmoji(input.value);
    if (!emoji) {
      input.setAttribute('aria-invalid', 'true');
      input.title = 'One emoji (or a short word without spaces), at most 32 bytes';
      input.focus();
      return;
    }
    const seq = Number(n.dataset.seq);
    react(t, seq, emoji);
    closePicker(false);
    focusMessage(seq, true);
  });

  ui.messages.addEventListener('keydown', listKeys);
  document.addEventListener('focusin', keyFocusLeft);
  wireLongPress();

  ui.deleteForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const d = deleteFor;
    deleteFor = null;
    hideDialog(ui.deleteDialog);
    if (!d) return;
    client.request({ type: 'delete', room: d.tab.name, seq: d.seq, ref: 'del:' + d.tab.name + ':' + d.seq });
    if (d.tab === S.active) focusMessage(d.seq);
  });
  ui.deleteCancel.addEventListener('click', () => {
    const d = deleteFor;
    deleteFor = null;
    hideDialog(ui.deleteDialog);
    if (d && d.tab === S.active) focusMessage(d.seq);
  });
  ui.deleteDialog.addEventListener('close', () => {
    const d = deleteFor;
    deleteFor = null;
    if (d && d.tab === S.active) focusMessage(d.seq);
  });
}

