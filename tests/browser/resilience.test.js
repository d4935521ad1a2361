'use strict';
// The network between page A and the server fails abruptly (a TCP proxy
// destroys both ends: no close frame). The page must resume its session:
// same nick, nothing lost, nothing twice, and the room sees no leave/join.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helpers');

let server;
let browser;
let proxy;

before(async () => {
  // A short join replay (3 messages), so that only a real catch-up from the
  // last seen seq (join with "since") brings back everything missed.
  server = await h.startServer(['--history', '3']);
  browser = await h.launchBrowser();
  proxy = await h.FlakyProxy.start(server.port);
}, { timeout: 45_000 });

after(async () => {
  await h.closeAll(proxy, browser, server);
}, { timeout: 20_000 });

async function status(P) {
  return P.locator('#status').first().getAttribute('data-state');
}

async function waitState(P, state, timeout) {
  await h.waitIn(
    P,
    `#status[data-state] should become "${state}"`,
    (s) => document.querySelector('#status')?.getAttribute('data-state') === s,
    state,
    timeout,
  );
}

/** Seqs of .msg in #messages: all numeric, no repeats, no holes. */
async function assertSeqsSound(P) {
  const seqs = (await h.messages(P)).map((m) => m.seq);
  const nums = seqs.map(Number);
  assert.ok(nums.every((n) => Number.isInteger(n) && n > 0), `${P.label}: every .msg has a numeric data-seq: ${seqs}`);
  assert.equal(new Set(nums).size, nums.length, `${P.label}: a data-seq appears twice (duplicate message): ${seqs}`);
  const sorted = [...nums].sort((a, b) => a - b);
  for (let i = 1; i < sorted.length; i++) {
    assert.equal(sorted[i], sorted[i - 1] + 1, `${P.label}: data-seq not contiguous, ${sorted[i - 1]} then ${sorted[i]}: ${seqs}`);
  }
  assert.deepEqual(nums, sorted, `${P.label}: messages out of seq order: ${seqs}`);
  return sorted;
}

async function countText(P, text) {
  return (await h.messages(P)).filter((m) => m.text === text).length;
}

async function aboutNick(P, nick) {
  return (await h.systemLines(P)).filter((l) => new RegExp(`(^|[^A-Za-z0-9_-])${nick}($|[^A-Za-z0-9_-])`).test(l));
}

async function setup(a, b) {
  proxy.refuse = false;
  proxy.armed = null;
  const A = await h.newPage(browser, { label: 'page A (through the proxy)' });
  const B = await h.newPage(browser, { label: 'page B' });
  const code = await h.createRoom(A, proxy.base, a);
  await h.waitConnected(A);
  assert.ok(proxy.wsConnections >= 1, 'page A\'s WebSocket should go through the proxy');
  await h.joinByCode(B, server.base, b, code);
  await h.waitConnected(B);
  await h.waitMembers(A, b, true);
  await h.say(B, 'before the cut, from B');
  await h.waitMsg(A, b, 'before the cut, from B');
  await h.say(A, 'before the cut, from A');
  await h.waitMsg(B, a, 'before the cut, from A');
  return { A, B, code };
}

test('5. network cut while sending: reconnect, same nick, no loss, no duplicates, no leave/join', { timeout: 90_000 }, async () => {
  const a = `ivy${h.uniq(3)}`;
  const b = `jon${h.uniq(3)}`;
  const { A, B } = await setup(a, b);
  const nick0 = await A.evaluate(() => window.natter.nick);
  const session0 = await A.evaluate(() => window.natter.session);
  const aboutA0 = await aboutNick(B, a);

  // A types a message; the network dies just as its frame reaches the
  // server (the server gets it, its acknowledgement never comes back).
  const inflight = `in flight ${h.uniq(4)}`;
  await A.fill('#input', inflight);
  await h.sleep(300); // any typing notice goes out before the cut is armed
  const cut = proxy.armCut({ forward: true, refuse: true });
  await A.press('#input', 'Enter');
  await h.withTimeout(cut, 5_000, 'page A to send a WebSocket frame after Enter');

  await waitState(A, 'reconnecting', 10_000);

  // B talks during the outage.
  const during = [1, 2, 3, 4, 5, 6].map((i) => `during the outage ${i} ${h.uniq(3)}`);
  for (const t of during) {
    await h.say(B, t);
    await h.waitMsg(B, b, t);
  }

  // A types while offline.
  assert.equal(await status(A), 'reconnecting', 'page A should still be reconnecting while the proxy refuses');
  const offline = `typed while offline ${h.uniq(4)}`;
  await h.say(A, offline);
  await h.sleep(500);
  assert.equal(await status(A), 'reconnecting', 'page A should still be reconnecting while the proxy refuses');

  // The network comes back.
  proxy.refuse = false;
  await waitState(A, 'connected', h.T.reconnect);

  assert.equal((await A.locator('#me').textContent()).trim().replace(/^@/, ''), nick0, '#me after reconnecting');
  assert.equal(await A.evaluate(() => window.natter.nick), nick0, 'window.natter.nick after reconnecting');
  assert.equal(await A.evaluate(() => window.natter.session), session0, 'window.natter.session after reconnecting (resumed, not a new session)');

  for (const t of during) await h.waitMsg(A, b, t, h.T.wait);
  await h.waitMsg(A, a, inflight);
  await h.waitMsg(A, a, offline);
  await h.waitMsg(B, a, offline);
  await h.sleep(1_500); // any duplicate would arrive by now

  for (const t of [...during, inflight, offline]) {
    assert.equal(await countText(A, t), 1, `page A shows "${t}" exactly once`);
    assert.equal(await countText(B, t), 1, `page B shows "${t}" exactly once`);
  }
  const seqA = await assertSeqsSound(A);
  const seqB = await assertSeqsSound(B);
  assert.deepEqual(seqA, seqB, 'A and B show the same messages (by seq)');

  assert.deepEqual(await aboutNick(B, a), aboutA0, `page B must see no leave or join of ${a} (no new .system line about it)`);
  await h.waitMembers(B, a, true);

  // And A still chats normally.
  await h.say(A, 'after the storm');
  await h.waitMsg(B, a, 'after the storm');
  h.assertClean(A);
  h.assertClean(B);
});

test('5b. a message lost in the cut is sent again once the page reconnects, exactly once', { timeout: 60_000 }, async () => {
  const a = `kim${h.uniq(3)}`;
  const b = `lou${h.uniq(3)}`;
  const { A, B } = await setup(a, b);
  const aboutA0 = await aboutNick(B, a);

  const lost = `lost in the network ${h.uniq(4)}`;
  await A.fill('#input', lost);
  await h.sleep(300);
  const cut = proxy.armCut({ forward: false, refuse: true });
  await A.press('#input', 'Enter');
  await h.withTimeout(cut, 5_000, 'page A to send a WebSocket frame after Enter');
  await waitState(A, 'reconnecting', 10_000);
  await h.sleep(1_000);
  assert.equal(await countText(B, lost), 0, 'the frame was dropped: B cannot have it yet');
  proxy.refuse = false;
  await waitState(A, 'connected', h.T.reconnect);

  await h.waitMsg(B, a, lost, h.T.wait);
  await h.waitMsg(A, a, lost, h.T.wait);
  await h.sleep(1_500);
  assert.equal(await countText(A, lost), 1, `page A shows "${lost}" exactly once`);
  assert.equal(await countText(B, lost), 1, `page B shows "${lost}" exactly once`);
  assert.deepEqual(await assertSeqsSound(A), await assertSeqsSound(B), 'A and B show the same messages (by seq)');
  assert.deepEqual(await aboutNick(B, a), aboutA0, `page B must see no leave or join of ${a}`);
  h.assertClean(A);
  h.assertClean(B);
});
