// search.js: the search box in a room's head and its results panel.
//
// A search goes to the server ({"type":"search","q","room","limit":20});
// its answer lists the messages found, newest first, each with a `snippet`
// (plain text around the first hits) and `marks` (code-point offsets of
// the hits in it). The snippet is cut into text nodes and <mark> elements
// (util.js's markSegments): nothing the server sends is parsed as HTML.
// "More results" asks for the next page, before the last result's seq.
// A result is a button: it jumps to the message in the room (view.js
// loads older history until it is there) and highlights it.
//
// Each room tab keeps its own search (`search`: the query, the results,
// whether there are more); switching tabs shows that tab's (view.js's
// activate calls renderSearch). chat.js hands the server's answers to
// onSearch and searchError.

import { S, client } from './state.js';
import { ui, el, timeEl } from './dom.js';
import { nickClass, markSegments, errorText } from './util.js';
import { jumpTo } from './view.js';

export const SEARCH_PAGE = 20;

function send(t, before) {
  const req = { type: 'search', q: t.search.q, room: t.name, limit: SEARCH_PAGE, ref: (before ? 'srm:' : 'sr:') + t.name };
  if (before) req.before = before;
  t.search.loading = true;
  t.search.error = '';
  client.request(req);
}

export function startSearch(q) {
  const t = S.active;
  if (!t || t.kind !== 'room' || t.gone) return;
  q = q.trim();
  if (!q) {
    closeSearch(false);
    return;
  }
  t.search = { q, results: [], seen: new Set(), done: false, loading: true, error: '' };
  send(t, 0);
  renderSearch();
}

function more() {
  const t = S.active;
  const s = t && t.search;
  if (!s || s.loading || s.done || !s.results.length) return;
  send(t, s.results[s.results.length - 1].seq);
  renderSearch();
}

export function closeSearch(focus = true) {
  const t = S.active;
  if (t && t.search) t.search = null;
  renderSearch();
  if (focus) ui.searchInput.focus();
}

// The server's answer: {type:"search", q, room, results:[MESSAGE...]}.
export function onSearch(m) {
  const ref = typeof m.ref === 'string' ? m.ref : '';
  const name = typeof m.room === 'string' ? m.room : ref.replace(/^srm?:/, '');
  const t = S.rooms.get(name);
  const s = t && t.search;
  if (!s || (typeof m.q === 'string' && m.q !== s.q)) return; // an older search's answer
  const list = Array.isArray(m.results) ? m.results.filter((r) => r && typeof r.seq === 'number') : [];
  for (const r of list) {
    if (s.seen.has(r.seq)) continue;
    s.seen.add(r.seq);
    s.results.push(r);
  }
  s.loading = false;
  s.done = list.length < SEARCH_PAGE;
  if (t === S.active) renderSearch();
}

// A search refused (ref sr:ROOM or srm:ROOM).
export function searchError(ref, m) {
  const t = S.rooms.get(ref.replace(/^srm?:/, ''));
  if (!t || !t.search) return;
  t.search.loading = false;
  t.search.error = errorText(m);
  if (t === S.active) renderSearch();
}

// The snippet with its hits marked: text nodes and <mark>s.
export function snippetEl(r) {
  const box = el('span', 'snippet');
  const text = typeof r.snippet === 'string' ? r.snippet : typeof r.text === 'string' ? r.text : '';
  const marks = typeof r.snippet === 'string' ? r.marks : [];
  for (const part of markSegments(text, marks)) {
    box.appendChild(part.mark ? el('mark', null, part.text) : document.createTextNode(part.text));
  }
  return box;
}

function resultEl(t, r) {
  const li = el('li');
  const b = el('button', 'result');
  b.type = 'button';
  b.dataset.seq = String(r.seq);
  const meta = el('span', 'result-meta');
  const from = typeof r.from === 'string' ? r.from : '?';
  meta.append(el('span', 'nick ' + nickClass(from), from), ' ', timeEl(r.ts));
  b.append(meta, snippetEl(r));
  b.addEventListener('click', () => {
    if (window.matchMedia('(max-width: 720px)').matches) {
      t.search = null;
      renderSearch();
    }
    jumpTo(t, r.seq);
  });
  li.appendChild(b);
  return li;
}

// The active tab's search, drawn (results are added, not redrawn, while
// the same search pages on).
export function renderSearch() {
  const t = S.active;
  const s = t && t.kind === 'room' && !t.gone ? t.search : null;
  ui.searchPanel.hidden = !s;
  const key = s ? t.key + '\n' + s.q : '';
  if (ui.searchResults.dataset.key !== key) {
    ui.searchResults.textContent = '';
    ui.searchResults.dataset.key = key;
    if (document.activeElement !== ui.searchInput) ui.searchInput.value = s ? s.q : '';
  }
  if (!s) return;
  const shown = ui.searchResults.children.length;
  const moreHadFocus = document.activeElement === ui.searchMore;
  for (const r of s.results.slice(shown)) ui.searchResults.appendChild(resultEl(t, r));
  const n = s.results.length;
  const quoted = '“' + s.q + '”';
  let said;
  if (s.error) said = 'Search failed: ' + s.error;
  else if (s.loading && !n) said = 'Searching #' + t.name + ' for ' + quoted + '…';
  else if (!n) said = 'Nothing in #' + t.name + ' matches ' + quoted + '.';
  else said = n + (s.done ? '' : '+') + (n === 1 ? ' result' : ' results') + ' for ' + quoted + ' in #' + t.name + ', newest first';
  ui.searchSummary.textContent = said;
  ui.searchPanel.classList.toggle('failed', !!s.error);
  ui.searchMore.hidden = s.done || !n || !!s.error;
  ui.searchMore.disabled = s.loading;
  ui.searchMore.textContent = s.loading && n ? 'Loading…' : 'More results';
  if (moreHadFocus && n > shown) {
    const first = ui.searchResults.children[shown] && ui.searchResults.children[shown].querySelector('button');
    if (first) first.focus();
  }
}

export function wireSearch() {
  ui.searchForm.addEventListener('submit', (e) => {
    e.preventDefault();
    startSearch(ui.searchInput.value);
  });
  ui.searchInput.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && S.active && S.active.search) {
      e.preventDefault();
      ui.searchInput.value = '';
      closeSearch(true);
    }
  });
  ui.searchClose.addEventListener('click', () => closeSearch(true));
  ui.searchMore.addEventListener('click', more);
  ui.searchPanel.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      closeSearch(true);
    }
  });
}
