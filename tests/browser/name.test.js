'use strict';
// The name field on the landing page keeps what the user typed even when an
// answer to an earlier name request (the page asking for its remembered
// nick back after a reload) arrives while they type; the room they then
// create is created under the name they typed.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helpers');

let server;
let browser;
let proxy;

before(async () => {
  server = await h.startServer();
  browser = await h.launchBrowser();
  proxy = await h.FlakyProxy.start(server.port);
}, { timeout: 45_000 });

after(async () => {
  await h.closeAll(proxy, browser, server);
}, { timeout: 20_000 });

test('9. a name typed while an earlier nick answer is on its way is kept, and used', { timeout: 60_000 }, async () => {
  const P = await h.newPage(browser, { label: 'page' });
  await h.gotoPage(P, proxy.base + '/');
  await h.waitVisible(P, '#landing', 'landing page');
  await h.waitConnected(P);
  const remembered = await P.evaluate(() => window.natter.nick);
  assert.match(remembered, /^[a-z]+-[a-z]+-\d+$/, 'a generated nick first');

  // Reload: a new session with a new generated nick, and the page asks for
  // the remembered one back. Its answer is held while the user types.
  const holding = proxy.holdAfterNextFrame();
  await h.gotoPage(P, proxy.base + '/');
  await h.waitVisible(P, '#landing', 'landing page after the reload');
  await h.withTimeout(holding, h.T.wait, 'the page sent no frame after the reload');
  const me = `kim${h.uniq(3)}`;
  await P.fill('#name', me);
  proxy.release();
  await h.waitNick(P, remembered);
  assert.equal(await P.inputValue('#name'), me, 'the late answer overwrote the name the user typed');

  await P.click('#create-room');
  await h.waitNick(P, me);
  const code = await h.readRoomCode(P);
  await h.waitActiveRoom(P, code);
  await h.waitMembers(P, me, true);
  h.assertClean(P);
});
