// session.js: what the page keeps in the browser's storage, and which
// session a page resumes when it starts.
//
// sessionStorage (this tab only, survives a reload):
//   natter.state     this tab's nick, rooms, active room and session token
// localStorage (every tab of the site, survives closing the browser):
//   natter.name      the name chosen last, offered on the next visit
//   natter.notify    desktop notifications on ('1') or off
//   natter.released  sessions of tabs just closed or reloading, for the
//                    next tab to resume within the server's grace
//   natter.live      sessions open in a tab right now, which no other tab
//                    may take over
//   natter.login     the remembered login: {account, token}, the login
//                    token the server gave at sign-up, log-in or password
//                    change; every (re)connect of every tab logs in with
//                    it (protocol.js), logging out forgets it
//
// No DOM and no `window`: the storages and the clock are given to it
// (`env`), so tests/web runs it under Node. They are getters because merely
// reading window.localStorage throws where storage is turned off; every use
// is wrapped so that the page still works then, remembering nothing.

import { NICK_RE, ROOM_RE, TOKEN_RE, LOGIN_TOKEN_RE, sameNick } from './util.js';

export const STATE_KEY = 'natter.state';
export const NAME_KEY = 'natter.name';
export const NOTIFY_KEY = 'natter.notify';
export const RELEASED_KEY = 'natter.released';
export const LIVE_KEY = 'natter.live';
export const LOGIN_KEY = 'natter.login';
export const RESUME_MS = 120000; // the server's default --resume-grace
export const LIVE_MS = 75000; // a tab marks its session live every 2 s (a hidden tab's timers may wait a minute)

export class SessionStore {
  // env: { session() -> Storage, local() -> Storage, now() -> ms }
  constructor(env) {
    this.env = env;
    this.liveToken = ''; // the session this tab last marked live
    this.liveAt = 0; // and when
  }

  // This tab's state: {nick, rooms, active, session}. A session is kept only
  // while it has rooms: the page passes '' once the last one is left.
  save(state) {
    try {
      this.env.session().setItem(STATE_KEY, JSON.stringify(state));
    } catch (e) {
      /* storage may be off */
    }
  }

  load() {
    try {
      return JSON.parse(this.env.session().getItem(STATE_KEY) || 'null');
    } catch (e) {
      return null;
    }
  }

  rememberName(nick) {
    try {
      this.env.local().setItem(NAME_KEY, nick);
    } catch (e) {
      /* storage may be off */
    }
  }

  rememberedName() {
    try {
      const n = this.env.local().getItem(NAME_KEY) || '';
      return NICK_RE.test(n) ? n : '';
    } catch (e) {
      return '';
    }
  }

  notifyOn() {
    try {
      return this.env.local().getItem(NOTIFY_KEY) === '1';
    } catch (e) {
      return false;
    }
  }

  setNotify(on) {
    try {
      this.env.local().setItem(NOTIFY_KEY, on ? '1' : '0');
    } catch (e) {
      /* storage may be off */
    }
  }

  // ---------------------------------------------------------------- login

  // The remembered login, {account, token}, or null.
  login() {
    try {
      const o = JSON.parse(this.env.local().getItem(LOGIN_KEY) || 'null');
      if (o && typeof o.token === 'string' && LOGIN_TOKEN_RE.test(o.token) && typeof o.account === 'string' && NICK_RE.test(o.account)) {
        return { account: o.account, token: o.token };
      }
      return null;
    } catch (e) {
      return null;
    }
  }

  loginToken() {
    const l = this.login();
    return l ? l.token : '';
  }

  saveLogin(account, token) {
    if (typeof account !== 'string' || !NICK_RE.test(account) || typeof token !== 'string' || !LOGIN_TOKEN_RE.test(token)) return;
    try {
      this.env.local().setItem(LOGIN_KEY, JSON.stringify({ account, token }));
    } catch (e) {
      /* storage may be off: logged in until the page closes */
    }
  }

  // Logged out, or the token was refused. Only `token` is forgotten when it
  // is given: another tab may have stored a newer login meanwhile.
  forgetLogin(token) {
    try {
      if (token && this.loginToken() && this.loginToken() !== token) return;
      this.env.local().removeItem(LOGIN_KEY);
    } catch (e) {
      /* storage may be off */
    }
  }

  // ------------------------------------------------------------- released

  // Sessions of tabs that were closed (or are reloading), oldest first: a
  // tab opened within the grace claims the newest and resumes it. A tab
  // that is still open has released nothing, so a second tab never takes
  // its session over.
  readReleased() {
    try {
      const list = JSON.parse(this.env.local().getItem(RELEASED_KEY) || '[]');
      const now = this.env.now();
      return (Array.isArray(list) ? list : []).filter((x) => x && typeof x.session === 'string' &&
        TOKEN_RE.test(x.session) && typeof x.time === 'number' && now - x.time < RESUME_MS && x.time < now + 5000);
    } catch (e) {
      return [];
    }
  }

  writeReleased(list) {
    try {
      if (list.length) this.env.local().setItem(RELEASED_KEY, JSON.stringify(list));
      else this.env.local().removeItem(RELEASED_KEY);
    } catch (e) {
      /* storage may be off */
    }
  }

  // This page is going away: {session, nick, rooms, active} for the next
  // tab. At most five are kept.
  release(entry) {
    const list = this.readReleased().filter((x) => x.session !== entry.session).slice(-4);
    list.push({ session: entry.session, nick: entry.nick, rooms: entry.rooms, active: entry.active, time: this.env.now() });
    this.writeReleased(list);
  }

  // Takes a released session back; whether it was still there.
  unrelease(token) {
    const list = this.readReleased();
    const rest = list.filter((x) => x.session !== token);
    this.writeReleased(rest);
    return rest.length !== list.length;
  }

  // The newest released session that no open tab holds, taken off the
  // list (or null).
  claimReleased() {
    const list = this.readReleased().sort((a, b) => a.time - b.time);
    let newest = list.pop() || null;
    while (newest && this.isLive(newest.session)) newest = list.pop() || null;
    this.writeReleased(list);
    return newest;
  }

  // ----------------------------------------------------------------- live

  // Every open tab marks its session live (a time, refreshed every 2 s,
  // taken off on pagehide). A tab that starts with a session in its
  // sessionStorage that is live elsewhere is a copy of an open tab
  // ("Duplicate tab", a link opened in a new tab, window.open): it must not
  // resume it, or the open tab would be closed with 4000 ("session
  // replaced").
  readLive() {
    try {
      const o = JSON.parse(this.env.local().getItem(LIVE_KEY) || '{}');
      return o && typeof o === 'object' && !Array.isArray(o) ? o : {};
    } catch (e) {
      return {};
    }
  }

  isLive(token) {
    const at = this.readLive()[token];
    return typeof at === 'number' && Math.abs(this.env.now() - at) < LIVE_MS;
  }

  // Marks `session` live for this tab (on), or takes this tab's mark off;
  // stale marks of other tabs are swept.
  markLive(on, session) {
    try {
      const now = this.env.now();
      const live = this.readLive();
      for (const k of Object.keys(live)) if (typeof live[k] !== 'number' || Math.abs(now - live[k]) >= LIVE_MS) delete live[k];
      if (this.liveToken && (this.liveToken !== session || !on)) delete live[this.liveToken];
      this.liveToken = '';
      if (on && session) {
        live[session] = now;
        this.liveToken = session;
        this.liveAt = now;
      }
      if (Object.keys(live).length) this.env.local().setItem(LIVE_KEY, JSON.stringify(live));
      else this.env.local().removeItem(LIVE_KEY);
    } catch (e) {
      /* storage may be off */
    }
  }

  // ---------------------------------------------------------------- start

  // What a page starting up resumes. After a reload in this tab: its
  // session (sessionStorage). In a new tab: the session a closed tab
  // released, if one is young enough. Either way the same name and rooms
  // again, unnoticed by the rooms. `fromHash` is the room a share link
  // (/#ROOM) opens, or ''.
  //
  // Returns {session, nick, restore}: the token to resume ('' for none),
  // the nick to ask for ('' for none), and {rooms, active}, what to rejoin
  // if the session cannot be resumed (null: nothing).
  startup(fromHash) {
    const saved = this.load();
    let restore = null;
    const copied = !!saved && typeof saved.session === 'string' && this.isLive(saved.session);
    if (saved && typeof saved.session === 'string' && TOKEN_RE.test(saved.session) && !copied) {
      restore = saved;
      this.unrelease(saved.session); // released by this very reload: nobody else may take it
    } else {
      // A copy of an open tab's storage starts afresh, like any new tab.
      restore = this.claimReleased() || (copied ? null : saved);
    }
    const session = restore && typeof restore.session === 'string' && TOKEN_RE.test(restore.session) ? restore.session : '';
    const restoredNick = restore && typeof restore.nick === 'string' && NICK_RE.test(restore.nick) ? restore.nick : '';
    const rooms = restore && Array.isArray(restore.rooms)
      ? restore.rooms.filter((room) => typeof room === 'string' && ROOM_RE.test(room) && !(fromHash && sameNick(room, fromHash)))
      : [];
    let rejoin = null;
    if (session || rooms.length) {
      const active = !fromHash && typeof restore.active === 'string' ? restore.active : '';
      rejoin = { rooms, active };
    }
    return { session, nick: restoredNick || this.rememberedName(), restore: rejoin };
  }
}
