//! What every handler can reach: the pipeline of the proxy endpoints and the actors the
//! admin and analytics endpoints ask. Built once by `startup`; each thing is held once.

use std::sync::Arc;
use std::time::Instant;

use actix::Addr;
use arc_swap::ArcSwap;

use crate::actors::cost_ledger::CostLedger;
use crate::actors::project_tracker::ProjectTracker;
use crate::actors::signal_collector::SignalCollector;
use crate::ask::Analyst;
use crate::pipeline::Pipeline;
use crate::signals::SignalFigures;

/// The shared state of the HTTP handlers (the admin gate is app data of its own, see `access`).
pub struct AppState {
    /// The proxy endpoints' stages, with the provider registry, the catalog and the recorder.
    pub pipeline: Pipeline,
    pub ledger: Addr<CostLedger>,
    pub projects: Addr<ProjectTracker>,
    pub signals: Addr<SignalCollector>,
    /// `POST /v1/ask`: its model, its limits and the read-only access to the ledger.
    pub analyst: Analyst,
    /// The evidence of quality signals per provider and model, as last published by the
    /// SignalCollector: what the router's quality scoring reads.
    pub signal_figures: Arc<ArcSwap<SignalFigures>>,
    /// `/metrics` answers without the admin token.
    pub metrics_public: bool,
    pub started_at: Instant,
    pub port: u16,
}
