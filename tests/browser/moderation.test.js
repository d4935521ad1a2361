'use strict';
// Room owners and moderation in the page: what a guest does not see, the
// topic, a mute the guest feels, a kick the guest sees, a ban with the ban
// list and Unban, making an op (whose page then moderates), invite-only
// and invites; screenshots at desktop and phone size.

const { test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./helpers');

let server;
let browser;

before(async () => {
  server = await h.startServer();
  browser = await h.launchBrowser();
  fs.mkdirSync(h.SCREENSHOTS, { recursive: true });
}, { timeout: 45_000 });

after(async () => {
  await h.closeAll(browser, server);
}, { timeout: 20_000 });

// Each test's pages (their browser contexts) close when it ends.
let open = [];
afterEach(async () => {
  const contexts = open.map((p) => p.context());
  open = [];
  await h.closeAll(...contexts);
}, { timeout: 20_000 });

async function newPage(label, opts = {}) {
  const p = await h.newPage(browser, { label, ...opts });
  open.push(p);
  return p;
}

const PASSWORD = 'correct horse 42';

/** A page that picks `nick`, signs it up, and is logged in (no room yet). */
async function account(label, nick, opts = {}) {
  const P = await newPage(label, opts);
  await h.gotoPage(P, server.base + '/');
  await h.waitVisible(P, '#landing', 'landing page');
  await h.waitConnected(P);
  await P.fill('#name', nick);
  await P.press('#name', 'Enter');
  await h.waitNick(P, nick);
  await h.signUp(P, nick, PASSWORD);
  return P;
}

/** An owner (an account that makes the room) and a guest in it. */
async function ownerAndGuest(tag, opts = {}) {
  const alice = `al${h.uniq(5)}`;
  const bob = `bob${h.uniq(4)}`;
  const A = await account(`owner ${alice}${tag}`, alice, opts.owner);
  const code = await h.createRoom(A, server.base, alice);
  await h.waitIn(A, '#room-role should say you own the room', () => /owner/.test(document.querySelector('#room-role').textContent) && !document.querySelector('#room-role').hidden);
  const B = await newPage(`guest ${bob}${tag}`, opts.guest);
  await h.joinByCode(B, server.base, bob, code);
  await h.waitMembers(A, bob, true);
  return { A, B, alice, bob, code };
}

const msgShown = (P, nick, text) => P.evaluate(({ nick, text }) =>
  [...document.querySelectorAll('#messages .msg')].some((m) => m.querySelector('.nick').textContent === nick && m.querySelector('.text').textContent === text), { nick, text });

test('M1. a guest sees no op controls; the owner does, for others only', { timeout: 90_000 }, async () => {
  const { A, B, alice, bob } = await ownerAndGuest('');
  // The owner: Settings, a menu beside the guest, none beside herself.
  await h.waitVisible(A, '#room-settings', 'the owner\'s Settings button');
  await h.waitVisible(A, `#members li[data-nick="${bob}"] .mod-btn`, 'the owner\'s menu button beside the guest');
  assert.equal(await h.memberItem(A, alice).locator('.mod-btn').count(), 0, 'no menu beside yourself');
  const ownerBadge = await h.memberItem(A, alice).locator('.badge.role').textContent();
  assert.equal(ownerBadge.trim(), 'owner');
  // The guest: none of it, anywhere.
  await h.waitMembers(B, alice, true);
  const guest = await B.evaluate(() => ({
    modButtons: document.querySelectorAll('.mod-btn, .member-menu, .menu-item').length,
    settings: document.querySelector('#room-settings').hidden,
    role: document.querySelector('#room-role').hidden,
  }));
  assert.deepEqual(guest, { modButtons: 0, settings: true, role: true }, 'a guest sees no op controls');
  // Typed op commands are refused by the server, clearly.
  await h.say(B, `/kick ${alice}`);
  await h.waitIn(B, 'the guest\'s /kick should be refused as not permitted', () =>
    [...document.querySelectorAll('#messages .system.error')].some((m) => /not allowed/.test(m.textContent)));
  // The owner's member menu is a menu, by keyboard: Enter opens it on the
  // first item, arrows move, Escape closes it back onto its button.
  await A.focus(`#members li[data-nick="${bob}"] .mod-btn`);
  await A.keyboard.press('Enter');
  await h.waitIn(A, 'the first menu item should have the focus', () => document.activeElement && document.activeElement.dataset.action === 'kick');
  await A.keyboard.press('ArrowDown');
  assert.equal(await A.evaluate(() => document.activeElement.dataset.action), 'ban');
  await A.keyboard.press('End');
  assert.equal(await A.evaluate(() => document.activeElement.dataset.action), 'unmute', 'a guest cannot be made op: Unmute is last');
  await A.keyboard.press('Escape');
  await h.waitIn(A, 'Escape should close the menu, focus on its button', () =>
    document.activeElement.classList.contains('mod-btn') && document.activeElement.getAttribute('aria-expanded') === 'false');
  for (const p of [A, B]) h.assertClean(p);
});

test('M2. the owner sets the topic in Settings: everyone sees it in the room head, as text', { timeout: 90_000 }, async () => {
  const { A, B } = await ownerAndGuest('');
  const topic = 'Be <b>nice</b> & <img src=x onerror="window.__xss=1"> kind';
  await A.click('#room-settings');
  await h.waitVisible(A, '#settings-dialog', 'the settings dialog');
  await A.fill('#topic-input', topic);
  await A.press('#topic-input', 'Enter');
  await h.waitIn(A, '#settings-note should confirm the topic', () => /topic set/i.test(document.querySelector('#settings-note').textContent));
  await A.keyboard.press('Escape');
  for (const P of [A, B]) {
    await h.waitIn(P, '#room-topic should show the topic as text', (t) => {
      const el = document.querySelector('#room-topic');
      return el && !el.hidden && el.textContent === t && !el.querySelector('*');
    }, topic);
    await h.waitSystem(P, /set the topic: Be <b>nice<\/b>/);
    assert.equal(await P.evaluate(() => window.__xss), undefined);
  }
  for (const p of [A, B]) h.assertClean(p);
});

test('M3. a mute for 5 minutes: the guest is told, cannot send, then is unmuted and can', { timeout: 90_000 }, async () => {
  const { A, B, alice, bob } = await ownerAndGuest('');
  await h.memberMenuAction(A, bob, 'mute', 300);
  await h.waitSystem(A, new RegExp(`${alice} muted ${bob} for 5 minutes`));
  await h.waitSystem(B, new RegExp(`${alice} muted you for 5 minutes`), 'the guest\'s own line about the mute');
  await h.waitIn(B, '#room-notice should say the guest is muted', () => {
    const n = document.querySelector('#room-notice');
    return !n.hidden && /muted/.test(n.textContent);
  });
  await h.waitIn(A, `the member list should mark ${bob} muted`, (n) => !!document.querySelector(`#members li[data-nick="${n}"] .badge.muted`), bob);
  // The guest tries anyway: refused, saying so; the owner never sees it.
  await h.say(B, 'can I still talk?');
  await h.waitIn(B, 'the message should be marked not sent, with the mute', () =>
    [...document.querySelectorAll('#messages .msg.failed')].some((m) => /Not sent: .*muted/i.test(m.textContent)));
  await h.sleep(h.T.settle);
  assert.equal(await msgShown(A, bob, 'can I still talk?'), false, 'the owner never gets the muted message');

  // Unmute by keyboard: the menu's last item.
  await h.openMemberMenu(A, bob);
  await A.focus(`#members li[data-nick="${bob}"] .menu-item[data-action="unmute"]`);
  await A.keyboard.press('Enter');
  await h.waitSystem(B, /unmuted you/);
  await h.waitIn(B, '#room-notice should go', () => document.querySelector('#room-notice').hidden);
  await h.say(B, 'thanks');
  await h.waitMsg(A, bob, 'thanks');
  for (const p of [A, B]) h.assertClean(p);
});

test('M4. a kick: the guest sees it happen and may join again', { timeout: 90_000 }, async () => {
  const { A, B, alice, bob, code } = await ownerAndGuest('');
  await h.memberMenuAction(A, bob, 'kick');
  await h.waitVisible(A, '#reason-dialog', 'the kick asks for a reason');
  assert.match(await A.textContent('#reason-title'), new RegExp(`Kick ${bob}`));
  await A.fill('#reason-input', 'cool off');
  await A.press('#reason-input', 'Enter');

  await h.waitSystem(B, new RegExp(`You were kicked from #${code} by ${alice}: cool off`), 'the guest\'s line about the kick');
  await h.waitVisible(B, '#room-ended', 'the guest\'s room should say it ended');
  const ended = await B.evaluate((code) => ({
    text: document.querySelector('#room-ended-text').textContent,
    composer: document.querySelector('#composer').hidden,
    rooms: window.natter.rooms,
    tab: !!document.querySelector(`#tabs .tab.ended[data-room="${code}"]`),
    rejoin: !document.querySelector('#rejoin').hidden,
  }), code);
  assert.match(ended.text, /kicked/);
  assert.deepEqual([ended.composer, ended.rooms, ended.tab, ended.rejoin], [true, [], true, true]);

  await h.waitMembers(A, bob, false);
  await h.waitSystem(A, new RegExp(`${alice} kicked ${bob}: cool off`));
  const lines = await h.systemLines(A);
  assert.equal(lines.filter((l) => l.includes(bob) && /left/.test(l)).length, 0, 'the kick is said once, not again as a leave');

  // Back in.
  await B.click('#rejoin');
  await h.waitIn(B, 'the guest is in the room again', (code) => window.natter.rooms.includes(code) && !document.querySelector('#composer').hidden, code);
  await h.waitMembers(A, bob, true);
  await h.say(B, 'back again');
  await h.waitMsg(A, bob, 'back again');
  for (const p of [A, B]) h.assertClean(p);
});

test('M5. a ban keeps the guest out until the owner unbans from the ban list', { timeout: 90_000 }, async () => {
  const { A, B, alice, bob, code } = await ownerAndGuest('');
  await h.memberMenuAction(A, bob, 'ban');
  await h.waitVisible(A, '#reason-dialog', 'the ban asks for a reason');
  await A.fill('#reason-input', 'spam');
  await A.click('#reason-ok');
  await h.waitSystem(B, new RegExp(`You were banned from #${code} by ${alice}: spam`));
  await h.waitVisible(B, '#room-ended', 'the guest\'s room should say it ended');
  assert.equal(await B.locator('#rejoin').isHidden(), true, 'no Join again after a ban');

  // Trying anyway, from the start page: refused, saying so.
  await B.click('#new-tab');
  await B.fill('#join-code', code);
  await B.click('#join-btn');
  await h.waitIn(B, 'the join should be refused as banned', () =>
    [...document.querySelectorAll('#messages .system.error, #landing-error')].some((m) => /banned/i.test(m.textContent)));

  // The ban list, and Unban.
  await A.click('#room-settings');
  await h.waitVisible(A, `#ban-list li[data-nick="${bob}"]`, 'the ban list should show the guest');
  assert.match(await A.textContent(`#ban-list li[data-nick="${bob}"]`), /spam/);
  await A.click(`#ban-list li[data-nick="${bob}"] .unban`);
  await h.waitIn(A, 'the ban list should empty', () => !document.querySelector('#ban-list li') && !document.querySelector('#no-bans').hidden);
  await A.keyboard.press('Escape');

  await B.click('#new-tab');
  await B.fill('#join-code', code);
  await B.click('#join-btn');
  await h.waitIn(B, 'the guest is in the room again', (code) => window.natter.rooms.includes(code), code);
  await h.waitMembers(A, bob, true);
  for (const p of [A, B]) h.assertClean(p);
});

test('M6. the owner makes an account an op, whose page then moderates; deop takes it back', { timeout: 90_000 }, async () => {
  const { A, B, bob, code } = await ownerAndGuest('');
  const carol = `ca${h.uniq(5)}`;
  const C = await account(`account ${carol}`, carol);
  await h.joinByCode(C, server.base, carol, code);
  await h.waitIn(A, `${carol} should show with the account mark`, (n) => !!document.querySelector(`#members li[data-nick="${n}"] .acct`), carol);
  assert.equal(await C.locator('#room-settings').isHidden(), true, 'a member: no Settings yet');

  await h.memberMenuAction(A, carol, 'op');
  await h.waitSystem(C, /made you an op/);
  await h.waitVisible(C, '#room-settings', 'the new op\'s Settings button');
  await h.waitVisible(C, `#members li[data-nick="${bob}"] .mod-btn`, 'the new op\'s menu beside the guest');
  await h.waitIn(A, `${carol} should be badged op`, (n) => {
    const b = document.querySelector(`#members li[data-nick="${n}"] .badge.role`);
    return b && b.textContent === 'op';
  }, carol);
  assert.match(await C.textContent('#room-role'), /op/);
  // The new op mutes the guest: it works.
  await h.memberMenuAction(C, bob, 'mute');
  await h.waitSystem(B, new RegExp(`${carol} muted you until unmuted`));

  await h.memberMenuAction(A, carol, 'deop');
  await h.waitSystem(C, /removed you as op/);
  await h.waitIn(C, 'the op controls should go', () => document.querySelector('#room-settings').hidden && !document.querySelector('.mod-btn'));
  for (const p of [A, B, C]) h.assertClean(p);
});

test('M7. invite-only: a guest is refused until invited by name', { timeout: 90_000 }, async () => {
  const { A, code } = await ownerAndGuest('');
  await A.click('#room-settings');
  await h.waitVisible(A, '#settings-dialog', 'the settings dialog');
  await A.check('#invite-only');
  await h.waitVisible(A, '#room-lock', 'the room head should say invite-only');
  const dee = `dee${h.uniq(4)}`;
  const D = await newPage(`guest ${dee}`);
  await h.gotoPage(D, server.base + '/');
  await h.waitConnected(D);
  await D.fill('#name', dee);
  await D.fill('#join-code', code);
  await D.click('#join-btn');
  await h.waitIn(D, '#landing-error should say the room is invite-only', () => /invite-only/.test(document.querySelector('#landing-error').textContent));

  await A.fill('#invite-nick', dee);
  await A.press('#invite-nick', 'Enter');
  await h.waitIn(A, '#settings-note should confirm the invite', (n) => document.querySelector('#settings-note').textContent.includes(n), dee);
  await D.fill('#join-code', code);
  await D.click('#join-btn');
  await h.waitIn(D, 'the invited guest gets in', (code) => window.natter.rooms.includes(code), code);
  await h.waitMembers(A, dee, true);
  for (const p of [A, D]) h.assertClean(p);
});

const SIZES = [
  { tag: '1280x800', label: 'desktop 1280x800', opts: { viewport: { width: 1280, height: 800 } } },
  { tag: '390x844', label: 'phone 390x844', opts: { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1 } },
];

for (const size of SIZES) {
  test(`M8. moderation at ${size.label}: the member menu, settings, a muted and a kicked guest; screenshots`, { timeout: 90_000 }, async () => {
    const { A, B, bob } = await ownerAndGuest(` (${size.label})`, { owner: size.opts, guest: size.opts });
    await A.click('#room-settings');
    await h.waitVisible(A, '#settings-dialog', 'the settings dialog');
    await A.fill('#topic-input', 'Plans for the weekend: the hike on Saturday, and who brings what. Long topics wrap, and on a phone they fold to two lines until tapped.');
    await A.press('#topic-input', 'Enter');
    await h.waitIn(A, '#settings-note should confirm the topic', () => /topic set/i.test(document.querySelector('#settings-note').textContent));
    await A.check('#invite-only');
    await h.waitIn(A, '#settings-note should confirm invite-only', () => /invite-only/i.test(document.querySelector('#settings-note').textContent));
    await h.assertNoSideways(A, 'the settings dialog');
    await A.screenshot({ path: path.join(h.SCREENSHOTS, `settings-${size.tag}.png`) });
    await A.keyboard.press('Escape');

    await h.say(B, 'hello there');
    await h.waitMsg(A, bob, 'hello there');
    await h.memberMenuAction(A, bob, 'mute', 3600);
    await h.waitSystem(B, /muted you for 1 hour/);
    await h.openMemberMenu(A, bob);
    const menu = await A.evaluate((n) => {
      const m = document.querySelector(`#members li[data-nick="${n}"] .member-menu`).getBoundingClientRect();
      return { left: m.left, right: m.right, bottom: m.bottom, iw: innerWidth, ih: innerHeight };
    }, bob);
    assert.ok(menu.left >= 0 && menu.right <= menu.iw && menu.bottom <= menu.ih, `the member menu should lie inside the window: ${JSON.stringify(menu)}`);
    await h.assertNoSideways(A, 'the member menu');
    await A.screenshot({ path: path.join(h.SCREENSHOTS, `member-menu-${size.tag}.png`) });

    await h.say(B, 'am I muted?');
    await h.waitIn(B, 'the message should be marked not sent', () => !!document.querySelector('#messages .msg.failed'));
    await h.assertNoSideways(B, 'a muted guest');
    await B.screenshot({ path: path.join(h.SCREENSHOTS, `muted-${size.tag}.png`) });

    await A.keyboard.press('Escape');
    await h.memberMenuAction(A, bob, 'kick');
    await h.waitVisible(A, '#reason-dialog', 'the reason dialog');
    await A.fill('#reason-input', 'that was a test');
    await A.screenshot({ path: path.join(h.SCREENSHOTS, `kick-reason-${size.tag}.png`) });
    await A.press('#reason-input', 'Enter');
    await h.waitVisible(B, '#room-ended', 'the kicked guest\'s notice');
    await h.assertNoSideways(B, 'a kicked guest');
    await B.screenshot({ path: path.join(h.SCREENSHOTS, `kicked-${size.tag}.png`) });
    for (const p of [A, B]) h.assertClean(p);
  });
}
