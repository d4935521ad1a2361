// landing.js: the start page (set a name, create a room, join one by code
// or from the list of open rooms) and the name prompt a share link (/#CODE)
// opens. view.js draws them; this module handles their forms and buttons.

import { S, client } from './state.js';
import { ui } from './dom.js';
import { NICK_RE, cleanRoom } from './util.js';
import {
  activate, showLanding, setHash, showLandingError, clearLandingError, fetchRooms,
  clearPromptError, showPromptError,
} from './view.js';
import { applyName, joinRoom, createRoom, finishPrompt } from './chat.js';

// The prompt's Join: ask for the name typed (unless it is ours already),
// and join once the server has confirmed it (chat.js's onNick calls
// finishPrompt): the room never sees a generated name come and go.
function submitPrompt() {
  const room = S.prompt;
  if (!room || S.promptJoin) return;
  clearPromptError();
  const name = ui.promptName.value.trim();
  if (!NICK_RE.test(name)) {
    let why = 'A name has only letters, digits, _ and -.';
    if (!name) why = 'Type a name to join with.';
    else if (!/^[A-Za-z]/.test(name)) why = 'A name starts with a letter.';
    else if (name.length > 24) why = 'A name is at most 24 characters.';
    showPromptError(why);
    ui.promptName.focus();
    return;
  }
  S.promptJoin = { room, nick: name };
  ui.promptJoin.disabled = true;
  ui.promptJoin.textContent = 'Joining…';
  if (name === S.nick && !S.pendingNick) finishPrompt();
  else if (name !== S.pendingNick) {
    S.pendingNick = name;
    S.wantNick = name;
    client.request({ type: 'nick', nick: name, ref: 'nick:' + name });
  } // else: that very name is on its way; onNick finishes
}

export function wireLanding() {
  ui.nameForm.addEventListener('submit', (e) => {
    e.preventDefault();
    applyName();
  });
  ui.name.addEventListener('change', () => applyName());
  ui.create.addEventListener('click', () => {
    clearLandingError();
    if (applyName()) createRoom();
  });
  ui.joinForm.addEventListener('submit', (e) => {
    e.preventDefault();
    clearLandingError();
    const room = cleanRoom(ui.joinCode.value);
    if (!room) {
      showLandingError('Type a room code or name to join.');
      ui.joinCode.focus();
      return;
    }
    if (applyName()) {
      joinRoom(room);
      ui.joinCode.value = '';
    }
  });
  // An open room's button (view.js's renderOpenRooms): join it.
  ui.openRooms.addEventListener('click', (e) => {
    const b = e.target.closest('.room-btn');
    if (!b) return;
    applyName();
    joinRoom(b.parentNode.dataset.room);
  });
  ui.refreshRooms.addEventListener('click', () => {
    if (client.ready()) client.send({ type: 'rooms', ref: 'landing' });
    else fetchRooms();
  });
  ui.backToChat.addEventListener('click', () => {
    if (S.active) activate(S.active);
  });
  ui.newTab.addEventListener('click', () => {
    showLanding();
    ui.joinCode.focus();
  });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && S.landingOpen && S.active) activate(S.active);
  });

  ui.promptForm.addEventListener('submit', (e) => {
    e.preventDefault();
    submitPrompt();
  });
  ui.promptName.addEventListener('input', () => {
    if (ui.promptError.textContent) {
      clearPromptError();
      ui.promptName.removeAttribute('aria-invalid');
    }
  });
  ui.promptCancel.addEventListener('click', () => {
    setHash('');
    showLanding();
    ui.name.focus();
  });
}
