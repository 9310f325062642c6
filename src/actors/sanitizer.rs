//! Sanitizer: scans what a provider would receive, on a pool of threads of its own (a
//! `SyncArbiter`) for large bodies, so that scanning never stalls the HTTP workers.

use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;

use crate::error::GatewayError;
use crate::sanitizer::{Sanitizer, ScanOutcome};

/// One scanning thread.
pub struct SanitizerWorker {
    engine: Arc<Sanitizer>,
}

impl Actor for SanitizerWorker {
    type Context = SyncContext<Self>;
}

/// Scans a request body.
#[derive(Message)]
#[rtype(result = "ScanOutcome")]
pub struct ScanPrompt(pub Bytes);

impl Handler<ScanPrompt> for SanitizerWorker {
    type Result = MessageResult<ScanPrompt>;

    fn handle(&mut self, msg: ScanPrompt, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.engine.scan_body(&msg.0))
    }
}

/// What the request path holds: the engine, for small bodies scanned in place (a few
/// microseconds, less than a hand-off to another thread would cost), and the pool for the rest.
#[derive(Clone)]
pub struct SanitizerHandle {
    engine: Arc<Sanitizer>,
    pool: Addr<SanitizerWorker>,
    inline_limit: usize,
}

impl SanitizerHandle {
    /// Starts the pool, one thread per core; must run inside an actix system.
    pub fn start(engine: Sanitizer, inline_limit: usize) -> Self {
        let engine = Arc::new(engine);
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let for_pool = engine.clone();
        let pool = SyncArbiter::start(threads, move || SanitizerWorker {
            engine: for_pool.clone(),
        });
        Self {
            engine,
            pool,
            inline_limit,
        }
    }

    /// Scans a body where it costs least.
    pub async fn scan(&self, body: Bytes) -> Result<ScanOutcome, GatewayError> {
        if body.len() <= self.inline_limit {
            return Ok(self.engine.scan_body(&body));
        }
        self.pool
            .send(ScanPrompt(body))
            .await
            .map_err(|e| GatewayError::Internal {
                message: format!("failed to reach the sanitizer: {e}"),
            })
    }
}
