'use strict';
// Several natter processes, one chat (natter --redis, PROTOCOL-2 section 6):
// a redis-server of this file's own and two natter processes on it. Page A
// on process A makes a room, page B on process B joins it by code; they
// chat both ways in one order, see each other in #members; a raw line
// client on process B joins the room and is seen on page A; an edit and a
// reaction made on page A show on page B. Screenshots of page A. Then
// process A is killed (SIGKILL): page B and the line client see A's user
// leave within 15 s (each process beats every 3 s, one silent for 10 s is
// dropped by a survivor).

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const h = require('./helpers');
const { msgSel, tool, waitEdited, waitChip } = require('./live');

let redis; // { port, pid, dir, stop }
let natterA;
let natterB;
let browser;
const pages = [];
const lines = [];
// What R1 leaves for R2 and R3.
const chat = { A: null, B: null, alice: null, bob: null, liner: null, code: null, lc: null };

// ---------------------------------------------------------------- redis

/** A port the kernel just gave out and took back (free unless taken meanwhile). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** One RESP PING to 127.0.0.1:port: true on +PONG. */
function ping(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let got = '';
    const done = (ok) => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 1_000);
    s.on('error', () => done(false));
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => {
      got += d;
      if (got.includes('\r\n')) done(got.startsWith('+PONG'));
    });
  });
}

/**
 * Starts redis-server on a free loopback port in a temporary directory,
 * with the durability natter asks for; waits until it answers PING.
 * Returns { port, pid, dir, stop } (stop kills it by its PID and removes
 * the directory).
 */
async function startRedis() {
  for (let attempt = 0; attempt < 10; attempt++) {
    const port = await freePort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'natter-redis-'));
    const child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', ''],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    let exited = false;
    const gone = new Promise((r) => child.once('exit', () => ((exited = true), r())));
    child.once('error', () => {});
    const killOnExit = () => {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {}
    };
    process.on('exit', killOnExit);
    const stop = async () => {
      process.off('exit', killOnExit);
      if (!exited && child.pid) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {}
        await h.withTimeout(gone, 3_000, 'redis-server to exit after SIGKILL').catch(() => {});
      }
      fs.rmSync(dir, { recursive: true, force: true });
    };
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && !exited) {
      if (await ping(port)) return { port, pid: child.pid, dir, stop };
      await h.sleep(50);
    }
    await stop();
    if (!exited) throw new Error(`redis-server on port ${port} did not answer PING within 10 s:\n${stderr}`);
    // It exited (its port taken meanwhile?): try another port.
  }
  throw new Error('redis-server did not start (10 attempts)');
}

// ---------------------------------------------------------------- natter

/** GET base/healthz: its status code (0 if it could not be asked). */
function healthz(base) {
  return new Promise((resolve) => {
    const req = http.get(`${base}/healthz`, { timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

/** Waits until /healthz answers 200 (both Redis connections ready). */
async function waitHealthy(server, label, timeout = 15_000) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    last = await healthz(server.base);
    if (last === 200) return;
    await h.sleep(100);
  }
  throw new Error(`${label}: /healthz did not answer 200 within ${timeout} ms (last: ${last}); its log:\n${server.stderr()}`);
}

before(async () => {
  redis = await startRedis();
  const url = `redis://127.0.0.1:${redis.port}`;
  natterA = await h.startServer(['--redis', url]);
  natterB = await h.startServer(['--redis', url]);
  await waitHealthy(natterA, 'natter A');
  await waitHealthy(natterB, 'natter B');
  browser = await h.launchBrowser();
  fs.mkdirSync(h.SCREENSHOTS, { recursive: true });
}, { timeout: 60_000 });

after(async () => {
  for (const l of lines) l.close();
  await h.closeAll(browser, natterA, natterB);
  if (redis) await redis.stop();
}, { timeout: 30_000 });

async function page(label, opts = {}) {
  const p = await h.newPage(browser, { label, ...opts });
  pages.push(p);
  return p;
}

const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The page's room messages as "nick: text", in the order shown, and their seqs. */
async function said(P) {
  const ms = (await h.messages(P)).filter((m) => /^\d+$/.test(m.seq || ''));
  return { texts: ms.map((m) => `${m.nick}: ${m.text}`), seqs: ms.map((m) => Number(m.seq)) };
}

// ---------------------------------------------------------------- tests

test('R1. two processes, one chat: create on A, join on B, chat both ways in one order, members, a line client on B, an edit and a reaction', { timeout: 90_000 }, async () => {
  const alice = `alice${h.uniq(3)}`;
  const bob = `bob${h.uniq(3)}`;
  const liner = `liner${h.uniq(3)}`;
  const A = await page(`page A (${alice}, process A)`);
  const B = await page(`page B (${bob}, process B)`);

  const code = await h.createRoom(A, natterA.base, alice);
  await h.waitConnected(A);
  await h.joinByCode(B, natterB.base, bob, code);
  await h.waitConnected(B);
  // Each page's member list shows both, the other one living on the other process.
  await h.waitMembers(A, bob, true);
  await h.waitMembers(B, alice, true);
  await h.waitMembers(A, alice, true);
  await h.waitMembers(B, bob, true);

  // Both ways, each waiting for the other.
  await h.say(A, 'hello from process A');
  await h.waitMsg(B, alice, 'hello from process A');
  await h.waitMsg(A, alice, 'hello from process A');
  await h.say(B, 'hi back from process B');
  await h.waitMsg(A, bob, 'hi back from process B');
  await h.waitMsg(B, bob, 'hi back from process B');
  // Then at the same time, from both: whatever order Redis gave them, both
  // pages show the same one.
  await Promise.all([
    (async () => {
      await h.say(A, 'A one');
      await h.say(A, 'A two');
    })(),
    (async () => {
      await h.say(B, 'B one');
      await h.say(B, 'B two');
    })(),
  ]);
  for (const P of [A, B]) {
    for (const [n, t] of [[alice, 'A one'], [alice, 'A two'], [bob, 'B one'], [bob, 'B two']]) await h.waitMsg(P, n, t);
  }
  const sa = await said(A);
  const sb = await said(B);
  assert.deepEqual(sa, sb, 'pages A and B show the same messages with the same seqs in the same order');
  assert.equal(sa.texts.length, 6, `six messages: ${JSON.stringify(sa.texts)}`);
  assert.deepEqual(sa.texts.slice(0, 2), [`${alice}: hello from process A`, `${bob}: hi back from process B`]);
  assert.ok(sa.texts.indexOf(`${alice}: A one`) < sa.texts.indexOf(`${alice}: A two`), `A's two in the order sent: ${sa.texts}`);
  assert.ok(sa.texts.indexOf(`${bob}: B one`) < sa.texts.indexOf(`${bob}: B two`), `B's two in the order sent: ${sa.texts}`);
  for (let i = 1; i < sa.seqs.length; i++) {
    assert.equal(sa.seqs[i], sa.seqs[i - 1] + 1, `the room's seqs are gap-free across the two processes: ${sa.seqs}`);
  }

  // A raw line client on process B joins the room by its code.
  const lc = await h.LineClient.connect(natterB.port, `/nick ${liner}\n/join ${code}\n`);
  lines.push(lc);
  await lc.waitFor(new RegExp(`^\\*\\*\\* you joined #${code} \\(`));
  await h.waitMembers(A, liner, true);
  await h.waitMembers(B, liner, true);
  const from = lc.lines.length;
  lc.send('hello from a line client on process B');
  await h.waitMsg(A, liner, 'hello from a line client on process B');
  await h.waitMsg(B, liner, 'hello from a line client on process B');
  // And it reads page A's messages, which came to process B through Redis.
  await h.say(A, 'page A to the line client');
  await lc.waitFor(new RegExp(`^\\[\\d\\d:\\d\\d:\\d\\d\\] #${code} <${alice}> ${esc('page A to the line client')}$`), h.T.wait, from);

  // An edit on page A shows on page B, in place.
  await h.say(A, 'see you at 5');
  const s = await h.waitMsg(A, alice, 'see you at 5');
  await h.waitMsg(B, alice, 'see you at 5');
  await tool(A, s, 'edit');
  await h.waitVisible(A, '#compose-ctx', 'the "Editing" bar');
  await A.fill('#input', 'see you at 6');
  await A.press('#input', 'Enter');
  await waitEdited(A, s, 'see you at 6');
  await waitEdited(B, s, 'see you at 6');

  // A reaction on page A (to B's message) shows on page B, not pressed there.
  const sbob = await h.waitMsg(A, bob, 'hi back from process B');
  await tool(A, sbob, 'react');
  await h.waitVisible(A, `${msgSel(sbob)} .picker`, 'the emoji picker');
  await A.click(`${msgSel(sbob)} .picker .pick[data-emoji="👍"]`);
  await waitChip(A, sbob, '👍', 1, true);
  await waitChip(B, sbob, '👍', 1, false);
  assert.match(await B.locator(`${msgSel(sbob)} .chip[data-emoji="👍"]`).getAttribute('title'), new RegExp(alice));

  // Both pages still hold exactly the same messages (the edit in place, no duplicates).
  const ta = await said(A);
  assert.deepEqual(ta, await said(B), 'pages A and B end with the same messages');
  assert.equal(new Set(ta.seqs).size, ta.seqs.length, `no seq twice: ${ta.seqs}`);
  for (const P of [A, B]) h.assertClean(P);
  Object.assign(chat, { A, B, alice, bob, liner, code, lc });
});

test('R2. screenshots of page A (process A) at 1280x800 and 390x844', { timeout: 30_000 }, async (t) => {
  if (!chat.A) return t.skip('R1 did not get page A into the room');
  const A = chat.A;
  for (const { tag, width, height } of [{ tag: 'desktop', width: 1280, height: 800 }, { tag: 'phone', width: 390, height: 844 }]) {
    await A.setViewportSize({ width, height });
    // The pointer off the messages (no hover toolbar left from R1's
    // reaction), and the layout settled after the resize.
    await A.mouse.move(width / 2, height - 150);
    await h.sleep(300);
    await h.waitMembers(A, chat.bob, true);
    await h.assertNoSideways(A, `at ${width}x${height}`);
    const file = path.join(h.SCREENSHOTS, `redis-${tag}.png`);
    await A.screenshot({ path: file });
    assert.ok(fs.statSync(file).size > 1000, `${file} written`);
  }
  await A.setViewportSize({ width: 1280, height: 800 });
});

test('R2b. /loop on process A charts the Redis round trip', { timeout: 30_000 }, async () => {
  const P = await page('/loop (process A)');
  await h.gotoPage(P, natterA.base + '/loop');
  await h.waitIn(
    P,
    'the Redis chart on, with a round trip above zero',
    () => {
      const s = document.querySelector('section[data-chart="redis"]');
      const v = document.querySelector('output[data-series="redis_rtt"]');
      return s && s.dataset.off === '' && Number(v.dataset.value) > 0;
    },
    undefined,
    15_000,
  );
  h.assertClean(P);
  await P.close();
});

test('R3. process A killed (SIGKILL): page B and the line client on B see A\'s user leave within 15 s', { timeout: 40_000 }, async (t) => {
  if (!chat.B) return t.skip('R1 did not get the pages into the room');
  const { B, alice, bob, liner, code, lc } = chat;
  await h.waitMembers(B, alice, true);
  const from = lc.lines.length;
  const killed = Date.now();
  process.kill(natterA.pid, 'SIGKILL');
  // Bounded: 15 s by the rule, plus a little for the page to draw it.
  await h.waitMembers(B, alice, false, 17_000);
  const took = Date.now() - killed;
  await lc.waitFor(new RegExp(`#${code} <-- ${alice} left \\(timeout\\)$`), 5_000, from);
  await h.waitSystem(B, new RegExp(`\\b${alice} left \\(timed out\\)$`), `page B: ${alice} leaving`, 5_000);
  console.log(`# R3: ${alice} left page B's #members ${took} ms after kill -9 of process A`);
  assert.ok(took <= 15_500, `A's user should leave within ~15 s of the kill, took ${took} ms`);
  // The ones on process B stay, and B still chats with the line client.
  await h.waitMembers(B, bob, true);
  await h.waitMembers(B, liner, true);
  await h.say(B, 'still here on process B');
  await lc.waitFor(new RegExp(`<${bob}> ${esc('still here on process B')}$`), h.T.wait, from);
  assert.equal(await healthz(natterB.base), 200, 'process B is still healthy');
  h.assertClean(B);
});
