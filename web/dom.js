// dom.js: the page's elements (index.html), found once by id, and the
// helpers that make new ones.
//
// User text only ever reaches the page through textContent and text nodes,
// never as HTML; image sources only ever come from a message's server-made
// image.url (view.js checks it against MEDIA_RE).

const $ = (id) => document.getElementById(id);

export const ui = {
  landing: $('landing'), chat: $('chat'), me: $('me'), status: $('status'), retry: $('retry'),
  landingError: $('landing-error'), nameForm: $('name-form'), name: $('name'), nameHint: $('name-hint'),
  nameBtn: $('name-btn'),
  create: $('create-room'), joinForm: $('join-form'), joinCode: $('join-code'),
  openRooms: $('open-rooms'), noRooms: $('no-rooms'), refreshRooms: $('refresh-rooms'),
  backToChat: $('back-to-chat'), tabs: $('tabs'), newTab: $('new-tab'),
  share: $('share'), roomCode: $('room-code'), copyCode: $('copy-code'), shareLink: $('share-link'),
  copyLink: $('copy-link'), copyNote: $('copy-note'), notify: $('notify'),
  membersToggle: $('members-toggle'), leave: $('leave'), loadOlder: $('load-older'),
  messages: $('messages'), typing: $('typing'), preview: $('preview'), previewImg: $('preview-img'),
  previewText: $('preview-text'), previewCancel: $('preview-cancel'), composer: $('composer'),
  input: $('input'), file: $('file'), attach: $('attach'), send: $('send'), members: $('members'),
  membersPanel: $('members-panel'), prompt: $('prompt'), promptForm: $('prompt-form'),
  promptRoom: $('prompt-room'), promptName: $('prompt-name'), promptJoin: $('prompt-join'),
  promptError: $('prompt-error'), promptCancel: $('prompt-cancel'), promptLogin: $('prompt-login'),
  // accounts (landing.js)
  meAcct: $('me-acct'), accountBtn: $('account-btn'), accountDialog: $('account-dialog'),
  accountTitle: $('account-title'), accountClose: $('account-close'), accountError: $('account-error'),
  accountNote: $('account-note'), accountGuest: $('account-guest'), accountUser: $('account-user'),
  accountName: $('account-name'), showLogin: $('show-login'), showSignup: $('show-signup'),
  loginForm: $('login-form'), loginNick: $('login-nick'), loginPassword: $('login-password'), loginBtn: $('login-btn'),
  signupForm: $('signup-form'), signupNick: $('signup-nick'), signupPassword: $('signup-password'),
  signupPassword2: $('signup-password2'), signupBtn: $('signup-btn'), logoutBtn: $('logout-btn'),
  passwordForm: $('password-form'), pwUser: $('pw-user'), pwOld: $('pw-old'), pwNew: $('pw-new'), pwBtn: $('pw-btn'),
  // the room's head, settings and moderation (view.js, roombar.js)
  roomHead: $('room-head'), roomName: $('room-name'), roomLock: $('room-lock'), roomRole: $('room-role'),
  roomTopic: $('room-topic'), roomSettings: $('room-settings'), roomNotice: $('room-notice'),
  roomEnded: $('room-ended'), roomEndedText: $('room-ended-text'), rejoin: $('rejoin'), closeEnded: $('close-ended'),
  settingsDialog: $('settings-dialog'), settingsTitle: $('settings-title'), settingsClose: $('settings-close'),
  settingsError: $('settings-error'), settingsNote: $('settings-note'), topicForm: $('topic-form'),
  topicInput: $('topic-input'), inviteOnly: $('invite-only'), inviteForm: $('invite-form'), inviteNick: $('invite-nick'),
  banList: $('ban-list'), noBans: $('no-bans'),
  reasonDialog: $('reason-dialog'), reasonForm: $('reason-form'), reasonTitle: $('reason-title'),
  reasonHint: $('reason-hint'), reasonInput: $('reason-input'), reasonCancel: $('reason-cancel'), reasonOk: $('reason-ok'),
};

export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

export function timeEl(ts) {
  const d = new Date(typeof ts === 'number' ? ts : Date.now());
  const t = el('time', 'time', d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }));
  t.dateTime = d.toISOString();
  t.title = d.toLocaleString();
  return t;
}

// Text with http(s) links made clickable; everything else is a text node.
export function appendText(parent, text) {
  const s = String(text == null ? '' : text);
  const re = /\bhttps?:\/\/[^\s<>"']+/gi;
  let last = 0;
  let m;
  while ((m = re.exec(s)) !== null) {
    let url = m[0];
    const trail = url.match(/[.,;:!?)\]}]+$/);
    if (trail) url = url.slice(0, url.length - trail[0].length);
    let ok = false;
    try {
      const u = new URL(url);
      ok = u.protocol === 'http:' || u.protocol === 'https:';
    } catch (e) {
      ok = false;
    }
    if (!ok || !url) continue;
    if (m.index > last) parent.appendChild(document.createTextNode(s.slice(last, m.index)));
    const a = el('a', null, url);
    a.href = url;
    a.target = '_blank';
    a.rel = 'noopener noreferrer nofollow';
    parent.appendChild(a);
    last = m.index + url.length;
    re.lastIndex = last;
  }
  if (last < s.length) parent.appendChild(document.createTextNode(s.slice(last)));
}
