//! The chat hub alone (no sockets, an in-memory store): what one message to
//! a big room and one join into it cost in the hub's own bookkeeping,
//! before the shell renders and writes anything.
//!
//! Run with `cargo bench --bench hub`. The baseline measured in the same run
//! is the same work in a room of 10: a hub whose cost per message does not
//! grow with the room reports a ratio near 1 for the message.

use std::hint::black_box;
use std::time::{Duration, Instant};

use natter::hub::accounts::Hello;
use natter::hub::command::Command;
use natter::hub::event::{ClientId, ClientKind, Effect};
use natter::hub::limits::RateLimit;
use natter::hub::names::RoomName;
use natter::hub::{Hub, HubConfig, Now};
use natter::store::{self, MemStore};

fn hub() -> Hub {
    let config = HubConfig {
        edit_window_ms: 900_000,
        default_room: RoomName::parse("lobby").expect("room"),
        history: 0,
        max_message: 4000,
        max_line: 4096,
        resume_grace_ms: 120_000,
        max_ws_message: 1 << 20,
        max_image: 1 << 20,
        history_per_turn: 1 << 20,
        accounts: Default::default(),
        rate: RateLimit {
            rate: 1 << 40,
            burst: 1 << 40,
        },
    };
    Hub::new(config, "bench".into(), 7)
}

/// The end of a hub turn as the shell does it: the batch to the store (in
/// memory, answering at once), then the effects taken.
fn end_turn(h: &mut Hub, store: &mut MemStore, effects: &mut Vec<Effect>) {
    h.close_batch();
    let mut ops = Vec::new();
    while h.has_store_ops() {
        h.take_store_ops(&mut ops);
        for op in ops.drain(..) {
            h.answer(Now { ms: 2 }, store::execute(store, op));
        }
    }
    h.drain_effects(effects);
}

/// A hub with `n` WebSocket clients in `#big`, its effects drained.
fn room_of(n: u64, store: &mut MemStore, effects: &mut Vec<Effect>) -> Hub {
    let mut h = hub();
    let room = RoomName::parse("big").expect("room");
    for i in 0..n {
        h.connect(
            Now { ms: 1 },
            ClientId(i),
            Hello::new(ClientKind::Ws, None, None),
        );
        let join = Command::Join {
            room: room.clone(),
            since: None,
        };
        h.handle(Now { ms: 1 }, ClientId(i), join, None);
        end_turn(&mut h, store, effects);
        effects.clear();
    }
    h
}

/// Messages a second into a room of `n`, one hub turn each (handle, commit,
/// take the effects), for about `budget`.
fn messages(n: u64, budget: Duration) -> f64 {
    let mut effects = Vec::new();
    let mut store = MemStore::new("bench".into());
    let mut h = room_of(n, &mut store, &mut effects);
    let room = RoomName::parse("big").expect("room");
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < budget {
        for _ in 0..100 {
            let say = Command::Say {
                reply_to: None,
                room: Some(room.clone()),
                text: "hello, this is a typical chat message".into(),
                action: false,
                cid: None,
            };
            h.handle(Now { ms: 2 }, ClientId(sent % n), say, None);
            end_turn(&mut h, &mut store, &mut effects);
            black_box(&effects);
            effects.clear();
            sent += 1;
        }
    }
    sent as f64 / start.elapsed().as_secs_f64()
}

/// Joins a second into a room that already has `n` members (one member
/// leaves and joins again, so the room keeps its size).
fn joins(n: u64, budget: Duration) -> f64 {
    let mut effects = Vec::new();
    let mut store = MemStore::new("bench".into());
    let mut h = room_of(n, &mut store, &mut effects);
    let room = RoomName::parse("big").expect("room");
    let start = Instant::now();
    let mut done = 0u64;
    while start.elapsed() < budget {
        let who = ClientId(done % n);
        let leave = Command::Leave(Some(room.clone()));
        h.handle(Now { ms: 2 }, who, leave, None);
        let join = Command::Join {
            room: room.clone(),
            since: None,
        };
        h.handle(Now { ms: 2 }, who, join, None);
        end_turn(&mut h, &mut store, &mut effects);
        black_box(&effects);
        effects.clear();
        done += 1;
    }
    done as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    // `cargo bench` passes `--bench`; under `cargo test --all-targets` a
    // short run shows the benchmark works.
    let measuring = std::env::args().any(|a| a == "--bench");
    let budget = Duration::from_millis(if measuring { 1000 } else { 20 });
    let small = messages(10, budget);
    let big = messages(1000, budget);
    println!(
        "hub message: room of 1000 {:.2} M/s ({:.2} us each); room of 10 {:.2} M/s; ratio {:.2}",
        big / 1e6,
        1e6 / big,
        small / 1e6,
        big / small
    );
    let small = joins(10, budget);
    let big = joins(1000, budget);
    println!(
        "hub leave+join: room of 1000 {:.0} k/s ({:.1} us each); room of 10 {:.0} k/s; ratio {:.3}",
        big / 1e3,
        1e6 / big,
        small / 1e3,
        big / small
    );
}
