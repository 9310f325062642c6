//! What every handler can reach: the pipeline of the proxy endpoints and the actors the
//! admin and analytics endpoints ask. Built once by `startup`; each thing is held once.

use std::time::Instant;

use actix::Addr;

use crate::actors::cost_ledger::CostLedger;
use crate::actors::project_tracker::ProjectTracker;
use crate::pipeline::Pipeline;

/// The shared state of the HTTP handlers (the admin gate is app data of its own, see `access`).
pub struct AppState {
    /// The proxy endpoints' stages, with the provider registry, the catalog and the recorder.
    pub pipeline: Pipeline,
    pub ledger: Addr<CostLedger>,
    pub projects: Addr<ProjectTracker>,
    /// `/metrics` answers without the admin token.
    pub metrics_public: bool,
    pub started_at: Instant,
    pub port: u16,
}
