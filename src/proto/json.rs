//! The JSON chat protocol spoken inside WebSocket text frames, without I/O.
//!
//! [`parse`] turns one client message into a hub [`Command`] plus its `ref`;
//! [`render`] turns a hub [`Event`] into the JSON object of PROTOCOL.md
//! "WebSocket protocol". Framing is `proto::ws`'s job, sockets the shell's.
//!
//! Read next: `proto::ws` (frames), then `server` (who calls both).

use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::hub::command::{Command, ModAction, Page, Scope, Target, DEFAULT_SEARCH};
use crate::hub::error::{ErrorCode, HubError};
use crate::hub::event::{
    Amend, AmendKind, Dm, Entry, Event, Hit, LeaveReason, Limits, Message, ModEvent, ModKind,
    PresenceKind, Reaction, Reactor, Reply, ReplyTo,
};
use crate::hub::names::{Nick, RoomName};
use crate::hub::MAX_HISTORY_PAGE;

/// Messages a `history` request returns when it names no `limit`.
pub const DEFAULT_PAGE: usize = 50;
/// `server` in `welcome`.
pub const SERVER: &str = concat!("natter/", env!("CARGO_PKG_VERSION"));

/// One parsed client request.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    /// What the message's `type` and fields ask of the hub. An `image`
    /// carries an empty `id`: the shell names it.
    pub command: Command,
    /// The request's `ref`, a string of the client's choosing, to be copied
    /// into the reply or error that answers it.
    pub r#ref: Option<String>,
}

/// A refused request: the error and the `ref` to answer it with.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    /// What was wrong: `bad_json`, `bad_request` (not an object, a field
    /// missing or mistyped), `unknown_type`, `bad_image` (`data` not base64)
    /// or `room_invalid`.
    pub error: HubError,
    /// The request's `ref`; `None` if it had none or it could not be read
    /// (not JSON, not an object, a `ref` that is not a string).
    pub r#ref: Option<String>,
}

fn bad(message: impl Into<String>) -> HubError {
    HubError::new(ErrorCode::BadRequest, message)
}

/// Parses one text message. Unknown fields are ignored; a missing or
/// mistyped field that the type needs is `bad_request`.
pub fn parse(text: &str) -> Result<Request, Refusal> {
    let refuse = |error, r#ref| Refusal { error, r#ref };
    let value: Value = serde_json::from_str(text).map_err(|e| {
        refuse(
            HubError::new(ErrorCode::BadJson, format!("not valid JSON: {e}")),
            None,
        )
    })?;
    let Value::Object(obj) = value else {
        return Err(refuse(
            bad("a request is a JSON object with a \"type\""),
            None,
        ));
    };
    let r#ref = match obj.get("ref") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(refuse(bad("\"ref\" must be a string"), None)),
    };
    match command(&obj) {
        Ok(command) => Ok(Request { command, r#ref }),
        Err(error) => Err(refuse(error, r#ref)),
    }
}

fn command(obj: &Map<String, Value>) -> Result<Command, HubError> {
    let kind = match obj.get("type") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(bad("\"type\" must be a string")),
        None => return Err(bad("a request needs a \"type\"")),
    };
    let f = Fields(obj);
    Ok(match kind {
        "nick" => Command::Nick(f.string("nick")?.to_string()),
        "join" => Command::Join {
            room: f.room()?,
            since: f.opt_u64("since")?,
        },
        "create" => Command::Create,
        "leave" => Command::Leave(Some(f.room()?)),
        "say" => Command::Say {
            room: Some(f.room()?),
            text: f.string("text")?.to_string(),
            action: f.opt_bool("action")?.unwrap_or(false),
            cid: f.opt_string("cid")?,
            reply_to: f.opt_u64("reply_to")?.map(Target::Seq),
        },
        "image" => {
            use base64::Engine as _;
            let data = base64::engine::general_purpose::STANDARD
                .decode(f.string("data")?)
                .map_err(|_| HubError::new(ErrorCode::BadImage, "\"data\" is not valid base64"))?;
            Command::Image {
                room: f.room()?,
                data,
                text: f.opt_string("text")?,
                cid: f.opt_string("cid")?,
                // Named by the shell, which has the OS's randomness.
                id: String::new(),
                reply_to: f.opt_u64("reply_to")?.map(Target::Seq),
            }
        }
        "dm" => Command::Dm {
            to: f.string("to")?.to_string(),
            text: f.string("text")?.to_string(),
            cid: f.opt_string("cid")?,
        },
        "history" => {
            let limit = f.opt_u64("limit")?.map_or(DEFAULT_PAGE, |n| {
                usize::try_from(n).map_or(MAX_HISTORY_PAGE, |n| n.min(MAX_HISTORY_PAGE))
            });
            Command::History {
                room: f.opt_room()?,
                page: Page {
                    before: f.opt_u64("before")?,
                    after: f.opt_u64("after")?,
                    limit,
                },
            }
        }
        "typing" => Command::Typing(f.room()?),
        "rooms" => Command::Rooms,
        "who" => Command::Who(f.opt_room()?),
        "register" => Command::Register {
            password: f.string("password")?.to_string(),
        },
        "login" => match f.opt_string("token")? {
            Some(_) if !matches!(obj.get("password"), None | Some(Value::Null)) => {
                return Err(bad(
                    "a login carries either a \"token\" or a \"nick\" and \"password\", not both",
                ))
            }
            Some(token) => Command::LoginToken(token),
            None => Command::Login {
                nick: f.string("nick")?.to_string(),
                password: f.string("password")?.to_string(),
            },
        },
        "logout" => Command::Logout,
        "password" => Command::Password {
            old: f.string("old")?.to_string(),
            new: f.string("new")?.to_string(),
        },
        "mod" => Command::Mod {
            room: Some(f.room()?),
            action: mod_action(&f)?,
        },
        "edit" => Command::Edit {
            room: Some(f.room()?),
            target: Target::Seq(f.u64("seq")?),
            text: f.string("text")?.to_string(),
        },
        "delete" => Command::Delete {
            room: Some(f.room()?),
            target: Target::Seq(f.u64("seq")?),
        },
        "react" => Command::React {
            room: Some(f.room()?),
            target: Target::Seq(f.u64("seq")?),
            // Checked (length, spaces, control characters) by the hub, as
            // the line's `/react` is.
            emoji: f.string("emoji")?.to_string(),
        },
        "search" => Command::Search {
            q: f.string("q")?.to_string(),
            scope: f.opt_room()?.map_or(Scope::Joined, Scope::Room),
            // Passed on as asked: the hub caps it at MAX_SEARCH.
            limit: f
                .opt_u64("limit")?
                .map_or(DEFAULT_SEARCH, |n| usize::try_from(n).unwrap_or(usize::MAX)),
            before: f.opt_u64("before")?,
        },
        other => {
            return Err(HubError::new(
                ErrorCode::UnknownType,
                format!(
                    "unknown request type {:?}",
                    crate::hub::names::sanitize(other)
                ),
            ))
        }
    })
}

/// The `action` of a `mod` request and the fields it needs.
fn mod_action(f: &Fields<'_>) -> Result<ModAction, HubError> {
    let nick = || f.string("nick").map(str::to_string);
    // An empty or blank reason is no reason, as on a line.
    let reason = || {
        f.opt_string("reason")
            .map(|r| r.filter(|r| !r.trim().is_empty()))
    };
    Ok(match f.string("action")? {
        "kick" => ModAction::Kick {
            nick: nick()?,
            reason: reason()?,
        },
        "ban" => ModAction::Ban {
            nick: nick()?,
            reason: reason()?,
        },
        "unban" => ModAction::Unban { nick: nick()? },
        "mute" => ModAction::Mute {
            nick: nick()?,
            secs: match f.opt_u64("secs")? {
                Some(0) => return Err(bad("\"secs\" must be at least 1")),
                secs => secs,
            },
        },
        "unmute" => ModAction::Unmute { nick: nick()? },
        "op" => ModAction::Op { nick: nick()? },
        "deop" => ModAction::Deop { nick: nick()? },
        "topic" => ModAction::Topic {
            text: f.string("text")?.to_string(),
        },
        "invite_only" => ModAction::InviteOnly {
            on: f.opt_bool("on")?.ok_or_else(|| bad("\"on\" is missing"))?,
        },
        "invite" => ModAction::Invite { nick: nick()? },
        "bans" => ModAction::Bans,
        other => {
            return Err(bad(format!(
                "unknown mod action {:?}; the actions are kick, ban, unban, mute, unmute, \
                 op, deop, topic, invite_only, invite and bans",
                crate::hub::names::sanitize(other)
            )))
        }
    })
}

/// Typed access to a request's fields, each error naming the field.
struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    fn string(&self, name: &str) -> Result<&str, HubError> {
        match self.0.get(name) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(bad(format!("\"{name}\" must be a string"))),
            None => Err(bad(format!("\"{name}\" is missing"))),
        }
    }

    fn opt_string(&self, name: &str) -> Result<Option<String>, HubError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad(format!("\"{name}\" must be a string"))),
        }
    }

    fn u64(&self, name: &str) -> Result<u64, HubError> {
        self.opt_u64(name)?
            .ok_or_else(|| bad(format!("\"{name}\" is missing")))
    }

    fn opt_u64(&self, name: &str) -> Result<Option<u64>, HubError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| bad(format!("\"{name}\" must be a whole number"))),
            Some(_) => Err(bad(format!("\"{name}\" must be a whole number"))),
        }
    }

    fn opt_bool(&self, name: &str) -> Result<Option<bool>, HubError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(bad(format!("\"{name}\" must be true or false"))),
        }
    }

    fn room(&self) -> Result<RoomName, HubError> {
        RoomName::parse(self.string("room")?)
    }

    fn opt_room(&self) -> Result<Option<RoomName>, HubError> {
        self.opt_string("room")?
            .map(|r| RoomName::parse(&r))
            .transpose()
    }
}

// What goes out. Field order follows PROTOCOL.md; optional fields are left
// out rather than sent as null.

/// A MESSAGE: a live one with every field it has, or what is left of a
/// deleted one.
#[derive(Serialize)]
#[serde(untagged)]
enum MessageOut<'a> {
    Live(LiveOut<'a>),
    Deleted(DeletedOut<'a>),
}

#[derive(Serialize)]
struct LiveOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    room: &'a str,
    seq: u64,
    ts: u64,
    from: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<&'a str>,
    text: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    action: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<ImageOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_to: Option<ReplyToOut<'a>>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    mentions: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    edited_ts: Option<u64>,
    #[serde(skip_serializing_if = "ReactionsOut::is_empty")]
    reactions: ReactionsOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    snippet: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    marks: Option<&'a [(usize, usize)]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cid: Option<&'a str>,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    r#ref: Option<&'a str>,
}

/// A deleted message, exactly as PROTOCOL-2 section 3 spells it: no text,
/// image, account, reply, mentions or reactions.
#[derive(Serialize)]
struct DeletedOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    room: &'a str,
    seq: u64,
    from: &'a str,
    ts: u64,
    deleted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    snippet: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    marks: Option<&'a [(usize, usize)]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cid: Option<&'a str>,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    r#ref: Option<&'a str>,
}

#[derive(Serialize)]
struct ImageOut<'a> {
    url: String,
    mime: &'a str,
    size: usize,
}

/// `{"seq":17,"from":"bob","text":"..."}`, no `text` once it is deleted.
#[derive(Serialize)]
struct ReplyToOut<'a> {
    seq: u64,
    from: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
}

impl<'a> From<&'a ReplyTo> for ReplyToOut<'a> {
    fn from(r: &'a ReplyTo) -> ReplyToOut<'a> {
        ReplyToOut {
            seq: r.seq,
            from: &r.from,
            text: r.text.as_deref(),
        }
    }
}

/// `"reactions":{"👍":["alice","bob"]}`, the emoji in the message's order
/// (a `serde_json::Map` would sort them). An emoji nobody holds is left out.
struct ReactionsOut<'a>(&'a [Reaction]);

impl ReactionsOut<'_> {
    fn held(&self) -> impl Iterator<Item = &Reaction> {
        self.0.iter().filter(|r| !r.by.is_empty())
    }

    fn is_empty(&self) -> bool {
        self.held().next().is_none()
    }
}

impl Serialize for ReactionsOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for r in self.held() {
            map.serialize_entry(&r.emoji, &Nicks(&r.by))?;
        }
        map.end()
    }
}

/// Who reacted, by nick only: the identity is never sent.
struct Nicks<'a>(&'a [Reactor]);

impl Serialize for Nicks<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for r in self.0 {
            seq.serialize_element(&r.nick)?;
        }
        seq.end()
    }
}

/// What a search result adds to its MESSAGE: `snippet` and `marks`.
type HitOut<'a> = (&'a str, &'a [(usize, usize)]);

impl<'a> MessageOut<'a> {
    fn new(m: &'a Message, cid: Option<&'a str>, r#ref: Option<&'a str>) -> MessageOut<'a> {
        MessageOut::with_hit(m, None, cid, r#ref)
    }

    fn with_hit(
        m: &'a Message,
        hit: Option<HitOut<'a>>,
        cid: Option<&'a str>,
        r#ref: Option<&'a str>,
    ) -> MessageOut<'a> {
        if m.deleted {
            return MessageOut::Deleted(DeletedOut {
                kind: "message",
                room: m.room.as_str(),
                seq: m.seq,
                from: &m.from,
                ts: m.ts,
                deleted: true,
                snippet: hit.map(|h| h.0),
                marks: hit.map(|h| h.1),
                cid,
                r#ref,
            });
        }
        MessageOut::Live(LiveOut {
            kind: "message",
            room: m.room.as_str(),
            seq: m.seq,
            ts: m.ts,
            from: &m.from,
            account: m.account.as_deref(),
            text: &m.text,
            action: m.action,
            image: m.image.as_ref().map(|i| ImageOut {
                url: format!("/media/{}", i.id),
                mime: i.mime,
                size: i.size,
            }),
            reply_to: m.reply_to.as_ref().map(ReplyToOut::from),
            mentions: &m.mentions,
            edited_ts: m.edited_ts,
            reactions: ReactionsOut(&m.reactions),
            snippet: hit.map(|h| h.0),
            marks: hit.map(|h| h.1),
            cid,
            r#ref,
        })
    }

    /// A search result: the message as it is now, with its snippet and
    /// marks. A deleted one (never found, but should one slip through)
    /// shows neither its text nor a snippet of it.
    fn hit(h: &'a Hit) -> MessageOut<'a> {
        let hit: HitOut<'a> = if h.message.deleted {
            ("", &[])
        } else {
            (&h.snippet, &h.marks)
        };
        MessageOut::with_hit(&h.message, Some(hit), None, None)
    }
}

fn messages(ms: &[std::rc::Rc<Message>]) -> Vec<MessageOut<'_>> {
    ms.iter().map(|m| MessageOut::new(m, None, None)).collect()
}

/// An `edit`, `delete` or `react` event: exactly the fields PROTOCOL-2
/// section 3 gives each, in its order, with the request's `ref` on the
/// sender's own copy.
#[derive(Serialize)]
struct AmendOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    room: &'a str,
    seq: u64,
    target: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    by: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    emoji: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    on: Option<bool>,
    ts: u64,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    r#ref: Option<&'a str>,
}

impl<'a> AmendOut<'a> {
    fn new(a: &'a Amend, r#ref: Option<&'a str>) -> AmendOut<'a> {
        let mut out = AmendOut {
            kind: a.kind.as_str(),
            room: a.room.as_str(),
            seq: a.seq,
            target: a.target,
            from: None,
            by: None,
            text: None,
            emoji: None,
            on: None,
            ts: a.ts,
            r#ref,
        };
        match &a.kind {
            AmendKind::Edit { text } => {
                out.from = Some(&a.by);
                out.text = Some(text);
            }
            // `of` is for the line only.
            AmendKind::Delete { of: _ } => out.by = Some(&a.by),
            AmendKind::React { emoji, on } => {
                out.from = Some(&a.by);
                out.emoji = Some(emoji);
                out.on = Some(*on);
            }
        }
        out
    }
}

/// One entry of a catch-up: a MESSAGE, or the event of a change.
#[derive(Serialize)]
#[serde(untagged)]
enum EntryOut<'a> {
    Message(MessageOut<'a>),
    Amend(AmendOut<'a>),
}

fn entries(es: &[Entry]) -> Vec<EntryOut<'_>> {
    es.iter()
        .map(|e| match e {
            Entry::Message(m) => EntryOut::Message(MessageOut::new(m, None, None)),
            Entry::Amend(a) => EntryOut::Amend(AmendOut::new(a, None)),
        })
        .collect()
}

#[derive(Serialize)]
struct DmOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    from: &'a str,
    to: &'a str,
    ts: u64,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cid: Option<&'a str>,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    r#ref: Option<&'a str>,
}

impl<'a> DmOut<'a> {
    fn new(d: &'a Dm, cid: Option<&'a str>, r#ref: Option<&'a str>) -> DmOut<'a> {
        DmOut {
            kind: "dm",
            from: &d.from,
            to: &d.to,
            ts: d.ts,
            text: &d.text,
            account: d.account.as_deref(),
            cid,
            r#ref,
        }
    }
}

#[derive(Serialize)]
struct LimitsOut {
    max_message: usize,
    max_ws_message: usize,
    max_image: usize,
    rate: u64,
    burst: u64,
    history: usize,
}

impl From<&Limits> for LimitsOut {
    fn from(l: &Limits) -> LimitsOut {
        LimitsOut {
            max_message: l.max_message,
            max_ws_message: l.max_ws_message,
            max_image: l.max_image,
            rate: l.rate,
            burst: l.burst,
            history: l.history,
        }
    }
}

#[derive(Serialize)]
struct RoomCount<'a> {
    name: &'a str,
    members: usize,
}

/// One JSON object per shape; `ref` is added to replies when the request
/// had one.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Out<'a> {
    Welcome {
        nick: &'a str,
        server: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        session: Option<&'a str>,
        store_id: &'a str,
        limits: LimitsOut,
        account: Option<&'a str>,
    },
    Nick {
        nick: &'a str,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        r#ref: Option<&'a str>,
    },
    Joined {
        room: &'a str,
        members: &'a [Nick],
        messages: Vec<EntryOut<'a>>,
        last_seq: u64,
        store_id: &'a str,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        gap: bool,
        topic: Option<&'a str>,
        owner: Option<&'a str>,
        ops: &'a [String],
        invite_only: bool,
        role: &'static str,
        accounts: &'a [String],
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        r#ref: Option<&'a str>,
    },
    Left {
        room: &'a str,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        r#ref: Option<&'a str>,
    },
    Presence {
        room: &'a str,
        event: &'static str,
        nick: &'a str,
        ts: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        old: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        account: Option<&'a str>,
    },
    Typing {
        room: &'a str,
        nick: &'a str,
        ts: u64,
    },
    History {
        room: &'a str,
        messages: Vec<MessageOut<'a>>,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        r#ref: Option<&'a str>,
    },
    Rooms {
        rooms: Vec<RoomCount<'a>>,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        r#ref: Option<&'a str>,
    },
    Who {
        room: &'a str,
        members: &'a [Nick],
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        r#ref: Option<&'a str>,
    },
    Account {
        account: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        token: Option<&'a str>,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        r#ref: Option<&'a str>,
    },
    Bans {
        room: &'a str,
        bans: Vec<BanOut<'a>>,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        r#ref: Option<&'a str>,
    },
    Search {
        q: &'a str,
        /// Left out for a search of every room the client is in.
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<&'a str>,
        results: Vec<MessageOut<'a>>,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        r#ref: Option<&'a str>,
    },
    Error {
        code: &'static str,
        message: &'a str,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        r#ref: Option<&'a str>,
    },
}

#[derive(Serialize)]
struct BanOut<'a> {
    nick: &'a str,
    account: bool,
    by: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    ts: u64,
}

/// A moderation event (PROTOCOL-2 section 2): the fields each action
/// carries, the others left out.
#[derive(Serialize)]
struct ModOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    room: &'a str,
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    nick: Option<&'a str>,
    by: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    until: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    on: Option<bool>,
    ts: u64,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    r#ref: Option<&'a str>,
}

impl<'a> ModOut<'a> {
    fn new(m: &'a ModEvent, r#ref: Option<&'a str>) -> ModOut<'a> {
        let mut out = ModOut {
            kind: "mod",
            room: m.room.as_str(),
            action: m.action.action(),
            nick: None,
            by: &m.by,
            reason: None,
            secs: None,
            until: None,
            text: None,
            on: None,
            ts: m.ts,
            r#ref,
        };
        match &m.action {
            ModKind::Kick { nick, reason } | ModKind::Ban { nick, reason } => {
                out.nick = Some(nick);
                out.reason = reason.as_deref().filter(|r| !r.is_empty());
            }
            ModKind::Mute { nick, secs, until } => {
                out.nick = Some(nick);
                out.secs = *secs;
                out.until = *until;
            }
            ModKind::Unban { nick }
            | ModKind::Unmute { nick }
            | ModKind::Op { nick }
            | ModKind::Deop { nick }
            | ModKind::Invite { nick } => out.nick = Some(nick),
            ModKind::Topic { text } => out.text = Some(text),
            ModKind::InviteOnly { on } => out.on = Some(*on),
        }
        out
    }
}

/// The wire spelling of a leave reason.
pub fn reason_str(reason: &LeaveReason) -> &'static str {
    match reason {
        LeaveReason::Leave => "leave",
        LeaveReason::Quit(_) => "quit",
        LeaveReason::Disconnect => "disconnect",
        LeaveReason::Timeout => "timeout",
        LeaveReason::SlowConsumer => "slow_consumer",
        LeaveReason::Shutdown => "shutdown",
        LeaveReason::Kicked => "kicked",
        LeaveReason::Banned => "banned",
    }
}

fn to_vec(value: &impl Serialize) -> Option<Vec<u8>> {
    // Serializing these plain structs into memory cannot fail; if it ever
    // did, sending nothing beats sending half an object.
    serde_json::to_vec(value).ok()
}

/// The JSON text of an event, or `None` for what WebSocket clients never
/// get (line-only replies such as `/help`).
pub fn render(event: &Event) -> Option<Vec<u8>> {
    match event {
        Event::Message(m) => to_vec(&MessageOut::new(m, None, None)),
        Event::Dm(d) => to_vec(&DmOut::new(d, None, None)),
        Event::Typing(t) => to_vec(&Out::Typing {
            room: t.room.as_str(),
            nick: &t.nick,
            ts: t.ts,
        }),
        Event::Presence(p) => {
            let (event, old, reason, message) = match &p.kind {
                PresenceKind::Join => ("join", None, None, None),
                PresenceKind::Nick { old } => ("nick", Some(old.as_str()), None, None),
                PresenceKind::Leave(r) => {
                    let message = match r {
                        LeaveReason::Quit(Some(m)) => Some(m.as_str()),
                        _ => None,
                    };
                    ("leave", None, Some(reason_str(r)), message)
                }
            };
            to_vec(&Out::Presence {
                room: p.room.as_str(),
                event,
                nick: &p.nick,
                ts: p.ts,
                old,
                reason,
                message,
                account: p.account.as_deref(),
            })
        }
        Event::Reply(reply, r#ref) => render_reply(reply, r#ref.as_deref()),
        Event::Mod(m) => to_vec(&ModOut::new(m, None)),
        Event::Amend(a) => to_vec(&AmendOut::new(a, None)),
    }
}

fn render_reply(reply: &Reply, r#ref: Option<&str>) -> Option<Vec<u8>> {
    match reply {
        Reply::Amended(a) => to_vec(&AmendOut::new(a, r#ref)),
        Reply::Search { q, room, results } => to_vec(&Out::Search {
            q,
            room: room.as_ref().map(RoomName::as_str),
            results: results.iter().map(MessageOut::hit).collect(),
            r#ref,
        }),
        Reply::Welcome {
            nick,
            session,
            store_id,
            limits,
            account,
        } => to_vec(&Out::Welcome {
            nick,
            server: SERVER,
            session: session.as_deref(),
            store_id,
            limits: limits.into(),
            account: account.as_deref(),
        }),
        Reply::Nick { nick } => to_vec(&Out::Nick { nick, r#ref }),
        Reply::Joined {
            room,
            members,
            messages: ms,
            last_seq,
            gap,
            store_id,
            info,
            role,
            created: _,
        } => to_vec(&Out::Joined {
            room: room.as_str(),
            members,
            messages: entries(ms),
            last_seq: *last_seq,
            store_id,
            gap: *gap,
            topic: info.topic.as_deref(),
            owner: info.owner.as_deref(),
            ops: &info.ops,
            invite_only: info.invite_only,
            role: role.as_str(),
            accounts: &info.accounts,
            r#ref,
        }),
        Reply::Left { room } => to_vec(&Out::Left {
            room: room.as_str(),
            r#ref,
        }),
        Reply::Who { room, members } => to_vec(&Out::Who {
            room: room.as_str(),
            members,
            r#ref,
        }),
        Reply::Rooms { rooms } => to_vec(&Out::Rooms {
            rooms: room_counts(rooms),
            r#ref,
        }),
        Reply::History { room, messages: ms } => to_vec(&Out::History {
            room: room.as_str(),
            messages: messages(ms),
            r#ref,
        }),
        Reply::Sent(m, cid) => to_vec(&MessageOut::new(m, cid.as_deref(), r#ref)),
        Reply::DmSent(d, cid) => to_vec(&DmOut::new(d, cid.as_deref(), r#ref)),
        Reply::Error { code, message } => to_vec(&Out::Error {
            code: code.as_str(),
            message,
            r#ref,
        }),
        // Line-protocol conversation only.
        Reply::Current { .. } | Reply::Help(_) | Reply::Report(_) | Reply::Bye => None,
        Reply::Account { account, token, .. } => to_vec(&Out::Account {
            account: account.as_deref(),
            token: token.as_deref(),
            r#ref,
        }),
        Reply::Mod(m) => to_vec(&ModOut::new(m, r#ref)),
        Reply::Bans { room, bans } => to_vec(&Out::Bans {
            room: room.as_str(),
            bans: bans
                .iter()
                .map(|b| BanOut {
                    nick: &b.nick,
                    account: b.account,
                    by: &b.by,
                    reason: b.reason.as_deref().filter(|r| !r.is_empty()),
                    ts: b.ts,
                })
                .collect(),
            r#ref,
        }),
    }
}

/// A `{"room":..,"messages":[..]}` page for the HTTP API.
pub fn render_page(room: &RoomName, ms: &[std::rc::Rc<Message>]) -> Vec<u8> {
    #[derive(Serialize)]
    struct PageOut<'a> {
        room: &'a str,
        messages: Vec<MessageOut<'a>>,
    }
    to_vec(&PageOut {
        room: room.as_str(),
        messages: messages(ms),
    })
    .unwrap_or_default()
}

/// `{"rooms":[{"name":..,"members":..}]}` for the HTTP API.
pub fn render_rooms(rooms: &[(RoomName, usize)]) -> Vec<u8> {
    #[derive(Serialize)]
    struct RoomsOut<'a> {
        rooms: Vec<RoomCount<'a>>,
    }
    to_vec(&RoomsOut {
        rooms: room_counts(rooms),
    })
    .unwrap_or_default()
}

fn room_counts(rooms: &[(RoomName, usize)]) -> Vec<RoomCount<'_>> {
    rooms
        .iter()
        .map(|(name, members)| RoomCount {
            name: name.as_str(),
            members: *members,
        })
        .collect()
}

#[cfg(test)]
mod tests;
