//! The invariants the fuzz targets check, one module per decoder.
//!
//! Each `check(data)` panics when an invariant breaks; the libFuzzer targets
//! in `fuzz_targets/` call it on every input, and `tests/fuzz_regressions.rs`
//! (which includes this file with `#[path]`, so `cargo test` on stable needs
//! neither cargo-fuzz nor libFuzzer) replays every file of `fuzz/corpus/*/`
//! and every past finding through the same code.
//!
//! Input layouts (the first bytes configure, the rest is the stream):
//! - `line`: `[max, seed, stream...]`: `max` is `b & 0x7f`, or 4096 when the
//!   top bit is set; `seed` picks one arbitrary chunking (see [`chunks`]).
//! - `http`: `[seed, buffer...]`.
//! - `ws`: `[config, seed, stream...]`: `config & 7` picks the message limit
//!   from [`ws::MAX_TABLE`], `config & 8` makes the decoder accept binary.
//! - `json`: the text itself (invalid UTF-8 is replaced, lossily).
//! - `sniff`: the bytes themselves.
//! - `resp`: `[seed, stream...]`: Redis replies, chunked by `seed`.
//! - `tls`: `[seed, stream...]`: what a peer sends to a TLS port, chunked
//!   by `seed`; the first chunk starts the session.
//!
//! Only `natter`'s public API, `std` and `serde_json` are used here.

use std::fmt::Debug;

/// Splits `data` into consecutive chunks whose sizes come from `seed`: one
/// byte each for seed 0, else pseudo-random sizes from 0 (an empty read)
/// to `seed % 64 + 1`, so the same input is tried with many chunkings.
pub fn chunks(data: &[u8], seed: u8) -> Vec<&[u8]> {
    if seed == 0 {
        return data.chunks(1).collect();
    }
    let top = u32::from(seed % 64) + 2;
    let mut state = u32::from(seed).wrapping_mul(0x9E37_79B9) | 1;
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        // xorshift32: deterministic, so a crash replays exactly.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let size = (state % top) as usize;
        let (head, tail) = rest.split_at(size.min(rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}

/// Whether `s` holds a control character other than the ones allowed.
fn controls_except(s: &str, allowed: &[char]) -> Option<char> {
    s.chars().find(|c| c.is_control() && !allowed.contains(c))
}

fn assert_same<T: PartialEq + Debug>(what: &str, a: &T, b: &T) {
    assert!(a == b, "{what} differ:\n  {a:?}\nvs\n  {b:?}");
}

pub mod line {
    //! LineDecoder framing against a reference split, `parse`, `render`.

    use std::rc::Rc;

    use natter::hub::command::{Command, ModAction, Scope, Target, DEFAULT_SEARCH};
    use natter::hub::error::{ErrorCode, HubError};
    use natter::hub::event::{
        AccountChange, Amend, AmendKind, BanInfo, Dm, Entry, Event, Hit, ImageRef, LeaveReason,
        Limits, Message, ModEvent, ModKind, Presence, PresenceKind, Reaction, Reactor, Reply,
        ReplyTo, Role, RoomInfo, Typing,
    };
    use natter::hub::names::{sanitize, Nick, RoomName};
    use natter::hub::MAX_HISTORY_PAGE;
    use natter::proto::line::{parse, render, render_stats, Frame, Input, LineDecoder, Stats};

    use super::{assert_same, chunks, controls_except};

    /// A frame that outlives the decoder call.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Out {
        Line(Vec<u8>),
        TooLong,
    }

    fn own(f: Frame<'_>) -> Out {
        match f {
            Frame::Line(l) => Out::Line(l.to_vec()),
            Frame::TooLong => Out::TooLong,
        }
    }

    pub fn max_for(b: u8) -> usize {
        if b & 0x80 != 0 {
            4096
        } else {
            usize::from(b & 0x7f)
        }
    }

    /// Decodes `parts` in order with a fresh decoder, then `finish`,
    /// checking the buffer bound after every call.
    pub fn decode<'a>(max: usize, parts: impl IntoIterator<Item = &'a [u8]>) -> Vec<Out> {
        let mut dec = LineDecoder::new(max);
        let mut out = Vec::new();
        for part in parts {
            dec.decode(part, |f| out.push(own(f)));
            assert!(
                dec.buffered() <= max + 1,
                "buffered {} > max + 1 = {}",
                dec.buffered(),
                max + 1
            );
        }
        dec.finish(|f| out.push(own(f)));
        assert_eq!(dec.buffered(), 0, "bytes left after finish");
        out
    }

    /// What PROTOCOL.md says the frames are: split on `\n`, drop one `\r`
    /// before it, a line over `max` is `TooLong`; an unfinished last line
    /// counts at the end of the stream.
    pub fn reference(max: usize, stream: &[u8]) -> Vec<Out> {
        let mut segments: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
        if segments.last().is_some_and(|s| s.is_empty()) {
            segments.pop();
        }
        segments
            .into_iter()
            .map(|seg| {
                let seg = seg.strip_suffix(b"\r").unwrap_or(seg);
                if seg.len() > max {
                    Out::TooLong
                } else {
                    Out::Line(seg.to_vec())
                }
            })
            .collect()
    }

    pub fn check(data: &[u8]) {
        let [max, seed, stream @ ..] = data else {
            return;
        };
        let max = max_for(*max);
        let whole = decode(max, [stream]);
        assert_same(
            "whole and reference frames",
            &whole,
            &reference(max, stream),
        );
        let chunked = decode(max, chunks(stream, *seed));
        assert_same("whole and chunked frames", &whole, &chunked);
        for frame in &whole {
            if let Out::Line(line) = frame {
                assert!(line.len() <= max, "a line of {} > max {max}", line.len());
                check_parse(line);
            }
        }
        check_render(stream);
    }

    fn is_room(r: &RoomName) {
        assert_eq!(RoomName::parse(r.as_str()).as_ref(), Ok(r), "room {r:?}");
    }

    /// `parse` never panics, and what it makes of a line follows the table.
    pub fn check_parse(line: &[u8]) {
        let got = parse(line);
        let Ok(s) = std::str::from_utf8(line) else {
            assert_eq!(got.map_err(|e| e.code), Err(ErrorCode::BadUtf8));
            return;
        };
        if let Err(HubError { message, .. }) = &got {
            assert_eq!(controls_except(message, &[]), None, "{message:?}");
        }
        if s.trim().is_empty() {
            assert_eq!(got, Ok(Input::Nothing));
            return;
        }
        let plain = match s.strip_prefix("//") {
            Some(rest) => Some(format!("/{rest}")),
            None if !s.starts_with('/') => Some(s.to_string()),
            None => None,
        };
        if let Some(text) = plain {
            let want = Input::Command(Command::Say {
                reply_to: None,
                room: None,
                text,
                action: false,
                cid: None,
            });
            assert_eq!(got, Ok(want), "line {s:?}");
            return;
        }
        let Ok(Input::Command(cmd)) = got else {
            return;
        };
        let cmdline = &s[1..];
        let (name, rest) = match cmdline.find(char::is_whitespace) {
            Some(i) => (&cmdline[..i], cmdline[i..].trim()),
            None => (cmdline, ""),
        };
        let name = name.to_ascii_lowercase();
        match cmd {
            Command::Say {
                room,
                text,
                action,
                reply_to: Some(target),
                cid,
            } => {
                // `/reply NICK TEXT`: NICK's last message, TEXT the rest.
                assert_eq!(name, "reply", "{s:?} gave a reply");
                assert!(!action);
                assert_eq!((room, cid), (None, None));
                let Target::LastOf(nick) = target else {
                    panic!("{s:?} replies to {target:?}");
                };
                assert!(!nick.is_empty() && !nick.contains(char::is_whitespace));
                assert!(!text.is_empty());
                let after = rest.strip_prefix(nick.as_str()).expect("nick first");
                assert!(after.starts_with(char::is_whitespace));
                assert_eq!(after.trim_start(), text);
            }
            Command::Say {
                room, text, action, ..
            } => {
                // Only `/me` makes a Say out of a `/` line: its text is the
                // rest of the line, trimmed.
                assert!(action && name == "me", "{s:?} gave a plain say");
                assert_eq!(room, None);
                assert_eq!(text, rest);
                assert!(!text.is_empty());
            }
            Command::Nick(n) => assert_eq!((name.as_str(), n.as_str()), ("nick", rest)),
            Command::Join { room, since } => {
                assert_eq!((name.as_str(), since), ("join", None));
                is_room(&room);
            }
            Command::Leave(room) | Command::Who(room) => {
                if let Some(room) = room {
                    is_room(&room);
                }
            }
            Command::Dm { to, text, .. } => {
                assert_eq!(name, "msg");
                assert!(!to.is_empty() && !to.contains(char::is_whitespace));
                assert!(rest.starts_with(&to) && rest.ends_with(&text));
            }
            Command::History { page, .. } => assert!(page.limit <= MAX_HISTORY_PAGE),
            Command::Quit(reason) => {
                assert_eq!(name, "quit");
                assert_eq!(reason.as_deref().unwrap_or(""), rest);
            }
            Command::Image { .. } | Command::Typing(_) => panic!("{s:?} gave {cmd:?}"),
            Command::Create | Command::Rooms | Command::Help => {}
            Command::Register { password } => {
                // The rest of the line after one whitespace character,
                // untrimmed.
                assert_eq!(name, "register");
                assert!(!password.is_empty());
                assert_eq!(after_one(&cmdline[name.len()..]), Some(password.as_str()));
            }
            Command::Login { nick, password } => {
                assert_eq!(name, "login");
                assert!(!nick.is_empty() && !nick.contains(char::is_whitespace));
                assert!(!password.is_empty());
                let words = cmdline[name.len()..].trim_start();
                let after_nick = words.strip_prefix(nick.as_str()).expect("nick first");
                assert_eq!(after_one(after_nick), Some(password.as_str()));
            }
            Command::LoginToken(_) => panic!("{s:?} gave {cmd:?}: tokens are JSON only"),
            Command::Logout => assert_eq!(name, "logout"),
            Command::Password { old, new } => {
                assert_eq!(name, "password");
                let words: Vec<&str> = rest.split_whitespace().collect();
                assert_eq!(words, [old.as_str(), new.as_str()]);
            }
            Command::Mod { room, action } => {
                assert_eq!(room, None, "{s:?}: a line moderates its current room");
                check_mod(&name, rest, &action);
            }
            Command::Edit { room, target, text } => {
                // `/edit TEXT`: one's own last message, TEXT the rest.
                assert_eq!(name, "edit");
                assert_eq!((room, target), (None, Target::Mine));
                assert!(!text.is_empty());
                assert_eq!(text, rest);
            }
            Command::Delete { room, target } => {
                // `/delete` (one's own) or `/delete NICK`, one word.
                assert_eq!((name.as_str(), room), ("delete", None));
                match target {
                    Target::Mine => assert_eq!(rest, ""),
                    Target::LastOf(nick) => {
                        assert!(!nick.is_empty() && !nick.contains(char::is_whitespace));
                        assert_eq!(nick, rest);
                    }
                    Target::Seq(_) => panic!("{s:?} deletes by seq"),
                }
            }
            Command::React {
                room,
                target,
                emoji,
            } => {
                // `/react NICK EMOJI`: exactly two words.
                assert_eq!((name.as_str(), room), ("react", None));
                let Target::LastOf(nick) = target else {
                    panic!("{s:?} reacts to {target:?}");
                };
                let words: Vec<&str> = rest.split_whitespace().collect();
                assert_eq!(words, [nick.as_str(), emoji.as_str()]);
            }
            Command::Search {
                q,
                scope,
                limit,
                before,
            } => {
                // `/search WORDS` in the current room: any words at all.
                assert_eq!(name, "search");
                assert_eq!(
                    (scope, limit, before),
                    (Scope::Current, DEFAULT_SEARCH, None)
                );
                assert!(!q.is_empty());
                assert_eq!(q, rest);
            }
        }
    }

    /// `s` after its first character, which must be whitespace.
    fn after_one(s: &str) -> Option<&str> {
        let c = s.chars().next().filter(|c| c.is_whitespace())?;
        Some(&s[c.len_utf8()..])
    }

    /// A moderation command agrees with its line: `name` (lowercased) and
    /// `rest` (trimmed).
    fn check_mod(name: &str, rest: &str, action: &ModAction) {
        let one_nick = |nick: &str| {
            assert!(!nick.is_empty() && !nick.contains(char::is_whitespace));
        };
        match action {
            ModAction::Kick { nick, reason } | ModAction::Ban { nick, reason } => {
                let want = if matches!(action, ModAction::Kick { .. }) {
                    "kick"
                } else {
                    "ban"
                };
                assert_eq!(name, want);
                one_nick(nick);
                let after = rest.strip_prefix(nick.as_str()).expect("nick first");
                let after = after.trim();
                assert_eq!(reason.as_deref(), (!after.is_empty()).then_some(after));
            }
            ModAction::Unban { nick }
            | ModAction::Unmute { nick }
            | ModAction::Op { nick }
            | ModAction::Deop { nick }
            | ModAction::Invite { nick } => {
                let want = match action {
                    ModAction::Unban { .. } => "unban",
                    ModAction::Unmute { .. } => "unmute",
                    ModAction::Op { .. } => "op",
                    ModAction::Deop { .. } => "deop",
                    _ => "invite",
                };
                assert_eq!(name, want);
                one_nick(nick);
                assert_eq!(nick, rest);
            }
            ModAction::Mute { nick, secs } => {
                assert_eq!(name, "mute");
                let words: Vec<&str> = rest.split_whitespace().collect();
                assert_eq!(words.first(), Some(&nick.as_str()));
                match secs {
                    None => assert_eq!(words.len(), 1),
                    Some(n) => {
                        assert!(*n > 0);
                        assert_eq!(words.len(), 2);
                        assert!(words[1].bytes().all(|b| b.is_ascii_digit()));
                        assert_eq!(words[1].parse::<u64>().ok(), Some(*n));
                    }
                }
            }
            ModAction::Topic { text } => {
                assert_eq!(name, "topic");
                assert_eq!(text, rest);
            }
            ModAction::InviteOnly { on } => {
                assert_eq!(name, "invite-only");
                assert_eq!(rest.to_ascii_lowercase(), if *on { "on" } else { "off" });
            }
            ModAction::Bans => assert_eq!(name, "bans"),
        }
    }

    /// The events `render` is checked on: every kind, with names that passed
    /// validation and texts that went through `sanitize` (as the hub does),
    /// except the error message and the moderation texts (reasons, topics),
    /// which `render` must clean itself.
    pub fn events(nick: &str, room: &str, text: &str, ts: u64) -> Vec<Event> {
        let nick = Nick::parse(nick).map_or("alice".to_string(), |n| n.to_string());
        let room = RoomName::parse(room).unwrap_or_else(|_| RoomName::parse("lobby").unwrap());
        let raw = text.to_string();
        let text = sanitize(text);
        let message = |action, image: Option<ImageRef>| {
            Rc::new(Message {
                author: String::new(),
                reply_to: None,
                mentions: Vec::new(),
                edited_ts: None,
                deleted: false,
                reactions: Vec::new(),
                account: None,
                room: room.clone(),
                seq: ts,
                ts,
                from: nick.clone(),
                text: text.clone(),
                action,
                image,
            })
        };
        let image = ImageRef {
            id: "5f0c8a1e9b2d4c6f8a0b1c2d3e4f5a6b".to_string(),
            mime: "image/png",
            size: ts as usize % (4 << 20),
        };
        let messages = vec![
            message(false, None),
            message(true, None),
            message(false, Some(image.clone())),
        ];
        let presence = |kind| {
            Event::Presence(Rc::new(Presence {
                account: None,
                room: room.clone(),
                kind,
                nick: nick.clone(),
                ts,
            }))
        };
        let dm = Rc::new(Dm {
            account: None,
            from: nick.clone(),
            to: "bob".to_string(),
            ts,
            text: text.clone(),
        });
        let reply = |r| Event::Reply(r, Some(raw.clone()));
        let members: Vec<Nick> = [nick.as_str(), "bob"]
            .iter()
            .filter_map(|n| Nick::parse(n).ok())
            .collect();
        let mut events = vec![
            Event::Message(messages[0].clone()),
            Event::Message(messages[1].clone()),
            Event::Message(messages[2].clone()),
            presence(PresenceKind::Join),
            presence(PresenceKind::Nick { old: "bob".into() }),
            Event::Dm(dm.clone()),
            Event::Typing(Rc::new(Typing {
                room: room.clone(),
                nick: nick.clone(),
                ts,
            })),
            reply(Reply::Welcome {
                nick: nick.clone(),
                session: Some(raw.clone()),
                store_id: raw.clone(),
                limits: Limits::default(),
                account: None,
            }),
            reply(Reply::Nick { nick: nick.clone() }),
            reply(Reply::Current { room: room.clone() }),
            reply(Reply::Left { room: room.clone() }),
            reply(Reply::Who {
                room: room.clone(),
                members: members.clone(),
            }),
            reply(Reply::Who {
                room: room.clone(),
                members: vec![],
            }),
            reply(Reply::Rooms { rooms: vec![] }),
            reply(Reply::Rooms {
                rooms: vec![(room.clone(), ts as usize), (room.clone(), 1)],
            }),
            reply(Reply::History {
                room: room.clone(),
                messages: messages.clone(),
            }),
            reply(Reply::DmSent(dm, Some(raw.clone()))),
            reply(Reply::Sent(messages[0].clone(), Some(raw.clone()))),
            reply(Reply::Help(Limits::default())),
            reply(Reply::Report(render_stats(&Stats::default()))),
            reply(Reply::Bye),
            reply(Reply::Error {
                code: ErrorCode::BadRequest,
                message: raw.clone(),
            }),
        ];
        // Version 1's joined, then with a topic (a raw text, never empty,
        // so that it is one line whatever the fuzzer sent) and with an
        // empty one (no line).
        let infos = [
            RoomInfo::default(),
            RoomInfo {
                topic: Some(format!("t{raw}")),
                owner: Some(nick.clone()),
                ops: vec![nick.clone()],
                invite_only: true,
                accounts: vec![nick.clone()],
            },
            RoomInfo {
                topic: Some(String::new()),
                ..RoomInfo::default()
            },
        ];
        for (info, role) in infos.into_iter().zip([Role::Member, Role::Owner, Role::Op]) {
            for created in [false, true] {
                for messages in [vec![], messages.clone()] {
                    events.push(reply(Reply::Joined {
                        info: Box::new(info.clone()),
                        role,
                        room: room.clone(),
                        members: members.clone(),
                        messages: messages.into_iter().map(Entry::Message).collect(),
                        created,
                        last_seq: ts,
                        gap: false,
                        store_id: raw.clone(),
                    }));
                }
            }
        }
        // Version 2: a logged-in sender, the account answers, the
        // moderation events (reasons and topics raw, as a client typed
        // them: the renderer cleans them) and ban lists.
        let mut logged_in = (*messages[0]).clone();
        logged_in.account = Some(nick.clone());
        events.push(Event::Message(Rc::new(logged_in)));
        events.push(Event::Presence(Rc::new(Presence {
            account: Some(nick.clone()),
            room: room.clone(),
            kind: PresenceKind::Join,
            nick: nick.clone(),
            ts,
        })));
        for what in [
            AccountChange::Registered,
            AccountChange::LoggedIn,
            AccountChange::LoggedOut,
            AccountChange::PasswordChanged,
        ] {
            let logged_out = what == AccountChange::LoggedOut;
            events.push(reply(Reply::Account {
                what,
                account: (!logged_out).then(|| nick.clone()),
                nick: nick.clone(),
                token: (!logged_out).then(|| raw.clone()),
            }));
        }
        let reason = Some(raw.clone());
        for action in [
            ModKind::Kick {
                nick: nick.clone(),
                reason: reason.clone(),
            },
            ModKind::Kick {
                nick: nick.clone(),
                reason: None,
            },
            ModKind::Ban {
                nick: nick.clone(),
                reason: reason.clone(),
            },
            ModKind::Unban { nick: nick.clone() },
            ModKind::Mute {
                nick: nick.clone(),
                secs: Some(ts),
                until: Some(ts),
            },
            ModKind::Mute {
                nick: nick.clone(),
                secs: None,
                until: None,
            },
            ModKind::Unmute { nick: nick.clone() },
            ModKind::Op { nick: nick.clone() },
            ModKind::Deop { nick: nick.clone() },
            ModKind::Topic { text: raw.clone() },
            ModKind::InviteOnly {
                on: ts.is_multiple_of(2),
            },
            ModKind::Invite { nick: nick.clone() },
        ] {
            let m = Rc::new(ModEvent {
                room: room.clone(),
                by: nick.clone(),
                action,
                ts,
            });
            events.push(Event::Mod(m.clone()));
            events.push(reply(Reply::Mod(m)));
        }
        let ban = |account, reason: Option<String>| BanInfo {
            nick: nick.clone(),
            account,
            by: "bob".to_string(),
            reason,
            ts,
        };
        events.push(reply(Reply::Bans {
            room: room.clone(),
            bans: vec![],
        }));
        events.push(reply(Reply::Bans {
            room: room.clone(),
            bans: vec![ban(true, reason.clone()), ban(false, None)],
        }));
        events.extend(live_events(&nick, &room, &raw, &text, ts, &messages));
        for reason in [
            LeaveReason::Leave,
            LeaveReason::Quit(None),
            LeaveReason::Quit(Some(text.clone())),
            LeaveReason::Disconnect,
            LeaveReason::Timeout,
            LeaveReason::SlowConsumer,
            LeaveReason::Shutdown,
            LeaveReason::Kicked,
            LeaveReason::Banned,
        ] {
            events.push(presence(PresenceKind::Leave(reason)));
        }
        events
    }

    /// Version 2 sections 3 and 4: replies (their quotes raw, cut at any
    /// character), edited and deleted messages, the changes to messages as
    /// events and as their makers' answers, catch-ups that mix both, and
    /// search answers (the query raw, as the client typed it).
    fn live_events(
        nick: &str,
        room: &RoomName,
        raw: &str,
        text: &str,
        ts: u64,
        messages: &[Rc<Message>],
    ) -> Vec<Event> {
        let reply = |r| Event::Reply(r, Some(raw.to_string()));
        let mut variants = Vec::new();
        for (i, base) in messages.iter().enumerate() {
            let mut m = (**base).clone();
            m.reply_to = Some(ReplyTo {
                seq: ts,
                from: nick.to_string(),
                text: (i != 1).then(|| raw.to_string()),
            });
            m.mentions = vec![nick.to_string()];
            m.reactions = vec![Reaction {
                emoji: raw.to_string(),
                by: vec![Reactor {
                    author: raw.to_string(),
                    nick: nick.to_string(),
                }],
            }];
            variants.push(m.clone());
            m.edited_ts = Some(ts);
            variants.push(m.clone());
            m.text = String::new();
            variants.push(m.clone());
            m.text = text.to_string();
            m.deleted = true;
            variants.push(m);
        }
        let variants: Vec<Rc<Message>> = variants.into_iter().map(Rc::new).collect();
        let amend = |by: &str, kind| {
            Rc::new(Amend {
                room: room.clone(),
                seq: ts,
                target: ts / 2,
                ts,
                by: by.to_string(),
                author: raw.to_string(),
                kind,
            })
        };
        let amends = [
            amend(
                nick,
                AmendKind::Edit {
                    text: raw.to_string(),
                },
            ),
            amend(
                nick,
                AmendKind::Delete {
                    of: nick.to_string(),
                },
            ),
            amend(
                "bob",
                AmendKind::Delete {
                    of: nick.to_string(),
                },
            ),
            amend(
                nick,
                AmendKind::React {
                    emoji: raw.to_string(),
                    on: true,
                },
            ),
            amend(
                nick,
                AmendKind::React {
                    emoji: raw.to_string(),
                    on: false,
                },
            ),
        ];
        let mut events: Vec<Event> = variants.iter().cloned().map(Event::Message).collect();
        for a in &amends {
            events.push(Event::Amend(a.clone()));
            events.push(reply(Reply::Amended(a.clone())));
        }
        let mut entries: Vec<Entry> = amends.iter().cloned().map(Entry::Amend).collect();
        entries.extend(variants.iter().cloned().map(Entry::Message));
        for messages in [entries.clone(), entries[..1].to_vec()] {
            events.push(reply(Reply::Joined {
                info: Box::default(),
                role: Role::Member,
                room: room.clone(),
                members: vec![],
                messages,
                created: false,
                last_seq: ts,
                gap: false,
                store_id: raw.to_string(),
            }));
        }
        events.push(reply(Reply::History {
            room: room.clone(),
            messages: variants.clone(),
        }));
        let hits: Vec<Hit> = variants
            .iter()
            .map(|m| Hit {
                message: m.clone(),
                snippet: raw.to_string(),
                marks: vec![(0, raw.chars().count())],
            })
            .collect();
        for (room, results) in [
            (Some(room.clone()), vec![]),
            (Some(room.clone()), hits[..1].to_vec()),
            (None, hits),
        ] {
            events.push(reply(Reply::Search {
                q: raw.to_string(),
                room,
                results,
            }));
        }
        events
    }

    /// What line clients are never sent a line for: typing hints,
    /// reactions, and the leaves of the kicked and banned (their `mod` line
    /// said it).
    fn silent(event: &Event) -> bool {
        match event {
            Event::Typing(_) => true,
            Event::Amend(a) => matches!(a.kind, AmendKind::React { .. }),
            Event::Presence(p) => matches!(
                p.kind,
                PresenceKind::Leave(LeaveReason::Kicked | LeaveReason::Banned)
            ),
            _ => false,
        }
    }

    pub const ORIGIN: &str = "http://127.0.0.1:7878";

    /// `render` of events made from `stream`'s first fields (split on
    /// `\n`: nick, room, text) gives lines with no control character but the
    /// final `\n` and tabs, each starting with a marker, and exactly as many
    /// lines as the same event with a harmless text.
    pub fn check_render(stream: &[u8]) {
        let mut fields = stream.splitn(4, |&b| b == b'\n');
        let mut field = || String::from_utf8_lossy(fields.next().unwrap_or(b"")).into_owned();
        let (nick, room, text) = (field(), field(), field());
        let ts = stream
            .iter()
            .fold(0u64, |acc, &b| acc.rotate_left(8) ^ u64::from(b));
        let fuzzed = events(&nick, &room, &text, ts);
        let plain = events(&nick, &room, "x", ts);
        assert_eq!(fuzzed.len(), plain.len());
        for (event, baseline) in fuzzed.iter().zip(&plain) {
            let bytes = render(event, ORIGIN);
            let out = std::str::from_utf8(&bytes).expect("render gave invalid UTF-8");
            if silent(event) {
                assert_eq!(out, "", "{event:?} is not for line clients");
                continue;
            }
            assert!(out.ends_with('\n'), "{out:?} does not end in a newline");
            assert_eq!(
                controls_except(out, &['\n', '\t']),
                None,
                "control character in {out:?}"
            );
            let want = render(baseline, ORIGIN)
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            let got = out.matches('\n').count();
            assert_eq!(got, want, "{out:?} has {got} lines, not {want}");
            for l in out.lines() {
                assert!(
                    l.starts_with("*** ") || l.starts_with("!!! ") || l.starts_with('['),
                    "unmarked line {l:?}"
                );
            }
        }
    }
}

pub mod http {
    //! RequestParser: split invariance, stickiness, pipelining, head shape.

    use natter::proto::http::{HttpError, Request, RequestParser, Status, Version};
    use natter::proto::ws::{accept_key, valid_client_key};

    use super::{assert_same, chunks};

    type Parsed = Result<Status, HttpError>;

    fn fresh(buf: &[u8]) -> Parsed {
        RequestParser::new().parse(buf)
    }

    fn is_tchar(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
    }

    pub fn check(data: &[u8]) {
        let [seed, buf @ ..] = data else {
            return;
        };
        let whole = fresh(buf);
        check_result(buf, &whole);
        // The same parser fed growing prefixes, the way the shell feeds it:
        // byte by byte, then in the seed's chunks.
        let every: Vec<usize> = (0..=buf.len()).collect();
        let mut seeded = Vec::new();
        let mut at = 0;
        for c in chunks(buf, *seed) {
            at += c.len();
            seeded.push(at);
        }
        seeded.push(buf.len());
        for cuts in [&every, &seeded] {
            let mut parser = RequestParser::new();
            let mut first = None;
            for &cut in cuts.iter() {
                let got = parser.parse(&buf[..cut]);
                if got != Ok(Status::Partial) {
                    first = Some((cut, got));
                    break;
                }
            }
            let Some((cut, got)) = first else {
                // Partial on every prefix, the whole included.
                assert_same("whole and growing prefixes", &whole, &Ok(Status::Partial));
                continue;
            };
            // What the resumed parser found on a prefix is what a parser
            // from scratch finds there, and what the whole buffer gives.
            assert_same("resumed and fresh", &got, &fresh(&buf[..cut]));
            assert_same("a prefix and the whole", &got, &whole);
            if let Err(error) = &got {
                assert_eq!(parser.parse(buf), Err(error.clone()), "not sticky");
                assert_eq!(
                    parser.parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
                    Err(error.clone()),
                    "not sticky"
                );
            }
        }
        // Pipelining: after Complete, drain and go on with the same parser.
        let mut parser = RequestParser::new();
        let mut rest = buf;
        for _ in 0..64 {
            let got = parser.parse(rest);
            assert_same("pipelined and fresh", &got, &fresh(rest));
            match got {
                Ok(Status::Complete { consumed, .. }) => rest = &rest[consumed..],
                _ => break,
            }
        }
    }

    /// What any answer must look like.
    pub fn check_result(buf: &[u8], got: &Result<Status, HttpError>) {
        match got {
            Ok(Status::Partial) => {}
            Ok(Status::Complete { request, consumed }) => {
                assert!(
                    *consumed > 0 && *consumed <= buf.len(),
                    "consumed {consumed} of {}",
                    buf.len()
                );
                assert_eq!(buf[consumed - 1], b'\n', "the head does not end at a LF");
                check_request(request);
            }
            Err(error) => {
                assert!(
                    matches!(error.status(), 400 | 414 | 431),
                    "the parser gave {error:?}"
                );
                let _ = error.response();
            }
        }
    }

    pub fn check_request(r: &Request) {
        assert!(
            !r.method.is_empty() && r.method.bytes().all(is_tchar),
            "method {:?}",
            r.method
        );
        assert!(
            !r.target.is_empty() && r.target.bytes().all(|b| b.is_ascii_graphic()),
            "target {:?}",
            r.target
        );
        assert!(r.target.starts_with('/') || (r.target == "*" && r.method == "OPTIONS"));
        for (name, value) in &r.headers {
            assert!(
                !name.is_empty() && name.bytes().all(|b| is_tchar(b) && !b.is_ascii_uppercase()),
                "header name {name:?}"
            );
            // obs-text is decoded lossily, so C1 controls may appear (opaque
            // data, as RFC 9110 has it); ASCII controls but tab may not.
            assert!(
                !value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f),
                "control character in header value {value:?}"
            );
            assert_eq!(
                value.trim_matches([' ', '\t']),
                value,
                "untrimmed {value:?}"
            );
        }
        let hosts = r.headers.iter().filter(|(n, _)| n == "host").count();
        assert!(hosts <= 1 && (hosts == 1 || r.version == Version::Http10));
        assert!(r.header("transfer-encoding").is_none());
        if let Some(len) = r.header("content-length") {
            assert_eq!(len.parse::<usize>().ok(), Some(r.body_len));
        } else {
            assert_eq!(r.body_len, 0);
        }
        // The accessors the shell uses never panic.
        let path = r.path();
        assert!(r.target.starts_with(path));
        for segment in path.split('/') {
            let _ = natter::proto::http::decode_path_segment(segment);
        }
        if let Some((_, query)) = r.target.split_once('?') {
            for pair in query.split('&') {
                let key = pair.split_once('=').map_or(pair, |(k, _)| k);
                if let Some(key) = natter::proto::http::decode_query_component(key) {
                    let _ = r.query_param(&key);
                }
            }
        }
        let _ = (r.keep_alive(), r.is_head());
        let _ = r.header_has_token("connection", "upgrade");
        if let Some(key) = r.header("sec-websocket-key") {
            if valid_client_key(key) {
                assert_eq!(accept_key(key).len(), 28);
            }
        }
    }
}

pub mod ws {
    //! The frame decoder: split invariance, a reference decoder, bounds,
    //! sticky errors and silence after a close.

    use natter::proto::ws::decoder::IDLE_CAPACITY;
    use natter::proto::ws::{is_valid_close_code, Decoder, Incoming, WsError};

    use super::{assert_same, chunks};

    /// Message limits the config byte picks from.
    pub const MAX_TABLE: [usize; 8] = [0, 1, 7, 125, 126, 1000, 65536, 2 << 20];

    /// An [`Incoming`] that outlives the decoder call.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Ev {
        Text(String),
        Binary(Vec<u8>),
        Ping(Vec<u8>),
        Pong(Vec<u8>),
        Close(Option<u16>, String),
    }

    fn own(event: Incoming<'_>) -> Ev {
        match event {
            Incoming::Text(t) => Ev::Text(t.to_string()),
            Incoming::Binary(b) => Ev::Binary(b.to_vec()),
            Incoming::Ping(p) => Ev::Ping(p.to_vec()),
            Incoming::Pong(p) => Ev::Pong(p.to_vec()),
            Incoming::Close { code, reason } => Ev::Close(code, reason.to_string()),
        }
    }

    pub type Run = (Vec<Ev>, Result<(), WsError>);

    fn check_event(ev: &Ev, max: usize, binary: bool) {
        match ev {
            Ev::Text(t) => assert!(t.len() <= max, "text of {} > max {max}", t.len()),
            Ev::Binary(b) => {
                assert!(binary, "binary from a text-only decoder");
                assert!(b.len() <= max, "binary of {} > max {max}", b.len());
            }
            Ev::Ping(p) | Ev::Pong(p) => assert!(p.len() <= 125, "control payload {}", p.len()),
            Ev::Close(code, reason) => {
                assert!(code.is_none_or(is_valid_close_code), "close code {code:?}");
                assert!(code.is_some() || reason.is_empty());
                assert!(reason.len() <= 123, "close reason of {}", reason.len());
            }
        }
    }

    /// Feeds `parts` to a fresh decoder, checking after every call: events
    /// within bounds, nothing after a close, errors sticky and silent,
    /// memory within the documented limits.
    pub fn run<'a>(max: usize, binary: bool, parts: impl IntoIterator<Item = &'a [u8]>) -> Run {
        let mut dec = Decoder::new(max);
        if binary {
            dec = dec.accepting_binary();
        }
        let mut events = Vec::new();
        let mut result = Ok(());
        let mut closed = false;
        for part in parts {
            let mut got = Vec::new();
            let r = dec.decode(part, |e| got.push(own(e)));
            if let Err(error) = result {
                assert_eq!(r, Err(error), "a failed decoder changed its error");
                assert!(got.is_empty(), "a failed decoder delivered {got:?}");
            }
            if closed {
                assert_eq!(r, Ok(()), "a closed decoder failed");
                assert!(got.is_empty(), "delivered after a close: {got:?}");
            }
            for ev in got {
                assert!(!closed, "{ev:?} after a close");
                check_event(&ev, max, binary);
                closed |= matches!(ev, Ev::Close(..));
                events.push(ev);
            }
            result = r;
            assert_eq!(dec.is_closed(), closed);
            if closed || result.is_err() {
                assert_eq!(dec.allocated(), 0, "memory kept after the end");
            }
            assert!(
                dec.allocated() <= max,
                "{} allocated > max {max}",
                dec.allocated()
            );
            if dec.buffered() == 0 {
                assert!(
                    dec.allocated() <= IDLE_CAPACITY,
                    "idle decoder keeps memory"
                );
            }
            assert!(dec.buffered() <= max + 125, "buffered {}", dec.buffered());
        }
        // One more frame: the end (close or error) is final.
        let mut late = Vec::new();
        let r = dec.decode(&[0x81, 0x80, 1, 2, 3, 4], |e| late.push(own(e)));
        if closed || result.is_err() {
            assert!(late.is_empty(), "delivered after the end: {late:?}");
            assert_eq!(r, if closed { Ok(()) } else { result });
        }
        (events, result)
    }

    fn can_become_utf8(bytes: &[u8]) -> bool {
        match std::str::from_utf8(bytes) {
            Ok(_) => true,
            Err(e) => e.error_len().is_none(),
        }
    }

    /// RFC 6455 read straight from the spec over the whole input, one frame
    /// after another: the events and the close code (if it fails) that a
    /// correct decoder gives. Independent of natter's decoder.
    pub fn reference(mut input: &[u8], max: usize, binary_ok: bool) -> (Vec<Ev>, Result<(), u16>) {
        let mut events = Vec::new();
        // The message being reassembled: (binary, bytes).
        let mut message: Option<(bool, Vec<u8>)> = None;
        loop {
            let [b0, b1, ..] = *input else {
                return (events, Ok(()));
            };
            let ext = match b1 & 0x7f {
                126 => 2,
                127 => 8,
                _ => 0,
            };
            let masked = b1 & 0x80 != 0;
            let size = 2 + ext + if masked { 4 } else { 0 };
            if input.len() < size {
                return (events, Ok(()));
            }
            let len = match ext {
                2 => u64::from(u16::from_be_bytes([input[2], input[3]])),
                8 => u64::from_be_bytes(input[2..10].try_into().unwrap()),
                _ => u64::from(b1 & 0x7f),
            };
            let (fin, rsv, op) = (b0 & 0x80 != 0, (b0 >> 4) & 7, b0 & 0xf);
            let control = op & 8 != 0;
            if rsv != 0 || !matches!(op, 0 | 1 | 2 | 8 | 9 | 10) || !masked || len >> 63 != 0 {
                return (events, Err(1002));
            }
            if control && (len > 125 || !fin) {
                return (events, Err(1002));
            }
            if !control {
                if (op == 0) != message.is_some() {
                    return (events, Err(1002));
                }
                if op == 2 && !binary_ok {
                    return (events, Err(1003));
                }
                let so_far = message.as_ref().map_or(0, |(_, m)| m.len());
                if len > max.saturating_sub(so_far) as u64 {
                    return (events, Err(1009));
                }
            }
            let mask = &input[size - 4..size];
            let body = &input[size..];
            let avail = body.len().min(len as usize);
            let payload: Vec<u8> = body[..avail]
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4])
                .collect();
            let complete = avail as u64 == len;
            if control {
                if !complete {
                    return (events, Ok(()));
                }
                match op {
                    9 => events.push(Ev::Ping(payload)),
                    10 => events.push(Ev::Pong(payload)),
                    _ => {
                        let ev = match payload[..] {
                            [] => Ev::Close(None, String::new()),
                            [_] => return (events, Err(1002)),
                            [hi, lo, ..] => {
                                let code = u16::from_be_bytes([hi, lo]);
                                if !is_valid_close_code(code) {
                                    return (events, Err(1002));
                                }
                                match std::str::from_utf8(&payload[2..]) {
                                    Ok(r) => Ev::Close(Some(code), r.to_string()),
                                    Err(_) => return (events, Err(1007)),
                                }
                            }
                        };
                        events.push(ev);
                        return (events, Ok(()));
                    }
                }
            } else {
                let (is_binary, mut bytes) = message.take().unwrap_or((op == 2, Vec::new()));
                bytes.extend_from_slice(&payload);
                if !is_binary && !can_become_utf8(&bytes) {
                    return (events, Err(1007));
                }
                if !complete {
                    return (events, Ok(()));
                }
                if !fin {
                    message = Some((is_binary, bytes));
                } else if is_binary {
                    events.push(Ev::Binary(bytes));
                } else {
                    match String::from_utf8(bytes) {
                        Ok(t) => events.push(Ev::Text(t)),
                        Err(_) => return (events, Err(1007)),
                    }
                }
            }
            input = &body[avail..];
        }
    }

    pub fn check(data: &[u8]) {
        let [config, seed, stream @ ..] = data else {
            return;
        };
        let max = MAX_TABLE[usize::from(config & 7)];
        let binary = config & 8 != 0;
        let whole = run(max, binary, [stream]);
        let (events, code) = reference(stream, max, binary);
        assert_same(
            "decoder and reference",
            &(&whole.0, whole.1.map_err(|e| e.code)),
            &(&events, code),
        );
        let chunked = run(max, binary, chunks(stream, *seed));
        assert_same("whole and chunked", &whole, &chunked);
        if *seed != 0 && stream.len() <= 4096 {
            let bytewise = run(max, binary, chunks(stream, 0));
            assert_same("whole and bytewise", &whole, &bytewise);
        }
    }
}

pub mod json {
    //! The JSON request parser: no panics, error codes from the allowed
    //! set, commands that agree with the JSON and satisfy their types.

    use natter::hub::command::{Command, ModAction, Scope, Target, DEFAULT_SEARCH};
    use natter::hub::error::ErrorCode;
    use natter::hub::event::{
        Amend, AmendKind, BanInfo, Entry, Event, Hit, Message, ModEvent, ModKind, Reaction,
        Reactor, Reply, ReplyTo,
    };
    use natter::hub::names::RoomName;
    use natter::hub::MAX_HISTORY_PAGE;
    use natter::proto::json::{parse, render, Refusal};
    use serde_json::Value;

    fn room_ok(r: &RoomName) {
        let s = r.as_str();
        assert!(
            (1..=32).contains(&s.len())
                && s.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'_'
                    || b == b'-'),
            "room {s:?}"
        );
    }

    fn wants_room(obj: &serde_json::Map<String, Value>, room: &RoomName) {
        let Some(Value::String(s)) = obj.get("room") else {
            panic!("room {room:?} from {:?}", obj.get("room"));
        };
        assert_eq!(RoomName::parse(s).as_ref(), Ok(room));
    }

    pub fn check(data: &[u8]) {
        let text = String::from_utf8_lossy(data);
        let value = serde_json::from_str::<Value>(&text);
        match parse(&text) {
            Err(Refusal { error, r#ref }) => {
                use ErrorCode::*;
                assert!(
                    matches!(
                        error.code,
                        BadJson | BadRequest | UnknownType | RoomInvalid | BadImage
                    ),
                    "code {:?}",
                    error.code
                );
                match &value {
                    Err(_) => assert_eq!((error.code, &r#ref), (BadJson, &None)),
                    Ok(Value::Object(obj)) => {
                        assert_ne!(error.code, BadJson);
                        let want = match obj.get("ref") {
                            Some(Value::String(s)) => Some(s.clone()),
                            _ => None,
                        };
                        assert_eq!(r#ref, want);
                    }
                    Ok(_) => assert_eq!((error.code, &r#ref), (BadRequest, &None)),
                }
            }
            Ok(request) => {
                let Ok(Value::Object(obj)) = &value else {
                    panic!("accepted {value:?}");
                };
                let want_ref = match obj.get("ref") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(other) => panic!("accepted a ref of {other:?}"),
                };
                assert_eq!(request.r#ref, want_ref);
                let Some(Value::String(kind)) = obj.get("type") else {
                    panic!("accepted a type of {:?}", obj.get("type"));
                };
                let string = |name: &str| match obj.get(name) {
                    Some(Value::String(s)) => s.clone(),
                    other => panic!("accepted a {name} of {other:?}"),
                };
                match (kind.as_str(), &request.command) {
                    ("nick", Command::Nick(n)) => assert_eq!(n, &string("nick")),
                    ("join", Command::Join { room, .. })
                    | ("leave", Command::Leave(Some(room)))
                    | ("typing", Command::Typing(room))
                    | ("image", Command::Image { room, .. })
                    | (
                        "say",
                        Command::Say {
                            room: Some(room), ..
                        },
                    ) => {
                        room_ok(room);
                        wants_room(obj, room);
                        if let Command::Say { text, action, .. } = &request.command {
                            assert_eq!(text, &string("text"));
                            let want = obj.get("action").and_then(Value::as_bool);
                            assert_eq!(*action, want.unwrap_or(false));
                        }
                        if let Command::Image { id, .. } = &request.command {
                            assert!(id.is_empty());
                        }
                        if let Command::Say { reply_to, .. } | Command::Image { reply_to, .. } =
                            &request.command
                        {
                            let want = obj.get("reply_to").and_then(Value::as_u64);
                            assert_eq!(reply_to, &want.map(Target::Seq));
                        }
                    }
                    (
                        "edit" | "delete" | "react",
                        Command::Edit {
                            room: Some(room),
                            target,
                            ..
                        }
                        | Command::Delete {
                            room: Some(room),
                            target,
                        }
                        | Command::React {
                            room: Some(room),
                            target,
                            ..
                        },
                    ) => {
                        room_ok(room);
                        wants_room(obj, room);
                        let seq = obj.get("seq").and_then(Value::as_u64);
                        assert_eq!(Some(target), seq.map(Target::Seq).as_ref());
                        match &request.command {
                            Command::Edit { text, .. } => {
                                assert_eq!(kind, "edit");
                                assert_eq!(text, &string("text"));
                            }
                            Command::Delete { .. } => assert_eq!(kind, "delete"),
                            Command::React { emoji, .. } => {
                                assert_eq!(kind, "react");
                                assert_eq!(emoji, &string("emoji"));
                            }
                            _ => unreachable!(),
                        }
                    }
                    (
                        "search",
                        Command::Search {
                            q,
                            scope,
                            limit,
                            before,
                        },
                    ) => {
                        assert_eq!(q, &string("q"));
                        match scope {
                            Scope::Room(room) => {
                                room_ok(room);
                                wants_room(obj, room);
                            }
                            Scope::Joined => {
                                assert!(matches!(obj.get("room"), None | Some(Value::Null)));
                            }
                            Scope::Current => panic!("a JSON search of the current room"),
                        }
                        let want = obj.get("limit").and_then(Value::as_u64);
                        assert_eq!(
                            *limit,
                            want.map_or(DEFAULT_SEARCH, |n| usize::try_from(n)
                                .unwrap_or(usize::MAX))
                        );
                        assert_eq!(*before, obj.get("before").and_then(Value::as_u64));
                    }
                    ("dm", Command::Dm { to, text, .. }) => {
                        assert_eq!((to, text), (&string("to"), &string("text")));
                    }
                    ("history", Command::History { room, page }) => {
                        assert!(page.limit <= MAX_HISTORY_PAGE);
                        if let Some(room) = room {
                            room_ok(room);
                            wants_room(obj, room);
                        }
                    }
                    ("who", Command::Who(room)) => {
                        if let Some(room) = room {
                            room_ok(room);
                            wants_room(obj, room);
                        }
                    }
                    ("create", Command::Create) | ("rooms", Command::Rooms) => {}
                    ("register", Command::Register { password }) => {
                        assert_eq!(password, &string("password"));
                    }
                    ("login", Command::Login { nick, password }) => {
                        assert_eq!((nick, password), (&string("nick"), &string("password")));
                        assert!(matches!(obj.get("token"), None | Some(Value::Null)));
                    }
                    ("login", Command::LoginToken(token)) => {
                        assert_eq!(token, &string("token"));
                        assert!(matches!(obj.get("password"), None | Some(Value::Null)));
                    }
                    ("logout", Command::Logout) => {}
                    ("password", Command::Password { old, new }) => {
                        assert_eq!((old, new), (&string("old"), &string("new")));
                    }
                    (
                        "mod",
                        Command::Mod {
                            room: Some(room),
                            action,
                        },
                    ) => {
                        room_ok(room);
                        wants_room(obj, room);
                        check_mod(obj, action);
                    }
                    (kind, command) => panic!("type {kind:?} gave {command:?}"),
                }
            }
        }
        check_render(&text);
    }

    /// A `mod` request's action agrees with its fields.
    fn check_mod(obj: &serde_json::Map<String, Value>, action: &ModAction) {
        let string = |name: &str| match obj.get(name) {
            Some(Value::String(s)) => s.as_str(),
            other => panic!("accepted a {name} of {other:?}"),
        };
        let name = match action {
            ModAction::Kick { nick, reason } | ModAction::Ban { nick, reason } => {
                assert_eq!(nick, string("nick"));
                // A blank reason is none.
                let sent = obj.get("reason").and_then(Value::as_str);
                assert_eq!(reason.as_deref(), sent.filter(|r| !r.trim().is_empty()));
                if matches!(action, ModAction::Kick { .. }) {
                    "kick"
                } else {
                    "ban"
                }
            }
            ModAction::Unban { nick } => {
                assert_eq!(nick, string("nick"));
                "unban"
            }
            ModAction::Mute { nick, secs } => {
                assert_eq!(nick, string("nick"));
                assert_eq!(*secs, obj.get("secs").and_then(Value::as_u64));
                assert_ne!(*secs, Some(0));
                "mute"
            }
            ModAction::Unmute { nick } => {
                assert_eq!(nick, string("nick"));
                "unmute"
            }
            ModAction::Op { nick } => {
                assert_eq!(nick, string("nick"));
                "op"
            }
            ModAction::Deop { nick } => {
                assert_eq!(nick, string("nick"));
                "deop"
            }
            ModAction::Topic { text } => {
                assert_eq!(text, string("text"));
                "topic"
            }
            ModAction::InviteOnly { on } => {
                assert_eq!(Some(*on), obj.get("on").and_then(Value::as_bool));
                "invite_only"
            }
            ModAction::Invite { nick } => {
                assert_eq!(nick, string("nick"));
                "invite"
            }
            ModAction::Bans => "bans",
        };
        assert_eq!(string("action"), name);
    }

    /// What goes out is JSON whose strings are what went in.
    pub fn check_render(text: &str) {
        use std::rc::Rc;
        let room = RoomName::parse("lobby").unwrap();
        let message = Message {
            author: String::new(),
            reply_to: None,
            mentions: Vec::new(),
            edited_ts: None,
            deleted: false,
            reactions: Vec::new(),
            account: None,
            room: room.clone(),
            seq: 1,
            ts: 2,
            from: "alice".to_string(),
            text: text.to_string(),
            action: false,
            image: None,
        };
        let moderation = |action| {
            Rc::new(ModEvent {
                room: room.clone(),
                by: "alice".to_string(),
                action,
                ts: 3,
            })
        };
        let kick = moderation(ModKind::Kick {
            nick: "bob".to_string(),
            reason: Some(text.to_string()),
        });
        let topic = moderation(ModKind::Topic {
            text: text.to_string(),
        });
        // An empty reason is left out.
        let reason = (!text.is_empty()).then_some(text);
        let events = [
            (Event::Message(Rc::new(message)), "/text", Some(text)),
            (
                Event::Reply(
                    Reply::Error {
                        code: ErrorCode::BadJson,
                        message: text.to_string(),
                    },
                    Some(text.to_string()),
                ),
                "/message",
                Some(text),
            ),
            (Event::Mod(kick.clone()), "/reason", reason),
            (
                Event::Reply(Reply::Mod(kick), Some(text.to_string())),
                "/ref",
                Some(text),
            ),
            (Event::Mod(topic), "/text", Some(text)),
            (
                Event::Reply(
                    Reply::Bans {
                        room: room.clone(),
                        bans: vec![BanInfo {
                            nick: "bob".to_string(),
                            account: false,
                            by: "alice".to_string(),
                            reason: Some(text.to_string()),
                            ts: 4,
                        }],
                    },
                    None,
                ),
                "/bans/0/reason",
                reason,
            ),
            (
                Event::Reply(
                    Reply::Account {
                        what: natter::hub::event::AccountChange::LoggedIn,
                        account: Some("alice".to_string()),
                        nick: "alice".to_string(),
                        token: Some(text.to_string()),
                    },
                    None,
                ),
                "/token",
                Some(text),
            ),
            (
                Event::Reply(
                    Reply::Joined {
                        room: room.clone(),
                        members: vec![],
                        messages: vec![],
                        created: false,
                        last_seq: 0,
                        gap: false,
                        store_id: String::new(),
                        info: Box::new(natter::hub::event::RoomInfo {
                            topic: Some(text.to_string()),
                            ..Default::default()
                        }),
                        role: natter::hub::event::Role::Member,
                    },
                    None,
                ),
                "/topic",
                Some(text),
            ),
        ];
        for (event, field, want) in events {
            let out = render(&event).expect("rendered");
            let v: Value = serde_json::from_slice(&out).expect("render gave invalid JSON");
            assert_eq!(v.pointer(field).and_then(Value::as_str), want, "{field}");
        }
        check_render_live(text);
    }

    /// Version 2 sections 3 and 4: replies, reactions (the text as emoji
    /// and as nick), edited and deleted messages, changes as events and as
    /// answers, catch-ups and searches give JSON of the right `type` whose
    /// strings are what went in, and nothing of a deleted text.
    fn check_render_live(text: &str) {
        use std::rc::Rc;
        let room = RoomName::parse("lobby").unwrap();
        let mut m = Message::new(room.clone(), 7, 8, "alice".into(), text.to_string());
        m.author = "a:alice".to_string();
        m.reply_to = Some(ReplyTo {
            seq: 3,
            from: "bob".into(),
            text: Some(text.to_string()),
        });
        m.mentions = vec![text.to_string()];
        m.edited_ts = Some(9);
        m.reactions = vec![
            Reaction {
                emoji: text.to_string(),
                by: vec![Reactor {
                    author: "a:bob".into(),
                    nick: text.to_string(),
                }],
            },
            Reaction {
                emoji: format!("{text}2"),
                by: vec![],
            },
        ];
        let live = Rc::new(m.clone());
        m.deleted = true;
        let deleted = Rc::new(m);
        let amend = |kind| {
            Rc::new(Amend {
                room: room.clone(),
                seq: 10,
                target: 7,
                ts: 11,
                by: "alice".into(),
                author: "a:alice".into(),
                kind,
            })
        };
        let edit = amend(AmendKind::Edit {
            text: text.to_string(),
        });
        let delete = amend(AmendKind::Delete {
            of: text.to_string(),
        });
        let react = amend(AmendKind::React {
            emoji: text.to_string(),
            on: true,
        });
        let hits: Vec<Hit> = [live.clone(), deleted.clone()]
            .into_iter()
            .map(|message| Hit {
                message,
                snippet: text.to_string(),
                marks: vec![(0, text.chars().count())],
            })
            .collect();
        let r = Some(text.to_string());
        let cases: Vec<(Event, &str, Option<&str>, &str)> = vec![
            (
                Event::Message(live.clone()),
                "/reply_to/text",
                Some(text),
                "message",
            ),
            (
                Event::Message(live.clone()),
                "/mentions/0",
                Some(text),
                "message",
            ),
            (Event::Message(live.clone()), "/text", Some(text), "message"),
            (Event::Message(deleted.clone()), "/text", None, "message"),
            (Event::Amend(edit.clone()), "/text", Some(text), "edit"),
            (Event::Amend(delete.clone()), "/by", Some("alice"), "delete"),
            (Event::Amend(react.clone()), "/emoji", Some(text), "react"),
            (
                Event::Reply(Reply::Amended(edit.clone()), r.clone()),
                "/ref",
                Some(text),
                "edit",
            ),
            (
                Event::Reply(Reply::Amended(delete), r.clone()),
                "/ref",
                Some(text),
                "delete",
            ),
            (
                Event::Reply(Reply::Amended(react.clone()), r.clone()),
                "/ref",
                Some(text),
                "react",
            ),
            (
                Event::Reply(
                    Reply::Search {
                        q: text.to_string(),
                        room: Some(room.clone()),
                        results: hits.clone(),
                    },
                    r.clone(),
                ),
                "/results/0/snippet",
                Some(text),
                "search",
            ),
            (
                Event::Reply(
                    Reply::Search {
                        q: text.to_string(),
                        room: None,
                        results: hits,
                    },
                    None,
                ),
                "/q",
                Some(text),
                "search",
            ),
            (
                Event::Reply(
                    Reply::Joined {
                        room: room.clone(),
                        members: vec![],
                        messages: vec![
                            Entry::Amend(edit),
                            Entry::Message(live),
                            Entry::Amend(react),
                            Entry::Message(deleted),
                        ],
                        created: false,
                        last_seq: 11,
                        gap: false,
                        store_id: String::new(),
                        info: Box::default(),
                        role: natter::hub::event::Role::Member,
                    },
                    None,
                ),
                "/messages/0/text",
                Some(text),
                "joined",
            ),
        ];
        for (event, field, want, kind) in cases {
            let out = render(&event).expect("rendered");
            let v: Value = serde_json::from_slice(&out).expect("render gave invalid JSON");
            assert_eq!(v["type"], kind, "{v}");
            assert_eq!(v.pointer(field).and_then(Value::as_str), want, "{field}");
            // Identities never go out.
            let s = String::from_utf8_lossy(&out);
            assert!(!s.contains("a:alice") && !s.contains("a:bob"), "{s}");
            for message in v
                .get("results")
                .or(v.get("messages"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if message["deleted"] == true {
                    // Nothing of it but that it was there.
                    for key in [
                        "text",
                        "image",
                        "reply_to",
                        "mentions",
                        "reactions",
                        "account",
                    ] {
                        assert!(message.get(key).is_none(), "{key} in {message}");
                    }
                    if let Some(snippet) = message.get("snippet") {
                        assert_eq!(snippet, "");
                    }
                }
            }
            if matches!(event, Event::Message(_)) && v["deleted"] != true {
                // One emoji, the one somebody holds, with its nick.
                let reactions = v["reactions"].as_object().expect("reactions");
                assert_eq!(reactions.len(), 1, "{v}");
                assert_eq!(reactions.get(text), Some(&serde_json::json!([text])));
            }
        }
    }
}

pub mod sniff {
    //! `sniff` on growing prefixes: once it decides, it never goes back to
    //! NeedMore; and only an over-long first line can change its mind.

    use natter::proto::sniff::{on_first_line_timeout, on_silence, sniff, Sniff, MAX_REQUEST_LINE};

    /// The prefix lengths looked at: all of the first 512, around every
    /// newline and the length cap, a sample of the rest, and the whole.
    pub fn cuts(data: &[u8]) -> Vec<usize> {
        let mut cuts: Vec<usize> = (0..=data.len().min(512)).collect();
        for (i, &b) in data.iter().enumerate() {
            if b == b'\n' {
                cuts.extend([i, i + 1]);
            }
        }
        cuts.extend(MAX_REQUEST_LINE - 1..=MAX_REQUEST_LINE + 2);
        cuts.extend((0..data.len()).step_by(61));
        cuts.push(data.len());
        cuts.retain(|&c| c <= data.len());
        cuts.sort_unstable();
        cuts.dedup();
        cuts
    }

    pub fn check(data: &[u8]) {
        // (where, what, whether it was decided by a finished first line or
        // by the first byte, rather than by the length cap)
        let mut decided: Option<(usize, Sniff, bool)> = None;
        for cut in cuts(data) {
            let prefix = &data[..cut];
            let got = sniff(prefix);
            let silent = on_silence(prefix);
            let timed_out = on_first_line_timeout(prefix);
            assert_ne!(timed_out, Sniff::NeedMore, "timeout undecided on {cut}");
            if prefix.is_empty() {
                assert_eq!(
                    (got, silent, timed_out),
                    (Sniff::NeedMore, Sniff::Line, Sniff::Line)
                );
            } else {
                assert_eq!(silent, got);
                if got != Sniff::NeedMore {
                    assert_eq!(timed_out, got);
                }
            }
            assert_eq!(got == Sniff::Tls, prefix.first() == Some(&0x16));
            match decided {
                Some((at, was, _)) if got == Sniff::NeedMore => {
                    panic!("{was:?} at {at} bytes, NeedMore at {cut}")
                }
                Some((at, was, true)) => {
                    assert_eq!(got, was, "{was:?} at {at} bytes, {got:?} at {cut}");
                }
                Some((at, was, false)) => {
                    // Decided by the length cap: the first line may still
                    // end as anything; once it has ended, that is final.
                    if prefix.contains(&b'\n') {
                        decided = Some((cut, got, true));
                    } else {
                        assert_eq!(got, was, "{was:?} at {at} bytes, {got:?} at {cut}");
                    }
                }
                None if got != Sniff::NeedMore => {
                    let firm = got != Sniff::Http || prefix.contains(&b'\n');
                    decided = Some((cut, got, firm));
                }
                None => {}
            }
        }
    }
}

pub mod tls {
    //! The sniff-then-TLS path: bytes a peer sends to a TLS port, as the
    //! server takes them. The first chunk (what one read gave the sniffer)
    //! starts the session through `natter::tls::start`, the server's own
    //! entry; later chunks are read and processed as `server::stream` does.
    //! A peer alone (random first bytes, a truncated or mangled ClientHello)
    //! can make the session refuse, or answer, but never finish a handshake
    //! (that needs the server's random back), never hand plaintext up, and
    //! never make the server send anything but well-framed TLS records.

    use std::io::{ErrorKind, Read};
    use std::sync::OnceLock;

    use natter::proto::sniff::{sniff, Sniff};

    /// One self-signed identity for every input (making one costs a key).
    fn identity() -> &'static natter::tls::Identity {
        static ID: OnceLock<natter::tls::Identity> = OnceLock::new();
        ID.get_or_init(|| natter::tls::self_signed(&[]).expect("a self-signed certificate"))
    }

    /// Checks that `out` is a sequence of whole TLS records of the types a
    /// server sends (change_cipher_spec, alert, handshake, application
    /// data), at most 2^14 + 256 bytes each.
    fn well_framed(out: &[u8]) {
        let mut rest = out;
        while !rest.is_empty() {
            assert!(rest.len() >= 5, "a torn record header: {rest:?}");
            assert!((0x14..=0x17).contains(&rest[0]), "record type {}", rest[0]);
            assert_eq!(rest[1], 3, "record version {:?}", &rest[1..3]);
            let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
            assert!(len <= (1 << 14) + 256, "record of {len} bytes");
            assert!(rest.len() >= 5 + len, "a torn record body");
            rest = &rest[5 + len..];
        }
    }

    pub fn check(data: &[u8]) {
        let Some((&seed, stream)) = data.split_first() else {
            return;
        };
        if stream.first() != Some(&0x16) {
            // Not TLS: the sniffer never hands it to TLS.
            assert_ne!(sniff(stream), Sniff::Tls);
            return;
        }
        assert_eq!(sniff(stream), Sniff::Tls);
        let mut chunks = super::chunks(stream, seed).into_iter();
        let first = chunks.next().unwrap_or(&[]);
        let mut conn = match natter::tls::start(&identity().config, first) {
            Ok(conn) => conn,
            Err(refused) => {
                assert!(!refused.why.is_empty());
                if let Some(mut conn) = refused.conn {
                    let mut out = Vec::new();
                    while conn.wants_write() {
                        conn.write_tls(&mut out).expect("write to a Vec");
                    }
                    well_framed(&out);
                }
                return;
            }
        };
        let mut out = Vec::new();
        for chunk in chunks {
            let mut rest = chunk;
            let mut failed = false;
            while !rest.is_empty() && !failed {
                match conn.read_tls(&mut rest) {
                    Ok(0) => break,
                    Ok(_) => failed = conn.process_new_packets().is_err(),
                    Err(_) => failed = true,
                }
            }
            while conn.wants_write() {
                conn.write_tls(&mut out).expect("write to a Vec");
            }
            if failed {
                break;
            }
        }
        while conn.wants_write() {
            conn.write_tls(&mut out).expect("write to a Vec");
        }
        well_framed(&out);
        assert!(out.len() < 64 * 1024, "{} bytes of answer", out.len());
        assert!(
            conn.is_handshaking(),
            "a handshake finished with one side only"
        );
        let mut buf = [0u8; 64];
        match conn.reader().read(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!("{n} bytes of plaintext before any handshake"),
            Err(e) => assert!(
                matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::UnexpectedEof),
                "{e}"
            ),
        }
    }
}

pub mod resp {
    //! RESP2 replies, as a Redis connection reads them: decoded whole and
    //! in random chunks, the same values or the same error; a value decoded
    //! and encoded again decodes to itself; an error sticks.

    use natter::proto::resp::{Decoder, Limits, Value};

    fn run(chunks: Vec<&[u8]>) -> (Vec<Value>, bool) {
        let mut d = Decoder::new(Limits::default());
        let mut out = Vec::new();
        let mut failed = false;
        for c in chunks {
            if d.decode(c, |v| out.push(v)).is_err() {
                failed = true;
                assert!(d
                    .decode(b"+OK\r\n", |_| panic!("decoded after an error"))
                    .is_err());
                break;
            }
        }
        (out, failed)
    }

    pub fn check(data: &[u8]) {
        let Some((&seed, stream)) = data.split_first() else {
            return;
        };
        let (whole, whole_failed) = run(vec![stream]);
        let (chunked, chunked_failed) = run(super::chunks(stream, seed));
        // An error found whole may be found later in pieces (after values
        // the pieces completed first), never the other way round.
        if !whole_failed {
            assert!(!chunked_failed, "an error only when chunked");
            assert_eq!(whole, chunked, "chunking changed the values");
        } else {
            assert!(chunked.starts_with(&whole) || whole.starts_with(&chunked));
        }
        for v in &whole {
            let mut wire = Vec::new();
            v.encode(&mut wire);
            let (again, failed) = run(vec![&wire]);
            assert!(!failed);
            assert_eq!(again.as_slice(), std::slice::from_ref(v));
        }
    }
}
