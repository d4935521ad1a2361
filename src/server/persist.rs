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
//! Read next: `hub::port` (the vocabulary), `store::execute`.

use std::time::Instant;

use log::error;

use super::metrics::Counters;
use super::Server;
use crate::hub::port::{StoreAnswer, StoreOp};
use crate::hub::{Hub, Now};
use crate::store::{self, Store};

impl Server {
    /// Carries out every store operation the hub has asked for so far.
    pub(super) fn persist(&mut self) {
        let Server {
            hub,
            store,
            store_ops,
            counters,
            wall,
            ..
        } = self;
        run(hub, &mut **store, store_ops, counters, *wall);
    }

    /// Ends the turn's batch and stores it (with anything else asked for).
    pub(super) fn commit(&mut self) {
        self.hub.close_batch();
        self.persist();
    }
}

/// Carries out every store operation the hub has asked for so far, in
/// order, and hands each answer back. The shell calls this right after it
/// hands the hub a request (so with SQLite a client never waits for its
/// read past that request, as if the hub had called the store itself) and
/// before it drains the hub's effects; `close_batch` first makes the
/// turn's messages one of the operations. `ops` is reused between calls.
pub(super) fn run(
    hub: &mut Hub,
    store: &mut dyn Store,
    ops: &mut Vec<StoreOp>,
    counters: &mut Counters,
    now: Now,
) {
    while hub.has_store_ops() {
        hub.take_store_ops(ops);
        for op in ops.drain(..) {
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
        StoreAnswer::Loaded { .. } => {}
    }
}
