//! Messages that live (PROTOCOL-2 section 3) and search (section 4):
//! edits, deletes, reactions, replies and mentions as rules, and searches
//! handed to the store.
//!
//! The hub holds no history: a message someone edits, deletes, reacts to
//! or answers lives in the store. So each of these requests first finds
//! its target there ([`StoreOp::Find`]), the way a join reads a room: the
//! client is parked (its later requests wait, in order), and the answer
//! comes back through [`Hub::answer`] to `Hub::found`, which applies the
//! rules (who may, within which window) and makes the change: an
//! [`Amend`], a history entry with its own `seq`, stored with the turn's
//! batch and delivered like a message once stored.
//!
//! What the store says can be a turn behind the hub: a change accepted
//! while the find was out, or in a batch the store has not answered yet,
//! is not in its answer. The hub therefore keeps the state it made for
//! every message changed by a batch still out (`Hub::live`): a find's
//! answer is read through it, and a request naming such a message by
//! `seq` needs no find at all. An entry leaves when its batch is answered:
//! every read asked for after that batch sees it in the store (a store
//! carries out operations in order), and every read asked for before it
//! was answered before it.
//!
//! Read next: `port` (the find and search operations), `store::sqlite`
//! (how the store keeps the entries and the search index).

use std::rc::Rc;

use super::command::{Scope, Target, MAX_SEARCH};
use super::error::{ErrorCode, HubError};
use super::event::{
    Amend, AmendKind, ClientId, ClientKind, Entry, Event, Hit, Message, Reaction, Reactor,
    Recipients, Reply, ReplyTo, MAX_EMOJI, MAX_REACTIONS, REPLY_QUOTE,
};
use super::names::{message_text, Nick, RoomName};
use super::port::{Find, FindWhat, SearchOp, StoreError, StoreOp};
use super::search::Query;
use super::{not_in, Hub, Now, Then};

/// Most nicks one message's `mentions` lists.
pub const MAX_MENTIONS: usize = 20;

/// What a client asked of a message it named, kept while the store looks
/// for the message.
pub(super) enum Want {
    /// Set its text (or caption) to this.
    Edit(String),
    /// Delete it.
    Delete,
    /// Toggle this emoji.
    React(String),
    /// Answer it with a message of one's own.
    Reply(Box<Said>),
}

/// A message that answers another, as it was asked for.
pub(super) struct Said {
    pub(super) text: String,
    pub(super) action: bool,
    /// An image's id and bytes (the `image` request).
    pub(super) image: Option<(String, Vec<u8>)>,
    pub(super) cid: Option<String>,
}

/// A find the hub waits for, and what to do with its answer.
pub(super) struct Finding {
    client: ClientId,
    room: RoomName,
    what: FindWhat,
    want: Want,
    r#ref: Option<String>,
}

/// A search the hub waits for.
pub(super) struct Searching {
    client: ClientId,
    q: String,
    room: Option<RoomName>,
    r#ref: Option<String>,
}

/// `emoji` is 1 to [`MAX_EMOJI`] bytes without white space or control
/// characters.
fn check_emoji(emoji: &str) -> Result<(), HubError> {
    if emoji.is_empty() || emoji.len() > MAX_EMOJI {
        return Err(HubError::new(
            ErrorCode::BadRequest,
            format!("an emoji is 1 to {MAX_EMOJI} bytes"),
        ));
    }
    if emoji.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(HubError::new(
            ErrorCode::BadRequest,
            "an emoji has no spaces or control characters",
        ));
    }
    Ok(())
}

/// The first [`REPLY_QUOTE`] characters of `text`.
fn quote(text: &str) -> String {
    text.chars().take(REPLY_QUOTE).collect()
}

fn no_such_message(room: &RoomName, what: &FindWhat) -> HubError {
    let message = match what {
        FindWhat::Seq(seq) => format!("#{room} has no message {seq}"),
        FindWhat::LastBy(_) => format!("you have no message in #{room} to change"),
        FindWhat::LastOf(nick) => format!("{nick} has no message in #{room}"),
    };
    HubError::new(ErrorCode::NoSuchMessage, message)
}

fn not_permitted(message: &str) -> HubError {
    HubError::new(ErrorCode::NotPermitted, message)
}

impl Hub {
    /// The identity a client's messages and reactions are stored with:
    /// `a:KEY` when logged in, else its connection's guest id.
    pub(super) fn author_of(&self, id: ClientId) -> String {
        match self.clients.get(&id) {
            Some(c) => match &c.account {
                Some(key) => format!("a:{key}"),
                None => c.guest.clone(),
            },
            None => String::new(),
        }
    }

    /// Every identity whose messages `id` may edit and delete as their
    /// author: its account's, and its connection's as a guest (a guest who
    /// logs in keeps the messages it sent before).
    fn authors_of(&self, id: ClientId) -> Vec<String> {
        let Some(c) = self.clients.get(&id) else {
            return Vec::new();
        };
        let mut out = vec![c.guest.clone()];
        if let Some(key) = &c.account {
            out.insert(0, format!("a:{key}"));
        }
        out
    }

    /// The nicks `@nick` names in `text` that are accounts or connected,
    /// each as its holder spells it, once, in order, at most
    /// [`MAX_MENTIONS`]. An `@` inside a word (an e-mail address) names
    /// nobody.
    pub(super) fn mentions(&self, text: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (at, _) in text.match_indices('@') {
            let before = text[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-') {
                continue;
            }
            let rest = &text[at + 1..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                .unwrap_or(rest.len());
            // "@bob-" or "@bob_" at the end of a clause names bob.
            let word = rest[..end].trim_end_matches(['-', '_']);
            let Ok(nick) = Nick::parse(word) else {
                continue;
            };
            let key = nick.key();
            let name = match self.nicks.get(&key).and_then(|c| self.clients.get(c)) {
                Some(c) => c.nick.to_string(),
                None => match self.accounts.by_key.get(&key) {
                    Some(a) => a.name.to_string(),
                    None => continue,
                },
            };
            if !out.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
                out.push(name);
                if out.len() == MAX_MENTIONS {
                    break;
                }
            }
        }
        out
    }

    /// An edit, delete, reaction or reply naming `target` in `room` (the
    /// current room for `None`): checked as far as it can be without the
    /// message, then the message is looked for.
    pub(super) fn amend_request(
        &mut self,
        now: Now,
        id: ClientId,
        room: Option<RoomName>,
        target: Target,
        want: Want,
        r#ref: Option<String>,
    ) -> Result<(), HubError> {
        let room = self.target_room(id, room)?;
        let last_seq = self
            .rooms
            .get(&room)
            .filter(|r| r.members.contains(id))
            .ok_or_else(|| not_in(&room))?
            .last_seq;
        match &want {
            Want::Edit(text) if text.len() > self.config.max_message => {
                return Err(HubError::new(
                    ErrorCode::TooLong,
                    format!(
                        "a message is at most {} bytes; this one is {}",
                        self.config.max_message,
                        text.len()
                    ),
                ));
            }
            Want::React(emoji) => {
                check_emoji(emoji)?;
                self.check_muted(now, id, &room)?;
            }
            Want::Reply(_) => self.check_muted(now, id, &room)?,
            Want::Edit(_) | Want::Delete => {}
        }
        let what = match target {
            Target::Seq(seq) => {
                if let Some((_, m)) = self.live.get(&(room.clone(), seq)) {
                    let m = m.clone();
                    return self.apply(now, id, room, m, want, r#ref);
                }
                if seq == 0 || seq > last_seq {
                    return Err(no_such_message(&room, &FindWhat::Seq(seq)));
                }
                FindWhat::Seq(seq)
            }
            Target::Mine => FindWhat::LastBy(self.authors_of(id)),
            Target::LastOf(nick) => match Nick::parse(&nick) {
                Ok(n) => FindWhat::LastOf(n.key()),
                Err(_) => return Err(no_such_message(&room, &FindWhat::LastOf(nick))),
            },
        };
        // The turn's batch goes first, so the store sees this client's
        // own messages of this turn (`hello` then `/edit hi`).
        self.close_batch();
        let find = self.next_load;
        self.next_load += 1;
        self.park_on_work(id);
        self.ops.push(StoreOp::Find(Find {
            id: find,
            room: room.clone(),
            what: what.clone(),
        }));
        self.finds.insert(
            find,
            Finding {
                client: id,
                room,
                what,
                want,
                r#ref,
            },
        );
        Ok(())
    }

    /// The store's answer to a find: the newest candidate (as the hub
    /// knows it now) that fits, and the change asked for.
    pub(super) fn found(
        &mut self,
        now: Now,
        f: Finding,
        result: Result<Vec<Rc<Message>>, StoreError>,
    ) {
        let Finding {
            client: id,
            room,
            what,
            want,
            r#ref,
        } = f;
        let candidates = match result {
            Ok(list) => list,
            Err(e) => {
                self.error(id, self.store_failed(e), r#ref);
                return;
            }
        };
        let seq_named = matches!(what, FindWhat::Seq(_));
        let target = candidates
            .into_iter()
            .map(|m| self.as_now(m))
            .find(|m| seq_named || !m.deleted);
        let result = match target {
            Some(m) => self.apply(now, id, room, m, want, r#ref.clone()),
            None => Err(no_such_message(&room, &what)),
        };
        if let Err(e) = result {
            self.error(id, e, r#ref);
        }
    }

    /// `m` as the hub last made it, if a batch still out changed it.
    fn as_now(&self, m: Rc<Message>) -> Rc<Message> {
        match self.live.get(&(m.room.clone(), m.seq)) {
            Some((_, now)) => now.clone(),
            None => m,
        }
    }

    /// Carries out `want` on `target` for `id`, or says why not.
    fn apply(
        &mut self,
        now: Now,
        id: ClientId,
        room: RoomName,
        target: Rc<Message>,
        want: Want,
        r#ref: Option<String>,
    ) -> Result<(), HubError> {
        if !self
            .rooms
            .get(&room)
            .is_some_and(|r| r.members.contains(id))
        {
            // Left (or was kicked) while the store looked.
            return Err(not_in(&room));
        }
        if let Want::Reply(said) = want {
            let Said {
                text,
                action,
                image,
                cid,
            } = *said;
            let reply = ReplyTo {
                seq: target.seq,
                from: target.from.clone(),
                text: (!target.deleted).then(|| quote(&target.text)),
            };
            return self.say(
                now,
                id,
                Some(room),
                &text,
                action,
                image,
                cid,
                Some(reply),
                r#ref,
            );
        }
        if target.deleted {
            return Err(HubError::new(
                ErrorCode::NoSuchMessage,
                format!("message {} of #{room} was deleted", target.seq),
            ));
        }
        let authors = self.authors_of(id);
        let mine = authors.iter().any(|a| target.by(a));
        let mut next = (*target).clone();
        let mut author = self.author_of(id);
        // Who the entry names, when not the client's nick now (see `React`).
        let mut by: Option<String> = None;
        let kind = match want {
            Want::Reply(_) => return Ok(()), // handled above
            Want::Edit(text) => {
                if !mine {
                    return Err(not_permitted("only its author may edit a message"));
                }
                let window = self.config.edit_window_ms;
                if now.ms > target.ts.saturating_add(window) {
                    return Err(HubError::new(
                        ErrorCode::EditWindow,
                        format!(
                            "a message may be edited for {} s after it was sent",
                            window / 1000
                        ),
                    ));
                }
                // An image's caption may be emptied; a text may not.
                let text = if target.image.is_some() && text.trim().is_empty() {
                    String::new()
                } else {
                    message_text(&text, self.config.max_message)?
                };
                next.text.clone_from(&text);
                next.edited_ts = Some(now.ms);
                AmendKind::Edit { text }
            }
            Want::Delete => {
                if !mine && !self.role(id, &room).moderates() {
                    return Err(not_permitted(
                        "only its author or an op of the room may delete a message",
                    ));
                }
                next.deleted = true;
                next.text.clear();
                next.image = None;
                next.reactions.clear();
                next.edited_ts = None;
                AmendKind::Delete {
                    of: target.from.clone(),
                }
            }
            Want::React(emoji) => {
                self.check_muted(now, id, &room)?;
                let nick = self.client(id)?.nick.to_string();
                let on = match next.reactions.iter().position(|r| r.emoji == emoji) {
                    Some(i) => {
                        let r = &mut next.reactions[i];
                        match r.by.iter().position(|p| authors.contains(&p.author)) {
                            Some(j) => {
                                // Off: the store removes the reaction it
                                // keeps under this identity, and the entry
                                // names the nick the reaction was put on
                                // under (what every client lists), even if
                                // its author has changed nick since.
                                let gone = r.by.remove(j);
                                author = gone.author;
                                by = Some(gone.nick);
                                if r.by.is_empty() {
                                    next.reactions.remove(i);
                                }
                                false
                            }
                            None => {
                                r.by.push(Reactor {
                                    author: author.clone(),
                                    nick,
                                });
                                true
                            }
                        }
                    }
                    None if next.reactions.len() >= MAX_REACTIONS => {
                        return Err(HubError::new(
                            ErrorCode::BadRequest,
                            format!("a message holds at most {MAX_REACTIONS} different reactions"),
                        ));
                    }
                    None => {
                        next.reactions.push(Reaction {
                            emoji: emoji.clone(),
                            by: vec![Reactor {
                                author: author.clone(),
                                nick,
                            }],
                        });
                        true
                    }
                };
                AmendKind::React { emoji, on }
            }
        };
        let by = match by {
            Some(by) => by,
            None => self.client(id)?.nick.to_string(),
        };
        if self.shared {
            // The store applies it to the message as it keeps it now, and
            // it arrives numbered (`shared`).
            let change = super::port::PublishChange {
                id: 0,
                room,
                target: target.seq,
                ts: now.ms,
                by: self.client(id)?.nick.to_string(),
                author: self.author_of(id),
                authors,
                kind,
            };
            self.publish_change(id, change, r#ref);
            return Ok(());
        }
        let Some(r) = self.rooms.get_mut(&room) else {
            return Err(not_in(&room));
        };
        r.last_seq += 1;
        let amend = Rc::new(Amend {
            room: room.clone(),
            seq: r.last_seq,
            target: target.seq,
            ts: now.ms,
            by,
            author,
            kind,
        });
        let members = r.members.snapshot();
        self.live
            .insert((room.clone(), target.seq), (self.next_batch, Rc::new(next)));
        self.pending_amends.push(amend.clone());
        self.pending_amends_from.push(id);
        for w in self.loads.values_mut() {
            if w.room == room && !matches!(w.then, Then::History { .. }) {
                w.tail.push(Entry::Amend(amend.clone()));
            }
        }
        // Reactions are not sent to line clients (like typing).
        let to = if matches!(amend.kind, AmendKind::React { .. }) {
            Recipients::List(
                members
                    .iter()
                    .copied()
                    .filter(|&c| {
                        c != id
                            && self
                                .clients
                                .get(&c)
                                .is_some_and(|c| c.kind == ClientKind::Ws)
                    })
                    .collect(),
            )
        } else {
            Recipients::Room {
                members,
                except: Some(id),
            }
        };
        self.deliver(to, Event::Amend(amend.clone()));
        self.reply(id, Reply::Amended(amend), r#ref);
        Ok(())
    }

    /// Forgets the state made by batch `batch` (answered: the store has it,
    /// or refused it and has the state before).
    pub(super) fn settle_live(&mut self, batch: u64) {
        if !self.live.is_empty() {
            self.live.retain(|_, (b, _)| *b != batch);
        }
    }

    /// A search (PROTOCOL-2 section 4): the rooms it may look in, then the
    /// store looks.
    pub(super) fn search(
        &mut self,
        id: ClientId,
        q: String,
        scope: Scope,
        limit: usize,
        before: Option<u64>,
        r#ref: Option<String>,
    ) -> Result<(), HubError> {
        if limit == 0 {
            return Err(HubError::new(
                ErrorCode::BadRequest,
                format!("\"limit\" is 1 to {MAX_SEARCH}"),
            ));
        }
        let limit = limit.min(MAX_SEARCH);
        let (rooms, room) = match scope {
            Scope::Current => {
                let r = self.target_room(id, None)?;
                (vec![r.clone()], Some(r))
            }
            Scope::Room(r) => {
                let member = self.rooms.get(&r).is_some_and(|x| x.members.contains(id));
                if !member && self.invite_only(&r) {
                    return Err(HubError::new(
                        ErrorCode::InviteOnly,
                        format!("#{r} is invite-only: only its members may search it"),
                    ));
                }
                (vec![r.clone()], Some(r))
            }
            Scope::Joined => (self.client(id)?.rooms.clone(), None),
        };
        let query = Query::parse(&q);
        if query.is_empty() || rooms.is_empty() {
            let results = Vec::new();
            self.reply(id, Reply::Search { q, room, results }, r#ref);
            return Ok(());
        }
        if !self.history_allowed(id) {
            return Err(HubError::new(
                ErrorCode::RateLimited,
                "too much history asked for at once; try again in a moment",
            ));
        }
        // This turn's messages first, so they can be found.
        self.close_batch();
        let search = self.next_load;
        self.next_load += 1;
        self.park_on_work(id);
        self.ops.push(StoreOp::Search(SearchOp {
            id: search,
            rooms,
            query,
            limit,
            before,
        }));
        self.searches.insert(
            search,
            Searching {
                client: id,
                q,
                room,
                r#ref,
            },
        );
        Ok(())
    }

    /// The store's answer to a search, read through the changes still out.
    pub(super) fn searched(&mut self, s: Searching, result: Result<Vec<Hit>, StoreError>) {
        let Searching {
            client: id,
            q,
            room,
            r#ref,
        } = s;
        match result {
            Ok(hits) => {
                let results: Vec<Hit> = hits
                    .into_iter()
                    .filter_map(|mut h| {
                        h.message = self.as_now(h.message);
                        // Shared: a message that has not arrived here yet
                        // (a search answered after waiting its longest)
                        // is not shown before it comes live.
                        let arrived = !self.shared
                            || self
                                .rooms
                                .get(&h.message.room)
                                .is_none_or(|r| h.message.seq <= r.last_seq);
                        (!h.message.deleted && arrived).then_some(h)
                    })
                    .collect();
                let messages: Vec<Rc<Message>> =
                    results.iter().map(|h| h.message.clone()).collect();
                self.charge_history(id, &messages, false);
                self.reply(id, Reply::Search { q, room, results }, r#ref);
            }
            Err(e) => self.error(id, self.store_failed(e), r#ref),
        }
    }

    /// Takes the finds and searches of a client that is gone out of the
    /// books (their answers are then dropped).
    pub(super) fn take_finding(&mut self, find: u64) -> Option<Finding> {
        self.finds.remove(&find)
    }

    /// See [`Hub::take_finding`].
    pub(super) fn take_searching(&mut self, search: u64) -> Option<Searching> {
        self.searches.remove(&search)
    }
}

impl Finding {
    /// Who waits for it.
    pub(super) fn client(&self) -> ClientId {
        self.client
    }
}

impl Searching {
    /// Who waits for it.
    pub(super) fn client(&self) -> ClientId {
        self.client
    }
}
