//! A room entry as Redis keeps it: one JSON object, the same bytes in the
//! room's stream (field `e` of entry `SEQ-0`) and on the channel the other
//! processes listen on. The room and the `seq` are not in it: the stream's
//! key and the entry's id say them.
//!
//! Besides the message's own fields it carries `o`, its origin: the process
//! that published it and the number that process gave the request
//! (`PROC:N`), so the process whose client sent it tells that client, and
//! only that one, that it was sent.

use std::rc::Rc;

use serde_json::{json, Map, Value};

use crate::hub::event::{Amend, AmendKind, Entry, ImageRef, Message, Reaction, Reactor, ReplyTo};
use crate::hub::image::known_mime;
use crate::hub::names::RoomName;

/// Encodes `m` (its room and `seq` left out) with its origin.
pub fn encode(m: &Message, origin: &str) -> Vec<u8> {
    let mut o = Map::new();
    o.insert("k".into(), json!("m"));
    o.insert("ts".into(), json!(m.ts));
    o.insert("from".into(), json!(m.from));
    o.insert("text".into(), json!(m.text));
    o.insert("author".into(), json!(m.author));
    o.insert("o".into(), json!(origin));
    if m.action {
        o.insert("action".into(), json!(true));
    }
    if let Some(i) = &m.image {
        o.insert(
            "image".into(),
            json!({"id": i.id, "mime": i.mime, "size": i.size}),
        );
    }
    if let Some(a) = &m.account {
        o.insert("account".into(), json!(a));
    }
    if let Some(r) = &m.reply_to {
        o.insert(
            "reply_to".into(),
            json!({"seq": r.seq, "from": r.from, "text": r.text}),
        );
    }
    if !m.mentions.is_empty() {
        o.insert("mentions".into(), json!(m.mentions));
    }
    serde_json::to_vec(&Value::Object(o)).unwrap_or_default()
}

/// A decoded message: the message and where it came from.
#[derive(Debug)]
pub struct Decoded {
    /// The message, with its room and `seq`.
    pub message: Rc<Message>,
    /// `PROC:N`: who published it.
    pub origin: String,
}

/// A decoded entry of either kind, and where it came from.
#[derive(Debug)]
pub struct DecodedEntry {
    /// A message, or an edit, delete or reaction.
    pub entry: Entry,
    /// `PROC:N`: who published it.
    pub origin: String,
}

/// Decodes any entry of `room` stored under `seq`: a message (`k` `m`,
/// as it was sent or as it is now, with its edits, delete and reactions),
/// or a change (`k` `a`, written by `amend.lua`).
pub fn decode_entry(room: &RoomName, seq: u64, payload: &[u8]) -> Result<DecodedEntry, String> {
    let v: Value = serde_json::from_slice(payload).map_err(|e| format!("not JSON: {e}"))?;
    let o = v.as_object().ok_or("not an object")?;
    if o.get("k").and_then(Value::as_str) != Some("a") {
        let d = decode(room, seq, payload)?;
        return Ok(DecodedEntry {
            entry: Entry::Message(d.message),
            origin: d.origin,
        });
    }
    let s = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
    let kind = match s("kind").as_deref() {
        Some("edit") => AmendKind::Edit {
            text: s("text").ok_or("edit: no text")?,
        },
        Some("delete") => AmendKind::Delete {
            of: s("of").unwrap_or_default(),
        },
        Some("react") => AmendKind::React {
            emoji: s("emoji").ok_or("react: no emoji")?,
            on: o.get("on").and_then(Value::as_bool).unwrap_or(false),
        },
        _ => return Err("a change of no known kind".into()),
    };
    let amend = Amend {
        room: room.clone(),
        seq,
        target: o.get("target").and_then(Value::as_u64).ok_or("no target")?,
        ts: o.get("ts").and_then(Value::as_u64).ok_or("no ts")?,
        by: s("by").unwrap_or_default(),
        author: s("author").unwrap_or_default(),
        kind,
    };
    Ok(DecodedEntry {
        entry: Entry::Amend(Rc::new(amend)),
        origin: s("o").unwrap_or_default(),
    })
}

/// Decodes an entry of `room` stored under `seq`. An entry natter did not
/// write (or a later version's kind) is an error naming what is wrong.
pub fn decode(room: &RoomName, seq: u64, payload: &[u8]) -> Result<Decoded, String> {
    let v: Value = serde_json::from_slice(payload).map_err(|e| format!("not JSON: {e}"))?;
    let o = v.as_object().ok_or("not an object")?;
    if o.get("k").and_then(Value::as_str) != Some("m") {
        return Err("not a message entry".into());
    }
    let s = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
    let ts = o.get("ts").and_then(Value::as_u64).ok_or("no ts")?;
    let from = s("from").ok_or("no from")?;
    let text = s("text").ok_or("no text")?;
    let mut m = Message::new(room.clone(), seq, ts, from, text);
    m.author = s("author").unwrap_or_default();
    m.action = o.get("action").and_then(Value::as_bool).unwrap_or(false);
    m.account = s("account");
    if let Some(i) = o.get("image").filter(|i| i.is_object()) {
        let id = i.get("id").and_then(Value::as_str).ok_or("image: no id")?;
        let mime = i
            .get("mime")
            .and_then(Value::as_str)
            .and_then(known_mime)
            .ok_or("image: unknown type")?;
        let size = i
            .get("size")
            .and_then(Value::as_u64)
            .ok_or("image: no size")?;
        m.image = Some(ImageRef {
            id: id.to_string(),
            mime,
            size: usize::try_from(size).map_err(|_| "image: size")?,
        });
    }
    if let Some(r) = o.get("reply_to").filter(|r| r.is_object()) {
        m.reply_to = Some(ReplyTo {
            seq: r
                .get("seq")
                .and_then(Value::as_u64)
                .ok_or("reply_to: no seq")?,
            from: r
                .get("from")
                .and_then(Value::as_str)
                .ok_or("reply_to: no from")?
                .to_string(),
            text: r.get("text").and_then(Value::as_str).map(str::to_string),
        });
    }
    if let Some(ms) = o.get("mentions").and_then(Value::as_array) {
        m.mentions = ms
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
    }
    // As it is now (`amend.lua` keeps it so): Lua writes an empty list as
    // `{}`, and leaves out what is gone.
    m.edited_ts = o.get("edited_ts").and_then(Value::as_u64);
    m.deleted = o.get("deleted").and_then(Value::as_bool).unwrap_or(false);
    if let Some(rs) = o.get("reactions").and_then(Value::as_array) {
        m.reactions = rs
            .iter()
            .filter_map(|r| {
                let emoji = r.get("emoji")?.as_str()?.to_string();
                let by: Vec<Reactor> = r
                    .get("by")?
                    .as_array()?
                    .iter()
                    .filter_map(|p| {
                        Some(Reactor {
                            author: p.get("author")?.as_str()?.to_string(),
                            nick: p.get("nick")?.as_str()?.to_string(),
                        })
                    })
                    .collect();
                (!by.is_empty()).then_some(Reaction { emoji, by })
            })
            .collect();
    }
    if m.deleted {
        m.text.clear();
        m.image = None;
    }
    Ok(Decoded {
        message: Rc::new(m),
        origin: s("o").unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room() -> RoomName {
        RoomName::parse("lobby").unwrap()
    }

    #[test]
    fn every_field_survives_the_trip() {
        let mut m = Message::new(
            room(),
            7,
            1_700_000_000_123,
            "alice".into(),
            "hé \"x\"".into(),
        );
        m.author = "a:alice".into();
        m.action = true;
        m.account = Some("alice".into());
        m.image = Some(ImageRef {
            id: "ab12".into(),
            mime: "image/png",
            size: 4096,
        });
        m.reply_to = Some(ReplyTo {
            seq: 3,
            from: "bob".into(),
            text: Some("hi".into()),
        });
        m.mentions = vec!["bob".into(), "Carol".into()];
        let bytes = encode(&m, "p1:42");
        let d = decode(&room(), 7, &bytes).unwrap();
        assert_eq!(*d.message, m);
        assert_eq!(d.origin, "p1:42");
    }

    #[test]
    fn a_plain_message_is_small_and_round_trips() {
        let m = Message::new(room(), 1, 5, "bob".into(), "hello".into());
        let bytes = encode(&m, "p:1");
        assert!(bytes.len() < 80, "{}", String::from_utf8_lossy(&bytes));
        assert_eq!(*decode(&room(), 1, &bytes).unwrap().message, m);
    }

    #[test]
    fn what_natter_did_not_write_is_refused_with_a_reason() {
        for (bad, why) in [
            (&b"nope"[..], "not JSON"),
            (b"[1]", "not an object"),
            (b"{\"k\":\"x\"}", "not a message"),
            (b"{\"k\":\"m\",\"from\":\"a\",\"text\":\"b\"}", "no ts"),
            (
                b"{\"k\":\"m\",\"ts\":1,\"from\":\"a\",\"text\":\"b\",\"image\":{\"id\":\"x\",\"mime\":\"text/html\",\"size\":1}}",
                "image: unknown type",
            ),
        ] {
            let e = decode(&room(), 1, bad).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }
}
