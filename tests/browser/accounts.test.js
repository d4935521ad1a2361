'use strict';
// Accounts in the page: sign up, stay logged in across a reload and in a
// new tab (the login token in localStorage), the account mark others see,
// log out, log in with the password, a refused token forgotten, and the
// account dialog at desktop and phone size.

const { test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./helpers');

let server;
let browser;
let pages = [];

before(async () => {
  server = await h.startServer();
  browser = await h.launchBrowser();
  fs.mkdirSync(h.SCREENSHOTS, { recursive: true });
}, { timeout: 45_000 });

after(async () => {
  await h.closeAll(browser, server);
}, { timeout: 20_000 });

// Each test's pages (their browser contexts) close when it ends.
afterEach(async () => {
  const contexts = pages.map((p) => p.context());
  pages = [];
  await h.closeAll(...contexts);
}, { timeout: 20_000 });

async function page(label, opts = {}) {
  const p = await h.newPage(browser, { label, ...opts });
  pages.push(p);
  return p;
}

const PASSWORD = 'correct horse 42';
const stored = (p) => p.evaluate(() => JSON.parse(localStorage.getItem('natter.login') || 'null'));

// A new tab in a browser that has only this login stored (a visit the
// next day: no session to resume, the token alone).
async function pageWithLogin(label, login, opts = {}) {
  const p = await page(label, opts);
  await p.context().addInitScript((v) => {
    if (!sessionStorage.getItem('test.seeded')) {
      sessionStorage.setItem('test.seeded', '1');
      localStorage.setItem('natter.login', v);
    }
  }, JSON.stringify(login));
  return p;
}

test('A1. sign up; still logged in after a reload and in a new tab; others see the account mark', { timeout: 90_000 }, async () => {
  const alice = `al${h.uniq(5)}`;
  const bob = `bob${h.uniq(4)}`;
  const A = await page('page A (signs up)');
  const B = await page('page B (guest)');

  const code = await h.createRoom(A, server.base, alice);
  await h.waitConnected(A);
  assert.equal(await h.accountOf(A), null, 'a guest to begin with');
  assert.equal(await A.locator('#me-acct').isHidden(), true, 'no account mark for a guest');
  assert.match(await A.locator('#account-btn').textContent(), /log in/i);

  // The sign-up form offers the current name; a short password and two
  // different ones are refused before anything is sent.
  await h.openAccountDialog(A);
  await A.click('#show-signup');
  assert.equal(await A.inputValue('#signup-nick'), alice, 'the sign-up form offers the current name');
  await A.fill('#signup-password', 'short');
  await A.fill('#signup-password2', 'short');
  await A.press('#signup-password2', 'Enter');
  await h.waitIn(A, '#account-error should say the password is too short', () => /at least 8/.test(document.querySelector('#account-error').textContent));
  await A.fill('#signup-password', PASSWORD);
  await A.fill('#signup-password2', PASSWORD + 'x');
  await A.press('#signup-password2', 'Enter');
  await h.waitIn(A, '#account-error should say the passwords differ', () => /differ/.test(document.querySelector('#account-error').textContent));
  await A.click('#account-close');

  await h.signUp(A, alice, PASSWORD);
  const login = await stored(A);
  assert.equal(login && login.account, alice, 'natter.login in localStorage names the account');
  assert.ok(login.token && login.token.length >= 16, 'and holds a login token');
  assert.match(await A.locator('#account-btn').textContent(), /account/i);
  await h.waitSystem(A, new RegExp(`${alice} is your account`), 'a line saying the sign-up worked');

  // A guest in the room sees the mark beside alice, in the members and on
  // her messages; and none beside guests.
  await h.joinByCode(B, server.base, bob, code);
  await h.say(A, 'hello from an account');
  await h.waitMsg(B, alice, 'hello from an account');
  await h.waitIn(B, `#members li[data-nick=${alice}] should have the account mark .acct`, (n) => !!document.querySelector(`#members li[data-nick="${n}"] .acct`), alice);
  const marks = await B.evaluate(({ alice, bob }) => ({
    msg: [...document.querySelectorAll('#messages .msg')].filter((m) => m.querySelector('.nick').textContent === alice).every((m) => !!m.querySelector('.acct')),
    bobMember: !!document.querySelector(`#members li[data-nick="${bob}"] .acct`),
    bobMsgMark: [...document.querySelectorAll('#messages .msg')].some((m) => m.querySelector('.nick').textContent === bob && m.querySelector('.acct')),
  }), { alice, bob });
  assert.deepEqual(marks, { msg: true, bobMember: false, bobMsgMark: false });
  await h.waitIn(A, `A sees ${bob} join, without a mark`, (n) => {
    const li = document.querySelector(`#members li[data-nick="${n}"]`);
    return li && !li.querySelector('.acct');
  }, bob);

  // A guest may not take the registered name.
  await h.say(B, `/nick ${alice}`);
  await h.waitIn(B, 'B should be told the name belongs to an account', () =>
    [...document.querySelectorAll('#messages .system.error')].some((m) => /belongs to an account/.test(m.textContent)));

  // A reload: the same session, still logged in.
  await A.reload({ waitUntil: 'domcontentloaded' });
  await h.waitConnected(A);
  await h.waitAccount(A, alice);
  await h.waitNick(A, alice);
  assert.deepEqual(await A.evaluate(() => window.natter.rooms), [code]);

  // A new tab with only the stored login: logged in at connect (its
  // welcome names the account), under the account's name.
  const C = await pageWithLogin('page C (stored login only)', login);
  await h.gotoPage(C, server.base + '/');
  await h.waitConnected(C);
  await h.waitAccount(C, alice);
  await h.waitNick(C, alice);
  for (const p of [A, B, C]) h.assertClean(p);
});

test('A2. log out forgets the login; a wrong password is refused; the right one logs in again', { timeout: 90_000 }, async () => {
  const alice = `al${h.uniq(5)}`;
  const A = await page('page A');
  await h.createRoom(A, server.base, alice);
  await h.signUp(A, alice, PASSWORD);

  await h.openAccountDialog(A);
  await h.waitVisible(A, '#logout-btn', 'Log out in the account dialog');
  assert.equal((await A.textContent('#account-name')).trim(), alice);
  await A.click('#logout-btn');
  await h.waitAccount(A, null);
  const guest = await A.evaluate(() => window.natter.nick);
  assert.notEqual(guest.toLowerCase(), alice.toLowerCase(), 'a fresh guest name after logging out');
  await h.waitNick(A, guest);
  assert.equal(await stored(A), null, 'the stored login is forgotten');
  await h.waitSystem(A, /you are logged out/i);

  // Still a guest after a reload.
  await A.reload({ waitUntil: 'domcontentloaded' });
  await h.waitConnected(A);
  await h.sleep(h.T.settle);
  assert.equal(await h.accountOf(A), null, 'a reload after logging out stays a guest');

  // A wrong password: a clear refusal in the dialog, nothing stored.
  await h.logIn(A, alice, 'not the password');
  await h.waitIn(A, '#account-error should say the name or password is wrong', () =>
    /wrong name or password/i.test(document.querySelector('#account-error').textContent), null, h.ACCOUNT_WAIT);
  assert.equal(await h.accountOf(A), null);
  assert.equal(await A.locator('#login-btn').isDisabled(), false, 'the button can be pressed again');

  // The right one.
  await A.fill('#login-password', PASSWORD);
  await A.press('#login-password', 'Enter');
  await h.waitAccount(A, alice);
  await h.waitNick(A, alice);
  assert.equal((await stored(A)).account, alice, 'logged in again: remembered again');
  h.assertClean(A);
});

test('A3. a stored login the server refuses is forgotten, and the page says so', { timeout: 60_000 }, async () => {
  const ghost = `gh${h.uniq(5)}`;
  const P = await pageWithLogin('page P (stale token)', { account: ghost, token: 'bm90LWEtcmVhbC10b2tlbi1hdC1hbGw' });
  await h.gotoPage(P, server.base + '/');
  await h.waitConnected(P);
  await h.waitIn(P, 'the stored login should be forgotten', () => localStorage.getItem('natter.login') === null, null, h.ACCOUNT_WAIT);
  assert.equal(await h.accountOf(P), null);
  await h.waitIn(P, '#landing-error should say to log in again', () => /log in again/i.test(document.querySelector('#landing-error').textContent));
  // The page goes on as a guest: it can make a room.
  const code = await h.createRoom(P, server.base, `gu${h.uniq(5)}`);
  assert.ok(code);
  h.assertClean(P);
});

test('A5. a share link opened logged out: "Have an account? Log in" joins under the account', { timeout: 90_000 }, async () => {
  const owner = `ow${h.uniq(5)}`;
  const carol = `ca${h.uniq(5)}`;
  const A = await page('page A (in the room)');
  const code = await h.createRoom(A, server.base, owner);
  // carol signs up somewhere else first.
  const elsewhere = await page('carol elsewhere');
  await h.gotoPage(elsewhere, server.base + '/');
  await h.waitConnected(elsewhere);
  await elsewhere.fill('#name', carol);
  await elsewhere.press('#name', 'Enter');
  await h.waitNick(elsewhere, carol);
  await h.signUp(elsewhere, carol, PASSWORD);

  // A new browser, no login stored: the share link asks for a name, and
  // offers to log in instead.
  const D = await page('page D (share link)');
  await h.gotoPage(D, `${server.base}/#${code}`);
  await h.waitVisible(D, '#prompt', 'the share link asks for a name');
  await D.click('#prompt-login');
  await h.waitVisible(D, '#login-form', 'the log-in form');
  await D.fill('#login-nick', carol);
  await D.fill('#login-password', PASSWORD);
  await D.press('#login-password', 'Enter');
  await h.waitAccount(D, carol);
  await h.waitActiveRoom(D, code);
  await h.waitNick(D, carol);
  await h.waitIn(A, `${carol} should join A's room with the account mark`, (n) => !!document.querySelector(`#members li[data-nick="${n}"] .acct`), carol);
  const joins = (await h.systemLines(A)).filter((l) => / joined$/.test(l));
  assert.equal(joins.length, 1, `the room sees one join, the account's, never a generated name: ${JSON.stringify(joins)}`);
  assert.ok(joins[0].endsWith(`${carol} joined`), joins[0]);
  for (const p of [A, D]) h.assertClean(p);
});

const SIZES = [
  { tag: '1280x800', label: 'desktop 1280x800', opts: { viewport: { width: 1280, height: 800 } } },
  { tag: '390x844', label: 'phone 390x844', opts: { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1 } },
];

for (const size of SIZES) {
  test(`A4. the account dialog at ${size.label}: fits, keyboard-usable; screenshots`, { timeout: 60_000 }, async () => {
    const name = `al${h.uniq(5)}`;
    const P = await page(`page (${size.label})`, size.opts);
    await h.createRoom(P, server.base, name);
    await h.waitConnected(P);
    await h.assertNoSideways(P, 'the chat of a guest');

    // Keyboard only: the account button, then Tab to the sign-up switch.
    await P.focus('#account-btn');
    await P.keyboard.press('Enter');
    await h.waitVisible(P, '#account-dialog', 'the account dialog');
    await h.waitIn(P, 'the focus should be inside the dialog', () => document.querySelector('#account-dialog').contains(document.activeElement));
    await P.click('#show-signup');
    await P.fill('#signup-password', PASSWORD);
    const fit = await P.evaluate(() => {
      const d = document.querySelector('#account-dialog').getBoundingClientRect();
      const fields = [...document.querySelectorAll('#signup-form input, #signup-btn')].map((e) => {
        const r = e.getBoundingClientRect();
        return { id: e.id, left: r.left, right: r.right, height: r.height, font: parseFloat(getComputedStyle(e).fontSize) };
      });
      return { d: { left: d.left, right: d.right, top: d.top }, iw: innerWidth, fields };
    });
    assert.ok(fit.d.left >= 0 && fit.d.right <= fit.iw, `the dialog should lie inside the window: ${JSON.stringify(fit.d)}`);
    for (const f of fit.fields) {
      assert.ok(f.left >= fit.d.left && f.right <= fit.d.right, `${f.id} inside the dialog`);
      assert.ok(f.height >= 32, `${f.id} big enough to tap (${f.height}px)`);
      if (f.id !== 'signup-btn') assert.ok(f.font >= 16, `${f.id}: font ${f.font}px (no zoom on focus)`);
    }
    await P.screenshot({ path: path.join(h.SCREENSHOTS, `account-${size.tag}.png`) });
    // Escape closes it, and the focus is back on the button.
    await P.keyboard.press('Escape');
    await h.waitIn(P, 'Escape should close the dialog, focus back on #account-btn', () =>
      !document.querySelector('#account-dialog').open && document.activeElement === document.querySelector('#account-btn'));

    await h.signUp(P, name, PASSWORD);
    await h.assertNoSideways(P, 'the chat when logged in');
    await P.screenshot({ path: path.join(h.SCREENSHOTS, `logged-in-${size.tag}.png`) });
    h.assertClean(P);
  });
}
