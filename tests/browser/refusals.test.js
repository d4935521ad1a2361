'use strict';
// Refusals of messages that live, shown the usual way (a .system.error
// line in the room) and leaving the message as it was: an edit past
// --edit-window (`edit_window`, the server runs with 2 seconds here), a
// reaction by a muted guest (`muted`), a guest's delete of someone else's
// message sent anyway (`not_permitted`: the page never offers it, so the
// request goes from the page's own connection by hand).

const { test } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helpers');
const { setup, env, newPage, pair, msgSel, tool, shown, waitChip } = require('./live');

setup(['--edit-window', '2']);

const PASSWORD = 'correct horse 42';

test('F1. an edit past the edit window is refused, said in the room, and the message stays as it was', { timeout: 60_000 }, async () => {
  const { A, a } = await pair(' F1');
  await h.say(A, 'said in haste');
  const s = await h.waitMsg(A, a, 'said in haste');
  await h.sleep(2_600);
  await A.focus('#input');
  await A.keyboard.press('ArrowUp');
  await h.waitVisible(A, '#compose-ctx', 'the "Editing" bar');
  await A.fill('#input', 'said with care');
  await A.press('#input', 'Enter');
  await h.waitSystem(A, /Could not edit that message: That message is too old to edit now/, 'the edit_window refusal');
  const m = (await shown(A))[s];
  assert.equal(m.text, 'said in haste');
  assert.equal(m.edited, false);
  assert.equal(await A.locator(msgSel(s)).evaluate((n) => n.classList.contains('saving')), false, 'no longer marked as saving');
  h.assertClean(A);
});

test('F2. a muted guest\'s reaction and a guest\'s delete of another\'s message are refused, said in the room', { timeout: 90_000 }, async () => {
  const owner = `own${h.uniq(4)}`;
  const guest = `gst${h.uniq(4)}`;
  const A = await newPage(`owner ${owner}`);
  await h.gotoPage(A, env.server.base + '/');
  await h.waitConnected(A);
  await A.fill('#name', owner);
  await A.press('#name', 'Enter');
  await h.waitNick(A, owner);
  await h.signUp(A, owner, PASSWORD);
  const code = await h.createRoom(A, env.server.base, owner);
  const B = await newPage(`guest ${guest}`);
  await h.joinByCode(B, env.server.base, guest, code);
  await h.waitMembers(A, guest, true);
  await h.say(A, 'house rules: be kind');
  const s = await h.waitMsg(B, owner, 'house rules: be kind');

  // Muted: the reaction is refused.
  await h.say(A, `/mute ${guest} 300`);
  await h.waitSystem(B, /muted you/, 'the guest is told of the mute');
  await tool(B, s, 'react');
  await B.click(`${msgSel(s)} .pick[data-emoji="👍"]`);
  await h.waitSystem(B, /Could not react: .*mute/i, 'the muted refusal');
  await waitChip(A, s, '👍', 0);
  await waitChip(B, s, '👍', 0);

  // Not the author and not an op: a delete sent by hand is refused.
  await B.evaluate(async ({ room, seq }) => {
    const st = await import('/state.js');
    st.client.request({ type: 'delete', room, seq, ref: 'del:' + room + ':' + seq });
  }, { room: code, seq: Number(s) });
  await h.waitSystem(B, /Could not delete that message: You may not do that to this message/, 'the not_permitted refusal');
  for (const P of [A, B]) assert.equal((await shown(P))[s].deleted, false);
  for (const P of [A, B]) h.assertClean(P);
});
