'use strict';
// Two people chatting in the page, a netcat user in the same room, presence.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helpers');

let server;
let browser;
const pages = [];
const lines = [];

before(async () => {
  server = await h.startServer();
  browser = await h.launchBrowser();
}, { timeout: 45_000 });

after(async () => {
  for (const l of lines) l.close();
  await h.closeAll(browser, server);
}, { timeout: 20_000 });

async function page(label, opts = {}) {
  const p = await h.newPage(browser, { label, ...opts });
  pages.push(p);
  return p;
}

test('1. two pages: create a room, join it by code, chat both ways', { timeout: 60_000 }, async () => {
  const alice = `alice${h.uniq(3)}`;
  const bob = `bob${h.uniq(3)}`;
  const A = await page('page A', { permissions: ['clipboard-read', 'clipboard-write'] });
  const B = await page('page B');

  const code = await h.createRoom(A, server.base, alice);
  assert.match(code, /^[a-z0-9]{6}$/, `#room-code should hold a 6-character room code, got "${code}"`);
  await h.waitConnected(A);

  // The share link points at /#CODE on this server.
  const href = await A.locator('#share-link').first().getAttribute('href');
  assert.ok(href, '#share-link should have an href');
  const abs = new URL(href, server.base + '/').href;
  assert.ok(
    abs.toLowerCase().endsWith(`/#${code}`),
    `#share-link href should end with "/#${code}", got "${href}"`,
  );

  // #copy-code puts the code (or the link holding it) on the clipboard.
  await A.click('#copy-code');
  const clip = await h
    .withTimeout(A.evaluate(() => navigator.clipboard.readText()), 5_000, 'reading the clipboard')
    .catch((e) => `(clipboard unreadable: ${e.message})`);
  assert.ok(clip.toLowerCase().includes(code), `after #copy-code the clipboard should contain "${code}", got "${clip}"`);

  await h.joinByCode(B, server.base, bob, code);
  await h.waitConnected(B);
  await h.waitMembers(A, bob, true);
  await h.waitMembers(B, alice, true);

  // A -> B with Enter, B -> A with the #send button.
  await h.say(A, 'hello from A');
  await h.waitMsg(B, alice, 'hello from A');
  await h.waitMsg(A, alice, 'hello from A');
  assert.equal(await A.inputValue('#input'), '', '#input should be emptied after Enter sends');

  await B.fill('#input', 'hi back from B');
  await B.click('#send');
  await h.waitMsg(A, bob, 'hi back from B');
  await h.waitMsg(B, bob, 'hi back from B');

  // /me is an action.
  await h.say(A, '/me waves');
  await h.waitIn(
    B,
    'an action ".msg.action" with .nick alice and .text "waves" should show',
    (nick) =>
      [...document.querySelectorAll('#messages .msg.action')].some(
        (m) => m.querySelector('.nick')?.textContent.includes(nick) && m.querySelector('.text')?.textContent.trim() === 'waves',
      ),
    alice,
  );

  // Each message appears once, with a distinct seq, and .time is filled in.
  const msgs = await h.messages(B);
  assert.equal(msgs.filter((m) => m.text === 'hello from A').length, 1, 'B shows "hello from A" exactly once');
  assert.equal(msgs.filter((m) => m.text === 'hi back from B').length, 1, 'B shows "hi back from B" exactly once');
  const seqs = msgs.map((m) => m.seq);
  assert.ok(seqs.every((s) => /^\d+$/.test(s)), `every .msg has a numeric data-seq, got ${JSON.stringify(seqs)}`);
  assert.equal(new Set(seqs).size, seqs.length, `no two .msg share a data-seq: ${seqs}`);
  const times = await B.$$eval('#messages .msg .time', (ts) => ts.map((t) => t.textContent.trim()));
  assert.ok(times.length >= 3 && times.every((t) => /\d/.test(t)), `every .msg has a .time, got ${JSON.stringify(times)}`);

  // window.natter exposes the state.
  const nat = await A.evaluate(() => ({
    nick: window.natter && window.natter.nick,
    state: window.natter && window.natter.state,
    session: window.natter && typeof window.natter.session,
    rooms: window.natter && JSON.stringify(window.natter.rooms),
  }));
  assert.equal(nat.nick, alice, 'window.natter.nick');
  assert.equal(nat.session, 'string', 'window.natter.session is a string');
  assert.ok(nat.rooms && nat.rooms.includes(code), `window.natter.rooms should include ${code}, got ${nat.rooms}`);
  assert.equal(await A.locator('#status').getAttribute('data-state'), 'connected');

  h.assertClean(A);
  h.assertClean(B);
});

test('1b. typing in #input shows in the other page\'s #typing', { timeout: 40_000 }, async () => {
  const ann = `ann${h.uniq(3)}`;
  const ben = `ben${h.uniq(3)}`;
  const A = await page('page A');
  const B = await page('page B');
  const code = await h.createRoom(A, server.base, ann);
  await h.joinByCode(B, server.base, ben, code);
  await h.waitConnected(A);
  await h.waitConnected(B);
  await h.waitMembers(A, ben, true);
  await A.locator('#input').pressSequentially('typing something', { delay: 20 });
  await h.waitIn(B, `#typing should mention "${ann}" while A types`, (n) => {
    const t = document.querySelector('#typing');
    return t && t.textContent.includes(n);
  }, ann);
  h.assertClean(A);
  h.assertClean(B);
});

test('2. a raw TCP line client in the room sees the pages and is seen by them', { timeout: 60_000 }, async () => {
  const carol = `carol${h.uniq(3)}`;
  const dave = `dave${h.uniq(3)}`;
  const liner = `liner${h.uniq(3)}`;
  const A = await page('page A');
  const B = await page('page B');
  const code = await h.createRoom(A, server.base, carol);
  await h.joinByCode(B, server.base, dave, code);
  await h.waitConnected(A);
  await h.waitConnected(B);

  const lc = await h.LineClient.connect(server.port, `/nick ${liner}\n/join ${code}\n`);
  lines.push(lc);
  await lc.waitFor(new RegExp(`^\\*\\*\\* you joined #${code} \\(`));
  await h.waitMembers(A, liner, true);
  await h.waitMembers(B, liner, true);

  const from = lc.lines.length;
  await h.say(A, 'page A to the line');
  await h.say(B, 'page B to the line');
  const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  await lc.waitFor(new RegExp(`^\\[\\d\\d:\\d\\d:\\d\\d\\] #${code} <${carol}> ${esc('page A to the line')}$`), h.T.wait, from);
  await lc.waitFor(new RegExp(`^\\[\\d\\d:\\d\\d:\\d\\d\\] #${code} <${dave}> ${esc('page B to the line')}$`), h.T.wait, from);

  lc.send('hello pages, from netcat');
  await h.waitMsg(A, liner, 'hello pages, from netcat');
  await h.waitMsg(B, liner, 'hello pages, from netcat');

  lc.send('/me nods');
  for (const P of [A, B]) {
    await h.waitIn(
      P,
      `an action .msg.action from ${liner} with .text "nods" should show`,
      (nick) =>
        [...document.querySelectorAll('#messages .msg.action')].some(
          (m) => m.querySelector('.nick')?.textContent.includes(nick) && m.querySelector('.text')?.textContent.trim() === 'nods',
        ),
      liner,
    );
  }
  h.assertClean(A);
  h.assertClean(B);
});

test('3. presence: a third page joins through the share link, then leaves', { timeout: 60_000 }, async () => {
  const erin = `erin${h.uniq(3)}`;
  const finn = `finn${h.uniq(3)}`;
  const A = await page('page A');
  const B = await page('page B');
  const C = await page('page C');
  const code = await h.createRoom(A, server.base, erin);
  await h.joinByCode(B, server.base, finn, code);
  await h.waitConnected(B);
  await h.waitMembers(A, finn, true);

  // C opens the share link /#CODE: it asks for a name first, prefilled with
  // the one the server picked, and C keeps it (one Enter).
  const href = await A.locator('#share-link').first().getAttribute('href');
  await h.gotoPage(C, new URL(href, server.base + '/').href);
  const { prefilled } = await h.answerPrompt(C);
  await h.waitVisible(C, '#chat', `opening the share link ${href} and pressing Enter in #prompt-name should join the room`);
  await h.waitActiveRoom(C, code);
  await h.waitConnected(C);
  await h.waitIn(C, '#me should show a nick', () => /[A-Za-z]/.test(document.querySelector('#me')?.textContent || ''));
  const cnick = (await C.locator('#me').textContent()).trim().replace(/^@/, '');
  assert.equal(await C.evaluate(() => window.natter && window.natter.nick), cnick, 'window.natter.nick equals #me');
  assert.equal(cnick, prefilled, 'C joins under the name its prompt offered');

  await h.waitMembers(A, cnick, true);
  await h.waitMembers(B, cnick, true);
  await h.waitMembers(C, erin, true);
  await h.waitMembers(C, finn, true);
  await h.waitMembers(C, cnick, true);
  for (const P of [A, B]) {
    await h.waitIn(
      P,
      `a .system line should say ${cnick} joined`,
      (n) => [...document.querySelectorAll('#messages .system')].some((s) => s.textContent.includes(n) && /join/i.test(s.textContent)),
      cnick,
    );
  }

  await C.click('#leave');
  for (const P of [A, B]) {
    await h.waitMembers(P, cnick, false);
    await h.waitIn(
      P,
      `a .system line should say ${cnick} left`,
      (n) => [...document.querySelectorAll('#messages .system')].some((s) => s.textContent.includes(n) && /\bleft\b|\bleaves\b|<--/i.test(s.textContent)),
      cnick,
    );
  }
  // The ones who stayed are still listed.
  await h.waitMembers(A, finn, true);
  await h.waitMembers(B, erin, true);
  h.assertClean(A);
  h.assertClean(B);
  h.assertClean(C);
});

test('1c. the open-rooms list joins a listed room; /nick renames', { timeout: 40_000 }, async () => {
  const room = `public-${h.uniq(5)}`;
  const liner = `lister${h.uniq(3)}`;
  const lc = await h.LineClient.connect(server.port, `/nick ${liner}\n/join ${room}\n`);
  lines.push(lc);
  await lc.waitFor(new RegExp(`^\\*\\*\\* you joined #${room} \\(`));

  const P = await page('page P');
  await h.gotoPage(P, server.base + '/');
  await h.waitVisible(P, '#landing', 'landing page');
  const li = `#open-rooms li[data-room="${room}"]`;
  await h.waitVisible(P, li, `the listed room ${room} (1 member) should be in #open-rooms`);
  await P.click(li);
  await h.waitVisible(P, '#chat', `clicking ${li} should open the chat`);
  await h.waitActiveRoom(P, room);
  await h.waitConnected(P);
  await h.waitMembers(P, liner, true);
  await h.waitIn(P, '#me should show a nick', () => /[A-Za-z]/.test(document.querySelector('#me')?.textContent || ''));
  const before = (await P.locator('#me').textContent()).trim().replace(/^@/, '');
  await lc.waitFor(new RegExp(`#${room} --> ${before} joined$`));

  const renamed = `renamed${h.uniq(3)}`;
  await h.say(P, `/nick ${renamed}`);
  await h.waitNick(P, renamed);
  assert.equal(await P.evaluate(() => window.natter.nick), renamed, 'window.natter.nick after /nick');
  await lc.waitFor(new RegExp(`#${room} --- ${before} is now known as ${renamed}$`));
  await h.waitMembers(P, renamed, true);
  await h.waitMembers(P, before, false);
  h.assertClean(P);
});
