//! SQLite store throughput: what group commit buys.
//!
//! Measures messages stored per second (a) on a file database with 100
//! messages per transaction, as the loop commits one batch per iteration,
//! (b) on a file database with one transaction per message, the cost without
//! group commit, and (c) `:memory:` with batches of 100, the cost of SQL
//! alone. The ratio (a)/(b) is the figure to watch: the machine is shared
//! and noisy, so absolute rates mean little.
//!
//! Run with `cargo bench --bench store`; under `cargo test --all-targets`
//! (no `--bench` in argv) it does a quick smoke run instead.

use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use natter::hub::event::Message;
use natter::hub::names::RoomName;
use natter::store::sqlite::SqliteStore;
use natter::store::Store;

/// Removes the bench's database files however the run ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Appends batches of `batch` messages for about `budget`; messages a second.
fn rate(store: &mut SqliteStore, batch: usize, budget: Duration) -> f64 {
    let rooms: Vec<RoomName> = (0..8)
        .map(|i| RoomName::parse(&format!("room{i}")).unwrap())
        .collect();
    let mut seqs = vec![0u64; rooms.len()];
    let mut stored = 0usize;
    let start = Instant::now();
    while start.elapsed() < budget {
        let msgs: Vec<Rc<Message>> = (0..batch)
            .map(|i| {
                let r = (stored + i) % rooms.len();
                seqs[r] += 1;
                Rc::new(Message {
                    room: rooms[r].clone(),
                    seq: seqs[r],
                    ts: 1_763_800_000_000 + seqs[r],
                    from: "bench-user".into(),
                    text: "a chat message of a typical length, say sixty characters".into(),
                    action: false,
                    image: None,
                })
            })
            .collect();
        store.append(&msgs).unwrap();
        stored += batch;
    }
    stored as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let budget = Duration::from_millis(if measuring { 2000 } else { 20 });

    let dir =
        TempDir(std::env::temp_dir().join(format!("natter-bench-store-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let path = |name: &str| dir.0.join(name).to_str().unwrap().to_owned();

    let mut grouped = SqliteStore::open(&path("grouped.db"), || "bench".into()).unwrap();
    let a = rate(&mut grouped, 100, budget);
    let mut single = SqliteStore::open(&path("single.db"), || "bench".into()).unwrap();
    let b = rate(&mut single, 1, budget);
    let mut memory = SqliteStore::open(":memory:", || "bench".into()).unwrap();
    let c = rate(&mut memory, 100, budget);

    println!("(a) file, 100 per transaction:     {a:>10.0} msg/s");
    println!("(b) file, 1 per transaction:       {b:>10.0} msg/s");
    println!("(c) :memory:, 100 per transaction: {c:>10.0} msg/s");
    println!("group commit speed-up (a)/(b):     {:>10.1}x", a / b);
}
