// roombar.js: the buttons above the messages: copy the room's code or
// link, desktop notifications on or off, the members panel (a drawer on a
// phone), and Leave (a room) or Close (a direct conversation). view.js's
// renderRoomBar draws the bar for the active tab.
//
// And what an op does from there: the member menu's actions (view.js draws
// the menu; kick and ban ask for a reason first, in a dialog), the room's
// settings dialog (topic, invite-only, invite by name, the ban list with
// Unban), and the buttons of a room you were kicked from (join again,
// close). Guests and members never see any of it: view.js shows Settings
// and the menus only for a room's owner and ops. The search box in the
// room's head is search.js's.

import { S, client, store } from './state.js';
import { ui, el, timeEl } from './dom.js';
import { NICK_RE } from './util.js';
import { canModerate } from './room.js';
import { removeTab, systemLine, closeMembersOnPhone, renderNotify } from './view.js';
import { sendMod, askBans, joinRoom } from './chat.js';

// A modal dialog (the browser keeps the focus inside it; Escape closes it).
export function showDialog(d) {
  if (d.open) return;
  if (typeof d.showModal === 'function') d.showModal();
  else d.setAttribute('open', '');
}

export function hideDialog(d) {
  if (!d.open) return;
  if (typeof d.close === 'function') d.close();
  else d.removeAttribute('open');
}

// ------------------------------------------------------------ member menu

let reasonFor = null; // {room, nick, action}: the kick or ban the reason dialog is for

// An item of a member's menu (room.js's memberActions): sent at once, or
// (kick, ban) after the reason dialog.
export function memberAction(room, nick, a) {
  if (!room || room.gone) return;
  if (a.ask) {
    askReason(room, nick, a.action);
    return;
  }
  const fields = { nick };
  if (a.action === 'mute' && a.secs) fields.secs = a.secs;
  sendMod(room.name, a.action, fields);
}

function askReason(room, nick, action) {
  reasonFor = { room, nick, action };
  const verb = action === 'ban' ? 'Ban' : 'Kick';
  ui.reasonTitle.textContent = verb + ' ' + nick + '?';
  ui.reasonHint.textContent = action === 'ban'
    ? nick + ' leaves #' + room.name + ' and cannot join it again until an op unbans them.'
    : nick + ' leaves #' + room.name + ' and may join it again.';
  ui.reasonOk.textContent = verb;
  ui.reasonInput.value = '';
  showDialog(ui.reasonDialog);
  ui.reasonInput.focus();
}

// After the dialog: the focus goes back to the member's menu button, or
// to the message box.
function focusAfterReason(nick) {
  const li = [...ui.members.children].find((x) => x.dataset.nick && x.dataset.nick.toLowerCase() === String(nick).toLowerCase());
  const b = li && li.querySelector('.mod-btn');
  if (b && b.offsetParent) b.focus();
  else if (!ui.composer.hidden) ui.input.focus();
}

// --------------------------------------------------------------- settings

export function openSettings(t) {
  if (!t || t.kind !== 'room' || t.gone || !canModerate(t)) return;
  S.settingsFor = t;
  ui.settingsTitle.textContent = 'Settings of #' + t.name;
  ui.topicInput.value = t.topic || '';
  ui.inviteNick.value = '';
  ui.settingsError.textContent = '';
  ui.settingsNote.textContent = '';
  renderSettings();
  renderBans(null);
  askBans(t.name);
  showDialog(ui.settingsDialog);
  ui.topicInput.focus();
}

export const settingsShownFor = (t) => !!t && S.settingsFor === t && ui.settingsDialog.open;

// The switches as the room has them now; the dialog closes if you are no
// longer an op there (or the room ended).
export function renderSettings() {
  const t = S.settingsFor;
  if (!t) return;
  if (t.gone || !canModerate(t) || !S.rooms.has(t.name)) {
    hideDialog(ui.settingsDialog);
    return;
  }
  ui.inviteOnly.checked = t.inviteOnly;
}

// The ban list (null: being asked for), each with Unban.
export function renderBans(bans) {
  ui.banList.textContent = '';
  if (!bans) {
    ui.noBans.textContent = 'Loading the ban list…';
    ui.noBans.hidden = false;
    return;
  }
  ui.noBans.textContent = 'Nobody is banned.';
  ui.noBans.hidden = bans.length > 0;
  for (const b of bans) {
    const li = el('li');
    li.dataset.nick = b.nick;
    const info = el('div', 'ban-info');
    info.appendChild(el('strong', 'ban-nick', b.nick));
    info.appendChild(el('span', 'hint', b.account ? ' (account)' : ' (guest, by address)'));
    const detail = el('div', 'hint ban-detail');
    if (typeof b.by === 'string' && b.by) detail.appendChild(document.createTextNode('by ' + b.by + ' '));
    if (typeof b.ts === 'number') detail.appendChild(timeEl(b.ts));
    if (typeof b.reason === 'string' && b.reason) detail.appendChild(document.createTextNode(': ' + b.reason));
    info.appendChild(detail);
    const u = el('button', 'small unban', 'Unban');
    u.type = 'button';
    u.setAttribute('aria-label', 'Unban ' + b.nick);
    u.addEventListener('click', () => {
      const t = S.settingsFor;
      if (!t) return;
      u.disabled = true;
      sendMod(t.name, 'unban', { nick: b.nick });
    });
    li.append(info, u);
    ui.banList.appendChild(li);
  }
}

export function settingsError(text) {
  ui.settingsNote.textContent = '';
  ui.settingsError.textContent = text;
  for (const b of ui.banList.querySelectorAll('.unban')) b.disabled = false;
}

// The answer (the mod event, with our ref) to a change made here.
export function settingsDone(m) {
  const t = S.settingsFor;
  if (!t || !ui.settingsDialog.open || t.name !== m.room) return;
  const said = {
    topic: m.text ? 'Topic set.' : 'Topic cleared.',
    invite_only: m.on ? 'The room is invite-only now.' : 'The room is open to all now.',
    invite: m.nick + ' is invited to #' + t.name + '.',
    unban: m.nick + ' is unbanned.',
  }[m.action];
  if (!said) return;
  ui.settingsError.textContent = '';
  ui.settingsNote.textContent = said;
  if (m.action === 'invite') ui.inviteNick.value = '';
}

function wireModeration() {
  ui.reasonForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const r = reasonFor;
    reasonFor = null;
    hideDialog(ui.reasonDialog);
    if (!r) return;
    sendMod(r.room.name, r.action, { nick: r.nick, reason: ui.reasonInput.value.trim() });
    focusAfterReason(r.nick);
  });
  ui.reasonCancel.addEventListener('click', () => {
    const r = reasonFor;
    reasonFor = null;
    hideDialog(ui.reasonDialog);
    if (r) focusAfterReason(r.nick);
  });
  ui.reasonDialog.addEventListener('close', () => {
    if (reasonFor) {
      const nick = reasonFor.nick;
      reasonFor = null;
      focusAfterReason(nick);
    }
  });

  ui.roomSettings.addEventListener('click', () => openSettings(S.active));
  ui.settingsClose.addEventListener('click', () => hideDialog(ui.settingsDialog));
  ui.settingsDialog.addEventListener('close', () => {
    S.settingsFor = null;
    if (!ui.roomSettings.hidden) ui.roomSettings.focus();
  });
  ui.topicForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const t = S.settingsFor;
    if (!t) return;
    ui.settingsError.textContent = '';
    sendMod(t.name, 'topic', { text: ui.topicInput.value.trim() });
  });
  ui.inviteOnly.addEventListener('change', () => {
    const t = S.settingsFor;
    if (!t) return;
    ui.settingsError.textContent = '';
    sendMod(t.name, 'invite_only', { on: ui.inviteOnly.checked });
  });
  ui.inviteForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const t = S.settingsFor;
    const nick = ui.inviteNick.value.trim();
    if (!t) return;
    if (!NICK_RE.test(nick)) {
      settingsError('Type the name of the one to invite (letters, digits, _ or -, starting with a letter).');
      ui.inviteNick.focus();
      return;
    }
    ui.settingsError.textContent = '';
    sendMod(t.name, 'invite', { nick });
  });

  // A room you were kicked or banned from.
  ui.rejoin.addEventListener('click', () => {
    const t = S.active;
    if (t && t.kind === 'room' && t.gone) joinRoom(t.name);
  });
  ui.closeEnded.addEventListener('click', () => {
    const t = S.active;
    if (t && t.gone) removeTab(t);
  });
}

async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (e) {
    const ta = el('textarea');
    ta.value = text;
    ta.className = 'visually-hidden';
    document.body.appendChild(ta);
    ta.select();
    let ok = false;
    try {
      ok = document.execCommand('copy');
    } catch (err) {
      ok = false;
    }
    ta.remove();
    return ok;
  }
}

export function wireRoomBar() {
  wireModeration();
  ui.copyCode.addEventListener('click', async () => {
    const code = ui.roomCode.textContent;
    if (!code) return;
    ui.copyNote.textContent = (await copy(code)) ? 'Code copied.' : 'Copy failed: select the code by hand.';
  });
  ui.copyLink.addEventListener('click', async () => {
    const link = ui.shareLink.href;
    ui.copyNote.textContent = (await copy(link)) ? 'Link copied.' : 'Copy failed: select the link by hand.';
  });

  ui.leave.addEventListener('click', () => {
    const t = S.active;
    if (!t) return;
    if (t.kind === 'dm' || t.gone) {
      removeTab(t);
      return;
    }
    if (!client.ready()) {
      systemLine(t, 'Not connected right now; try again once the connection is back.', 'error');
      return;
    }
    // Until the server's `left`, the tab stays; but a tab closed meanwhile
    // releases its session without this room (keptRooms).
    t.leaving = true;
    client.send({ type: 'leave', room: t.name, ref: 'leave:' + t.name });
  });

  ui.membersToggle.addEventListener('click', () => {
    const open = !ui.chat.classList.contains('show-members');
    ui.chat.classList.toggle('show-members', open);
    ui.membersToggle.setAttribute('aria-expanded', open ? 'true' : 'false');
    if (open) {
      const first = ui.members.querySelector('button');
      if (first) first.focus();
    }
  });
  ui.membersPanel.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && ui.chat.classList.contains('show-members')) {
      closeMembersOnPhone();
      ui.membersToggle.focus();
    }
  });

  ui.notify.addEventListener('click', async () => {
    if (!('Notification' in window)) {
      if (S.active) systemLine(S.active, 'This browser has no desktop notifications.', 'error');
      return;
    }
    if (S.notify) {
      S.notify = false;
    } else {
      let p = Notification.permission;
      if (p === 'default') {
        try {
          p = await Notification.requestPermission();
        } catch (e) {
          p = 'denied';
        }
      }
      if (p === 'granted') S.notify = true;
      else if (S.active) systemLine(S.active, 'Notifications are blocked for this page; allow them in the browser’s site settings.', 'error');
    }
    store.setNotify(S.notify);
    renderNotify();
  });
}
