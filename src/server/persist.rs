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

use super::Server;
use crate::hub::port::{StoreAnswer, StoreOp};
use crate::store;

impl Server {
    /// Carries out every store operation the hub has asked for so far. The
    /// loop calls this after each connection's input and before it drains
    /// the hub's effects; `close_batch` first makes the turn's messages one
    /// of them.
    pub(super) fn persist(&mut self) {
        let mut ops = std::mem::take(&mut self.store_ops);
        while self.hub.has_store_ops() {
            self.hub.take_store_ops(&mut ops);
            for op in ops.drain(..) {
                let append = matches!(op, StoreOp::Append(_));
                let started = Instant::now();
                let answer = store::execute(&mut *self.store, op);
                if append {
                    self.count_commit(started, &answer);
                }
                self.hub.answer(self.wall, answer);
            }
        }
        self.store_ops = ops;
    }

    /// Ends the turn's batch and stores it (with anything else asked for).
    pub(super) fn commit(&mut self) {
        self.hub.close_batch();
        self.persist();
    }

    fn count_commit(&mut self, started: Instant, answer: &StoreAnswer) {
        match answer {
            StoreAnswer::Committed { result: Ok(()), .. } => {
                let us = started.elapsed().as_micros() as u64;
                let c = &mut self.counters;
                c.commits += 1;
                c.commit_us_total += us;
                c.commit_us_max = c.commit_us_max.max(us);
            }
            StoreAnswer::Committed {
                result: Err(e),
                batch,
            } => {
                error!("commit of batch {batch} failed: {e}");
            }
            StoreAnswer::Loaded { .. } => {}
        }
    }
}
