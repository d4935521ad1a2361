'use strict';
// An image chosen with #file reaches the other page as an <img> from /media/.

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

/**
 * Chooses the PNG with #file. If the page then shows a preview to confirm
 * (a visible #preview), sends it with #send, as a person would.
 */
async function sendImage(P) {
  await P.setInputFiles('#file', { name: 'dot.png', mimeType: 'image/png', buffer: h.PNG_1X1 });
  const preview = P.locator('#preview');
  try {
    await preview.waitFor({ state: 'visible', timeout: 1_000 });
  } catch {
    return; // sent at once
  }
  await P.click('#send');
  await preview.waitFor({ state: 'hidden', timeout: h.T.wait }).catch(() => {});
}

test('6. image: #file upload shows as a loaded <img src="/media/..."> in the other page', { timeout: 60_000 }, async () => {
  const max = `max${h.uniq(3)}`;
  const nia = `nia${h.uniq(3)}`;
  const A = await h.newPage(browser, { label: 'page A' });
  const B = await h.newPage(browser, { label: 'page B' });
  const code = await h.createRoom(A, server.base, max);
  await h.joinByCode(B, server.base, nia, code);
  await h.waitConnected(A);
  await h.waitConnected(B);
  await h.waitMembers(A, nia, true);

  await sendImage(A);

  for (const P of [B, A]) {
    await h.waitIn(
      P,
      'a .msg with an <img> whose src starts with /media/ should show and load (naturalWidth > 0)',
      () =>
        [...document.querySelectorAll('#messages .msg img')].some((img) => {
          const src = img.getAttribute('src') || '';
          const path = src.startsWith('/') ? src : (() => { try { return new URL(src).pathname; } catch { return ''; } })();
          return path.startsWith('/media/') && img.complete && img.naturalWidth > 0;
        }),
      null,
      15_000,
    );
  }
  const imgs = await B.$$eval('#messages .msg img', (xs) =>
    xs.map((i) => ({ src: i.getAttribute('src'), w: i.naturalWidth, h: i.naturalHeight })),
  );
  const media = imgs.filter((i) => /\/media\/[0-9a-f]+$/i.test(i.src));
  assert.equal(media.length, 1, `exactly one image message in B, got ${JSON.stringify(imgs)}`);
  assert.ok(media[0].src.startsWith('/media/'), `the img src should start with /media/ (same origin, relative), got ${media[0].src}`);
  assert.equal(media[0].w, 1, 'the 1x1 PNG decodes to width 1');

  // The image message carries its sender's nick.
  const nickOfImg = await B.$eval('#messages .msg:has(img[src*="/media/"]) .nick', (n) => n.textContent);
  assert.equal(h.cleanNick(nickOfImg), max, 'the image .msg names its sender in .nick');

  // The bytes served are the PNG that was sent.
  const res = await fetch(server.base + media[0].src);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'image/png');
  assert.deepEqual(Buffer.from(await res.arrayBuffer()), h.PNG_1X1, '/media/ serves the bytes that were sent');

  // A second upload works too.
  await sendImage(A);
  await h.waitIn(
    B,
    'a second upload of the same file should show a second image',
    () => document.querySelectorAll('#messages .msg img[src*="/media/"]').length >= 2,
  );
  h.assertClean(A);
  h.assertClean(B);
});
