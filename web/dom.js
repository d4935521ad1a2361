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
  // messages that live: replies and edits (composer.js), message actions (toolbar.js), search (search.js)
  composeCtx: $('compose-ctx'), composeCtxText: $('compose-ctx-text'), composeCtxCancel: $('compose-ctx-cancel'),
  deleteDialog: $('delete-dialog'), deleteForm: $('delete-form'), deleteHint: $('delete-hint'),
  deleteQuote: $('delete-quote'), deleteCancel: $('delete-cancel'),
  searchForm: $('search-form'), searchInput: $('search-input'), searchPanel: $('search-panel'),
  searchSummary: $('search-summary'), searchClose: $('search-close'), searchResults: $('search-results'),
  searchMore: $('search-more'),
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
// opts.mentions (nicks) and opts.me: an `@nick` of one of them is wrapped
// in a span.at (span.at.me for you), still as text.
export function appendText(parent, text, opts) {
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
    if (m.index > last) appendPlain(parent, s.slice(last, m.index), opts);
    const a = el('a', null, url);
    a.href = url;
    a.target = '_blank';
    a.rel = 'noopener noreferrer nofollow';
    parent.appendChild(a);
    last = m.index + url.length;
    re.lastIndex = last;
  }
  if (last < s.length) appendPlain(parent, s.slice(last), opts);
}

function appendPlain(parent, s, opts) {
  const names = opts ? (opts.mentions || []).concat(opts.me ? [opts.me] : []).map((n) => String(n).toLowerCase()) : [];
  if (!names.length || s.indexOf('@') < 0) {
    parent.appendChild(document.createTextNode(s));
    return;
  }
  const re = /(^|[^A-Za-z0-9_-])@([A-Za-z][A-Za-z0-9_-]{0,23})(?![A-Za-z0-9_-])/g;
  let last = 0;
  let m;
  while ((m = re.exec(s)) !== null) {
    const nick = m[2].toLowerCase();
    if (!names.includes(nick)) continue;
    const at = m.index + m[1].length;
    if (at > last) parent.appendChild(document.createTextNode(s.slice(last, at)));
    const me = !!opts.me && nick === String(opts.me).toLowerCase();
    parent.appendChild(el('span', me ? 'at me' : 'at', s.slice(at, at + 1 + m[2].length)));
    last = at + 1 + m[2].length;
  }
  if (last < s.length) parent.appendChild(document.createTextNode(s.slice(last)));
}
