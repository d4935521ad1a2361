'use strict';
// Messages that live (issue 16) in the page: edit (the toolbar's Edit, and
// Up-arrow in an empty box), delete (your own, and an op deleting a
// guest's), reactions (chips with counts and who, toggled from either
// page), a mention of you (highlighted, and notified in a room not shown),
// and the keyboard path. The DOM contract is in live.js; replies, catch-up
// and screenshots are in replies.test.js.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const h = require('./helpers');
const {
  setup, env, DESKTOP, PHONE, newPage, pair, wsIn, sayAll, msgSel, tool, longPress, shown, comparable,
  waitEdited, waitDeleted, waitChip,
} = require('./live');

setup();

// ------------------------------------------------------------------ edit

test('E1. edit: the toolbar\'s Edit and Up-arrow in an empty box; Escape cancels; both pages show "(edited)"', { timeout: 90_000 }, async () => {
  const { A, B, a } = await pair(' E1');
  await h.say(A, 'hello wrold');
  const s1 = await h.waitMsg(A, a, 'hello wrold');
  await h.waitMsg(B, a, 'hello wrold');
  // B's toolbar on A's message has no Edit; A's has.
  await B.locator(msgSel(s1)).hover();
  assert.equal(await B.locator(`${msgSel(s1)} .tool[data-k="edit"]`).count(), 0, 'no Edit on someone else\'s message');
  assert.equal(await B.locator(`${msgSel(s1)} .tool[data-k="delete"]`).isVisible(), false, 'no Delete for a guest on someone else\'s message');
  await tool(A, s1, 'edit');
  await h.waitVisible(A, '#compose-ctx', 'the "Editing" bar');
  assert.match(await A.locator('#compose-ctx').textContent(), /Editing/);
  assert.equal(await A.inputValue('#input'), 'hello wrold', 'the box holds the text to edit');
  await A.fill('#input', 'hello world');
  await A.press('#input', 'Enter');
  for (const P of [A, B]) await waitEdited(P, s1, 'hello world');
  assert.equal(await A.locator('#compose-ctx').isVisible(), false, 'the bar goes once the edit is sent');
  assert.equal(await A.inputValue('#input'), '');

  // Up-arrow in the empty box edits the last message; Escape cancels.
  await h.say(A, 'second try');
  const s2 = await h.waitMsg(A, a, 'second try');
  await A.focus('#input');
  await A.keyboard.press('ArrowUp');
  await h.waitVisible(A, '#compose-ctx', 'Up-arrow: the "Editing" bar');
  assert.equal(await A.inputValue('#input'), 'second try');
  await A.keyboard.press('Escape');
  await h.waitIn(A, 'Escape should cancel the edit: bar hidden, box empty', () =>
    document.querySelector('#compose-ctx').hidden && document.querySelector('#input').value === '');
  await A.keyboard.press('ArrowUp');
  await A.keyboard.press('ControlOrMeta+A');
  await A.keyboard.type('second message, edited');
  await A.keyboard.press('Enter');
  for (const P of [A, B]) await waitEdited(P, s2, 'second message, edited');
  // The first one is unchanged, and nothing new was said.
  for (const P of [A, B]) {
    const s = await shown(P);
    assert.equal(s[s1].text, 'hello world');
    assert.equal(Object.keys(s).length, 2, `${P.label}: exactly the two messages, edited in place`);
  }
  for (const P of [A, B]) h.assertClean(P);
});

// ---------------------------------------------------------------- delete

const PASSWORD = 'correct horse 42';

test('D1. delete: your own (confirmed in a dialog), and an op deleting a guest\'s; "message deleted" in place', { timeout: 90_000 }, async () => {
  // The owner is an account (it moderates its room); the guest joins.
  const owner = `own${h.uniq(4)}`;
  const guest = `gst${h.uniq(4)}`;
  const A = await newPage(`owner ${owner}`);
  await h.gotoPage(A, env.server.base + '/');
  await h.waitConnected(A);
  await A.fill('#name', owner);
  await A.press('#name', 'Enter');
  await h.waitNick(A, owner);
  await h.signUp(A, owner, PASSWORD);
  const code = await h.createRoom(A, env.server.base, owner);
  const B = await newPage(`guest ${guest}`);
  await h.joinByCode(B, env.server.base, guest, code);
  await h.waitMembers(A, guest, true);

  // Your own: Delete, then Cancel keeps it; Delete, then Delete removes it.
  await h.say(B, 'oops, wrong room');
  const s1 = await h.waitMsg(B, guest, 'oops, wrong room');
  await h.waitMsg(A, guest, 'oops, wrong room');
  await tool(B, s1, 'delete');
  await h.waitVisible(B, '#delete-dialog', 'the delete dialog');
  await B.click('#delete-cancel');
  await h.sleep(300);
  assert.equal((await shown(B))[s1].deleted, false, 'Cancel deletes nothing');
  await tool(B, s1, 'delete');
  await h.waitVisible(B, '#delete-dialog', 'the delete dialog');
  await B.click('#delete-ok');
  for (const P of [A, B]) await waitDeleted(P, s1);

  // An op deletes a guest's message; the guest has no Delete on the op's.
  await h.say(B, 'buy cheap watches');
  const s2 = await h.waitMsg(A, guest, 'buy cheap watches');
  await h.say(A, 'please stay on topic');
  const s3 = await h.waitMsg(B, owner, 'please stay on topic');
  await B.locator(msgSel(s3)).hover();
  assert.equal(await B.locator(`${msgSel(s3)} .tool[data-k="delete"]`).isVisible(), false, 'a guest cannot delete the op\'s message');
  await tool(A, s2, 'delete');
  await h.waitVisible(A, '#delete-dialog', 'the delete dialog');
  assert.match(await A.locator('#delete-hint').textContent(), new RegExp(`by ${guest} as an op`));
  await A.click('#delete-ok');
  for (const P of [A, B]) await waitDeleted(P, s2);
  for (const P of [A, B]) assert.equal((await shown(P))[s3].deleted, false);
  for (const P of [A, B]) h.assertClean(P);
});

// ------------------------------------------------------------- reactions

test('X1. reactions: the picker, chips with counts and who, toggled from either page, your own pressed, a typed emoji', { timeout: 90_000 }, async () => {
  const { A, B, a, b } = await pair(' X1');
  await h.say(A, 'lunch at noon?');
  const s = await h.waitMsg(B, a, 'lunch at noon?');
  await tool(B, s, 'react');
  await h.waitVisible(B, `${msgSel(s)} .picker`, 'the emoji picker');
  await B.click(`${msgSel(s)} .picker .pick[data-emoji="👍"]`);
  await waitChip(B, s, '👍', 1, true);
  await waitChip(A, s, '👍', 1, false);
  assert.match(await A.locator(`${msgSel(s)} .chip[data-emoji="👍"]`).getAttribute('title'), new RegExp(b));
  // A adds its own by the chip: 2, both named.
  await A.click(`${msgSel(s)} .chip[data-emoji="👍"]`);
  await waitChip(A, s, '👍', 2, true);
  await waitChip(B, s, '👍', 2, true);
  const title = await B.locator(`${msgSel(s)} .chip[data-emoji="👍"]`).getAttribute('title');
  assert.ok(title.includes(a) && title.includes(b), `the chip's title names both: ${title}`);
  const label = await B.locator(`${msgSel(s)} .chip[data-emoji="👍"]`).getAttribute('aria-label');
  assert.ok(label.includes(a) && label.includes(b), `the chip's aria-label names both: ${label}`);
  // B takes its back.
  await B.click(`${msgSel(s)} .chip[data-emoji="👍"]`);
  await waitChip(B, s, '👍', 1, false);
  await waitChip(A, s, '👍', 1, true);
  // A typed emoji, from the keyboard: the picker's own field.
  await tool(B, s, 'react');
  await B.fill(`${msgSel(s)} .picker-other input`, '🦀');
  await B.press(`${msgSel(s)} .picker-other input`, 'Enter');
  await waitChip(A, s, '🦀', 1, false);
  await waitChip(B, s, '🦀', 1, true);
  // A takes its 👍 back: the chip goes.
  await A.click(`${msgSel(s)} .chip[data-emoji="👍"]`);
  for (const P of [A, B]) await waitChip(P, s, '👍', 0);
  for (const P of [A, B]) h.assertClean(P);
});

// -------------------------------------------------------------- mentions

test('M1. a mention of you is highlighted strongly (and @you marked); other @nick mentions lightly', { timeout: 90_000 }, async () => {
  const { A, B, a, b } = await pair(' M1');
  await h.say(B, `hey @${a}, ask @${b} about it`);
  const s = await h.waitMsg(A, b, `hey @${a}, ask @${b} about it`);
  await h.waitIn(A, 'the message mentioning A should be .mention, with @A as .at.me', ({ sel, a }) => {
    const m = document.querySelector(sel);
    const me = m && m.querySelector('.at.me');
    return m && m.classList.contains('mention') && me && me.textContent === '@' + a;
  }, { sel: msgSel(s), a });
  const other = await A.evaluate(({ sel, b }) => [...document.querySelectorAll(sel + ' .at:not(.me)')].map((x) => x.textContent), { sel: msgSel(s), b });
  assert.deepEqual(other, [`@${b}`], 'the other mention is marked lightly');
  // On B's page it is its own message: no strong highlight.
  await h.waitMsg(B, b, `hey @${a}, ask @${b} about it`);
  assert.equal(await B.locator(msgSel(s)).evaluate((m) => m.classList.contains('mention')), false);
  // A message without a mention of A: no highlight; links still links.
  await h.say(B, 'see https://example.com/a?b=1 for more');
  const s2 = await h.waitMsg(A, b, 'see https://example.com/a?b=1 for more');
  assert.equal(await A.locator(msgSel(s2)).evaluate((m) => m.classList.contains('mention')), false);
  assert.equal(await A.locator(`${msgSel(s2)} .text a`).getAttribute('href'), 'https://example.com/a?b=1');
  for (const P of [A, B]) h.assertClean(P);
});

function stubNotifications() {
  window.__notes = [];
  document.hasFocus = () => true;
  class RecordingNotification {
    constructor(title, opts = {}) {
      window.__notes.push({ title, body: opts.body });
    }
    close() {}
    static requestPermission() {
      return Promise.resolve('granted');
    }
  }
  RecordingNotification.permission = 'granted';
  window.Notification = RecordingNotification;
}

test('M2. a mention of you in a room you are not looking at: notified (notifications on) and its tab marked', { timeout: 90_000 }, async () => {
  const a = `ann${h.uniq(4)}`;
  const A = await newPage(`A ${a} M2`);
  await A.addInitScript(stubNotifications);
  const code = await h.createRoom(A, env.server.base, a);
  const ws = await wsIn(code, `bot${h.uniq(4)}`);
  await h.waitMembers(A, ws.nick, true);
  await A.click('#notify');
  await h.waitIn(A, '#notify should be pressed', () => document.querySelector('#notify').getAttribute('aria-pressed') === 'true');
  const side = `side${h.uniq(4)}`;
  await h.say(A, `/join ${side}`);
  await h.waitActiveRoom(A, side);
  // Focused, another room showing: a plain message only counts as unread.
  await sayAll(ws, code, ['just chatting']);
  await h.waitIn(A, 'the first room\'s tab counts 1 unread', (code) =>
    document.querySelector(`#tabs .tab[data-room="${code}"] .unread`).textContent === '1', code);
  assert.deepEqual(await A.evaluate(() => window.__notes), [], 'no notification for a plain message while focused');
  // A mention of A: notified, and the tab says so.
  await sayAll(ws, code, [`@${a} can you check this?`]);
  await h.waitIn(A, 'a notification for the mention', () => window.__notes.length === 1);
  const [n] = await A.evaluate(() => window.__notes);
  assert.equal(n.title, `${ws.nick} mentioned you in #${code}`);
  assert.equal(n.body, `@${a} can you check this?`);
  await h.waitIn(A, 'the tab is marked .has-mention', (code) =>
    document.querySelector(`#tabs .tab[data-room="${code}"]`).classList.contains('has-mention'), code);
  assert.match(await A.getAttribute(`#tabs .tab[data-room="${code}"]`, 'aria-label'), /mentioned/);
  // Opening the tab clears it.
  await A.click(`#tabs .tab[data-room="${code}"]`);
  await h.waitIn(A, 'opening the tab clears the mark', (code) =>
    !document.querySelector(`#tabs .tab[data-room="${code}"]`).classList.contains('has-mention'), code);
  h.assertClean(A);
});

// ------------------------------------------------------- keyboard, phone

test('K1. by keyboard: Up/Down move between messages, Tab reaches the toolbar, the picker by keys; errors said', { timeout: 90_000 }, async () => {
  const { A, B, a, b } = await pair(' K1');
  await h.say(B, 'first from b');
  await h.say(B, 'second from b');
  const s2 = await h.waitMsg(A, b, 'second from b');
  const s1 = String(Number(s2) - 1);
  await A.focus('#messages');
  await A.keyboard.press('ArrowUp');
  await h.waitIn(A, 'ArrowUp in the list should focus the last message', (s) => document.activeElement.dataset.seq === s, s2);
  await A.keyboard.press('ArrowUp');
  await h.waitIn(A, 'ArrowUp again: the one before', (s) => document.activeElement.dataset.seq === s, s1);
  await A.keyboard.press('Tab');
  await h.waitIn(A, 'Tab should reach the focused message\'s React button', (s) =>
    document.activeElement.dataset.k === 'react' && document.activeElement.closest('.msg').dataset.seq === s, s1);
  await A.keyboard.press('ArrowRight');
  assert.equal(await A.evaluate(() => document.activeElement.dataset.k), 'reply');
  await A.keyboard.press('ArrowLeft');
  await A.keyboard.press('Enter'); // the picker opens on its first emoji
  await h.waitIn(A, 'the picker should open with the focus on its first emoji', () => document.activeElement.classList.contains('pick'));
  await A.keyboard.press('ArrowRight');
  const emoji = await A.evaluate(() => document.activeElement.dataset.emoji);
  await A.keyboard.press('Enter');
  await waitChip(B, s1, emoji, 1, false);
  await waitChip(A, s1, emoji, 1, true);
  // Escape from the toolbar goes back to the message; Enter on it to the toolbar; Reply.
  await A.focus(msgSel(s2));
  await A.keyboard.press('Enter');
  await A.keyboard.press('ArrowRight');
  await A.keyboard.press('Enter');
  await h.waitIn(A, 'Reply by keyboard: the bar shows and the box has the focus', () =>
    !document.querySelector('#compose-ctx').hidden && document.activeElement === document.querySelector('#input'));
  await A.keyboard.type('by keyboard');
  await A.keyboard.press('Enter');
  const r = await h.waitMsg(B, a, 'by keyboard');
  assert.equal((await shown(B))[r].quote.target, s2);
  for (const P of [A, B]) h.assertClean(P);
});

