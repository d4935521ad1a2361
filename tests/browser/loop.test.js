'use strict';
// /loop, the page of the server's own figures: it reads /api/stats every
// second and draws charts; with chat traffic the charts move (values read
// from the page's DOM rise above zero, lines are drawn). Screenshots at
// desktop and phone size go to target/screenshots/.

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

/** The latest value of each series the page shows: { key: number|null }. */
function values(page) {
  return page.evaluate(() => {
    const out = {};
    for (const o of document.querySelectorAll('output[data-series]')) {
      out[o.dataset.series] = o.dataset.value === '' ? null : Number(o.dataset.value);
    }
    return out;
  });
}

/** Waits until `pred(values)` holds; returns the values. */
async function waitValues(page, what, pred, timeout = 20_000) {
  const end = Date.now() + timeout;
  let v;
  while (Date.now() < end) {
    v = await values(page);
    if (pred(v)) return v;
    await h.sleep(250);
  }
  assert.fail(`/loop: ${what} within ${timeout} ms; the page shows ${JSON.stringify(v)}`);
}

/** Chat traffic: two line clients in one room, `n` messages from each,
 * 8 a second (under the default flood control of 10 a second). */
async function chat(n) {
  const room = `loop${h.uniq(4)}`;
  const a = await h.LineClient.connect(server.port, `/nick la${h.uniq(4)}\n/join ${room}\n`);
  const b = await h.LineClient.connect(server.port, `/nick lb${h.uniq(4)}\n/join ${room}\n`);
  lines.push(a, b);
  await a.waitFor(new RegExp(`^\\*\\*\\* you joined #${room} `));
  await b.waitFor(new RegExp(`^\\*\\*\\* you joined #${room} `));
  for (let i = 0; i < n; i++) {
    a.send(`from a: message ${i} for the loop page`);
    b.send(`from b: message ${i} for the loop page`);
    await h.sleep(125);
  }
  await b.waitFor(new RegExp(`from a: message ${n - 1} for the loop page$`));
  await a.waitFor(new RegExp(`from b: message ${n - 1} for the loop page$`));
  return { a, b, room };
}

const SIZES = [
  { name: 'loop-desktop-1280x800.png', label: 'desktop 1280x800', opts: { viewport: { width: 1280, height: 800 } } },
  {
    name: 'loop-phone-390x844.png',
    label: 'phone 390x844',
    opts: { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1 },
  },
];

test('/loop: every chart says what it shows and which file makes it', { timeout: 60_000 }, async () => {
  const P = await h.newPage(browser, { label: '/loop' });
  await h.gotoPage(P, server.base + '/loop');
  await h.waitIn(P, 'the status to say Live', () => /^Live:/.test(document.getElementById('status').textContent));
  const charts = await P.evaluate(() =>
    [...document.querySelectorAll('section.chart')].map((s) => ({
      key: s.dataset.chart,
      title: s.querySelector('h2').textContent,
      why: s.querySelector('.why').textContent,
      file: s.querySelector('.why code').textContent,
      svg: Boolean(s.querySelector('svg[role="img"]')),
      off: s.dataset.off,
    })),
  );
  const keys = charts.map((c) => c.key);
  for (const k of ['wakeups', 'events', 'connections', 'messages', 'deliveries', 'backlog', 'flush', 'store', 'helper', 'tls', 'redis']) {
    assert.ok(keys.includes(k), `a ${k} chart: ${keys}`);
  }
  for (const c of charts) {
    assert.ok(c.svg, `${c.key}: an svg`);
    assert.ok(c.why.length > 60, `${c.key}: one sentence: ${c.why}`);
    assert.match(c.file, /^src\/[a-z_/]+\.rs/, `${c.key}: names a file of the code`);
    for (const f of c.file.split(', ')) {
      assert.ok(fs.existsSync(path.join(__dirname, '..', '..', f)), `${c.key}: ${f} exists`);
    }
  }
  // No certificate and no Redis here: those two say so.
  assert.match(charts.find((c) => c.key === 'tls').off, /no certificate/);
  assert.match(charts.find((c) => c.key === 'redis').off, /--redis/);
  h.assertClean(P);
  await P.close();
});

for (const size of SIZES) {
  test(`/loop at ${size.label}: the charts move with chat traffic; screenshot`, { timeout: 90_000 }, async () => {
    const P = await h.newPage(browser, { label: `/loop (${size.label})`, ...size.opts });
    await h.gotoPage(P, server.base + '/loop');
    // Two readings make a rate.
    await waitValues(P, 'a first rate', (v) => v.wakeups !== null);
    await chat(24);
    const v = await waitValues(
      P,
      'messages, deliveries and wake-ups per second above zero, and the line clients counted',
      (v) => v.messages > 0 && v.deliveries > 0 && v.wakeups > 0 && v.events_per_wakeup > 0 && v.conn_line >= 2,
    );
    assert.ok(v.deliveries >= v.messages, `each message reaches at least one reader: ${JSON.stringify(v)}`);
    // The lines are drawn: the messages chart has a polyline that leaves
    // the floor.
    const drawn = await P.evaluate(() => {
      const line = document.querySelector('section[data-chart="messages"] polyline');
      if (!line) return null;
      const ys = line.getAttribute('points').trim().split(' ').map((p) => Number(p.split(',')[1]));
      return { n: ys.length, spread: Math.max(...ys) - Math.min(...ys) };
    });
    assert.ok(drawn && drawn.n >= 2 && drawn.spread > 1, `the messages line moves: ${JSON.stringify(drawn)}`);
    const fit = await P.evaluate(() => ({ sw: document.documentElement.scrollWidth, iw: window.innerWidth }));
    assert.ok(fit.sw <= fit.iw, `no sideways scrolling: scrollWidth ${fit.sw} > innerWidth ${fit.iw}`);
    // The first screen as a person sees it, and the whole page.
    await P.screenshot({ path: path.join(h.SCREENSHOTS, size.name) });
    await P.screenshot({ path: path.join(h.SCREENSHOTS, size.name.replace('.png', '-full.png')), fullPage: true });
    h.assertClean(P);
    await P.close();
  });
}

test('/loop says so when the server stops answering', { timeout: 60_000 }, async () => {
  const own = await h.startServer();
  const P = await h.newPage(browser, { label: '/loop (server stops)' });
  try {
    await h.gotoPage(P, own.base + '/loop');
    await h.waitIn(P, 'the status to say Live', () => /^Live:/.test(document.getElementById('status').textContent));
    await own.stop();
    await h.waitIn(
      P,
      'the status to say the server does not answer',
      () => document.getElementById('status').classList.contains('down'),
      undefined,
      15_000,
    );
  } finally {
    await P.close();
    await own.stop();
  }
});
