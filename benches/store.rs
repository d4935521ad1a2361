//! SQLite store throughput: what group commit buys.
//!
//! Measures messages stored per second (a) on a file database with 100
//! messages per transaction, as the loop commits one batch per iteration,
//! (b) on a file database with one transaction per message, the cost without
//! group commit, and (c) `:memory:` with batches of 100, the cost of SQL
//! alone. The ratio (a)/(b) is the figure to watch: the machine is shared
//! and noisy, so absolute rates mean little. (d) times each one-message
//! commit, the wait every recipient shares, and apart from it the WAL
//! checkpoints, which the store leaves to its caller as the loop does.
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
    rate_timed(store, batch, budget, &mut Vec::new(), &mut Vec::new())
}

/// As [`rate`], also recording each append's duration in `times` and each
/// checkpoint's in `checkpoints`.
fn rate_timed(
    store: &mut SqliteStore,
    batch: usize,
    budget: Duration,
    times: &mut Vec<Duration>,
    checkpoints: &mut Vec<Duration>,
) -> f64 {
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
        let t = Instant::now();
        store.append(&msgs).unwrap();
        times.push(t.elapsed());
        stored += batch;
        // As the loop does, between turns (commits never checkpoint).
        if store.wal_pages() >= 1000 {
            let t = Instant::now();
            store.checkpoint().unwrap();
            checkpoints.push(t.elapsed());
        }
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

    // What one commit costs the loop, which waits for it: the loop commits
    // once per turn, and at chat rates a turn holds one message or a few.
    // Checkpoints (two fsyncs each) run apart from commits, as in the loop.
    let (mut times, mut checkpoints) = (Vec::new(), Vec::new());
    let mut paced = SqliteStore::open(&path("latency.db"), || "bench".into()).unwrap();
    rate_timed(&mut paced, 1, budget, &mut times, &mut checkpoints);
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    let slow = times.iter().filter(|t| t.as_millis() >= 1).count();
    println!(
        "(d) file, 1 per transaction, {} commits: ms p50 {:.3} p99 {:.3} p99.9 {:.3} max {:.3}; \
         {} took 1 ms or more",
        times.len(),
        at(0.5),
        at(0.99),
        at(0.999),
        at(1.0),
        slow
    );
    let ms = |d: &Duration| d.as_secs_f64() * 1e3;
    println!(
        "    and {} checkpoints between commits: ms mean {:.2} max {:.2}",
        checkpoints.len(),
        checkpoints.iter().map(ms).sum::<f64>() / checkpoints.len().max(1) as f64,
        checkpoints.iter().map(ms).fold(0.0, f64::max)
    );
}
