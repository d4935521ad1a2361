// state.js: what the page knows, shared by its modules, and the browser's
// side of the two pure modules: the connection (protocol.js's Client, on a
// real WebSocket and real timers) and storage (session.js's SessionStore,
// on sessionStorage and localStorage).

import { Client } from './protocol.js';
import { SessionStore } from './session.js';

export const S = {
  state: 'connecting', // what the status line shows
  nick: '',
  wantNick: '', // the nick to get back after a reconnect without resume
  pendingNick: null,
  shownName: '', // what the page last put in the name field
  storeId: '',
  limits: { max_message: 4000, max_ws_message: 2097152, max_image: 1048576, history: 50 },
  rooms: new Map(), // room name -> tab
  dms: new Map(), // lowercase nick -> tab
  order: [], // tabs in display order
  active: null,
  lastTyping: 0,
  notify: false,
  preview: null,
  stick: true, // the message list follows new messages
  landingOpen: true,
  notice: '', // an error to show in the next room opened from the landing
  prompt: '', // the room a share link asks to join, while the page asks for a name
  promptShown: '', // what the page last put in the prompt's name field
  promptJoin: null, // {room, nick}: join once the server has confirmed this nick
  restore: null, // {rooms, active}: what to rejoin if the session cannot be resumed
  resumeActive: '', // after a resume, the room to show when the server sends it
  account: null, // the account this page is logged in as (null: a guest)
  loginName: '', // the account of the stored login (its nick is not asked back as a guest's)
  signup: null, // {nick, password}: sign up once the server has confirmed this nick
  menuFor: '', // the member (lowercase nick) whose moderation menu is open
  settingsFor: null, // the room tab whose settings dialog is open
};

export const client = new Client({
  open: (url) => new WebSocket(url),
  url: () => (location.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + location.host + '/ws',
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id),
  now: () => Date.now(),
  random: () => Math.random(),
  online: () => navigator.onLine !== false,
});

export const store = new SessionStore({
  session: () => sessionStorage,
  local: () => localStorage,
  now: () => Date.now(),
});

export function currentRoom() {
  return S.active && S.active.kind === 'room' ? S.active.name : '';
}

// This tab's nick, rooms and session, for a reload (session.js).
// The rooms this tab is in, less those it has asked to leave (a tab closed
// right after Leave must not hand the next tab the room it left).
export function keptRooms() {
  return Array.from(S.rooms.values()).filter((t) => !t.leaving).map((t) => t.name);
}

export function saveState() {
  const rooms = keptRooms();
  store.save({
    nick: S.wantNick || S.nick,
    rooms,
    active: currentRoom(),
    session: rooms.length ? client.session : '',
  });
}
