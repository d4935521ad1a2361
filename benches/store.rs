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
//! (f) Search (PROTOCOL-2 section 4): one room of a million messages,
//! built once and kept in the bench's target directory
//! (`CARGO_TARGET_TMPDIR`, about half a minute to build), searched for a
//! rare word, a common one, a prefix, a phrase, a sender alone, a second
//! page, and a common word no message of a sender has; each the median and
//! worst of several runs, and as a ratio to reading one 50-message
//! history page of the same database.
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

use natter::hub::command::Page;
use natter::hub::event::Message;
use natter::hub::names::RoomName;
use natter::hub::port::SearchOp;
use natter::hub::search::Query;
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

/// Words of the search corpus, the first ones the most frequent (about
/// Zipf's law: word `i` is drawn with weight `1 / (i + 1)`).
const VOCABULARY: &[&str] = &[
    "the",
    "to",
    "and",
    "a",
    "of",
    "is",
    "in",
    "it",
    "you",
    "that",
    "for",
    "on",
    "deploy",
    "friday",
    "build",
    "test",
    "merge",
    "review",
    "lunch",
    "coffee",
    "server",
    "crash",
    "fixed",
    "release",
    "branch",
    "ticket",
    "meeting",
    "tomorrow",
    "later",
    "thanks",
    "café",
    "naïve",
    "déjà",
    "vu",
    "rust",
    "tokio",
    "mio",
    "sqlite",
    "index",
    "search",
    "query",
    "latency",
    "benchmark",
    "ratio",
    "median",
    "window",
    "snippet",
    "marker",
    "unicode",
    "accent",
];
/// In one message in 100,000.
const RARE: &str = "zyzzyva";

/// A small deterministic generator (xorshift), so every build of the
/// corpus is the same.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A word index with weight `1 / (i + 1)`.
    fn word(&mut self, cumulative: &[f64]) -> usize {
        let total = cumulative[cumulative.len() - 1];
        let x = (self.next() >> 11) as f64 / (1u64 << 53) as f64 * total;
        cumulative
            .partition_point(|&c| c < x)
            .min(cumulative.len() - 1)
    }
}

/// Fills `path` with `n` messages in room `big`: 4 to 16 words each, from
/// 20 senders, [`RARE`] in every 100,000th.
fn build_corpus(path: &str, n: u64) {
    let mut store = SqliteStore::open(path, || "bench".into()).unwrap();
    let room = RoomName::parse("big").unwrap();
    let mut cumulative = Vec::new();
    let mut sum = 0.0;
    for i in 0..VOCABULARY.len() {
        sum += 1.0 / (i + 1) as f64;
        cumulative.push(sum);
    }
    let mut g = Gen(0x9e37_79b9_7f4a_7c15);
    let mut seq = 0u64;
    while seq < n {
        let batch: Vec<Rc<Message>> = (0..10_000.min(n - seq))
            .map(|_| {
                seq += 1;
                let words = 4 + g.next() % 13;
                let mut text: Vec<&str> = (0..words)
                    .map(|_| VOCABULARY[g.word(&cumulative)])
                    .collect();
                if seq % 100_000 == 50_000 {
                    text.push(RARE);
                }
                Rc::new(Message::new(
                    room.clone(),
                    seq,
                    1_763_800_000_000 + seq * 1000,
                    format!("user{}", g.next() % 20),
                    text.join(" "),
                ))
            })
            .collect();
        store.append(&batch).unwrap();
        // Indexed as a running server does, a batch after the commit.
        while store.unindexed() > 0 {
            store.index_pending(100_000).unwrap();
        }
        store.checkpoint().unwrap();
    }
}

/// Runs `f` `runs` times; median and worst in ms, and what it returned.
fn timed<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, f64, T) {
    let mut times = Vec::new();
    let mut out = f(); // warm: the first run reads pages from disk
    for _ in 0..runs {
        let t = Instant::now();
        out = f();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[times.len() - 1], out)
}

/// (f) Search figures on a corpus of `n` messages kept at `path`.
fn search_figures(path: &str, n: u64, runs: usize) {
    let fresh = !std::path::Path::new(path).exists();
    if fresh {
        let t = Instant::now();
        build_corpus(path, n);
        println!(
            "(f) built {n} messages at {path} in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    let mut store = SqliteStore::open(path, || "bench".into()).unwrap();
    let room = RoomName::parse("big").unwrap();
    let size = std::fs::metadata(path).map_or(0, |m| m.len());
    let (page_ms, _, _) = timed(runs, || {
        store
            .history(
                &room,
                Page {
                    before: None,
                    after: None,
                    limit: 50,
                },
            )
            .unwrap()
            .len()
    });
    println!(
        "(f) search: {n} messages in one room, file {:.0} MiB; baseline: a 50-message \
         history page {page_ms:.3} ms",
        size as f64 / (1u64 << 20) as f64
    );
    let middle = n / 2;
    for (what, q, before) in [
        ("rare word", RARE.to_string(), None),
        ("common word", "the".to_string(), None),
        ("two common words", "deploy friday".to_string(), None),
        ("rare and common", format!("the {RARE}"), None),
        ("prefix (last word)", "mer".to_string(), None),
        ("short prefix", "t".to_string(), None),
        ("common phrase", "\"to the\"".to_string(), None),
        ("rare phrase", "\"deploy on friday\"".to_string(), None),
        ("accents folded", "deja cafe".to_string(), None),
        ("from: alone", "from:user7".to_string(), None),
        ("word from:", "coffee from:user7".to_string(), None),
        ("second page", "deploy".to_string(), Some(middle)),
        ("absent word", "xylophone".to_string(), None),
    ] {
        let op = SearchOp {
            id: 1,
            rooms: vec![room.clone()],
            query: Query::parse(&q),
            limit: 20,
            before,
        };
        let (p50, max, hits) = timed(runs, || store.search(&op).unwrap().len());
        println!(
            "(f) {what:<20} {q:<24} {hits:>3} hits: ms p50 {p50:>7.3} max {max:>7.3} \
             ({:>6.1}x a history page)",
            p50 / page_ms.max(1e-6)
        );
    }
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    // `cargo bench --bench store -- search` runs part (f) only.
    let search_only = std::env::args().any(|a| a == "search");
    let budget = Duration::from_millis(if measuring { 2000 } else { 20 });

    let dir =
        TempDir(std::env::temp_dir().join(format!("natter-bench-store-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let path = |name: &str| dir.0.join(name).to_str().unwrap().to_owned();
    if search_only && measuring {
        let kept = concat!(env!("CARGO_TARGET_TMPDIR"), "/search-1m.db");
        search_figures(kept, 1_000_000, 21);
        return;
    }

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

    // The million-message corpus is kept between runs; the smoke run makes
    // a small one of its own in the temporary directory.
    if measuring {
        let kept = concat!(env!("CARGO_TARGET_TMPDIR"), "/search-1m.db");
        search_figures(kept, 1_000_000, 21);
    } else {
        search_figures(&path("search.db"), 2_000, 3);
    }
}
