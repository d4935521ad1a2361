//! Slow jobs off the loop: two fixed helper threads, the one exception to
//! "one thread".
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
//! The other slow job is a password's Argon2id hash (tens of
//! milliseconds and 19 MiB, on purpose: PROTOCOL-2 section 1), for a
//! registration, a login or a password change. The thread also makes the
//! new login token and the hash's salt from the OS's randomness.
//!
//! The two kinds of job run on two threads, because they want opposite
//! priorities. `natter-helper` checkpoints at the loop's own priority: a
//! checkpoint waits on the disk, not the CPU, and one held back lets the
//! WAL grow. `natter-hasher` hashes at nice 19 (`os::lower_priority`), so
//! a storm of logins takes only the CPU the loop leaves over; it keeps one
//! Argon2 working memory for all its hashes (`password::Memory`). Apart,
//! a checkpoint never waits behind a queue of hashes either.
//!
//! Each thread runs its jobs one after the other, in the order they were
//! handed over. One checkpoint at a time: a checkpoint asked for while one
//! is out would only wait behind it, so the loop asks only when none is
//! out. Password jobs are bounded by the hub (`accounts::MAX_JOBS_OUT`).
//!
//! Read next: `store_upkeep` in `persist.rs` (when a checkpoint is asked
//! for), `store::sqlite::Checkpointer` (what the job does).

use std::io;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use std::fs::File;

use mio::Waker;

use super::os::{lower_priority, random_bytes, random_hex};
use crate::hub::port::{PasswordDone, PasswordJob};
use crate::password;
use crate::store::sqlite::{Checkpointed, Checkpointer};
use crate::store::StoreError;

/// A job for the helper thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Job {
    /// Copy the WAL into the database file (`Checkpointer::checkpoint`).
    Checkpoint,
    /// Check and/or hash a password, and make a login token.
    Password(PasswordJob),
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
    /// A password job's answer, for `Hub::password_done`, and how long it
    /// took in microseconds.
    Password { done: PasswordDone, us: u64 },
}

/// A checkpoint SQLite calls busy (it could not take its locks at that
/// instant) is tried this many times, a millisecond apart: the helper may
/// wait, the loop never does.
const BUSY_TRIES: u32 = 20;

/// One helper thread and the channel that feeds it.
struct Worker {
    jobs: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts a thread called `name` doing `run` on each job.
    fn start(
        name: &str,
        outbox: Sender<Done>,
        waker: Arc<Waker>,
        run: impl FnMut(Job) -> Done + Send + 'static,
        nice: bool,
    ) -> io::Result<Worker> {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let thread = thread::Builder::new()
            .name(name.into())
            .spawn(move || work(&inbox, &outbox, &waker, run, nice))?;
        Ok(Worker {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    fn alive(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    fn send(&self, job: Job) -> bool {
        self.alive() && self.jobs.as_ref().is_some_and(|j| j.send(job).is_ok())
    }

    /// Closes the channel and waits for the job in hand to finish (a
    /// checkpoint is never cut off halfway; SQLite would cope, but there is
    /// no need).
    fn stop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The loop's end of the helper threads.
pub(super) struct Helper {
    /// `natter-helper`: checkpoints, at the loop's priority (they wait on
    /// the disk, not the CPU, and a WAL left uncopied grows).
    disk: Worker,
    /// `natter-hasher`: passwords, at nice 19.
    hash: Worker,
    done: Receiver<Done>,
    /// Jobs handed over and not yet reported back.
    running: usize,
    /// A checkpoint is among them.
    checkpointing: bool,
}

impl Helper {
    /// Starts the threads. `checkpointer` is `None` for an in-memory
    /// database (checkpoint jobs then report nothing done).
    pub(super) fn start(checkpointer: Option<Checkpointer>, waker: Waker) -> io::Result<Helper> {
        let (outbox, done) = mpsc::channel::<Done>();
        let waker = Arc::new(waker);
        let mut checkpointer = checkpointer;
        let disk = Worker::start(
            "natter-helper",
            outbox.clone(),
            waker.clone(),
            move |job| match job {
                Job::Checkpoint => checkpoint(checkpointer.as_mut()),
                // Never sent here: `submit` routes passwords to the hasher.
                Job::Password(job) => hash_job(&job, &mut None, &mut password::Memory::new()),
            },
            false,
        )?;
        let mut urandom = File::open("/dev/urandom").ok();
        let mut memory = password::Memory::new();
        let hash = Worker::start(
            "natter-hasher",
            outbox,
            waker,
            move |job| match job {
                // Never sent here: `submit` routes checkpoints to the helper.
                Job::Checkpoint => checkpoint(None),
                Job::Password(job) => hash_job(&job, &mut urandom, &mut memory),
            },
            true,
        )?;
        Ok(Helper {
            disk,
            hash,
            done,
            running: 0,
            checkpointing: false,
        })
    }

    /// Whether no checkpoint is out (or the thread is gone, which `submit`
    /// then says: a thread that died mid-job must not leave the loop
    /// waiting for a report that never comes).
    pub(super) fn idle(&self) -> bool {
        !self.checkpointing || !self.disk.alive()
    }

    /// Jobs handed over and not reported back yet.
    pub(super) fn queued(&self) -> usize {
        self.running
    }

    /// Hands `job` to its thread (checkpoints to `natter-helper`, passwords
    /// to `natter-hasher`); false if that thread is gone (it then stays
    /// gone: the loop carries on without it).
    pub(super) fn submit(&mut self, job: Job) -> bool {
        let checkpoint = job == Job::Checkpoint;
        let sent = if checkpoint {
            self.disk.send(job)
        } else {
            self.hash.send(job)
        };
        if sent {
            self.running += 1;
            self.checkpointing |= checkpoint;
        }
        sent
    }

    /// A finished job, if one is waiting (after a wake-up on `HELPER`).
    pub(super) fn finished(&mut self) -> Option<Done> {
        match self.done.try_recv() {
            Ok(done) => {
                self.running = self.running.saturating_sub(1);
                if matches!(done, Done::Checkpoint { .. }) {
                    self.checkpointing = false;
                }
                Some(done)
            }
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => None,
        }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.disk.stop();
        self.hash.stop();
    }
}

/// A helper thread: one job after the other until the loop hangs up.
fn work(
    inbox: &Receiver<Job>,
    outbox: &Sender<Done>,
    waker: &Waker,
    mut run: impl FnMut(Job) -> Done,
    nice: bool,
) {
    if nice {
        // Lowest priority: a storm of logins must not take CPU from the
        // loop (docs/BENCHMARKS.md, "Logins beside the chat").
        let _ = lower_priority();
    }
    for job in inbox {
        if outbox.send(run(job)).is_err() {
            return;
        }
        // The loop reads the result on its next turn; if waking fails the
        // result still waits there for the next turn that comes anyway.
        let _ = waker.wake();
    }
}

/// Copies the WAL into the database, trying again while SQLite is busy.
fn checkpoint(checkpointer: Option<&mut Checkpointer>) -> Done {
    let started = Instant::now();
    let mut result = Ok(None);
    if let Some(cp) = checkpointer {
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

/// A password job, timed.
fn hash_job(job: &PasswordJob, urandom: &mut Option<File>, memory: &mut password::Memory) -> Done {
    let started = Instant::now();
    let done = password_job(job, urandom, memory);
    Done::Password {
        done,
        us: started.elapsed().as_micros() as u64,
    }
}

/// Carries out a password job (on the helper thread; on the loop only if
/// the thread is gone): the check first, then the hash, and a fresh token.
pub(super) fn password_job(
    job: &PasswordJob,
    urandom: &mut Option<File>,
    memory: &mut password::Memory,
) -> PasswordDone {
    let matched = job
        .check
        .as_ref()
        .is_none_or(|(pw, phc)| password::verify_in(memory, pw, phc));
    let phc = match &job.hash {
        Some(pw) if matched => Some(match random_bytes(urandom, 16) {
            Some(b) => {
                let mut salt = [0u8; 16];
                salt.copy_from_slice(&b);
                password::hash_in(memory, pw, salt)
            }
            None => Err("no randomness for a salt".to_string()),
        }),
        _ => None,
    };
    PasswordDone {
        id: job.id,
        matched,
        phc,
        token: random_hex(urandom, 16),
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
                author: String::new(),
                reply_to: None,
                mentions: Vec::new(),
                edited_ts: None,
                deleted: false,
                reactions: Vec::new(),
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
        let Done::Checkpoint { result, .. } = wait_done(&mut poll, &mut helper) else {
            panic!("not a checkpoint's report");
        };
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
        let Done::Checkpoint { result, .. } = wait_done(&mut poll, &mut helper) else {
            panic!("not a checkpoint's report");
        };
        assert!(matches!(result, Ok(None)), "{result:?}");
    }

    #[test]
    fn a_password_job_is_checked_hashed_and_reported_through_the_waker() {
        let mut poll = Poll::new().unwrap();
        let waker = Waker::new(poll.registry(), Token(7)).unwrap();
        let mut helper = Helper::start(None, waker).unwrap();
        let job = |id, check: Option<(&str, &str)>, hash: Option<&str>| {
            Job::Password(PasswordJob {
                id,
                check: check.map(|(a, b)| (a.to_string(), b.to_string())),
                hash: hash.map(str::to_string),
            })
        };
        assert!(helper.submit(job(1, None, Some("password1"))));
        assert!(helper.idle(), "password jobs do not hold up checkpoints");
        let Done::Password { done, .. } = wait_done(&mut poll, &mut helper) else {
            panic!("not a password's report");
        };
        let phc = done.phc.expect("hashed").expect("no error");
        assert!(done.matched && phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_eq!(done.token.len(), 32, "128 bits in hex");
        assert!(helper.submit(job(2, Some(("password1", &phc)), Some("password2"))));
        assert!(helper.submit(job(3, Some(("wrong", &phc)), Some("password3"))));
        let mut answers = Vec::new();
        for _ in 0..2 {
            let Done::Password { done, .. } = wait_done(&mut poll, &mut helper) else {
                panic!("not a password's report");
            };
            answers.push(done);
        }
        assert_eq!(answers[0].id, 2);
        assert!(answers[0].matched && answers[0].phc.as_ref().is_some_and(|p| p.is_ok()));
        assert_ne!(answers[0].token, done.token);
        assert_eq!(answers[1].id, 3);
        assert!(
            !answers[1].matched && answers[1].phc.is_none(),
            "no hash after a failed check"
        );
    }
}
