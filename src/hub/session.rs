//! What a client's session remembers for idempotent sends: the `cid`s it
//! used in the last 10 minutes and what each one produced.
//!
//! A client that lost its connection cannot know whether its last send
//! arrived, so it sends again with the same `cid`; the hub answers a repeat
//! with the original instead of storing the message twice.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use super::error::{ErrorCode, HubError};
use super::event::{Dm, Message};

/// How long a `cid` is remembered.
pub const CID_TTL_MS: u64 = 10 * 60 * 1000;
/// Longest `cid`, in characters.
pub const MAX_CID: usize = 64;

/// What a remembered send produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sent {
    /// A room message, action or image: a repeat gets it back as its
    /// acknowledgement (`Reply::Sent`).
    Message(Rc<Message>),
    /// A direct message: a repeat gets the sender's copy back
    /// (`Reply::DmSent`).
    Dm(Rc<Dm>),
}

/// One session's `cid`s from the last 10 minutes (`CID_TTL_MS`), with what
/// each produced.
#[derive(Default, Debug)]
pub struct SentLog {
    by_cid: HashMap<String, (u64, Sent)>,
    /// Insertion order, for pruning the oldest first.
    order: VecDeque<(u64, String)>,
}

impl SentLog {
    /// What `cid` produced, if it was used in the last 10 minutes.
    pub fn get(&mut self, now_ms: u64, cid: &str) -> Option<Sent> {
        self.prune(now_ms);
        self.by_cid.get(cid).map(|(_, sent)| sent.clone())
    }

    /// Remembers that `cid` produced `sent` at `now_ms`.
    pub fn insert(&mut self, now_ms: u64, cid: String, sent: Sent) {
        self.prune(now_ms);
        self.order.push_back((now_ms, cid.clone()));
        self.by_cid.insert(cid, (now_ms, sent));
    }

    /// Forgets `cid` (its send failed, so a retry must go through).
    pub fn forget(&mut self, cid: &str) {
        self.by_cid.remove(cid);
    }

    /// `cid`s remembered, expired ones not yet forgotten included.
    pub fn len(&self) -> usize {
        self.by_cid.len()
    }

    /// Whether no `cid` is remembered.
    pub fn is_empty(&self) -> bool {
        self.by_cid.is_empty()
    }

    fn prune(&mut self, now_ms: u64) {
        while let Some((at, _)) = self.order.front() {
            if now_ms.saturating_sub(*at) < CID_TTL_MS {
                break;
            }
            if let Some((at, cid)) = self.order.pop_front() {
                // Only forget the entry if it was not re-inserted since.
                if self.by_cid.get(&cid).is_some_and(|(t, _)| *t == at) {
                    self.by_cid.remove(&cid);
                }
            }
        }
    }
}

/// A `cid` is 1-64 characters of the client's choosing.
pub fn check_cid(cid: &str) -> Result<(), HubError> {
    let n = cid.chars().count();
    if (1..=MAX_CID).contains(&n) {
        Ok(())
    } else {
        Err(HubError::new(
            ErrorCode::BadRequest,
            format!("cid must be 1-{MAX_CID} characters"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::names::RoomName;

    fn msg(seq: u64) -> Sent {
        Sent::Message(Rc::new(Message {
            author: String::new(),
            reply_to: None,
            mentions: Vec::new(),
            edited_ts: None,
            deleted: false,
            reactions: Vec::new(),
            room: RoomName::parse("lobby").unwrap(),
            seq,
            ts: 0,
            from: "a".into(),
            text: "t".into(),
            action: false,
            image: None,
            account: None,
        }))
    }

    #[test]
    fn remembers_for_ten_minutes() {
        let mut log = SentLog::default();
        log.insert(1000, "k1".into(), msg(1));
        log.insert(2000, "k2".into(), msg(2));
        assert_eq!(log.get(1000 + CID_TTL_MS - 1, "k1"), Some(msg(1)));
        assert_eq!(log.get(1000 + CID_TTL_MS, "k1"), None);
        assert_eq!(log.get(1000 + CID_TTL_MS, "k2"), Some(msg(2)));
        assert_eq!(log.len(), 1);
        assert_eq!(log.get(2000 + CID_TTL_MS, "k2"), None);
        assert!(log.is_empty());
    }

    #[test]
    fn cid_length() {
        assert!(check_cid("a").is_ok());
        assert!(check_cid(&"é".repeat(64)).is_ok());
        assert!(check_cid("").is_err());
        assert!(check_cid(&"x".repeat(65)).is_err());
    }
}
