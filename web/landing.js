// landing.js: the start page (set a name, create a room, join one by code
// or from the list of open rooms) and the name prompt a share link (/#CODE)
// opens. view.js draws them; this module handles their forms and buttons.
//
// And who you are beyond a name: the account dialog (the top bar's
// button), to log in, sign up (your name becomes an account), log out or
// change the password. chat.js sends the requests and hands the answers
// back here (accountDone, accountError).

import { S, client } from './state.js';
import { ui } from './dom.js';
import { NICK_RE, cleanRoom, passwordProblem } from './util.js';
import {
  activate, showLanding, setHash, showLandingError, clearLandingError, fetchRooms,
  clearPromptError, showPromptError, renderAccount,
} from './view.js';
import { applyName, joinRoom, createRoom, finishPrompt, login, signUp, logout, changePassword } from './chat.js';
import { showDialog, hideDialog } from './roombar.js';

// ---------------------------------------------------------------- account

const BUSY = { login: 'Logging in…', signup: 'Signing up…', logout: 'Logging out…', password: 'Changing…' };
const IDLE = { login: 'Log in', signup: 'Sign up', logout: 'Log out', password: 'Change password' };

// The button of a request on its way says so, and cannot be pressed again.
function setBusy(what) {
  const busyButton = { login: ui.loginBtn, signup: ui.signupBtn, logout: ui.logoutBtn, password: ui.pwBtn };
  for (const k of Object.keys(busyButton)) {
    busyButton[k].disabled = k === what;
    busyButton[k].textContent = k === what ? BUSY[k] : IDLE[k];
  }
}

function setMode(mode) {
  const signup = mode === 'signup';
  ui.loginForm.hidden = signup;
  ui.signupForm.hidden = !signup;
  ui.showLogin.setAttribute('aria-pressed', signup ? 'false' : 'true');
  ui.showSignup.setAttribute('aria-pressed', signup ? 'true' : 'false');
}

function focusMode(mode) {
  if (mode === 'signup') {
    if (ui.signupNick.value) ui.signupPassword.focus();
    else ui.signupNick.focus();
  } else if (ui.loginNick.value) ui.loginPassword.focus();
  else ui.loginNick.focus();
}

// Opens the account dialog: for a guest on Log in (or `mode`), with the
// names filled in; for an account, its own face (log out, password).
export function openAccount(mode) {
  ui.accountError.textContent = '';
  ui.accountNote.textContent = '';
  setBusy('');
  renderAccount();
  if (!S.account) {
    if (!ui.loginNick.value) ui.loginNick.value = S.loginName || '';
    // Signing up makes the current name an account: offered unless it is a
    // generated one (quiet-heron-42), which hardly anyone wants to keep.
    ui.signupNick.value = /^[a-z]+-[a-z]+-\d+$/.test(S.nick) ? '' : S.nick;
    const m = mode || 'login';
    setMode(m);
    showDialog(ui.accountDialog);
    focusMode(m);
  } else {
    showDialog(ui.accountDialog);
    ui.logoutBtn.focus();
  }
}

export const accountShown = () => ui.accountDialog.open;

export function accountError(text) {
  setBusy('');
  ui.accountNote.textContent = '';
  ui.accountError.textContent = text;
}

// Logged in, signed up, out, or the password changed: the dialog closes
// (or, for a password change, stays to say so).
export function accountDone(text, stay) {
  setBusy('');
  ui.loginPassword.value = '';
  ui.signupPassword.value = '';
  ui.signupPassword2.value = '';
  ui.pwOld.value = '';
  ui.pwNew.value = '';
  ui.accountError.textContent = '';
  if (stay && accountShown()) ui.accountNote.textContent = text;
  else closeAccount();
}

export function closeAccount() {
  hideDialog(ui.accountDialog);
}

function wireAccount() {
  ui.accountBtn.addEventListener('click', () => openAccount());
  ui.promptLogin.addEventListener('click', () => openAccount('login'));
  ui.accountClose.addEventListener('click', closeAccount);
  ui.accountDialog.addEventListener('close', () => {
    ui.accountError.textContent = '';
    if (S.prompt) ui.promptName.focus();
    else ui.accountBtn.focus();
  });
  ui.showLogin.addEventListener('click', () => {
    ui.accountError.textContent = '';
    setMode('login');
    focusMode('login');
  });
  ui.showSignup.addEventListener('click', () => {
    ui.accountError.textContent = '';
    setMode('signup');
    focusMode('signup');
  });

  ui.loginForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const nick = ui.loginNick.value.trim();
    const pw = ui.loginPassword.value;
    if (!NICK_RE.test(nick)) return fieldError(ui.loginNick, 'Type the name of your account.');
    if (!pw) return fieldError(ui.loginPassword, 'Type your password.');
    ui.accountError.textContent = '';
    setBusy('login');
    login(nick, pw);
  });

  ui.signupForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const nick = ui.signupNick.value.trim();
    const pw = ui.signupPassword.value;
    if (!NICK_RE.test(nick)) return fieldError(ui.signupNick, 'A name is 1–24 letters, digits, _ or -, starting with a letter.');
    const bad = passwordProblem(pw);
    if (bad) return fieldError(ui.signupPassword, bad);
    if (pw !== ui.signupPassword2.value) return fieldError(ui.signupPassword2, 'The two passwords differ: type the same one twice.');
    ui.accountError.textContent = '';
    setBusy('signup');
    signUp(nick, pw);
  });

  ui.logoutBtn.addEventListener('click', () => {
    setBusy('logout');
    logout();
  });

  ui.passwordForm.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!ui.pwOld.value) return fieldError(ui.pwOld, 'Type your current password.');
    const bad = passwordProblem(ui.pwNew.value);
    if (bad) return fieldError(ui.pwNew, bad);
    ui.accountError.textContent = '';
    ui.accountNote.textContent = '';
    setBusy('password');
    changePassword(ui.pwOld.value, ui.pwNew.value);
  });

  for (const f of [ui.loginNick, ui.loginPassword, ui.signupNick, ui.signupPassword, ui.signupPassword2, ui.pwOld, ui.pwNew]) {
    f.addEventListener('input', () => f.removeAttribute('aria-invalid'));
  }
}

function fieldError(field, text) {
  accountError(text);
  field.setAttribute('aria-invalid', 'true');
  field.focus();
}

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
  wireAccount();
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
    // (Escape in an open dialog closes the dialog only.)
    if (e.key === 'Escape' && S.landingOpen && S.active && !document.querySelector('dialog[open]')) activate(S.active);
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
