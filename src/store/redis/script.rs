//! The atomic publish: `publish.lua`, its commands and its replies.
//!
//! The script is loaded once per connection (`SCRIPT LOAD`) and called by
//! its SHA-1 (`EVALSHA`); a Redis that has forgotten it (a restart, `SCRIPT
//! FLUSH`) answers `NOSCRIPT`, and the caller loads it again and repeats.

use bytes::Bytes;
use sha1::{Digest, Sha1};

use crate::proto::resp::{encode_command, Value};

/// The script's source.
pub const PUBLISH: &str = include_str!("publish.lua");

/// The SHA-1 of [`PUBLISH`] in hex, as `SCRIPT LOAD` answers and `EVALSHA`
/// takes.
pub fn publish_sha() -> String {
    sha(PUBLISH)
}

/// The SHA-1 of a script's source in hex, as `SCRIPT LOAD` answers.
pub fn sha(source: &str) -> String {
    let digest = Sha1::digest(source.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Appends `SCRIPT LOAD` of `source` to `out`.
pub fn encode_load_source(out: &mut Vec<u8>, source: &str) {
    encode_command(out, &[&b"SCRIPT"[..], b"LOAD", source.as_bytes()]);
}

/// A room's keys: its seq counter and its stream. The room's name is a
/// hash tag (`{...}`), so both land on one node of a Redis Cluster.
pub fn room_keys(room: &str) -> (String, String) {
    (
        format!("natter:{{{room}}}:seq"),
        format!("natter:{{{room}}}:log"),
    )
}

/// One entry to publish.
#[derive(Clone, Debug)]
pub struct Entry<'a> {
    /// The room's name.
    pub room: &'a str,
    /// The entry as stored and published.
    pub payload: &'a [u8],
    /// The key that remembers the entry's `cid`, if it has one.
    pub cid_key: Option<&'a str>,
    /// Entries the room's stream keeps (about: `MAXLEN ~`).
    pub keep: usize,
    /// The channel the other processes listen on.
    pub channel: &'a str,
    /// Seconds a `cid` is remembered.
    pub cid_ttl: u64,
}

/// Appends `SCRIPT LOAD` of the publish script to `out`.
pub fn encode_load(out: &mut Vec<u8>) {
    encode_command(out, &[&b"SCRIPT"[..], b"LOAD", PUBLISH.as_bytes()]);
}

/// Appends the `EVALSHA` that publishes `entry` to `out`.
pub fn encode_publish(out: &mut Vec<u8>, sha: &str, entry: &Entry<'_>) {
    let (seq, log) = room_keys(entry.room);
    let keep = entry.keep.to_string();
    let ttl = entry.cid_ttl.to_string();
    let mut args: Vec<&[u8]> = vec![b"EVALSHA", sha.as_bytes()];
    let nkeys = if entry.cid_key.is_some() { "3" } else { "2" };
    args.push(nkeys.as_bytes());
    args.push(seq.as_bytes());
    args.push(log.as_bytes());
    if let Some(k) = entry.cid_key {
        args.push(k.as_bytes());
    }
    args.extend([
        entry.payload,
        keep.as_bytes(),
        entry.channel.as_bytes(),
        ttl.as_bytes(),
        entry.room.as_bytes(),
    ]);
    encode_command(out, &args);
}

/// What the script did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Published {
    /// A new entry, with the room's next seq.
    New(u64),
    /// The `cid` was seen: the seq it was given then, and the entry as
    /// stored then if the stream still keeps it (nothing was stored or
    /// published now).
    Repeat(u64, Option<Bytes>),
}

/// Reads the script's reply. `Err` carries Redis's error, or says the
/// reply was not the script's.
pub fn parse_publish(reply: &Value) -> Result<Published, String> {
    match reply {
        Value::Array(Some(items)) => match items.as_slice() {
            [Value::Int(1), Value::Int(seq)] if *seq > 0 => Ok(Published::New(*seq as u64)),
            [Value::Int(0), Value::Int(seq), entry] if *seq > 0 => {
                let entry = match entry {
                    Value::Bulk(Some(b)) => Some(b.clone()),
                    _ => None, // Lua's false: trimmed from the stream
                };
                Ok(Published::Repeat(*seq as u64, entry))
            }
            _ => Err(format!("unexpected reply to the publish script: {reply:?}")),
        },
        Value::Error(e) => Err(String::from_utf8_lossy(e).into_owned()),
        other => Err(format!("unexpected reply to the publish script: {other:?}")),
    }
}

/// One entry another process published, as the subscriber connection
/// receives it: `["message", CHANNEL, "SEQ ROOM PAYLOAD"]` (a room's
/// name has no spaces).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushed {
    /// The channel it came on.
    pub channel: Bytes,
    /// The seq the script gave it.
    pub seq: u64,
    /// The room it is in, as published (the caller checks the name).
    pub room: Bytes,
    /// The entry, as stored.
    pub payload: Bytes,
}

/// Reads a push of the subscriber connection: `Some` for a published
/// entry, `None` for anything else (the confirmation of a `SUBSCRIBE`, a
/// `PONG`), which the caller handles or ignores.
pub fn parse_push(value: &Value) -> Option<Pushed> {
    let Value::Array(Some(items)) = value else {
        return None;
    };
    let [kind, channel, body] = items.as_slice() else {
        return None;
    };
    if kind.as_bytes()? != b"message" {
        return None;
    }
    let body = match body {
        Value::Bulk(Some(b)) => b,
        _ => return None,
    };
    let space = body.iter().position(|&b| b == b' ')?;
    let seq = std::str::from_utf8(&body[..space]).ok()?.parse().ok()?;
    let rest = body.slice(space + 1..);
    let space = rest.iter().position(|&b| b == b' ')?;
    Some(Pushed {
        channel: match channel {
            Value::Bulk(Some(c)) => c.clone(),
            _ => return None,
        },
        seq,
        room: rest.slice(..space),
        payload: rest.slice(space + 1..),
    })
}

/// Whether Redis does not know the script (load it and send again).
pub fn is_noscript(reply: &Value) -> bool {
    matches!(reply, Value::Error(e) if e.starts_with(b"NOSCRIPT"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::resp::{Decoder, Limits};

    #[test]
    fn the_sha_is_the_scripts() {
        let sha = publish_sha();
        assert_eq!(sha.len(), 40);
        assert!(sha.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(sha, format!("{:x}", Sha1::digest(b"")));
    }

    #[test]
    fn evalsha_names_its_keys_then_its_arguments() {
        let mut out = Vec::new();
        let entry = Entry {
            room: "lobby",
            payload: b"{\"text\":\"hi\"}",
            cid_key: Some("natter:cid:{abc}:c1"),
            keep: 10_000,
            channel: "natter:events",
            cid_ttl: 3600,
        };
        encode_publish(&mut out, "f00", &entry);
        let mut got = Vec::new();
        Decoder::new(Limits::default())
            .decode(&out, |v| got.push(v))
            .unwrap();
        let words: Vec<Vec<u8>> = match &got[0] {
            Value::Array(Some(items)) => items
                .iter()
                .map(|v| v.as_bytes().unwrap().to_vec())
                .collect(),
            other => panic!("{other:?}"),
        };
        let words: Vec<&[u8]> = words.iter().map(|w| w.as_slice()).collect();
        assert_eq!(
            words,
            [
                &b"EVALSHA"[..],
                b"f00",
                b"3",
                b"natter:{lobby}:seq",
                b"natter:{lobby}:log",
                b"natter:cid:{abc}:c1",
                b"{\"text\":\"hi\"}",
                b"10000",
                b"natter:events",
                b"3600",
                b"lobby"
            ]
        );
        let mut out = Vec::new();
        encode_publish(
            &mut out,
            "f00",
            &Entry {
                cid_key: None,
                ..entry
            },
        );
        assert!(
            out.windows(5).any(|w| w == b"$1\r\n2"),
            "two keys without a cid"
        );
    }

    #[test]
    fn pushes_carry_the_seq_and_the_entry() {
        let b = |s: &[u8]| Value::Bulk(Some(Bytes::copy_from_slice(s)));
        let push = Value::Array(Some(vec![
            b(b"message"),
            b(b"natter:events"),
            b(b"42 lobby {\"t\":\"a b\"}"),
        ]));
        assert_eq!(
            parse_push(&push),
            Some(Pushed {
                channel: Bytes::from_static(b"natter:events"),
                seq: 42,
                room: Bytes::from_static(b"lobby"),
                payload: Bytes::from_static(b"{\"t\":\"a b\"}"),
            })
        );
        let ack = Value::Array(Some(vec![
            b(b"subscribe"),
            b(b"natter:events"),
            Value::Int(1),
        ]));
        assert_eq!(parse_push(&ack), None);
        for bad in [&b"x r {}"[..], b"{}", b"-1 r {}", b"1 {}", b""] {
            let push = Value::Array(Some(vec![b(b"message"), b(b"c"), b(bad)]));
            assert_eq!(parse_push(&push), None, "{bad:?}");
        }
    }

    #[test]
    fn replies_are_read_strictly() {
        let arr = |a: i64, b: i64| Value::Array(Some(vec![Value::Int(a), Value::Int(b)]));
        assert_eq!(parse_publish(&arr(1, 7)), Ok(Published::New(7)));
        let repeat = |e: Value| Value::Array(Some(vec![Value::Int(0), Value::Int(3), e]));
        let entry = Bytes::from_static(b"{}");
        assert_eq!(
            parse_publish(&repeat(Value::Bulk(Some(entry.clone())))),
            Ok(Published::Repeat(3, Some(entry)))
        );
        // Lua's false comes as a nil: the stream no longer has it.
        assert_eq!(
            parse_publish(&repeat(Value::Bulk(None))),
            Ok(Published::Repeat(3, None))
        );
        assert!(parse_publish(&arr(0, 3)).is_err());
        assert!(parse_publish(&arr(1, 0)).is_err());
        assert!(parse_publish(&arr(2, 1)).is_err());
        assert!(parse_publish(&Value::Int(1)).is_err());
        let noscript = Value::Error(Bytes::from_static(b"NOSCRIPT No matching script."));
        assert!(is_noscript(&noscript));
        assert!(parse_publish(&noscript)
            .unwrap_err()
            .starts_with("NOSCRIPT"));
        assert!(!is_noscript(&Value::Error(Bytes::from_static(
            b"ERR other"
        ))));
    }
}
