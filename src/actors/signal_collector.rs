//! SignalCollector: takes the quality signals clients report (`POST /v1/signals`), writes
//! them in batches off the request path, and keeps the evidence per provider and model that
//! it publishes for the router (`SignalFigures`, an `ArcSwap` read without a message).
//!
//! A signal is taken once per (request, kind, source): the collector knows the signals it
//! holds or wrote lately, the database knows the rest (and its unique index has the last
//! word: the evidence counts only the rows the database took).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use arc_swap::ArcSwap;
use entities::signals;
use sea_orm::{DatabaseConnection, DbErr};
use tokio::sync::oneshot;

use crate::ledger::now_ms;
use crate::ledger::signal_report::{self, SignalsReport};
use crate::ledger::signals::{self as store, SignalFilter, Written};
use crate::signals::recent::{Bounded, Finished, RecentRequests};
use crate::signals::{Evidence, EvidenceTally, SignalFigures, SignalKind, SignalReport};

/// The least time between two warnings about an unreachable database.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// How the collector writes and publishes.
#[derive(Debug, Clone)]
pub struct SignalOptions {
    pub flush_interval: Duration,
    pub batch_size: usize,
    /// Signals held while the database is unreachable, at most; past it new ones get 503.
    pub max_pending: usize,
    /// How often the evidence is republished (when it changed).
    pub publish_interval: Duration,
}

/// The same request, kind and source: one signal.
type SignalKey = (String, SignalKind, String);

/// The collector actor.
pub struct SignalCollector {
    db: DatabaseConnection,
    options: SignalOptions,
    recent: Arc<RecentRequests>,
    /// Signals taken and not yet written, oldest first.
    pending: Vec<signals::Model>,
    writing: bool,
    /// The signals held or written lately (twice `max_pending` of them): a repeat of one is
    /// told at once, without the database.
    seen: Bounded<SignalKey, ()>,
    tally: EvidenceTally,
    published: Arc<ArcSwap<SignalFigures>>,
    /// Each waits until nothing is pending.
    flush_waiters: Vec<oneshot::Sender<()>>,
    last_warning: Option<Instant>,
}

/// What became of a reported signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Taken: it is written with the next batch.
    Accepted,
    /// The same request, kind and source was reported before: nothing changes.
    Duplicate,
}

/// Why a signal was not taken.
#[derive(Debug, thiserror::Error)]
pub enum SignalRefused {
    #[error("no proxied request has id `{0}`")]
    UnknownRequest(String),
    #[error("request `{0}` was not answered by a model")]
    NotAnswered(String),
    #[error("{0} signals wait for the database already")]
    Backlog(usize),
    #[error("failed to look up the request: {0}")]
    Database(#[from] DbErr),
}

impl SignalCollector {
    /// Loads the evidence of the signals stored so far, publishes it into `published`, and
    /// starts the collector.
    pub async fn launch(
        db: DatabaseConnection,
        options: SignalOptions,
        recent: Arc<RecentRequests>,
        published: Arc<ArcSwap<SignalFigures>>,
    ) -> Result<Addr<Self>, DbErr> {
        let mut tally = EvidenceTally::default();
        for sums in store::evidence(&db).await? {
            let n = u32::try_from(sums.n).unwrap_or(u32::MAX);
            tally.add(
                &sums.provider_id,
                &sums.model,
                Evidence { n, sum: sums.sum },
            );
        }
        published.store(Arc::new(tally.publish().unwrap_or_default()));
        let seen = Bounded::new(options.max_pending.saturating_mul(2));
        Ok(Self {
            db,
            options,
            recent,
            pending: Vec::new(),
            writing: false,
            seen,
            tally,
            published,
            flush_waiters: Vec::new(),
            last_warning: None,
        }
        .start())
    }

    fn publish(&mut self) {
        if let Some(figures) = self.tally.publish() {
            self.published.store(Arc::new(figures));
        }
    }

    /// Writes what is pending; the receiver hears once nothing is.
    fn flushed(&mut self, ctx: &mut Context<Self>) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.flush_waiters.push(tx);
        self.write_next(ctx);
        rx
    }

    /// Answers the flush waiters once nothing is pending.
    fn settle(&mut self) {
        if self.pending.is_empty() && !self.writing {
            for waiter in self.flush_waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
    }

    /// Writes the next batch unless one is being written.
    fn write_next(&mut self, ctx: &mut Context<Self>) {
        if self.writing || self.pending.is_empty() {
            self.settle();
            return;
        }
        let take = self.pending.len().min(self.options.batch_size);
        let batch: Vec<signals::Model> = self.pending.drain(..take).collect();
        self.writing = true;
        let db = self.db.clone();
        ctx.spawn(
            async move {
                let result = store::write_batch(&db, &batch).await;
                (batch, result)
            }
            .into_actor(self)
            .map(|(batch, result), actor, ctx| {
                actor.writing = false;
                match result {
                    Ok(written) => {
                        tracing::debug!(signals = written.len(), taken = batch.len(), "signal batch written");
                        actor.last_warning = None;
                        actor.count(&written);
                        actor.write_next(ctx);
                    }
                    Err(e) => {
                        // Back to the front, in order; retried on the next tick.
                        actor.pending.splice(0..0, batch);
                        if actor.last_warning.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                            actor.last_warning = Some(Instant::now());
                            tracing::warn!(error = %e, pending = actor.pending.len(), "failed to write signals; keeping them to retry");
                        }
                    }
                }
            }),
        );
    }

    /// Adds the signals the database took to the evidence.
    fn count(&mut self, written: &[Written]) {
        for w in written {
            if let Some(kind) = SignalKind::parse(&w.signal) {
                let mut evidence = Evidence::default();
                evidence.add(kind.outcome(w.value));
                self.tally.add(&w.provider_id, &w.model, evidence);
            }
        }
    }
}

impl Actor for SignalCollector {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.options.flush_interval, |actor, ctx| {
            actor.write_next(ctx)
        });
        ctx.run_interval(self.options.publish_interval, |actor, _| actor.publish());
    }
}

/// Takes a validated signal: finds its request (the recently finished ones, else the
/// ledger), and holds it for the next batch unless it was reported before.
#[derive(Message)]
#[rtype(result = "Result<Recorded, SignalRefused>")]
pub struct RecordSignal(pub SignalReport);

impl Handler<RecordSignal> for SignalCollector {
    type Result = ResponseActFuture<Self, Result<Recorded, SignalRefused>>;

    fn handle(&mut self, msg: RecordSignal, _: &mut Self::Context) -> Self::Result {
        let report = msg.0;
        let key: SignalKey = (
            report.request_id.clone(),
            report.kind,
            report.source.clone(),
        );
        if self.seen.contains(&key) {
            return Box::pin(fut::ready(Ok(Recorded::Duplicate)));
        }
        if self.pending.len() >= self.options.max_pending {
            return Box::pin(fut::ready(Err(SignalRefused::Backlog(self.pending.len()))));
        }
        let known = self.recent.get(&report.request_id);
        let db = self.db.clone();
        let lookup = async move {
            let finished = match known {
                Some(finished) => finished,
                None => store::finished(&db, &report.request_id)
                    .await?
                    .ok_or_else(|| SignalRefused::UnknownRequest(report.request_id.clone()))?,
            };
            let Finished::Answered(answered) = finished else {
                return Err(SignalRefused::NotAnswered(report.request_id.clone()));
            };
            // Unsure is not stored: the database's unique index still keeps one copy.
            let stored = match store::stored(&db, &report.request_id, report.kind, &report.source)
                .await
            {
                Ok(stored) => stored,
                Err(e) => {
                    tracing::debug!(error = %e, "failed to look for an earlier copy of a signal");
                    false
                }
            };
            Ok((report, answered, stored))
        };
        Box::pin(lookup.into_actor(self).map(move |result, actor, _| {
            let (report, answered, stored) = result?;
            // Looked at again: the same signal may have been taken while this one waited.
            if !actor.seen.insert(key, ()) || stored {
                return Ok(Recorded::Duplicate);
            }
            actor.pending.push(signals::Model {
                id: 0,
                ts_ms: now_ms(),
                request_id: report.request_id,
                signal: report.kind.as_str().to_string(),
                value: report.value,
                comment: report.comment,
                source: report.source,
                provider_id: answered.provider_id.clone(),
                model: answered.model.clone(),
                route_profile: answered.route_profile.clone(),
            });
            Ok(Recorded::Accepted)
        }))
    }
}

/// Writes every signal taken so far; answers once they are written (retrying through
/// database errors: the caller bounds the wait) and the evidence is republished.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FlushSignals;

impl Handler<FlushSignals> for SignalCollector {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: FlushSignals, ctx: &mut Self::Context) -> Self::Result {
        let rx = self.flushed(ctx);
        Box::pin(
            async move {
                let _ = rx.await;
            }
            .into_actor(self)
            .map(|(), actor, _| actor.publish()),
        )
    }
}

/// Stops the collector at shutdown, after writing what it holds within `within`; answers
/// how many signals the database did not take (they are lost: signals have no spool).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct StopSignals {
    pub within: Duration,
}

impl Handler<StopSignals> for SignalCollector {
    type Result = ResponseActFuture<Self, usize>;

    fn handle(&mut self, msg: StopSignals, ctx: &mut Self::Context) -> Self::Result {
        let rx = self.flushed(ctx);
        Box::pin(
            async move {
                let _ = tokio::time::timeout(msg.within, rx).await;
            }
            .into_actor(self)
            .map(|(), actor, ctx| {
                ctx.stop();
                actor.pending.len()
            }),
        )
    }
}

/// The report of `GET /v1/signals`, from the database (so every instance sharing it gives
/// the same answer).
#[derive(Message)]
#[rtype(result = "Result<SignalsReport, DbErr>")]
pub struct ReportSignals(pub SignalFilter);

impl Handler<ReportSignals> for SignalCollector {
    type Result = ResponseFuture<Result<SignalsReport, DbErr>>;

    fn handle(&mut self, msg: ReportSignals, _: &mut Self::Context) -> Self::Result {
        let db = self.db.clone();
        Box::pin(async move {
            let filter = msg.0;
            let groups = store::groups(&db, &filter).await?;
            Ok(signal_report::build(
                &groups,
                filter.window.since_ms.unwrap_or(0),
                filter.window.until_ms,
                filter.bucket,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use entities::requests;

    use super::*;
    use crate::ledger::{store, LedgerRecord};

    const ANSWERED: &str = "0193a6c4-0000-7000-8000-000000000001";
    const RECENT: &str = "0193a6c4-0000-7000-8000-000000000002";

    fn options() -> SignalOptions {
        SignalOptions {
            flush_interval: Duration::from_secs(60),
            batch_size: 100,
            max_pending: 100,
            publish_interval: Duration::from_secs(60),
        }
    }

    fn report(request_id: &str, kind: SignalKind, value: Option<f64>) -> SignalReport {
        SignalReport {
            request_id: request_id.into(),
            kind,
            value,
            comment: None,
            source: String::new(),
        }
    }

    #[actix_rt::test]
    async fn the_evidence_counts_what_the_database_took_and_starts_from_it() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("signals.db").display()
        );
        let db = store::connect(&url).await.unwrap_or_else(|e| panic!("{e}"));
        // One request in the ledger, one finished a moment ago (in the recent index only).
        let record = requests::Model {
            id: ANSWERED.into(),
            provider_id: Some("openai".into()),
            model_used: Some("gpt-4o".into()),
            outcome: "ok".into(),
            ..requests::Model::default()
        };
        store::write_batch(
            &db,
            &[LedgerRecord {
                request: record,
                attempts: Vec::new(),
            }],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let recent = Arc::new(RecentRequests::new(10));
        recent.note(RECENT, Some("anthropic"), Some("claude"), Some("coding"));
        let published = Arc::new(ArcSwap::from_pointee(SignalFigures::default()));
        let collector =
            SignalCollector::launch(db.clone(), options(), recent.clone(), published.clone())
                .await
                .unwrap_or_else(|e| panic!("{e}"));

        let outcomes = [
            (ANSWERED, SignalKind::ThumbsUp, None),
            (ANSWERED, SignalKind::Score, Some(0.25)),
            (ANSWERED, SignalKind::ThumbsUp, None),
            (RECENT, SignalKind::BadFormat, None),
            (RECENT, SignalKind::Accepted, None),
        ];
        let mut answers = Vec::new();
        for (id, kind, value) in outcomes {
            let answer = collector.send(RecordSignal(report(id, kind, value))).await;
            answers.push(answer.ok().and_then(Result::ok));
        }
        use Recorded::{Accepted, Duplicate};
        assert_eq!(
            answers,
            [
                Some(Accepted),
                Some(Accepted),
                Some(Duplicate),
                Some(Accepted),
                Some(Accepted)
            ]
        );
        assert!(
            published.load().is_empty(),
            "nothing is published before it is written"
        );
        let _ = collector.send(FlushSignals).await;
        let figures = published.load();
        assert_eq!(
            figures.get("openai", "gpt-4o"),
            Some(Evidence { n: 2, sum: 1.25 })
        );
        assert_eq!(
            figures.get("anthropic", "claude"),
            Some(Evidence { n: 2, sum: 1.0 })
        );

        // A second collector on the same database starts from its sums, and a repeat that
        // reaches the database is not counted again.
        let again = Arc::new(ArcSwap::from_pointee(SignalFigures::default()));
        let second = SignalCollector::launch(db, options(), recent, again.clone())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            again.load().get("openai", "gpt-4o"),
            Some(Evidence { n: 2, sum: 1.25 })
        );
        let repeat = second
            .send(RecordSignal(report(RECENT, SignalKind::Accepted, None)))
            .await;
        assert_eq!(repeat.ok().and_then(Result::ok), Some(Duplicate));
        let unknown = second
            .send(RecordSignal(report(
                "0193a6c4-0000-7000-8000-00000000ffff",
                SignalKind::Retry,
                None,
            )))
            .await;
        assert!(matches!(unknown, Ok(Err(SignalRefused::UnknownRequest(_)))));
        let _ = second.send(FlushSignals).await;
        assert_eq!(
            again.load().get("anthropic", "claude"),
            Some(Evidence { n: 2, sum: 1.0 })
        );
    }
}
