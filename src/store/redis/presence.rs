//! Who is where, across processes (PROTOCOL-2 section 6): what a shared
//! hub announces (`hub::remote::Notice`) as Redis commands, and the
//! announcements of the other processes as they come on `natter:events`.
//!
//! Redis keeps each process's state, so a process that (re)connects reads
//! everyone's whole:
//!
//! - `natter:nicks`: hash, `KEY PROC` -> the nick as spelled;
//! - `natter:members`: hash, `ROOM KEY PROC` -> `{"n":NICK,"a":ACCOUNT}`;
//! - `natter:procs`: sorted set, each process's last heartbeat (Redis's
//!   clock, ms), written every `BEAT_MS` by `beat.lua`; a process silent
//!   for `DEAD_MS` is dropped by a survivor (`reap.lua`), which says so on
//!   the channel (`gone`), and every process drops its users.
//!
//! Each change is written, then published on `natter:events` as JSON with
//! the process's name (`p`) and a kind (`k`): `holds`, `releases`,
//! `presence`, `typing`, `dm`, `gone`, `sync` (a process wrote its state
//! whole again: read everyone's).

use std::rc::Rc;

use serde_json::{json, Map, Value as Json};

use super::script;
use crate::hub::event::{Dm, LeaveReason, ModEvent, ModKind, Presence, PresenceKind, Typing};
use crate::hub::names::{Nick, RoomName};
use crate::hub::port::{LocalState, Notice, RemoteState, SessionState};
use crate::proto::json::reason_str;
use crate::proto::resp::{encode_command, Value};

/// The channel announcements go on.
pub const EVENTS: &str = "natter:events";
/// Nicks held, by process.
pub const NICKS: &str = "natter:nicks";
/// Room members, by process.
pub const MEMBERS: &str = "natter:members";
/// Processes' heartbeats.
pub const PROCS: &str = "natter:procs";
/// How often a process beats.
pub const BEAT_MS: u64 = 3_000;
/// A process silent this long is dropped: its users leave their rooms
/// within `DEAD_MS + BEAT_MS` of its death (PROTOCOL-2: within 15 s).
pub const DEAD_MS: u64 = 10_000;

/// The reaping script.
pub const REAP: &str = include_str!("reap.lua");
/// The heartbeat script.
pub const BEAT: &str = include_str!("beat.lua");
/// The session-claiming script.
pub const CLAIM: &str = include_str!("claim.lua");
/// The script that writes a session's state unless another process
/// claimed it.
pub const SESS: &str = include_str!("sess.lua");
/// The nick-holding script.
pub const NICK: &str = include_str!("nick.lua");
/// Rooms made by `/create`, never listed.
pub const UNLISTED: &str = "natter:unlisted";
/// Who holds each nick: `KEY` -> `PROC ACCOUNT`.
pub const OWNER: &str = "natter:owner";

/// An announcement of another process.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A change it made.
    Notice(Notice),
    /// The process named died and was dropped.
    Gone(String),
    /// The process wrote its state whole again: read everyone's.
    Sync,
    /// Accounts or rooms' settings changed: read them whole again.
    State,
    /// An account on another process took the nick with this key from a
    /// guest of the process named.
    Lost(String),
    /// A session moved to the process that sent this.
    Taken {
        /// The token's hash.
        hash: String,
        /// The session's nick.
        nick: String,
        /// Its rooms.
        rooms: Vec<RoomName>,
    },
}

/// Appends the commands that write and publish `n` for process `proc`;
/// returns how many commands. A session held for a resume expires after
/// `grace_ms`.
pub fn encode_notice(out: &mut Vec<u8>, proc: &str, n: &Notice, grace_ms: u64) -> usize {
    if let Notice::Session { hash, state, held } = n {
        // One script, which writes nothing over a session another
        // process has claimed since (sess.lua).
        let key = format!("natter:sess:{hash}");
        let set = format!("natter:sessof:{proc}");
        let v = state.as_ref().map_or_else(String::new, |s| {
            json!({"p": proc, "nick": s.nick,
                "rooms": s.rooms.iter().map(RoomName::as_str).collect::<Vec<_>>(),
                "guest": s.guest, "account": s.account})
            .to_string()
        });
        let ms = if *held && state.is_some() {
            grace_ms.max(1).to_string()
        } else {
            String::new()
        };
        let sha = script::sha(SESS);
        encode_command(
            out,
            &["EVALSHA", &sha, "2", &key, &set, proc, hash, &v, &ms],
        );
        return 1;
    }
    let mut o = Map::new();
    o.insert("p".into(), json!(proc));
    let mut commands = 1;
    match n {
        Notice::Holds(nick) => {
            let field = format!("{} {proc}", nick.key());
            encode_command(out, &["HSET", NICKS, &field, nick.as_str()]);
            commands += 1;
            o.insert("k".into(), json!("holds"));
            o.insert("n".into(), json!(nick.as_str()));
        }
        Notice::Releases(key) => {
            let field = format!("{key} {proc}");
            encode_command(out, &["HDEL", NICKS, &field]);
            encode_nick(out, "release", key, proc, None);
            commands += 2;
            o.insert("k".into(), json!("releases"));
            o.insert("key".into(), json!(key));
        }
        Notice::Presence(p) => {
            let nick = Nick::parse(&p.nick).map(|n| n.key()).unwrap_or_default();
            let field = |key: &str| format!("{} {key} {proc}", p.room);
            let member = member_json(&p.nick, p.account.as_deref());
            o.insert("k".into(), json!("presence"));
            o.insert("room".into(), json!(p.room.as_str()));
            o.insert("n".into(), json!(p.nick));
            o.insert("ts".into(), json!(p.ts));
            if let Some(a) = &p.account {
                o.insert("a".into(), json!(a));
            }
            match &p.kind {
                PresenceKind::Join => {
                    encode_command(out, &["HSET", MEMBERS, &field(&nick), &member]);
                    o.insert("e".into(), json!("join"));
                }
                PresenceKind::Leave(reason) => {
                    encode_command(out, &["HDEL", MEMBERS, &field(&nick)]);
                    o.insert("e".into(), json!("leave"));
                    o.insert("reason".into(), json!(reason_str(reason)));
                    if let LeaveReason::Quit(Some(m)) = reason {
                        o.insert("message".into(), json!(m));
                    }
                }
                PresenceKind::Nick { old } => {
                    let old_key = Nick::parse(old).map(|n| n.key()).unwrap_or_default();
                    encode_command(out, &["HDEL", MEMBERS, &field(&old_key)]);
                    encode_command(out, &["HSET", MEMBERS, &field(&nick), &member]);
                    commands += 1;
                    o.insert("e".into(), json!("nick"));
                    o.insert("old".into(), json!(old));
                }
            }
            commands += 1;
        }
        Notice::Typing(t) => {
            o.insert("k".into(), json!("typing"));
            o.insert("room".into(), json!(t.room.as_str()));
            o.insert("n".into(), json!(t.nick));
            o.insert("ts".into(), json!(t.ts));
        }
        Notice::Mod(m) => {
            o.insert("k".into(), json!("mod"));
            o.insert("room".into(), json!(m.room.as_str()));
            o.insert("by".into(), json!(m.by));
            o.insert("ts".into(), json!(m.ts));
            let (name, fields) = match &m.action {
                ModKind::Kick { nick, reason } => ("kick", json!({"nick": nick, "reason": reason})),
                ModKind::Ban { nick, reason } => ("ban", json!({"nick": nick, "reason": reason})),
                ModKind::Unban { nick } => ("unban", json!({"nick": nick})),
                ModKind::Mute { nick, secs, until } => {
                    ("mute", json!({"nick": nick, "secs": secs, "until": until}))
                }
                ModKind::Unmute { nick } => ("unmute", json!({"nick": nick})),
                ModKind::Op { nick } => ("op", json!({"nick": nick})),
                ModKind::Deop { nick } => ("deop", json!({"nick": nick})),
                ModKind::Topic { text } => ("topic", json!({"text": text})),
                ModKind::InviteOnly { on } => ("invite_only", json!({"on": on})),
                ModKind::Invite { nick } => ("invite", json!({"nick": nick})),
            };
            o.insert("a".into(), json!(name));
            o.insert("f".into(), fields);
        }
        Notice::Unlisted(room) => {
            encode_command(out, &["SADD", UNLISTED, room.as_str()]);
            commands += 1;
            o.insert("k".into(), json!("unlisted"));
            o.insert("room".into(), json!(room.as_str()));
        }
        Notice::Session { .. } | Notice::Owns(..) => {}
        Notice::Dm(d) => {
            o.insert("k".into(), json!("dm"));
            o.insert("from".into(), json!(d.from));
            o.insert("to".into(), json!(d.to));
            o.insert("text".into(), json!(d.text));
            o.insert("ts".into(), json!(d.ts));
            if let Some(a) = &d.account {
                o.insert("a".into(), json!(a));
            }
        }
    }
    let body = Json::Object(o).to_string();
    encode_command(out, &["PUBLISH", EVENTS, &body]);
    commands
}

fn member_json(nick: &str, account: Option<&str>) -> String {
    match account {
        Some(a) => json!({"n": nick, "a": a}).to_string(),
        None => json!({"n": nick}).to_string(),
    }
}

/// Appends the commands that write this process's state whole (after its
/// own entries were reaped): its nicks and its members; returns how many.
pub fn encode_state(out: &mut Vec<u8>, proc: &str, state: &LocalState) -> usize {
    let (nicks, members) = (&state.nicks, &state.members);
    let mut n = 0;
    for chunk in nicks.chunks(500) {
        let mut args: Vec<String> = vec!["HSET".into(), NICKS.into()];
        for nick in chunk {
            args.push(format!("{} {proc}", nick.key()));
            args.push(nick.to_string());
        }
        encode_command(out, &args);
        n += 1;
    }
    for chunk in members.chunks(500) {
        let mut args: Vec<String> = vec!["HSET".into(), MEMBERS.into()];
        for (room, nick, account) in chunk {
            args.push(format!("{room} {} {proc}", nick.key()));
            args.push(member_json(nick.as_str(), account.as_deref()));
        }
        encode_command(out, &args);
        n += 1;
    }
    let sync = json!({"p": proc, "k": "sync"}).to_string();
    encode_command(out, &["PUBLISH", EVENTS, &sync]);
    n + 1
}

/// Appends `EVALSHA` of the reaping script for `proc`: quietly (`dead_before`
/// `None`: this process's own entries), or for a process whose heartbeat
/// is older than `dead_before`, saying so on the channel.
/// Its WebSocket sessions stay to be resumed elsewhere for `grace_ms`.
pub fn encode_reap(out: &mut Vec<u8>, proc: &str, dead_before: Option<u64>, grace_ms: u64) {
    let sha = script::sha(REAP);
    let (channel, limit) = match dead_before {
        Some(t) => (EVENTS.to_string(), t.to_string()),
        None => (String::new(), String::new()),
    };
    let grace = grace_ms.max(1).to_string();
    encode_command(
        out,
        &[
            "EVALSHA", &sha, "3", NICKS, MEMBERS, PROCS, proc, &channel, &limit, &grace,
        ],
    );
}

/// Appends `nick.lua`: `hold` (or `release`) the nick `key` for `proc`
/// and `account` (`None`: a guest). Its reply: 1, or 0 when another
/// process holds it.
pub fn encode_nick(out: &mut Vec<u8>, mode: &str, key: &str, proc: &str, account: Option<&str>) {
    let sha = script::sha(NICK);
    encode_command(
        out,
        &[
            "EVALSHA",
            &sha,
            "1",
            OWNER,
            mode,
            key,
            proc,
            account.unwrap_or("-"),
            EVENTS,
        ],
    );
}

/// Appends the claim of the session whose token hashes to `hash`.
pub fn encode_claim(out: &mut Vec<u8>, proc: &str, hash: &str) {
    let sha = script::sha(CLAIM);
    let key = format!("natter:sess:{hash}");
    let set = format!("natter:sessof:{proc}");
    encode_command(out, &["EVALSHA", &sha, "2", &key, &set, proc, hash, EVENTS]);
}

/// The valid room names in `v`'s `rooms` list.
fn rooms_of(v: &Json) -> Vec<RoomName> {
    v.get("rooms")
        .and_then(Json::as_array)
        .map(|r| {
            r.iter()
                .filter_map(Json::as_str)
                .filter_map(|r| RoomName::parse(r).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The claim's reply: the session, if Redis had it.
pub fn parse_claim(reply: &Value) -> Option<SessionState> {
    let v: Json = serde_json::from_slice(reply.as_bytes()?).ok()?;
    let s = |k: &str| v.get(k).and_then(Json::as_str).map(str::to_string);
    Some(SessionState {
        nick: s("nick")?,
        rooms: rooms_of(&v),
        guest: s("guest").unwrap_or_default(),
        account: s("account"),
    })
}

/// Appends the heartbeat of `proc`.
pub fn encode_beat(out: &mut Vec<u8>, proc: &str) {
    let sha = script::sha(BEAT);
    let dead = DEAD_MS.to_string();
    encode_command(out, &["EVALSHA", &sha, "1", PROCS, proc, &dead]);
}

/// The heartbeat's reply: Redis's time (ms) and the processes found dead.
pub fn parse_beat(reply: &Value) -> Option<(u64, Vec<String>)> {
    let Value::Array(Some(items)) = reply else {
        return None;
    };
    let (first, rest) = items.split_first()?;
    let Value::Int(now) = first else {
        return None;
    };
    let dead = rest
        .iter()
        .filter_map(|v| v.as_bytes())
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    Some((u64::try_from(*now).ok()?, dead))
}

/// Appends the reads of everyone's state: `HGETALL` of the nicks, then of
/// the members.
pub fn encode_read_state(out: &mut Vec<u8>) {
    encode_command(out, &["HGETALL", NICKS]);
    encode_command(out, &["HGETALL", MEMBERS]);
    encode_command(out, &["SMEMBERS", UNLISTED]);
}

/// Everyone's state from the two `HGETALL` replies (entries that do not
/// parse are left out).
pub fn parse_state(nicks: &Value, members: &Value, unlisted: &Value) -> RemoteState {
    let mut state = RemoteState::default();
    if let Value::Array(Some(rooms)) = unlisted {
        state.unlisted = rooms
            .iter()
            .filter_map(|r| RoomName::parse(std::str::from_utf8(r.as_bytes()?).ok()?).ok())
            .collect();
    }
    for (field, value) in pairs(nicks) {
        let Some((_, proc)) = field.split_once(' ') else {
            continue;
        };
        if let Ok(n) = Nick::parse(&value) {
            state.nicks.push((proc.to_string(), n));
        }
    }
    for (field, value) in pairs(members) {
        let mut parts = field.splitn(3, ' ');
        let (Some(room), Some(_key), Some(proc)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Ok(room) = RoomName::parse(room) else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<Json>(&value) else {
            continue;
        };
        let Some(Ok(nick)) = v.get("n").and_then(Json::as_str).map(Nick::parse) else {
            continue;
        };
        let account = v.get("a").and_then(Json::as_str).map(str::to_string);
        state.members.push((room, proc.to_string(), nick, account));
    }
    state
}

fn pairs(v: &Value) -> Vec<(String, String)> {
    let Value::Array(Some(items)) = v else {
        return Vec::new();
    };
    items
        .chunks(2)
        .filter_map(|kv| match kv {
            [k, v] => Some((
                String::from_utf8_lossy(k.as_bytes()?).into_owned(),
                String::from_utf8_lossy(v.as_bytes()?).into_owned(),
            )),
            _ => None,
        })
        .collect()
}

/// An announcement from the channel, with the process that made it.
pub fn parse_event(payload: &[u8]) -> Option<(String, Event)> {
    let v: Json = serde_json::from_slice(payload).ok()?;
    let s = |k: &str| v.get(k).and_then(Json::as_str);
    let proc = s("p")?.to_string();
    let ts = v.get("ts").and_then(Json::as_u64).unwrap_or(0);
    let event = match s("k")? {
        "gone" => Event::Gone(proc.clone()),
        "sync" => Event::Sync,
        "state" => Event::State,
        "lost" => Event::Lost(s("key")?.to_string()),
        "unlisted" => Event::Notice(Notice::Unlisted(RoomName::parse(s("room")?).ok()?)),
        "taken" => Event::Taken {
            hash: s("h")?.to_string(),
            nick: s("n")?.to_string(),
            rooms: rooms_of(&v),
        },
        "holds" => Event::Notice(Notice::Holds(Nick::parse(s("n")?).ok()?)),
        "releases" => Event::Notice(Notice::Releases(s("key")?.to_string())),
        "typing" => Event::Notice(Notice::Typing(Rc::new(Typing {
            room: RoomName::parse(s("room")?).ok()?,
            nick: s("n")?.to_string(),
            ts,
        }))),
        "dm" => Event::Notice(Notice::Dm(Rc::new(Dm {
            from: s("from")?.to_string(),
            to: s("to")?.to_string(),
            ts,
            text: s("text")?.to_string(),
            account: s("a").map(str::to_string),
        }))),
        "mod" => {
            let f = v.get("f")?;
            let fs = |k: &str| f.get(k).and_then(Json::as_str).map(str::to_string);
            let nick = || fs("nick");
            let action = match s("a")? {
                "kick" => ModKind::Kick {
                    nick: nick()?,
                    reason: fs("reason"),
                },
                "ban" => ModKind::Ban {
                    nick: nick()?,
                    reason: fs("reason"),
                },
                "unban" => ModKind::Unban { nick: nick()? },
                "mute" => ModKind::Mute {
                    nick: nick()?,
                    secs: f.get("secs").and_then(Json::as_u64),
                    until: f.get("until").and_then(Json::as_u64),
                },
                "unmute" => ModKind::Unmute { nick: nick()? },
                "op" => ModKind::Op { nick: nick()? },
                "deop" => ModKind::Deop { nick: nick()? },
                "topic" => ModKind::Topic { text: fs("text")? },
                "invite_only" => ModKind::InviteOnly {
                    on: f.get("on").and_then(Json::as_bool)?,
                },
                "invite" => ModKind::Invite { nick: nick()? },
                _ => return None,
            };
            Event::Notice(Notice::Mod(Rc::new(ModEvent {
                room: RoomName::parse(s("room")?).ok()?,
                by: s("by")?.to_string(),
                action,
                ts,
            })))
        }
        "presence" => {
            let kind = match s("e")? {
                "join" => PresenceKind::Join,
                "nick" => PresenceKind::Nick {
                    old: s("old")?.to_string(),
                },
                "leave" => PresenceKind::Leave(match s("reason")? {
                    "leave" => LeaveReason::Leave,
                    "quit" => LeaveReason::Quit(s("message").map(str::to_string)),
                    "disconnect" => LeaveReason::Disconnect,
                    "slow_consumer" => LeaveReason::SlowConsumer,
                    "shutdown" => LeaveReason::Shutdown,
                    "kicked" => LeaveReason::Kicked,
                    "banned" => LeaveReason::Banned,
                    _ => LeaveReason::Timeout,
                }),
                _ => return None,
            };
            Event::Notice(Notice::Presence(Rc::new(Presence {
                room: RoomName::parse(s("room")?).ok()?,
                kind,
                nick: s("n")?.to_string(),
                ts,
                account: s("a").map(str::to_string),
            })))
        }
        _ => return None,
    };
    Some((proc, event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::resp::{Decoder, Limits};

    fn decode(bytes: &[u8]) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        Decoder::new(Limits::default())
            .decode(bytes, |v| {
                let Value::Array(Some(items)) = v else {
                    panic!()
                };
                out.push(
                    items
                        .iter()
                        .map(|i| String::from_utf8_lossy(i.as_bytes().unwrap()).into_owned())
                        .collect(),
                );
            })
            .unwrap();
        out
    }

    fn room() -> RoomName {
        RoomName::parse("lobby").unwrap()
    }

    #[test]
    fn every_notice_is_written_then_published_and_read_back_the_same() {
        let nick = Nick::parse("Alice").unwrap();
        let notices = [
            Notice::Holds(nick.clone()),
            Notice::Releases("alice".into()),
            Notice::Presence(Rc::new(Presence {
                room: room(),
                kind: PresenceKind::Join,
                nick: "Alice".into(),
                ts: 5,
                account: Some("Alice".into()),
            })),
            Notice::Presence(Rc::new(Presence {
                room: room(),
                kind: PresenceKind::Leave(LeaveReason::Quit(Some("bye".into()))),
                nick: "Alice".into(),
                ts: 6,
                account: None,
            })),
            Notice::Presence(Rc::new(Presence {
                room: room(),
                kind: PresenceKind::Nick { old: "al".into() },
                nick: "Alice".into(),
                ts: 7,
                account: None,
            })),
            Notice::Typing(Rc::new(Typing {
                room: room(),
                nick: "Alice".into(),
                ts: 8,
            })),
            Notice::Dm(Rc::new(Dm {
                from: "Alice".into(),
                to: "bob".into(),
                ts: 9,
                text: "psst".into(),
                account: None,
            })),
        ];
        let m = |action| {
            Notice::Mod(Rc::new(ModEvent {
                room: room(),
                by: "op".into(),
                action,
                ts: 10,
            }))
        };
        let n = || "bob".to_string();
        let mods = [
            m(ModKind::Kick {
                nick: n(),
                reason: Some("spam".into()),
            }),
            m(ModKind::Ban {
                nick: n(),
                reason: None,
            }),
            m(ModKind::Unban { nick: n() }),
            m(ModKind::Mute {
                nick: n(),
                secs: Some(60),
                until: Some(70_000),
            }),
            m(ModKind::Mute {
                nick: n(),
                secs: None,
                until: None,
            }),
            m(ModKind::Unmute { nick: n() }),
            m(ModKind::Op { nick: n() }),
            m(ModKind::Deop { nick: n() }),
            m(ModKind::Topic { text: "hi".into() }),
            m(ModKind::InviteOnly { on: true }),
            m(ModKind::Invite { nick: n() }),
        ];
        let notices = notices.into_iter().chain(mods);
        for n in notices {
            let mut out = Vec::new();
            let count = encode_notice(&mut out, "p1", &n, 1000);
            let cmds = decode(&out);
            assert_eq!(cmds.len(), count, "{n:?}");
            let publish = cmds.last().unwrap();
            assert_eq!(publish[..2], ["PUBLISH", EVENTS]);
            let (proc, back) = parse_event(publish[2].as_bytes()).unwrap();
            assert_eq!(proc, "p1");
            assert_eq!(back, Event::Notice(n.clone()), "{n:?}");
        }
    }

    #[test]
    fn presence_writes_name_the_room_the_nick_and_the_process() {
        let mut out = Vec::new();
        let p = Presence {
            room: room(),
            kind: PresenceKind::Nick { old: "Al".into() },
            nick: "Bob".into(),
            ts: 1,
            account: None,
        };
        encode_notice(&mut out, "p9", &Notice::Presence(Rc::new(p)), 1000);
        let cmds = decode(&out);
        assert_eq!(cmds[0], ["HDEL", MEMBERS, "lobby al p9"]);
        assert_eq!(cmds[1][..3], ["HSET", MEMBERS, "lobby bob p9"]);
    }

    #[test]
    fn state_reads_back_and_bad_entries_are_skipped() {
        let b = |s: &str| Value::Bulk(Some(bytes::Bytes::copy_from_slice(s.as_bytes())));
        let nicks = Value::Array(Some(vec![b("alice p1"), b("Alice"), b("bad"), b("9nope")]));
        let members = Value::Array(Some(vec![
            b("lobby alice p1"),
            b("{\"n\":\"Alice\",\"a\":\"Alice\"}"),
            b("lobby bob"),
            b("{\"n\":\"bob\"}"),
        ]));
        let s = parse_state(&nicks, &members, &Value::Array(None));
        assert_eq!(s.nicks, [("p1".to_string(), Nick::parse("Alice").unwrap())]);
        assert_eq!(
            s.members,
            [(
                room(),
                "p1".to_string(),
                Nick::parse("Alice").unwrap(),
                Some("Alice".to_string())
            )]
        );
    }

    #[test]
    fn junk_on_the_channel_is_ignored() {
        for bad in [
            &b"nope"[..],
            b"{}",
            b"{\"p\":\"x\"}",
            b"{\"p\":\"x\",\"k\":\"holds\",\"n\":\"1bad\"}",
        ] {
            assert_eq!(parse_event(bad), None, "{bad:?}");
        }
        assert_eq!(
            parse_event(b"{\"p\":\"x\",\"k\":\"gone\"}"),
            Some(("x".to_string(), Event::Gone("x".to_string())))
        );
    }
}
