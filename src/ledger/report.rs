//! The shapes of the analytics answers, built from group sums and records.

use std::collections::BTreeMap;

use entities::{projects, requests};
use serde::Serialize;

use super::store::{BucketSums, GroupSums};
use super::sums::Sums;

/// The key used for requests that did not name a source, project or key label.
pub const NONE_KEY: &str = "(none)";

/// Usage of one model, provider, source, project or key label.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Breakdown {
    #[serde(flatten)]
    pub sums: Sums,
    /// `priced`, `unpriced` (no request had a price) or `partial`.
    pub pricing: &'static str,
    /// Share of the input tokens read from the provider's prompt cache (cached ÷ input, 0 to
    /// 1): what prompt-cache affinity raises.
    pub cache_read_share: f64,
}

impl Breakdown {
    fn add(&mut self, s: &Sums) {
        self.sums.add(s);
        self.cache_read_share = if self.sums.input_tokens > 0 {
            self.sums.cached_input_tokens as f64 / self.sums.input_tokens as f64
        } else {
            0.0
        };
        self.pricing = match (self.sums.unpriced, self.sums.requests) {
            (0, _) => "priced",
            (u, r) if u == r => "unpriced",
            _ => "partial",
        };
    }
}

/// Latency and time-to-first-byte percentiles, estimated from the hourly rollups' histograms
/// (`ledger::histogram`): linear within the bucket that holds the rank, the bucket past 20 s
/// reported as 20000. Null where there is no sample (no request, or none with a first byte).
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct Percentiles {
    #[schema(required = true)]
    pub latency_ms_p50: Option<f64>,
    #[schema(required = true)]
    pub latency_ms_p95: Option<f64>,
    #[schema(required = true)]
    pub ttfb_ms_p50: Option<f64>,
    #[schema(required = true)]
    pub ttfb_ms_p95: Option<f64>,
}

impl Percentiles {
    /// The percentiles of a group's histograms.
    pub fn of(s: &Sums) -> Self {
        Self {
            latency_ms_p50: s.latency.quantile(0.5),
            latency_ms_p95: s.latency.quantile(0.95),
            ttfb_ms_p50: s.ttfb.quantile(0.5),
            ttfb_ms_p95: s.ttfb.quantile(0.95),
        }
    }
}

/// `GET /v1/stats`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Stats {
    pub since: Option<String>,
    pub until: Option<String>,
    pub total_requests: i64,
    pub successful_requests: i64,
    pub failed_requests: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_input_tokens: i64,
    pub cache_write_tokens: i64,
    pub total_tokens: i64,
    /// Sum over priced requests.
    pub total_cost_usd: f64,
    pub unpriced_requests: i64,
    /// Requests whose tokens were estimated (the provider reported no usage).
    pub estimated_requests: i64,
    pub avg_latency_ms: f64,
    /// Requests whose outcome is `mitigated`: an attempt failed and failover found another
    /// target that answered.
    pub mitigated_requests: i64,
    /// Requests with at least one sanitizer finding (redacted, reported or blocked).
    pub sanitized_requests: i64,
    /// Requests the sanitizer refused (error kind `compliance_blocked`).
    pub sanitizer_blocked_requests: i64,
    /// Requests from which an open circuit breaker took at least one target (`breaker_skips`).
    pub breaker_steered_requests: i64,
    /// Requests refused because a key's or project's budget was spent (429, error kind
    /// `insufficient_quota`).
    pub budget_refused_requests: i64,
    /// Requests refused past a key's or project's `rpm` or `tpm` (429, error kind
    /// `rate_limit_exceeded`).
    pub rate_limited_requests: i64,
    /// Requests routed under their profile's `on_budget_low` profile because a budget had
    /// passed `[limits] budget_low_share` (`route_decided_by` `budget_low`).
    pub budget_rerouted_requests: i64,
    #[serde(flatten)]
    pub percentiles: Percentiles,
    /// Mean time to first byte of the requests that have one; null when none has.
    #[schema(required = true)]
    pub avg_ttfb_ms: Option<f64>,
    pub by_model: BTreeMap<String, Breakdown>,
    pub by_provider: BTreeMap<String, Breakdown>,
    pub by_source: BTreeMap<String, Breakdown>,
    pub by_project: BTreeMap<String, Breakdown>,
    pub by_key_label: BTreeMap<String, Breakdown>,
}

fn key(value: &str) -> String {
    if value.is_empty() {
        NONE_KEY.to_string()
    } else {
        value.to_string()
    }
}

/// Totals and every breakdown over the given groups.
pub fn stats(groups: &[GroupSums], since: Option<String>, until: Option<String>) -> Stats {
    let mut total = Sums::default();
    let mut by: [BTreeMap<String, Breakdown>; 5] = Default::default();
    for g in groups {
        total.add(&g.sums);
        for (map, dim) in by.iter_mut().zip([
            &g.model,
            &g.provider_id,
            &g.source,
            &g.project,
            &g.key_label,
        ]) {
            map.entry(key(dim)).or_default().add(&g.sums);
        }
    }
    let [by_model, by_provider, by_source, by_project, by_key_label] = by;
    Stats {
        since,
        until,
        total_requests: total.requests,
        successful_requests: total.requests - total.errors,
        failed_requests: total.errors,
        input_tokens: total.input_tokens,
        output_tokens: total.output_tokens,
        cached_input_tokens: total.cached_input_tokens,
        cache_write_tokens: total.cache_write_tokens,
        total_tokens: total.input_tokens + total.output_tokens,
        total_cost_usd: total.cost_usd,
        unpriced_requests: total.unpriced,
        estimated_requests: total.estimated,
        avg_latency_ms: total.avg_latency_ms(),
        mitigated_requests: total.mitigated,
        sanitized_requests: total.sanitized,
        sanitizer_blocked_requests: total.sanitizer_blocked,
        breaker_steered_requests: total.breaker_steered,
        budget_refused_requests: total.budget_refused,
        rate_limited_requests: total.rate_limited,
        budget_rerouted_requests: total.budget_rerouted,
        percentiles: Percentiles::of(&total),
        avg_ttfb_ms: total.avg_ttfb_ms(),
        by_model,
        by_provider,
        by_source,
        by_project,
        by_key_label,
    }
}

/// One bucket of `GET /v1/stats/timeseries`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TimeBucket {
    /// Start of the bucket, RFC 3339.
    pub start: String,
    pub requests: i64,
    /// Requests that ended in an error.
    pub errors: i64,
    /// `errors ÷ requests`, 0 to 1 (0 for an empty bucket).
    pub error_rate: f64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// Sum over priced requests.
    pub cost_usd: f64,
    /// Mean latency of the bucket's requests (0 for an empty bucket).
    pub avg_latency_ms: f64,
    #[serde(flatten)]
    pub percentiles: Percentiles,
    /// Requests that failover rescued (outcome `mitigated`).
    pub mitigated: i64,
    /// Requests with at least one sanitizer finding.
    pub sanitized: i64,
    /// Requests the sanitizer refused.
    pub sanitizer_blocked: i64,
    /// Requests from which an open circuit breaker took at least one target.
    pub breaker_steered: i64,
    /// Requests refused for a spent budget.
    pub budget_refused: i64,
    /// Requests refused past a rate limit.
    pub rate_limited: i64,
    /// Requests routed under a cheaper profile because a budget ran low.
    pub budget_rerouted: i64,
}

/// `GET /v1/stats/timeseries`: every bucket of the window, in order, empty ones included.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TimeSeries {
    /// `hour` or `day`.
    pub bucket: &'static str,
    /// Start of the first bucket (the window rounded out to whole buckets).
    pub since: String,
    /// End of the last bucket.
    pub until: String,
    pub buckets: Vec<TimeBucket>,
}

/// Every bucket from `from_ms` to `to_ms` (both on bucket boundaries), zero where no request fell.
pub fn time_series(
    bucket: &'static str,
    bucket_ms: i64,
    from_ms: i64,
    to_ms: i64,
    sums: &[BucketSums],
) -> TimeSeries {
    let mut found = sums.iter().peekable();
    let mut buckets = Vec::new();
    let mut start = from_ms;
    while start < to_ms {
        let mut s = Sums::default();
        while let Some(b) = found.next_if(|b| b.bucket_ms < start + bucket_ms) {
            if b.bucket_ms >= start {
                s.add(&b.sums);
            }
        }
        let per_request = |x: f64| {
            if s.requests > 0 {
                x / s.requests as f64
            } else {
                0.0
            }
        };
        buckets.push(TimeBucket {
            start: rfc3339(start),
            requests: s.requests,
            errors: s.errors,
            error_rate: per_request(s.errors as f64),
            input_tokens: s.input_tokens,
            output_tokens: s.output_tokens,
            cost_usd: s.cost_usd,
            avg_latency_ms: s.avg_latency_ms(),
            percentiles: Percentiles::of(&s),
            mitigated: s.mitigated,
            sanitized: s.sanitized,
            sanitizer_blocked: s.sanitizer_blocked,
            breaker_steered: s.breaker_steered,
            budget_refused: s.budget_refused,
            rate_limited: s.rate_limited,
            budget_rerouted: s.budget_rerouted,
        });
        start += bucket_ms;
    }
    TimeSeries {
        bucket,
        since: rfc3339(from_ms),
        until: rfc3339(to_ms),
        buckets,
    }
}

/// One requester in `GET /v1/sources`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SourceUsage {
    pub source: String,
    #[serde(flatten)]
    pub usage: Breakdown,
    /// Share of requests that did not end in an error, 0 to 1.
    pub success_rate: f64,
    pub by_model: BTreeMap<String, Breakdown>,
}

/// A list answer in OpenAI's shape: `{"object": "list", "data": [...]}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct List<T> {
    /// Always `list`.
    pub object: &'static str,
    pub data: Vec<T>,
}

impl<T> List<T> {
    /// The list of `data`.
    pub fn of(data: Vec<T>) -> Self {
        Self {
            object: "list",
            data,
        }
    }
}

/// Per requester (`x-source`), most requests first.
pub fn sources(groups: &[GroupSums]) -> Vec<SourceUsage> {
    let mut map: BTreeMap<String, (Breakdown, BTreeMap<String, Breakdown>)> = BTreeMap::new();
    for g in groups {
        let entry = map.entry(key(&g.source)).or_default();
        entry.0.add(&g.sums);
        entry.1.entry(key(&g.model)).or_default().add(&g.sums);
    }
    let mut out: Vec<SourceUsage> = map
        .into_iter()
        .map(|(source, (usage, by_model))| SourceUsage {
            source,
            success_rate: success_rate(&usage),
            usage,
            by_model,
        })
        .collect();
    out.sort_by_key(|s| std::cmp::Reverse(s.usage.sums.requests));
    out
}

fn success_rate(b: &Breakdown) -> f64 {
    let s = &b.sums;
    if s.requests == 0 {
        0.0
    } else {
        (s.requests - s.errors) as f64 / s.requests as f64
    }
}

/// One project in `GET /v1/projects`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProjectUsage {
    pub id: String,
    pub first_seen: String,
    pub last_seen: String,
    #[serde(flatten)]
    pub usage: Breakdown,
    pub success_rate: f64,
    pub sources: Vec<String>,
    pub models: Vec<String>,
}

/// Projects with their usage, in the order given (most recently seen first).
pub fn projects(projects: &[projects::Model], groups: &[GroupSums]) -> Vec<ProjectUsage> {
    projects
        .iter()
        .map(|p| {
            let mut usage = Breakdown::default();
            let mut sources = std::collections::BTreeSet::new();
            let mut models = std::collections::BTreeSet::new();
            for g in groups.iter().filter(|g| g.project == p.id) {
                usage.add(&g.sums);
                sources.insert(key(&g.source));
                models.insert(key(&g.model));
            }
            ProjectUsage {
                id: p.id.clone(),
                first_seen: rfc3339(p.first_seen_ms),
                last_seen: rfc3339(p.last_seen_ms),
                success_rate: success_rate(&usage),
                usage,
                sources: sources.into_iter().collect(),
                models: models.into_iter().collect(),
            }
        })
        .collect()
}

/// A record as the API shows it: every ledger field plus its time in RFC 3339, the
/// sanitizer's findings as an object of kinds and counts and the route plan as an array of
/// `provider/model` (the ledger keeps both as JSON text), and the capabilities the request
/// needed as a list of names (the ledger keeps them comma-separated).
#[derive(Debug)]
pub struct RecordView {
    pub timestamp: String,
    pub record: requests::Model,
}

impl RecordView {
    /// The view of a record.
    pub fn of(record: requests::Model) -> Self {
        Self {
            timestamp: rfc3339(record.ts_ms),
            record,
        }
    }
}

impl Serialize for RecordView {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeMap};
        let serde_json::Value::Object(fields) =
            serde_json::to_value(&self.record).map_err(S::Error::custom)?
        else {
            return Err(S::Error::custom("a ledger record serializes as an object"));
        };
        let mut map = serializer.serialize_map(Some(fields.len() + 1))?;
        map.serialize_entry("timestamp", &self.timestamp)?;
        for (name, value) in &fields {
            match (name.as_str(), value) {
                // JSON kept as text: the object of finding kinds, the array of the plan.
                ("sanitizer_findings" | "route_plan", serde_json::Value::String(text)) => {
                    let parsed: serde_json::Value =
                        serde_json::from_str(text).unwrap_or(serde_json::Value::Null);
                    map.serialize_entry(name, &parsed)?;
                }
                ("needs", serde_json::Value::String(text)) => {
                    let needs: Vec<&str> = text.split(',').collect();
                    map.serialize_entry(name, &needs)?;
                }
                _ => map.serialize_entry(name, value)?,
            }
        }
        map.end()
    }
}

/// A page of records.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordPage {
    pub object: &'static str,
    /// The records: every ledger field, `timestamp` (RFC 3339), `sanitizer_findings`,
    /// `needs` (capability names), `route_plan` (`provider/model` in ranked order, or null),
    /// `route_decided_by` (`score`, `load`, `affinity`, `budget_low` or `explicit`) and `breaker_skips`.
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<RecordView>,
    pub limit: u64,
    pub offset: u64,
    /// Whether another page follows (`offset + limit`).
    pub has_more: bool,
}

/// A page from records fetched with one more than `limit` (to learn whether more follow).
pub fn record_page(mut records: Vec<requests::Model>, limit: u64, offset: u64) -> RecordPage {
    let has_more = records.len() as u64 > limit;
    records.truncate(limit as usize);
    RecordPage {
        object: "list",
        data: records.into_iter().map(RecordView::of).collect(),
        limit,
        offset,
        has_more,
    }
}

/// Unix milliseconds as RFC 3339 UTC.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}
