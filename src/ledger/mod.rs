//! The cost ledger: one record per proxied request (built by `pipeline::meter`), prices, the crash-safe spool, storage and reports; and the storage of quality signals.

pub mod errors;
pub mod histogram;
pub mod inbox;
pub mod pricing;
pub mod priority;
pub mod record;
pub mod replay;
pub mod report;
pub mod route_replay;
pub mod signal_report;
pub mod signals;
pub mod spool;
mod spool_line;
pub mod spooler;
pub mod store;
pub mod sums;

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
    /// errors view lists every failed attempt), not for every call.
    pub fn attempts_kept(&self) -> &[attempts::Model] {
        if self.attempts.len() > 1 || self.attempts.iter().any(attempt_failed) {
            &self.attempts
        } else {
            &[]
        }
    }
}

/// Whether an upstream attempt failed: the provider answered with an error status, or the
/// attempt has an error kind (no connection, a timeout, an answer that broke off). The errors
/// view (`errors::page`) selects the same attempts.
pub fn attempt_failed(attempt: &attempts::Model) -> bool {
    attempt.error_kind.is_some() || attempt.status.is_some_and(|s| s >= 400)
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use entities::{attempts, requests};

    use super::LedgerRecord;

    fn attempt(n: i32, status: Option<i32>, error_kind: Option<&str>) -> attempts::Model {
        attempts::Model {
            id: 0,
            request_id: "r".into(),
            ts_ms: 1,
            attempt: n,
            provider_id: "openai".into(),
            model: "gpt-4o".into(),
            status,
            error_kind: error_kind.map(str::to_string),
            error_message: None,
            latency_ms: 3,
            mitigated: false,
        }
    }

    fn kept(attempts: Vec<attempts::Model>) -> usize {
        LedgerRecord {
            request: requests::Model::default(),
            attempts,
        }
        .attempts_kept()
        .len()
    }

    #[test]
    fn every_failed_attempt_is_kept_and_a_lone_success_is_not() {
        assert_eq!(kept(vec![attempt(0, Some(200), None)]), 0, "a lone success");
        assert_eq!(kept(vec![attempt(0, None, Some("upstream_connect"))]), 1);
        assert_eq!(
            kept(vec![attempt(0, Some(503), Some("upstream_http_503"))]),
            1
        );
        assert_eq!(
            kept(vec![attempt(0, Some(500), None)]),
            1,
            "an error status without a kind"
        );
        assert_eq!(
            kept(vec![
                attempt(0, None, Some("upstream_timeout")),
                attempt(1, Some(200), None)
            ]),
            2,
            "a failover keeps the attempt that answered too"
        );
    }
}
