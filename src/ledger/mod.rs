//! The cost ledger: one record per proxied request (built by `pipeline::meter`), prices, the crash-safe spool, storage and reports.

pub mod inbox;
pub mod pricing;
pub mod priority;
pub mod replay;
pub mod report;
pub mod spool;
mod spool_line;
pub mod spooler;
pub mod store;

use entities::{attempts, requests};

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Error,
    /// An attempt failed and a later one succeeded.
    Mitigated,
}

impl Outcome {
    /// The name stored in the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Mitigated => "mitigated",
        }
    }
}

/// A finished request with its upstream attempts, ready to be written.
#[derive(Debug, Clone)]
pub struct LedgerRecord {
    pub request: requests::Model,
    /// Each upstream try; `id` is assigned by the database.
    pub attempts: Vec<attempts::Model>,
}

impl LedgerRecord {
    /// The attempts the ledger stores. One successful attempt says nothing the request row
    /// does not: attempts are kept for requests that failed over or failed upstream (the
    /// errors view), not for every call.
    pub fn attempts_kept(&self) -> &[attempts::Model] {
        if self.attempts.len() > 1 || self.attempts.iter().any(|a| a.error_kind.is_some()) {
            &self.attempts
        } else {
            &[]
        }
    }
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
