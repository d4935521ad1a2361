//! Random churn: clients connect, join, leave, talk, change nicks, vanish,
//! resume (on a new connection, sometimes while the old one is still
//! open), log in and out, get kicked, edit, delete, react and reply, and
//! leave, at random, with the store answering at once or a turn late.
//! After every step the hub's two views of membership must agree (each
//! client's list of rooms, and each room's list of members), and no seq of
//! a room is stored twice.

use super::*;
use crate::hub::command::{ModAction, Target};
use crate::testrng::Rng;

/// The hub's membership invariant, with the step that broke it.
#[track_caller]
fn check_membership(hub: &Hub, step: &str) {
    for (id, c) in &hub.clients {
        for r in &c.rooms {
            let member = hub
                .rooms
                .get(r)
                .is_some_and(|room| room.members.contains(*id));
            assert!(
                member,
                "after {step}: {id:?} ({}) lists #{r} but is not among its members \
                 (room in memory: {})",
                c.nick,
                hub.rooms.contains_key(r)
            );
        }
    }
    for (name, room) in &hub.rooms {
        assert!(
            !room.members.is_empty(),
            "after {step}: #{name} is empty but kept"
        );
        for id in room.members.snapshot().iter() {
            let listed = hub.clients.get(id).is_some_and(|c| c.rooms.contains(name));
            assert!(
                listed,
                "after {step}: #{name} has member {id:?} that does not list it"
            );
        }
    }
}

/// Each room's stored seqs, messages and changes together, never repeat.
#[track_caller]
fn check_seqs(t: &Chat, step: &str) {
    for (r, messages) in &t.store.rooms {
        let mut seqs: Vec<u64> = messages.iter().map(|m| m.seq).collect();
        seqs.extend(t.store.amends.get(r).into_iter().flatten().map(|a| a.seq));
        let n = seqs.len();
        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(seqs.len(), n, "after {step}: a seq of #{r} stored twice");
    }
}

/// One slot: a person who may be connected, held or gone.
#[derive(Default)]
struct Slot {
    id: Option<ClientId>,
    session: Option<String>,
    held: bool,
}

fn churn(seed: u64, late: bool) {
    let mut rng = Rng::new(seed);
    // A small history allowance, so that replays are sometimes refused
    // (a join then replays nothing and says `gap`).
    let mut config = config(5);
    config.history_per_turn = 2_000;
    let mut t = Chat::with_config(config);
    if late {
        t.store.answers = Answers::NextTurn;
    }
    let rooms = ["a", "b", "c", "d"];
    let mut slots: Vec<Slot> = (0..8).map(|_| Slot::default()).collect();
    let mut now = at(9, 0, 0);
    let mut registered = false;
    for step in 0..3000 {
        now.ms += rng.below(400) as u64;
        let s = rng.below(slots.len());
        let op = rng.below(100);
        let what;
        let slot = &slots[s];
        let connect = slot.id.is_none() || (slot.held && op < 50) || (!slot.held && op <= 2);
        // A held session's connection is gone: it can only come back or
        // run out.
        let op = if slot.held && !connect { 99 } else { op };
        match (slots[s].id, op) {
            _ if connect => {
                // (Re)connect: resume the session if there is one.
                let resume = slots[s].session.clone().filter(|_| rng.below(4) != 0);
                let id = ClientId(t.next_id);
                t.next_id += 1;
                t.now = now;
                let resumed = resume
                    .as_deref()
                    .is_some_and(|tok| t.hub.resume(now, id, Peer::loopback(), tok));
                if !resumed {
                    let session = Some(format!("s{}", id.0));
                    let hello = Hello::new(ClientKind::Ws, None, session.clone());
                    t.hub.connect(now, id, hello);
                    slots[s].session = session;
                }
                t.persist();
                what = format!("slot {s} connects as {id:?} (resumed {resumed})");
                slots[s].id = Some(id);
                slots[s].held = false;
            }
            (None, _) => continue,
            (Some(id), 3..=30) => {
                let r = rooms[rng.below(rooms.len())];
                let since = (rng.below(2) == 0).then(|| rng.below(20) as u64);
                let cmd = Command::Join {
                    room: room(r),
                    since,
                };
                t.cmd(now, id, cmd);
                what = format!("{id:?} joins #{r}");
            }
            (Some(id), 31..=40) => {
                let r = rooms[rng.below(rooms.len())];
                t.cmd(now, id, leave(r));
                what = format!("{id:?} leaves #{r}");
            }
            (Some(id), 41..=62) => {
                let r = rooms[rng.below(rooms.len())];
                t.cmd(now, id, say_in(r, "hello"));
                what = format!("{id:?} says in #{r}");
            }
            (Some(id), 63..=70) => {
                // A change to a message that may or may not exist, be
                // this client's, or be deleted already.
                let r = rooms[rng.below(rooms.len())];
                let target = match rng.below(4) {
                    0 => Target::Mine,
                    1 => Target::LastOf(format!("n{}x0", rng.below(slots.len()))),
                    _ => Target::Seq(rng.below(30) as u64),
                };
                let room = Some(room(r));
                let cmd = match rng.below(4) {
                    0 => Command::Edit {
                        room,
                        target,
                        text: "edited".into(),
                    },
                    1 => Command::Delete { room, target },
                    2 => Command::React {
                        room,
                        target,
                        emoji: ["👍", "🎉"][rng.below(2)].into(),
                    },
                    _ => Command::Say {
                        room,
                        text: "a reply".into(),
                        action: false,
                        cid: None,
                        reply_to: Some(target),
                    },
                };
                what = format!("{id:?} changes a message in #{r}: {cmd:?}");
                t.cmd(now, id, cmd);
            }
            (Some(id), 71..=72) => {
                t.cmd(now, id, nick(&format!("n{}x{}", s, rng.below(3))));
                what = format!("{id:?} changes nick");
            }
            (Some(id), 73) => {
                t.cmd(now, id, history(None, None, 50));
                let r = rooms[rng.below(rooms.len())];
                let cmd = Command::History {
                    room: Some(room(r)),
                    page: Page {
                        limit: 200,
                        ..Page::default()
                    },
                };
                t.cmd(now, id, cmd);
                what = format!("{id:?} asks for history");
            }
            (Some(id), 74) => {
                let cmd = if rng.below(2) == 0 {
                    Command::Create
                } else {
                    Command::Typing(room(rooms[rng.below(rooms.len())]))
                };
                t.cmd(now, id, cmd);
                what = format!("{id:?} creates a room or types");
            }
            (Some(id), 75..=82) if !slots[s].held => {
                t.now = now;
                t.hub.detach(now, id, LeaveReason::Disconnect);
                t.persist();
                slots[s].held = true;
                what = format!("{id:?} vanishes");
            }
            (Some(id), 83..=85) => {
                t.now = now;
                t.hub.disconnect(now, id, LeaveReason::Quit(None));
                t.persist();
                slots[s] = Slot::default();
                what = format!("{id:?} quits");
            }
            (Some(id), 86..=88) => {
                if !registered {
                    t.cmd(
                        now,
                        id,
                        Command::Register {
                            password: "password1".into(),
                        },
                    );
                    registered = t.hub.account_of(id).is_some();
                    what = format!("{id:?} registers");
                } else {
                    let nick = t.hub.account_names().first().cloned().unwrap_or_default();
                    let cmd = Command::Login {
                        nick,
                        password: "password1".into(),
                    };
                    t.cmd(now, id, cmd);
                    what = format!("{id:?} logs in");
                }
            }
            (Some(id), 89..=90) => {
                t.cmd(now, id, Command::Logout);
                what = format!("{id:?} logs out");
            }
            (Some(id), 91..=93) => {
                let r = rooms[rng.below(rooms.len())];
                let victim = slots[rng.below(slots.len())]
                    .id
                    .and_then(|v| t.hub.nick_of(v).map(str::to_string));
                let Some(victim) = victim else { continue };
                let cmd = Command::Mod {
                    room: Some(room(r)),
                    action: ModAction::Kick {
                        nick: victim,
                        reason: None,
                    },
                };
                t.cmd(now, id, cmd);
                what = format!("{id:?} kicks in #{r}");
            }
            (Some(_), _) => {
                t.now = now;
                t.hub.expire(now);
                t.persist();
                for slot in &mut slots {
                    if slot.id.is_some_and(|id| t.hub.nick_of(id).is_none()) {
                        *slot = Slot::default();
                    }
                }
                what = "sessions expire".to_string();
            }
        }
        if rng.below(3) == 0 {
            t.discard(); // a turn ends
        }
        check_membership(&t.hub, &format!("step {step}: {what}"));
        check_seqs(&t, &format!("step {step}: {what}"));
    }
    let changes: usize = t.store.amends.values().map(Vec::len).sum();
    assert!(changes > 5, "seed {seed}: only {changes} changes were made");
}

#[test]
fn membership_stays_consistent_through_random_churn() {
    for seed in 1..=12 {
        churn(seed, false);
    }
}

#[test]
fn membership_stays_consistent_through_random_churn_with_a_late_store() {
    for seed in 1..=12 {
        churn(seed, true);
    }
}
