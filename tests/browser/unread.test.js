'use strict';
// Messages to a room that is not the active tab are counted on its tab and
// in the document title; opening the tab clears the count.

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

function unread(P, room) {
  return P.evaluate((room) => {
    const t = document.querySelector(`#tabs .tab[data-room="${CSS.escape(room)}"]`);
    if (!t) return { tab: false };
    const u = t.querySelector('.unread');
    if (!u) return { tab: true, badge: false, text: '', visible: false };
    const visible = !!(u.offsetWidth || u.offsetHeight || u.getClientRects().length) && getComputedStyle(u).visibility !== 'hidden';
    return { tab: true, badge: true, text: u.textContent.trim(), visible, selected: t.getAttribute('aria-selected') };
  }, room);
}

test('8. unread counts on tabs and in the title', { timeout: 60_000 }, async () => {
  const quinn = `quinn${h.uniq(3)}`;
  const rosa = `rosa${h.uniq(3)}`;
  const A = await h.newPage(browser, { label: 'page A' });
  const B = await h.newPage(browser, { label: 'page B' });
  const code = await h.createRoom(A, server.base, quinn);
  await h.joinByCode(B, server.base, rosa, code);
  await h.waitConnected(A);
  await h.waitConnected(B);
  await h.waitMembers(A, rosa, true);
  await h.say(B, 'seen while active');
  await h.waitMsg(A, rosa, 'seen while active');
  const u0 = await unread(A, code);
  assert.ok(!u0.visible || u0.text === '', `the active tab shows no unread count, got ${JSON.stringify(u0)}`);

  // A opens a second room with the /join slash command: it becomes active.
  const other = `side-${h.uniq(5)}`;
  await h.say(A, `/join ${other}`);
  await h.waitActiveRoom(A, other);
  await h.waitIn(A, `.tab[data-room="${code}"] should no longer be selected`, (c) =>
    document.querySelector(`#tabs .tab[data-room="${CSS.escape(c)}"]`)?.getAttribute('aria-selected') !== 'true', code);
  const titleBefore = await A.title();
  assert.doesNotMatch(titleBefore, /\b3\b/, `title before any unread: "${titleBefore}"`);

  for (const t of ['unread one', 'unread two', 'unread three']) {
    await h.say(B, t);
    await h.waitMsg(B, rosa, t);
  }
  await h.waitIn(
    A,
    `.tab[data-room="${code}"] .unread should read "3" after three messages while another tab is active`,
    (c) => document.querySelector(`#tabs .tab[data-room="${CSS.escape(c)}"] .unread`)?.textContent.trim() === '3',
    code,
  );
  const u3 = await unread(A, code);
  assert.ok(u3.visible, `the unread badge is visible, got ${JSON.stringify(u3)}`);
  const uo = await unread(A, other);
  assert.ok(!uo.visible || uo.text === '', `the active tab ${other} has no unread count, got ${JSON.stringify(uo)}`);
  await h.waitIn(A, 'document.title should show the unread count 3', () => /\b3\b/.test(document.title));
  // The messages went to the other room, not into the active view.
  const shown = (await h.messages(A)).map((m) => m.text);
  assert.ok(!shown.includes('unread one'), `messages of ${code} must not show in the ${other} view: ${JSON.stringify(shown)}`);

  // Open the tab: the count clears, the messages are there.
  await A.click(`#tabs .tab[data-room="${code}"]`);
  await h.waitActiveRoom(A, code);
  for (const t of ['unread one', 'unread two', 'unread three']) await h.waitMsg(A, rosa, t);
  await h.waitIn(
    A,
    `.tab[data-room="${code}"] .unread should be empty or hidden once the tab is open`,
    (c) => {
      const u = document.querySelector(`#tabs .tab[data-room="${CSS.escape(c)}"] .unread`);
      if (!u) return true;
      const visible = !!(u.offsetWidth || u.offsetHeight || u.getClientRects().length) && getComputedStyle(u).visibility !== 'hidden';
      return !visible || u.textContent.trim() === '' || u.textContent.trim() === '0';
    },
    code,
  );
  await h.waitIn(A, 'document.title should drop the unread count', () => !/\b3\b/.test(document.title));
  const tabOther = await A.locator(`#tabs .tab[data-room="${other}"]`).getAttribute('aria-selected');
  assert.notEqual(tabOther, 'true', `the ${other} tab is no longer selected`);
  // A message in the now-active room is not counted.
  await h.say(B, 'read at once');
  await h.waitMsg(A, rosa, 'read at once');
  await h.sleep(300);
  const u4 = await unread(A, code);
  assert.ok(!u4.visible || u4.text === '' || u4.text === '0', `no unread count on the active tab, got ${JSON.stringify(u4)}`);
  h.assertClean(A);
  h.assertClean(B);
});
