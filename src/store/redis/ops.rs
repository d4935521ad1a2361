//! The hub's store operations as Redis commands, and Redis's replies as
//! the hub's answers: the Redis store, without a socket.
//!
//! [`Requests::encode`] appends one operation's commands to the turn's
//! pipeline and says, for each command, what its reply is for (a [`Tag`]);
//! [`Requests::reply`] reads one reply with its tag. Replies come in the
//! order the commands went (`link::Pipeline` matches them).
//!
//! What Redis keeps (PROTOCOL-2 section 6; `{ROOM}` is the room's name,
//! a hash tag):
//!
//! - `natter:{ROOM}:seq`: the room's last `seq`;
//! - `natter:{ROOM}:log`: the room's stream, one entry per message, id
//!   `SEQ-0`, field `e` (`entry`), at most about `--redis-keep` entries;
//! - `natter:cid:{AUTHOR}:CID`: a sender's `cid` and the `seq` it got,
//!   for 10 minutes;
//! - `natter:img:ID`: an image's type and bytes, for `IMAGE_DAYS` days;
//! - channel `natter:feed`: every entry, as `SEQ ROOM ENTRY`.
//!
//! A read of a page and the room's `seq` go in one `MULTI`/`EXEC`, so they
//! agree with each other. Search scans the latest `SEARCH_SCAN` entries of
//! each room asked for: Redis as Debian ships it has no full-text index.

use std::rc::Rc;

use bytes::Bytes;

use super::entry;
use super::script::{self, encode_publish, Entry};
use crate::hub::command::Page;
use crate::hub::event::{Amend, AmendKind, Entry as HubEntry, Hit, Message, MAX_REACTIONS};
use crate::hub::names::RoomName;
use crate::hub::port::{
    FindWhat, Load, Loaded, Published, SearchOp, StoreAnswer, StoreError, StoreOp, FIND_LATEST,
};
use crate::proto::resp::{encode_command, Value};

/// The channel every process listens on.
pub const CHANNEL: &str = "natter:feed";
/// Seconds a `cid` is remembered (PROTOCOL-2: retries within 10 minutes).
pub const CID_SECONDS: u64 = 600;
/// Days an image is kept.
pub const IMAGE_DAYS: u64 = 30;
/// Entries of each room a search reads, newest first.
pub const SEARCH_SCAN: usize = 5_000;
/// Most entries one read of a stream for the feed returns.
pub const FETCH_MAX: usize = 1_000;

/// A read for an HTTP request (the JSON API, an image): answered to the
/// connection that asked, not to the hub.
#[derive(Debug)]
pub enum HttpRead {
    /// `GET /media/ID`.
    Media(String),
    /// `GET /api/rooms/ROOM/messages`.
    Page(RoomName, Page),
    /// `GET /api/rooms/ROOM/search`: the words as given, and the search.
    Search(String, Box<SearchOp>),
}

/// What an [`HttpRead`] found.
#[derive(Debug)]
pub enum HttpFound {
    /// An image's type and bytes, if there is one.
    Media(Option<(String, Vec<u8>)>),
    /// A room's page, ascending.
    Page(RoomName, Vec<Rc<Message>>),
    /// A search's words, its room, and the hits.
    Search(String, RoomName, Vec<Hit>),
}

/// What a reply is for.
#[derive(Debug)]
pub enum Tag {
    /// Nothing to do with it but check it is not an error (`MULTI`'s
    /// `OK`, `QUEUED`s, an image's `SET`).
    Ignore,
    /// The publish script's answer to a `Publish`; the command, to be sent
    /// again after `SCRIPT LOAD` if Redis has forgotten the script.
    Publish {
        /// The hub's id of the publish.
        id: u64,
        /// Its room.
        room: RoomName,
        /// The `EVALSHA` as sent.
        command: Bytes,
    },
    /// A room read (`read.lua`): `[seq, messages, changes]`.
    Load {
        /// The hub's id of the read.
        id: u64,
        /// The room.
        room: RoomName,
        /// The page was read newest first.
        reversed: bool,
    },
    /// The change script's answer to a `PublishChange`.
    PublishChange {
        /// The hub's id of the change.
        id: u64,
        /// The `EVALSHA` as sent (resent after a `SCRIPT LOAD`).
        command: Bytes,
    },
    /// A find's read.
    Find {
        /// The hub's id of the find.
        id: u64,
        /// The room.
        room: RoomName,
        /// What was asked.
        what: FindWhat,
    },
    /// `EXEC` of a search: one read per room.
    Search(Box<SearchOp>),
    /// An HTTP request's read; `token` names the connection.
    Http {
        /// The connection's token.
        token: u64,
        /// What was read.
        read: HttpRead,
    },
    /// A `/nick`'s hold.
    HoldNick {
        /// The hub's id of the hold.
        id: u64,
    },
    /// A session's claim.
    Claim {
        /// The hub's id of the claim.
        id: u64,
    },
    /// A batch of changes (accounts, tokens, room settings).
    Changes {
        /// The hub's id of the batch.
        batch: u64,
    },
    /// A read of a stream for the feed.
    Fetch {
        /// The room.
        room: RoomName,
    },
}

/// An entry for the hub: a message or a change, and the hub's id of the
/// publish if this process sent it.
pub type Arrival = (HubEntry, Option<u64>);

/// The read script.
pub const READ: &str = include_str!("read.lua");
/// The change script.
pub const AMEND: &str = include_str!("amend.lua");
/// Entries a page read looks through at most.
const PAGE_SCAN: usize = 10_000;

/// What a reply comes to.
#[derive(Debug)]
pub enum Outcome {
    /// Nothing.
    None,
    /// An answer for the hub.
    Answer(StoreAnswer),
    /// Entries for the feed, ascending (`full`: the read stopped at its
    /// count).
    Fetched {
        /// The room.
        room: RoomName,
        /// The entries, or why the read failed.
        entries: Result<Vec<Arrival>, StoreError>,
        /// The read stopped at `FETCH_MAX`.
        full: bool,
    },
    /// An HTTP request's answer.
    Http {
        /// The connection's token.
        token: u64,
        /// What was found.
        found: Result<HttpFound, StoreError>,
    },
    /// Redis does not know the script: load it and send this again (the
    /// tag holds the command).
    Reload(Tag),
    /// A reply that was an error where none should be.
    Failed(String),
}

/// The Redis store's state: who this process is, the script's SHA-1, how
/// much a stream keeps.
#[derive(Debug)]
pub struct Requests {
    /// This process's name in entries' origins.
    proc_id: String,
    sha: String,
    /// Entries each room's stream keeps, about.
    keep: usize,
}

impl Requests {
    /// The store of process `proc_id`, keeping about `keep` entries per room.
    pub fn new(proc_id: String, keep: usize) -> Requests {
        Requests {
            proc_id,
            sha: script::publish_sha(),
            keep,
        }
    }

    /// This process's name.
    pub fn proc_id(&self) -> &str {
        &self.proc_id
    }

    /// The origin of an entry: the hub's id of the publish if this process
    /// sent it.
    pub fn own(&self, origin: &str) -> Option<u64> {
        let (p, n) = origin.rsplit_once(':')?;
        (p == self.proc_id).then(|| n.parse().ok()).flatten()
    }

    /// Appends `op`'s commands to `out`, and a tag for each to `tags`. A
    /// batch (`Append`) is given back: accounts and room settings are not
    /// shared yet, and a shared hub sends no messages in one.
    pub fn encode(
        &self,
        op: StoreOp,
        out: &mut Vec<u8>,
        tags: &mut Vec<Tag>,
    ) -> Result<(), Box<StoreOp>> {
        match op {
            StoreOp::Publish(p) => {
                if let Some(i) = &p.image {
                    let mut value = Vec::with_capacity(i.mime.len() + 1 + i.data.len());
                    value.extend_from_slice(i.mime.as_bytes());
                    value.push(b'\n');
                    value.extend_from_slice(&i.data);
                    let key = image_key(&i.id);
                    let ttl = (IMAGE_DAYS * 86_400).to_string();
                    encode_command(
                        out,
                        &[&b"SET"[..], key.as_bytes(), &value, b"EX", ttl.as_bytes()],
                    );
                    tags.push(Tag::Ignore);
                }
                let payload = entry::encode(&p.message, &format!("{}:{}", self.proc_id, p.id));
                let cid_key = p
                    .cid
                    .as_ref()
                    .map(|c| format!("natter:cid:{{{}}}:{c}", p.message.author));
                let mut cmd = Vec::new();
                encode_publish(
                    &mut cmd,
                    &self.sha,
                    &Entry {
                        room: p.message.room.as_str(),
                        payload: &payload,
                        cid_key: cid_key.as_deref(),
                        keep: self.keep,
                        channel: CHANNEL,
                        cid_ttl: CID_SECONDS,
                    },
                );
                out.extend_from_slice(&cmd);
                tags.push(Tag::Publish {
                    id: p.id,
                    room: p.message.room.clone(),
                    command: Bytes::from(cmd),
                });
            }
            StoreOp::Load(l) => self.encode_load(l, out, tags),
            StoreOp::PublishChange(c) => {
                let (seq, log) = script::room_keys(c.room.as_str());
                let now = now_key(&c.room);
                let mut op = serde_json::json!({"ts": c.ts, "by": c.by, "author": c.author,
                    "authors": c.authors});
                match &c.kind {
                    AmendKind::Edit { text } => {
                        op["kind"] = "edit".into();
                        op["text"] = text.as_str().into();
                    }
                    AmendKind::Delete { .. } => op["kind"] = "delete".into(),
                    AmendKind::React { emoji, .. } => {
                        op["kind"] = "react".into();
                        op["emoji"] = emoji.as_str().into();
                        op["nick"] = c.by.as_str().into();
                    }
                }
                let mut cmd = Vec::new();
                encode_command(
                    &mut cmd,
                    &[
                        "EVALSHA",
                        &script::sha(AMEND),
                        "3",
                        &seq,
                        &log,
                        &now,
                        &c.target.to_string(),
                        &op.to_string(),
                        &self.keep.to_string(),
                        CHANNEL,
                        c.room.as_str(),
                        &format!("{}:{}", self.proc_id, c.id),
                        &MAX_REACTIONS.to_string(),
                    ],
                );
                out.extend_from_slice(&cmd);
                tags.push(Tag::PublishChange {
                    id: c.id,
                    command: Bytes::from(cmd),
                });
            }
            StoreOp::HoldNick(h) => {
                super::presence::encode_nick(
                    out,
                    "hold",
                    &h.nick.key(),
                    &self.proc_id,
                    h.account.as_deref(),
                );
                tags.push(Tag::HoldNick { id: h.id });
            }
            StoreOp::Claim(c) => {
                super::presence::encode_claim(out, &self.proc_id, &c.hash);
                tags.push(Tag::Claim { id: c.id });
            }
            StoreOp::Find(f) => {
                match &f.what {
                    FindWhat::Seq(s) => {
                        let seq = s.to_string();
                        encode_read(out, &f.room, "one", &seq, "", 1, false, 1);
                    }
                    // Filtered in Redis: in a busy room the sender's last
                    // message may be thousands of entries back.
                    FindWhat::LastBy(authors) => {
                        let list = serde_json::to_string(authors).unwrap_or_default();
                        encode_read(
                            out,
                            &f.room,
                            "authors",
                            "",
                            &list,
                            FIND_LATEST,
                            false,
                            PAGE_SCAN,
                        );
                    }
                    FindWhat::LastOf(key) => {
                        encode_read(out, &f.room, "from", "", key, FIND_LATEST, false, PAGE_SCAN);
                    }
                }
                tags.push(Tag::Find {
                    id: f.id,
                    room: f.room,
                    what: f.what,
                });
            }
            StoreOp::Search(op) => {
                encode_command(out, &["MULTI"]);
                tags.push(Tag::Ignore);
                for room in &op.rooms {
                    let top = match op.before {
                        Some(b) if op.rooms.len() == 1 => b.to_string(),
                        _ => String::new(),
                    };
                    encode_search(out, room, &top, &op.query);
                    tags.push(Tag::Ignore);
                }
                encode_command(out, &["EXEC"]);
                tags.push(Tag::Search(Box::new(op)));
            }
            // A shared hub's batches carry changes only (its messages are
            // published); anything else is not Redis's.
            StoreOp::Append(b)
                if b.messages.is_empty() && b.amends.is_empty() && b.images.is_empty() =>
            {
                super::changes::encode_changes(out, &self.proc_id, &b.changes);
                tags.push(Tag::Changes { batch: b.id });
            }
            op @ StoreOp::Append(_) => return Err(Box::new(op)),
        }
        Ok(())
    }

    fn encode_load(&self, l: Load, out: &mut Vec<u8>, tags: &mut Vec<Tag>) {
        let Page {
            before,
            after,
            limit,
        } = l.page;
        let before = before.map(|b| b.to_string()).unwrap_or_default();
        let reversed = after.is_none();
        match after {
            Some(a) => encode_read(
                out,
                &l.room,
                "after",
                &a.to_string(),
                &before,
                limit,
                l.since.is_some(),
                PAGE_SCAN,
            ),
            None => encode_read(out, &l.room, "latest", &before, "", limit, false, PAGE_SCAN),
        }
        tags.push(Tag::Load {
            id: l.id,
            room: l.room,
            reversed,
        });
    }

    /// Appends the read an HTTP request needs.
    pub fn encode_http(&self, token: u64, read: HttpRead, out: &mut Vec<u8>, tags: &mut Vec<Tag>) {
        match &read {
            HttpRead::Media(id) => encode_command(out, &["GET", &image_key(id)]),
            HttpRead::Page(room, page) => {
                let before = page.before.map(|b| b.to_string()).unwrap_or_default();
                match page.after {
                    Some(a) => {
                        let a = a.to_string();
                        encode_read(
                            out, room, "after", &a, &before, page.limit, false, PAGE_SCAN,
                        );
                    }
                    None => encode_read(
                        out, room, "latest", &before, "", page.limit, false, PAGE_SCAN,
                    ),
                }
            }
            HttpRead::Search(_, op) => {
                let room =
                    op.rooms.first().cloned().unwrap_or_else(|| {
                        RoomName::parse("lobby").unwrap_or_else(|_| unreachable!())
                    });
                let top = op.before.map(|b| b.to_string()).unwrap_or_default();
                encode_search(out, &room, &top, &op.query);
            }
        }
        tags.push(Tag::Http { token, read });
    }

    /// Appends a read of `room`'s stream after `after` (and before
    /// `before`) for the feed.
    pub fn encode_fetch(
        &self,
        room: &RoomName,
        after: u64,
        before: Option<u64>,
        out: &mut Vec<u8>,
        tags: &mut Vec<Tag>,
    ) {
        let (_, log) = script::room_keys(room.as_str());
        let a = format!("({after}-0");
        let b = before.map_or("+".to_string(), |b| format!("({b}-0"));
        let n = FETCH_MAX.to_string();
        encode_command(out, &["XRANGE", &log, &a, &b, "COUNT", &n]);
        tags.push(Tag::Fetch { room: room.clone() });
    }

    /// What the reply to a command tagged `tag` comes to.
    pub fn reply(&self, tag: Tag, reply: Value) -> Outcome {
        match tag {
            Tag::Ignore => match reply {
                Value::Error(e) => Outcome::Failed(String::from_utf8_lossy(&e).into_owned()),
                _ => Outcome::None,
            },
            Tag::Publish { id, room, command } => {
                if script::is_noscript(&reply) {
                    return Outcome::Reload(Tag::Publish { id, room, command });
                }
                let result = match script::parse_publish(&reply) {
                    Ok(script::Published::New(seq)) => Ok(Published::New(seq)),
                    Ok(script::Published::Repeat(seq, kept)) => {
                        let kept = kept.and_then(|e| entry::decode(&room, seq, &e).ok());
                        Ok(Published::Repeat(seq, kept.map(|d| d.message)))
                    }
                    Err(e) => Err(StoreError(e)),
                };
                Outcome::Answer(StoreAnswer::Published {
                    publish: id,
                    result,
                })
            }
            Tag::Load { id, room, reversed } => {
                let result = read_reply(&room, reply).map(|(last_seq, mut messages, amends)| {
                    if reversed {
                        messages.reverse();
                    }
                    Loaded {
                        messages,
                        amends,
                        last_seq: Some(last_seq),
                    }
                });
                Outcome::Answer(StoreAnswer::Loaded { load: id, result })
            }
            Tag::PublishChange { id, command } => {
                if script::is_noscript(&reply) {
                    return Outcome::Reload(Tag::PublishChange { id, command });
                }
                let result = match &reply {
                    Value::Array(Some(items)) => match items.as_slice() {
                        [Value::Int(seq), _] if *seq > 0 => Ok(Published::New(*seq as u64)),
                        _ => Err(StoreError(format!("the change script said {reply:?}"))),
                    },
                    Value::Error(e) => Err(StoreError(String::from_utf8_lossy(e).into_owned())),
                    other => Err(StoreError(format!("the change script said {other:?}"))),
                };
                Outcome::Answer(StoreAnswer::Published {
                    publish: id,
                    result,
                })
            }
            Tag::Find { id, room, what } => {
                let result = read_reply(&room, reply).map(|(_, found, _)| {
                    let found = found.into_iter();
                    match &what {
                        FindWhat::Seq(_) => found.collect(),
                        FindWhat::LastBy(authors) => found
                            .filter(|m| !m.deleted && authors.contains(&m.author))
                            .take(FIND_LATEST)
                            .collect(),
                        FindWhat::LastOf(key) => found
                            .filter(|m| !m.deleted && m.from.to_ascii_lowercase() == *key)
                            .take(FIND_LATEST)
                            .collect(),
                    }
                });
                Outcome::Answer(StoreAnswer::Found { find: id, result })
            }
            Tag::Search(op) => {
                let mut read_at = Vec::new();
                let result =
                    exec(reply).and_then(|parts| self.search(&op, parts, Some(&mut read_at)));
                Outcome::Answer(StoreAnswer::Searched {
                    search: op.id,
                    result,
                    read_at,
                })
            }
            Tag::Http { token, read } => {
                let found = match read {
                    HttpRead::Media(_) => match reply {
                        Value::Error(e) => {
                            Err(StoreError(String::from_utf8_lossy(&e).into_owned()))
                        }
                        v => Ok(HttpFound::Media(image_of(&v))),
                    },
                    HttpRead::Page(room, page) => {
                        read_reply(&room, reply).map(|(_, mut messages, _)| {
                            if page.after.is_none() {
                                messages.reverse();
                            }
                            HttpFound::Page(room, messages)
                        })
                    }
                    HttpRead::Search(q, op) => {
                        let room = op.rooms.first().cloned();
                        self.search(&op, vec![reply], None)
                            .and_then(|hits| match room {
                                Some(room) => Ok(HttpFound::Search(q, room, hits)),
                                None => Err(StoreError("a search of no room".into())),
                            })
                    }
                };
                Outcome::Http { token, found }
            }
            Tag::HoldNick { id } => Outcome::Answer(StoreAnswer::Held {
                hold: id,
                ok: match reply {
                    Value::Error(e) => Err(StoreError(String::from_utf8_lossy(&e).into_owned())),
                    v => Ok(matches!(v, Value::Int(1))),
                },
            }),
            Tag::Claim { id } => {
                if let Value::Error(e) = &reply {
                    log::warn!("a session claim failed: {}", String::from_utf8_lossy(e));
                }
                Outcome::Answer(StoreAnswer::Claimed {
                    claim: id,
                    result: super::presence::parse_claim(&reply),
                })
            }
            Tag::Changes { batch } => {
                let result = match reply {
                    Value::Error(e) => Err(StoreError(String::from_utf8_lossy(&e).into_owned())),
                    _ => Ok(()),
                };
                Outcome::Answer(StoreAnswer::Committed { batch, result })
            }
            Tag::Fetch { room } => {
                let entries = self.stream(&room, reply);
                let full = entries.as_ref().is_ok_and(|e| e.len() >= FETCH_MAX);
                Outcome::Fetched {
                    room,
                    entries,
                    full,
                }
            }
        }
    }

    /// What a command tagged `tag` comes to when it cannot be sent, or its
    /// connection dropped before the reply (Redis may or may not have run
    /// it: a publish's `cid` makes a retry safe).
    pub fn fail(&self, tag: Tag, why: &str) -> Outcome {
        let e = || StoreError(why.to_string());
        match tag {
            Tag::Ignore => Outcome::None,
            Tag::Publish { id, .. } | Tag::PublishChange { id, .. } => {
                Outcome::Answer(StoreAnswer::Published {
                    publish: id,
                    result: Err(e()),
                })
            }
            Tag::Load { id, .. } => Outcome::Answer(StoreAnswer::Loaded {
                load: id,
                result: Err(e()),
            }),
            Tag::Find { id, .. } => Outcome::Answer(StoreAnswer::Found {
                find: id,
                result: Err(e()),
            }),
            Tag::Search(op) => Outcome::Answer(StoreAnswer::Searched {
                search: op.id,
                result: Err(e()),
                read_at: Vec::new(),
            }),
            Tag::Fetch { room } => Outcome::Fetched {
                room,
                entries: Err(e()),
                full: false,
            },
            Tag::Changes { batch } => Outcome::Answer(StoreAnswer::Committed {
                batch,
                result: Err(e()),
            }),
            Tag::Http { token, .. } => Outcome::Http {
                token,
                found: Err(e()),
            },
            Tag::Claim { id } => Outcome::Answer(StoreAnswer::Claimed {
                claim: id,
                result: None,
            }),
            Tag::HoldNick { id } => Outcome::Answer(StoreAnswer::Held {
                hold: id,
                ok: Err(e()),
            }),
        }
    }

    /// The entries of a stream read (`XRANGE`/`XREVRANGE`), in the order
    /// read, each with its origin here.
    pub fn stream(&self, room: &RoomName, reply: Value) -> Result<Vec<Arrival>, StoreError> {
        let items = match reply {
            Value::Array(Some(items)) => items,
            Value::Array(None) => Vec::new(),
            Value::Error(e) => return Err(StoreError(String::from_utf8_lossy(&e).into_owned())),
            other => return Err(StoreError(format!("a stream read: {other:?}"))),
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let (seq, payload) = stream_item(&item)
                .ok_or_else(|| StoreError(format!("a stream entry: {item:?}")))?;
            match entry::decode_entry(room, seq, &payload) {
                Ok(d) => out.push((d.entry, self.own(&d.origin))),
                // An entry natter did not write is left out, not fatal.
                Err(e) => log::warn!("#{room} entry {seq} skipped: {e}"),
            }
        }
        Ok(out)
    }

    /// A search's hits from its rooms' reads (`parts`, one per room);
    /// `read_at` gets the `seq` each room was read at.
    fn search(
        &self,
        op: &SearchOp,
        parts: Vec<Value>,
        mut read_at: Option<&mut Vec<(RoomName, u64)>>,
    ) -> Result<Vec<Hit>, StoreError> {
        let q = &op.query;
        let has_terms = q
            .words
            .iter()
            .chain(&q.phrases)
            .any(|t| crate::store::text::has_word_char(t));
        if !has_terms && q.from.is_none() {
            return Ok(Vec::new());
        }
        let from = q.from.as_deref().map(str::to_ascii_lowercase);
        let mut found = Vec::new();
        for (room, part) in op.rooms.iter().zip(parts) {
            let (seq, messages, _) = read_reply(room, part)?;
            if let Some(r) = read_at.as_mut() {
                r.push((room.clone(), seq));
            }
            for m in messages {
                if m.deleted {
                    continue;
                }
                if op.rooms.len() > 1 && op.before.is_some_and(|b| m.ts >= b) {
                    continue;
                }
                if let Some(hit) = crate::store::search_hit(q, has_terms, from.as_deref(), &m) {
                    found.push(hit);
                }
            }
        }
        // Newest first: in one room by seq (two processes' clocks may
        // disagree by a few ms), across rooms by time.
        if op.rooms.len() > 1 {
            found.sort_by_key(|h| std::cmp::Reverse((h.message.ts, h.message.seq)));
        } else {
            found.sort_by_key(|h| std::cmp::Reverse(h.message.seq));
        }
        found.truncate(op.limit);
        Ok(found)
    }
}

/// The key of an image's bytes.
pub fn image_key(id: &str) -> String {
    format!("natter:img:{id}")
}

/// An image as `GET natter:img:ID` returns it: its type and bytes.
pub fn image_of(reply: &Value) -> Option<(String, Vec<u8>)> {
    let b = reply.as_bytes()?;
    let nl = b.iter().position(|&c| c == b'\n')?;
    let mime = std::str::from_utf8(&b[..nl]).ok()?;
    Some((mime.to_string(), b[nl + 1..].to_vec()))
}

/// `EXEC`'s replies, or the error that aborted the transaction.
fn exec(reply: Value) -> Result<Vec<Value>, StoreError> {
    match reply {
        Value::Array(Some(parts)) => {
            for p in &parts {
                if let Value::Error(e) = p {
                    return Err(StoreError(String::from_utf8_lossy(e).into_owned()));
                }
            }
            Ok(parts)
        }
        Value::Error(e) => Err(StoreError(String::from_utf8_lossy(&e).into_owned())),
        other => Err(StoreError(format!("EXEC: {other:?}"))),
    }
}

fn int_of(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        v => std::str::from_utf8(v.as_bytes()?).ok()?.parse().ok(),
    }
}

/// One entry of a stream read: `[ID, [field, value, ...]]` with id `SEQ-0`
/// and the entry in field `e`.
fn stream_item(item: &Value) -> Option<(u64, Bytes)> {
    let Value::Array(Some(pair)) = item else {
        return None;
    };
    let [id, Value::Array(Some(fields))] = pair.as_slice() else {
        return None;
    };
    let id = std::str::from_utf8(id.as_bytes()?).ok()?;
    let seq = id.strip_suffix("-0")?.parse().ok()?;
    let mut it = fields.iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        if k.as_bytes()? == b"e" {
            return match v {
                Value::Bulk(Some(b)) => Some((seq, b.clone())),
                _ => None,
            };
        }
    }
    None
}

/// The key of a room's changed messages as they are now.
fn now_key(room: &RoomName) -> String {
    format!("natter:{{{room}}}:now")
}

/// Appends `EVALSHA` of `read.lua` (see its header for the arguments).
#[allow(clippy::too_many_arguments)]
fn encode_read(
    out: &mut Vec<u8>,
    room: &RoomName,
    mode: &str,
    a: &str,
    b: &str,
    count: usize,
    catch_up: bool,
    budget: usize,
) {
    encode_read_sifted(out, room, mode, a, b, count, catch_up, budget, &[]);
}

/// [`encode_read`] keeping only the messages that have each of `sieve`'s
/// words (see `read.lua`): a search's.
#[allow(clippy::too_many_arguments)]
fn encode_read_sifted(
    out: &mut Vec<u8>,
    room: &RoomName,
    mode: &str,
    a: &str,
    b: &str,
    count: usize,
    catch_up: bool,
    budget: usize,
    sieve: &[String],
) {
    let (seq, log) = script::room_keys(room.as_str());
    let now = now_key(room);
    let count = count.to_string();
    let budget = budget.max(1).to_string();
    let sha = script::sha(READ);
    let mut args: Vec<&str> = vec![
        "EVALSHA",
        &sha,
        "3",
        &seq,
        &log,
        &now,
        mode,
        a,
        b,
        &count,
        if catch_up { "1" } else { "0" },
        &budget,
    ];
    args.extend(sieve.iter().map(String::as_str));
    encode_command(out, &args);
}

/// A search's read of one room: its latest `SEARCH_SCAN` entries (below
/// `top`), sifted for the query's words in Redis, only the messages sent
/// under the nick asked for, if one is.
fn encode_search(out: &mut Vec<u8>, room: &RoomName, top: &str, q: &crate::hub::search::Query) {
    let sieve = crate::store::text::sieve_words(q);
    let from = q.from.as_deref().map(str::to_ascii_lowercase);
    let (mode, key) = match &from {
        Some(f) => ("from", f.as_str()),
        None => ("latest", ""),
    };
    encode_read_sifted(
        out,
        room,
        mode,
        top,
        key,
        SEARCH_SCAN,
        false,
        SEARCH_SCAN,
        &sieve,
    );
}

/// `read.lua`'s reply: the room's last seq, its messages, the changes.
type ReadReply = (u64, Vec<Rc<Message>>, Vec<Rc<Amend>>);

/// `read.lua`'s reply: the room's last seq, its messages as they are now
/// (in the order read) and the changes a catch-up asked for.
fn read_reply(room: &RoomName, reply: Value) -> Result<ReadReply, StoreError> {
    let items = match reply {
        Value::Array(Some(items)) => items,
        Value::Error(e) => return Err(StoreError(String::from_utf8_lossy(&e).into_owned())),
        other => return Err(StoreError(format!("a room read said {other:?}"))),
    };
    let [last, messages, changes] = <[Value; 3]>::try_from(items)
        .map_err(|_| StoreError("a room read: not three parts".into()))?;
    let last = int_of(&last).unwrap_or(0);
    let pairs = |v: Value| -> Vec<(u64, Bytes)> {
        let Value::Array(Some(items)) = v else {
            return Vec::new();
        };
        items
            .chunks(2)
            .filter_map(|kv| match kv {
                [k, Value::Bulk(Some(b))] => Some((int_of(k)?, b.clone())),
                _ => None,
            })
            .collect()
    };
    let mut out_m = Vec::new();
    for (seq, body) in pairs(messages) {
        match entry::decode(room, seq, &body) {
            Ok(d) => out_m.push(d.message),
            Err(e) => log::warn!("#{room} entry {seq} skipped: {e}"),
        }
    }
    let mut out_a = Vec::new();
    for (seq, body) in pairs(changes) {
        if let Ok(entry::DecodedEntry {
            entry: HubEntry::Amend(a),
            ..
        }) = entry::decode_entry(room, seq, &body)
        {
            out_a.push(a);
        }
    }
    Ok((last, out_m, out_a))
}
