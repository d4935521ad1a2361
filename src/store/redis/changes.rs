//! Accounts, login tokens and rooms' settings and lists in Redis
//! (PROTOCOL-2 sections 1, 2 and 6): a batch's changes go in one call of
//! `changes.lua` (all or nothing), which then tells every process on
//! `natter:events` (`state`) to read them whole again.
//!
//! - `natter:accounts`: hash, the name's key -> `{name, phc, created}`;
//! - `natter:tokens`: hash, the token's SHA-256 -> `{account, expires}`;
//! - `natter:rooms`: hash, the room -> `{owner, topic, invite_only}`;
//! - `natter:entries`: hash, `ROOM KIND SUBJECT` -> the entry.
//!
//! The rules are the stores' (`store`'s module docs): an account's first
//! `AccountPut` drops tokens left for its name, a room gets a row with the
//! defaults when an entry is put for it. Two processes registering one
//! name at once: the second batch is refused (`CONFLICT`).

use serde_json::{json, Value as Json};

use super::presence::EVENTS;
use super::script;
use crate::hub::names::{Nick, RoomName};
use crate::hub::port::{
    AccountRecord, Change, EntryKind, RoomEntry, RoomRecord, State, TokenRecord,
};
use crate::proto::resp::{encode_command, Value};

/// The script.
pub const CHANGES: &str = include_str!("changes.lua");
const ACCOUNTS: &str = "natter:accounts";
const TOKENS: &str = "natter:tokens";
const ROOMS: &str = "natter:rooms";
const ENTRIES: &str = "natter:entries";

fn key(name: &str) -> String {
    Nick::parse(name).map_or_else(|_| name.to_ascii_lowercase(), |n| n.key())
}

fn change_json(c: &Change) -> Json {
    match c {
        Change::AccountPut(a) => json!({"k": "account", "key": key(&a.name),
            "value": {"name": a.name, "phc": a.phc, "created": a.created}}),
        Change::AccountDel { name } => json!({"k": "account_del", "key": key(name)}),
        Change::TokenPut(t) => json!({"k": "token", "key": t.hash,
            "value": {"account": key(&t.account), "expires": t.expires}}),
        Change::TokenDel { hash } => json!({"k": "token_del", "key": hash}),
        Change::TokensDel { account } => json!({"k": "tokens_del", "key": key(account)}),
        Change::RoomPut { room, settings } => json!({"k": "room", "key": room.as_str(),
            "value": {"owner": settings.owner, "topic": settings.topic,
                      "invite_only": settings.invite_only}}),
        Change::EntryPut { room, entry } => json!({"k": "entry", "room": room.as_str(),
            "key": format!("{room} {} {}", entry.kind.as_str(), entry.subject),
            "value": {"kind": entry.kind.as_str(), "subject": entry.subject,
                      "nick": entry.nick, "by": entry.by, "reason": entry.reason,
                      "until": entry.until, "ts": entry.ts}}),
        Change::EntryDel {
            room,
            kind,
            subject,
        } => json!({"k": "entry_del", "key": format!("{room} {} {subject}", kind.as_str())}),
    }
}

/// Appends the `EVALSHA` that stores `changes` for process `proc`.
pub fn encode_changes(out: &mut Vec<u8>, proc: &str, changes: &[Change]) {
    let all: Vec<Json> = changes.iter().map(change_json).collect();
    let body = Json::Array(all).to_string();
    let sha = script::sha(CHANGES);
    encode_command(
        out,
        &[
            "EVALSHA", &sha, "4", ACCOUNTS, TOKENS, ROOMS, ENTRIES, &body, EVENTS, proc,
        ],
    );
}

/// Appends the four reads of everything the changes keep.
pub fn encode_read(out: &mut Vec<u8>) {
    for k in [ACCOUNTS, TOKENS, ROOMS, ENTRIES] {
        encode_command(out, &["HGETALL", k]);
    }
}

fn values(v: &Value) -> Vec<Json> {
    let Value::Array(Some(items)) = v else {
        return Vec::new();
    };
    items
        .chunks(2)
        .filter_map(|kv| match kv {
            [k, v] => {
                let mut j: Json = serde_json::from_slice(v.as_bytes()?).ok()?;
                let k = String::from_utf8_lossy(k.as_bytes()?).into_owned();
                j.as_object_mut()?.insert("_key".into(), json!(k));
                Some(j)
            }
            _ => None,
        })
        .collect()
}

/// Everything, from the four `HGETALL` replies in order; entries that do
/// not parse are left out.
pub fn parse_state(replies: &[Value]) -> State {
    let [accounts, tokens, rooms, entries] = replies else {
        return State::default();
    };
    let s = |j: &Json, k: &str| j.get(k).and_then(Json::as_str).map(str::to_string);
    let u = |j: &Json, k: &str| j.get(k).and_then(Json::as_u64);
    let mut state = State::default();
    for a in values(accounts) {
        if let (Some(name), Some(phc), Some(created)) =
            (s(&a, "name"), s(&a, "phc"), u(&a, "created"))
        {
            state.accounts.push(AccountRecord { name, phc, created });
        }
    }
    // Tokens name their account as registered (the stores' rule), and only
    // accounts that exist.
    for t in values(tokens) {
        if let (Some(hash), Some(account), Some(expires)) =
            (s(&t, "_key"), s(&t, "account"), u(&t, "expires"))
        {
            let Some(a) = state
                .accounts
                .iter()
                .find(|a| key(&a.name) == key(&account))
            else {
                continue;
            };
            state.tokens.push(TokenRecord {
                hash,
                account: a.name.clone(),
                expires,
            });
        }
    }
    let mut by_room: Vec<(RoomName, RoomRecord, Vec<RoomEntry>)> = Vec::new();
    for r in values(rooms) {
        let Some(Ok(room)) = s(&r, "_key").map(|k| RoomName::parse(&k)) else {
            continue;
        };
        by_room.push((
            room,
            RoomRecord {
                owner: s(&r, "owner"),
                topic: s(&r, "topic").unwrap_or_default(),
                invite_only: r
                    .get("invite_only")
                    .and_then(Json::as_bool)
                    .unwrap_or(false),
            },
            Vec::new(),
        ));
    }
    for e in values(entries) {
        let Some(key) = s(&e, "_key") else {
            continue;
        };
        let Some(Ok(room)) = key.split(' ').next().map(RoomName::parse) else {
            continue;
        };
        let (Some(kind), Some(subject), Some(nick), Some(by), Some(ts)) = (
            s(&e, "kind").as_deref().and_then(EntryKind::parse),
            s(&e, "subject"),
            s(&e, "nick"),
            s(&e, "by"),
            u(&e, "ts"),
        ) else {
            continue;
        };
        let entry = RoomEntry {
            kind,
            subject,
            nick,
            by,
            reason: s(&e, "reason"),
            until: u(&e, "until"),
            ts,
        };
        match by_room.iter_mut().find(|(r, _, _)| *r == room) {
            Some(r) => r.2.push(entry),
            None => by_room.push((room, RoomRecord::default(), vec![entry])),
        }
    }
    state.rooms = by_room;
    state
}
