'use strict';
// A reload, or closing the tab and opening the page again within
// --resume-grace, resumes the session: same nick, same rooms, and nobody in
// the room (page or line client) sees a leave or a join. A second tab does
// not take an open tab's session. Leaving for real (#leave, /quit) still
// shows at once, and is not undone by a reload.

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

const WATCH_MS = 3_000; // how long to watch for a leave or join that must not come

/** .system lines of P that name `nick` (as a whole word). */
async function aboutNick(P, nick) {
  return (await h.systemLines(P)).filter((l) => new RegExp(`(^|[^A-Za-z0-9_-])${nick}($|[^A-Za-z0-9_-])`).test(l));
}

/** Lines the line client got from index `from` on about `nick` joining or leaving. */
function presenceLines(lc, from, nick) {
  return lc.lines.slice(from).filter((l) => new RegExp(`(-->|<--) ${nick} (joined|left)`).test(l));
}

/** A page (pid) in the room as the observer, and a line client in it. */
async function room() {
  const host = `host${h.uniq(3)}`;
  const A = await h.newPage(browser, { label: 'page A (watching)' });
  const code = await h.createRoom(A, server.base, host);
  await h.waitConnected(A);
  const watcher = `liner${h.uniq(3)}`;
  const lc = await h.LineClient.connect(server.port, `/nick ${watcher}\n/join ${code}\n`);
  lines.push(lc);
  await lc.waitFor(new RegExp(`^\\*\\*\\* you joined #${code} \\(`));
  await h.waitMembers(A, watcher, true);
  return { A, host, code, lc, watcher };
}

/** A page of its own context that joins `code` as `nick`. */
async function member(context, label, code, nick) {
  const P = await context.newPage();
  P.label = label;
  P.log = { console: [], errors: [], csp: [] };
  P.on('pageerror', (e) => P.log.errors.push(String((e && e.stack) || e)));
  P.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) P.log.csp.push(m.text());
  });
  await h.joinByCode(P, server.base, nick, code);
  await h.waitConnected(P);
  return P;
}

async function state(P) {
  return P.evaluate(() => ({ nick: window.natter.nick, session: window.natter.session, rooms: window.natter.rooms }));
}

async function newContext() {
  const c = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  c.setDefaultTimeout(h.T.action);
  c.setDefaultNavigationTimeout(h.T.wait);
  return c;
}

test('12. a reload, and a closed and reopened tab, resume the session unnoticed', { timeout: 90_000 }, async () => {
  const { A, host, code, lc, watcher } = await room();
  const context = await newContext();
  try {
    const rita = `rita${h.uniq(3)}`;
    const R = await member(context, 'page R', code, rita);
    await h.waitMembers(A, rita, true);
    await lc.waitFor(new RegExp(`#${code} --> ${rita} joined$`));
    await h.say(A, 'before the reload');
    await h.waitMsg(R, host, 'before the reload');
    const first = await state(R);
    assert.ok(first.session, 'the page has a session');
    assert.deepEqual(first.rooms, [code]);

    // Reload.
    let seenA = (await aboutNick(A, rita)).length;
    let seenL = lc.lines.length;
    const membersA = (await h.memberList(A)).sort();
    await R.reload({ waitUntil: 'domcontentloaded' });
    await h.waitConnected(R);
    await h.waitActiveRoom(R, code);
    await h.waitNick(R, rita);
    assert.deepEqual(await state(R), first, 'after the reload: the same nick, session and rooms');
    await h.waitMembers(R, host, true);
    await h.waitMembers(R, watcher, true);
    await h.sleep(WATCH_MS);
    assert.deepEqual((await aboutNick(A, rita)).slice(seenA), [], 'page A saw nothing about the reload');
    assert.deepEqual((await h.memberList(A)).sort(), membersA, 'page A\'s members are unchanged');
    assert.deepEqual(presenceLines(lc, seenL, rita), [], 'the line client saw no leave or join');
    assert.deepEqual(await aboutNick(R, rita), [], 'page R shows no join of its own after the reload');
    await h.say(R, 'after the reload');
    await h.waitMsg(A, rita, 'after the reload');
    await lc.waitFor(new RegExp(`#${code} <${rita}> after the reload$`), h.T.wait, seenL);
    await h.say(A, 'welcome back');
    await h.waitMsg(R, host, 'welcome back');

    // Close the tab, open the page again in a new tab of the same browser.
    seenA = (await aboutNick(A, rita)).length;
    seenL = lc.lines.length;
    await R.close();
    const R2 = await context.newPage();
    R2.label = 'page R2 (the tab opened again)';
    R2.log = { console: [], errors: [], csp: [] };
    await h.gotoPage(R2, server.base + '/');
    await h.waitConnected(R2);
    await h.waitActiveRoom(R2, code);
    await h.waitNick(R2, rita);
    assert.deepEqual(await state(R2), first, 'the reopened tab resumed the same session, nick and rooms');
    assert.equal(await R2.evaluate(() => localStorage.getItem('natter.released')), null, 'the released session was claimed');
    await h.sleep(WATCH_MS);
    assert.deepEqual((await aboutNick(A, rita)).slice(seenA), [], 'page A saw nothing about the closed tab');
    assert.deepEqual(presenceLines(lc, seenL, rita), [], 'the line client saw no leave or join');
    await h.say(R2, 'from the new tab');
    await h.waitMsg(A, rita, 'from the new tab');

    // A second tab while R2 is open gets a session of its own.
    const R3 = await context.newPage();
    R3.label = 'page R3 (a second tab)';
    R3.log = { console: [], errors: [], csp: [] };
    await h.gotoPage(R3, server.base + '/');
    await h.waitConnected(R3);
    const third = await state(R3);
    assert.notEqual(third.session, first.session, 'a second tab does not take the open tab\'s session');
    assert.notEqual(third.nick, rita);
    assert.deepEqual(third.rooms, []);
    await h.sleep(h.T.settle);
    assert.deepEqual(await state(R2), first, 'the open tab keeps its session');
    await h.waitConnected(R2);
    assert.deepEqual(
      (await h.systemLines(R2)).filter((l) => /elsewhere|new session/i.test(l)),
      [],
      'the open tab was not replaced',
    );
    await R3.close();

    // A copy of the open tab: window.open copies its sessionStorage (as
    // "Duplicate tab" does), session token included. The copy starts afresh.
    const [copy] = await Promise.all([
      context.waitForEvent('page', { timeout: h.T.wait }),
      R2.evaluate(() => {
        window.open(location.href);
      }),
    ]);
    copy.label = 'page R4 (a copy of R2)';
    copy.log = { console: [], errors: [], csp: [] };
    await copy.waitForLoadState('domcontentloaded');
    await h.waitConnected(copy);
    const fourth = await state(copy);
    assert.notEqual(fourth.session, first.session, 'a copied tab does not take the open tab\'s session');
    assert.deepEqual(fourth.rooms, []);
    await h.sleep(h.T.settle);
    await h.waitConnected(R2);
    assert.deepEqual(await state(R2), first, 'the open tab keeps its session after the copy');
    assert.deepEqual(
      (await h.systemLines(R2)).filter((l) => /elsewhere|new session/i.test(l)),
      [],
      'the open tab was not replaced by its copy',
    );
    await copy.close();
    assert.deepEqual((await aboutNick(A, rita)).slice(seenA), [], 'page A still saw nothing about rita');
    h.assertClean(A);
    h.assertClean(R2);
  } finally {
    await context.close().catch(() => {});
  }
});

test('12b. #leave and /quit show at once, and a reload does not bring the room back', { timeout: 90_000 }, async () => {
  const { A, code, lc } = await room();
  const context = await newContext();
  try {
    // #leave
    const lena = `lena${h.uniq(3)}`;
    const L = await member(context, 'page L', code, lena);
    await h.waitMembers(A, lena, true);
    let from = lc.lines.length;
    const t0 = Date.now();
    await L.click('#leave');
    await h.waitMembers(A, lena, false, 5_000);
    await h.waitIn(A, `a .system line should say ${lena} left`, (n) =>
      [...document.querySelectorAll('#messages .system')].some((s) => s.textContent.includes(n) && /\bleft\b/.test(s.textContent)), lena, 5_000);
    await lc.waitFor(new RegExp(`#${code} <-- ${lena} left$`), 5_000, from);
    assert.ok(Date.now() - t0 < 5_000, 'the leave shows at once');
    await h.waitVisible(L, '#landing', 'after leaving the last room the landing shows');
    const stored = await L.evaluate(() => JSON.parse(sessionStorage.getItem('natter.state') || '{}'));
    assert.ok(!stored.session, `the stored session is forgotten after leaving: ${JSON.stringify(stored)}`);
    assert.deepEqual(stored.rooms, []);
    await L.reload({ waitUntil: 'domcontentloaded' });
    await h.waitConnected(L);
    await h.waitNick(L, lena);
    await h.waitVisible(L, '#landing', 'after a reload the landing shows again');
    assert.deepEqual(await L.evaluate(() => window.natter.rooms), [], 'the reload does not rejoin the room');
    await h.sleep(h.T.settle);
    assert.deepEqual(await h.memberList(A).then((m) => m.filter((n) => n === lena)), [], `${lena} is not back`);
    await L.close();

    // /quit
    const quinn = `quinn${h.uniq(3)}`;
    const Q = await member(context, 'page Q', code, quinn);
    await h.waitMembers(A, quinn, true);
    from = lc.lines.length;
    await h.say(Q, '/quit');
    await h.waitMembers(A, quinn, false, 5_000);
    await lc.waitFor(new RegExp(`#${code} <-- ${quinn} left \\(quit`), 5_000, from);
    await h.waitVisible(Q, '#landing', 'after /quit the landing shows');
    await h.waitConnected(Q);
    await h.waitNick(Q, quinn); // a fresh session, the same name
    await Q.reload({ waitUntil: 'domcontentloaded' });
    await h.waitConnected(Q);
    await h.waitVisible(Q, '#landing', 'after a reload the landing shows again');
    assert.deepEqual(await Q.evaluate(() => window.natter.rooms), [], 'the reload does not rejoin the room');
    h.assertClean(A);
  } finally {
    await context.close().catch(() => {});
  }
});
