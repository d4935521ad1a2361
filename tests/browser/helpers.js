'use strict';
// Helpers for natter's browser tests: the server under test, Chromium,
// the page's DOM contract, a raw line client and a TCP proxy that can fail.
//
// Every wait here has a timeout, and every process or socket opened here is
// closed by the `close` functions the tests call in their `after` hooks, so
// a run always ends by itself.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const assert = require('node:assert/strict');
const { chromium } = require('playwright-core');

const ROOT = path.resolve(__dirname, '..', '..');
const NATTER_BIN = process.env.NATTER_BIN || path.join(ROOT, 'target', 'debug', 'natter');
const CHROMIUM_BIN = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const SCREENSHOTS = path.join(ROOT, 'target', 'screenshots');

// Default time limits (milliseconds).
const T = {
  action: 10_000, // one Playwright action (click, fill, ...)
  wait: 10_000, // a message, a member, a state to show up
  reconnect: 30_000, // the page reconnecting after the network came back
  settle: 1_000, // how long to watch for something that must NOT happen
};

// A valid 1x1 PNG (one opaque red pixel), 70 bytes.
const PNG_1X1 = Buffer.from([
  137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0,
  0, 0, 31, 21, 196, 137, 0, 0, 0, 13, 73, 68, 65, 84, 120, 218, 99, 252, 207, 192, 240, 31, 0,
  5, 5, 2, 0, 95, 200, 241, 210, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130,
]);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Rejects with `message` if `promise` has not settled within `ms`. */
function withTimeout(promise, ms, message) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${message}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** A short random suffix for nicks and room names. */
function uniq(n = 5) {
  let s = '';
  while (s.length < n) s += Math.random().toString(36).slice(2);
  return s.slice(0, n);
}

// ---------------------------------------------------------------- server

/**
 * Starts the natter binary on 127.0.0.1:0 with an in-memory store and reads
 * its port from the first stdout line. Returns { port, base, pid, stop }.
 */
async function startServer(extraArgs = []) {
  if (!fs.existsSync(NATTER_BIN)) {
    throw new Error(`natter binary not found at ${NATTER_BIN}: run \`cargo build\` or set NATTER_BIN`);
  }
  const args = ['--listen', '127.0.0.1:0', '--db', ':memory:', ...extraArgs];
  const child = spawn(NATTER_BIN, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'natter=info' },
  });
  const killOnExit = () => {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {}
  };
  process.on('exit', killOnExit);
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
    if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
  });
  const exited = new Promise((resolve) => child.once('exit', (code, sig) => resolve({ code, sig })));

  const port = await withTimeout(
    new Promise((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        const m = /natter listening on 127\.0\.0\.1:(\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      exited.then(({ code, sig }) =>
        reject(new Error(`natter exited (code ${code}, signal ${sig}) before listening:\n${stderr}`)),
      );
      child.once('error', reject);
    }),
    10_000,
    `natter did not print "natter listening on ..." (${NATTER_BIN})`,
  ).catch((e) => {
    killOnExit();
    throw e;
  });
  child.stdout.resume();

  async function stop() {
    process.off('exit', killOnExit);
    if (child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(child.pid, 'SIGTERM');
    } catch {}
    try {
      await withTimeout(exited, 3_000, 'natter to exit after SIGTERM');
    } catch {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {}
      await withTimeout(exited, 3_000, 'natter to exit after SIGKILL').catch(() => {});
    }
  }
  return { port, base: `http://127.0.0.1:${port}`, pid: child.pid, stop, stderr: () => stderr };
}

// ---------------------------------------------------------------- browser

async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM_BIN)) {
    throw new Error(`Chromium not found at ${CHROMIUM_BIN}: apt-get install chromium (or set CHROMIUM_BIN)`);
  }
  // Playwright gives every launch a fresh, temporary user data dir.
  return chromium.launch({
    executablePath: CHROMIUM_BIN,
    headless: true,
    chromiumSandbox: false,
    timeout: 30_000,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * A page in its own browser context (its own cookies and storage: another
 * person). page.log collects console errors, CSP violations and page errors.
 */
async function newPage(browser, opts = {}) {
  const { label = 'page', ...contextOpts } = opts;
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...contextOpts });
  context.setDefaultTimeout(T.action);
  context.setDefaultNavigationTimeout(T.wait);
  const page = await context.newPage();
  const log = { console: [], errors: [], csp: [] };
  page.on('console', (m) => {
    if (m.type() !== 'error' && m.type() !== 'warning') return;
    const text = m.text();
    if (m.type() === 'error') log.console.push(text);
    if (/Content Security Policy|Content-Security-Policy|Refused to (execute|load|apply|connect|evaluate)/i.test(text)) {
      log.csp.push(text);
    }
  });
  page.on('pageerror', (e) => log.errors.push(String((e && e.stack) || e)));
  page.log = log;
  page.label = label;
  return page;
}

// ---------------------------------------------------------------- the page

/** Trimmed text, without decorations like `<alice>` or `alice:`. */
function cleanNick(s) {
  return String(s || '')
    .trim()
    .replace(/^[<*@+~\s]+/, '')
    .replace(/[>:\s]+$/, '');
}

/** A readable dump of the page's state, for failure messages. */
async function describe(page) {
  try {
    const s = await page.evaluate(() => {
      const q = (sel) => document.querySelector(sel);
      const txt = (el) => (el ? el.textContent.trim().replace(/\s+/g, ' ') : null);
      let natter = null;
      try {
        const n = window.natter;
        natter = n ? { nick: n.nick, state: n.state, rooms: n.rooms, account: n.account } : null;
      } catch (e) {
        natter = `throws: ${e}`;
      }
      const visible = (el) => !!el && !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
      return {
        url: location.href,
        title: document.title,
        status: q('#status') ? q('#status').getAttribute('data-state') : '(no #status)',
        me: txt(q('#me')),
        landingVisible: visible(q('#landing')),
        chatVisible: visible(q('#chat')),
        roomCode: txt(q('#room-code')),
        natter,
        tabs: [...document.querySelectorAll('#tabs .tab')].map(
          (t) =>
            `${t.dataset.room ? 'room=' + t.dataset.room : 'dm=' + t.dataset.dm}` +
            `${t.getAttribute('aria-selected') === 'true' ? '*' : ''}` +
            `(unread:${txt(t.querySelector('.unread')) || ''})`,
        ),
        members: [...document.querySelectorAll('#members li')].map(txt),
        messages: [...document.querySelectorAll('#messages .msg, #messages .system')]
          .slice(-15)
          .map((m) =>
            m.classList.contains('msg')
              ? `[${m.dataset.seq}] <${txt(m.querySelector('.nick'))}> ${(txt(m.querySelector('.text')) || '').slice(0, 80)}`
              : `(system) ${txt(m)}`,
          ),
      };
    });
    s.consoleErrors = page.log.console.slice(-5);
    s.pageErrors = page.log.errors.slice(-5);
    return `${page.label}: ${JSON.stringify(s, null, 1)}`;
  } catch (e) {
    return `${page.label}: (could not describe: ${e.message})`;
  }
}

/**
 * Waits for fn(arg) to be truthy in the page; on timeout fails with `what`
 * and the page's state.
 */
async function waitIn(page, what, fn, arg, timeout = T.wait) {
  try {
    return await page.waitForFunction(fn, arg, { timeout, polling: 50 });
  } catch (e) {
    throw new assert.AssertionError({
      message: `${page.label}: ${what} (not within ${timeout} ms)\n${await describe(page)}\n${e.message.split('\n')[0]}`,
    });
  }
}

async function gotoPage(page, url) {
  await page.goto(url, { waitUntil: 'domcontentloaded', timeout: T.wait });
}

async function waitVisible(page, selector, what, timeout = T.wait) {
  try {
    await page.locator(selector).first().waitFor({ state: 'visible', timeout });
  } catch (e) {
    throw new assert.AssertionError({
      message: `${page.label}: ${what}: ${selector} not visible within ${timeout} ms\n${await describe(page)}`,
    });
  }
}

async function waitConnected(page, timeout = T.wait) {
  await waitIn(
    page,
    '#status[data-state] should become "connected"',
    () => {
      const s = document.querySelector('#status');
      return s && s.getAttribute('data-state') === 'connected';
    },
    null,
    timeout,
  );
}

async function waitNick(page, nick, timeout = T.wait) {
  await waitIn(
    page,
    `#me should show the nick "${nick}"`,
    (nick) => {
      const me = document.querySelector('#me');
      return me && me.textContent.trim().replace(/^@/, '') === nick;
    },
    nick,
    timeout,
  );
}

/** Reads #room-code as a bare lowercase code (a leading # dropped). */
async function readRoomCode(page) {
  await waitIn(page, '#room-code should show the new room\'s code', () => {
    const el = document.querySelector('#room-code');
    return el && /[a-z0-9]/i.test(el.textContent);
  });
  const raw = (await page.locator('#room-code').first().textContent()).trim();
  return raw.replace(/^#/, '').toLowerCase();
}

/**
 * Landing page: types `nick` into #name, which is read-only for a page
 * logged in (its name is its account's, and must be `nick` then).
 */
async function fillName(page, nick) {
  if (await page.locator('#name').isEditable()) {
    await page.fill('#name', nick);
    return;
  }
  assert.equal(await page.inputValue('#name'), nick, `${page.label}: #name is read-only (logged in) and holds another name`);
}

/** Landing page: type a name, press #create-room; returns the room code. */
async function createRoom(page, base, nick) {
  await gotoPage(page, base + '/');
  await waitVisible(page, '#landing', 'landing page');
  await fillName(page, nick);
  await page.click('#create-room');
  await waitVisible(page, '#chat', 'after #create-room the chat should show');
  const code = await readRoomCode(page);
  await waitNick(page, nick);
  await waitActiveRoom(page, code);
  return code;
}

/** Landing page: type a name and a code, press #join-btn. */
async function joinByCode(page, base, nick, code) {
  await gotoPage(page, base + '/');
  await waitVisible(page, '#landing', 'landing page');
  await fillName(page, nick);
  await page.fill('#join-code', code);
  await page.click('#join-btn');
  await waitVisible(page, '#chat', `after #join-btn with code ${code} the chat should show`);
  await waitNick(page, nick);
  await waitActiveRoom(page, code);
}

/**
 * A share link opened without a session asks for a name first: waits for
 * the prompt (#prompt, #prompt-name focused and prefilled with a name),
 * then types `nick` into it (or keeps the prefilled name when `nick` is
 * empty) and presses Enter. Returns { prefilled, nick }: the name the page
 * offered and the one it joins under.
 */
async function answerPrompt(page, nick = '') {
  await waitVisible(page, '#prompt', 'a share link should ask for a name first');
  const handle = await waitIn(
    page,
    '#prompt-name should be focused and prefilled with a valid name',
    () => {
      const f = document.querySelector('#prompt-name');
      const v = f ? f.value.trim() : '';
      return f && document.activeElement === f && /^[A-Za-z][A-Za-z0-9_-]{0,23}$/.test(v) ? v : false;
    },
  );
  const prefilled = await handle.jsonValue();
  if (nick) await page.fill('#prompt-name', nick);
  await page.press('#prompt-name', 'Enter');
  return { prefilled, nick: nick || prefilled };
}

async function waitActiveRoom(page, room, timeout = T.wait) {
  await waitIn(
    page,
    `the active tab should be .tab[data-room="${room}"] with aria-selected="true"`,
    (room) => {
      const t = document.querySelector(`#tabs .tab[data-room="${CSS.escape(room)}"]`);
      return t && t.getAttribute('aria-selected') === 'true';
    },
    room,
    timeout,
  );
}

/** Types a line into #input and presses Enter. */
async function say(page, text) {
  await page.fill('#input', text);
  await page.press('#input', 'Enter');
}

/**
 * Waits for a .msg in #messages with this nick and text; returns its
 * data-seq. A room message counts only once it has a numeric data-seq (it
 * is stored: a page may show a message of its own before the server has
 * it); pass { dm: true } for direct messages, which have no seq.
 */
async function waitMsg(page, nick, text, timeout = T.wait, { dm = false } = {}) {
  if (typeof timeout === 'object') ({ timeout = T.wait, dm = false } = timeout);
  const handle = await waitIn(
    page,
    `a .msg with .nick "${nick}" and .text ${JSON.stringify(text.length > 60 ? text.slice(0, 60) + '...' : text)}` +
      `${dm ? '' : ' and a numeric data-seq'} should show in #messages`,
    ({ nick, text, dm }) => {
      const clean = (s) => String(s || '').trim().replace(/^[<*@+~\s]+/, '').replace(/[>:\s]+$/, '');
      for (const m of document.querySelectorAll('#messages .msg')) {
        const n = m.querySelector('.nick');
        const t = m.querySelector('.text');
        const seq = m.getAttribute('data-seq');
        if (n && t && clean(n.textContent) === nick && t.textContent.trim() === text && (dm || /^\d+$/.test(seq || ''))) {
          return seq || '-';
        }
      }
      return false;
    },
    { nick, text, dm },
    timeout,
  );
  return handle.jsonValue();
}

/** Every .msg in #messages: { seq, nick, text, action, img }. */
async function messages(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('#messages .msg')].map((m) => {
      const n = m.querySelector('.nick');
      const t = m.querySelector('.text');
      const img = m.querySelector('img');
      return {
        seq: m.getAttribute('data-seq'),
        nick: n ? n.textContent.trim().replace(/^[<*@+~\s]+/, '').replace(/[>:\s]+$/, '') : null,
        text: t ? t.textContent.trim() : null,
        action: m.classList.contains('action'),
        img: img ? img.getAttribute('src') : null,
      };
    }),
  );
}

/** Texts of the .system lines in #messages. */
async function systemLines(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('#messages .system')].map((m) => m.textContent.trim().replace(/\s+/g, ' ')),
  );
}

/** Nicks listed in #members (the first nick-shaped word of each li). */
async function memberList(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('#members li')].map((li) => {
      if (li.dataset.nick) return li.dataset.nick;
      const m = /[A-Za-z][A-Za-z0-9_-]*/.exec(li.textContent);
      return m ? m[0] : li.textContent.trim();
    }),
  );
}

async function waitMembers(page, nick, present, timeout = T.wait) {
  await waitIn(
    page,
    `#members should ${present ? 'list' : 'no longer list'} "${nick}"`,
    ({ nick, present }) => {
      const listed = [...document.querySelectorAll('#members li')].some((li) => {
        if (li.dataset.nick) return li.dataset.nick === nick;
        return new RegExp(`(^|[^A-Za-z0-9_-])${nick}($|[^A-Za-z0-9_-])`).test(li.textContent);
      });
      return listed === present;
    },
    { nick, present },
    timeout,
  );
}

/** Fails if the page had page errors or CSP violations. */
function assertClean(page) {
  assert.deepEqual(page.log.errors, [], `${page.label}: uncaught page errors`);
  assert.deepEqual(page.log.csp, [], `${page.label}: Content-Security-Policy violations in the console`);
}

async function closeAll(...things) {
  for (const t of things) {
    if (!t) continue;
    try {
      await withTimeout(Promise.resolve(t.close ? t.close() : t.stop()), 10_000, 'closing');
    } catch {}
  }
}

// ---------------------------------------------------------------- accounts

// Hashing a password takes the server a moment (Argon2id, on its helper
// thread): account answers get longer than other waits.
const ACCOUNT_WAIT = 30_000;

/** The page's account (`window.natter.account`, null for a guest). */
async function accountOf(page) {
  return page.evaluate(() => window.natter.account);
}

async function waitAccount(page, account, timeout = ACCOUNT_WAIT) {
  await waitIn(
    page,
    `window.natter.account should become ${JSON.stringify(account)} (and #me-acct ${account ? 'show' : 'hide'})`,
    (account) => {
      const mark = document.querySelector('#me-acct');
      return window.natter.account === account && mark && mark.hidden === !account;
    },
    account,
    timeout,
  );
}

/** The top bar's account button opens #account-dialog. */
async function openAccountDialog(page) {
  await page.click('#account-btn');
  await waitVisible(page, '#account-dialog', 'the account dialog should open');
}

/**
 * Signs the page's current nick up (#account-btn, #show-signup, the name
 * offered or `nick`, the password twice) and waits until it is logged in
 * as `nick`.
 */
async function signUp(page, nick, password) {
  await openAccountDialog(page);
  await page.click('#show-signup');
  await waitVisible(page, '#signup-form', 'the sign-up form');
  await page.fill('#signup-nick', nick);
  await page.fill('#signup-password', password);
  await page.fill('#signup-password2', password);
  await page.press('#signup-password2', 'Enter');
  await waitAccount(page, nick);
  await waitNick(page, nick);
  await waitIn(page, 'the account dialog should close after signing up', () => !document.querySelector('#account-dialog').open);
}

/** Logs in through the account dialog's Log in form. */
async function logIn(page, nick, password) {
  await openAccountDialog(page);
  await page.click('#show-login');
  await page.fill('#login-nick', nick);
  await page.fill('#login-password', password);
  await page.press('#login-password', 'Enter');
}

// ---------------------------------------------------------------- moderation

/** The member's li in #members. */
function memberItem(page, nick) {
  return page.locator(`#members li[data-nick="${nick}"]`);
}

/** Opens the op's menu beside `nick` in #members (opening the drawer on a phone). */
async function openMemberMenu(page, nick) {
  const drawer = await page.evaluate(() => getComputedStyle(document.querySelector('#members-toggle')).display !== 'none');
  if (drawer && !(await page.evaluate(() => document.querySelector('#chat').classList.contains('show-members')))) {
    await page.click('#members-toggle');
  }
  const li = memberItem(page, nick);
  await waitVisible(page, `#members li[data-nick="${nick}"] .mod-btn`, `the op's menu button beside ${nick}`);
  if ((await li.locator('.member-menu').getAttribute('hidden')) !== null) await li.locator('.mod-btn').click();
  await waitVisible(page, `#members li[data-nick="${nick}"] .member-menu`, `the menu for ${nick}`);
}

/** Picks an item of the op's menu beside `nick`: action (and secs for a mute). */
async function memberMenuAction(page, nick, action, secs) {
  await openMemberMenu(page, nick);
  const sel = `.menu-item[data-action="${action}"]` + (secs ? `[data-secs="${secs}"]` : action === 'mute' ? ':not([data-secs])' : '');
  await memberItem(page, nick).locator(sel).click();
}

/** Waits for a .system line in #messages whose text matches re; returns it. */
async function waitSystem(page, re, what, timeout = T.wait) {
  const handle = await waitIn(
    page,
    `${what || 'a .system line'} matching ${re} should show in #messages`,
    ({ src, flags }) => {
      const re = new RegExp(src, flags);
      const line = [...document.querySelectorAll('#messages .system')].map((m) => m.textContent.replace(/\s+/g, ' ').trim()).find((t) => re.test(t));
      return line || false;
    },
    { src: re.source, flags: re.flags },
    timeout,
  );
  return handle.jsonValue();
}

/** Fails if the page scrolls sideways. */
async function assertNoSideways(page, where) {
  const m = await page.evaluate(() => ({ sw: document.documentElement.scrollWidth, iw: window.innerWidth }));
  assert.ok(m.sw <= m.iw, `${page.label}: ${where}: documentElement.scrollWidth ${m.sw} > innerWidth ${m.iw}`);
}

// ---------------------------------------------------------------- line client

/** A raw TCP client speaking the line protocol. */
class LineClient {
  static async connect(port, firstLines = '') {
    const c = new LineClient();
    c.sock = net.connect({ host: '127.0.0.1', port });
    c.sock.setEncoding('utf8');
    c.sock.on('data', (d) => {
      c.buf += d;
      let i;
      while ((i = c.buf.indexOf('\n')) >= 0) {
        c.lines.push(c.buf.slice(0, i).replace(/\r$/, ''));
        c.buf = c.buf.slice(i + 1);
      }
      for (const w of [...c.waiters]) w();
    });
    c.sock.on('error', () => {});
    await withTimeout(new Promise((r) => c.sock.once('connect', r)), 5_000, 'line client connect');
    if (firstLines) c.sock.write(firstLines);
    return c;
  }
  constructor() {
    this.lines = [];
    this.buf = '';
    this.waiters = new Set();
  }
  send(line) {
    this.sock.write(line + '\n');
  }
  /** Waits for a line matching re (searching from `from`); returns it. */
  waitFor(re, timeout = T.wait, from = 0) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const l = this.lines.slice(from).find((x) => re.test(x));
        if (l !== undefined) {
          clearTimeout(timer);
          this.waiters.delete(check);
          resolve(l);
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(
          new assert.AssertionError({
            message: `line client: no line matching ${re} within ${timeout} ms; it got:\n${this.lines.join('\n')}`,
          }),
        );
      }, timeout);
      if (!check()) this.waiters.add(check);
    });
  }
  close() {
    this.sock.destroy();
  }
}

// ---------------------------------------------------------------- websocket client

/**
 * A raw WebSocket client of /ws speaking the JSON protocol (written here:
 * Node 20 has no WebSocket without a flag). Every JSON message it gets is
 * kept in `msgs`; waitFor finds one by a predicate.
 */
class WsClient {
  static async connect(port, query = '') {
    const c = new WsClient();
    c.sock = net.connect({ host: '127.0.0.1', port });
    c.sock.on('error', () => {});
    await withTimeout(new Promise((r) => c.sock.once('connect', r)), 5_000, 'ws client connect');
    const key = require('node:crypto').randomBytes(16).toString('base64');
    c.sock.write(
      `GET /ws${query ? '?' + query : ''} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    let buf = Buffer.alloc(0);
    let upgraded = false;
    const ready = new Promise((resolve, reject) => {
      c.sock.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        if (!upgraded) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = buf.slice(0, end).toString('latin1');
          if (!/^HTTP\/1\.1 101/.test(head)) return reject(new Error('ws upgrade refused: ' + head.split('\r\n')[0]));
          upgraded = true;
          buf = buf.slice(end + 4);
          resolve();
        }
        buf = c.frames(buf);
      });
    });
    await withTimeout(ready, 5_000, 'ws upgrade');
    c.welcome = await c.waitFor((m) => m.type === 'welcome');
    return c;
  }
  constructor() {
    this.msgs = [];
    this.waiters = new Set();
  }
  frames(buf) {
    for (;;) {
      if (buf.length < 2) return buf;
      const op = buf[0] & 0x0f;
      let len = buf[1] & 0x7f;
      let at = 2;
      if (len === 126) {
        if (buf.length < 4) return buf;
        len = buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (buf.length < 10) return buf;
        len = Number(buf.readBigUInt64BE(2));
        at = 10;
      }
      if (buf.length < at + len) return buf;
      const payload = buf.slice(at, at + len);
      buf = buf.slice(at + len);
      if (op === 1) {
        try {
          this.msgs.push(JSON.parse(payload.toString('utf8')));
        } catch {}
        for (const w of [...this.waiters]) w();
      } else if (op === 9) {
        this.frame(10, payload);
      }
    }
  }
  frame(op, payload) {
    const mask = require('node:crypto').randomBytes(4);
    const n = payload.length;
    const head = n < 126 ? Buffer.from([0x80 | op, 0x80 | n]) : Buffer.from([0x80 | op, 0x80 | 126, n >> 8, n & 255]);
    const body = Buffer.from(payload);
    for (let i = 0; i < n; i++) body[i] ^= mask[i % 4];
    this.sock.write(Buffer.concat([head, mask, body]));
  }
  send(obj) {
    this.frame(1, Buffer.from(JSON.stringify(obj), 'utf8'));
  }
  /** Waits for a message (from index `from` on) for which pred is true; returns it. */
  waitFor(pred, timeout = T.wait, from = 0, what = 'a matching message') {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = this.msgs.slice(from).find(pred);
        if (m === undefined) return false;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(m);
        return true;
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new assert.AssertionError({
          message: `ws client: no ${what} within ${timeout} ms; it got:\n${this.msgs.slice(-20).map((m) => JSON.stringify(m)).join('\n')}`,
        }));
      }, timeout);
      if (!check()) this.waiters.add(check);
    });
  }
  /** Sends a request with a fresh ref and waits for the answer (or error) carrying it. */
  async ask(obj, timeout = T.wait) {
    const ref = 'r' + uniq(8);
    const from = this.msgs.length;
    this.send({ ...obj, ref });
    return this.waitFor((m) => m.ref === ref, timeout, from, `answer with ref ${ref} to ${JSON.stringify(obj).slice(0, 200)}`);
  }
  close() {
    try {
      this.sock.destroy();
    } catch {}
  }
}

// ---------------------------------------------------------------- proxy

/**
 * A TCP proxy to the server that can fail like a network: cut() destroys
 * both ends of every proxied connection (no close frame, no goodbye);
 * refuse = true makes it drop new connections at once.
 */
class FlakyProxy {
  static async start(targetPort) {
    const p = new FlakyProxy(targetPort);
    await new Promise((resolve, reject) => {
      p.server.once('error', reject);
      p.server.listen(0, '127.0.0.1', resolve);
    });
    p.port = p.server.address().port;
    p.base = `http://127.0.0.1:${p.port}`;
    return p;
  }
  constructor(targetPort) {
    this.targetPort = targetPort;
    this.pairs = new Set();
    this.refuse = false;
    this.armed = null; // { forward, resolve }
    this.holdNext = null; // { resolve, after }: see holdAfterNextFrame
    this.refused = 0;
    this.wsConnections = 0;
    this.server = net.createServer((client) => this.onClient(client));
  }
  onClient(client) {
    client.on('error', () => {});
    if (this.refuse) {
      this.refused++;
      client.destroy();
      return;
    }
    const upstream = net.connect({ host: '127.0.0.1', port: this.targetPort });
    upstream.on('error', () => {});
    // held: server->page bytes kept back while a test holds them.
    const pair = { client, upstream, ws: false, first: true, held: null };
    this.pairs.add(pair);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on('close', drop);
    upstream.on('close', drop);
    upstream.on('data', (d) => (pair.held ? pair.held.push(d) : client.write(d)));
    client.on('data', (d) => {
      if (pair.first) {
        pair.first = false;
        if (/^GET \/ws[?\s]/.test(d.toString('latin1')) && /upgrade:\s*websocket/i.test(d.toString('latin1'))) {
          pair.ws = true;
          this.wsConnections++;
          pair.n = this.wsConnections;
        }
      } else if (pair.ws && this.holdNext && pair.n > this.holdNext.after) {
        // The page's next frame: everything the server sends from now on
        // is held until release(), so its answers arrive late.
        pair.held = [];
        this.holdNext.resolve();
        this.holdNext = null;
      } else if (pair.ws && this.armed) {
        // The next frame the page sends over its WebSocket: cut the network
        // right there, with the frame either delivered or lost.
        const armed = this.armed;
        this.armed = null;
        if (armed.refuse) this.refuse = true;
        if (armed.forward) {
          upstream.write(d, () => {
            this.cut();
            armed.resolve(d.length);
          });
        } else {
          this.cut();
          armed.resolve(d.length);
        }
        return;
      }
      upstream.write(d);
    });
  }
  /**
   * The next client->server bytes on a WebSocket trigger a cut of every
   * connection; forward: whether those bytes reach the server first;
   * refuse: whether new connections are then refused. Returns a promise of
   * the cut.
   */
  armCut({ forward, refuse }) {
    return new Promise((resolve) => {
      this.armed = { forward, refuse, resolve };
    });
  }
  /**
   * On the next WebSocket connection opened from now on: from the page's
   * first frame over it, holds what the server sends until release()
   * (bytes from sockets already open, a closing page's say, do not count).
   * Returns a promise of the hold starting.
   */
  holdAfterNextFrame() {
    return new Promise((resolve) => {
      this.holdNext = { resolve, after: this.wsConnections };
    });
  }
  /** Lets held server->page bytes through, in order, and stops holding. */
  release() {
    for (const pair of this.pairs) {
      const held = pair.held;
      pair.held = null;
      for (const d of held || []) pair.client.write(d);
    }
  }
  /** Destroys both sides of every proxied connection, abruptly. */
  cut() {
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }
  close() {
    this.armed = null;
    this.cut();
    return new Promise((r) => this.server.close(() => r()));
  }
}

module.exports = {
  T,
  PNG_1X1,
  SCREENSHOTS,
  NATTER_BIN,
  sleep,
  withTimeout,
  uniq,
  startServer,
  launchBrowser,
  newPage,
  describe,
  waitIn,
  gotoPage,
  waitVisible,
  waitConnected,
  waitNick,
  readRoomCode,
  createRoom,
  joinByCode,
  answerPrompt,
  waitActiveRoom,
  say,
  waitMsg,
  messages,
  systemLines,
  memberList,
  waitMembers,
  assertClean,
  closeAll,
  cleanNick,
  fillName,
  ACCOUNT_WAIT,
  accountOf,
  waitAccount,
  openAccountDialog,
  signUp,
  logIn,
  memberItem,
  openMemberMenu,
  memberMenuAction,
  waitSystem,
  assertNoSideways,
  LineClient,
  WsClient,
  FlakyProxy,
};
