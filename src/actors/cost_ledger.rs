//! CostLedger: collects one record per proxied request from its inbox, off the request path, writes them in batches
//! (kept and retried while the database is away), prunes old raw records, and answers the stats queries.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use entities::requests;
use sea_orm::DatabaseConnection;
use tokio::sync::oneshot;

use crate::ledger::store::{self, GroupSums, RecordFilter, Window};
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
pub struct CostLedger {
    db: DatabaseConnection,
    options: LedgerOptions,
    pending: VecDeque<LedgerRecord>,
    writing: bool,
    last_warning: Option<Instant>,
    unpriced_logged: HashSet<String>,
    flush_waiters: Vec<oneshot::Sender<usize>>,
    metrics: Arc<Metrics>,
    inbox: Option<LedgerInbox>,
}

impl CostLedger {
    /// A ledger writing to `db`.
    fn new(db: DatabaseConnection, options: LedgerOptions, metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            inbox: None,
            db,
            options,
            pending: VecDeque::new(),
            writing: false,
            last_warning: None,
            unpriced_logged: HashSet::new(),
            flush_waiters: Vec::new(),
        }
    }

    /// Writes the next batch unless one is being written.
    fn write_next(&mut self, ctx: &mut Context<Self>) {
        if self.writing {
            return;
        }
        if self.pending.is_empty() {
            for waiter in self.flush_waiters.drain(..) {
                let _ = waiter.send(0);
            }
            return;
        }
        self.writing = true;
        let take = self.pending.len().min(self.options.batch_size);
        let batch: Vec<LedgerRecord> = self.pending.drain(..take).collect();
        self.metrics.ledger_queue.set(self.pending.len() as i64);
        let db = self.db.clone();
        let started = Instant::now();
        ctx.spawn(
            async move {
                let result = store::write_batch(&db, &batch).await;
                (batch, result, started.elapsed())
            }
            .into_actor(self)
            .map(|(batch, result, took), actor, ctx| {
                actor.writing = false;
                actor.metrics.ledger_write.observe(took.as_secs_f64());
                match result {
                    Ok(()) => {
                        tracing::debug!(records = batch.len(), took_ms = took.as_millis() as u64, "ledger batch written");
                        actor.last_warning = None;
                        // A backlog (or someone waiting for a flush) goes on at once; otherwise
                        // records gather until the next tick, so that batches stay large.
                        if actor.pending.len() >= actor.options.batch_size || !actor.flush_waiters.is_empty() {
                            actor.write_next(ctx);
                        }
                    }
                    Err(e) => {
                        actor.metrics.ledger_write_errors.with_label_values(&["write"]).inc();
                        let warn = actor.last_warning.is_none_or(|t| t.elapsed() >= WARN_EVERY);
                        if warn {
                            actor.last_warning = Some(Instant::now());
                            tracing::warn!(error = %e, pending = batch.len() + actor.pending.len(), "failed to write ledger records; keeping them to retry");
                        }
                        // Back to the front, in order; retried on the next tick (flush waiters
                        // keep waiting: shutdown bounds the wait).
                        for record in batch.into_iter().rev() {
                            actor.pending.push_front(record);
                        }
                    }
                }
            }),
        );
    }

    /// Moves the inbox's records to the pending queue.
    fn collect(&mut self) {
        let Some(inbox) = self.inbox.clone() else {
            return;
        };
        for record in inbox.take() {
            self.note_unpriced(&record);
            if self.pending.len() >= self.options.max_pending {
                if let Some(dropped) = self.pending.pop_front() {
                    tracing::error!(request_id = %dropped.request.id, max_pending = self.options.max_pending, "ledger backlog full while the database is unreachable: oldest record dropped");
                }
            }
            self.pending.push_back(record);
        }
        self.metrics.ledger_queue.set(self.pending.len() as i64);
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
    /// Starts the ledger writing to `db`; returns its address and the inbox meters record into.
    pub fn launch(
        db: DatabaseConnection,
        options: LedgerOptions,
        metrics: Arc<Metrics>,
    ) -> (Addr<Self>, LedgerInbox) {
        let batch_size = options.batch_size;
        let records = Arc::new(Mutex::new(Vec::new()));
        let shared = records.clone();
        let ledger = Self::create(move |ctx| {
            let mut ledger = Self::new(db, options, metrics);
            ledger.inbox = Some(LedgerInbox {
                records: shared,
                ledger: ctx.address(),
                batch_size,
            });
            ledger
        });
        let inbox = LedgerInbox {
            records,
            ledger: ledger.clone(),
            batch_size,
        };
        (ledger, inbox)
    }
}

impl Actor for CostLedger {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.options.flush_interval, |actor, ctx| {
            actor.collect();
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

/// Where meters leave finished records. Recording a request costs one short, uncontended
/// lock — no message and no wake-up of the ledger's thread per request; the ledger collects
/// the records on its own schedule (every tick, or at once when a batch is full).
#[derive(Clone)]
pub struct LedgerInbox {
    records: Arc<Mutex<Vec<LedgerRecord>>>,
    ledger: Addr<CostLedger>,
    batch_size: usize,
}

impl LedgerInbox {
    /// Leaves a finished request's record for the ledger.
    pub fn record(&self, record: LedgerRecord) {
        let len = {
            let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
            records.push(record);
            records.len()
        };
        if len == self.batch_size {
            self.ledger.do_send(CollectRecords);
        }
    }

    fn take(&self) -> Vec<LedgerRecord> {
        // The next tick's records arrive at about this tick's rate: leaving room for them
        // spares the request path the reallocations (and copies) of a vector grown from empty.
        // The room is allocated before the lock is taken, so a worker never waits on it.
        let room = Vec::with_capacity(self.len().min(self.batch_size));
        std::mem::replace(
            &mut *self.records.lock().unwrap_or_else(|p| p.into_inner()),
            room,
        )
    }

    fn len(&self) -> usize {
        self.records.lock().map_or(0, |r| r.len())
    }
}

/// Collects the inbox now (it holds a full batch).
#[derive(Message)]
#[rtype(result = "()")]
struct CollectRecords;

impl Handler<CollectRecords> for CostLedger {
    type Result = ();

    fn handle(&mut self, _: CollectRecords, ctx: &mut Self::Context) {
        self.collect();
        self.write_next(ctx);
    }
}

/// Writes everything pending; answers once nothing is pending (retrying through database errors).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct FlushLedger;

impl Handler<FlushLedger> for CostLedger {
    type Result = ResponseFuture<usize>;

    fn handle(&mut self, _: FlushLedger, ctx: &mut Self::Context) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.flush_waiters.push(tx);
        self.collect();
        self.write_next(ctx);
        let pending = self.pending.len();
        Box::pin(async move { rx.await.unwrap_or(pending) })
    }
}

/// Records not yet written (for metrics and tests).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct PendingRecords;

impl Handler<PendingRecords> for CostLedger {
    type Result = usize;

    fn handle(&mut self, _: PendingRecords, _: &mut Self::Context) -> usize {
        self.pending.len()
            + usize::from(self.writing)
            + self.inbox.as_ref().map_or(0, LedgerInbox::len)
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
