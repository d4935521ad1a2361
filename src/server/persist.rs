//! The shell's half of the hub's persistence port (`hub::port`): the store
//! operations the hub asked for are carried out on the store, in order,
//! and each answer goes back to the hub, until the hub asks for nothing
//! more (an answer may let a waiting client go on, and what it asks next
//! may need the store again).
//!
//! The store here answers at once, on the loop's thread (SQLite: a commit
//! of one turn's messages takes tens of microseconds), so every answer is
//! in before the turn's effects are drained and nothing waits a turn. A
//! store that answers later would hand its answers to `Hub::answer` when
//! they arrive; the hub holds back what depends on them meanwhile.
//!
//! Also the store's upkeep: SQLite's WAL grows with every commit, and a
//! checkpoint copies it into the database file with two `fsync`s, which
//! take milliseconds on a real disk. The loop never runs one in the
//! ordinary course: it hands the job to the helper thread (`helper`) as
//! soon as the WAL has grown by `CHECKPOINT_EARLY` pages, and goes on
//! committing while the helper copies. See `store_upkeep` for the one case
//! where the loop still runs one itself.
//!
//! Read next: `hub::port` (the vocabulary), `store::execute`, `helper`.

use std::time::Instant;

use log::{debug, error, info, warn};

use super::helper::{Done, Job};
use super::metrics::Counters;
use super::redis::Redis;
use super::Server;
use crate::hub::port::{StoreAnswer, StoreOp};
use crate::hub::{Hub, Now};
use crate::store::{self, Store};

impl Server {
    /// Carries out every store operation the hub has asked for so far
    /// (see `run`).
    pub(super) fn persist(&mut self) {
        let Server {
            hub,
            store,
            store_ops,
            counters,
            wall,
            redis,
            now,
            ..
        } = self;
        run(
            hub,
            &mut **store,
            redis.as_mut(),
            store_ops,
            counters,
            *wall,
            *now,
        );
    }

    /// Ends the turn's batch and stores it (with anything else asked for).
    pub(super) fn commit(&mut self) {
        self.hub.close_batch();
        self.persist();
    }
}

/// A checkpoint is handed to the helper thread once the WAL has grown by
/// this many pages since the last one copied (SQLite's own default). Off
/// the loop, a checkpoint's length no longer matters to anyone; fewer,
/// larger ones sync less often: with 250 pages the helper ran four times as
/// many for the same load (fanout scenario 3: 268 against 69 in 10 s) with
/// no gain in latency (docs/BENCHMARKS.md).
const CHECKPOINT_EARLY: u32 = 1000;

// Past `--wal-restart-pages` the WAL is started over. SQLite starts it
// over only when a checkpoint has copied all of it before the next commit
// begins; a loop that commits every turn without a pause for as long as a
// checkpoint takes never gives it that moment, and the WAL (a file on
// disk, whose index every read searches) would grow for as long as the
// load lasts. So once it is that long, and the helper has copied all but
// `RESTART_LEFT` pages of it, the loop copies those itself (`wal_restart`):
// the next commit starts the WAL over. That holds everything for the copy
// and two `fsync`s, 3-10 ms here, where a checkpoint of the whole WAL on
// the loop took 10-150 ms. (Holding only the writes while the helper
// copied the rest, with the loop going on, answered history pages late:
// a page asked for before a message came could reach its client after
// that message, without it. The hub keeps the stream's order only for a
// store that answers in the same turn.) The default, 40,000 pages of
// 4 KiB, is a WAL of 160 MiB at most (docs/BENCHMARKS.md, "Search").

/// The loop copies the last of a long WAL itself once the helper has
/// copied all but this many pages.
const RESTART_LEFT: u32 = 250;

/// Past this many times `--wal-restart-pages` the WAL has not been started
/// over (a reader kept the checkpoints from copying all of it, a restart
/// waited in vain again and again), and the loop runs a checkpoint itself,
/// holding everything for as long as it takes: the last resort against a
/// WAL that grows without bound.
const WAL_FAR: u32 = 2;

/// Messages are put in the search index in batches of at most this many
/// (about 20 us each in a batch; a message per commit cost 100-150 us),
/// once this many wait or `INDEX_EVERY` has passed since the last batch.
const INDEX_BATCH: usize = 256;
const INDEX_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// How often the store is asked whether `natter accounts` changed it.
const ACCOUNTS_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

impl Server {
    /// The end of a turn's store work: a checkpoint handed to the helper
    /// thread if the WAL has grown and the helper is idle, the last few
    /// pages of a long WAL copied here so that it starts over, or all of it
    /// copied here if it has fallen far behind.
    pub(super) fn store_upkeep(&mut self) {
        // Reports are read here too, not only on the waker's event: a
        // report is never left waiting for a wake-up that did not come.
        self.on_helper();
        self.submit_password_jobs();
        self.index_upkeep();
        if !self.helper.idle() {
            return;
        }
        let pages = self.store.wal_pages();
        if pages < self.wal_copied {
            self.wal_copied = 0; // the WAL started over
        }
        let behind = pages - self.wal_copied;
        let restart = self.config.wal_restart_pages;
        if pages >= restart.saturating_mul(WAL_FAR) {
            self.loop_checkpoint();
        } else if pages >= restart && behind > 0 && behind < RESTART_LEFT {
            self.wal_restart();
        } else if (pages >= restart && behind > 0 || behind >= CHECKPOINT_EARLY)
            && !self.helper.submit(Job::Checkpoint)
        {
            warn!("the helper thread is gone; checkpoints run on the loop");
            self.loop_checkpoint();
        }
    }

    /// The last few pages of a long WAL copied on the loop (see
    /// `RESTART_LEFT`): the next commit starts the WAL over.
    fn wal_restart(&mut self) {
        let us = self.checkpoint_here();
        debug!("WAL restart: the last pages copied on the loop in {us} us");
        let c = &mut self.counters;
        c.wal_restarts += 1;
        c.wal_restart_us_total += us;
        c.wal_restart_us_max = c.wal_restart_us_max.max(us);
    }

    /// Accounts made, changed or removed by `natter accounts` while the
    /// server runs: at the start of a turn, at most twice a second, the
    /// store is asked whether another process wrote to it (a pragma, a
    /// microsecond), and if so the hub is given the accounts and tokens
    /// again, before the turn's requests are handled.
    pub(super) fn accounts_upkeep(&mut self) {
        if self
            .accounts_checked
            .is_some_and(|t| self.now.saturating_duration_since(t) < ACCOUNTS_EVERY)
        {
            return;
        }
        self.accounts_checked = Some(self.now);
        match self.store.changed_elsewhere() {
            Ok(false) => {}
            Ok(true) => match self.store.load_state() {
                Ok(state) => {
                    info!(
                        "the database was changed by another process: {} accounts now",
                        state.accounts.len()
                    );
                    self.hub
                        .set_accounts(self.wall, state.accounts, state.tokens);
                }
                Err(e) => warn!("reading accounts again: {e}"),
            },
            Err(e) => warn!("asking the store for changes: {e}"),
        }
    }

    /// Puts a batch of stored messages in the search index when enough
    /// wait or they have waited long enough (a search indexes whatever
    /// waits first, so this only keeps the batches small).
    fn index_upkeep(&mut self) {
        let waiting = self.store.unindexed();
        if waiting == 0 || (waiting < INDEX_BATCH && self.now < self.indexed_at + INDEX_EVERY) {
            return;
        }
        let started = Instant::now();
        match self.store.index_pending(INDEX_BATCH) {
            Ok(n) => {
                let us = started.elapsed().as_micros() as u64;
                let c = &mut self.counters;
                c.index_batches += 1;
                c.indexed += n as u64;
                c.index_us_total += us;
                c.index_us_max = c.index_us_max.max(us);
            }
            Err(e) => warn!("search index: {e}"),
        }
        self.indexed_at = self.now;
    }

    /// Hands the hub's password jobs to the helper thread (or, if the
    /// thread is gone, does them here: a login held up beats no login).
    fn submit_password_jobs(&mut self) {
        if !self.hub.has_password_jobs() {
            return;
        }
        let mut jobs = Vec::new();
        self.hub.take_password_jobs(&mut jobs);
        for job in jobs {
            if !self.helper.submit(Job::Password(job.clone())) {
                warn!("the helper thread is gone; a password is hashed on the loop");
                let started = Instant::now();
                let done = super::helper::password_job(
                    &job,
                    &mut self.urandom,
                    &mut crate::password::Memory::new(),
                );
                self.password_done(done, started.elapsed().as_micros() as u64);
            }
        }
    }

    fn password_done(&mut self, done: crate::hub::port::PasswordDone, us: u64) {
        let c = &mut self.counters;
        c.password_jobs += 1;
        c.password_us_total += us;
        c.password_us_max = c.password_us_max.max(us);
        self.hub.password_done(self.wall, done);
        self.persist();
    }

    /// The helper thread's finished jobs (after a wake-up on `HELPER`, and
    /// at every turn's upkeep).
    pub(super) fn on_helper(&mut self) {
        while let Some(done) = self.helper.finished() {
            match done {
                Done::Password { done, us } => self.password_done(done, us),
                Done::Checkpoint { result, us } => {
                    let c = &mut self.counters;
                    c.checkpoints += 1;
                    c.checkpoint_us_total += us;
                    c.checkpoint_us_max = c.checkpoint_us_max.max(us);
                    match result {
                        Ok(Some(done)) => {
                            debug!(
                                "checkpoint on the helper in {us} us: {} of {} pages",
                                done.copied, done.log
                            );
                            self.wal_copied = done.copied;
                        }
                        Ok(None) => debug!("checkpoint: SQLite stayed busy; asked again later"),
                        // Harmless for now: the WAL keeps every commit.
                        Err(e) => warn!("checkpoint failed: {e}"),
                    }
                }
            }
        }
    }

    /// Copies what it can of the WAL on the loop's own connection (two
    /// `fsync`s while everyone waits); its time in microseconds.
    fn checkpoint_here(&mut self) -> u64 {
        let started = Instant::now();
        if let Err(e) = self.store.checkpoint() {
            warn!("checkpoint failed: {e}");
        }
        self.wal_copied = self.store.wal_pages();
        started.elapsed().as_micros() as u64
    }

    /// All of the WAL copied on the loop, timed and counted apart.
    fn loop_checkpoint(&mut self) {
        let us = self.checkpoint_here();
        warn!(
            "the WAL was never started over; checkpointed on the loop in {us} us \
             ({} pages left)",
            self.wal_copied
        );
        let c = &mut self.counters;
        c.loop_checkpoints += 1;
        c.loop_checkpoint_us_total += us;
        c.loop_checkpoint_us_max = c.loop_checkpoint_us_max.max(us);
    }
}

/// Carries out every store operation the hub has asked for so far, in
/// order, and hands each answer back. The shell calls this right after it
/// hands the hub a request (so with SQLite a client never waits for its
/// read past that request, as if the hub had called the store itself) and
/// before it drains the hub's effects; `close_batch` first makes the
/// turn's messages one of the operations. `ops` is reused between calls.
// Every argument is a part of `Server` the callers borrow apart.
#[allow(clippy::too_many_arguments)]
pub(super) fn run(
    hub: &mut Hub,
    store: &mut dyn Store,
    mut redis: Option<&mut Redis>,
    ops: &mut Vec<StoreOp>,
    counters: &mut Counters,
    now: Now,
    at: Instant,
) {
    while hub.has_store_ops() {
        hub.take_store_ops(ops);
        for op in ops.drain(..) {
            // With --redis: sent in the turn's write and answered when
            // Redis replies; batches of accounts and room settings still go
            // to SQLite (not shared yet).
            let op = match redis.as_deref_mut() {
                None => op,
                Some(r) => match r.submit(op, at) {
                    Ok(Some(answer)) => {
                        hub.answer(now, answer);
                        continue;
                    }
                    Ok(None) => continue,
                    Err(op) => *op,
                },
            };
            let append = matches!(op, StoreOp::Append(_));
            let started = Instant::now();
            let answer = store::execute(store, op);
            if append {
                count_commit(counters, started, &answer);
            }
            hub.answer(now, answer);
        }
    }
}

fn count_commit(c: &mut Counters, started: Instant, answer: &StoreAnswer) {
    match answer {
        StoreAnswer::Committed { result: Ok(()), .. } => {
            let us = started.elapsed().as_micros() as u64;
            c.commits += 1;
            c.commit_us_total += us;
            c.commit_us_max = c.commit_us_max.max(us);
        }
        StoreAnswer::Committed {
            result: Err(e),
            batch,
        } => error!("commit of batch {batch} failed: {e}"),
        StoreAnswer::Loaded { .. }
        | StoreAnswer::Found { .. }
        | StoreAnswer::Searched { .. }
        | StoreAnswer::Published { .. }
        | StoreAnswer::Claimed { .. }
        | StoreAnswer::Held { .. } => {}
    }
}
