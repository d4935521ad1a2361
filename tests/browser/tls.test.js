'use strict';
// TLS on the chat's one port (natter --tls-self-signed): a page loaded over
// https:// (Chromium told to accept the self-signed certificate) chats with
// a page loaded over plain http:// from the same port; the https page's
// WebSocket is wss://, the http page's ws://. Screenshots of the https page.
// (Chromium lets an https page on 127.0.0.1 open ws://127.0.0.1, loopback
// being trustworthy: a working chat alone does not prove wss, the URL does.)

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const tls = require('node:tls');
const h = require('./helpers');

let server;
let browser;
let fingerprint; // SHA-256 of the certificate, from natter's log line

before(async () => {
  server = await h.startServer(['--tls-self-signed']);
  browser = await h.launchBrowser();
  fs.mkdirSync(h.SCREENSHOTS, { recursive: true });
  // The log line goes to stderr, which is read apart from stdout's
  // "listening" line: give it a moment to arrive.
  const re = /self-signed certificate .*\(SHA-256 ([0-9A-F]{2}(?::[0-9A-F]{2}){31})\)/;
  for (let i = 0; i < 100 && !re.test(server.stderr()); i++) await h.sleep(50);
  const m = re.exec(server.stderr());
  assert.ok(m, `natter --tls-self-signed should log its certificate's SHA-256 fingerprint; its log:\n${server.stderr()}`);
  fingerprint = m[1];
}, { timeout: 45_000 });

after(async () => {
  await h.closeAll(browser, server);
}, { timeout: 20_000 });

const httpsBase = () => `https://127.0.0.1:${server.port}`;
const httpBase = () => `http://127.0.0.1:${server.port}`;

/** A TLS handshake with the server (no checks): what it showed. */
function peer(servername) {
  return h.withTimeout(
    new Promise((resolve, reject) => {
      const s = tls.connect(
        { host: '127.0.0.1', port: server.port, servername, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] },
        () => {
          const c = s.getPeerCertificate();
          resolve({
            fingerprint: c.fingerprint256,
            san: c.subjectaltname || '',
            alpn: s.alpnProtocol,
            protocol: s.getProtocol(),
            authorized: s.authorized,
            authError: String(s.authorizationError || ''),
          });
          s.destroy();
        },
      );
      s.on('error', reject);
    }),
    5_000,
    'TLS handshake with natter',
  );
}

/** GET /metrics over plain HTTP: { name: value }. */
function metrics() {
  return h.withTimeout(
    new Promise((resolve, reject) => {
      http
        .get(`${httpBase()}/metrics`, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d) => (body += d));
          res.on('end', () => {
            const out = {};
            for (const line of body.split('\n')) {
              const m = /^([a-z_]+)(?:\{[^}]*\})? (\d+(?:\.\d+)?)$/.exec(line);
              if (m) out[m[1]] = (out[m[1]] || 0) + Number(m[2]);
            }
            resolve(out);
          });
        })
        .on('error', reject);
    }),
    5_000,
    'GET /metrics',
  );
}

test('T1. the self-signed certificate: logged fingerprint, names, and Chromium refuses it unless told', { timeout: 30_000 }, async () => {
  const p = await peer('localhost');
  assert.equal(p.fingerprint, fingerprint, 'the certificate served is the one whose fingerprint natter logged');
  assert.ok(/DNS:localhost/.test(p.san), `the certificate names localhost, subjectAltName: ${p.san}`);
  assert.ok(/IP Address:127\.0\.0\.1/.test(p.san), `the certificate names 127.0.0.1, subjectAltName: ${p.san}`);
  assert.equal(p.alpn, 'http/1.1', 'ALPN http/1.1');
  assert.match(p.protocol, /^TLSv1\.[23]$/);
  assert.equal(p.authorized, false, 'a self-signed certificate is not trusted by default');

  // A browser context not told to accept the certificate does not load the page.
  const N = await h.newPage(browser, { label: 'page N (https, certificate not accepted)' });
  const err = await h.gotoPage(N, httpsBase() + '/').then(
    () => null,
    (e) => e,
  );
  assert.ok(err && /ERR_CERT/.test(err.message), `loading ${httpsBase()}/ without ignoreHTTPSErrors should fail with a certificate error, got ${err && err.message}`);
  await N.context().close();
});

const SIZES = [
  { tag: '1280x800', label: 'desktop 1280x800', opts: { viewport: { width: 1280, height: 800 } } },
  { tag: '390x844', label: 'phone 390x844', opts: { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1 } },
];

for (const size of SIZES) {
  test(`T2. at ${size.label}: a page over https:// (wss) creates a room, a page over http:// (ws) on the same port joins, they chat both ways; screenshot`, { timeout: 60_000 }, async () => {
    const alice = `alice${h.uniq(3)}`;
    const bob = `bob${h.uniq(3)}`;
    const port = server.port;

    // Page A: https, the self-signed certificate accepted for its context only.
    const A = await h.newPage(browser, { label: 'page A (https)', ignoreHTTPSErrors: true, ...size.opts });
    const aSockets = [];
    const aFrames = [];
    const aRequests = [];
    A.on('websocket', (ws) => {
      aSockets.push(ws.url());
      ws.on('framereceived', (f) => aFrames.push(String(f.payload)));
    });
    A.on('request', (r) => aRequests.push(r.url()));
    const doc = A.waitForResponse((r) => r.url() === httpsBase() + '/', { timeout: h.T.wait });
    const code = await h.createRoom(A, httpsBase(), alice);
    await h.waitConnected(A);
    const sec = await (await doc).securityDetails();
    assert.ok(sec, 'the page came over TLS (its response has security details)');
    assert.match(sec.protocol || '', /^TLS 1\.[23]$/, `TLS version of the page's response: ${JSON.stringify(sec)}`);

    // Page B: plain http on the same port.
    const B = await h.newPage(browser, { label: 'page B (http)', ...size.opts });
    const bSockets = [];
    B.on('websocket', (ws) => bSockets.push(ws.url()));
    await h.joinByCode(B, httpBase(), bob, code);
    await h.waitConnected(B);
    await h.waitMembers(A, bob, true);
    await h.waitMembers(B, alice, true);

    const fromA = `over wss from ${alice}`;
    const fromB = `over plain ws from ${bob}`;
    await h.say(A, fromA);
    await h.waitMsg(B, alice, fromA);
    await h.waitMsg(A, alice, fromA);
    await h.say(B, fromB);
    await h.waitMsg(A, bob, fromB);
    await h.waitMsg(B, bob, fromB);

    // A is an https page whose WebSocket is wss://, B an http page on ws://.
    assert.equal(await A.evaluate(() => location.protocol), 'https:', 'page A location.protocol');
    assert.equal(await B.evaluate(() => location.protocol), 'http:', 'page B location.protocol');
    assert.ok(aSockets.length >= 1, 'page A opened a WebSocket');
    for (const u of aSockets) assert.ok(u.startsWith(`wss://127.0.0.1:${port}/ws`), `page A's WebSocket should be wss://127.0.0.1:${port}/ws..., got ${u}`);
    assert.ok(bSockets.length >= 1, 'page B opened a WebSocket');
    for (const u of bSockets) assert.ok(u.startsWith(`ws://127.0.0.1:${port}/ws`), `page B's WebSocket should be ws://127.0.0.1:${port}/ws..., got ${u}`);
    assert.ok(aFrames.some((f) => f.includes(fromB)), "B's message reached page A through its wss socket");
    // Nothing the https page loaded went over plain http or ws (no mixed content).
    const plain = aRequests.filter((u) => /^(http|ws):/.test(u));
    assert.deepEqual(plain, [], 'page A made no plain http:// or ws:// request');
    // The share link is https too.
    const href = await A.locator('#share-link').first().getAttribute('href');
    assert.equal(new URL(href, A.url()).protocol, 'https:', `page A's #share-link should be https, got ${href}`);

    // The server counts A's TLS connection.
    const m = await metrics();
    assert.ok((m.natter_tls_connections || 0) >= 1, `natter_tls_connections >= 1 while page A is open: ${JSON.stringify(m.natter_tls_connections)}`);

    await h.assertNoSideways(A, 'page A over https');
    await A.screenshot({ path: path.join(h.SCREENSHOTS, `tls-${size.tag}.png`) });
    assert.ok(fs.statSync(path.join(h.SCREENSHOTS, `tls-${size.tag}.png`)).size > 1000, 'screenshot written');
    h.assertClean(A);
    h.assertClean(B);
    await A.context().close();
    await B.context().close();
  });
}

test('T3. /loop over https:// counts the TLS connections and charts the handshakes', { timeout: 60_000 }, async () => {
  const P = await h.newPage(browser, { label: '/loop (https)', ignoreHTTPSErrors: true });
  await h.gotoPage(P, httpsBase() + '/loop');
  await h.waitIn(P, 'the TLS chart on', () => {
    const s = document.querySelector('section[data-chart="tls"]');
    return s && s.dataset.off === '' && /^Live:/.test(document.getElementById('status').textContent);
  });
  // Handshakes while the page watches: each a new TLS connection that
  // asks for /healthz and reads the answer (so the handshake is finished
  // on both sides: peer() cuts the connection at once, which the server
  // may count as a failed handshake).
  const healthz = () =>
    h.withTimeout(
      new Promise((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port: server.port, servername: 'localhost', rejectUnauthorized: false }, () => {
          s.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
        });
        let got = '';
        s.setEncoding('utf8');
        s.on('data', (d) => (got += d));
        s.on('end', () => resolve(got));
        s.on('error', reject);
      }),
      5_000,
      'GET /healthz over TLS',
    );
  let seen = null;
  const end = Date.now() + 20_000;
  while (Date.now() < end) {
    assert.match(await healthz(), /^HTTP\/1\.1 200/);
    seen = await P.evaluate(() => {
      const v = (k) => Number(document.querySelector(`output[data-series="${k}"]`).dataset.value || 'NaN');
      return { done: v('tls_done'), begun: v('tls_handshakes'), open: v('conn_tls') };
    });
    if (seen.done > 0 && seen.begun > 0 && seen.open >= 1) break;
    await h.sleep(200);
  }
  assert.ok(seen.done > 0 && seen.begun > 0, `handshakes per second above zero: ${JSON.stringify(seen)}`);
  assert.ok(seen.open >= 1, `the page's own connection is a TLS one: ${JSON.stringify(seen)}`);
  h.assertClean(P);
  await P.context().close();
});
