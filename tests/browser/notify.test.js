'use strict';
// Desktop notifications: #notify asks for permission and turns them on; a
// message from someone else while the page is not focused raises one
// (title "NICK in #ROOM", the text as its body); none while the page has the
// focus, none after #notify turns them off again.
//
// Headless Chromium shows no real notifications, so the page gets a
// recording stand-in for window.Notification (permission granted) and a
// switch for document.hasFocus(), both installed before its scripts run.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helpers');

let server;
let browser;
const lines = [];

before(async () => {
  server = await h.startServer();
  browser = await h.launchBrowser();
}, { timeout: 45_000 });

after(async () => {
  for (const l of lines) l.close();
  await h.closeAll(browser, server);
}, { timeout: 20_000 });

function stubNotifications() {
  window.__notes = [];
  window.__focused = true;
  document.hasFocus = () => window.__focused;
  class RecordingNotification {
    constructor(title, opts = {}) {
      this.title = title;
      this.body = opts.body;
      window.__notes.push({ title, body: opts.body, tag: opts.tag });
    }
    close() {}
    static requestPermission() {
      return Promise.resolve('granted');
    }
  }
  RecordingNotification.permission = 'granted';
  window.Notification = RecordingNotification;
}

const notes = (P) => P.evaluate(() => window.__notes.slice());

test('10. desktop notifications: on with #notify, only when unfocused, off again', { timeout: 60_000 }, async () => {
  const me = `nia${h.uniq(3)}`;
  const them = `liam${h.uniq(3)}`;
  const P = await h.newPage(browser, { label: 'page' });
  await P.addInitScript(stubNotifications);
  const code = await h.createRoom(P, server.base, me);
  await h.waitConnected(P);
  const other = await h.LineClient.connect(server.port, `/nick ${them}\n/join ${code}\n`);
  lines.push(other);
  await other.waitFor(new RegExp(`^\\*\\*\\* you joined #${code} `));
  await h.waitMembers(P, them, true);

  assert.equal(await P.getAttribute('#notify', 'aria-pressed'), 'false');
  await P.click('#notify');
  await h.waitIn(P, '#notify should be pressed', () => document.querySelector('#notify').getAttribute('aria-pressed') === 'true');

  // Focused: the message shows, no notification.
  other.send('while you look');
  await h.waitMsg(P, them, 'while you look');
  assert.deepEqual(await notes(P), [], 'a notification while the page has the focus');

  // Not focused: one notification for someone else's message.
  await P.evaluate(() => { window.__focused = false; });
  other.send('while you are away');
  await h.waitMsg(P, them, 'while you are away');
  await h.waitIn(P, 'a notification for the message', () => window.__notes.length === 1);
  const [n] = await notes(P);
  assert.equal(n.title, `${them} in #${code}`);
  assert.equal(n.body, 'while you are away');
  // The page's own message raises none.
  await h.say(P, 'my own words');
  await h.waitMsg(P, me, 'my own words');

  // Off again: nothing more, even unfocused.
  await P.click('#notify');
  await h.waitIn(P, '#notify should no longer be pressed', () => document.querySelector('#notify').getAttribute('aria-pressed') === 'false');
  other.send('after turning them off');
  await h.waitMsg(P, them, 'after turning them off');
  assert.equal((await notes(P)).length, 1, `notifications: ${JSON.stringify(await notes(P))}`);
  h.assertClean(P);
});
