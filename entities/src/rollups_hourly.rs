//! Per hour and model/provider/source/project/key label: sums maintained as records land, so stats stay fast.

use sea_orm::entity::prelude::*;
use serde::Serialize;

/// An hourly rollup row. Absent dimensions are stored as '' so that the key is unique.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "rollups_hourly")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub hour_ms: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub model: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub provider_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub source: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub project: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub key_label: String,
    pub requests: i64,
    pub errors: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_input_tokens: i64,
    pub cache_write_tokens: i64,
    pub cost_usd: f64,
    pub unpriced: i64,
    pub estimated: i64,
    pub latency_ms_sum: i64,
    /// Requests whose outcome is `mitigated`: an attempt failed, a later one succeeded.
    pub mitigated: i64,
    /// Requests with at least one sanitizer finding.
    pub sanitized: i64,
    /// Requests the sanitizer refused (`compliance_blocked`).
    pub sanitizer_blocked: i64,
    /// Requests from which an open circuit breaker took at least one target.
    pub breaker_steered: i64,
    /// Sum of the time to first byte of the requests that have one.
    pub ttfb_ms_sum: i64,
    /// Requests with a time to first byte.
    pub ttfb_count: i64,
    /// Requests refused for a spent budget (`insufficient_quota`).
    pub budget_refused: i64,
    /// Requests refused past an `rpm` or `tpm` (`rate_limit_exceeded`).
    pub rate_limited: i64,
    /// Requests routed under their profile's `on_budget_low` profile (`budget_low`).
    pub budget_rerouted: i64,
    // Latency histogram: requests per bucket of `ledger::histogram::BOUNDS_MS` (the last: beyond it).
    pub lat_b00: i64,
    pub lat_b01: i64,
    pub lat_b02: i64,
    pub lat_b03: i64,
    pub lat_b04: i64,
    pub lat_b05: i64,
    pub lat_b06: i64,
    pub lat_b07: i64,
    pub lat_b08: i64,
    pub lat_b09: i64,
    pub lat_b10: i64,
    pub lat_b11: i64,
    pub lat_b12: i64,
    pub lat_b13: i64,
    pub lat_b14: i64,
    pub lat_b15: i64,
    // Time-to-first-byte histogram, the same buckets.
    pub ttfb_b00: i64,
    pub ttfb_b01: i64,
    pub ttfb_b02: i64,
    pub ttfb_b03: i64,
    pub ttfb_b04: i64,
    pub ttfb_b05: i64,
    pub ttfb_b06: i64,
    pub ttfb_b07: i64,
    pub ttfb_b08: i64,
    pub ttfb_b09: i64,
    pub ttfb_b10: i64,
    pub ttfb_b11: i64,
    pub ttfb_b12: i64,
    pub ttfb_b13: i64,
    pub ttfb_b14: i64,
    pub ttfb_b15: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
