'use strict';
// The shared part of the browser tests of messages that live and search
// (messages.test.js, replies.test.js, search.test.js): one server and one
// Chromium per file, pages closed after each test, two pages in a room, a
// raw WebSocket client in a room, a message's toolbar opened the way a
// person would (hover on a desktop, a long press on a phone), and what a
// page shows of each message.
//
// The DOM contract: a room message is `.msg[data-seq]` with `.text`;
// "(edited)" is `.edited` beside it; a deleted one is `.msg.deleted` with
// `.text` "message deleted"; a reply has `.quote[data-target=SEQ]` with
// `.quote-from` and `.quote-text`; reactions are `.reactions .chip
// [data-emoji]` with `.count`, `aria-pressed` for yours and the names in
// `title`; the toolbar is `.tools .tool[data-k=react|reply|edit|delete]`,
// the picker `.picker .pick[data-emoji]` and `.picker-other input`; the
// bar above the box `#compose-ctx`; the delete dialog `#delete-dialog`.

const { before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const h = require('./helpers');

const env = { server: null, browser: null };
const clients = [];

/** Registers the file's hooks: a server (with `args`) and a browser. */
function setup(args = []) {
  before(async () => {
    env.server = await h.startServer(args);
    env.browser = await h.launchBrowser();
    fs.mkdirSync(h.SCREENSHOTS, { recursive: true });
  }, { timeout: 45_000 });
  after(async () => {
    for (const c of clients) c.close();
    await h.closeAll(env.browser, env.server);
  }, { timeout: 20_000 });
  afterEach(async () => {
    const contexts = open.map((p) => p.context());
    open = [];
    await h.closeAll(...contexts);
  }, { timeout: 20_000 });
  return env;
}

let open = [];

const DESKTOP = { viewport: { width: 1280, height: 800 } };
const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1 };

async function newPage(label, opts = {}) {
  const p = await h.newPage(env.browser, { label, ...opts });
  open.push(p);
  return p;
}

/** Two guests in a fresh room: A made it, B joined by code. */
async function pair(tag = '', opts = {}) {
  const a = `ann${h.uniq(4)}`;
  const b = `bob${h.uniq(4)}`;
  const A = await newPage(`A ${a}${tag}`, opts.A);
  const code = await h.createRoom(A, opts.baseA || env.server.base, a);
  const B = await newPage(`B ${b}${tag}`, opts.B);
  await h.joinByCode(B, env.server.base, b, code);
  await h.waitMembers(A, b, true);
  return { A, B, a, b, code };
}

/** A raw WebSocket client in `room` as `nick`. */
async function wsIn(room, nick) {
  const c = await h.WsClient.connect(env.server.port);
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
  // A message is drawn again when a change reaches it: if that happens
  // under the pointer, try again on the new one.
  for (let attempt = 1; ; attempt++) {
    try {
      const m = P.locator(msgSel(seq));
      await m.scrollIntoViewIfNeeded();
      if (await P.evaluate(() => matchMedia('(hover: hover) and (pointer: fine)').matches)) await m.hover();
      else await longPress(P, seq);
      await P.locator(`${msgSel(seq)} .tool[data-k="${k}"]`).click({ timeout: 3_000 });
      return;
    } catch (e) {
      if (attempt >= 3) throw e;
      await h.sleep(200);
    }
  }
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

module.exports = {
  setup, env, DESKTOP, PHONE, newPage, pair, wsIn, sayAll, msgSel, tool, longPress, shown, comparable,
  waitText, waitEdited, waitDeleted, waitChip,
};
