'use strict';
// A share link (/#CODE) asks for a name before joining: the room only ever
// sees the chosen name join (never a generated one come and go), Enter
// alone accepts the offered name, and the name is remembered for the next
// visit in the same browser.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./helpers');

let server;
let browser;
const lines = [];

before(async () => {
  server = await h.startServer();
  browser = await h.launchBrowser();
  fs.mkdirSync(h.SCREENSHOTS, { recursive: true });
}, { timeout: 45_000 });

after(async () => {
  for (const l of lines) l.close();
  await h.closeAll(browser, server);
}, { timeout: 20_000 });

const GENERATED = /^[a-z]+-[a-z]+-\d+$/;

/** .system lines of P that name `nick` (as a whole word). */
async function aboutNick(P, nick) {
  return (await h.systemLines(P)).filter((l) => new RegExp(`(^|[^A-Za-z0-9_-])${nick}($|[^A-Za-z0-9_-])`).test(l));
}

/** A page in the room and a line client in it, to watch what the room sees. */
async function room(label) {
  const host = `host${h.uniq(3)}`;
  const A = await h.newPage(browser, { label });
  const code = await h.createRoom(A, server.base, host);
  await h.waitConnected(A);
  const watcher = `watch${h.uniq(3)}`;
  const lc = await h.LineClient.connect(server.port, `/nick ${watcher}\n/join ${code}\n`);
  lines.push(lc);
  await lc.waitFor(new RegExp(`^\\*\\*\\* you joined #${code} \\(`));
  await h.waitMembers(A, watcher, true);
  return { A, host, code, lc, watcher, link: `${server.base}/#${code}` };
}

test('11. a share link asks for a name first and joins under the typed one', { timeout: 60_000 }, async () => {
  const { A, host, code, lc, watcher, link } = await room('page A (in the room)');
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  try {
    const C = await context.newPage();
    C.label = 'page C (opens the link)';
    C.log = { console: [], errors: [], csp: [] };
    C.on('pageerror', (e) => C.log.errors.push(String((e && e.stack) || e)));
    C.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) C.log.csp.push(m.text());
    });
    await h.gotoPage(C, link);
    await h.waitVisible(C, '#prompt', 'opening the share link should ask for a name');
    await h.waitConnected(C);
    // Prefilled with the name the server gave, and nobody saw it join.
    await h.waitIn(C, '#prompt-name should be prefilled with window.natter.nick', () => {
      const v = document.querySelector('#prompt-name').value;
      return v && v === window.natter.nick;
    });
    const generated = await C.evaluate(() => window.natter.nick);
    assert.match(generated, GENERATED, 'a generated name is offered first');
    assert.equal(await C.evaluate(() => document.activeElement && document.activeElement.id), 'prompt-name', '#prompt-name has the focus');
    assert.ok((await C.locator('#prompt-room').textContent()).includes(code), '#prompt-room names the room');
    assert.equal(await C.locator('#chat').isVisible(), false, 'the chat is not shown before a name is chosen');
    await h.sleep(h.T.settle);
    assert.deepEqual((await h.memberList(A)).sort(), [host, watcher].sort(), 'nobody joins while the page asks for a name');
    assert.deepEqual(await C.evaluate(() => window.natter.rooms), [], 'the page is in no room yet');

    const maya = `maya${h.uniq(3)}`;
    const { prefilled } = await h.answerPrompt(C, maya);
    assert.equal(prefilled, generated);
    await h.waitVisible(C, '#chat', 'after Enter in #prompt-name the chat should show');
    await h.waitActiveRoom(C, code);
    await h.waitNick(C, maya);
    await h.waitMembers(A, maya, true);
    await h.waitMembers(C, host, true);
    await lc.waitFor(new RegExp(`#${code} --> ${maya} joined$`));
    assert.deepEqual(await aboutNick(A, generated), [], `the room never hears of the generated ${generated}`);
    assert.equal(lc.lines.filter((l) => l.includes(generated)).length, 0, `the line client never hears of ${generated}`);
    assert.equal(await C.evaluate(() => localStorage.getItem('natter.name')), maya, 'the chosen name is remembered');

    // Leave, close the page; the next visit in this browser offers the name again.
    await C.click('#leave');
    await h.waitMembers(A, maya, false);
    await C.close();
    const C2 = await context.newPage();
    C2.label = 'page C2 (the next visit)';
    C2.log = { console: [], errors: [], csp: [] };
    await h.gotoPage(C2, link);
    const again = await h.answerPrompt(C2);
    assert.equal(again.prefilled, maya, 'the next visit offers the remembered name');
    await h.waitVisible(C2, '#chat', 'Enter joins');
    await h.waitActiveRoom(C2, code);
    await h.waitNick(C2, maya);
    await h.waitMembers(A, maya, true);
    h.assertClean(A);
    h.assertClean(C);
  } finally {
    await context.close().catch(() => {});
  }
});

test('11e. a tab closed right after Leave does not hand the room to the next visit', { timeout: 60_000 }, async () => {
  const { A, code, link } = await room('page A (in the room)');
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  try {
    const C = await context.newPage();
    C.label = 'page C (leaves, closes at once)';
    C.log = { console: [], errors: [], csp: [] };
    await h.gotoPage(C, link);
    const zed = `zed${h.uniq(3)}`;
    await h.answerPrompt(C, zed);
    await h.waitActiveRoom(C, code);
    await h.waitMembers(A, zed, true);
    // Leave, and the tab goes away in the same breath: the page's
    // `pagehide` runs before the server's `left` has come back (the tab
    // still shows the room). What it hands the next tab must not hold the
    // room it left.
    const released = await C.evaluate(() => {
      document.getElementById('leave').click();
      window.dispatchEvent(new PageTransitionEvent('pagehide', { persisted: false }));
      return JSON.parse(localStorage.getItem('natter.released') || '[]');
    });
    const rooms = [].concat(...(Array.isArray(released) ? released : [released]).map((r) => (r && r.rooms) || []));
    assert.ok(!rooms.includes(code), `the released session leaves #${code} out: ${JSON.stringify(released)}`);
    await C.close();
    await h.waitMembers(A, zed, false);
    const C2 = await context.newPage();
    C2.label = 'page C2 (the next visit)';
    C2.log = { console: [], errors: [], csp: [] };
    await h.gotoPage(C2, link);
    // Asked for a name, not put back into the room it left.
    const again = await h.answerPrompt(C2);
    assert.equal(again.prefilled, zed, 'the next visit offers the remembered name');
    await h.waitActiveRoom(C2, code);
    await h.waitMembers(A, zed, true);
  } finally {
    await context.close().catch(() => {});
  }
});

test('11b. one Enter accepts the offered name', { timeout: 60_000 }, async () => {
  const { A, code, lc, link } = await room('page A (in the room)');
  const D = await h.newPage(browser, { label: 'page D (opens the link)' });
  await h.gotoPage(D, link);
  const { prefilled, nick } = await h.answerPrompt(D);
  assert.match(prefilled, GENERATED, 'the offered name is the one the server gave');
  await h.waitVisible(D, '#chat', 'Enter alone should join');
  await h.waitActiveRoom(D, code);
  await h.waitNick(D, nick);
  assert.equal(await D.evaluate(() => window.natter.nick), nick);
  await h.waitMembers(A, nick, true);
  await lc.waitFor(new RegExp(`#${code} --> ${nick} joined$`));
  h.assertClean(A);
  h.assertClean(D);
});

test('11c. a name that is not valid or taken is refused in the prompt, which stays', { timeout: 60_000 }, async () => {
  const { A, host, code, link } = await room('page A (in the room)');
  const E = await h.newPage(browser, { label: 'page E (opens the link)' });
  await h.gotoPage(E, link);
  await h.answerPrompt(E, '9lives');
  await h.waitIn(E, '#prompt-error should explain the name rules', () => /letter/.test(document.querySelector('#prompt-error').textContent));
  await E.fill('#prompt-name', host);
  await E.press('#prompt-name', 'Enter');
  await h.waitIn(E, '#prompt-error should say the name is taken', () => /taken|in use/i.test(document.querySelector('#prompt-error').textContent));
  assert.equal(await E.locator('#prompt').isVisible(), true, 'the prompt stays');
  assert.deepEqual(await E.evaluate(() => window.natter.rooms), [], 'no room joined under another name');
  const ok = `eve${h.uniq(3)}`;
  await h.answerPrompt(E, ok);
  await h.waitActiveRoom(E, code);
  await h.waitNick(E, ok);
  await h.waitMembers(A, ok, true);
  h.assertClean(E);
});

const SIZES = [
  { name: 'prompt-1280x800.png', label: 'desktop 1280x800', opts: { viewport: { width: 1280, height: 800 } } },
  {
    name: 'prompt-390x844.png',
    label: 'phone 390x844',
    opts: { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1 },
  },
];

for (const size of SIZES) {
  test(`11d. the name prompt at ${size.label}: fits, usable, screenshot`, { timeout: 60_000 }, async () => {
    const { code, link } = await room('page A (in the room)');
    const P = await h.newPage(browser, { label: `page (${size.label})`, ...size.opts });
    await h.gotoPage(P, link);
    await h.waitVisible(P, '#prompt', 'the name prompt');
    await h.waitIn(P, '#prompt-name should be prefilled', () => document.querySelector('#prompt-name').value === window.natter.nick);
    const m = await P.evaluate(() => {
      const box = (sel) => {
        const r = document.querySelector(sel).getBoundingClientRect();
        return { left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width, height: r.height };
      };
      const f = document.querySelector('#prompt-name');
      return {
        sw: document.documentElement.scrollWidth,
        iw: window.innerWidth,
        ih: window.innerHeight,
        input: box('#prompt-name'),
        button: box('#prompt-join'),
        focused: document.activeElement === f,
        selected: f.selectionStart === 0 && f.selectionEnd === f.value.length,
        fontSize: parseFloat(getComputedStyle(f).fontSize),
        label: document.querySelector('label[for="prompt-name"]') !== null,
        autocomplete: f.getAttribute('autocomplete'),
      };
    });
    assert.ok(m.sw <= m.iw, `documentElement.scrollWidth ${m.sw} > innerWidth ${m.iw}`);
    for (const [what, b] of [['#prompt-name', m.input], ['#prompt-join', m.button]]) {
      assert.ok(b.left >= 0 && b.right <= m.iw && b.top >= 0 && b.bottom <= m.ih, `${what} lies inside the window: ${JSON.stringify(b)}`);
    }
    assert.ok(m.input.width >= 150, `#prompt-name is wide enough to type in: ${m.input.width}px`);
    assert.ok(m.button.height >= 36, `#prompt-join is big enough to tap: ${m.button.height}px`);
    assert.ok(m.focused, '#prompt-name has the focus');
    assert.ok(m.selected, 'the offered name is selected, so typing replaces it');
    assert.ok(m.fontSize >= 16, `#prompt-name font-size ${m.fontSize}px: under 16px a phone zooms in on focus`);
    assert.ok(m.label, '#prompt-name has a label');
    assert.equal(m.autocomplete, 'nickname');
    assert.ok((await P.locator('#prompt-room').textContent()).includes(code));
    await P.screenshot({ path: path.join(h.SCREENSHOTS, size.name) });
    h.assertClean(P);
  });
}
