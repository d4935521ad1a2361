// natter page script: plain JavaScript, no build step, no dependencies.
//
// It speaks the JSON protocol of docs/PROTOCOL.md over one WebSocket at /ws.
// User text only ever reaches the page through textContent and text nodes;
// image sources only ever come from a message's server-made image.url.
(() => {
  'use strict';

  // ---------------------------------------------------------------- constants

  const NICK_RE = /^[A-Za-z][A-Za-z0-9_-]{0,23}$/;
  const ROOM_RE = /^[A-Za-z0-9_-]{1,32}$/;
  const MEDIA_RE = /^\/media\/[A-Za-z0-9_-]{1,128}$/;
  const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];
  const PALETTE = 12;
  const TYPING_SHOW_MS = 6000;
  const TYPING_SEND_MS = 1000;
  const PROBE_IDLE_MS = 25000; // ask something after this long without a frame
  const PROBE_WAIT_MS = 10000; // and give the connection up this long after
  const PAGE = 50; // history page when scrolling up
  const CATCH_UP_PAGE = 200; // history page when filling a gap
  const BACKOFF_BASE_MS = 500;
  const BACKOFF_MAX_MS = 30000;
  const STORAGE_KEY = 'natter.state';
  const NOTIFY_KEY = 'natter.notify';
  const NAME_KEY = 'natter.name'; // localStorage: the name chosen last, for the next visit
  const RELEASED_KEY = 'natter.released'; // localStorage: sessions of closed tabs, to resume
  const RESUME_MS = 120000; // the server's default --resume-grace
  const LIVE_KEY = 'natter.live'; // localStorage: sessions open in a tab right now
  const LIVE_MS = 75000; // a tab marks its session live every 2 s (a hidden tab's timers may wait a minute)
  const TOKEN_RE = /^[A-Za-z0-9_-]{8,256}$/;

  // --------------------------------------------------------------------- DOM

  const $ = (id) => document.getElementById(id);
  const ui = {
    landing: $('landing'), chat: $('chat'), me: $('me'), status: $('status'), retry: $('retry'),
    landingError: $('landing-error'), nameForm: $('name-form'), name: $('name'),
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
    promptError: $('prompt-error'), promptCancel: $('prompt-cancel'),
  };

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  // ------------------------------------------------------------------- state

  const S = {
    ws: null,
    conn: 0, // counts connections; stale sockets' events are ignored
    welcomed: false,
    everConnected: false,
    state: 'connecting',
    attempt: 0,
    retryTimer: 0,
    lastFrame: 0,
    probeAt: 0,
    nick: '',
    wantNick: '', // the nick to get back after a reconnect without resume
    pendingNick: null,
    shownName: '', // what the page last put in the name field
    session: '',
    storeId: '',
    limits: { max_message: 4000, max_ws_message: 2097152, max_image: 1048576, history: 50 },
    rooms: new Map(), // room name -> tab
    dms: new Map(), // lowercase nick -> tab
    order: [], // tabs in display order
    active: null,
    outbox: new Map(), // cid -> {cid, payload, tab, node, sentConn}
    queued: [], // requests made before the connection was ready
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
    liveToken: '', // the session this tab last marked live
    liveAt: 0,
  };

  // -------------------------------------------------------------- utilities

  const sameNick = (a, b) => typeof a === 'string' && typeof b === 'string' && a.toLowerCase() === b.toLowerCase();
  const sortNicks = (list) => (Array.isArray(list) ? list.filter((n) => typeof n === 'string') : [])
    .sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));

  function nickClass(nick) {
    // FNV-1a over the lowercase nick: the same colour everywhere, every time.
    let h = 0x811c9dc5;
    const s = String(nick).toLowerCase();
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    return 'nc' + (h % PALETTE);
  }

  function newCid() {
    const b = new Uint8Array(12);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  function fmtSize(n) {
    if (n < 1024) return n + ' B';
    if (n < 1024 * 1024) return Math.round(n / 1024) + ' KiB';
    return (n / 1024 / 1024).toFixed(2).replace(/\.?0+$/, '') + ' MiB';
  }

  const byteLength = (s) => new TextEncoder().encode(s).length;

  function cleanRoom(s) {
    let r = String(s || '').trim();
    if (r.startsWith('#')) r = r.slice(1);
    return r;
  }

  function timeEl(ts) {
    const d = new Date(typeof ts === 'number' ? ts : Date.now());
    const t = el('time', 'time', d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }));
    t.dateTime = d.toISOString();
    t.title = d.toLocaleString();
    return t;
  }

  // Text with http(s) links made clickable; everything else is a text node.
  function appendText(parent, text) {
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

  // ------------------------------------------------------------- connection

  function ready() {
    return !!(S.ws && S.ws.readyState === WebSocket.OPEN && S.welcomed && navigator.onLine !== false);
  }

  function rawSend(obj) {
    if (!S.ws || S.ws.readyState !== WebSocket.OPEN) return false;
    try {
      S.ws.send(JSON.stringify(obj));
      return true;
    } catch (e) {
      return false;
    }
  }

  // A request (not a message): sent now, or as soon as we are connected.
  function request(obj) {
    if (ready()) rawSend(obj);
    else S.queued.push(obj);
  }

  function connect() {
    clearTimeout(S.retryTimer);
    S.retryTimer = 0;
    if (S.ws) detach();
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let url = proto + '//' + location.host + '/ws';
    if (S.session) url += '?resume=' + encodeURIComponent(S.session);
    const conn = ++S.conn;
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    S.ws = ws;
    S.welcomed = false;
    S.probeAt = 0;
    S.lastFrame = Date.now();
    refreshState();
    ws.onmessage = (e) => {
      if (conn !== S.conn) return;
      S.lastFrame = Date.now();
      S.probeAt = 0;
      let m;
      try {
        m = JSON.parse(e.data);
      } catch (err) {
        return;
      }
      if (m && typeof m === 'object') handle(m);
    };
    ws.onclose = (e) => {
      if (conn !== S.conn) return;
      dropped(e.code);
    };
    ws.onerror = () => {}; // a close event follows
  }

  // Forget the current socket without waiting for it.
  function detach() {
    const ws = S.ws;
    S.ws = null;
    S.welcomed = false;
    if (!ws) return;
    ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close();
    } catch (e) {
      /* already gone */
    }
  }

  function dropped(code) {
    S.ws = null;
    S.welcomed = false;
    if (code === 4000) {
      // Another connection took this session over: start a fresh one.
      S.session = '';
      systemLine(S.active, 'This session was opened elsewhere; reconnecting with a new one.');
    }
    for (const r of S.rooms.values()) r.typing.clear();
    renderTyping();
    scheduleReconnect();
  }

  function scheduleReconnect() {
    clearTimeout(S.retryTimer);
    const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** S.attempt);
    const delay = cap / 2 + Math.random() * (cap / 2); // exponential, with jitter
    S.attempt = Math.min(S.attempt + 1, 12);
    S.retryTimer = setTimeout(connect, delay);
    refreshState();
  }

  function reconnectNow() {
    S.attempt = 0;
    connect();
  }

  // Liveness: the browser hides the server's pings, so after a quiet spell
  // ask for something; no answer at all means the connection is dead. Dropping
  // it without a close frame keeps the session resumable on the server.
  function probe() {
    if (!S.ws || S.ws.readyState !== WebSocket.OPEN || !S.welcomed) return;
    const now = Date.now();
    if (S.probeAt) {
      if (now - S.probeAt > PROBE_WAIT_MS) {
        detach();
        dropped(0);
      }
    } else if (now - S.lastFrame > PROBE_IDLE_MS) {
      S.probeAt = now;
      rawSend({ type: 'rooms', ref: 'probe' });
    }
  }

  const STATUS_TEXT = {
    connecting: 'connecting…',
    connected: 'connected',
    reconnecting: 'reconnecting…',
    offline: 'offline',
  };

  function refreshState() {
    let s;
    const open = S.ws && S.ws.readyState === WebSocket.OPEN && S.welcomed;
    if (navigator.onLine === false) s = 'offline';
    else if (open) s = 'connected';
    else if (!S.everConnected && S.attempt === 0) s = 'connecting';
    else s = 'reconnecting';
    if (s !== S.state || ui.status.dataset.state !== s) {
      S.state = s;
      ui.status.dataset.state = s;
      ui.status.textContent = STATUS_TEXT[s];
    }
    ui.retry.hidden = !(s === 'reconnecting' && !S.ws);
    document.body.dataset.conn = s;
    const queued = S.outbox.size;
    ui.status.title = queued && s !== 'connected' ? queued + ' message(s) waiting to be sent' : '';
  }

  // --------------------------------------------------------------- dispatch

  function handle(m) {
    switch (m.type) {
      case 'welcome': return onWelcome(m);
      case 'nick': return onNick(m);
      case 'joined': return onJoined(m);
      case 'left': return onLeft(m);
      case 'message': return onMessage(m);
      case 'presence': return onPresence(m);
      case 'typing': return onTyping(m);
      case 'dm': return onDm(m);
      case 'history': return onHistory(m);
      case 'rooms': return onRooms(m);
      case 'who': return onWho(m);
      case 'error': return onError(m);
      default: return undefined;
    }
  }

  function onWelcome(m) {
    const resumed = !!S.session && m.session === S.session;
    const wasConnected = S.everConnected;
    S.session = typeof m.session === 'string' ? m.session : '';
    markLive(true);
    if (m.limits && typeof m.limits === 'object') Object.assign(S.limits, m.limits);
    const storeChanged = !!S.storeId && !!m.store_id && m.store_id !== S.storeId;
    if (m.store_id) S.storeId = m.store_id;
    S.welcomed = true;
    S.everConnected = true;
    S.attempt = 0;
    // A new session has a generated nick: ours is asked back below. Known
    // before the generated one shows, so the name fields keep ours.
    const restoring = !resumed && !!S.wantNick && S.wantNick !== m.nick;
    if (restoring) S.pendingNick = S.wantNick;
    setNick(m.nick);
    refreshState();

    if (storeChanged) {
      // Our seq positions mean nothing any more: start the rooms afresh.
      for (const r of S.rooms.values()) {
        resetRoom(r);
        r.storeId = m.store_id;
        systemLine(r, 'The server’s history was reset; reloading.');
      }
    }
    if (wasConnected) {
      for (const t of S.order) systemLine(t, resumed ? 'Reconnected.' : 'Reconnected (new session).');
    }
    if (resumed) {
      S.wantNick = m.nick;
    } else if (restoring) {
      rawSend({ type: 'nick', nick: S.wantNick, ref: 'nick:restore' });
    }
    // After a reload: a resumed session is sent its rooms by the server; a
    // lost one (expired, or the server restarted) joins them again.
    const restore = S.restore;
    S.restore = null;
    if (restore && resumed) {
      S.resumeActive = restore.active || '';
    } else if (restore) {
      for (const room of restore.rooms) {
        if (S.rooms.has(room)) continue;
        rawSend({ type: 'join', room, ref: (room === restore.active ? 'j:' : 'rj:') + room });
      }
    }
    // Catch up on every room we were in, from the highest seq we hold.
    for (const r of S.rooms.values()) {
      const req = { type: 'join', room: r.name, ref: 'rj:' + r.name };
      if (r.seqs.size) req.since = r.maxSeq;
      rawSend(req);
    }
    const queued = S.queued;
    S.queued = [];
    for (const q of queued) rawSend(q);
    flushOutbox();
    if (S.landingOpen) rawSend({ type: 'rooms', ref: 'landing' });
  }

  function setNick(nick) {
    if (typeof nick !== 'string' || !nick) return;
    const old = S.nick;
    S.nick = nick;
    if (!S.wantNick) S.wantNick = nick;
    ui.me.textContent = nick;
    showName(nick);
    if (old && old !== nick) {
      for (const r of S.rooms.values()) {
        const i = r.members.findIndex((n) => sameNick(n, old));
        if (i >= 0) r.members[i] = nick;
        r.members = sortNicks(r.members);
      }
      renderMembers();
    }
    saveState();
  }

  // The name field shows the nick, but never over a name typed since the
  // page last filled it in: the answer to an earlier request (restoring the
  // nick after a reload, say) may arrive while the user types, and what
  // they typed is asked for when they submit it.
  function showName(nick) {
    fillName(ui.name, 'shownName', nick);
    fillName(ui.promptName, 'promptShown', nick);
  }

  function fillName(field, shown, nick) {
    const typed = field.value.trim();
    // A nick asked for is on its way: the field keeps showing it meanwhile.
    if (S.pendingNick && sameNick(typed, S.pendingNick) && !sameNick(nick, S.pendingNick)) return;
    if (!typed || typed === S[shown] || sameNick(typed, nick)) {
      const replaced = field.value !== nick;
      field.value = nick;
      S[shown] = nick;
      // Offered, not typed: selected, so typing replaces it and Enter keeps it.
      if (replaced && field === ui.promptName && document.activeElement === field) field.select();
    }
  }

  function onNick(m) {
    const old = S.nick;
    const ref = typeof m.ref === 'string' ? m.ref : '';
    S.pendingNick = null;
    S.wantNick = m.nick;
    setNick(m.nick);
    clearLandingError();
    // A name the user chose (not one the page asked back) is kept for the next visit.
    if (ref.startsWith('nick:') && ref !== 'nick:restore') rememberName(m.nick);
    if (old && old !== m.nick && S.active) systemLine(S.active, 'You are now known as ' + m.nick + '.');
    if (S.promptJoin && sameNick(m.nick, S.promptJoin.nick)) finishPrompt();
  }

  // ------------------------------------------------------------------- tabs

  function makeTab(kind, name) {
    const t = {
      kind,
      name, // room name, or the peer's nick
      key: (kind === 'room' ? 'r:' : 'd:') + name.toLowerCase(),
      box: document.createElement('div'),
      unread: 0,
      scroll: null,
      seqs: new Set(),
      minSeq: 0,
      maxSeq: 0,
      lastSeq: 0,
      members: [],
      typing: new Map(),
      reachedStart: false,
      loadingOlder: false,
      cursor: 0,
      storeId: '',
      created: false,
    };
    const b = el('button', 'tab');
    b.type = 'button';
    b.setAttribute('role', 'tab');
    b.setAttribute('aria-selected', 'false');
    b.setAttribute('aria-controls', 'messages');
    b.tabIndex = -1;
    if (kind === 'room') b.dataset.room = name;
    else b.dataset.dm = name;
    t.labelEl = el('span', 'label', kind === 'room' ? '#' + name : '@' + name);
    t.badgeEl = el('span', 'unread');
    t.badgeEl.hidden = true;
    t.badgeEl.setAttribute('aria-label', 'unread messages');
    b.append(t.labelEl, t.badgeEl);
    b.addEventListener('click', () => activate(t));
    b.addEventListener('keydown', tabKeys);
    t.tabEl = b;
    ui.tabs.appendChild(b);
    S.order.push(t);
    if (kind === 'room') S.rooms.set(name, t);
    else S.dms.set(name.toLowerCase(), t);
    return t;
  }

  function tabKeys(e) {
    const i = S.order.findIndex((t) => t.tabEl === e.currentTarget);
    if (i < 0) return;
    let j = -1;
    if (e.key === 'ArrowRight') j = (i + 1) % S.order.length;
    else if (e.key === 'ArrowLeft') j = (i - 1 + S.order.length) % S.order.length;
    else if (e.key === 'Home') j = 0;
    else if (e.key === 'End') j = S.order.length - 1;
    if (j < 0) return;
    e.preventDefault();
    activate(S.order[j]);
    S.order[j].tabEl.focus();
  }

  const listOf = (t) => (t === S.active ? ui.messages : t.box);

  function moveChildren(from, to) {
    const f = document.createDocumentFragment();
    while (from.firstChild) f.appendChild(from.firstChild);
    to.appendChild(f);
  }

  function activate(t, opts) {
    if (!t) return;
    showChat(); // first: scrolling needs the list laid out
    if (S.active && S.active !== t) {
      S.active.scroll = S.stick ? null : ui.messages.scrollTop;
      ui.messages.setAttribute('aria-busy', 'true');
      moveChildren(ui.messages, S.active.box);
    }
    if (S.active !== t) {
      S.active = t;
      renderRoomBar(); // before scrolling: it changes the list's height
      moveChildren(t.box, ui.messages);
      ui.messages.setAttribute('aria-busy', 'false');
      if (t.scroll === null) scrollToBottom();
      else ui.messages.scrollTop = t.scroll;
      S.stick = t.scroll === null;
    }
    for (const o of S.order) {
      const on = o === t;
      o.tabEl.setAttribute('aria-selected', on ? 'true' : 'false');
      o.tabEl.tabIndex = on ? 0 : -1;
    }
    t.tabEl.scrollIntoView({ block: 'nearest', inline: 'nearest' });
    markRead(t);
    renderRoomBar();
    renderMembers();
    renderTyping();
    if (t.kind === 'room' && !(opts && opts.keepHash)) setHash(t.name);
    saveState();
    if (!(opts && opts.noFocus) && window.matchMedia('(pointer: fine)').matches) ui.input.focus();
    requestAnimationFrame(maybeFill);
  }

  function removeTab(t) {
    const i = S.order.indexOf(t);
    if (i < 0) return;
    S.order.splice(i, 1);
    t.tabEl.remove();
    if (t.kind === 'room') S.rooms.delete(t.name);
    else S.dms.delete(t.name.toLowerCase());
    for (const [cid, e] of S.outbox) if (e.tab === t) S.outbox.delete(cid);
    if (S.active === t) {
      ui.messages.textContent = '';
      S.active = null;
      const next = S.order[Math.min(i, S.order.length - 1)] || S.order[i - 1];
      if (next) activate(next);
      else {
        setHash('');
        showLanding();
        renderMembers();
        renderTyping();
      }
    }
    updateTitle();
    saveState();
  }

  function markRead(t) {
    if (document.hidden || S.landingOpen) return;
    if (t.unread) {
      t.unread = 0;
      renderBadge(t);
    }
    updateTitle();
  }

  function renderBadge(t) {
    t.badgeEl.textContent = t.unread ? String(t.unread) : '';
    t.badgeEl.hidden = !t.unread;
    t.tabEl.classList.toggle('has-unread', !!t.unread);
    t.tabEl.setAttribute('aria-label', (t.kind === 'room' ? '#' : 'direct messages with ') + t.name +
      (t.unread ? ', ' + t.unread + ' unread' : ''));
  }

  function updateTitle() {
    let n = 0;
    for (const t of S.order) n += t.unread;
    const where = S.active ? (S.active.kind === 'room' ? '#' + S.active.name : '@' + S.active.name) + ' · ' : '';
    document.title = (n ? '(' + n + ') ' : '') + where + 'natter';
  }

  function showChat() {
    hidePrompt();
    S.landingOpen = false;
    ui.landing.hidden = true;
    ui.chat.hidden = false;
    S.notice = '';
    clearLandingError();
    if (S.active) markRead(S.active);
  }

  function showLanding() {
    hidePrompt();
    S.landingOpen = true;
    ui.chat.hidden = true;
    ui.landing.hidden = false;
    ui.backToChat.hidden = S.order.length === 0;
    if (ready()) rawSend({ type: 'rooms', ref: 'landing' });
    else fetchRooms();
  }

  function setHash(room) {
    const want = room ? '#' + room : '';
    if (location.hash === want || (!room && !location.hash)) return;
    try {
      history.replaceState(null, '', location.pathname + location.search + want);
    } catch (e) {
      /* ignore */
    }
  }

  // ------------------------------------------------------------ room events

  function resetRoom(r) {
    listOf(r).textContent = '';
    r.seqs.clear();
    r.minSeq = 0;
    r.maxSeq = 0;
    r.cursor = 0;
    r.reachedStart = false;
    r.loadingOlder = false;
    for (const e of S.outbox.values()) if (e.tab === r && e.node) listOf(r).appendChild(e.node);
  }

  function onJoined(m) {
    if (typeof m.room !== 'string') return;
    const ref = typeof m.ref === 'string' ? m.ref : '';
    let r = S.rooms.get(m.room);
    const fresh = !r;
    if (!r) r = makeTab('room', m.room);
    if (r.storeId && m.store_id && r.storeId !== m.store_id) resetRoom(r);
    if (m.store_id) r.storeId = m.store_id;
    r.members = sortNicks(m.members);
    if (typeof m.last_seq === 'number') r.lastSeq = m.last_seq;
    const msgs = Array.isArray(m.messages) ? m.messages : [];
    const userJoin = ref.startsWith('j:') || ref.startsWith('c:');
    mergeRoom(r, msgs, false);
    if (r.lastSeq === 0 || r.minSeq === 1) r.reachedStart = true;
    if (m.gap) {
      r.cursor = msgs.reduce((a, x) => (typeof x.seq === 'number' && x.seq > a ? x.seq : a), 0) || r.maxSeq;
      rawSend({ type: 'history', room: r.name, after: r.cursor, limit: CATCH_UP_PAGE, ref: 'ha:' + r.name });
    }
    if (ref.startsWith('c:')) {
      r.created = true;
      systemLine(r, 'You created the unlisted room ' + r.name + '. Only people with its code or link can join: share them with the buttons above.');
    } else if (fresh && userJoin) {
      systemLine(r, 'You joined #' + r.name + ' (' + r.members.length + ' here).');
    }
    if (S.notice && userJoin) systemLine(r, S.notice, 'error');
    const wasActive = !!S.resumeActive && r.name === S.resumeActive; // shown before the reload
    if (wasActive) S.resumeActive = '';
    if (userJoin || !S.active || wasActive) activate(r);
    else if (r === S.active) {
      renderMembers();
      renderRoomBar();
    }
    saveState();
  }

  function onLeft(m) {
    const r = S.rooms.get(m.room);
    if (r) removeTab(r);
  }

  function isAtBottom() {
    const b = ui.messages;
    return b.scrollHeight - b.scrollTop - b.clientHeight < 48;
  }

  function scrollToBottom() {
    ui.messages.scrollTop = ui.messages.scrollHeight;
    S.stick = true;
  }

  // Inserts room messages in seq order, skipping any seq already shown.
  function mergeRoom(r, msgs, live) {
    const box = listOf(r);
    const active = r === S.active;
    const stick = active && (S.stick || isAtBottom());
    const fromBottom = active ? box.scrollHeight - box.scrollTop : 0;
    let prepended = false;
    const sorted = msgs.filter((x) => x && typeof x.seq === 'number').sort((a, b) => a.seq - b.seq);
    const added = [];
    // Older than everything shown (a page of history): one block on top.
    const older = document.createDocumentFragment();
    const oldMin = r.minSeq;
    const hadAny = r.seqs.size > 0;
    for (const msg of sorted) {
      resolveOutbox(msg);
      if (r.seqs.has(msg.seq)) continue;
      const node = renderMessage(msg);
      if (hadAny && msg.seq < oldMin) {
        older.appendChild(node);
        prepended = true;
      } else if (!r.seqs.size || msg.seq > r.maxSeq) {
        box.insertBefore(node, firstPending(box));
      } else {
        insertMiddle(box, node, msg.seq);
      }
      r.seqs.add(msg.seq);
      if (!r.minSeq || msg.seq < r.minSeq) r.minSeq = msg.seq;
      if (msg.seq > r.maxSeq) r.maxSeq = msg.seq;
      if (msg.seq > r.lastSeq) r.lastSeq = msg.seq;
      added.push(msg);
    }
    if (prepended) box.insertBefore(older, box.firstChild);
    if (active) {
      if (stick && !prepended) scrollToBottom();
      else if (prepended) box.scrollTop = box.scrollHeight - fromBottom;
    }
    if (live) {
      for (const msg of added) noteIncoming(r, msg.from, msg.action ? '* ' + msg.from + ' ' + msg.text : msg.text || (msg.image ? '[image]' : ''));
    }
    return added.length;
  }

  function firstPending(box) {
    for (let n = box.firstElementChild; n; n = n.nextElementSibling) if (n.classList.contains('pending')) return n;
    return null;
  }

  function insertMiddle(box, node, seq) {
    for (let n = box.lastElementChild; n; n = n.previousElementSibling) {
      if (n.dataset.seq && Number(n.dataset.seq) < seq) {
        box.insertBefore(node, n.nextSibling);
        return;
      }
    }
    box.insertBefore(node, box.firstChild);
  }

  function resolveOutbox(msg) {
    if (typeof msg.cid !== 'string') return false;
    const e = S.outbox.get(msg.cid);
    if (!e) return false;
    S.outbox.delete(msg.cid);
    if (e.node) e.node.remove();
    refreshState();
    return true;
  }

  function onMessage(m) {
    const r = S.rooms.get(m.room);
    if (!r) {
      resolveOutbox(m);
      return;
    }
    if (typeof m.from === 'string' && r.typing.delete(m.from) && r === S.active) renderTyping();
    const own = typeof m.cid === 'string' && S.outbox.has(m.cid);
    mergeRoom(r, [m], !own && !sameNick(m.from, S.nick));
    if (own && r === S.active) scrollToBottom();
  }

  // Unread counts, the title and desktop notifications for someone else's message.
  function noteIncoming(t, from, text) {
    const visible = t === S.active && !document.hidden && !S.landingOpen;
    if (!visible) {
      t.unread += 1;
      renderBadge(t);
      updateTitle();
    }
    if (S.notify && (document.hidden || !document.hasFocus()) && 'Notification' in window &&
        Notification.permission === 'granted') {
      try {
        const n = new Notification(t.kind === 'room' ? from + ' in #' + t.name : from + ' (direct)', {
          body: String(text).slice(0, 200),
          tag: t.key,
        });
        n.onclick = () => {
          window.focus();
          activate(t);
          n.close();
        };
      } catch (e) {
        /* some browsers only allow notifications from a service worker */
      }
    }
  }

  function renderMessage(m) {
    const d = el('div', 'msg');
    if (typeof m.seq === 'number') d.dataset.seq = String(m.seq);
    if (m.action) d.classList.add('action');
    const from = typeof m.from === 'string' ? m.from : '?';
    if (sameNick(from, S.nick)) d.classList.add('mine');
    d.appendChild(timeEl(m.ts));
    d.appendChild(document.createTextNode(' '));
    if (m.action) d.appendChild(el('span', 'star', '*'));
    d.appendChild(el('span', 'nick ' + nickClass(from), from));
    d.appendChild(document.createTextNode(' '));
    const text = el('span', 'text');
    appendText(text, m.text);
    d.appendChild(text);
    if (m.image && typeof m.image.url === 'string' && MEDIA_RE.test(m.image.url)) {
      d.classList.add('image');
      const a = el('a', 'media');
      a.href = m.image.url;
      a.target = '_blank';
      a.rel = 'noopener';
      const img = el('img');
      img.src = m.image.url;
      img.alt = m.text ? 'image from ' + from + ': ' + m.text : 'image from ' + from;
      img.loading = 'lazy';
      img.decoding = 'async';
      img.addEventListener('load', () => {
        if (d.parentNode === ui.messages && S.stick) scrollToBottom();
      });
      a.appendChild(img);
      d.appendChild(a);
      if (typeof m.image.size === 'number') {
        a.title = (m.image.mime || 'image') + ', ' + fmtSize(m.image.size);
      }
    }
    if (S.nick && typeof m.text === 'string' && !sameNick(from, S.nick) &&
        new RegExp('(^|[^A-Za-z0-9_-])' + S.nick.replace(/[-]/g, '\\-') + '($|[^A-Za-z0-9_-])', 'i').test(m.text)) {
      d.classList.add('mention');
    }
    return d;
  }

  function systemLine(t, text, extra) {
    const d = el('div', 'system' + (extra ? ' ' + extra : ''));
    d.appendChild(timeEl(Date.now()));
    d.appendChild(document.createTextNode(' '));
    const span = el('span', 'text');
    if (Array.isArray(text)) {
      for (const part of text) {
        if (typeof part === 'string') span.appendChild(document.createTextNode(part));
        else span.appendChild(el('span', 'who ' + nickClass(part.nick), part.nick));
      }
    } else {
      span.textContent = text;
    }
    d.appendChild(span);
    if (!t) {
      if (S.landingOpen) showLandingError(typeof text === 'string' ? text : span.textContent);
      return d;
    }
    const box = listOf(t);
    const stick = t === S.active && (S.stick || isAtBottom());
    box.insertBefore(d, firstPending(box));
    if (stick) scrollToBottom();
    return d;
  }

  const LEAVE_REASONS = {
    leave: '',
    quit: 'quit',
    disconnect: 'disconnected',
    timeout: 'timed out',
    slow_consumer: 'too slow',
    shutdown: 'server shutting down',
  };

  function onPresence(m) {
    const r = S.rooms.get(m.room);
    if (!r || typeof m.nick !== 'string') return;
    if (m.event === 'join') {
      if (!r.members.some((n) => sameNick(n, m.nick))) r.members = sortNicks(r.members.concat([m.nick]));
      systemLine(r, [{ nick: m.nick }, ' joined'], 'presence join');
    } else if (m.event === 'leave') {
      r.members = r.members.filter((n) => !sameNick(n, m.nick));
      r.typing.delete(m.nick);
      let why = LEAVE_REASONS[m.reason] !== undefined ? LEAVE_REASONS[m.reason] : String(m.reason || '');
      if (m.reason === 'quit' && typeof m.message === 'string' && m.message) why = 'quit: ' + m.message;
      systemLine(r, [{ nick: m.nick }, ' left' + (why ? ' (' + why + ')' : '')], 'presence leave');
    } else if (m.event === 'nick' && typeof m.old === 'string') {
      r.members = sortNicks(r.members.filter((n) => !sameNick(n, m.old)).concat([m.nick]));
      if (r.typing.has(m.old)) {
        r.typing.set(m.nick, r.typing.get(m.old));
        r.typing.delete(m.old);
      }
      systemLine(r, [{ nick: m.old }, ' is now known as ', { nick: m.nick }], 'presence nick');
      renameDm(m.old, m.nick);
    }
    if (r === S.active) {
      renderMembers();
      renderTyping();
    }
  }

  function renameDm(old, nick) {
    const t = S.dms.get(old.toLowerCase());
    if (!t || S.dms.has(nick.toLowerCase())) return;
    S.dms.delete(old.toLowerCase());
    t.name = nick;
    t.key = 'd:' + nick.toLowerCase();
    t.tabEl.dataset.dm = nick;
    t.labelEl.textContent = '@' + nick;
    S.dms.set(nick.toLowerCase(), t);
    systemLine(t, [{ nick: old }, ' is now known as ', { nick }], 'presence nick');
    renderBadge(t);
    if (t === S.active) {
      renderMembers();
      updateTitle();
    }
  }

  function onTyping(m) {
    const r = S.rooms.get(m.room);
    if (!r || typeof m.nick !== 'string' || sameNick(m.nick, S.nick)) return;
    r.typing.set(m.nick, Date.now() + TYPING_SHOW_MS);
    if (r === S.active) renderTyping();
  }

  function renderTyping() {
    const t = S.active;
    let names = [];
    if (t && t.kind === 'room') {
      const now = Date.now();
      for (const [n, until] of t.typing) {
        if (until <= now) t.typing.delete(n);
        else names.push(n);
      }
    }
    names = sortNicks(names);
    let text = '';
    if (names.length === 1) text = names[0] + ' is typing…';
    else if (names.length === 2) text = names[0] + ' and ' + names[1] + ' are typing…';
    else if (names.length === 3) text = names[0] + ', ' + names[1] + ' and ' + names[2] + ' are typing…';
    else if (names.length > 3) text = names[0] + ', ' + names[1] + ' and ' + (names.length - 2) + ' others are typing…';
    if (ui.typing.textContent !== text) ui.typing.textContent = text;
  }

  function onDm(m) {
    if (typeof m.from !== 'string' || typeof m.to !== 'string') return;
    const mine = sameNick(m.from, S.nick);
    const hadEntry = typeof m.cid === 'string' && S.outbox.has(m.cid);
    // A DM to yourself comes back twice; only the copy with our cid is shown.
    if (mine && sameNick(m.to, S.nick) && !hadEntry && typeof m.cid !== 'string') return;
    const peer = mine ? m.to : m.from;
    const t = dmTab(peer);
    resolveOutbox(m);
    const box = listOf(t);
    const stick = t === S.active && (S.stick || isAtBottom());
    box.insertBefore(renderMessage(m), firstPending(box));
    if (stick || hadEntry) {
      if (t === S.active) scrollToBottom();
    }
    if (!mine) noteIncoming(t, m.from, m.text);
  }

  function dmTab(peer) {
    let t = S.dms.get(peer.toLowerCase());
    if (!t) t = makeTab('dm', peer);
    if (!S.active) activate(t);
    return t;
  }

  function onHistory(m) {
    const r = S.rooms.get(m.room);
    const ref = typeof m.ref === 'string' ? m.ref : '';
    const msgs = Array.isArray(m.messages) ? m.messages : [];
    if (!r) return;
    if (ref.startsWith('hb:')) {
      r.loadingOlder = false;
      mergeRoom(r, msgs, false);
      if (msgs.length < PAGE || r.minSeq <= 1) r.reachedStart = true;
      renderRoomBar();
      requestAnimationFrame(maybeFill);
    } else if (ref.startsWith('ha:')) {
      mergeRoom(r, msgs, false);
      const top = msgs.reduce((a, x) => (typeof x.seq === 'number' && x.seq > a ? x.seq : a), 0);
      if (msgs.length >= CATCH_UP_PAGE && top > r.cursor) {
        r.cursor = top;
        rawSend({ type: 'history', room: r.name, after: r.cursor, limit: CATCH_UP_PAGE, ref: 'ha:' + r.name });
      }
    } else if (ref.startsWith('hc:')) {
      const n = mergeRoom(r, msgs, false);
      if (r.minSeq === 1) r.reachedStart = true;
      systemLine(r, msgs.length
        ? 'History of #' + r.name + ': the last ' + msgs.length + (msgs.length === 1 ? ' message' : ' messages') +
          (n ? ' (' + n + ' not shown before)' : ', all shown above') + '.'
        : 'History of #' + r.name + ': no messages.');
    } else {
      mergeRoom(r, msgs, false);
    }
  }

  function onRooms(m) {
    const rooms = Array.isArray(m.rooms) ? m.rooms : [];
    renderOpenRooms(rooms);
    if (m.ref === 'cmd:rooms' && S.active) {
      systemLine(S.active, rooms.length
        ? 'Rooms: ' + rooms.map((x) => '#' + x.name + ' (' + x.members + ')').join(', ')
        : 'Rooms: none.');
    }
  }

  function onWho(m) {
    const r = S.rooms.get(m.room);
    const members = sortNicks(m.members);
    if (r) {
      r.members = members;
      if (r === S.active) renderMembers();
    }
    if (m.ref === 'cmd:who' && S.active) {
      systemLine(S.active, '#' + m.room + ' (' + members.length + '): ' + members.join(', '));
    }
  }

  function onError(m) {
    const ref = typeof m.ref === 'string' ? m.ref : '';
    const text = (typeof m.message === 'string' && m.message ? m.message : 'something went wrong') +
      (m.code ? ' (' + m.code + ')' : '');
    const e = ref && S.outbox.get(ref);
    if (e) {
      S.outbox.delete(ref);
      markFailed(e, text);
      refreshState();
      return;
    }
    if (ref.startsWith('nick')) {
      S.pendingNick = null;
      if (ref === 'nick:restore') S.wantNick = S.nick;
      const msg = 'Could not change your name: ' + text;
      if (S.prompt) {
        // The name prompt stays, with the name that failed, to be edited.
        S.promptJoin = null;
        resetPromptButton();
        showPromptError(ref === 'nick:restore' ? 'Your name from last time is not free: ' + text : msg);
        ui.promptName.focus();
        ui.promptName.select();
        return;
      }
      if (S.landingOpen) {
        showLandingError(msg);
        ui.name.focus();
        S.notice = msg; // a join sent with it may open the chat next
      }
      if (S.active) systemLine(S.active, msg, 'error');
      if (ref === 'nick:' + ui.name.value.trim()) {
        ui.name.value = S.nick;
        S.shownName = S.nick;
      }
      return;
    }
    if (ref.startsWith('hb:')) {
      const r = S.rooms.get(ref.slice(3));
      if (r) r.loadingOlder = false;
    }
    if (ref.startsWith('rj:')) {
      const r = S.rooms.get(ref.slice(3));
      if (r) systemLine(r, 'Could not rejoin #' + r.name + ': ' + text, 'error');
      return;
    }
    if (S.prompt) {
      S.promptJoin = null;
      resetPromptButton();
      showPromptError(text);
      return;
    }
    if (S.landingOpen || !S.active) showLandingError(text);
    else systemLine(S.active, text, 'error');
  }

  // ----------------------------------------------------------------- render

  function renderMembers() {
    const t = S.active;
    let list = [];
    if (t && t.kind === 'room') list = t.members;
    else if (t && t.kind === 'dm') list = sortNicks(sameNick(t.name, S.nick) ? [S.nick] : [t.name, S.nick]);
    const frag = document.createDocumentFragment();
    for (const n of list) {
      const li = el('li', sameNick(n, S.nick) ? 'self' : null);
      li.dataset.nick = n;
      const b = el('button', 'member ' + nickClass(n), n);
      b.type = 'button';
      b.title = sameNick(n, S.nick) ? 'This is you' : 'Send ' + n + ' a direct message';
      b.addEventListener('click', () => {
        if (sameNick(n, S.nick)) return;
        activate(dmTab(n));
        closeMembersOnPhone();
      });
      li.appendChild(b);
      frag.appendChild(li);
    }
    ui.members.textContent = '';
    ui.members.appendChild(frag);
    ui.membersToggle.textContent = 'Members (' + list.length + ')';
  }

  function renderRoomBar() {
    const t = S.active;
    const room = t && t.kind === 'room';
    ui.share.hidden = !room;
    if (room) {
      const link = location.origin + '/#' + t.name;
      ui.roomCode.textContent = t.name;
      ui.shareLink.href = link;
      ui.shareLink.firstChild.textContent = location.origin;
      ui.shareLink.lastChild.textContent = '/#' + t.name;
      ui.shareLink.title = 'Link that joins #' + t.name;
      ui.leave.textContent = 'Leave';
      ui.leave.setAttribute('aria-label', 'Leave #' + t.name);
    } else {
      ui.roomCode.textContent = '';
      ui.shareLink.setAttribute('href', '/');
      ui.shareLink.firstChild.textContent = '';
      ui.shareLink.lastChild.textContent = '';
      ui.leave.textContent = 'Close';
      ui.leave.setAttribute('aria-label', t ? 'Close the conversation with ' + t.name : 'Close');
    }
    ui.copyNote.textContent = '';
    if (!S.preview) ui.input.placeholder = placeholder();
    ui.attach.disabled = !room;
    ui.loadOlder.hidden = !room || t.reachedStart || !t.seqs.size;
    ui.loadOlder.textContent = room && t.loadingOlder ? 'Loading…' : 'Load older messages';
    if (!room) clearPreview();
  }

  function placeholder() {
    const t = S.active;
    if (!t) return 'Message';
    return t.kind === 'room' ? 'Message #' + t.name : 'Message @' + t.name;
  }

  function renderOpenRooms(rooms) {
    const frag = document.createDocumentFragment();
    for (const x of rooms) {
      if (!x || typeof x.name !== 'string') continue;
      const li = el('li');
      li.dataset.room = x.name;
      const b = el('button', 'room-btn');
      b.type = 'button';
      b.appendChild(el('span', 'room-name', '#' + x.name));
      const n = Number(x.members) || 0;
      b.appendChild(el('span', 'room-count', n + (n === 1 ? ' person' : ' people')));
      b.setAttribute('aria-label', 'Join #' + x.name + ', ' + n + (n === 1 ? ' person' : ' people') + ' here');
      b.addEventListener('click', () => {
        applyName();
        joinRoom(x.name);
      });
      li.appendChild(b);
      frag.appendChild(li);
    }
    ui.openRooms.textContent = '';
    ui.openRooms.appendChild(frag);
    ui.noRooms.hidden = rooms.length > 0;
  }

  function fetchRooms() {
    fetch('/api/rooms', { cache: 'no-store' })
      .then((r) => (r.ok ? r.json() : null))
      .then((j) => {
        if (j && Array.isArray(j.rooms)) renderOpenRooms(j.rooms);
      })
      .catch(() => {});
  }

  function showLandingError(text) {
    ui.landingError.textContent = text;
  }

  function clearLandingError() {
    ui.landingError.textContent = '';
  }

  // ------------------------------------------------------------- scrolling

  function maybeFill() {
    const t = S.active;
    if (!t || t.kind !== 'room') return;
    renderRoomBar();
    const b = ui.messages;
    if (b.scrollHeight <= b.clientHeight + 8 && !t.reachedStart && t.seqs.size) loadOlder(t);
  }

  function loadOlder(r) {
    if (!r || r.kind !== 'room' || r.reachedStart || r.loadingOlder || !ready()) return;
    const before = r.seqs.size ? r.minSeq : r.lastSeq + 1;
    if (before <= 1) {
      r.reachedStart = true;
      renderRoomBar();
      return;
    }
    r.loadingOlder = true;
    rawSend({ type: 'history', room: r.name, before, limit: PAGE, ref: 'hb:' + r.name });
    renderRoomBar();
  }

  ui.messages.addEventListener('scroll', () => {
    S.stick = isAtBottom();
    if (ui.messages.scrollTop < 80 && S.active) loadOlder(S.active);
  }, { passive: true });

  ui.loadOlder.addEventListener('click', () => loadOlder(S.active));

  // A list that follows new messages stays at the bottom when it changes size
  // (the phone keyboard, the image preview, the typing line).
  if ('ResizeObserver' in window) {
    new ResizeObserver(() => {
      if (S.stick) ui.messages.scrollTop = ui.messages.scrollHeight;
    }).observe(ui.messages);
  }

  // ---------------------------------------------------------------- sending

  function enqueue(payload, t, shown) {
    const e = { cid: payload.cid, payload, tab: t, node: null, sentConn: 0 };
    const node = renderMessage(shown);
    node.classList.add('pending');
    node.dataset.cid = payload.cid;
    node.title = 'Not confirmed by the server yet';
    e.node = node;
    listOf(t).appendChild(node);
    S.outbox.set(e.cid, e);
    if (t === S.active) scrollToBottom();
    flushOutbox();
    refreshState();
  }

  function flushOutbox() {
    if (!ready()) return;
    for (const e of S.outbox.values()) {
      if (e.sentConn === S.conn) continue;
      if (rawSend(e.payload)) e.sentConn = S.conn;
    }
  }

  function markFailed(e, why) {
    if (!e.node) return;
    const n = e.node;
    n.classList.add('failed');
    n.title = 'Not sent: ' + why;
    const note = el('span', 'fail-note', ' Not sent: ' + why + ' ');
    const retry = el('button', 'small', 'Retry');
    retry.type = 'button';
    retry.addEventListener('click', () => {
      note.remove();
      retry.remove();
      n.classList.remove('failed');
      e.sentConn = 0;
      S.outbox.set(e.cid, e);
      // Keep it last among the pending ones.
      listOf(e.tab).appendChild(n);
      flushOutbox();
      refreshState();
    });
    const dismiss = el('button', 'small', 'Dismiss');
    dismiss.type = 'button';
    dismiss.addEventListener('click', () => n.remove());
    n.append(note, retry, dismiss);
  }

  function sendText(text, action) {
    const t = S.active;
    if (!t) return false;
    if (!text.trim()) return false;
    const size = byteLength(text);
    if (size > S.limits.max_message) {
      systemLine(t, 'That message is ' + size + ' bytes; at most ' + S.limits.max_message + ' can be sent.', 'error');
      return false;
    }
    const cid = newCid();
    if (t.kind === 'room') {
      const payload = { type: 'say', room: t.name, text, cid, ref: cid };
      if (action) payload.action = true;
      enqueue(payload, t, { from: S.nick, text, action, ts: Date.now() });
    } else {
      if (action) {
        systemLine(t, '/me works in rooms only.', 'error');
        return false;
      }
      enqueue({ type: 'dm', to: t.name, text, cid, ref: cid }, t, { from: S.nick, text, ts: Date.now() });
    }
    return true;
  }

  function sendDm(to, text) {
    const size = byteLength(text);
    const t = dmTab(to);
    activate(t);
    if (size > S.limits.max_message) {
      systemLine(t, 'That message is ' + size + ' bytes; at most ' + S.limits.max_message + ' can be sent.', 'error');
      return false;
    }
    const cid = newCid();
    enqueue({ type: 'dm', to, text, cid, ref: cid }, t, { from: S.nick, text, ts: Date.now() });
    return true;
  }

  function clearInput() {
    ui.input.value = '';
    autosize();
  }

  function submit() {
    if (S.preview) {
      sendPreview();
      return;
    }
    // The server turns control characters (newlines too) into U+FFFD, so
    // each line typed with Shift+Enter goes as its own message, as if typed
    // one after the other.
    const lines = ui.input.value.split(/\r?\n/).map((l) => l.replace(/\s+$/, '')).filter((l) => l.trim());
    if (!lines.length) return;
    const most = Math.max(1, Number(S.limits.burst) || 20);
    if (lines.length > most) {
      if (S.active) systemLine(S.active, 'That is ' + lines.length + ' lines; at most ' + most + ' can be sent at once.', 'error');
      return;
    }
    const tooLong = lines.find((l) => byteLength(l) > S.limits.max_message);
    if (tooLong) {
      if (S.active) systemLine(S.active, 'A message is ' + byteLength(tooLong) + ' bytes; at most ' + S.limits.max_message + ' can be sent.', 'error');
      return;
    }
    for (const raw of lines) {
      if (raw.startsWith('/') && !raw.startsWith('//')) command(raw.trim());
      else sendText(raw.startsWith('//') ? raw.slice(1) : raw, false);
    }
    clearInput();
  }

  function help(t) {
    const lines = [
      'Commands:',
      '/nick NAME: change your name',
      '/join ROOM: join ROOM (made if absent) and switch to it',
      '/create: make an unlisted room with a fresh code',
      '/leave [ROOM] or /part: leave ROOM or this room',
      '/rooms: the open rooms with their member counts',
      '/who [ROOM]: who is in ROOM or this room',
      '/msg NICK TEXT: a direct message (opens its own tab)',
      '/me TEXT: an action',
      '/history [N]: the last N messages of this room (default 20, at most 200)',
      '/quit: leave every room now and start afresh',
      '//text: send “/text”',
      'Enter sends, Shift+Enter starts a new line; paste or drop an image to send it. Limits: messages up to ' +
        S.limits.max_message + ' bytes, images up to ' + fmtSize(S.limits.max_image) + '.',
    ];
    for (const l of lines) systemLine(t, l, 'help');
  }

  function currentRoom() {
    return S.active && S.active.kind === 'room' ? S.active.name : '';
  }

  function needConnection(t) {
    if (ready()) return true;
    systemLine(t, 'Not connected right now; try again once the connection is back.', 'error');
    return false;
  }

  function command(line) {
    const m = line.match(/^\/(\S+)\s*([\s\S]*)$/);
    const t = S.active;
    if (!m || !t) return;
    const cmd = m[1].toLowerCase();
    const rest = m[2].trim();
    const usage = (u) => systemLine(t, 'Usage: ' + u, 'error');
    switch (cmd) {
      case 'nick':
        if (!rest) return usage('/nick NAME');
        if (needConnection(t)) changeNick(rest);
        return;
      case 'join': {
        const room = cleanRoom(rest);
        if (!room) return usage('/join ROOM');
        if (!ROOM_RE.test(room)) return systemLine(t, 'A room name is 1–32 letters, digits, _ or -.', 'error');
        if (needConnection(t)) joinRoom(room);
        return;
      }
      case 'create':
        if (needConnection(t)) createRoom();
        return;
      case 'leave':
      case 'part': {
        const room = cleanRoom(rest.split(/\s+/)[0]);
        if (!room && t.kind === 'dm') return removeTab(t);
        const target = room || currentRoom();
        if (!target) return usage('/leave ROOM');
        if (needConnection(t)) rawSend({ type: 'leave', room: target, ref: 'leave:' + target });
        return;
      }
      case 'rooms':
      case 'list':
        if (needConnection(t)) rawSend({ type: 'rooms', ref: 'cmd:rooms' });
        return;
      case 'who':
      case 'names': {
        const room = cleanRoom(rest.split(/\s+/)[0]) || currentRoom();
        if (!room) return usage('/who ROOM');
        if (needConnection(t)) rawSend({ type: 'who', room, ref: 'cmd:who' });
        return;
      }
      case 'msg':
      case 'query': {
        const mm = rest.match(/^(\S+)\s+([\s\S]+)$/);
        if (!mm) return usage('/msg NICK TEXT');
        sendDm(mm[1], mm[2]);
        return;
      }
      case 'me':
        if (!rest) return usage('/me TEXT');
        sendText(rest, true);
        return;
      case 'history': {
        const room = currentRoom();
        if (!room) return systemLine(t, '/history works in rooms only.', 'error');
        let n = 20;
        if (rest) {
          if (!/^\d+$/.test(rest)) return usage('/history [N]');
          n = Math.min(200, parseInt(rest, 10));
        }
        if (n === 0) return systemLine(t, 'History of #' + room + ': no messages.');
        if (needConnection(t)) rawSend({ type: 'history', room, limit: n, ref: 'hc:' + room });
        return;
      }
      case 'help':
        help(t);
        return;
      case 'quit':
        quit();
        return;
      default:
        systemLine(t, 'Unknown command /' + m[1] + ': /help lists the commands.', 'error');
    }
  }

  // /quit: the session ends now (every room sees the leave at once) and is
  // forgotten; the page starts afresh on the landing, keeping the name.
  function quit() {
    const ws = S.ws;
    S.conn += 1; // the old socket's events are ignored from now on
    S.ws = null;
    S.welcomed = false;
    S.session = '';
    S.restore = null;
    S.queued = [];
    S.outbox.clear();
    clearTimeout(S.retryTimer);
    for (const t of S.order.slice()) removeTab(t);
    saveState();
    showLanding();
    showLandingError('You quit: your rooms saw you leave. Pick a room to chat again.');
    // A close frame with 1000 is a quit for the server. Reconnect once it
    // has answered, so that the name is free again.
    if (!ws) {
      connect();
      return;
    }
    let again = () => {
      again = () => {};
      if (!S.ws) connect();
    };
    ws.onmessage = ws.onerror = null;
    ws.onclose = () => again();
    setTimeout(() => again(), 3000);
    try {
      ws.close(1000);
    } catch (e) {
      again();
    }
  }

  function changeNick(name) {
    if (!NICK_RE.test(name)) {
      const msg = 'A name is 1–24 letters, digits, _ or -, starting with a letter.';
      if (S.landingOpen) showLandingError(msg);
      else if (S.active) systemLine(S.active, msg, 'error');
      return false;
    }
    if (name === S.nick || name === S.pendingNick) return true;
    S.pendingNick = name;
    S.wantNick = name;
    request({ type: 'nick', nick: name, ref: 'nick:' + name });
    return true;
  }

  function applyName() {
    const v = ui.name.value.trim();
    if (!v || v === S.nick || v === S.pendingNick) return true;
    return changeNick(v);
  }

  function joinRoom(room) {
    room = cleanRoom(room);
    if (!ROOM_RE.test(room)) {
      const msg = 'A room code or name is 1–32 letters, digits, _ or -.';
      if (S.landingOpen || !S.active) showLandingError(msg);
      else systemLine(S.active, msg, 'error');
      return;
    }
    const known = S.rooms.get(room.toLowerCase());
    const req = { type: 'join', room, ref: 'j:' + room.toLowerCase() };
    if (known) {
      activate(known);
      if (known.seqs.size) req.since = known.maxSeq;
    }
    request(req);
  }

  function createRoom() {
    request({ type: 'create', ref: 'c:' + newCid().slice(0, 8) });
  }

  // ---------------------------------------------------------------- images

  function startPreview(file) {
    const t = S.active;
    if (!file) return;
    if (!t || t.kind !== 'room') {
      if (t) systemLine(t, 'Images can be sent in rooms only.', 'error');
      return;
    }
    if (file.type && !IMAGE_TYPES.includes(file.type)) {
      systemLine(t, 'Only PNG, JPEG, GIF or WebP images can be sent.', 'error');
      return;
    }
    if (file.size > S.limits.max_image) {
      systemLine(t, 'That image is ' + fmtSize(file.size) + '; at most ' + fmtSize(S.limits.max_image) + ' can be sent.', 'error');
      return;
    }
    if (!file.size) {
      systemLine(t, 'That file is empty.', 'error');
      return;
    }
    clearPreview();
    const url = URL.createObjectURL(file);
    S.preview = { file, url, room: t };
    ui.previewImg.src = url;
    ui.previewText.textContent = (file.name || 'pasted image') + ' (' + fmtSize(file.size) + ')';
    ui.preview.hidden = false;
    ui.input.placeholder = 'Caption (optional), then Enter';
    ui.input.focus();
  }

  function clearPreview() {
    if (!S.preview) return;
    URL.revokeObjectURL(S.preview.url);
    S.preview = null;
    ui.preview.hidden = true;
    ui.previewImg.removeAttribute('src');
    ui.previewText.textContent = '';
    ui.input.placeholder = placeholder();
  }

  function readBase64(file) {
    return new Promise((resolve, reject) => {
      const fr = new FileReader();
      fr.onload = () => {
        const s = String(fr.result);
        const i = s.indexOf(',');
        resolve(i >= 0 ? s.slice(i + 1) : '');
      };
      fr.onerror = () => reject(fr.error);
      fr.readAsDataURL(file);
    });
  }

  async function sendPreview() {
    const p = S.preview;
    const t = S.active;
    if (!p || !t || t.kind !== 'room') return;
    const caption = ui.input.value.replace(/\s+$/, '').replace(/\s*\r?\n\s*/g, ' ');
    if (byteLength(caption) > S.limits.max_message) {
      systemLine(t, 'That caption is too long (at most ' + S.limits.max_message + ' bytes).', 'error');
      return;
    }
    clearPreview();
    clearInput();
    let data;
    try {
      data = await readBase64(p.file);
    } catch (e) {
      systemLine(t, 'Could not read that image.', 'error');
      return;
    }
    if (data.length + caption.length * 3 + 200 > S.limits.max_ws_message) {
      systemLine(t, 'That image is too large to send.', 'error');
      return;
    }
    const cid = newCid();
    const payload = { type: 'image', room: t.name, data, cid, ref: cid };
    if (caption) payload.text = caption;
    enqueue(payload, t, { from: S.nick, text: caption ? '[image] ' + caption : '[sending an image…]', ts: Date.now() });
  }

  ui.attach.addEventListener('click', () => ui.file.click());
  ui.file.addEventListener('change', () => {
    const f = ui.file.files && ui.file.files[0];
    if (f) startPreview(f);
    ui.file.value = '';
  });
  ui.previewCancel.addEventListener('click', () => {
    clearPreview();
    ui.input.focus();
  });

  ui.input.addEventListener('paste', (e) => {
    const items = e.clipboardData ? Array.from(e.clipboardData.files || []) : [];
    const img = items.find((f) => f.type.startsWith('image/'));
    if (img) {
      e.preventDefault();
      startPreview(img);
    }
  });

  let dragDepth = 0;
  const hasFiles = (e) => e.dataTransfer && Array.from(e.dataTransfer.types || []).includes('Files');
  ui.chat.addEventListener('dragenter', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    dragDepth += 1;
    ui.chat.classList.add('dragging');
  });
  ui.chat.addEventListener('dragover', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
  });
  ui.chat.addEventListener('dragleave', () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) ui.chat.classList.remove('dragging');
  });
  ui.chat.addEventListener('drop', (e) => {
    dragDepth = 0;
    ui.chat.classList.remove('dragging');
    if (!hasFiles(e)) return;
    e.preventDefault();
    const f = Array.from(e.dataTransfer.files || []).find((x) => x.type.startsWith('image/')) || e.dataTransfer.files[0];
    startPreview(f);
  });
  // Dropping a file elsewhere must not navigate away from the chat.
  window.addEventListener('dragover', (e) => { if (hasFiles(e)) e.preventDefault(); });
  window.addEventListener('drop', (e) => { if (hasFiles(e)) e.preventDefault(); });

  // --------------------------------------------------------------- composer

  function autosize() {
    const lines = ui.input.value.split('\n').length;
    ui.input.rows = Math.max(1, Math.min(6, lines));
  }

  ui.input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      submit();
    } else if (e.key === 'Escape' && S.preview) {
      clearPreview();
    }
  });

  ui.input.addEventListener('input', () => {
    autosize();
    const t = S.active;
    const v = ui.input.value;
    if (!t || t.kind !== 'room' || !v.trim() || (v.startsWith('/') && !v.startsWith('//'))) return;
    const now = Date.now();
    if (now - S.lastTyping >= TYPING_SEND_MS && ready()) {
      S.lastTyping = now;
      rawSend({ type: 'typing', room: t.name });
    }
  });

  ui.composer.addEventListener('submit', (e) => {
    e.preventDefault();
    submit();
    ui.input.focus();
  });

  // ---------------------------------------------------------------- landing

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
  ui.refreshRooms.addEventListener('click', () => {
    if (ready()) rawSend({ type: 'rooms', ref: 'landing' });
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

  // ------------------------------------------------------------ name prompt

  // A share link (/#CODE) opened without a session asks for a name first,
  // prefilled (the name from last time, or the one the server gave), and
  // joins under it once the server has confirmed it: the room never sees a
  // generated name come and go.
  function showPrompt(room) {
    S.prompt = room;
    S.promptJoin = null;
    S.landingOpen = false;
    ui.landing.hidden = true;
    ui.chat.hidden = true;
    ui.prompt.hidden = false;
    document.body.classList.add('prompting');
    ui.promptRoom.textContent = '#' + room;
    document.title = 'Join #' + room + ' · natter';
    clearPromptError();
    resetPromptButton();
    const name = S.pendingNick || S.wantNick || S.nick;
    if (!ui.promptName.value.trim() && name) {
      ui.promptName.value = name;
      S.promptShown = name;
    }
    ui.promptName.focus();
    ui.promptName.select();
  }

  function hidePrompt() {
    if (!S.prompt && ui.prompt.hidden) return;
    S.prompt = '';
    S.promptJoin = null;
    ui.prompt.hidden = true;
    document.body.classList.remove('prompting');
    resetPromptButton();
    clearPromptError();
  }

  function resetPromptButton() {
    ui.promptJoin.disabled = false;
    ui.promptJoin.textContent = 'Join';
    ui.promptName.removeAttribute('aria-invalid');
  }

  function showPromptError(text) {
    ui.promptError.textContent = text;
    ui.promptName.setAttribute('aria-invalid', 'true');
  }

  function clearPromptError() {
    ui.promptError.textContent = '';
  }

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
      request({ type: 'nick', nick: name, ref: 'nick:' + name });
    } // else: that very name is on its way; onNick finishes
  }

  function finishPrompt() {
    const p = S.promptJoin;
    if (!p) return;
    S.promptJoin = null;
    rememberName(p.nick);
    joinRoom(p.room); // its joined opens the chat, which hides the prompt
  }

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

  // ------------------------------------------------------------- room bar

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
    if (!ready()) {
      systemLine(t, 'Not connected right now; try again once the connection is back.', 'error');
      return;
    }
    rawSend({ type: 'leave', room: t.name, ref: 'leave:' + t.name });
  });

  function closeMembersOnPhone() {
    ui.chat.classList.remove('show-members');
    ui.membersToggle.setAttribute('aria-expanded', 'false');
  }

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

  function renderNotify() {
    ui.notify.setAttribute('aria-pressed', S.notify ? 'true' : 'false');
    ui.notify.textContent = S.notify ? 'Notifications on' : 'Notifications off';
  }

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
    try {
      localStorage.setItem(NOTIFY_KEY, S.notify ? '1' : '0');
    } catch (e) {
      /* storage may be off */
    }
    renderNotify();
  });

  // ------------------------------------------------------------ persistence

  // This tab's nick, rooms and session (sessionStorage: it survives a
  // reload, and another tab never shares it). A session is kept only while
  // it has rooms: leaving the last one forgets it.
  function saveState() {
    try {
      sessionStorage.setItem(STORAGE_KEY, JSON.stringify({
        nick: S.wantNick || S.nick,
        rooms: Array.from(S.rooms.keys()),
        active: currentRoom(),
        session: S.rooms.size ? S.session : '',
      }));
    } catch (e) {
      /* storage may be off */
    }
  }

  function loadState() {
    try {
      return JSON.parse(sessionStorage.getItem(STORAGE_KEY) || 'null');
    } catch (e) {
      return null;
    }
  }

  function rememberName(nick) {
    try {
      localStorage.setItem(NAME_KEY, nick);
    } catch (e) {
      /* storage may be off */
    }
  }

  function rememberedName() {
    try {
      const n = localStorage.getItem(NAME_KEY) || '';
      return NICK_RE.test(n) ? n : '';
    } catch (e) {
      return '';
    }
  }

  // Sessions of tabs that were closed (or are reloading), in localStorage,
  // oldest first: a tab opened within the grace claims the newest and
  // resumes it. A tab that is still open has released nothing, so a second
  // tab never takes its session over.
  function readReleased() {
    try {
      const list = JSON.parse(localStorage.getItem(RELEASED_KEY) || '[]');
      const now = Date.now();
      return (Array.isArray(list) ? list : []).filter((x) => x && typeof x.session === 'string' &&
        TOKEN_RE.test(x.session) && typeof x.time === 'number' && now - x.time < RESUME_MS && x.time < now + 5000);
    } catch (e) {
      return [];
    }
  }

  function writeReleased(list) {
    try {
      if (list.length) localStorage.setItem(RELEASED_KEY, JSON.stringify(list));
      else localStorage.removeItem(RELEASED_KEY);
    } catch (e) {
      /* storage may be off */
    }
  }

  function release() {
    const list = readReleased().filter((x) => x.session !== S.session).slice(-4);
    list.push({ session: S.session, nick: S.nick, rooms: Array.from(S.rooms.keys()), active: currentRoom(), time: Date.now() });
    writeReleased(list);
  }

  // Takes a released session back; whether it was still there.
  function unrelease(token) {
    const list = readReleased();
    const rest = list.filter((x) => x.session !== token);
    writeReleased(rest);
    return rest.length !== list.length;
  }

  function claimReleased() {
    const list = readReleased().sort((a, b) => a.time - b.time);
    let newest = list.pop() || null;
    while (newest && isLive(newest.session)) newest = list.pop() || null;
    writeReleased(list);
    return newest;
  }

  // Every open tab marks its session live (a time, refreshed every 2 s, taken
  // off on pagehide). A tab that starts with a session in its sessionStorage
  // that is live elsewhere is a copy of an open tab ("Duplicate tab", a link
  // opened in a new tab, window.open): it must not resume it, or the open
  // tab would be closed with 4000 ("session replaced").
  function readLive() {
    try {
      const o = JSON.parse(localStorage.getItem(LIVE_KEY) || '{}');
      return o && typeof o === 'object' && !Array.isArray(o) ? o : {};
    } catch (e) {
      return {};
    }
  }

  function isLive(token) {
    const at = readLive()[token];
    return typeof at === 'number' && Math.abs(Date.now() - at) < LIVE_MS;
  }

  function markLive(on) {
    try {
      const now = Date.now();
      const live = readLive();
      for (const k of Object.keys(live)) if (typeof live[k] !== 'number' || Math.abs(now - live[k]) >= LIVE_MS) delete live[k];
      if (S.liveToken && (S.liveToken !== S.session || !on)) delete live[S.liveToken];
      S.liveToken = '';
      if (on && S.session) {
        live[S.session] = now;
        S.liveToken = S.session;
        S.liveAt = now;
      }
      if (Object.keys(live).length) localStorage.setItem(LIVE_KEY, JSON.stringify(live));
      else localStorage.removeItem(LIVE_KEY);
    } catch (e) {
      /* storage may be off */
    }
  }

  // Leaving the page (a reload, a closed tab): nothing is sent, so the room
  // sees nothing. The browser closes the socket with 1001 and the server
  // holds the session for its grace; this tab (sessionStorage) or the next
  // one opened (localStorage) resumes it. A page in no room has nothing to
  // hold: it ends its session now, so that its name is free at once.
  window.addEventListener('pagehide', () => {
    markLive(false);
    if (S.session && S.rooms.size) {
      saveState();
      release();
      return;
    }
    const ws = S.ws;
    if (!ws) return;
    S.conn += 1;
    S.ws = null;
    S.welcomed = false;
    ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close(1000);
    } catch (e) {
      /* already gone */
    }
  });

  // Back from the back/forward cache: take the session back (unless another
  // tab has claimed it meanwhile) and reconnect.
  window.addEventListener('pageshow', (e) => {
    if (!e.persisted) return;
    if (S.session && (!unrelease(S.session) || isLive(S.session))) S.session = '';
    markLive(true);
    if (!S.ws || S.ws.readyState > WebSocket.OPEN) reconnectNow();
  });

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

  window.addEventListener('hashchange', () => {
    const room = hashRoom();
    if (room && S.prompt) showPrompt(room);
    else if (room) joinRoom(room);
  });

  // ---------------------------------------------------------------- wiring

  window.addEventListener('online', () => {
    refreshState();
    if (S.ws && S.ws.readyState === WebSocket.OPEN) {
      flushOutbox();
      S.probeAt = Date.now();
      rawSend({ type: 'rooms', ref: 'probe' });
    } else {
      reconnectNow();
    }
  });
  window.addEventListener('offline', refreshState);
  ui.retry.addEventListener('click', reconnectNow);

  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && S.active) markRead(S.active);
    // Waking up from the background: check the connection at once.
    if (!document.hidden && S.ws && S.welcomed && Date.now() - S.lastFrame > PROBE_IDLE_MS && !S.probeAt) {
      S.probeAt = Date.now();
      rawSend({ type: 'rooms', ref: 'probe' });
    }
    if (!document.hidden && !S.ws && S.retryTimer) reconnectNow();
  });
  window.addEventListener('focus', () => {
    if (S.active) markRead(S.active);
  });

  setInterval(() => {
    if (S.session && Date.now() - S.liveAt > 2000) markLive(true);
    probe();
    renderTyping();
    if (S.landingOpen && ready() && Date.now() - S.lastFrame > 15000) rawSend({ type: 'rooms', ref: 'landing' });
  }, 1000);

  // The read-only view the browser tests use.
  const debug = Object.freeze({
    get nick() { return S.nick; },
    get session() { return S.session; },
    get rooms() { return Array.from(S.rooms.keys()); },
    get state() { return S.state; },
  });
  Object.defineProperty(window, 'natter', { value: debug, writable: false, configurable: false, enumerable: true });

  // ----------------------------------------------------------------- start

  try {
    S.notify = localStorage.getItem(NOTIFY_KEY) === '1' && 'Notification' in window && Notification.permission === 'granted';
  } catch (e) {
    S.notify = false;
  }
  renderNotify();
  renderMembers();
  renderRoomBar();
  refreshState();
  fetchRooms();

  // After a reload in this tab: its session (sessionStorage). In a new tab:
  // the session a closed tab released, if one is young enough. Either way
  // the same name and rooms again, unnoticed by the rooms.
  const saved = loadState();
  const fromHash = hashRoom();
  let restore = null;
  const copied = !!saved && typeof saved.session === 'string' && isLive(saved.session);
  if (saved && typeof saved.session === 'string' && TOKEN_RE.test(saved.session) && !copied) {
    restore = saved;
    unrelease(saved.session); // released by this very reload: nobody else may take it
  } else {
    // A copy of an open tab's storage starts afresh, like any new tab.
    restore = claimReleased() || (copied ? null : saved);
  }
  if (restore && typeof restore.session === 'string' && TOKEN_RE.test(restore.session)) S.session = restore.session;
  const restoredNick = restore && typeof restore.nick === 'string' && NICK_RE.test(restore.nick) ? restore.nick : '';
  S.wantNick = restoredNick || rememberedName();
  if (S.wantNick) {
    ui.name.value = S.wantNick;
    S.shownName = S.wantNick;
  }
  const restoreRooms = restore && Array.isArray(restore.rooms)
    ? restore.rooms.filter((room) => typeof room === 'string' && ROOM_RE.test(room) && !(fromHash && sameNick(room, fromHash)))
    : [];
  if (S.session || restoreRooms.length) {
    const active = !fromHash && typeof restore.active === 'string' ? restore.active : '';
    S.restore = { rooms: restoreRooms, active };
  }
  if (fromHash && (S.session || restoreRooms.length)) joinRoom(fromHash); // back in: no need to ask
  else if (fromHash) showPrompt(fromHash);
  connect();
})();
