'use strict';
// Messages that live (issue 16), continued: a reply (the quote, a click on
// it jumping to the original, loading older history), a network cut and a
// reload in the middle of the other page's edits, deletes and reactions
// ending exactly right, and screenshots at desktop and phone size (a long
// press shows a message's toolbar on a phone). The DOM contract is in
// live.js.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const h = require('./helpers');
const {
  setup, env, DESKTOP, PHONE, newPage, pair, wsIn, sayAll, msgSel, tool, longPress, shown, comparable,
  waitEdited, waitDeleted, waitChip,
} = require('./live');

setup();

// ----------------------------------------------------------------- reply

test('R0. room.js: changes are seen seqs (a catch-up asks after them) and apply to the messages held', { timeout: 60_000 }, async () => {
  const P = await newPage('unit');
  await h.gotoPage(P, env.server.base + '/');
  const out = await P.evaluate(async () => {
    const r = await import('/room.js');
    const room = r.newRoom();
    const msg = (seq, text, extra = {}) => ({ type: 'message', room: 'x', seq, from: 'bob', ts: 1, text, ...extra });
    const plan = (list) => r.merge(room, list).map((s) => [s.msg.seq, s.where, s.changed || null]);
    const a = plan([msg(10, 'ten'), msg(11, 'eleven', { reply_to: { seq: 10, from: 'bob', text: 'ten' } })]);
    // A catch-up: a change to a message held, a new message, a change to one not held.
    const b = plan([
      { type: 'edit', room: 'x', seq: 12, target: 10, from: 'bob', text: 'TEN', ts: 5 },
      { type: 'react', room: 'x', seq: 13, target: 11, from: 'ann', emoji: '👍', on: true, ts: 6 },
      msg(14, 'fourteen'),
      { type: 'react', room: 'x', seq: 15, target: 3, from: 'ann', emoji: '👍', on: true, ts: 7 },
    ]);
    const since = r.rejoinSince(room);
    const again = plan([{ type: 'edit', room: 'x', seq: 12, target: 10, from: 'bob', text: 'TEN', ts: 5 }]);
    const c = plan([{ type: 'delete', room: 'x', seq: 16, target: 10, by: 'bob', ts: 8 }]);
    const d = plan([{ type: 'react', room: 'x', seq: 17, target: 11, from: 'ann', emoji: '👍', on: false, ts: 9 }]);
    return {
      a, b, since, again, c, d,
      ten: room.msgs.get(10),
      eleven: room.msgs.get(11),
      range: [room.minSeq, room.maxSeq],
      older: r.olderBefore(room),
    };
  });
  assert.deepEqual(out.a, [[10, 'end', null], [11, 'end', null]]);
  assert.deepEqual(out.b, [[12, 'amend', [10]], [13, 'amend', [11]], [14, 'end', null], [15, 'amend', []]]);
  assert.equal(out.since, 15, 'a catch-up asks after the newest change too');
  assert.deepEqual(out.again, [[12, null, null]], 'a change seen twice is applied once');
  assert.deepEqual(out.c, [[16, 'amend', [10, 11]]], 'a delete changes the message and the replies quoting it');
  assert.deepEqual(out.d, [[17, 'amend', [11]]]);
  assert.deepEqual(out.ten, { type: 'message', room: 'x', seq: 10, from: 'bob', ts: 1, deleted: true });
  assert.deepEqual(out.eleven.reply_to, { seq: 10, from: 'bob' }, 'the quote of a deleted message has no text');
  assert.deepEqual(out.eleven.reactions, {}, 'a reaction taken back is gone');
  assert.deepEqual(out.range, [10, 17]);
  assert.equal(out.older, 10, 'older pages still page before the oldest message');
});

test('R1. reply: "Replying to X ✕", the quote above the reply, a click on it jumps to the original, loading older history', { timeout: 90_000 }, async () => {
  const { A, B, a, b, code } = await pair(' R1');
  await h.say(B, 'which train do we take?');
  const orig = await h.waitMsg(A, b, 'which train do we take?');
  // ✕ cancels a reply.
  await tool(A, orig, 'reply');
  await h.waitVisible(A, '#compose-ctx', 'the "Replying to" bar');
  assert.match(await A.locator('#compose-ctx').textContent(), new RegExp(`Replying to ${b}`));
  await A.click('#compose-ctx-cancel');
  await h.waitIn(A, '✕ should cancel the reply', () => document.querySelector('#compose-ctx').hidden);
  await tool(A, orig, 'reply');
  await A.fill('#input', 'the 9:15 one');
  await A.press('#input', 'Enter');
  const reply = await h.waitMsg(B, a, 'the 9:15 one');
  await h.waitMsg(A, a, 'the 9:15 one');
  for (const P of [A, B]) {
    const s = (await shown(P))[reply];
    assert.deepEqual(s.quote, { target: String(orig), from: b, text: 'which train do we take?' }, `${P.label}: the quote above the reply`);
  }
  assert.equal(await A.locator('#compose-ctx').isVisible(), false, 'one message answers a reply');

  // 70 messages later, a third page joins: it holds the last 50 and the
  // original is not on it; B replies to the original again, and a click on
  // the quote in C's page loads older history until the original is there.
  const ws = await wsIn(code, `filler${h.uniq(3)}`);
  await sayAll(ws, code, Array.from({ length: 70 }, (_, i) => `filler ${i + 1}`));
  const c = `cat${h.uniq(4)}`;
  const C = await newPage(`C ${c} R1`);
  await h.joinByCode(C, env.server.base, c, code);
  await h.waitMsg(C, ws.nick, 'filler 70');
  await tool(B, orig, 'reply');
  await B.fill('#input', 'the original question, again');
  await B.press('#input', 'Enter');
  const again = await h.waitMsg(C, b, 'the original question, again');
  assert.equal(await C.evaluate((o) => !!document.querySelector(`#messages .msg[data-seq="${o}"]`), orig), false,
    'the original is not on C\'s page yet');
  await C.click(`${msgSel(again)} .quote`);
  await h.waitIn(C, 'a click on the quote should bring the original onto the page, highlighted and in view', (o) => {
    const m = document.querySelector(`#messages .msg[data-seq="${o}"]`);
    if (!m || !m.classList.contains('flash')) return false;
    const r = m.getBoundingClientRect();
    const box = document.querySelector('#messages').getBoundingClientRect();
    return r.top >= box.top - 1 && r.bottom <= box.bottom + 1;
  }, orig, 20_000);
  // Every seq once, in order.
  const seqs = await C.evaluate(() => [...document.querySelectorAll('#messages .msg[data-seq]')].map((m) => Number(m.dataset.seq)));
  assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), 'messages in seq order');
  assert.equal(new Set(seqs).size, seqs.length, 'each seq once');
  for (const P of [A, B, C]) h.assertClean(P);
});

// --------------------------------------------------- catch-up and reload

test('C1. a network cut and a reload in the middle of the other page\'s edits, deletes and reactions end exactly right', { timeout: 90_000 }, async () => {
  const proxy = await h.FlakyProxy.start(env.server.port);
  try {
    const { A, B, a, b } = await pair(' C1', { baseA: proxy.base });
    await h.waitConnected(A);
    const texts = ['one', 'two', 'three', 'four'];
    for (const t of texts) await h.say(B, t);
    const seqs = [];
    for (const t of texts) seqs.push(await h.waitMsg(A, b, t));
    await h.say(A, 'mine');
    const mine = await h.waitMsg(B, a, 'mine');
    // A reacts to three before the cut.
    await A.locator(msgSel(seqs[2])).hover();
    await tool(A, seqs[2], 'react');
    await A.click(`${msgSel(seqs[2])} .pick[data-emoji="🎉"]`);
    await waitChip(B, seqs[2], '🎉', 1);

    // The network goes.
    proxy.refuse = true;
    proxy.cut();
    await h.waitIn(A, 'A should notice the cut', () => document.querySelector('#status').dataset.state !== 'connected', null, 15_000);
    // B, meanwhile: edits one twice, deletes two, reacts to three and
    // four (and takes four's back), reacts to A's.
    await tool(B, seqs[0], 'edit');
    await B.fill('#input', 'one (first edit)');
    await B.press('#input', 'Enter');
    await waitEdited(B, seqs[0], 'one (first edit)');
    await tool(B, seqs[0], 'edit');
    await B.fill('#input', 'one (second edit)');
    await B.press('#input', 'Enter');
    await waitEdited(B, seqs[0], 'one (second edit)');
    await tool(B, seqs[1], 'delete');
    await B.click('#delete-ok');
    await waitDeleted(B, seqs[1]);
    await B.click(`${msgSel(seqs[2])} .chip[data-emoji="🎉"]`);
    await waitChip(B, seqs[2], '🎉', 2, true);
    await tool(B, seqs[3], 'react');
    await B.click(`${msgSel(seqs[3])} .pick[data-emoji="😮"]`);
    await waitChip(B, seqs[3], '😮', 1, true);
    await B.click(`${msgSel(seqs[3])} .chip[data-emoji="😮"]`);
    await waitChip(B, seqs[3], '😮', 0);
    await tool(B, mine, 'react');
    await B.click(`${msgSel(mine)} .pick[data-emoji="❤️"]`);
    await waitChip(B, mine, '❤️', 1, true);
    await h.say(B, 'five');
    const five = await h.waitMsg(B, b, 'five');

    // The network is back: A catches up (joined with since: the changes
    // come mixed with the new message) and ends exactly like B.
    proxy.refuse = false;
    await h.waitConnected(A, h.T.reconnect);
    await h.waitMsg(A, b, 'five');
    await waitEdited(A, seqs[0], 'one (second edit)');
    await waitDeleted(A, seqs[1]);
    await waitChip(A, seqs[2], '🎉', 2, true);
    await waitChip(A, mine, '❤️', 1, false);
    assert.deepEqual(comparable(await shown(A)), comparable(await shown(B)), 'after the cut, A shows exactly what B shows');

    // More changes, and A reloads in the middle of them.
    await tool(B, five, 'edit');
    await B.fill('#input', 'five, edited');
    const reloading = A.reload({ waitUntil: 'domcontentloaded' });
    await B.press('#input', 'Enter');
    await B.click(`${msgSel(seqs[2])} .chip[data-emoji="🎉"]`);
    await reloading;
    await waitEdited(B, five, 'five, edited');
    await waitChip(B, seqs[2], '🎉', 1, false);
    await h.waitConnected(A);
    await waitEdited(A, five, 'five, edited');
    await waitChip(A, seqs[2], '🎉', 1, true);
    assert.deepEqual(comparable(await shown(A)), comparable(await shown(B)), 'after the reload, A shows exactly what B shows');
    for (const P of [A, B]) h.assertClean(P);
  } finally {
    await proxy.close();
  }
});

// ------------------------------------------------------------ screenshots

for (const v of [
  { tag: '1280x800', opts: DESKTOP },
  { tag: '390x844', opts: PHONE },
]) {
  test(`S1. screenshots at ${v.tag}: a reply, reactions, an edit, a delete, a mention, the toolbar, the reply bar`, { timeout: 90_000 }, async () => {
    const { A, B, a, b } = await pair(` ${v.tag}`, { A: v.opts, B: v.opts });
    await h.say(B, 'Morning! Who is bringing the projector for the 10:00 demo?');
    const q = await h.waitMsg(A, b, 'Morning! Who is bringing the projector for the 10:00 demo?');
    await tool(A, q, 'reply');
    await A.fill('#input', `I will, @${b}. Slides are at https://example.com/slides`);
    await A.press('#input', 'Enter');
    const r = await h.waitMsg(B, a, `I will, @${b}. Slides are at https://example.com/slides`);
    await tool(B, r, 'react');
    await B.click(`${msgSel(r)} .pick[data-emoji="🙏"]`);
    await waitChip(A, r, '🙏', 1);
    await A.click(`${msgSel(r)} .chip[data-emoji="🙏"]`);
    await tool(A, r, 'react');
    await A.click(`${msgSel(r)} .pick[data-emoji="🎉"]`);
    await h.say(B, 'typo here: teh demo');
    const e = await h.waitMsg(B, b, 'typo here: teh demo');
    await tool(B, e, 'edit');
    await B.fill('#input', 'typo here: the demo');
    await B.press('#input', 'Enter');
    await h.say(B, 'wrong chat, sorry');
    const d = await h.waitMsg(B, b, 'wrong chat, sorry');
    await tool(B, d, 'delete');
    await B.click('#delete-ok');
    await waitDeleted(A, d);
    await waitEdited(A, e, 'typo here: the demo');
    await waitChip(A, r, '🙏', 2, true);
    // A: the toolbar on B's question, and a reply being written.
    await tool(A, q, 'reply');
    await A.fill('#input', 'also, lunch after?');
    if (v.opts === PHONE) await longPress(A, e);
    else await A.locator(msgSel(e)).hover();
    await h.assertNoSideways(A, 'messages with quotes, chips and the toolbar');
    await A.screenshot({ path: path.join(h.SCREENSHOTS, `messages-${v.tag}.png`) });
    for (const P of [A, B]) h.assertClean(P);
  });
}

