'use strict';
// No sideways scrolling on a phone or a desktop, whatever people paste;
// screenshots of both go to target/screenshots/.

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

const LONG_WORD = 'W'.repeat(150) + 'w'.repeat(150); // 300 characters, no break
const LONG_URL =
  'https://example.com/a/very/long/path/' + 'segment-without-spaces/'.repeat(8) + '?query=' + 'x'.repeat(80) + '&more=' + 'y'.repeat(40);

const SIZES = [
  { name: 'desktop-1280x800.png', label: 'desktop 1280x800', opts: { viewport: { width: 1280, height: 800 } } },
  {
    name: 'phone-390x844.png',
    label: 'phone 390x844',
    opts: { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1 },
  },
];

for (const size of SIZES) {
  test(`7. layout at ${size.label}: no horizontal overflow after long words and URLs; screenshot`, { timeout: 60_000 }, async () => {
    const me = `oli${h.uniq(3)}`;
    const them = `pat${h.uniq(3)}`;
    const P = await h.newPage(browser, { label: `page (${size.label})`, ...size.opts });

    // The landing page fits as well.
    await h.gotoPage(P, server.base + '/');
    await h.waitVisible(P, '#landing', 'landing page');
    const landing = await P.evaluate(() => ({ sw: document.documentElement.scrollWidth, iw: window.innerWidth }));
    assert.ok(landing.sw <= landing.iw, `landing page: documentElement.scrollWidth ${landing.sw} > innerWidth ${landing.iw}`);

    const code = await h.createRoom(P, server.base, me);
    await h.waitConnected(P);
    const other = await h.LineClient.connect(server.port, `/nick ${them}\n/join ${code}\n`);
    lines.push(other);
    await other.waitFor(new RegExp(`^\\*\\*\\* you joined #${code} `));

    await h.say(P, 'a short hello');
    await h.say(P, LONG_WORD);
    await h.say(P, `look: ${LONG_URL}`);
    other.send('hi! an ordinary sentence that wraps normally on a narrow phone screen, as sentences do.');
    other.send(LONG_WORD.toLowerCase());
    other.send(LONG_URL);
    other.send('/me stretches ' + 'a'.repeat(200));
    await h.waitMsg(P, me, LONG_WORD);
    await h.waitMsg(P, me, `look: ${LONG_URL}`);
    await h.waitMsg(P, them, LONG_WORD.toLowerCase());
    await h.waitMsg(P, them, LONG_URL);
    await h.sleep(300);

    const m = await P.evaluate(() => {
      const iw = window.innerWidth;
      const msgs = document.querySelector('#messages');
      const over = [...document.querySelectorAll('#messages .msg')]
        .map((el) => ({ r: el.getBoundingClientRect().right, t: (el.querySelector('.text')?.textContent || '').slice(0, 30) }))
        .filter((x) => x.r > iw + 1);
      const overText = [...document.querySelectorAll('#messages .msg .text')]
        .filter((el) => el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).display !== 'inline')
        .map((el) => `${el.textContent.slice(0, 30)} (scrollWidth ${el.scrollWidth} > clientWidth ${el.clientWidth})`);
      const box = (sel) => {
        const el = document.querySelector(sel);
        if (!el) return null;
        const r = el.getBoundingClientRect();
        return { left: r.left, right: r.right, top: r.top, bottom: r.bottom, w: r.width, h: r.height };
      };
      return {
        sw: document.documentElement.scrollWidth,
        bodySw: document.body.scrollWidth,
        iw,
        ih: window.innerHeight,
        msgs: msgs ? { sw: msgs.scrollWidth, cw: msgs.clientWidth } : null,
        over,
        overText,
        input: box('#input'),
        send: box('#send'),
      };
    });
    await P.screenshot({ path: path.join(h.SCREENSHOTS, size.name), fullPage: false });

    assert.ok(m.sw <= m.iw, `document.documentElement.scrollWidth ${m.sw} > window.innerWidth ${m.iw}: the page scrolls sideways`);
    assert.ok(m.msgs, '#messages exists');
    assert.ok(m.msgs.sw <= m.msgs.cw + 1, `#messages scrolls sideways: scrollWidth ${m.msgs.sw} > clientWidth ${m.msgs.cw}`);
    assert.deepEqual(m.over, [], 'no .msg may stick out past the right edge of the window');
    assert.deepEqual(m.overText, [], 'no .msg .text may overflow its box (long words must wrap)');
    for (const sel of ['input', 'send']) {
      const b = m[sel];
      assert.ok(b && b.w > 0 && b.h > 0, `#${sel} is visible`);
      assert.ok(b.left >= -1 && b.right <= m.iw + 1, `#${sel} lies within the window's width (left ${b.left}, right ${b.right}, width ${m.iw})`);
      assert.ok(b.top >= -1 && b.bottom <= m.ih + 1, `#${sel} lies within the window's height without scrolling (top ${b.top}, bottom ${b.bottom}, height ${m.ih})`);
    }
    assert.ok(fs.statSync(path.join(h.SCREENSHOTS, size.name)).size > 1000, 'screenshot written');
    h.assertClean(P);
  });
}
