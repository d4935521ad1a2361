// natter page script: the entry module (index.html loads it with
// <script type="module">). Plain JavaScript modules, no build step, no
// dependencies; the server serves each file as it is (route.rs's ASSETS).
//
// The modules, from the bottom up:
//   util.js      names, nick colours, sizes, ids                     (pure)
//   protocol.js  the WebSocket: reconnect, resume, probe, outbox     (pure)
//   room.js      a room's messages by seq, members, typing           (pure)
//   session.js   storage: this tab's state, sessions to resume       (pure)
//   dom.js       the page's elements and element helpers
//   state.js     the shared state; the pure modules bound to the browser
//   view.js      everything drawn: tabs, messages, members, panes
//   toolbar.js   a message's actions: react, reply, edit, delete
//   chat.js      the server's messages, and join/create/nick/quit
//   composer.js  the message box and its /commands
//   images.js    picking, previewing and sending an image
//   landing.js   the start page and a share link's name prompt
//   roombar.js   the buttons above the messages
//   search.js    a room's search box and its results
//   app.js       this file: browser events, the 1 s tick, start-up
// The pure ones touch no DOM and no `window` and are unit-tested under Node
// (tests/web, `make web-unit`); the page as a whole is tested in Chromium
// (tests/browser).
//
// The modules call each other's functions freely (view.js and chat.js, for
// instance). No module does anything when it is loaded: each one's wiring
// is a function that start() below calls, so the order is all here.

import { S, client, store, saveState, currentRoom, keptRooms } from './state.js';
import { LOGIN_KEY } from './session.js';
import { ui } from './dom.js';
import { ROOM_RE, cleanRoom } from './util.js';
import { handle, onDropped, joinRoom } from './chat.js';
import {
  refreshState, markRead, renderTyping, renderMembers, renderRoomBar, renderNotify, fetchRooms,
  showPrompt, wireView, renderAccount, renderRoomNotice,
} from './view.js';
import { wireMessages } from './toolbar.js';
import { wireComposer } from './composer.js';
import { wireImages } from './images.js';
import { wireLanding } from './landing.js';
import { wireRoomBar } from './roombar.js';
import { wireSearch } from './search.js';


// The room a share link names (/#ROOM), or ''.
function hashRoom() {
  let h = location.hash.replace(/^#/, '');
  try {
    h = decodeURIComponent(h);
  } catch (e) {
    return '';
  }
  h = cleanRoom(h);
  return ROOM_RE.test(h) ? h : '';
}

function wirePage() {
  // Leaving the page (a reload, a closed tab): nothing is sent, so the room
  // sees nothing. The browser closes the socket with 1001 and the server
  // holds the session for its grace; this tab (sessionStorage) or the next
  // one opened (localStorage) resumes it. A page in no room has nothing to
  // hold: it ends its session now, so that its name is free at once.
  window.addEventListener('pagehide', () => {
    store.markLive(false, client.session);
    const rooms = keptRooms();
    if (client.session && rooms.length) {
      saveState();
      store.release({ session: client.session, nick: S.nick, rooms, active: currentRoom() });
      return;
    }
    client.hangUp();
  });

  // Back from the back/forward cache: take the session back (unless another
  // tab has claimed it meanwhile) and reconnect.
  window.addEventListener('pageshow', (e) => {
    if (!e.persisted) return;
    if (client.session && (!store.unrelease(client.session) || store.isLive(client.session))) client.session = '';
    store.markLive(true, client.session);
    if (!client.ws || client.ws.readyState > WebSocket.OPEN) client.reconnectNow();
  });

  window.addEventListener('hashchange', () => {
    const room = hashRoom();
    if (room && S.prompt) showPrompt(room);
    else if (room) joinRoom(room);
  });

  // Another tab logged in or out: this one's next connection uses what is
  // stored now.
  window.addEventListener('storage', (e) => {
    if (e.key === LOGIN_KEY || e.key === null) client.token = store.loginToken();
  });

  window.addEventListener('online', () => {
    refreshState();
    client.networkBack();
  });
  window.addEventListener('offline', refreshState);
  ui.retry.addEventListener('click', () => client.reconnectNow());

  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && S.active) markRead(S.active);
    // Waking up from the background: check the connection at once.
    if (!document.hidden) client.wake();
  });
  window.addEventListener('focus', () => {
    if (S.active) markRead(S.active);
  });

  setInterval(() => {
    if (client.session && Date.now() - store.liveAt > 2000) store.markLive(true, client.session);
    client.probe();
    renderTyping();
    renderRoomNotice(); // a mute that ends
    if (S.landingOpen && client.ready() && Date.now() - client.lastFrame > 15000) client.send({ type: 'rooms', ref: 'landing' });
  }, 1000);

  // The read-only view the browser tests use.
  const debug = Object.freeze({
    get nick() { return S.nick; },
    get session() { return client.session; },
    get rooms() { return Array.from(S.rooms.keys()); },
    get state() { return S.state; },
    get account() { return S.account; },
  });
  Object.defineProperty(window, 'natter', { value: debug, writable: false, configurable: false, enumerable: true });
}

function start() {
  client.onmessage = handle;
  client.ondrop = onDropped;
  client.onchange = refreshState;
  wireView();
  wireImages();
  wireComposer();
  wireLanding();
  wireRoomBar();
  wireSearch();
  wireMessages();
  wirePage();

  try {
    S.notify = store.notifyOn() && 'Notification' in window && Notification.permission === 'granted';
  } catch (e) {
    S.notify = false;
  }
  renderNotify();
  renderAccount();
  renderMembers();
  renderRoomBar();
  refreshState();
  fetchRooms();

  // After a reload, or in a new tab within the grace: the same session,
  // name and rooms again (session.js).
  const fromHash = hashRoom();
  const back = store.startup(fromHash);
  if (back.session) client.session = back.session;
  S.wantNick = back.nick;
  if (S.wantNick) {
    ui.name.value = S.wantNick;
    S.shownName = S.wantNick;
  }
  S.restore = back.restore;
  // The remembered login: every connection logs in with it (protocol.js).
  const login = store.login();
  if (login) {
    client.token = login.token;
    S.loginName = login.account;
    // The name is the account's from the start: a name typed before the
    // server answers would only be replaced. If the login is refused, the
    // guest welcome makes the field editable again (renderAccount).
    ui.name.value = login.account;
    S.shownName = login.account;
    ui.name.readOnly = true;
    ui.nameBtn.disabled = true;
  }
  if (fromHash && back.restore) joinRoom(fromHash); // back in: no need to ask
  else if (fromHash) showPrompt(fromHash);
  client.connect();
}

start();
