//! The spooler: a thread moving finished records from the ledger's inbox to the spool, then the ledger.
//!
//! Every 5 ms it takes what meters left in the inbox, appends it to the spool in one `write(2)`,
//! and hands it to the ledger to be written to the database.
//! A thread of its own, not the ledger actor: serializing and appending is the same small amount
//! of work per record whether the database is fast, slow or away, and a write to the page cache
//! can still stall (writeback throttling) — neither should delay the ledger's batches or its
//! answers to the stats queries. The request path never waits on it: meters only push into the
//! inbox, as they always have. When no record came for a while, the thread sleeps until the next
//! record arrives (the inbox wakes it), so an idle gateway does not wake 200 times a second.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::Thread;
use std::time::{Duration, Instant};

use actix::{Message, Recipient};
use tokio::sync::oneshot;

use super::inbox::LedgerInbox;
use super::spool::Spool;
use super::LedgerRecord;
use crate::metrics::Metrics;

/// How often the inbox is moved to the spool while records arrive: the most a crash can lose
/// is what meters recorded in the last tick.
pub const TICK: Duration = Duration::from_millis(5);
/// Without a record for this long, the spooler sleeps until the next one.
const IDLE_AFTER: Duration = Duration::from_millis(100);
/// While asleep, it still wakes this often to close and delete written segments.
const IDLE_TICK: Duration = Duration::from_millis(250);
/// The least time between two errors logged about the spool.
const ERROR_EVERY: Duration = Duration::from_secs(10);

/// Records just appended to the spool, numbered from `first`, for the ledger.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Spooled {
    pub first: u64,
    pub records: Vec<LedgerRecord>,
    /// Whether they reached the spool file (else the ledger's memory is their only copy).
    pub on_disk: bool,
}

enum Command {
    /// Spool the inbox now; answers the last sequence number handed out.
    Drain(oneshot::Sender<u64>),
    /// Spool the inbox, close the files and stop; answers the spool.
    Stop(oneshot::Sender<Spool>),
}

/// The ledger's handle on its spooler thread.
pub struct SpoolerHandle {
    commands: mpsc::Sender<Command>,
    thread: Thread,
    written: Arc<AtomicU64>,
    dir: PathBuf,
}

impl SpoolerHandle {
    /// Starts the spooler thread: records go from `inbox` to `spool`, then to `ledger`.
    pub fn start(
        spool: Spool,
        inbox: LedgerInbox,
        ledger: Recipient<Spooled>,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let (commands, receiver) = mpsc::channel();
        let written = Arc::new(AtomicU64::new(spool.last_seq()));
        let dir = spool.dir().to_path_buf();
        let spooler = Spooler {
            spool,
            inbox,
            ledger,
            metrics,
            written: written.clone(),
            last_error: None,
        };
        let thread = std::thread::Builder::new()
            .name("ledger-spool".into())
            .spawn(move || spooler.run(receiver))?
            .thread()
            .clone();
        Ok(Self {
            commands,
            thread,
            written,
            dir,
        })
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every record up to `seq` is in the database: the segments holding only those can go.
    pub fn written(&self, seq: u64) {
        self.written.store(seq, Ordering::Release);
    }

    /// Spools the inbox now; the answer is the last sequence number handed to the ledger
    /// (an error once the spooler has stopped).
    pub fn drain(&self) -> oneshot::Receiver<u64> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Drain(reply));
        answer
    }

    /// Spools the inbox a last time, closes the files and stops; answers the spool.
    pub fn stop(&self) -> oneshot::Receiver<Spool> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Stop(reply));
        answer
    }

    fn send(&self, command: Command) {
        // Once the thread has stopped the command is dropped, and with it the reply: the
        // caller's receiver sees that.
        if self.commands.send(command).is_ok() {
            self.thread.unpark();
        }
    }
}

struct Spooler {
    spool: Spool,
    inbox: LedgerInbox,
    ledger: Recipient<Spooled>,
    metrics: Arc<Metrics>,
    written: Arc<AtomicU64>,
    last_error: Option<Instant>,
}

impl Spooler {
    fn run(mut self, commands: mpsc::Receiver<Command>) {
        self.inbox.attach_spooler(std::thread::current());
        super::priority::lower_this_thread();
        let mut last_record = Instant::now();
        loop {
            loop {
                match commands.try_recv() {
                    Ok(Command::Drain(reply)) => {
                        self.spool_inbox();
                        let _ = reply.send(self.spool.last_seq());
                    }
                    Ok(Command::Stop(reply)) => {
                        self.spool_inbox();
                        self.spool.close();
                        self.metrics
                            .ledger_spool_bytes
                            .set(self.spool.bytes() as i64);
                        let _ = reply.send(self.spool);
                        return;
                    }
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        // The ledger is gone: keep what the inbox holds for the next start.
                        self.spool_inbox();
                        self.spool.close();
                        return;
                    }
                }
            }
            if self.spool_inbox() > 0 {
                last_record = Instant::now();
            }
            if let Err(e) = self.spool.maintain(self.written.load(Ordering::Acquire)) {
                let dir = self.spool.dir().display().to_string();
                self.error(
                    || tracing::warn!(error = %e, %dir, "failed to delete written spool segments"),
                );
            }
            self.metrics
                .ledger_spool_bytes
                .set(self.spool.bytes() as i64);
            if last_record.elapsed() >= IDLE_AFTER {
                self.inbox.wait_for_records(IDLE_TICK);
            } else {
                std::thread::park_timeout(TICK);
            }
        }
    }

    /// Moves the inbox's records to the spool and on to the ledger; returns how many.
    fn spool_inbox(&mut self) -> usize {
        let records = self.inbox.take();
        if records.is_empty() {
            return 0;
        }
        let count = records.len();
        let appended = self.spool.append(&records);
        self.metrics.ledger_spooled.inc_by(count as u64);
        let on_disk = match appended.result {
            Ok(()) => true,
            Err(e) => {
                self.metrics.ledger_spool_errors.inc();
                let dir = self.spool.dir().display().to_string();
                self.error(|| tracing::error!(error = %e, %dir, records = count, "failed to append ledger records to the spool: until it works again, a crash loses the records in memory"));
                false
            }
        };
        self.ledger.do_send(Spooled {
            first: appended.first,
            records,
            on_disk,
        });
        count
    }

    /// Logs through `log` unless an error was logged within `ERROR_EVERY`.
    fn error(&mut self, log: impl FnOnce()) {
        if self.last_error.is_none_or(|t| t.elapsed() >= ERROR_EVERY) {
            self.last_error = Some(Instant::now());
            log();
        }
    }
}
