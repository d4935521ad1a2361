'use strict';
// Messages that live (issue 16) in the page: edit (the toolbar's Edit, and
// Up-arrow in an empty box), delete (your own, and an op deleting a
// guest's), reply (the quote, and a click on it jumping to the original,
// loading older history), reactions (chips with counts and who, toggled
// from either page), a mention of you, a network cut and a reload in the
// middle of changes made by the other page ending exactly right, the
// keyboard path and the long press, and screenshots at desktop and phone
// size.
//
// The DOM contract: a room message is `.msg[data-seq]` with `.text`;
// "(edited)" is `.edited` beside it; a deleted one is `.msg.deleted` with
// `.text` "message deleted"; a reply has `.quote[data-target=SEQ]` with
// `.quote-from` and `.quote-text`; reactions are `.reactions .chip
// [data-emoji]` with `.count`, `aria-pressed` for yours and the names in
// `title`; the toolbar is `.tools .tool[data-k=react|reply|edit|delete]`,
// the picker `.picker .pick[data-emoji]` and `.picker-other input`; the
// bar above the box `#compose-ctx`; the delete dialog `#delete-dialog`.

const { test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./helpers');

let server;
let browser;
const clients = [];

before(async () => {
  server = await h.startServer();
  browser = await h.launchBrowser();
  fs.mkdirSync(h.SCREENSHOTS, { recursive: true });
}, { timeout: 45_000 });

after(async () => {
  for (const c of clients) c.close();
  await h.closeAll(browser, server);
}, { timeout: 20_000 });

let open = [];
afterEach(async () => {
  const contexts = open.map((p) => p.context());
  open = [];
  await h.closeAll(...contexts);
}, { timeout: 20_000 });

const DESKTOP = { viewport: { width: 1280, height: 800 } };
const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1 };

async function newPage(label, opts = {}) {
  const p = await h.newPage(browser, { label, ...opts });
  open.push(p);
  return p;
}

/** Two guests in a fresh room: A made it, B joined by code. */
async function pair(tag = '', opts = {}) {
  const a = `ann${h.uniq(4)}`;
  const b = `bob${h.uniq(4)}`;
  const A = await newPage(`A ${a}${tag}`, opts.A);
  const code = await h.createRoom(A, opts.baseA || server.base, a);
  const B = await newPage(`B ${b}${tag}`, opts.B);
  await h.joinByCode(B, server.base, b, code);
  await h.waitMembers(A, b, true);
  return { A, B, a, b, code };
}

/** A raw WebSocket client in `room` as `nick`. */
async function wsIn(room, nick) {
  const c = await h.WsClient.connect(server.port);
  clients.push(c);
  const n = await c.ask({ type: 'nick', nick });
  assert.equal(n.type, 'nick', `ws client: /nick ${nick}: ${JSON.stringify(n)}`);
  c.nick = nick;
  const j = await c.ask({ type: 'join', room });
  assert.equal(j.type, 'joined', `ws client: join ${room}: ${JSON.stringify(j)}`);
  return c;
}

/** Says each text (within the server's flood limit); returns their seqs. */
async function sayAll(c, room, texts) {
  const seqs = [];
  for (const text of texts) {
    const m = await c.ask({ type: 'say', room, text, cid: 'c' + h.uniq(10) });
    assert.equal(m.type, 'message', `ws client: say ${text}: ${JSON.stringify(m)}`);
    seqs.push(m.seq);
    await h.sleep(110); // 10 a second at most
  }
  return seqs;
}

const msgSel = (seq) => `#messages .msg[data-seq="${seq}"]`;

/**
 * Opens a message's toolbar and presses one of its tools. Desktop: hover,
 * then click; a phone: a long press (touch), then tap.
 */
async function tool(P, seq, k) {
  const m = P.locator(msgSel(seq));
  await m.scrollIntoViewIfNeeded();
  if (await P.evaluate(() => matchMedia('(hover: hover) and (pointer: fine)').matches)) await m.hover();
  else await longPress(P, seq);
  await P.locator(`${msgSel(seq)} .tool[data-k="${k}"]`).click();
}

/** A touch long press on a message (Chrome DevTools' touch events). */
async function longPress(P, seq) {
  const box = await P.locator(`${msgSel(seq)} .time`).boundingBox();
  const x = box.x + box.width / 2;
  const y = box.y + box.height / 2;
  const cdp = await P.context().newCDPSession(P);
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [{ x, y }] });
  await h.sleep(700);
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
  await cdp.detach();
  await h.waitIn(P, `a long press on message ${seq} should show its toolbar`, (sel) => {
    const t = document.querySelector(sel + ' .tools');
    return t && getComputedStyle(t).display !== 'none';
  }, msgSel(seq));
}

/** What the page shows of each room message, by seq. */
async function shown(P) {
  return P.evaluate(() => {
    const out = {};
    for (const m of document.querySelectorAll('#messages .msg[data-seq]')) {
      const q = m.querySelector('.quote');
      const reactions = {};
      for (const c of m.querySelectorAll('.reactions .chip')) {
        reactions[c.dataset.emoji] = { count: Number(c.querySelector('.count').textContent), title: c.title };
      }
      out[m.dataset.seq] = {
        nick: m.querySelector('.nick').textContent,
        text: m.querySelector('.text').textContent,
        edited: !!m.querySelector('.edited'),
        deleted: m.classList.contains('deleted'),
        quote: q ? { target: q.dataset.target, from: q.querySelector('.quote-from').textContent, text: q.querySelector('.quote-text').textContent } : null,
        reactions,
      };
    }
    return out;
  });
}

/** The same, without who: each page sees itself as "you" in chip titles. */
const comparable = (s) => JSON.parse(JSON.stringify(s, (k, v) => (k === 'title' ? undefined : v)));

async function waitText(P, seq, text, what) {
  await h.waitIn(P, what || `message ${seq} should read ${JSON.stringify(text)}`, ({ sel, text }) => {
    const m = document.querySelector(sel);
    return m && m.querySelector('.text') && m.querySelector('.text').textContent === text;
  }, { sel: msgSel(seq), text });
}

async function waitEdited(P, seq, text) {
  await h.waitIn(P, `message ${seq} should read ${JSON.stringify(text)} with "(edited)"`, ({ sel, text }) => {
    const m = document.querySelector(sel);
    return m && m.querySelector('.text').textContent === text && m.querySelector('.edited') &&
      /edited/.test(m.querySelector('.edited').textContent);
  }, { sel: msgSel(seq), text });
}

async function waitDeleted(P, seq) {
  await h.waitIn(P, `message ${seq} should show "message deleted" in place`, (sel) => {
    const m = document.querySelector(sel);
    return m && m.classList.contains('deleted') && m.querySelector('.text').textContent === 'message deleted' &&
      !m.querySelector('.tools') && !m.querySelector('img');
  }, msgSel(seq));
}

async function waitChip(P, seq, emoji, count, pressed) {
  await h.waitIn(P, `message ${seq} should have a ${emoji} chip counting ${count}${pressed === undefined ? '' : pressed ? ', pressed' : ', not pressed'}`,
    ({ sel, emoji, count, pressed }) => {
      const chips = [...document.querySelectorAll(sel + ' .reactions .chip')].filter((c) => c.dataset.emoji === emoji);
      if (count === 0) return chips.length === 0;
      const c = chips[0];
      return chips.length === 1 && Number(c.querySelector('.count').textContent) === count &&
        (pressed === undefined || c.getAttribute('aria-pressed') === String(pressed));
    }, { sel: msgSel(seq), emoji, count, pressed });
}

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
  await h.gotoPage(A, server.base + '/');
  await h.waitConnected(A);
  await A.fill('#name', owner);
  await A.press('#name', 'Enter');
  await h.waitNick(A, owner);
  await h.signUp(A, owner, PASSWORD);
  const code = await h.createRoom(A, server.base, owner);
  const B = await newPage(`guest ${guest}`);
  await h.joinByCode(B, server.base, guest, code);
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

// ----------------------------------------------------------------- reply

test('R1. reply: "Replying to X ✕", the quote above the reply, a click on it jumps to the original, loading older history', { timeout: 90_000 }, async () => {
  const { A, B, a, b, code } = await pair(' R1');
  await h.say(B, 'which train do we take?');
  const orig = await h.waitMsg(A, b, 'which train do we take?');
  // ✕ cancels a reply.
  await tool(A, orig, 'reply');
  await h.waitVisible(A, '#compose-ctx', 'the "Replying to" bar');
  assert.match(await A.locator('#compose-ctx').textContent(), new RegExp(`Replying to ${b}`));
  await A.click('#compose-ctx-cancel');
  await h.waitIn(A, '✕ should cancel the reply', () => document.querySelector('#compose-ctx').hidden);
  await tool(A, orig, 'reply');
  await A.fill('#input', 'the 9:15 one');
  await A.press('#input', 'Enter');
  const reply = await h.waitMsg(B, a, 'the 9:15 one');
  await h.waitMsg(A, a, 'the 9:15 one');
  for (const P of [A, B]) {
    const s = (await shown(P))[reply];
    assert.deepEqual(s.quote, { target: String(orig), from: b, text: 'which train do we take?' }, `${P.label}: the quote above the reply`);
  }
  assert.equal(await A.locator('#compose-ctx').isVisible(), false, 'one message answers a reply');

  // 70 messages later, a third page joins: it holds the last 50 and the
  // original is not on it; B replies to the original again, and a click on
  // the quote in C's page loads older history until the original is there.
  const ws = await wsIn(code, `filler${h.uniq(3)}`);
  await sayAll(ws, code, Array.from({ length: 70 }, (_, i) => `filler ${i + 1}`));
  const c = `cat${h.uniq(4)}`;
  const C = await newPage(`C ${c} R1`);
  await h.joinByCode(C, server.base, c, code);
  await h.waitMsg(C, ws.nick, 'filler 70');
  await tool(B, orig, 'reply');
  await B.fill('#input', 'the original question, again');
  await B.press('#input', 'Enter');
  const again = await h.waitMsg(C, b, 'the original question, again');
  assert.equal(await C.evaluate((o) => !!document.querySelector(`#messages .msg[data-seq="${o}"]`), orig), false,
    'the original is not on C\'s page yet');
  await C.click(`${msgSel(again)} .quote`);
  await h.waitIn(C, 'a click on the quote should bring the original onto the page, highlighted and in view', (o) => {
    const m = document.querySelector(`#messages .msg[data-seq="${o}"]`);
    if (!m || !m.classList.contains('flash')) return false;
    const r = m.getBoundingClientRect();
    const box = document.querySelector('#messages').getBoundingClientRect();
    return r.top >= box.top - 1 && r.bottom <= box.bottom + 1;
  }, orig, 20_000);
  // Every seq once, in order.
  const seqs = await C.evaluate(() => [...document.querySelectorAll('#messages .msg[data-seq]')].map((m) => Number(m.dataset.seq)));
  assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), 'messages in seq order');
  assert.equal(new Set(seqs).size, seqs.length, 'each seq once');
  for (const P of [A, B, C]) h.assertClean(P);
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
  const code = await h.createRoom(A, server.base, a);
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

// --------------------------------------------------- catch-up and reload

test('C1. a network cut and a reload in the middle of the other page\'s edits, deletes and reactions end exactly right', { timeout: 90_000 }, async () => {
  const proxy = await h.FlakyProxy.start(server.port);
  try {
    const { A, B, a, b } = await pair(' C1', { baseA: proxy.base });
    await h.waitConnected(A);
    const texts = ['one', 'two', 'three', 'four'];
    for (const t of texts) await h.say(B, t);
    const seqs = [];
    for (const t of texts) seqs.push(await h.waitMsg(A, b, t));
    await h.say(A, 'mine');
    const mine = await h.waitMsg(B, a, 'mine');
    // A reacts to three before the cut.
    await A.locator(msgSel(seqs[2])).hover();
    await tool(A, seqs[2], 'react');
    await A.click(`${msgSel(seqs[2])} .pick[data-emoji="🎉"]`);
    await waitChip(B, seqs[2], '🎉', 1);

    // The network goes.
    proxy.refuse = true;
    proxy.cut();
    await h.waitIn(A, 'A should notice the cut', () => document.querySelector('#status').dataset.state !== 'connected', null, 15_000);
    // B, meanwhile: edits one twice, deletes two, reacts to three and
    // four (and takes four's back), reacts to A's.
    await tool(B, seqs[0], 'edit');
    await B.fill('#input', 'one (first edit)');
    await B.press('#input', 'Enter');
    await waitEdited(B, seqs[0], 'one (first edit)');
    await tool(B, seqs[0], 'edit');
    await B.fill('#input', 'one (second edit)');
    await B.press('#input', 'Enter');
    await waitEdited(B, seqs[0], 'one (second edit)');
    await tool(B, seqs[1], 'delete');
    await B.click('#delete-ok');
    await waitDeleted(B, seqs[1]);
    await B.click(`${msgSel(seqs[2])} .chip[data-emoji="🎉"]`);
    await waitChip(B, seqs[2], '🎉', 2, true);
    await tool(B, seqs[3], 'react');
    await B.click(`${msgSel(seqs[3])} .pick[data-emoji="😮"]`);
    await waitChip(B, seqs[3], '😮', 1, true);
    await B.click(`${msgSel(seqs[3])} .chip[data-emoji="😮"]`);
    await waitChip(B, seqs[3], '😮', 0);
    await tool(B, mine, 'react');
    await B.click(`${msgSel(mine)} .pick[data-emoji="❤️"]`);
    await waitChip(B, mine, '❤️', 1, true);
    await h.say(B, 'five');
    const five = await h.waitMsg(B, b, 'five');

    // The network is back: A catches up (joined with since: the changes
    // come mixed with the new message) and ends exactly like B.
    proxy.refuse = false;
    await h.waitConnected(A, h.T.reconnect);
    await h.waitMsg(A, b, 'five');
    await waitEdited(A, seqs[0], 'one (second edit)');
    await waitDeleted(A, seqs[1]);
    await waitChip(A, seqs[2], '🎉', 2, true);
    await waitChip(A, mine, '❤️', 1, false);
    assert.deepEqual(comparable(await shown(A)), comparable(await shown(B)), 'after the cut, A shows exactly what B shows');

    // More changes, and A reloads in the middle of them.
    await tool(B, five, 'edit');
    await B.fill('#input', 'five, edited');
    const reloading = A.reload({ waitUntil: 'domcontentloaded' });
    await B.press('#input', 'Enter');
    await B.click(`${msgSel(seqs[2])} .chip[data-emoji="🎉"]`);
    await reloading;
    await waitEdited(B, five, 'five, edited');
    await waitChip(B, seqs[2], '🎉', 1, false);
    await h.waitConnected(A);
    await waitEdited(A, five, 'five, edited');
    await waitChip(A, seqs[2], '🎉', 1, true);
    assert.deepEqual(comparable(await shown(A)), comparable(await shown(B)), 'after the reload, A shows exactly what B shows');
    for (const P of [A, B]) h.assertClean(P);
  } finally {
    await proxy.close();
  }
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

// ------------------------------------------------------------ screenshots

for (const v of [
  { tag: '1280x800', opts: DESKTOP },
  { tag: '390x844', opts: PHONE },
]) {
  test(`S1. screenshots at ${v.tag}: a reply, reactions, an edit, a delete, a mention, the toolbar, the reply bar`, { timeout: 90_000 }, async () => {
    const { A, B, a, b } = await pair(` ${v.tag}`, { A: v.opts, B: v.opts });
    await h.say(B, 'Morning! Who is bringing the projector for the 10:00 demo?');
    const q = await h.waitMsg(A, b, 'Morning! Who is bringing the projector for the 10:00 demo?');
    await tool(A, q, 'reply');
    await A.fill('#input', `I will, @${b}. Slides are at https://example.com/slides`);
    await A.press('#input', 'Enter');
    const r = await h.waitMsg(B, a, `I will, @${b}. Slides are at https://example.com/slides`);
    await tool(B, r, 'react');
    await B.click(`${msgSel(r)} .pick[data-emoji="🙏"]`);
    await waitChip(A, r, '🙏', 1);
    await A.click(`${msgSel(r)} .chip[data-emoji="🙏"]`);
    await tool(A, r, 'react');
    await A.click(`${msgSel(r)} .pick[data-emoji="🎉"]`);
    await h.say(B, 'typo here: teh demo');
    const e = await h.waitMsg(B, b, 'typo here: teh demo');
    await tool(B, e, 'edit');
    await B.fill('#input', 'typo here: the demo');
    await B.press('#input', 'Enter');
    await h.say(B, 'wrong chat, sorry');
    const d = await h.waitMsg(B, b, 'wrong chat, sorry');
    await tool(B, d, 'delete');
    await B.click('#delete-ok');
    await waitDeleted(A, d);
    await waitEdited(A, e, 'typo here: the demo');
    await waitChip(A, r, '🙏', 2, true);
    // A: the toolbar on B's question, and a reply being written.
    await tool(A, q, 'reply');
    await A.fill('#input', 'also, lunch after?');
    if (v.opts === PHONE) await longPress(A, e);
    else await A.locator(msgSel(e)).hover();
    await h.assertNoSideways(A, 'messages with quotes, chips and the toolbar');
    await A.screenshot({ path: path.join(h.SCREENSHOTS, `messages-${v.tag}.png`) });
    for (const P of [A, B]) h.assertClean(P);
  });
}
