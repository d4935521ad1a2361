// roombar.js: the buttons above the messages: copy the room's code or
// link, desktop notifications on or off, the members panel (a drawer on a
// phone), and Leave (a room) or Close (a direct conversation). view.js's
// renderRoomBar draws the bar for the active tab.

import { S, client, store } from './state.js';
import { ui, el } from './dom.js';
import { removeTab, systemLine, closeMembersOnPhone, renderNotify } from './view.js';

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
    if (t.kind === 'dm') {
      removeTab(t);
      return;
    }
    if (!client.ready()) {
      systemLine(t, 'Not connected right now; try again once the connection is back.', 'error');
      return;
    }
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
