'use strict';
// Message text (room and direct) is shown as text, never run as markup.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helpers');

let server;
let browser;

before(async () => {
  server = await h.startServer();
  browser = await h.launchBrowser();
}, { timeout: 45_000 });

after(async () => {
  await h.closeAll(browser, server);
}, { timeout: 20_000 });

const PAYLOADS = [
  '<img src=x onerror="window.__xss=1">',
  '<script>window.__xss=1</script>',
  '<svg onload="window.__xss=1"></svg><b>bold?</b> &amp; &lt;',
  '"><iframe srcdoc="<script>parent.__xss=1</script>"></iframe>',
];

async function assertNoMarkup(P, where) {
  const r = await P.evaluate(() => ({
    xss: typeof window.__xss,
    injected: document.querySelectorAll(
      '#messages img[src="x"], #messages script, #messages svg[onload], #messages iframe, #tabs img[src="x"], #tabs script',
    ).length,
  }));
  assert.equal(r.xss, 'undefined', `${P.label} (${where}): window.__xss must stay undefined`);
  assert.equal(r.injected, 0, `${P.label} (${where}): message text created elements (img/script/svg/iframe) in the page`);
}

test('4. XSS: hostile message and DM text shows as literal text and runs nothing', { timeout: 60_000 }, async () => {
  const gina = `gina${h.uniq(3)}`;
  const hugo = `hugo${h.uniq(3)}`;
  const A = await h.newPage(browser, { label: 'page A' });
  const B = await h.newPage(browser, { label: 'page B' });
  const code = await h.createRoom(A, server.base, gina);
  await h.joinByCode(B, server.base, hugo, code);
  await h.waitConnected(A);
  await h.waitConnected(B);
  await h.waitMembers(A, hugo, true);

  // Room messages.
  for (const p of PAYLOADS) await h.say(A, p);
  for (const p of PAYLOADS) {
    await h.waitMsg(B, gina, p);
    await h.waitMsg(A, gina, p);
  }
  await h.sleep(h.T.settle); // let any onerror/onload fire
  await assertNoMarkup(A, 'room messages');
  await assertNoMarkup(B, 'room messages');

  // Direct messages, sent with the /msg slash command.
  await h.say(A, `/msg ${hugo} ${PAYLOADS[0]}`);
  await h.say(A, `/msg ${hugo} ${PAYLOADS[1]}`);
  const dmTab = `#tabs .tab[data-dm="${gina}"]`;
  await h.waitVisible(B, dmTab, `a DM from ${gina} should open a .tab[data-dm="${gina}"] in B`);
  await B.click(dmTab);
  await h.waitIn(B, `the DM tab should become active (aria-selected="true")`, (sel) => document.querySelector(sel)?.getAttribute('aria-selected') === 'true', dmTab);
  await h.waitMsg(B, gina, PAYLOADS[0], { dm: true });
  await h.waitMsg(B, gina, PAYLOADS[1], { dm: true });

  // The sender's own DM tab shows them too.
  const aTab = `#tabs .tab[data-dm="${hugo}"]`;
  await h.waitVisible(A, aTab, `after /msg ${hugo} a .tab[data-dm="${hugo}"] should exist in A`);
  await A.click(aTab);
  await h.waitMsg(A, gina, PAYLOADS[0], { dm: true });
  await h.waitMsg(A, gina, PAYLOADS[1], { dm: true });

  await h.sleep(h.T.settle);
  await assertNoMarkup(A, 'direct messages');
  await assertNoMarkup(B, 'direct messages');
  h.assertClean(A);
  h.assertClean(B);
});
