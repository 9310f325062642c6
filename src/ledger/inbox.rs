//! The ledger's inbox: where meters leave finished records and the spooler thread collects
//! them, without a message or a wake-up per request.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::LedgerRecord;

/// Where meters leave finished records. Recording a request costs one short, uncontended
/// lock — no message and no wake-up per request; the spooler collects the records every few
/// milliseconds (an idle spooler is woken by the first record that arrives).
#[derive(Clone)]
pub struct LedgerInbox {
    shared: Arc<InboxShared>,
}

struct InboxShared {
    records: Mutex<Vec<LedgerRecord>>,
    /// The spooler sleeps until a record arrives.
    idle: AtomicBool,
    spooler: OnceLock<std::thread::Thread>,
    /// The most room kept for the next tick's records.
    room: usize,
}

impl LedgerInbox {
    /// An inbox keeping room for `room` records per collection.
    pub fn new(room: usize) -> Self {
        Self {
            shared: Arc::new(InboxShared {
                records: Mutex::new(Vec::new()),
                idle: AtomicBool::new(false),
                spooler: OnceLock::new(),
                room,
            }),
        }
    }

    /// Leaves a finished request's record for the ledger.
    pub fn record(&self, record: LedgerRecord) {
        let first = {
            let mut records = self
                .shared
                .records
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            records.push(record);
            records.len() == 1
        };
        // Under load the spooler is never idle: this is one load of a flag per request.
        if first && self.shared.idle.load(Ordering::SeqCst) {
            if let Some(spooler) = self.shared.spooler.get() {
                spooler.unpark();
            }
        }
    }

    /// The spooler thread, woken by the first record after it went idle.
    pub(crate) fn attach_spooler(&self, thread: std::thread::Thread) {
        let _ = self.shared.spooler.set(thread);
    }

    /// Sleeps (on the spooler thread) until a record arrives or `timeout` passes.
    pub(crate) fn wait_for_records(&self, timeout: Duration) {
        // `idle` is set before the inbox is looked at, and a meter looks at `idle` after its
        // push: either the spooler sees the record or the meter sees the flag and wakes it.
        self.shared.idle.store(true, Ordering::SeqCst);
        if self.len() == 0 {
            std::thread::park_timeout(timeout);
        }
        self.shared.idle.store(false, Ordering::SeqCst);
    }

    /// Takes every record left so far.
    pub(crate) fn take(&self) -> Vec<LedgerRecord> {
        // The next tick's records arrive at about this tick's rate: leaving room for them
        // spares the request path the reallocations (and copies) of a vector grown from empty.
        // The room is allocated before the lock is taken, so a worker never waits on it.
        let room = Vec::with_capacity(self.len().min(self.shared.room));
        std::mem::replace(
            &mut *self
                .shared
                .records
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
            room,
        )
    }

    pub(crate) fn len(&self) -> usize {
        self.shared.records.lock().map_or(0, |r| r.len())
    }
}
