'use strict';
// Search (issue 16) in the page: the search box in the room head (keyboard
// reachable), results newest first with the snippet's hits as <mark>
// elements (code-point offsets, emoji before the hit included), a hostile
// query shown as text, "More results" paging with `before`, a click on a
// result jumping to the message (loading older history) and highlighting
// it; edited and deleted messages as the contract says; screenshots.
//
// The DOM contract: #search-input and #search-form in #room-head;
// #search-panel with #search-summary, #search-results (li > button.result
// [data-seq] holding .snippet) and #search-more; #search-close.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const h = require('./helpers');
const { setup, env, newPage, wsIn, sayAll } = require('./live');

setup();

/** A page in a fresh room, and a ws client in it. */
async function room(tag, opts) {
  const nick = `sue${h.uniq(4)}`;
  const P = await newPage(`P ${nick}${tag}`, opts);
  const code = await h.createRoom(P, env.server.base, nick);
  const ws = await wsIn(code, `bot${h.uniq(4)}`);
  await h.waitMembers(P, ws.nick, true);
  return { P, nick, code, ws };
}

async function search(P, q) {
  await P.fill('#search-input', q);
  await P.press('#search-input', 'Enter');
  await h.waitVisible(P, '#search-panel', 'the search results panel');
}

/** The results shown: [{seq, text, marks: [marked texts]}]. */
async function results(P) {
  return P.evaluate(() => [...document.querySelectorAll('#search-results .result')].map((r) => ({
    seq: Number(r.dataset.seq),
    text: r.querySelector('.snippet').textContent,
    marks: [...r.querySelectorAll('.snippet mark')].map((m) => m.textContent),
    elements: [...r.querySelectorAll('.snippet *')].map((e) => e.tagName),
  })));
}

async function waitResults(P, n, what) {
  await h.waitIn(P, what || `${n} search results should show`, (n) =>
    document.querySelectorAll('#search-results .result').length === n && !document.querySelector('#search-summary').textContent.includes('Searching'), n, 15_000);
}

test('Q0. the page cuts a snippet at code-point offsets, never parsing it', { timeout: 60_000 }, async () => {
  const P = await newPage('unit');
  await h.gotoPage(P, env.server.base + '/');
  const out = await P.evaluate(async () => {
    const u = await import('/util.js');
    return [
      u.markSegments('🎉 café needle!', [[7, 13]]),
      u.markSegments('abc', [[0, 1], [1, 2], [5, 9], [2, 1]]),
      u.markSegments('<b>x</b>', [[3, 4]]),
      u.markSegments('', []),
    ];
  });
  assert.deepEqual(out[0], [{ text: '🎉 café ', mark: false }, { text: 'needle', mark: true }, { text: '!', mark: false }]);
  assert.deepEqual(out[1], [{ text: 'ab', mark: true }, { text: 'c', mark: false }]);
  assert.deepEqual(out[2], [{ text: '<b>', mark: false }, { text: 'x', mark: true }, { text: '</b>', mark: false }]);
  assert.deepEqual(out[3], [{ text: '', mark: false }]);
});

test('Q1. search: results newest first, hits as <mark> with the right text (emoji before them too), keyboard', { timeout: 90_000 }, async () => {
  const { P, code, ws } = await room(' Q1');
  const seqs = await sayAll(ws, code, [
    'the needle is in the haystack',
    'nothing to see here',
    '🎉🎉 café: another Needle here, needles everywhere',
    'no match',
  ]);
  // Keyboard: the search box is in the tab order of the room head.
  const reachable = await P.evaluate(() => {
    const i = document.querySelector('#search-input');
    return i.tabIndex >= 0 && !!i.offsetParent && !!i.closest('#room-head');
  });
  assert.ok(reachable, '#search-input is visible in #room-head and focusable');
  await P.focus('#search-input');
  await P.keyboard.type('needle');
  await P.keyboard.press('Enter');
  await h.waitVisible(P, '#search-panel', 'the results panel');
  await waitResults(P, 2);
  const r = await results(P);
  assert.deepEqual(r.map((x) => x.seq), [seqs[2], seqs[0]], 'newest first');
  for (const x of r) {
    assert.ok(x.marks.length >= 1, `result ${x.seq} has marks`);
    for (const m of x.marks) assert.match(m, /^needle/i, `a <mark> holds a hit: ${JSON.stringify(m)} in ${JSON.stringify(x.text)}`);
    assert.ok(x.elements.every((t) => t === 'MARK'), `only <mark> elements in a snippet: ${x.elements}`);
  }
  assert.ok(r[0].text.includes('🎉🎉 café'), 'the snippet keeps its emoji');
  assert.match(await P.locator('#search-summary').textContent(), /2 results/);
  // Tab from the box reaches the results; Escape closes the panel.
  await P.focus('#search-results .result');
  await P.keyboard.press('Escape');
  await h.waitIn(P, 'Escape should close the results, focus back on the box', () =>
    document.querySelector('#search-panel').hidden && document.activeElement === document.querySelector('#search-input'));
  h.assertClean(P);
});

test('Q2. a hostile query and hostile text show as text; nothing is found gives a clear line', { timeout: 90_000 }, async () => {
  const { P, code, ws } = await room(' Q2');
  const hostile = '"<img src=x onerror=window.__xss=1>';
  await sayAll(ws, code, ['look: <img src=x onerror=window.__xss=1> <b>bold</b> ok']);
  await search(P, hostile);
  await h.waitIn(P, 'the search should finish', () => !/Searching/.test(document.querySelector('#search-summary').textContent), null, 15_000);
  const s = await P.evaluate(() => ({
    summary: document.querySelector('#search-summary').textContent,
    imgs: document.querySelectorAll('#search-panel img, #search-panel b').length,
    xss: window.__xss,
  }));
  assert.ok(s.summary.includes(hostile), `the query is shown as typed: ${s.summary}`);
  assert.equal(s.imgs, 0, 'no element made from the query or the text');
  assert.equal(s.xss, undefined);
  await search(P, 'onerror');
  await waitResults(P, 1);
  const r = await results(P);
  assert.ok(r[0].text.includes('<img src=x'), `the snippet is text: ${r[0].text}`);
  assert.equal(await P.evaluate(() => document.querySelectorAll('#search-panel img').length), 0);
  await search(P, 'zzzzqqq');
  await h.waitIn(P, 'nothing found should say so', () => /Nothing in/.test(document.querySelector('#search-summary').textContent), null, 15_000);
  assert.equal(await P.evaluate(() => window.__xss), undefined);
  h.assertClean(P);
});

test('Q3. "More results" pages on with before; a click on a result jumps to the message, loading older history', { timeout: 90_000 }, async () => {
  const { P, code, ws } = await room(' Q3');
  const texts = Array.from({ length: 25 }, (_, i) => `pager number ${i + 1}`);
  const pages = await sayAll(ws, code, texts);
  await sayAll(ws, code, Array.from({ length: 60 }, (_, i) => `filler ${i + 1}`));
  // A fresh page holds the last 50: the pager messages are not on it.
  const other = `tom${h.uniq(4)}`;
  const T = await newPage(`T ${other} Q3`);
  await h.joinByCode(T, env.server.base, other, code);
  await h.waitMsg(T, ws.nick, 'filler 60');
  assert.equal(await T.evaluate((s) => !!document.querySelector(`#messages .msg[data-seq="${s}"]`), pages[0]), false);
  await search(T, 'pager');
  await waitResults(T, 20, '20 results first');
  await h.waitVisible(T, '#search-more', 'More results');
  await T.click('#search-more');
  await waitResults(T, 25, 'then 25 in all');
  const r = await results(T);
  assert.deepEqual(r.map((x) => x.seq), [...pages].reverse(), 'all 25, newest first, each once');
  assert.equal(await T.locator('#search-more').isVisible(), false, 'no more after the last page');
  // The oldest result: a click brings it onto the page, in view, highlighted.
  await T.click(`#search-results .result[data-seq="${pages[0]}"]`);
  await h.waitIn(T, 'the oldest result should be on the page, in view and highlighted', (s) => {
    const m = document.querySelector(`#messages .msg[data-seq="${s}"]`);
    if (!m || !m.classList.contains('flash')) return false;
    const r = m.getBoundingClientRect();
    const box = document.querySelector('#messages').getBoundingClientRect();
    return r.top >= box.top - 1 && r.bottom <= box.bottom + 1;
  }, pages[0], 20_000);
  const seqs = await T.evaluate(() => [...document.querySelectorAll('#messages .msg[data-seq]')].map((m) => Number(m.dataset.seq)));
  assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), 'in seq order');
  assert.equal(new Set(seqs).size, seqs.length, 'each seq once');
  for (const p of [P, T]) h.assertClean(p);
});

test('Q4. edited messages are found by their latest text, deleted ones never', { timeout: 90_000 }, async () => {
  const { P, code, ws } = await room(' Q4');
  const [s1, s2] = await sayAll(ws, code, ['a giraffe walks', 'an elephant sits']);
  const e = await ws.ask({ type: 'edit', room: code, seq: s1, text: 'a zebra walks' });
  assert.equal(e.type, 'edit', `edit: ${JSON.stringify(e)}`);
  const d = await ws.ask({ type: 'delete', room: code, seq: s2 });
  assert.equal(d.type, 'delete', `delete: ${JSON.stringify(d)}`);
  await search(P, 'zebra');
  await waitResults(P, 1);
  assert.equal((await results(P))[0].seq, s1);
  await search(P, 'giraffe');
  await h.waitIn(P, 'the old text is not found', () => /Nothing in/.test(document.querySelector('#search-summary').textContent), null, 15_000);
  await search(P, 'elephant');
  await h.waitIn(P, 'a deleted message is not found', () => /Nothing in/.test(document.querySelector('#search-summary').textContent), null, 15_000);
  h.assertClean(P);
});

for (const v of [
  { tag: '1280x800', opts: { viewport: { width: 1280, height: 800 } } },
  { tag: '390x844', opts: { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1 } },
]) {
  test(`Q5. search screenshots at ${v.tag}`, { timeout: 90_000 }, async () => {
    const { P, code, ws } = await room(` ${v.tag}`, v.opts);
    await sayAll(ws, code, [
      'Deploy checklist: run the migrations before the release',
      'Who owns the release notes this week?',
      'Release candidate 2 is up: https://example.com/rc2 (🎉 finally)',
      'lunch?',
    ]);
    await search(P, 'release');
    await waitResults(P, 3);
    await h.assertNoSideways(P, 'the search panel');
    await P.screenshot({ path: path.join(h.SCREENSHOTS, `search-${v.tag}.png`) });
    h.assertClean(P);
  });
}
