// util.js: small pure helpers the page's modules share: what a name, a room
// or a token looks like, comparing and sorting nicks, a nick's colour, sizes
// and message ids.
//
// No DOM and no `window`: it also runs under Node (tests/web).

export const NICK_RE = /^[A-Za-z][A-Za-z0-9_-]{0,23}$/;
export const ROOM_RE = /^[A-Za-z0-9_-]{1,32}$/;
export const MEDIA_RE = /^\/media\/[A-Za-z0-9_-]{1,128}$/;
export const TOKEN_RE = /^[A-Za-z0-9_-]{8,256}$/; // a session's resume token
export const LOGIN_TOKEN_RE = /^[A-Za-z0-9_.~+/=-]{16,512}$/; // a login token
export const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];

const PALETTE = 12; // style.css has nick colours .nc0 to .nc11

// Nicks are compared without regard to case, as the server does.
export const sameNick = (a, b) => typeof a === 'string' && typeof b === 'string' && a.toLowerCase() === b.toLowerCase();

export const sortNicks = (list) => (Array.isArray(list) ? list.filter((n) => typeof n === 'string') : [])
  .sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));

export function nickClass(nick) {
  // FNV-1a over the lowercase nick: the same colour everywhere, every time.
  let h = 0x811c9dc5;
  const s = String(nick).toLowerCase();
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return 'nc' + (h % PALETTE);
}

// A client message id (`cid`): the server echoes it with the stored message,
// which is how the page recognises its own messages (protocol.js's outbox).
export function newCid() {
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

export function fmtSize(n) {
  if (n < 1024) return n + ' B';
  if (n < 1024 * 1024) return Math.round(n / 1024) + ' KiB';
  return (n / 1024 / 1024).toFixed(2).replace(/\.?0+$/, '') + ' MiB';
}

// The server's limits count UTF-8 bytes, not characters.
export const byteLength = (s) => new TextEncoder().encode(s).length;

// A room as typed: trimmed, without a leading '#'.
export function cleanRoom(s) {
  let r = String(s || '').trim();
  if (r.startsWith('#')) r = r.slice(1);
  return r;
}

// ------------------------------------------------------------- accounts

// Passwords are 8 to 128 bytes (UTF-8), as the server counts them. Returns
// what is wrong with one, or '' if nothing is.
export function passwordProblem(pw) {
  const n = byteLength(String(pw || ''));
  if (n < 8) return 'A password is at least 8 characters.';
  if (n > 128) return 'A password is at most 128 bytes.';
  return '';
}

// "5 minutes", "1 hour", "90 seconds", "2 days".
export function fmtDuration(secs) {
  const s = Math.max(0, Math.round(Number(secs) || 0));
  const unit = (n, w) => n + ' ' + w + (n === 1 ? '' : 's');
  if (s >= 86400 && s % 86400 === 0) return unit(s / 86400, 'day');
  if (s >= 3600 && s % 3600 === 0) return unit(s / 3600, 'hour');
  if (s >= 60 && s % 60 === 0) return unit(s / 60, 'minute');
  return unit(s, 'second');
}

// What the page says for an error the server sent ({code, message}).
// `context` names what was asked: 'login', 'register', 'password', 'join',
// 'send', 'mod' or ''; a few codes read differently there. Codes the page
// does not know keep the server's own words, with the code.
const ERROR_TEXT = {
  nick_registered: 'That name belongs to an account: log in to use it, or pick another name.',
  login_failed: 'Wrong name or password.',
  login_required: 'This server is for members only: log in or sign up first.',
  insecure: 'Passwords are only accepted over an encrypted (https) connection to this server.',
  not_permitted: 'You are not allowed to do that.',
  banned: 'You are banned from that room.',
  muted: 'You are muted in this room.',
  invite_only: 'That room is invite-only: ask one of its ops to invite you.',
  rate_limited: 'Too many attempts: wait a minute, then try again.',
  no_such_message: 'That message is not there any more (it was deleted, or is not in this room).',
  edit_window: 'That message is too old to edit now.',
};

export function errorText(m, context = '') {
  const code = m && typeof m.code === 'string' ? m.code : '';
  const said = m && typeof m.message === 'string' ? m.message.trim() : '';
  if (code === 'not_permitted' && context === 'register') return 'Sign-up is closed on this server: ask its operator for an account.';
  if (code === 'not_permitted' && context === 'message') return 'You may not do that to this message.';
  if (code === 'not_permitted' && context === 'mod') return 'You are not allowed to do that in this room' + (said ? ' (' + said + ').' : '.');
  // The server says until when: its words, if they say it.
  if (code === 'muted' && said) return /mute/i.test(said) ? said[0].toUpperCase() + said.slice(1) : 'You are muted: ' + said;
  if (ERROR_TEXT[code]) return ERROR_TEXT[code];
  return (said || 'something went wrong') + (code ? ' (' + code + ')' : '');
}

// ---------------------------------------------------------------- search

// A search result's snippet cut at its hits: `marks` are [from, to] pairs
// of code-point offsets (not UTF-16 units: an emoji is one code point and
// two units). Returns [{text, mark}] in order, for the page to make text
// nodes and <mark> elements of; the snippet is never parsed as HTML.
// Marks out of range are clipped, overlapping ones joined.
export function markSegments(snippet, marks) {
  const cps = Array.from(String(snippet == null ? '' : snippet));
  const n = cps.length;
  const spans = (Array.isArray(marks) ? marks : [])
    .filter((p) => Array.isArray(p) && Number.isInteger(p[0]) && Number.isInteger(p[1]))
    .map(([a, b]) => [Math.max(0, Math.min(n, a)), Math.max(0, Math.min(n, b))])
    .filter(([a, b]) => b > a)
    .sort((x, y) => x[0] - y[0]);
  const joined = [];
  for (const [a, b] of spans) {
    const last = joined[joined.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else joined.push([a, b]);
  }
  const out = [];
  let at = 0;
  for (const [a, b] of joined) {
    if (a > at) out.push({ text: cps.slice(at, a).join(''), mark: false });
    out.push({ text: cps.slice(a, b).join(''), mark: true });
    at = b;
  }
  if (at < n || !out.length) out.push({ text: cps.slice(at).join(''), mark: false });
  return out;
}
