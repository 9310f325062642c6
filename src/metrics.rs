//! Prometheus metrics of one gateway: requests, latency, gateway overhead, upstream errors,
//! failovers, tokens, cost, the ledger's queue, writes and spool, sanitizer findings.

use prometheus::{
    CounterVec, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Latency buckets in seconds, from 50 µs (gateway overhead) to 10 minutes (long generations).
const LATENCY_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// Every metric the gateway exports, registered in a registry of its own (no globals, so
/// several gateways can live in one process).
pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub request_duration: HistogramVec,
    pub ttfb: HistogramVec,
    pub overhead: Histogram,
    pub upstream_errors: IntCounterVec,
    pub failovers: IntCounterVec,
    pub breaker_skips: IntCounterVec,
    pub breaker_state: IntGaugeVec,
    pub routed: IntCounterVec,
    pub connection_wait: HistogramVec,
    pub tokens: IntCounterVec,
    pub cost_usd: CounterVec,
    pub ledger_queue: IntGauge,
    pub ledger_write: Histogram,
    pub ledger_write_errors: IntCounterVec,
    pub ledger_spooled: IntCounter,
    pub ledger_spool_bytes: IntGauge,
    pub ledger_spool_errors: IntCounter,
    pub sanitizer_findings: IntCounterVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn histogram(name: &str, help: &str) -> HistogramOpts {
    HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec())
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("llm_gateway".into()), None)?;
        let metrics = Self {
            requests: IntCounterVec::new(
                Opts::new("requests_total", "Proxied requests by endpoint, provider, model and HTTP status"),
                &["endpoint", "provider", "model", "status"],
            )?,
            request_duration: HistogramVec::new(
                histogram("request_duration_seconds", "Time from request to the last byte of the answer"),
                &["endpoint", "provider", "status"],
            )?,
            ttfb: HistogramVec::new(
                histogram("time_to_first_byte_seconds", "Time from request to the first byte of the answer"),
                &["endpoint", "provider"],
            )?,
            overhead: Histogram::with_opts(histogram(
                "overhead_seconds",
                "Time spent in the gateway itself, excluding waiting for the upstream (x-gateway-overhead-ms)",
            ))?,
            upstream_errors: IntCounterVec::new(
                Opts::new("upstream_errors_total", "Failed upstream attempts by provider and error kind"),
                &["provider", "kind"],
            )?,
            failovers: IntCounterVec::new(
                Opts::new("failovers_total", "Requests moved to another provider after a failed attempt, by the provider that failed"),
                &["provider"],
            )?,
            breaker_skips: IntCounterVec::new(
                Opts::new("breaker_skips_total", "Targets skipped because their circuit breaker was open, by provider"),
                &["provider"],
            )?,
            breaker_state: IntGaugeVec::new(
                Opts::new("breaker_state", "Circuit breaker state (0 closed, 1 half-open, 2 open) by provider, and by model where a model's own breaker exists (model \"\" is the provider's)"),
                &["provider", "model"],
            )?,
            routed: IntCounterVec::new(
                Opts::new("routed_requests_total", "Requests the router routed, by profile and the rank of the target that answered (0: the primary)"),
                &["profile", "rank"],
            )?,
            connection_wait: HistogramVec::new(
                histogram("upstream_connection_wait_seconds", "Time requests waited for one of a provider's max_connections (only requests that had to wait are counted)"),
                &["provider"],
            )?,
            tokens: IntCounterVec::new(
                Opts::new("tokens_total", "Tokens by provider, model and type (input, output, cached_input, cache_write)"),
                &["provider", "model", "type"],
            )?,
            cost_usd: CounterVec::new(
                Opts::new("cost_usd_total", "Cost in USD of priced requests by provider and model"),
                &["provider", "model"],
            )?,
            ledger_queue: IntGauge::new("ledger_queue_depth", "Ledger records waiting to be written")?,
            ledger_write: Histogram::with_opts(histogram("ledger_write_seconds", "Time to write one ledger batch"))?,
            ledger_write_errors: IntCounterVec::new(
                Opts::new("ledger_write_errors_total", "Failed ledger batch writes (records are kept and retried)"),
                &["database"],
            )?,
            ledger_spooled: IntCounter::new("ledger_spooled_records_total", "Ledger records appended to the spool")?,
            ledger_spool_bytes: IntGauge::new("ledger_spool_bytes", "Bytes in the ledger's spool files (deleted once their records are written)")?,
            ledger_spool_errors: IntCounter::new("ledger_spool_errors_total", "Failed appends to the ledger's spool (those records are held in memory only)")?,
            sanitizer_findings: IntCounterVec::new(
                Opts::new("sanitizer_findings_total", "Sanitizer findings by kind"),
                &["kind"],
            )?,
            registry,
        };
        let r = &metrics.registry;
        r.register(Box::new(metrics.requests.clone()))?;
        r.register(Box::new(metrics.request_duration.clone()))?;
        r.register(Box::new(metrics.ttfb.clone()))?;
        r.register(Box::new(metrics.overhead.clone()))?;
        r.register(Box::new(metrics.upstream_errors.clone()))?;
        r.register(Box::new(metrics.failovers.clone()))?;
        r.register(Box::new(metrics.breaker_skips.clone()))?;
        r.register(Box::new(metrics.breaker_state.clone()))?;
        r.register(Box::new(metrics.routed.clone()))?;
        r.register(Box::new(metrics.connection_wait.clone()))?;
        r.register(Box::new(metrics.tokens.clone()))?;
        r.register(Box::new(metrics.cost_usd.clone()))?;
        r.register(Box::new(metrics.ledger_queue.clone()))?;
        r.register(Box::new(metrics.ledger_write.clone()))?;
        r.register(Box::new(metrics.ledger_write_errors.clone()))?;
        r.register(Box::new(metrics.ledger_spooled.clone()))?;
        r.register(Box::new(metrics.ledger_spool_bytes.clone()))?;
        r.register(Box::new(metrics.ledger_spool_errors.clone()))?;
        r.register(Box::new(metrics.sanitizer_findings.clone()))?;
        Ok(metrics)
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}
