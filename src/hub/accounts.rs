//! Accounts (PROTOCOL-2 section 1): registered nicks, logins by password
//! or token, several connections of one account sharing one nick, and the
//! failed-login limits.
//!
//! The hub keeps every account and login token in memory (a chat server
//! has thousands, not millions) and changes them through the persistence
//! port: a registration, a new token or a password change is a
//! [`Change`] in the turn's batch, and its confirmation waits for the
//! batch like a message does. Password hashing and checking take tens of
//! milliseconds of Argon2id on purpose, so they go out as
//! [`PasswordJob`]s, which the shell runs on its helper thread; the client
//! waits (parked, like a client waiting for a read) until the answer comes
//! back through [`Hub::password_done`]. Tokens are compared by their
//! SHA-256, which is fast: a token is 128 random bits, not a password.
//!
//! Read next: `moderation` (what accounts may do in rooms).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use sha2::{Digest, Sha256};

use super::error::{ErrorCode, HubError};
use super::event::{AccountChange, ClientId, ClientKind, Presence, PresenceKind, Reply};
use super::names::Nick;
use super::port::{AccountRecord, Change, PasswordDone, PasswordJob, TokenRecord};
use super::{Hub, Now};

/// Failed logins allowed per account in [`FAILURE_WINDOW_MS`].
pub const FAILURES_PER_ACCOUNT: usize = 5;
/// Failed logins allowed per address in [`FAILURE_WINDOW_MS`].
pub const FAILURES_PER_ADDRESS: usize = 20;
/// The window the failure limits count over: a minute.
pub const FAILURE_WINDOW_MS: u64 = 60_000;
/// Password jobs out at once; past it a login, registration or password
/// change is refused (`rate_limited`) rather than queued without bound:
/// each costs the helper tens of milliseconds.
pub const MAX_JOBS_OUT: usize = 32;
/// Shortest password, in bytes.
pub const MIN_PASSWORD: usize = 8;
/// Longest password, in bytes.
pub const MAX_PASSWORD: usize = 128;

/// A well-formed Argon2id hash of a random password nobody knows: a login
/// for a nick that is no account is checked against it, so that it costs
/// what a wrong password costs and the answer's timing does not tell which
/// part was wrong.
pub const DECOY_PHC: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$Y5nHpJSBvKtE/SmSec9awQ$UedZX+6xZ2EMRG4M3SMCRvTCPMpe3miu4gW8vh3Du6U";

/// The account settings of the hub, from the command line.
#[derive(Clone, Debug)]
pub struct AccountsConfig {
    /// `--require-login`: guests may only register and log in.
    pub require_login: bool,
    /// `--registration open` (true) or `closed`.
    pub registration_open: bool,
    /// `--admin NAME`: ops in every room (lowercase keys).
    pub admins: Vec<String>,
    /// `--login-days`, in milliseconds: how long a login token works.
    pub token_ms: u64,
    /// `--allow-plaintext-passwords`.
    pub allow_plaintext: bool,
}

impl Default for AccountsConfig {
    fn default() -> AccountsConfig {
        AccountsConfig {
            require_login: false,
            registration_open: true,
            admins: Vec::new(),
            token_ms: 30 * 24 * 3600 * 1000,
            allow_plaintext: false,
        }
    }
}

/// Where a connection comes from, as the shell knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The client's address: bans and mutes of guests, failed-login limits.
    pub ip: IpAddr,
    /// Whether passwords may travel on this connection: TLS, or loopback.
    pub secure: bool,
}

impl Peer {
    /// A loopback peer (tests, examples).
    pub fn loopback() -> Peer {
        Peer {
            ip: IpAddr::from([127, 0, 0, 1]),
            secure: true,
        }
    }
}

/// A new connection, as the shell introduces it to the hub.
#[derive(Clone, Debug)]
pub struct Hello {
    /// Line or WebSocket.
    pub kind: ClientKind,
    /// Where it comes from.
    pub peer: Peer,
    /// The nick it asked for (`/ws?nick=`).
    pub nick: Option<String>,
    /// The session token it may later resume with (WebSocket clients;
    /// made by the shell from the OS's randomness).
    pub session: Option<String>,
    /// A login token (`/ws?token=`): it connects logged in.
    pub token: Option<String>,
}

impl Hello {
    /// A client of `kind` from loopback, asking for `nick`, with `session`.
    pub fn new(kind: ClientKind, nick: Option<&str>, session: Option<String>) -> Hello {
        Hello {
            kind,
            peer: Peer::loopback(),
            nick: nick.map(str::to_string),
            session,
            token: None,
        }
    }
}

/// One account.
pub(super) struct Account {
    /// The name, as registered: the nick its connections hold.
    pub(super) name: Nick,
    pub(super) phc: String,
    pub(super) created: u64,
}

/// A login token's hash -> its account and end.
pub(super) struct Token {
    pub(super) account: String,
    pub(super) expires: u64,
}

/// Accounts, tokens, who is logged in where, and recent failures.
#[derive(Default)]
pub(super) struct Accounts {
    /// Lowercase name -> account.
    pub(super) by_key: HashMap<String, Account>,
    /// SHA-256 of a token -> its account.
    pub(super) tokens: HashMap<String, Token>,
    /// Lowercase name -> the connections logged in as it, in login order.
    pub(super) online: HashMap<String, Vec<ClientId>>,
    failures_by_account: HashMap<String, VecDeque<u64>>,
    failures_by_ip: HashMap<IpAddr, VecDeque<u64>>,
}

impl Accounts {
    /// Whether `key` (a lowercase nick) is a registered account.
    pub(super) fn exists(&self, key: &str) -> bool {
        self.by_key.contains_key(key)
    }

    /// Whether `key`'s or `ip`'s recent failures have reached the limit.
    fn limited(&mut self, now: Now, key: &str, ip: IpAddr) -> bool {
        let since = now.ms.saturating_sub(FAILURE_WINDOW_MS);
        let count = |q: Option<&mut VecDeque<u64>>| {
            q.map_or(0, |q| {
                while q.front().is_some_and(|&t| t <= since) {
                    q.pop_front();
                }
                q.len()
            })
        };
        count(self.failures_by_account.get_mut(key)) >= FAILURES_PER_ACCOUNT
            || count(self.failures_by_ip.get_mut(&ip)) >= FAILURES_PER_ADDRESS
    }

    fn failed(&mut self, now: Now, key: &str, ip: IpAddr) {
        self.failures_by_account
            .entry(key.to_string())
            .or_default()
            .push_back(now.ms);
        self.failures_by_ip.entry(ip).or_default().push_back(now.ms);
        // Keep the maps from growing with names and addresses tried once.
        if self.failures_by_account.len() + self.failures_by_ip.len() > 10_000 {
            let since = now.ms.saturating_sub(FAILURE_WINDOW_MS);
            self.failures_by_account
                .retain(|_, q| q.back().is_some_and(|&t| t > since));
            self.failures_by_ip
                .retain(|_, q| q.back().is_some_and(|&t| t > since));
        }
    }
}

/// SHA-256 of a login token, in hex: all the store and the hub keep of it.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a password job was for.
pub(super) enum AuthWait {
    /// `/register`: the nick the client held when it asked.
    Register { nick: Nick },
    /// `/login NICK ...`: the name's key; `known`: an account when asked.
    Login { key: String },
    /// `/password`: the account's key.
    Password { key: String },
}

/// A password job out, for one client.
pub(super) struct Pending {
    pub(super) client: ClientId,
    pub(super) what: AuthWait,
    pub(super) r#ref: Option<String>,
}

fn check_length(password: &str) -> Result<(), HubError> {
    if (MIN_PASSWORD..=MAX_PASSWORD).contains(&password.len()) {
        Ok(())
    } else {
        Err(HubError::new(
            ErrorCode::BadRequest,
            format!("a password is {MIN_PASSWORD} to {MAX_PASSWORD} bytes long"),
        ))
    }
}

fn login_failed() -> HubError {
    HubError::new(
        ErrorCode::LoginFailed,
        "login failed: no such account, or a wrong password",
    )
}

fn too_many() -> HubError {
    HubError::new(
        ErrorCode::RateLimited,
        "too many failed logins; wait a minute and try again",
    )
}

impl Hub {
    /// The accounts and tokens the store holds, at start (and again when
    /// another process, `natter accounts`, changed them): what the hub
    /// knew is replaced. Connections logged in to an account that is gone
    /// stay as they are until they log out or leave.
    pub fn set_accounts(
        &mut self,
        now: Now,
        accounts: Vec<AccountRecord>,
        tokens: Vec<TokenRecord>,
    ) {
        let a = &mut self.accounts;
        a.by_key = accounts
            .into_iter()
            .filter_map(|r| {
                let name = Nick::parse(&r.name).ok()?;
                Some((
                    name.key(),
                    Account {
                        name,
                        phc: r.phc,
                        created: r.created,
                    },
                ))
            })
            .collect();
        a.tokens = tokens
            .into_iter()
            .filter(|t| t.expires > now.ms)
            .map(|t| {
                let account = t.account.to_ascii_lowercase();
                (
                    t.hash,
                    Token {
                        account,
                        expires: t.expires,
                    },
                )
            })
            .collect();
    }

    /// Names of every account, sorted (for tests and `/api`).
    pub fn account_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .accounts
            .by_key
            .values()
            .map(|a| a.name.to_string())
            .collect();
        v.sort_by_key(|n| n.to_ascii_lowercase());
        v
    }

    /// When an account was registered (ms since the epoch).
    pub fn account_created(&self, name: &str) -> Option<u64> {
        self.accounts
            .by_key
            .get(&name.to_ascii_lowercase())
            .map(|a| a.created)
    }

    /// Moves the password jobs asked for so far into `out`.
    pub fn take_password_jobs(&mut self, out: &mut Vec<PasswordJob>) {
        out.append(&mut self.jobs);
    }

    /// Whether password jobs wait to be taken.
    pub fn has_password_jobs(&self) -> bool {
        !self.jobs.is_empty()
    }

    /// The account `id` is logged in as, if any.
    pub fn account_of(&self, id: ClientId) -> Option<&str> {
        let key = self.clients.get(&id)?.account.as_deref()?;
        Some(self.accounts.by_key.get(key)?.name.as_str())
    }

    /// Asks the helper for password work on behalf of `id`, who waits.
    fn submit(&mut self, id: ClientId, job: PasswordJob, what: AuthWait, r#ref: Option<String>) {
        self.park_on_work(id);
        self.auth.insert(
            job.id,
            Pending {
                client: id,
                what,
                r#ref,
            },
        );
        self.jobs.push(job);
    }

    fn next_job_id(&mut self) -> Result<u64, HubError> {
        if self.auth.len() >= MAX_JOBS_OUT {
            return Err(HubError::new(
                ErrorCode::RateLimited,
                "the server is busy checking passwords; try again in a moment",
            ));
        }
        self.next_job += 1;
        Ok(self.next_job)
    }

    /// Passwords travel only over TLS or loopback, unless the operator
    /// allows them in clear text.
    fn secure_enough(&self, id: ClientId) -> Result<(), HubError> {
        let client = self.client(id)?;
        if client.peer.secure || self.config.accounts.allow_plaintext {
            return Ok(());
        }
        Err(HubError::new(
            ErrorCode::Insecure,
            "passwords are not accepted over an unencrypted connection from another machine; \
             use TLS (https://, wss://) or ask the operator",
        ))
    }

    pub(super) fn register(
        &mut self,
        id: ClientId,
        password: String,
        r#ref: Option<String>,
    ) -> Result<(), HubError> {
        if !self.config.accounts.registration_open {
            return Err(HubError::new(
                ErrorCode::NotPermitted,
                "registration is closed on this server; ask its operator for an account",
            ));
        }
        self.secure_enough(id)?;
        let client = self.client(id)?;
        if client.account.is_some() {
            return Err(HubError::new(
                ErrorCode::NotPermitted,
                "you are logged in already; /logout first",
            ));
        }
        let nick = client.nick.clone();
        if self.accounts.exists(&nick.key()) {
            return Err(registered(&nick));
        }
        check_length(&password)?;
        let job = PasswordJob {
            id: self.next_job_id()?,
            check: None,
            hash: Some(password),
        };
        self.submit(id, job, AuthWait::Register { nick }, r#ref);
        Ok(())
    }

    pub(super) fn login(
        &mut self,
        now: Now,
        id: ClientId,
        nick: &str,
        password: String,
        r#ref: Option<String>,
    ) -> Result<(), HubError> {
        self.secure_enough(id)?;
        let key = nick.to_ascii_lowercase();
        let ip = self.client(id)?.peer.ip;
        if self.accounts.limited(now, &key, ip) {
            return Err(too_many());
        }
        let phc = self
            .accounts
            .by_key
            .get(&key)
            .map_or(DECOY_PHC.to_string(), |a| a.phc.clone());
        let job = PasswordJob {
            id: self.next_job_id()?,
            check: Some((password, phc)),
            hash: None,
        };
        self.submit(id, job, AuthWait::Login { key }, r#ref);
        Ok(())
    }

    pub(super) fn login_token(
        &mut self,
        now: Now,
        id: ClientId,
        token: &str,
        r#ref: Option<String>,
    ) -> Result<(), HubError> {
        let hash = token_hash(token);
        let key = match self.accounts.tokens.get(&hash) {
            Some(t) if t.expires > now.ms && self.accounts.exists(&t.account) => t.account.clone(),
            Some(_) => {
                self.accounts.tokens.remove(&hash);
                return Err(login_failed());
            }
            None => return Err(login_failed()),
        };
        self.log_in(
            now,
            id,
            &key,
            Some((hash, token.to_string())),
            AccountChange::LoggedIn,
            r#ref,
        );
        Ok(())
    }

    pub(super) fn logout(
        &mut self,
        now: Now,
        id: ClientId,
        r#ref: Option<String>,
    ) -> Result<(), HubError> {
        let client = self.client(id)?;
        if client.account.is_none() {
            return Err(HubError::new(
                ErrorCode::NotPermitted,
                "you are not logged in",
            ));
        }
        if let Some(c) = self.clients.get_mut(&id) {
            if let Some(hash) = c.token_hash.take() {
                self.accounts.tokens.remove(&hash);
                self.pending_changes.push(Change::TokenDel { hash });
            }
        }
        let fresh = self.fresh_nick();
        self.leave_account(now, id, fresh);
        let nick = self.client(id)?.nick.to_string();
        self.account_reply(id, AccountChange::LoggedOut, None, nick, None, r#ref);
        Ok(())
    }

    pub(super) fn password(
        &mut self,
        now: Now,
        id: ClientId,
        old: String,
        new: String,
        r#ref: Option<String>,
    ) -> Result<(), HubError> {
        self.secure_enough(id)?;
        let client = self.client(id)?;
        let Some(key) = client.account.clone() else {
            return Err(HubError::new(
                ErrorCode::NotPermitted,
                "log in first: /login NICK PASSWORD",
            ));
        };
        let ip = client.peer.ip;
        check_length(&new)?;
        if self.accounts.limited(now, &key, ip) {
            return Err(too_many());
        }
        let Some(phc) = self.accounts.by_key.get(&key).map(|a| a.phc.clone()) else {
            return Err(login_failed());
        };
        let job = PasswordJob {
            id: self.next_job_id()?,
            check: Some((old, phc)),
            hash: Some(new),
        };
        self.submit(id, job, AuthWait::Password { key }, r#ref);
        Ok(())
    }

    /// The helper's answer to a password job: the client that waited for
    /// it is logged in, registered or refused, and goes on with what it
    /// asked meanwhile.
    pub fn password_done(&mut self, now: Now, done: PasswordDone) {
        let Some(Pending {
            client: id,
            what,
            r#ref,
        }) = self.auth.remove(&done.id)
        else {
            return;
        };
        if let Some(p) = self.parked.get_mut(&id) {
            p.busy = false;
        }
        if !self.clients.contains_key(&id) {
            self.parked.remove(&id);
            return;
        }
        if let Err(e) = self.finish_job(now, id, what, done, r#ref.clone()) {
            self.error(id, e, r#ref);
        }
        self.run_deferred(now, id);
    }

    fn finish_job(
        &mut self,
        now: Now,
        id: ClientId,
        what: AuthWait,
        done: PasswordDone,
        r#ref: Option<String>,
    ) -> Result<(), HubError> {
        let ip = self.client(id)?.peer.ip;
        let PasswordDone {
            matched,
            phc,
            token,
            ..
        } = done;
        if token.is_empty() {
            return Err(HubError::new(
                ErrorCode::BadRequest,
                "the server has no randomness to make a login token; try again later",
            ));
        }
        match what {
            AuthWait::Register { nick } => {
                let phc = hashed(phc)?;
                let client = self.client(id)?;
                if client.account.is_some() || client.nick.key() != nick.key() {
                    return Err(HubError::new(
                        ErrorCode::BadRequest,
                        "your nick changed while registering; /register again",
                    ));
                }
                if self.accounts.exists(&nick.key()) {
                    return Err(registered(&nick));
                }
                let record = AccountRecord {
                    name: nick.to_string(),
                    phc: phc.clone(),
                    created: now.ms,
                };
                self.pending_changes.push(Change::AccountPut(record));
                self.accounts.by_key.insert(
                    nick.key(),
                    Account {
                        name: nick.clone(),
                        phc,
                        created: now.ms,
                    },
                );
                let hash = self.new_token(&nick.key(), now, &token);
                self.log_in(
                    now,
                    id,
                    &nick.key(),
                    Some((hash, token)),
                    AccountChange::Registered,
                    r#ref,
                );
                Ok(())
            }
            AuthWait::Login { key } => {
                if !matched || !self.accounts.exists(&key) {
                    self.accounts.failed(now, &key, ip);
                    return Err(login_failed());
                }
                let hash = self.new_token(&key, now, &token);
                self.log_in(
                    now,
                    id,
                    &key,
                    Some((hash, token)),
                    AccountChange::LoggedIn,
                    r#ref,
                );
                Ok(())
            }
            AuthWait::Password { key } => {
                if !matched {
                    self.accounts.failed(now, &key, ip);
                    return Err(login_failed());
                }
                let phc = hashed(phc)?;
                let Some(account) = self.accounts.by_key.get_mut(&key) else {
                    return Err(login_failed());
                };
                account.phc = phc.clone();
                let record = AccountRecord {
                    name: account.name.to_string(),
                    phc,
                    created: account.created,
                };
                self.pending_changes.push(Change::AccountPut(record));
                self.accounts.tokens.retain(|_, t| t.account != key);
                self.pending_changes.push(Change::TokensDel {
                    account: key.clone(),
                });
                let hash = self.new_token(&key, now, &token);
                if let Some(c) = self.clients.get_mut(&id) {
                    c.token_hash = Some(hash);
                }
                let nick = self.client(id)?.nick.to_string();
                let account = Some(nick.clone());
                self.account_reply(
                    id,
                    AccountChange::PasswordChanged,
                    account,
                    nick,
                    Some(token),
                    r#ref,
                );
                Ok(())
            }
        }
    }

    /// Remembers a fresh login token for `key`; returns its hash.
    fn new_token(&mut self, key: &str, now: Now, token: &str) -> String {
        let hash = token_hash(token);
        let expires = now.ms + self.config.accounts.token_ms;
        let name = self
            .accounts
            .by_key
            .get(key)
            .map_or(key.to_string(), |a| a.name.to_string());
        self.pending_changes.push(Change::TokenPut(TokenRecord {
            hash: hash.clone(),
            account: name,
            expires,
        }));
        self.accounts.tokens.insert(
            hash.clone(),
            Token {
                account: key.to_string(),
                expires,
            },
        );
        hash
    }

    /// `id` becomes account `key`: it takes the account's nick (in each of
    /// its rooms, a nick change, or, where another connection of the
    /// account is already a member, a leave of the old nick), and is told.
    /// `token`: the token's hash and the token, for the answer.
    pub(super) fn log_in(
        &mut self,
        now: Now,
        id: ClientId,
        key: &str,
        token: Option<(String, String)>,
        what: AccountChange,
        r#ref: Option<String>,
    ) {
        let Some(name) = self.accounts.by_key.get(key).map(|a| a.name.clone()) else {
            return;
        };
        if self
            .clients
            .get(&id)
            .is_some_and(|c| c.account.as_deref() == Some(key))
        {
            // Logged in already as this account: a new token only.
            if let (Some(c), Some((hash, _))) = (self.clients.get_mut(&id), &token) {
                c.token_hash = Some(hash.clone());
            }
            let token = token.map(|(_, t)| t);
            self.account_reply(
                id,
                what,
                Some(name.to_string()),
                name.to_string(),
                token,
                r#ref,
            );
            return;
        }
        if self.clients.get(&id).is_some_and(|c| c.account.is_some()) {
            // Another account: out of it first, quietly.
            let guest = self.fresh_nick();
            self.leave_account(now, id, guest);
        }
        self.displace_guest(now, id, &name);
        if let Some(c) = self.clients.get_mut(&id) {
            c.account = Some(key.to_string());
            c.token_hash = token.as_ref().map(|(h, _)| h.clone());
        }
        self.accounts
            .online
            .entry(key.to_string())
            .or_default()
            .push(id);
        self.rename(now, id, name.clone(), Some(name.to_string()));
        let kind = self.clients.get(&id).map(|c| c.kind);
        if kind == Some(ClientKind::Ws) {
            self.reply(
                id,
                Reply::Nick {
                    nick: name.to_string(),
                },
                r#ref.clone(),
            );
        }
        let token = token.map(|(_, t)| t);
        self.account_reply(
            id,
            what,
            Some(name.to_string()),
            name.to_string(),
            token,
            r#ref.clone(),
        );
        // Under --require-login a line client joins the default room once
        // it has logged in.
        let joins_lobby = self.config.accounts.require_login
            && kind == Some(ClientKind::Line)
            && self.clients.get(&id).is_some_and(|c| c.rooms.is_empty());
        if joins_lobby {
            let room = self.config.default_room.clone();
            if let Err(e) = self.join(now, id, room, None, false, None) {
                self.error(id, e, None);
            }
        }
    }

    /// A guest holding the account's name (the account was made by `natter
    /// accounts` while it was connected) is moved to a fresh nick, so that
    /// `id` can take it.
    pub(super) fn displace_guest(&mut self, now: Now, id: ClientId, name: &Nick) {
        let Some(&holder) = self.nicks.get(&name.key()) else {
            return;
        };
        if holder == id
            || self
                .clients
                .get(&holder)
                .is_none_or(|c| c.account.is_some())
        {
            return;
        }
        let fresh = self.fresh_nick();
        self.rename(now, holder, fresh, None);
        if let Some(c) = self.clients.get(&holder) {
            let nick = c.nick.to_string();
            self.reply(holder, Reply::Nick { nick }, None);
        }
        self.error(holder, registered(name), None);
    }

    /// `id` stops being logged in and takes the guest nick `fresh`.
    fn leave_account(&mut self, now: Now, id: ClientId, fresh: Nick) {
        let Some(key) = self.clients.get_mut(&id).and_then(|c| c.account.take()) else {
            return;
        };
        if let Some(conns) = self.accounts.online.get_mut(&key) {
            conns.retain(|&c| c != id);
            if conns.is_empty() {
                self.accounts.online.remove(&key);
            }
        }
        self.rename(now, id, fresh.clone(), None);
        if self
            .clients
            .get(&id)
            .is_some_and(|c| c.kind == ClientKind::Ws)
        {
            self.reply(
                id,
                Reply::Nick {
                    nick: fresh.to_string(),
                },
                None,
            );
        }
    }

    /// `id`'s nick becomes `nick` in the nick table and in each of its
    /// rooms, which are told: a nick change, or (when other connections of
    /// an account share the old or the new nick) a join or leave.
    pub(super) fn rename(&mut self, now: Now, id: ClientId, nick: Nick, account: Option<String>) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let old = std::mem::replace(&mut client.nick, nick.clone());
        let rooms = client.rooms.clone();
        self.release_nick(id, &old);
        self.nicks.entry(nick.key()).or_insert(id);
        self.touch_nick(nick.key());
        self.touch_session(id);
        if old.as_str() == nick.as_str() {
            return;
        }
        for room in rooms {
            let Some(r) = self.rooms.get_mut(&room) else {
                continue;
            };
            let same = old.key() == nick.key();
            let had_new = !same && r.members.holds(&nick.key());
            r.members.rename(id, &nick);
            let old_gone = same || !r.members.holds(&old.key());
            let to = self.others(&room, id);
            let presence = |kind, nick: &Nick, account: Option<String>| Presence {
                room: room.clone(),
                kind,
                nick: nick.to_string(),
                ts: now.ms,
                account,
            };
            let events = match (old_gone, had_new) {
                (true, false) => vec![presence(
                    PresenceKind::Nick {
                        old: old.to_string(),
                    },
                    &nick,
                    account.clone(),
                )],
                (true, true) => vec![presence(
                    PresenceKind::Leave(super::event::LeaveReason::Leave),
                    &old,
                    None,
                )],
                (false, false) => vec![presence(PresenceKind::Join, &nick, account.clone())],
                (false, true) => vec![],
            };
            for p in events {
                self.presence(to.clone(), p);
            }
        }
    }

    /// `id` no longer holds `nick` in the nick table: the entry goes, or
    /// points at another connection of the same account.
    pub(super) fn release_nick(&mut self, id: ClientId, nick: &Nick) {
        let key = nick.key();
        if self.nicks.get(&key) != Some(&id) {
            return;
        }
        let other = self
            .accounts
            .online
            .get(&key)
            .and_then(|conns| conns.iter().copied().find(|&c| c != id));
        match other {
            Some(c) => {
                self.nicks.insert(key, c);
            }
            None => {
                self.nicks.remove(&key);
                self.touch_nick(key);
            }
        }
    }

    /// Every connection holding `key`'s nick: an account's logged-in
    /// connections, or the one guest.
    pub(super) fn holders(&self, key: &str) -> Vec<ClientId> {
        if let Some(conns) = self.accounts.online.get(key) {
            return conns.clone();
        }
        self.nicks.get(key).map(|&c| vec![c]).unwrap_or_default()
    }

    /// A logged-in connection goes away: it no longer counts as online.
    pub(super) fn forget_login(&mut self, id: ClientId, key: &str) {
        if let Some(conns) = self.accounts.online.get_mut(key) {
            conns.retain(|&c| c != id);
            if conns.is_empty() {
                self.accounts.online.remove(key);
            }
        }
    }

    fn account_reply(
        &mut self,
        id: ClientId,
        what: AccountChange,
        account: Option<String>,
        nick: String,
        token: Option<String>,
        r#ref: Option<String>,
    ) {
        let reply = Reply::Account {
            what,
            account,
            nick,
            token,
        };
        self.reply(id, reply, r#ref);
    }
}

fn hashed(phc: Option<Result<String, String>>) -> Result<String, HubError> {
    match phc {
        Some(Ok(phc)) => Ok(phc),
        _ => Err(HubError::new(
            ErrorCode::BadRequest,
            "the server could not hash the password; try again",
        )),
    }
}

/// `nick_registered` for a guest who wants an account's nick.
pub(super) fn registered(nick: &Nick) -> HubError {
    HubError::new(
        ErrorCode::NickRegistered,
        format!("{nick} is a registered account; /login {nick} PASSWORD if it is yours"),
    )
}
