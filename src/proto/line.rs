//! The line protocol: framing, command parsing and rendering, without I/O.
//!
//! [`LineDecoder`] turns a byte stream into lines (bytes in, lines out,
//! keeping only an unfinished line between calls); [`parse`] turns one line
//! into a hub [`Command`]; [`render`] turns a hub [`Event`] into the exact
//! lines of PROTOCOL.md "Line protocol". Nothing here touches a socket or a
//! clock: timestamps come inside the events.
//!
//! Read next: `server` (`feed_line`: who feeds the decoder and hands its
//! lines to the hub).

use std::fmt::Write as _;

use bytes::Bytes;

use crate::hub::command::{Command, ModAction, Page, Scope, Target, DEFAULT_SEARCH};
use crate::hub::error::{ErrorCode, HubError};
use crate::hub::event::{
    AccountChange, Amend, AmendKind, Dm, Entry, Event, Hit, LeaveReason, Message, ModEvent,
    ModKind, Presence, PresenceKind, Reply,
};
use crate::hub::names::RoomName;
use crate::hub::{DEFAULT_HISTORY_PAGE, MAX_HISTORY_PAGE};

/// One framed line, or the news that one was too long and was dropped.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete line without its `\n` (and without a `\r` before it).
    Line(&'a [u8]),
    /// A line over the limit was discarded up to and including its newline.
    TooLong,
}

/// Splits a byte stream into lines of at most `max` bytes (the line ending
/// not counted). Only the unfinished tail of the input is copied and kept.
#[derive(Debug)]
pub struct LineDecoder {
    max: usize,
    /// The start of a line whose newline has not arrived yet.
    partial: Vec<u8>,
    /// The current line passed `max`; drop bytes until its newline.
    discarding: bool,
}

impl LineDecoder {
    /// A decoder for lines of at most `max` bytes, the line ending not
    /// counted; a longer line comes out as [`Frame::TooLong`].
    pub fn new(max: usize) -> LineDecoder {
        LineDecoder {
            max,
            partial: Vec::new(),
            discarding: false,
        }
    }

    /// Feeds `input` and calls `on_frame` for every line it completes.
    pub fn decode(&mut self, mut input: &[u8], mut on_frame: impl FnMut(Frame<'_>)) {
        while let Some(nl) = input.iter().position(|&b| b == b'\n') {
            let (head, rest) = (&input[..nl], &input[nl + 1..]);
            input = rest;
            if self.discarding {
                self.discarding = false;
                on_frame(Frame::TooLong);
            } else if self.partial.is_empty() {
                self.emit(head, &mut on_frame);
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(head);
                self.emit(&line, &mut on_frame);
                // Keep the allocation for the next partial line only if small:
                // idle connections should not hold big buffers.
                line.clear();
                if line.capacity() <= 1024 {
                    self.partial = line;
                }
            }
        }
        if self.discarding || input.is_empty() {
            return;
        }
        // `max + 1` leaves room for the `\r` of a `\r\n` that is still coming.
        if self.partial.len() + input.len() > self.max + 1 {
            self.partial = Vec::new();
            self.discarding = true;
        } else {
            self.partial.extend_from_slice(input);
        }
    }

    /// The stream ended: an unfinished last line counts as a line (as
    /// `printf 'hi' | nc -N` means it to).
    pub fn finish(&mut self, mut on_frame: impl FnMut(Frame<'_>)) {
        if std::mem::take(&mut self.discarding) {
            on_frame(Frame::TooLong);
        } else if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.emit(&line, &mut on_frame);
        }
    }

    /// Bytes held for an unfinished line.
    pub fn buffered(&self) -> usize {
        self.partial.len()
    }

    fn emit(&self, line: &[u8], on_frame: &mut impl FnMut(Frame<'_>)) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > self.max {
            on_frame(Frame::TooLong);
        } else {
            on_frame(Frame::Line(line));
        }
    }
}

/// What one input line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    /// A command for the hub: a `/command`, or any other line as `say` in
    /// the current room (`//TEXT` says `/TEXT`).
    Command(Command),
    /// `/stats`: answered by the shell, which owns the figures.
    Stats,
    /// An empty or blank line: nothing to do.
    Nothing,
}

/// Parses one line (without its line ending) as PROTOCOL.md's table says.
pub fn parse(line: &[u8]) -> Result<Input, HubError> {
    let line = std::str::from_utf8(line).map_err(|e| {
        HubError::new(
            ErrorCode::BadUtf8,
            format!(
                "the line is not valid UTF-8 (bad byte at offset {}); it was dropped",
                e.valid_up_to()
            ),
        )
    })?;
    if line.trim().is_empty() {
        return Ok(Input::Nothing);
    }
    if let Some(literal) = line.strip_prefix("//") {
        return Ok(say(format!("/{literal}")));
    }
    let Some(cmdline) = line.strip_prefix('/') else {
        return Ok(say(line.to_string()));
    };
    let (name, rest) = match cmdline.find(char::is_whitespace) {
        Some(i) => (&cmdline[..i], cmdline[i..].trim()),
        None => (cmdline, ""),
    };
    // After the one whitespace character that ends the name, untrimmed: a
    // password is the rest of the line and may begin or end with spaces.
    let raw = after_one_space(&cmdline[name.len()..]);
    let opt_room = |rest: &str| -> Result<Option<RoomName>, HubError> {
        if rest.is_empty() {
            Ok(None)
        } else {
            RoomName::parse(rest).map(Some)
        }
    };
    let cmd = match name.to_ascii_lowercase().as_str() {
        "nick" => Command::Nick(required(rest, "/nick NAME")?.to_string()),
        "join" => Command::Join {
            room: RoomName::parse(required(rest, "/join ROOM")?)?,
            since: None,
        },
        "create" => Command::Create,
        "leave" | "part" => Command::Leave(opt_room(rest)?),
        "rooms" | "list" => Command::Rooms,
        "who" | "names" => Command::Who(opt_room(rest)?),
        "msg" => {
            let usage = "/msg NICK TEXT";
            let (to, text) = required(rest, usage)?
                .split_once(char::is_whitespace)
                .ok_or_else(|| usage_error(usage))?;
            Command::Dm {
                to: to.to_string(),
                text: text.trim_start().to_string(),
                cid: None,
            }
        }
        "me" => Command::Say {
            room: None,
            text: required(rest, "/me TEXT")?.to_string(),
            action: true,
            cid: None,
            reply_to: None,
        },
        "history" => {
            let limit = if rest.is_empty() {
                DEFAULT_HISTORY_PAGE
            } else {
                // Any whole number is fine; past 200 it means 200.
                if !rest.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(usage_error("/history [N], N a whole number"));
                }
                rest.parse::<usize>()
                    .unwrap_or(MAX_HISTORY_PAGE)
                    .min(MAX_HISTORY_PAGE)
            };
            Command::History {
                room: None,
                page: Page {
                    limit,
                    ..Page::default()
                },
            }
        }
        "help" => Command::Help,
        "stats" => return Ok(Input::Stats),
        "quit" => Command::Quit((!rest.is_empty()).then(|| rest.to_string())),
        "register" => Command::Register {
            password: required(raw, "/register PASSWORD")?.to_string(),
        },
        "login" => {
            let usage = "/login NICK PASSWORD";
            let (nick, password) = raw
                .trim_start()
                .split_once(char::is_whitespace)
                .ok_or_else(|| usage_error(usage))?;
            if nick.is_empty() || password.is_empty() {
                return Err(usage_error(usage));
            }
            Command::Login {
                nick: nick.to_string(),
                password: password.to_string(),
            }
        }
        "logout" => Command::Logout,
        "password" => {
            let mut words = rest.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some(old), Some(new), None) => Command::Password {
                    old: old.to_string(),
                    new: new.to_string(),
                },
                _ => {
                    return Err(HubError::new(
                        ErrorCode::BadRequest,
                        "usage: /password OLD NEW, two words; a password with spaces \
                         is changed from the page or with the JSON request",
                    ))
                }
            }
        }
        "kick" => {
            let (nick, reason) = nick_and_reason(rest, "/kick NICK [REASON]")?;
            moderate(ModAction::Kick { nick, reason })
        }
        "ban" => {
            let (nick, reason) = nick_and_reason(rest, "/ban NICK [REASON]")?;
            moderate(ModAction::Ban { nick, reason })
        }
        "unban" => moderate(ModAction::Unban {
            nick: one_word(rest, "/unban NICK")?,
        }),
        "mute" => {
            let usage = "/mute NICK [SECS], SECS a whole number of seconds, at least 1";
            let mut words = rest.split_whitespace();
            let (nick, secs) = match (words.next(), words.next(), words.next()) {
                (Some(nick), secs, None) => (nick, secs),
                _ => return Err(usage_error(usage)),
            };
            let secs = match secs {
                None => None,
                Some(s) => match s.parse::<u64>() {
                    // Digits only: `parse` would take a leading `+`.
                    Ok(n) if n > 0 && s.bytes().all(|b| b.is_ascii_digit()) => Some(n),
                    _ => return Err(usage_error(usage)),
                },
            };
            moderate(ModAction::Mute {
                nick: nick.to_string(),
                secs,
            })
        }
        "unmute" => moderate(ModAction::Unmute {
            nick: one_word(rest, "/unmute NICK")?,
        }),
        "op" => moderate(ModAction::Op {
            nick: one_word(rest, "/op NICK")?,
        }),
        "deop" => moderate(ModAction::Deop {
            nick: one_word(rest, "/deop NICK")?,
        }),
        "topic" => moderate(ModAction::Topic {
            text: rest.to_string(),
        }),
        "invite-only" => {
            let on = if rest.eq_ignore_ascii_case("on") {
                true
            } else if rest.eq_ignore_ascii_case("off") {
                false
            } else {
                return Err(usage_error("/invite-only on|off"));
            };
            moderate(ModAction::InviteOnly { on })
        }
        "invite" => moderate(ModAction::Invite {
            nick: one_word(rest, "/invite NICK")?,
        }),
        "bans" => moderate(ModAction::Bans),
        "edit" => Command::Edit {
            room: None,
            target: Target::Mine,
            text: required(rest, "/edit TEXT")?.to_string(),
        },
        "delete" => Command::Delete {
            room: None,
            target: if rest.is_empty() {
                Target::Mine
            } else {
                Target::LastOf(one_word(rest, "/delete [NICK]")?)
            },
        },
        "reply" => {
            let usage = "/reply NICK TEXT";
            let (nick, text) = required(rest, usage)?
                .split_once(char::is_whitespace)
                .ok_or_else(|| usage_error(usage))?;
            Command::Say {
                room: None,
                text: text.trim_start().to_string(),
                action: false,
                cid: None,
                reply_to: Some(Target::LastOf(nick.to_string())),
            }
        }
        "react" => {
            let usage = "/react NICK EMOJI";
            let mut words = rest.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some(nick), Some(emoji), None) => Command::React {
                    room: None,
                    target: Target::LastOf(nick.to_string()),
                    emoji: emoji.to_string(),
                },
                _ => return Err(usage_error(usage)),
            }
        }
        "search" => Command::Search {
            q: required(rest, "/search WORDS")?.to_string(),
            scope: Scope::Current,
            limit: DEFAULT_SEARCH,
            before: None,
        },
        _ => {
            return Err(HubError::new(
                ErrorCode::UnknownCommand,
                format!(
                    "/{} is not a command; /help lists them (start with // to say a line beginning with /)",
                    crate::hub::names::sanitize(name)
                ),
            ))
        }
    };
    Ok(Input::Command(cmd))
}

fn say(text: String) -> Input {
    Input::Command(Command::Say {
        room: None,
        text,
        action: false,
        cid: None,
        reply_to: None,
    })
}

/// A moderation action in the current room.
fn moderate(action: ModAction) -> Command {
    Command::Mod { room: None, action }
}

/// `s` without its first character if that is whitespace (the one space
/// between a command's name or word and the rest of its line).
fn after_one_space(s: &str) -> &str {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_whitespace() => chars.as_str(),
        _ => s,
    }
}

/// `NICK [REASON]`: the first word, and the rest of the line (`None` if
/// there is none).
fn nick_and_reason(rest: &str, usage: &str) -> Result<(String, Option<String>), HubError> {
    Ok(
        match required(rest, usage)?.split_once(char::is_whitespace) {
            Some((nick, reason)) => (nick.to_string(), Some(reason.trim().to_string())),
            None => (rest.to_string(), None),
        },
    )
}

/// The single word a command takes (a nick): present, and alone.
fn one_word(rest: &str, usage: &str) -> Result<String, HubError> {
    if rest.is_empty() || rest.contains(char::is_whitespace) {
        Err(usage_error(usage))
    } else {
        Ok(rest.to_string())
    }
}

fn required<'a>(rest: &'a str, usage: &str) -> Result<&'a str, HubError> {
    if rest.is_empty() {
        Err(usage_error(usage))
    } else {
        Ok(rest)
    }
}

fn usage_error(usage: &str) -> HubError {
    HubError::new(ErrorCode::BadRequest, format!("usage: {usage}"))
}

/// Renders one event as the line(s) a netcat user sees, each ending in `\n`.
/// `public_url` (like `http://chat.example.com`) makes image URLs absolute.
pub fn render(event: &Event, public_url: &str) -> Bytes {
    // Sized for the common case, a room message, so it is written without
    // reallocating.
    let hint = match event {
        Event::Message(m) => 20 + m.room.as_str().len() + m.from.len() + m.text.len(),
        _ => 128,
    };
    let mut out = String::with_capacity(hint);
    match event {
        Event::Message(m) => message(&mut out, m, public_url),
        Event::Presence(p) => presence(&mut out, p),
        Event::Dm(dm) => direct(&mut out, dm, false),
        // Typing is for WebSocket clients only; the hub never sends it here.
        Event::Typing(_) => {}
        Event::Mod(m) => moderation(&mut out, m),
        Event::Amend(a) => amend(&mut out, a),
        Event::Reply(reply, _) => self::reply(&mut out, reply, public_url),
    }
    Bytes::from(out)
}

/// `HH:MM:SS` in UTC of a millisecond Unix timestamp.
fn clock(out: &mut String, ts_ms: u64) {
    let s = (ts_ms / 1000) % 86_400;
    let _ = write!(out, "[{:02}:{:02}:{:02}] ", s / 3600, s / 60 % 60, s % 60);
}

/// Characters of the answered message a line client's reply shows.
pub const LINE_QUOTE: usize = 40;

/// A room message as it is now: `[HH:MM:SS] #room <alice> text` (`*
/// alice text` for an action, `[image] URL (mime, size) caption` for an
/// image), with `(re bob: quote…) ` before it for a reply and `(edited) `
/// right before its text once edited; a deleted one is `<alice> [deleted]`.
fn message(out: &mut String, m: &Message, public_url: &str) {
    clock(out, m.ts);
    if m.deleted {
        let _ = writeln!(out, "#{} <{}> [deleted]", m.room, m.from);
        return;
    }
    if m.action {
        let _ = write!(out, "#{} * {} ", m.room, m.from);
    } else {
        let _ = write!(out, "#{} <{}> ", m.room, m.from);
    }
    if let Some(r) = &m.reply_to {
        quote(out, &r.from, r.text.as_deref());
    }
    let edited = if m.edited_ts.is_some() {
        "(edited) "
    } else {
        ""
    };
    if let Some(img) = &m.image {
        let _ = write!(
            out,
            "[image] {}/media/{} ({}, {})",
            public_url.trim_end_matches('/'),
            img.id,
            img.mime,
            human_size(img.size)
        );
        if !m.text.is_empty() {
            let _ = write!(out, " {edited}{}", m.text);
        } else if !edited.is_empty() {
            out.push_str(" (edited)");
        }
        out.push('\n');
    } else {
        let _ = writeln!(out, "{edited}{}", m.text);
    }
}

/// `(re bob: the first 40 characters…) `: the quote cut by characters,
/// never inside one, with `…` only when cut; `(re bob) ` when the answered
/// message has no text (deleted, or an image without a caption).
fn quote(out: &mut String, from: &str, text: Option<&str>) {
    out.push_str("(re ");
    clean(out, from);
    if let Some(text) = text.filter(|t| !t.is_empty()) {
        out.push_str(": ");
        match text.char_indices().nth(LINE_QUOTE) {
            Some((cut, _)) => {
                clean(out, &text[..cut]);
                out.push('…');
            }
            None => clean(out, text),
        }
    }
    out.push_str(") ");
}

/// An edit or a delete, to the room and as its maker's answer:
/// `[HH:MM:SS] #room <alice> (edited) new text`, `[HH:MM:SS] #room ---
/// a message by alice was deleted` (` by bob` when someone else did it).
/// Reactions are not for line clients: nothing.
fn amend(out: &mut String, a: &Amend) {
    match &a.kind {
        AmendKind::Edit { text } => {
            clock(out, a.ts);
            let _ = write!(out, "#{} <", a.room);
            clean(out, &a.by);
            out.push_str("> (edited) ");
            clean(out, text);
            out.push('\n');
        }
        AmendKind::Delete { of } => {
            clock(out, a.ts);
            let _ = write!(out, "#{} --- a message by ", a.room);
            clean(out, of);
            out.push_str(" was deleted");
            // Nicks are compared without case, as everywhere.
            if !a.by.eq_ignore_ascii_case(of) {
                out.push_str(" by ");
                clean(out, &a.by);
            }
            out.push('\n');
        }
        AmendKind::React { .. } => {}
    }
}

/// The answer to one's own edit, delete or reaction: the room's line for
/// an edit or a delete; for a reaction, which line clients never see,
/// `*** reaction 👍 added in #room` (or `removed`).
fn amended(out: &mut String, a: &Amend) {
    match &a.kind {
        AmendKind::React { emoji, on } => {
            out.push_str("*** reaction ");
            clean(out, emoji);
            let _ = writeln!(
                out,
                " {} in #{}",
                if *on { "added" } else { "removed" },
                a.room
            );
        }
        AmendKind::Edit { .. } | AmendKind::Delete { .. } => amend(out, a),
    }
}

/// `*** search #room "WORDS" (N results)` (`*** search "WORDS"` across
/// every room one is in), the messages found as history lines, newest
/// first, then `*** end of search`.
fn search(out: &mut String, q: &str, room: Option<&RoomName>, results: &[Hit], public_url: &str) {
    out.push_str("*** search ");
    if let Some(room) = room {
        let _ = write!(out, "#{room} ");
    }
    out.push('"');
    clean(out, q);
    let n = results.len();
    let plural = if n == 1 { "" } else { "s" };
    let _ = writeln!(out, "\" ({n} result{plural})");
    for hit in results {
        message(out, &hit.message, public_url);
    }
    out.push_str("*** end of search\n");
}

fn presence(out: &mut String, p: &Presence) {
    if let PresenceKind::Leave(LeaveReason::Kicked | LeaveReason::Banned) = p.kind {
        // The `mod` event's line (`<-- bob was kicked by alice`) said it.
        return;
    }
    clock(out, p.ts);
    let _ = match &p.kind {
        PresenceKind::Join => writeln!(out, "#{} --> {} joined", p.room, p.nick),
        PresenceKind::Leave(reason) => {
            let _ = write!(out, "#{} <-- {} left", p.room, p.nick);
            let _ = match reason {
                LeaveReason::Leave => Ok(()),
                LeaveReason::Quit(None) => write!(out, " (quit)"),
                LeaveReason::Quit(Some(msg)) => write!(out, " (quit: {msg})"),
                LeaveReason::Disconnect => write!(out, " (disconnected)"),
                LeaveReason::Timeout => write!(out, " (timeout)"),
                LeaveReason::SlowConsumer => write!(out, " (slow consumer)"),
                LeaveReason::Shutdown => write!(out, " (server shutting down)"),
                LeaveReason::Kicked | LeaveReason::Banned => Ok(()),
            };
            writeln!(out)
        }
        PresenceKind::Nick { old } => {
            writeln!(out, "#{} --- {} is now known as {}", p.room, old, p.nick)
        }
    };
}

/// Writes `s` with every control character but tab replaced by U+FFFD, as
/// [`sanitize`](crate::hub::names::sanitize) does, without a copy: for the
/// texts of moderation (reasons, topics) and the names they quote, which
/// went into the hub as a client typed them.
fn clean(out: &mut String, s: &str) {
    out.extend(s.chars().map(|c| {
        if c.is_control() && c != '\t' {
            '\u{FFFD}'
        } else {
            c
        }
    }));
}

/// A moderation action, to its room and as the op's own answer:
/// `[HH:MM:SS] #room <-- bob was kicked by alice (REASON)` and the `---`
/// lines of PROTOCOL-2 section 2.
fn moderation(out: &mut String, m: &ModEvent) {
    clock(out, m.ts);
    let _ = write!(out, "#{} ", m.room);
    let by = |out: &mut String| clean(out, &m.by);
    let reason = |out: &mut String, reason: &Option<String>| {
        if let Some(r) = reason.as_deref().filter(|r| !r.is_empty()) {
            out.push_str(" (");
            clean(out, r);
            out.push(')');
        }
    };
    match &m.action {
        ModKind::Kick { nick, reason: why } | ModKind::Ban { nick, reason: why } => {
            out.push_str("<-- ");
            clean(out, nick);
            out.push_str(if matches!(m.action, ModKind::Kick { .. }) {
                " was kicked by "
            } else {
                " was banned by "
            });
            by(out);
            reason(out, why);
        }
        ModKind::Unban { nick }
        | ModKind::Unmute { nick }
        | ModKind::Op { nick }
        | ModKind::Deop { nick }
        | ModKind::Invite { nick } => {
            let (verb, after) = match &m.action {
                ModKind::Unban { .. } => ("unbanned", ""),
                ModKind::Unmute { .. } => ("unmuted", ""),
                ModKind::Op { .. } => ("made", " an op"),
                ModKind::Deop { .. } => ("removed", " as op"),
                _ => ("invited", ""),
            };
            out.push_str("--- ");
            by(out);
            let _ = write!(out, " {verb} ");
            clean(out, nick);
            out.push_str(after);
        }
        ModKind::Mute { nick, secs, .. } => {
            out.push_str("--- ");
            by(out);
            out.push_str(" muted ");
            clean(out, nick);
            if let Some(secs) = secs {
                let _ = write!(out, " for {secs} s");
            }
        }
        ModKind::Topic { text } => {
            out.push_str("--- ");
            by(out);
            if text.is_empty() {
                out.push_str(" cleared the topic");
            } else {
                out.push_str(" set the topic: ");
                clean(out, text);
            }
        }
        ModKind::InviteOnly { on } => {
            out.push_str("--- ");
            by(out);
            out.push_str(if *on {
                " made the room invite-only"
            } else {
                " made the room open to all"
            });
        }
    }
    out.push('\n');
}

fn direct(out: &mut String, dm: &Dm, sent: bool) {
    clock(out, dm.ts);
    if sent {
        let _ = writeln!(out, "(dm to {}) <{}> {}", dm.to, dm.from, dm.text);
    } else {
        let _ = writeln!(out, "(dm) <{}> {}", dm.from, dm.text);
    }
}

fn history_block(
    out: &mut String,
    room: &RoomName,
    messages: &[std::rc::Rc<Message>],
    public_url: &str,
) {
    let n = messages.len();
    let plural = if n == 1 { "" } else { "s" };
    let _ = writeln!(out, "*** history of #{room} ({n} message{plural})");
    for m in messages {
        message(out, m, public_url);
    }
    let _ = writeln!(out, "*** end of history");
}

fn reply(out: &mut String, reply: &Reply, public_url: &str) {
    let _ = match reply {
        Reply::Amended(a) => {
            amended(out, a);
            Ok(())
        }
        Reply::Search { q, room, results } => {
            search(out, q, room.as_ref(), results, public_url);
            Ok(())
        }
        Reply::Welcome { nick, .. } => writeln!(
            out,
            "*** welcome to natter, you are {nick}; /help lists commands"
        ),
        Reply::Nick { nick } => writeln!(out, "*** you are now known as {nick}"),
        Reply::Joined {
            room,
            members,
            messages,
            created,
            info,
            ..
        } => {
            if *created {
                let _ = writeln!(
                    out,
                    "*** created #{room}, an unlisted room: others join with /join {room}"
                );
            }
            let _ = writeln!(
                out,
                "*** you joined #{room} ({} here: {})",
                members.len(),
                members.join(", ")
            );
            if let Some(topic) = info.topic.as_deref().filter(|t| !t.is_empty()) {
                let _ = write!(out, "*** topic of #{room}: ");
                clean(out, topic);
                let _ = writeln!(out);
            }
            // The changes in a catch-up are for JSON clients: a line client
            // sees each message as it is now.
            let messages: Vec<_> = messages
                .iter()
                .filter_map(Entry::message)
                .cloned()
                .collect();
            if !messages.is_empty() {
                history_block(out, room, &messages, public_url);
            }
            Ok(())
        }
        Reply::Current { room } => writeln!(out, "*** #{room} is your current room"),
        Reply::Left { room } => writeln!(out, "*** you left #{room}"),
        Reply::Who { room, members } => {
            let _ = write!(out, "*** #{room} ({}):", members.len());
            if !members.is_empty() {
                let _ = write!(out, " {}", members.join(", "));
            }
            writeln!(out)
        }
        Reply::Rooms { rooms } if rooms.is_empty() => writeln!(out, "*** rooms: none"),
        Reply::Rooms { rooms } => {
            let _ = write!(out, "*** rooms: ");
            for (i, (name, n)) in rooms.iter().enumerate() {
                let sep = if i == 0 { "" } else { ", " };
                let _ = write!(out, "{sep}#{name} ({n})");
            }
            writeln!(out)
        }
        Reply::History { room, messages } => {
            history_block(out, room, messages, public_url);
            Ok(())
        }
        Reply::DmSent(dm, _) => {
            direct(out, dm, true);
            Ok(())
        }
        Reply::Sent(m, _) => {
            message(out, m, public_url);
            Ok(())
        }
        Reply::Help(limits) => {
            let _ = out.write_str(HELP);
            writeln!(
                out,
                "*** limits: lines up to {} bytes, messages up to {} bytes; {} messages a second \
                 (bursts of {}); {} messages of history on join",
                limits.max_line, limits.max_message, limits.rate, limits.burst, limits.history
            )
        }
        Reply::Report(text) => out.write_str(text),
        Reply::Bye => writeln!(out, "*** bye"),
        Reply::Account {
            what,
            account,
            nick,
            ..
        } => {
            // `account` is `None` only after a logout; were it missing
            // otherwise, the nick (a logged-in nick is its account's name)
            // stands in.
            let name = account.as_deref().unwrap_or(nick);
            let _ = match what {
                AccountChange::Registered => write!(
                    out,
                    "*** account {name} registered; you are logged in as {name}"
                ),
                AccountChange::LoggedIn => write!(out, "*** you are logged in as {name}"),
                AccountChange::LoggedOut => {
                    write!(out, "*** you are logged out; you are now {nick}")
                }
                AccountChange::PasswordChanged => write!(out, "*** password changed"),
            };
            writeln!(out)
        }
        Reply::Mod(m) => {
            moderation(out, m);
            Ok(())
        }
        Reply::Bans { room, bans } if bans.is_empty() => writeln!(out, "*** bans of #{room}: none"),
        Reply::Bans { room, bans } => {
            let _ = writeln!(out, "*** bans of #{room}:");
            for ban in bans {
                let _ = write!(out, "***   ");
                clean(out, &ban.nick);
                if !ban.account {
                    let _ = write!(out, " (guest)");
                }
                let _ = write!(out, " (by ");
                clean(out, &ban.by);
                if let Some(reason) = ban.reason.as_deref().filter(|r| !r.is_empty()) {
                    let _ = write!(out, ": ");
                    clean(out, reason);
                }
                let _ = writeln!(out, ")");
            }
            Ok(())
        }
        // Messages may quote client input: never let a control byte through.
        Reply::Error { code, message } => {
            writeln!(out, "!!! {code}: {}", crate::hub::names::sanitize(message))
        }
    };
}

const HELP: &str = "\
*** commands:
***   TEXT              say TEXT in your current room (//TEXT says /TEXT)
***   /nick NAME        change your nick
***   /join ROOM        join ROOM (made if absent) and make it current
***   /create           make an unlisted room with a fresh code and join it
***   /leave [ROOM]     leave ROOM or the current room (also /part)
***   /rooms            list the rooms and their member counts (also /list)
***   /who [ROOM]       list the members of ROOM or the current room (also /names)
***   /msg NICK TEXT    send NICK a direct message
***   /me TEXT          act in the current room
***   /history [N]      the last N messages of the current room (default 20, at most 200)
***   /stats            the server's own figures
***   /help             this list
***   /quit [REASON]    say goodbye and close
*** accounts:
***   /register PASSWORD     register your nick as an account and log in
***   /login NICK PASSWORD   log in to the account NICK (you become NICK)
***   /logout                log out; you get a fresh guest nick
***   /password OLD NEW      change your password (one with spaces: use the page)
*** moderation, in the current room (owners and ops):
***   /kick NICK [REASON]    make NICK leave the room
***   /ban NICK [REASON]     kick NICK and keep them out
***   /unban NICK            let NICK back in
***   /mute NICK [SECS]      keep NICK quiet, for SECS seconds or until /unmute
***   /unmute NICK           let NICK speak again
***   /op NICK               make the account NICK an op (owner only)
***   /deop NICK             NICK is an op no more (owner only)
***   /topic [TEXT]          set the room's topic; without TEXT, clear it
***   /invite-only on|off    only ops and invited nicks may join, or anyone
***   /invite NICK           let NICK join while the room is invite-only
***   /bans                  list the room's bans
*** messages, in the current room:
***   /reply NICK TEXT       answer NICK's last message
***   /edit TEXT             change your last message (within the edit window)
***   /delete [NICK]         delete your last message, or NICK's (ops)
***   /react NICK EMOJI      react to NICK's last message (again: take it back)
***   /search WORDS          find messages: all WORDS, \"a phrase\", from:NICK
";

/// The loop's own figures, filled in by the shell for `/stats`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Open line (netcat) connections.
    pub line: usize,
    /// Open HTTP connections (WebSockets not counted).
    pub http: usize,
    /// Open WebSocket connections.
    pub ws: usize,
    /// Connections still being sniffed (no protocol chosen yet).
    pub pending: usize,
    /// `poll` wake-ups since the server started.
    pub loop_iterations: u64,
    /// Readiness events `poll` reported since the server started.
    pub poll_events: u64,
    /// Output queued to all connections and not yet written, in bytes.
    pub bytes_queued: usize,
    /// Room messages accepted since the server started.
    pub messages: u64,
    /// Events queued to a recipient since the server started, one per
    /// recipient.
    pub deliveries: u64,
}

impl Stats {
    /// Open connections of every kind, undecided ones included.
    pub fn connections(&self) -> usize {
        self.line + self.http + self.ws + self.pending
    }

    /// Mean readiness events per `poll` wake-up.
    pub fn events_per_wakeup(&self) -> f64 {
        if self.loop_iterations == 0 {
            0.0
        } else {
            self.poll_events as f64 / self.loop_iterations as f64
        }
    }
}

/// The `/stats` report: one `*** stats:` line.
pub fn render_stats(s: &Stats) -> String {
    format!(
        "*** stats: {} connections (line {}, http {}, ws {}, undecided {}), {} loop iterations, \
         {:.2} events per wake-up, {} bytes queued, {} messages, {} deliveries\n",
        s.connections(),
        s.line,
        s.http,
        s.ws,
        s.pending,
        s.loop_iterations,
        s.events_per_wakeup(),
        s.bytes_queued,
        s.messages,
        s.deliveries
    )
}

/// `512 B`, `34 KiB`, `1.5 MiB`: a size for people.
fn human_size(n: usize) -> String {
    const KIB: usize = 1024;
    if n < KIB {
        format!("{n} B")
    } else if n < KIB * KIB {
        format!("{} KiB", (n + KIB / 2) / KIB)
    } else {
        format!("{:.1} MiB", n as f64 / (KIB * KIB) as f64)
    }
}

#[cfg(test)]
mod tests;
