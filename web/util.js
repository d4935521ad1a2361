// util.js: small pure helpers the page's modules share: what a name, a room
// or a token looks like, comparing and sorting nicks, a nick's colour, sizes
// and message ids.
//
// No DOM and no `window`: it also runs under Node (tests/web).

export const NICK_RE = /^[A-Za-z][A-Za-z0-9_-]{0,23}$/;
export const ROOM_RE = /^[A-Za-z0-9_-]{1,32}$/;
export const MEDIA_RE = /^\/media\/[A-Za-z0-9_-]{1,128}$/;
export const TOKEN_RE = /^[A-Za-z0-9_-]{8,256}$/; // a session's resume token
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
