//! SQLite store throughput: what group commit buys.
//!
//! Measures messages stored per second (a) on a file database with 100
//! messages per transaction, as the loop commits one batch per iteration,
//! (b) on a file database with one transaction per message, the cost without
//! group commit, and (c) `:memory:` with batches of 100, the cost of SQL
//! alone. The ratio (a)/(b) is the figure to watch: the machine is shared
//! and noisy, so absolute rates mean little. (d) times each one-message
//! commit, the wait every recipient shares, while WAL checkpoints run on a
//! second thread with their own connection, as the server's helper thread
//! runs them. (e) The knobs, with checkpoints off the commit path: the
//! one-message commit time with `synchronous` NORMAL or FULL, pages of 4,
//! 8 or 16 KiB, and statements prepared once (cached) or every time.
//!
//! Run with `cargo bench --bench store`; under `cargo test --all-targets`
//! (no `--bench` in argv) it does a quick smoke run instead.

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection};

use natter::hub::event::Message;
use natter::hub::names::RoomName;
use natter::store::sqlite::{Checkpointer, SqliteStore};
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
    rate_timed(store, batch, budget, &mut Vec::new(), None)
}

/// As [`rate`], also recording each append's duration in `times` and each
/// checkpoint's in `checkpoints`.
fn rate_timed(
    store: &mut SqliteStore,
    batch: usize,
    budget: Duration,
    times: &mut Vec<Duration>,
    helper: Option<&Background>,
) -> f64 {
    let rooms: Vec<RoomName> = (0..8)
        .map(|i| RoomName::parse(&format!("room{i}")).unwrap())
        .collect();
    let mut seqs = vec![0u64; rooms.len()];
    let mut stored = 0usize;
    let mut asked_at = 0u32;
    let start = Instant::now();
    while start.elapsed() < budget {
        let msgs: Vec<Rc<Message>> = (0..batch)
            .map(|i| {
                let r = (stored + i) % rooms.len();
                seqs[r] += 1;
                Rc::new(Message {
                    author: String::new(),
                    reply_to: None,
                    mentions: Vec::new(),
                    edited_ts: None,
                    deleted: false,
                    reactions: Vec::new(),
                    room: rooms[r].clone(),
                    seq: seqs[r],
                    ts: 1_763_800_000_000 + seqs[r],
                    from: "bench-user".into(),
                    text: "a chat message of a typical length, say sixty characters".into(),
                    action: false,
                    image: None,
                    account: None,
                })
            })
            .collect();
        let t = Instant::now();
        store.append(&msgs).unwrap();
        times.push(t.elapsed());
        stored += batch;
        // As the loop does: the helper thread checkpoints (commits never
        // do), asked when the WAL has grown by 1000 pages.
        let pages = store.wal_pages();
        if pages < asked_at {
            asked_at = 0; // the WAL started over
        }
        if pages >= asked_at + 1000 {
            match helper {
                Some(h) => h.ask(),
                None => store.checkpoint().unwrap(),
            }
            asked_at = pages;
        }
    }
    stored as f64 / start.elapsed().as_secs_f64()
}

/// Checkpoints on a second thread, one at a time, as the server's helper
/// thread runs them; their durations come back when it is dropped.
struct Background {
    jobs: Option<mpsc::Sender<()>>,
    busy: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<Vec<Duration>>>,
}

impl Background {
    fn start(path: &str) -> Background {
        let mut cp = Checkpointer::open(path).unwrap().expect("a file");
        let (jobs, inbox) = mpsc::channel::<()>();
        let busy = Arc::new(AtomicBool::new(false));
        let flag = busy.clone();
        let thread = thread::spawn(move || {
            let mut took = Vec::new();
            for () in inbox {
                let t = Instant::now();
                // As the helper does: a busy SQLite is asked again soon.
                for _ in 0..20 {
                    match cp.checkpoint() {
                        Ok(None) => thread::sleep(Duration::from_millis(1)),
                        Ok(Some(_)) => break,
                        Err(e) => panic!("checkpoint: {e}"),
                    }
                }
                took.push(t.elapsed());
                flag.store(false, Ordering::Release);
            }
            took
        });
        Background {
            jobs: Some(jobs),
            busy,
            thread: Some(thread),
        }
    }

    /// Asks for a checkpoint unless one is running.
    fn ask(&self) {
        if !self.busy.swap(true, Ordering::AcqRel) {
            if let Some(j) = &self.jobs {
                j.send(()).unwrap();
            }
        }
    }

    fn finish(mut self) -> Vec<Duration> {
        self.jobs = None;
        self.thread
            .take()
            .map(|t| t.join().unwrap())
            .unwrap_or_default()
    }
}

const SCHEMA: &str = include_str!("../src/store/schema.sql");
const INSERT: &str = "INSERT INTO messages (room, seq, ts, sender, text, action) \
     VALUES (?1, ?2, ?3, ?4, ?5, 0)";

/// (e) One knob setting: one-message commits on a fresh file for about
/// `budget`, checkpoints on a second thread; p50 and p99 in ms.
fn knob(path: &str, page_size: u32, sync: &str, cached: bool, budget: Duration) -> (f64, f64) {
    let conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "page_size", page_size).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", sync).unwrap();
    // As the store does: commits never checkpoint (the helper does).
    conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    conn.execute_batch(SCHEMA).unwrap();
    let bg = Background::start(path);
    let mut times = Vec::new();
    let start = Instant::now();
    let mut seq = 0i64;
    while start.elapsed() < budget {
        seq += 1;
        let t = Instant::now();
        let tx = conn.unchecked_transaction().unwrap();
        {
            let args = params![
                format!("room{}", seq % 8),
                seq,
                seq,
                "bench-user",
                "a chat message of a typical length, say sixty characters"
            ];
            if cached {
                tx.prepare_cached(INSERT).unwrap().execute(args).unwrap();
            } else {
                tx.prepare(INSERT).unwrap().execute(args).unwrap();
            }
        }
        tx.commit().unwrap();
        times.push(t.elapsed());
        if seq % 200 == 0 {
            bg.ask(); // a few hundred WAL pages each, as the server asks
        }
    }
    drop(conn);
    bg.finish();
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    (at(0.5), at(0.99))
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
    // Checkpoints (two fsyncs each) run on another thread, as in the server.
    let mut times = Vec::new();
    let mut paced = SqliteStore::open(&path("latency.db"), || "bench".into()).unwrap();
    let bg = Background::start(&path("latency.db"));
    rate_timed(&mut paced, 1, budget, &mut times, Some(&bg));
    let checkpoints = bg.finish();
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
        "    while {} checkpoints ran on another thread: ms mean {:.2} max {:.2}",
        checkpoints.len(),
        checkpoints.iter().map(ms).sum::<f64>() / checkpoints.len().max(1) as f64,
        checkpoints.iter().map(ms).fold(0.0, f64::max)
    );

    for (page_size, sync, cached) in [
        (4096, "NORMAL", true),
        (4096, "FULL", true),
        (4096, "NORMAL", false),
        (8192, "NORMAL", true),
        (16384, "NORMAL", true),
    ] {
        let file = path(&format!("knob-{page_size}-{sync}-{cached}.db"));
        let (p50, p99) = knob(&file, page_size, sync, cached, budget);
        println!(
            "(e) page {:>2} KiB, synchronous={sync:<6}, statements {}: one-message commit \
             ms p50 {p50:.3} p99 {p99:.3}",
            page_size / 1024,
            if cached { "cached  " } else { "prepared" }
        );
    }
}
