//! Slow jobs off the loop: one helper thread, the one exception to "one
//! thread".
//!
//! Some work can take milliseconds and touches no chat state: copying
//! SQLite's WAL into the database file (a checkpoint syncs two files; on
//! this machine's disk each sync takes milliseconds). Done on the loop, it
//! would hold up every client for that long. So the loop hands such a job
//! to this thread over a channel and goes on; when the job is done the
//! thread sends the result back and wakes the loop through a `mio::Waker`
//! (readiness on the token `HELPER`), and the loop reads the result like
//! any other event. The loop never waits for the thread, and the thread
//! never sees a connection, a room or a message: all chat state stays on
//! the loop's thread. Redis keeps its `fsync`s and slow closes on
//! background threads for the same reason.
//!
//! One job at a time: a checkpoint asked for while one runs would only
//! wait behind it, so the loop asks only when the helper is idle.
//!
//! Read next: `store_upkeep` in `persist.rs` (when a checkpoint is asked
//! for), `store::sqlite::Checkpointer` (what the job does).

use std::io;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use mio::Waker;

use crate::store::sqlite::{Checkpointed, Checkpointer};
use crate::store::StoreError;

/// A job for the helper thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Job {
    /// Copy the WAL into the database file (`Checkpointer::checkpoint`).
    Checkpoint,
}

/// A finished job.
#[derive(Debug)]
pub(super) enum Done {
    /// What the checkpoint copied (`None`: SQLite stayed busy through every
    /// try; the loop asks again later), and how long it took in
    /// microseconds.
    Checkpoint {
        result: Result<Option<Checkpointed>, StoreError>,
        us: u64,
    },
}

/// A checkpoint SQLite calls busy (it could not take its locks at that
/// instant) is tried this many times, a millisecond apart: the helper may
/// wait, the loop never does.
const BUSY_TRIES: u32 = 20;

/// The loop's end of the helper thread.
pub(super) struct Helper {
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    thread: Option<JoinHandle<()>>,
    /// Jobs handed over and not yet reported back.
    running: usize,
}

impl Helper {
    /// Starts the thread. `checkpointer` is `None` for an in-memory
    /// database (checkpoint jobs then report nothing done).
    pub(super) fn start(checkpointer: Option<Checkpointer>, waker: Waker) -> io::Result<Helper> {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (outbox, done) = mpsc::channel::<Done>();
        let waker = Arc::new(waker);
        let thread = thread::Builder::new()
            .name("natter-helper".into())
            .spawn(move || work(checkpointer, &inbox, &outbox, &waker))?;
        Ok(Helper {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
            running: 0,
        })
    }

    /// Whether no job is running (or the thread is gone, which `submit`
    /// then says: a thread that died mid-job must not leave the loop
    /// waiting for a report that never comes).
    pub(super) fn idle(&self) -> bool {
        self.running == 0 || self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Hands `job` over; false if the thread is gone (it then stays gone:
    /// the loop carries on without it).
    pub(super) fn submit(&mut self, job: Job) -> bool {
        let alive = self.thread.as_ref().is_some_and(|t| !t.is_finished());
        let sent = alive && self.jobs.as_ref().is_some_and(|j| j.send(job).is_ok());
        if sent {
            self.running += 1;
        }
        sent
    }

    /// A finished job, if one is waiting (after a wake-up on `HELPER`).
    pub(super) fn finished(&mut self) -> Option<Done> {
        match self.done.try_recv() {
            Ok(done) => {
                self.running = self.running.saturating_sub(1);
                Some(done)
            }
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => None,
        }
    }
}

impl Drop for Helper {
    /// Closes the job channel and waits for the job in hand to finish (a
    /// checkpoint is never cut off halfway; SQLite would cope, but there is
    /// no need).
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The helper thread: one job after the other until the loop hangs up.
fn work(
    mut checkpointer: Option<Checkpointer>,
    inbox: &Receiver<Job>,
    outbox: &Sender<Done>,
    waker: &Waker,
) {
    for job in inbox {
        let started = Instant::now();
        let done = match job {
            Job::Checkpoint => {
                let mut result = Ok(None);
                if let Some(cp) = checkpointer.as_mut() {
                    for _ in 0..BUSY_TRIES {
                        result = cp.checkpoint();
                        if !matches!(result, Ok(None)) {
                            break;
                        }
                        thread::sleep(Duration::from_millis(1));
                    }
                }
                Done::Checkpoint {
                    result,
                    us: started.elapsed().as_micros() as u64,
                }
            }
        };
        if outbox.send(done).is_err() {
            return;
        }
        // The loop reads the result on its next turn; if waking fails the
        // result still waits there for the next turn that comes anyway.
        let _ = waker.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::event::Message;
    use crate::hub::names::RoomName;
    use crate::store::sqlite::SqliteStore;
    use crate::store::Store;
    use mio::{Events, Poll, Token};
    use std::rc::Rc;

    /// Waits on `poll` until the helper's waker fires, then takes the
    /// finished job.
    fn wait_done(poll: &mut Poll, helper: &mut Helper) -> Done {
        let mut events = Events::with_capacity(4);
        for _ in 0..100 {
            if let Some(done) = helper.finished() {
                return done;
            }
            poll.poll(&mut events, Some(Duration::from_millis(100)))
                .unwrap();
        }
        panic!("the helper never reported");
    }

    #[test]
    fn a_checkpoint_is_done_beside_the_loop_and_reported_through_the_waker() {
        let path = std::env::temp_dir().join(format!("natter-helper-{}.db", std::process::id()));
        let path = path.to_str().unwrap().to_string();
        let mut store = SqliteStore::open(&path, || "id".into()).unwrap();
        let room = RoomName::parse("lobby").unwrap();
        let mut seq = 0;
        while store.wal_pages() < 300 {
            seq += 1;
            let m = Message {
                room: room.clone(),
                seq,
                ts: seq,
                from: "a".into(),
                text: "hello".into(),
                action: false,
                image: None,
                account: None,
            };
            store.append(&[Rc::new(m)]).unwrap();
        }
        let mut poll = Poll::new().unwrap();
        let waker = Waker::new(poll.registry(), Token(7)).unwrap();
        let cp = Checkpointer::open(&path).unwrap();
        let mut helper = Helper::start(cp, waker).unwrap();
        assert!(helper.idle());
        assert!(helper.submit(Job::Checkpoint));
        assert!(!helper.idle(), "one job running");
        let Done::Checkpoint { result, .. } = wait_done(&mut poll, &mut helper);
        let done = result.unwrap().expect("not busy: nobody else writes");
        assert!(done.log >= 300 && done.copied == done.log, "{done:?}");
        assert!(helper.idle());
        drop(helper); // joins the thread
        drop(store);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
    }

    #[test]
    fn without_a_file_a_checkpoint_reports_nothing_done() {
        let mut poll = Poll::new().unwrap();
        let waker = Waker::new(poll.registry(), Token(7)).unwrap();
        let mut helper = Helper::start(None, waker).unwrap();
        assert!(helper.submit(Job::Checkpoint));
        let Done::Checkpoint { result, .. } = wait_done(&mut poll, &mut helper);
        assert!(matches!(result, Ok(None)), "{result:?}");
    }
}
