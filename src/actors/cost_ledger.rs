//! CostLedger: writes the spooled records to the database in batches, prunes, answers stats queries.
//!
//! One record per proxied request comes from the spooler, off the request path; batches go in
//! spool order. While the database is away records are held in memory, past `max_pending` read
//! back from the spool.

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use entities::requests;
use sea_orm::DatabaseConnection;
use tokio::sync::oneshot;

use crate::ledger::errors::{self, ErrorFilter, ErrorsPage};
use crate::ledger::inbox::LedgerInbox;
use crate::ledger::record::{self, RecordDetail};
use crate::ledger::route_replay::{self, PastPage, PastRequest};
use crate::ledger::spool::{self, Cursor, Spool};
use crate::ledger::spooler::{Spooled, SpoolerHandle};
use crate::ledger::store::{self, BucketSums, GroupSums, RecordFilter, Window};
use crate::ledger::{now_ms, LedgerRecord};
use crate::metrics::Metrics;

/// How often old records are pruned when `retention_days` is set.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);
/// How often new database driver threads are given their lower priority.
const DB_PRIORITY_EVERY: Duration = Duration::from_secs(30);
/// The least time between two warnings about an unreachable database.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// How the ledger writes.
#[derive(Debug, Clone)]
pub struct LedgerOptions {
    pub flush_interval: Duration,
    pub batch_size: usize,
    pub max_pending: usize,
    pub retention_days: u32,
}

/// The ledger actor.
///
/// Every record carries its spool sequence number, and batches are written in that order, so
/// the records in the database are always a prefix of the spool: everything up to
/// `written_upto`. The spooler deletes the segments below that mark.
pub struct CostLedger {
    db: DatabaseConnection,
    options: LedgerOptions,
    /// Records to write, by sequence number.
    pending: VecDeque<(u64, LedgerRecord)>,
    /// The first sequence number of the batch being written.
    writing: Option<u64>,
    /// The batch at the front failed once, perhaps after its commit: before it is written
    /// again, the records the database already has are left out.
    recheck: bool,
    /// The next record to take into `pending`.
    next_seq: u64,
    /// The last record the spooler has handed over.
    spooled_upto: u64,
    /// The memory backlog was full: the records from `next_seq` on are in the spool only, and
    /// are read back from it as room frees up.
    on_disk_only: bool,
    reading: bool,
    cursor: Cursor,
    spooler: SpoolerHandle,
    inbox: LedgerInbox,
    last_warning: Option<Instant>,
    unpriced_logged: HashSet<String>,
    /// Each waits until every record up to its sequence number is written.
    flush_waiters: Vec<(u64, oneshot::Sender<usize>)>,
    metrics: Arc<Metrics>,
}

impl CostLedger {
    /// Every record up to this sequence number is in the database (or was lost, logged).
    fn written_upto(&self) -> u64 {
        self.writing
            .or_else(|| self.pending.front().map(|(seq, _)| *seq))
            .unwrap_or(self.next_seq)
            - 1
    }

    /// Records handed over by the spooler and not yet written.
    fn unwritten(&self) -> u64 {
        self.spooled_upto.saturating_sub(self.written_upto())
    }

    /// Publishes the written mark (to the spooler and the metrics) and answers the flush
    /// waiters it satisfies.
    fn advance(&mut self) {
        let written = self.written_upto();
        self.spooler.written(written);
        self.metrics.ledger_queue.set(self.unwritten() as i64);
        if self
            .flush_waiters
            .iter()
            .any(|(target, _)| *target <= written)
        {
            let (done, waiting) = std::mem::take(&mut self.flush_waiters)
                .into_iter()
                .partition(|(target, _)| *target <= written);
            self.flush_waiters = waiting;
            for (_, waiter) in done {
                let _ = waiter.send(0);
            }
        }
    }

    /// Waits until every record up to `target` is written; answers 0 then.
    fn wait_written(&mut self, target: u64, ctx: &mut Context<Self>) -> oneshot::Receiver<usize> {
        let (tx, rx) = oneshot::channel();
        self.flush_waiters.push((target, tx));
        self.write_next(ctx);
        rx
    }

    /// Writes the next batch unless one is being written.
    fn write_next(&mut self, ctx: &mut Context<Self>) {
        self.read_back(ctx);
        if self.writing.is_some() || self.pending.is_empty() {
            self.advance();
            return;
        }
        let take = self.pending.len().min(self.options.batch_size);
        let (seqs, batch): (Vec<u64>, Vec<LedgerRecord>) = self.pending.drain(..take).unzip();
        self.writing = seqs.first().copied();
        let recheck = self.recheck;
        let db = self.db.clone();
        let started = Instant::now();
        ctx.spawn(
            async move {
                let result = if recheck {
                    store::write_unwritten(&db, &batch).await.map(|_| ())
                } else {
                    store::write_batch(&db, &batch).await
                };
                (seqs, batch, result, started.elapsed())
            }
            .into_actor(self)
            .map(|(seqs, batch, result, took), actor, ctx| {
                actor.writing = None;
                actor.metrics.ledger_write.observe(took.as_secs_f64());
                match result {
                    Ok(()) => {
                        tracing::debug!(records = batch.len(), took_ms = took.as_millis() as u64, "ledger batch written");
                        actor.last_warning = None;
                        actor.recheck = false;
                        actor.advance();
                        // A backlog (or someone waiting for a flush) goes on at once; otherwise
                        // records gather until the next tick, so that batches stay large.
                        if actor.pending.len() >= actor.options.batch_size
                            || actor.on_disk_only
                            || !actor.flush_waiters.is_empty()
                        {
                            actor.write_next(ctx);
                        }
                    }
                    Err(e) => {
                        actor.metrics.ledger_write_errors.with_label_values(&["write"]).inc();
                        actor.recheck = true;
                        // Back to the front, in order; retried on the next tick (flush waiters
                        // keep waiting: shutdown bounds the wait).
                        for entry in seqs.into_iter().zip(batch).rev() {
                            actor.pending.push_front(entry);
                        }
                        let warn = actor.last_warning.is_none_or(|t| t.elapsed() >= WARN_EVERY);
                        if warn {
                            actor.last_warning = Some(Instant::now());
                            tracing::warn!(error = %e, pending = actor.unwritten(), "failed to write ledger records; keeping them to retry (they are in the spool)");
                        }
                        actor.advance();
                    }
                }
            }),
        );
    }

    /// Reads records back from the spool when they are there only and memory has room again.
    fn read_back(&mut self, ctx: &mut Context<Self>) {
        if !self.on_disk_only || self.reading {
            return;
        }
        let room = self.options.max_pending.saturating_sub(self.pending.len());
        // A batch at a time, not a record at a time as room frees up.
        if room < self.options.batch_size.min(self.options.max_pending) {
            return;
        }
        let limit = room.min(self.options.batch_size);
        if self.cursor.next() != self.next_seq {
            self.cursor = Cursor::from(self.next_seq);
        }
        let dir = self.spooler.dir().to_path_buf();
        let cursor = self.cursor.clone();
        let upto = self.spooled_upto;
        self.reading = true;
        ctx.spawn(
            async move {
                // File reads block: on tokio's blocking pool, not on the actor's thread.
                tokio::task::spawn_blocking(move || spool::read(&dir, &cursor, Some(upto), limit))
                    .await
                    .map_err(std::io::Error::other)
                    .and_then(|read| read)
            }
            .into_actor(self)
            .map(|result, actor, ctx| {
                actor.reading = false;
                match result {
                    Ok(read) => {
                        if read.missing > 0 {
                            tracing::error!(records = read.missing, "ledger records lost: the spool could not be written while the memory backlog was full");
                        }
                        let next = actor.next_seq;
                        actor
                            .pending
                            .extend(read.records.into_iter().filter(|(seq, _)| *seq >= next));
                        actor.next_seq = next.max(read.scanned_to + 1);
                        actor.cursor = read.cursor;
                        if actor.next_seq > actor.spooled_upto {
                            actor.on_disk_only = false;
                            tracing::info!("the ledger has read back every record it left in the spool");
                        }
                        actor.write_next(ctx);
                    }
                    Err(e) => {
                        // Retried on the next tick.
                        tracing::warn!(error = %e, dir = %actor.spooler.dir().display(), "failed to read ledger records back from the spool");
                    }
                }
            }),
        );
    }

    fn note_unpriced(&mut self, record: &LedgerRecord) {
        if record.request.priced {
            return;
        }
        let model = record.request.model_used.clone().unwrap_or_default();
        if self.unpriced_logged.insert(model.clone()) {
            tracing::warn!(%model, provider = record.request.provider_id.as_deref().unwrap_or(""), "model has no known price: its calls are recorded as unpriced until [[pricing]] sets one");
        }
    }
}

impl CostLedger {
    /// Starts the ledger writing to `db`, and its spooler appending to `spool` (replayed
    /// already); returns the ledger's address and the inbox meters record into.
    pub fn launch(
        db: DatabaseConnection,
        options: LedgerOptions,
        metrics: Arc<Metrics>,
        spool: Spool,
    ) -> std::io::Result<(Addr<Self>, LedgerInbox)> {
        let inbox = LedgerInbox::new(options.batch_size);
        let next_seq = spool.last_seq() + 1;
        // The spooler needs the ledger's address and the ledger the spooler's handle: the
        // context is made first, and the actor run in it once both exist.
        let ctx = Context::new();
        let spooler = SpoolerHandle::start(
            spool,
            inbox.clone(),
            ctx.address().recipient(),
            metrics.clone(),
        )?;
        let ledger = ctx.run(Self {
            db,
            options,
            pending: VecDeque::new(),
            writing: None,
            recheck: false,
            next_seq,
            spooled_upto: next_seq - 1,
            on_disk_only: false,
            reading: false,
            cursor: Cursor::from(next_seq),
            spooler,
            inbox: inbox.clone(),
            last_warning: None,
            unpriced_logged: HashSet::new(),
            flush_waiters: Vec::new(),
            metrics,
        });
        Ok((ledger, inbox))
    }
}

impl Actor for CostLedger {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.options.flush_interval, |actor, ctx| {
            actor.write_next(ctx);
        });
        // The pool replaces connections over time, and SQLite's driver a thread with each.
        ctx.run_interval(DB_PRIORITY_EVERY, |_, _| {
            crate::ledger::priority::lower_db_threads();
        });
        if self.options.retention_days > 0 {
            let keep = Duration::from_secs(u64::from(self.options.retention_days) * 86_400);
            ctx.run_interval(RETENTION_EVERY, move |actor, ctx| {
                let db = actor.db.clone();
                let cutoff = now_ms() - keep.as_millis() as i64;
                ctx.spawn(
                    async move {
                        match store::delete_before(&db, cutoff).await {
                            Ok(n) if n > 0 => tracing::info!(
                                rows = n,
                                "pruned ledger records past retention_days"
                            ),
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "failed to prune old ledger records")
                            }
                        }
                    }
                    .into_actor(actor),
                );
            });
        }
    }
}

impl Handler<Spooled> for CostLedger {
    type Result = ();

    fn handle(&mut self, msg: Spooled, ctx: &mut Self::Context) {
        let count = msg.records.len() as u64;
        if count == 0 {
            return;
        }
        self.spooled_upto = self.spooled_upto.max(msg.first + count - 1);
        let mut lost = 0;
        for (seq, record) in (msg.first..).zip(msg.records) {
            self.note_unpriced(&record);
            if seq < self.next_seq {
                // Read back from the spool already.
                continue;
            }
            if !self.on_disk_only
                && seq == self.next_seq
                && self.pending.len() < self.options.max_pending
            {
                self.pending.push_back((seq, record));
                self.next_seq += 1;
                continue;
            }
            if !self.on_disk_only {
                self.on_disk_only = true;
                tracing::warn!(max_pending = self.options.max_pending, dir = %self.spooler.dir().display(), "ledger backlog full while the database is unreachable: further records wait in the spool only, and are read back from it as the database takes them");
            }
            lost += u64::from(!msg.on_disk);
        }
        if lost > 0 {
            tracing::error!(
                records = lost,
                "ledger records lost: neither the spool nor the full memory backlog could hold them"
            );
        }
        if self.pending.len() >= self.options.batch_size || !self.flush_waiters.is_empty() {
            self.write_next(ctx);
        } else {
            self.advance();
        }
    }
}

/// Writes everything recorded so far; answers once it is written (retrying through database
/// errors: the caller bounds the wait).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct FlushLedger;

impl Handler<FlushLedger> for CostLedger {
    type Result = ResponseActFuture<Self, usize>;

    fn handle(&mut self, _: FlushLedger, _: &mut Self::Context) -> Self::Result {
        let drained = self.spooler.drain();
        Box::pin(drained.into_actor(self).then(|target, actor, ctx| {
            let target = target.unwrap_or(actor.spooled_upto);
            let written = actor.wait_written(target, ctx);
            let left = actor.unwritten() as usize;
            async move { written.await.unwrap_or(left) }.into_actor(actor)
        }))
    }
}

/// Stops the ledger at shutdown: the spooler spools the inbox a last time and stops, then the
/// ledger writes what it holds within `within`. What the database did not take stays in the
/// spool, for the next start.
#[derive(Message)]
#[rtype(result = "LedgerStopped")]
pub struct StopLedger {
    pub within: Duration,
}

/// How the ledger stopped.
#[derive(Debug, Clone)]
pub struct LedgerStopped {
    /// Records not written to the database: they are in the spool.
    pub unwritten: u64,
    pub spool_dir: PathBuf,
}

impl Handler<StopLedger> for CostLedger {
    type Result = ResponseActFuture<Self, LedgerStopped>;

    fn handle(&mut self, msg: StopLedger, _: &mut Self::Context) -> Self::Result {
        let stopped = self.spooler.stop();
        Box::pin(async move { stopped.await.ok() }.into_actor(self).then(
            move |spool, actor, ctx| {
                let target = spool.as_ref().map_or(actor.spooled_upto, Spool::last_seq);
                let written = actor.wait_written(target, ctx);
                async move {
                    let _ = tokio::time::timeout(msg.within, written).await;
                    spool
                }
                .into_actor(actor)
                .map(move |spool, actor, ctx| {
                    let written = actor.written_upto();
                    if let Some(mut spool) = spool {
                        if let Err(e) = spool.remove_written(written) {
                            tracing::warn!(error = %e, "failed to delete written spool segments");
                        }
                    }
                    // A write still waiting on the database is dropped here, inside the
                    // runtime: dropped with it after `main` returns, its pooled connection
                    // panics for want of one.
                    ctx.stop();
                    LedgerStopped {
                        unwritten: target.saturating_sub(written),
                        spool_dir: actor.spooler.dir().to_path_buf(),
                    }
                })
            },
        ))
    }
}

/// Records not yet written (for metrics and tests).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct PendingRecords;

impl Handler<PendingRecords> for CostLedger {
    type Result = usize;

    fn handle(&mut self, _: PendingRecords, _: &mut Self::Context) -> usize {
        self.unwritten() as usize + self.inbox.len()
    }
}

/// Sums per model/provider/source/project/key label over a window.
#[derive(Message)]
#[rtype(result = "Result<Vec<GroupSums>, sea_orm::DbErr>")]
pub struct SumUsage(pub Window);

impl Handler<SumUsage> for CostLedger {
    type Result = ResponseFuture<Result<Vec<GroupSums>, sea_orm::DbErr>>;

    fn handle(&mut self, msg: SumUsage, _: &mut Self::Context) -> Self::Result {
        let db = self.db.clone();
        Box::pin(async move { store::group_sums(&db, msg.0).await })
    }
}

/// Sums per hour or day over whole hours, from the rollups: `(from_ms, to_ms, bucket_ms)`.
#[derive(Message)]
#[rtype(result = "Result<Vec<BucketSums>, sea_orm::DbErr>")]
pub struct SumBuckets {
    /// First hour (inclusive), Unix milliseconds on an hour boundary.
    pub from_ms: i64,
    /// Last hour (exclusive), Unix milliseconds on an hour boundary.
    pub to_ms: i64,
    /// An hour or a day, in milliseconds.
    pub bucket_ms: i64,
}

impl Handler<SumBuckets> for CostLedger {
    type Result = ResponseFuture<Result<Vec<BucketSums>, sea_orm::DbErr>>;

    fn handle(&mut self, msg: SumBuckets, _: &mut Self::Context) -> Self::Result {
        let db = self.db.clone();
        Box::pin(
            async move { store::bucket_sums(&db, msg.from_ms, msg.to_ms, msg.bucket_ms).await },
        )
    }
}

/// Lists records matching a filter, most recent first.
#[derive(Message)]
#[rtype(result = "Result<Vec<requests::Model>, sea_orm::DbErr>")]
pub struct ListRecords(pub RecordFilter);

impl Handler<ListRecords> for CostLedger {
    type Result = ResponseFuture<Result<Vec<requests::Model>, sea_orm::DbErr>>;

    fn handle(&mut self, msg: ListRecords, _: &mut Self::Context) -> Self::Result {
        let db = self.db.clone();
        Box::pin(async move { store::records(&db, &msg.0).await })
    }
}

/// Reads one record with its attempts and signals; None when there is no such record.
#[derive(Message)]
#[rtype(result = "Result<Option<RecordDetail>, sea_orm::DbErr>")]
pub struct ReadRecord(pub String);

impl Handler<ReadRecord> for CostLedger {
    type Result = ResponseFuture<Result<Option<RecordDetail>, sea_orm::DbErr>>;

    fn handle(&mut self, msg: ReadRecord, _: &mut Self::Context) -> Self::Result {
        let db = self.db.clone();
        Box::pin(async move { record::read(&db, &msg.0).await })
    }
}

/// Reads a page of past answered requests, for the route replay.
#[derive(Message)]
#[rtype(result = "Result<Vec<PastRequest>, sea_orm::DbErr>")]
pub struct ReadPastRequests(pub PastPage);

impl Handler<ReadPastRequests> for CostLedger {
    type Result = ResponseFuture<Result<Vec<PastRequest>, sea_orm::DbErr>>;

    fn handle(&mut self, msg: ReadPastRequests, _: &mut Self::Context) -> Self::Result {
        let db = self.db.clone();
        Box::pin(async move { route_replay::past_requests(&db, &msg.0).await })
    }
}

/// Lists failed upstream attempts matching a filter, newest first, with their counts.
#[derive(Message)]
#[rtype(result = "Result<ErrorsPage, sea_orm::DbErr>")]
pub struct ListErrors(pub ErrorFilter);

impl Handler<ListErrors> for CostLedger {
    type Result = ResponseFuture<Result<ErrorsPage, sea_orm::DbErr>>;

    fn handle(&mut self, msg: ListErrors, _: &mut Self::Context) -> Self::Result {
        let db = self.db.clone();
        Box::pin(async move { errors::page(&db, &msg.0).await })
    }
}
