//! The sums of a group of requests, which are the summed columns of `rollups_hourly`: one
//! table of them ([`columns`]) gives the batch writer its values and upsert, the rollup
//! queries their `SUM`s and the raw-record queries (the partial hours) the same sums over
//! `requests`.

use std::sync::LazyLock;

use entities::requests;
use sea_orm::{FromQueryResult, Value};

use super::histogram::{self, Histogram, BUCKETS, LATENCY_PREFIX, TTFB_PREFIX};
use super::Outcome;

/// The error kind of a request the sanitizer refused (`GatewayError::ComplianceBlocked`).
pub const SANITIZER_BLOCKED_KIND: &str = "compliance_blocked";
/// The error kind of a request refused for a spent budget (`GatewayError::BudgetExhausted`).
pub const BUDGET_REFUSED_KIND: &str = "insufficient_quota";
/// The error kind of a request refused past an `rpm` or `tpm` (`GatewayError::RateLimited`).
pub const RATE_LIMITED_KIND: &str = "rate_limit_exceeded";
/// `route_decided_by` of a request routed under its profile's `on_budget_low` profile.
const BUDGET_LOW_DECIDED_BY: &str = crate::router::DecidedBy::BudgetLow.as_str();

/// Sums of one group of requests.
#[derive(Debug, Clone, Default, PartialEq, FromQueryResult, serde::Serialize, utoipa::ToSchema)]
pub struct Sums {
    pub requests: i64,
    /// Requests that ended in an error.
    pub errors: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_input_tokens: i64,
    pub cache_write_tokens: i64,
    /// Sum over priced requests; see `unpriced_requests`.
    pub cost_usd: f64,
    /// Requests of a model without a known price: their cost is not in `cost_usd`.
    #[serde(rename = "unpriced_requests")]
    pub unpriced: i64,
    /// Requests whose tokens were estimated (the provider reported no usage).
    #[serde(rename = "estimated_requests")]
    pub estimated: i64,
    #[serde(skip)]
    pub latency_ms_sum: i64,
    /// Requests whose outcome is `mitigated` (an attempt failed, a later one succeeded).
    #[serde(skip)]
    pub mitigated: i64,
    /// Requests with at least one sanitizer finding.
    #[serde(skip)]
    pub sanitized: i64,
    /// Requests the sanitizer refused.
    #[serde(skip)]
    pub sanitizer_blocked: i64,
    /// Requests from which an open circuit breaker took at least one target.
    #[serde(skip)]
    pub breaker_steered: i64,
    #[serde(skip)]
    pub ttfb_ms_sum: i64,
    /// Requests with a time to first byte.
    #[serde(skip)]
    pub ttfb_count: i64,
    /// Requests refused for a spent budget.
    #[serde(skip)]
    pub budget_refused: i64,
    /// Requests refused past a rate limit (`rpm` or `tpm`).
    #[serde(skip)]
    pub rate_limited: i64,
    /// Requests routed under a cheaper profile because a budget ran low.
    #[serde(skip)]
    pub budget_rerouted: i64,
    #[serde(skip)]
    #[sea_orm(nested(prefix = "lat_"))]
    pub latency: Histogram,
    #[serde(skip)]
    #[sea_orm(nested(prefix = "ttfb_"))]
    pub ttfb: Histogram,
}

impl Sums {
    /// Adds another group's sums.
    pub fn add(&mut self, other: &Sums) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cached_input_tokens += other.cached_input_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
        self.cost_usd += other.cost_usd;
        self.unpriced += other.unpriced;
        self.estimated += other.estimated;
        self.latency_ms_sum += other.latency_ms_sum;
        self.mitigated += other.mitigated;
        self.sanitized += other.sanitized;
        self.sanitizer_blocked += other.sanitizer_blocked;
        self.breaker_steered += other.breaker_steered;
        self.ttfb_ms_sum += other.ttfb_ms_sum;
        self.ttfb_count += other.ttfb_count;
        self.budget_refused += other.budget_refused;
        self.rate_limited += other.rate_limited;
        self.budget_rerouted += other.budget_rerouted;
        self.latency.add(&other.latency);
        self.ttfb.add(&other.ttfb);
    }

    /// The sums of one record: what each column's `per_record` SQL gives for it.
    pub fn of(r: &requests::Model) -> Self {
        let mut latency = Histogram::default();
        latency.record(r.latency_ms);
        let mut ttfb = Histogram::default();
        if let Some(ms) = r.ttfb_ms {
            ttfb.record(ms);
        }
        Self {
            requests: 1,
            errors: i64::from(r.outcome == Outcome::Error.as_str()),
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            cached_input_tokens: r.cached_input_tokens,
            cache_write_tokens: r.cache_write_tokens,
            cost_usd: r.cost_usd.unwrap_or(0.0),
            unpriced: i64::from(!r.priced),
            estimated: i64::from(r.usage_estimated),
            latency_ms_sum: r.latency_ms,
            mitigated: i64::from(r.outcome == Outcome::Mitigated.as_str()),
            sanitized: i64::from(r.sanitizer_findings.is_some()),
            sanitizer_blocked: i64::from(r.error_kind.as_deref() == Some(SANITIZER_BLOCKED_KIND)),
            breaker_steered: i64::from(r.breaker_skips > 0),
            ttfb_ms_sum: r.ttfb_ms.unwrap_or(0),
            ttfb_count: i64::from(r.ttfb_ms.is_some()),
            budget_refused: i64::from(r.error_kind.as_deref() == Some(BUDGET_REFUSED_KIND)),
            rate_limited: i64::from(r.error_kind.as_deref() == Some(RATE_LIMITED_KIND)),
            budget_rerouted: i64::from(
                r.route_decided_by.as_deref() == Some(BUDGET_LOW_DECIDED_BY),
            ),
            latency,
            ttfb,
        }
    }

    /// Appends the values in [`columns`] order.
    pub fn push_values(&self, values: &mut Vec<Value>) {
        values.extend(FLAT.iter().map(|c| (c.value)(self)));
        for histogram in [&self.latency, &self.ttfb] {
            values.extend(histogram.0.iter().map(|n| Value::from(*n)));
        }
    }

    /// The mean latency (0 without requests).
    pub fn avg_latency_ms(&self) -> f64 {
        if self.requests > 0 {
            self.latency_ms_sum as f64 / self.requests as f64
        } else {
            0.0
        }
    }

    /// The mean time to first byte of the requests that have one (None without any).
    pub fn avg_ttfb_ms(&self) -> Option<f64> {
        (self.ttfb_count > 0).then(|| self.ttfb_ms_sum as f64 / self.ttfb_count as f64)
    }
}

/// A summed column whose name is a field of [`Sums`].
struct Flat {
    name: &'static str,
    /// Each record's share, as SQL over `requests` (`sanitizer_findings` is NULL unless the
    /// sanitizer found something: the meter sets it for findings only).
    per_record: &'static str,
    /// A float (`DOUBLE PRECISION`), else a `BIGINT`.
    float: bool,
    value: fn(&Sums) -> Value,
}

const FLAT: [Flat; 19] = [
    Flat {
        name: "requests",
        per_record: "1",
        float: false,
        value: |s| s.requests.into(),
    },
    Flat {
        name: "errors",
        per_record: "CASE WHEN outcome = 'error' THEN 1 ELSE 0 END",
        float: false,
        value: |s| s.errors.into(),
    },
    Flat {
        name: "input_tokens",
        per_record: "input_tokens",
        float: false,
        value: |s| s.input_tokens.into(),
    },
    Flat {
        name: "output_tokens",
        per_record: "output_tokens",
        float: false,
        value: |s| s.output_tokens.into(),
    },
    Flat {
        name: "cached_input_tokens",
        per_record: "cached_input_tokens",
        float: false,
        value: |s| s.cached_input_tokens.into(),
    },
    Flat {
        name: "cache_write_tokens",
        per_record: "cache_write_tokens",
        float: false,
        value: |s| s.cache_write_tokens.into(),
    },
    Flat {
        name: "cost_usd",
        per_record: "COALESCE(cost_usd, 0)",
        float: true,
        value: |s| s.cost_usd.into(),
    },
    Flat {
        name: "unpriced",
        per_record: "CASE WHEN priced THEN 0 ELSE 1 END",
        float: false,
        value: |s| s.unpriced.into(),
    },
    Flat {
        name: "estimated",
        per_record: "CASE WHEN usage_estimated THEN 1 ELSE 0 END",
        float: false,
        value: |s| s.estimated.into(),
    },
    Flat {
        name: "latency_ms_sum",
        per_record: "latency_ms",
        float: false,
        value: |s| s.latency_ms_sum.into(),
    },
    Flat {
        name: "mitigated",
        per_record: "CASE WHEN outcome = 'mitigated' THEN 1 ELSE 0 END",
        float: false,
        value: |s| s.mitigated.into(),
    },
    Flat {
        name: "sanitized",
        per_record: "CASE WHEN sanitizer_findings IS NULL THEN 0 ELSE 1 END",
        float: false,
        value: |s| s.sanitized.into(),
    },
    Flat {
        name: "sanitizer_blocked",
        // SANITIZER_BLOCKED_KIND (a test holds the two together).
        per_record: "CASE WHEN error_kind = 'compliance_blocked' THEN 1 ELSE 0 END",
        float: false,
        value: |s| s.sanitizer_blocked.into(),
    },
    Flat {
        name: "breaker_steered",
        per_record: "CASE WHEN breaker_skips > 0 THEN 1 ELSE 0 END",
        float: false,
        value: |s| s.breaker_steered.into(),
    },
    Flat {
        name: "ttfb_ms_sum",
        per_record: "COALESCE(ttfb_ms, 0)",
        float: false,
        value: |s| s.ttfb_ms_sum.into(),
    },
    Flat {
        name: "ttfb_count",
        per_record: "CASE WHEN ttfb_ms IS NULL THEN 0 ELSE 1 END",
        float: false,
        value: |s| s.ttfb_count.into(),
    },
    Flat {
        name: "budget_refused",
        // BUDGET_REFUSED_KIND, RATE_LIMITED_KIND, BUDGET_LOW_DECIDED_BY (held together by
        // a test, as the sanitizer's kind is).
        per_record: "CASE WHEN error_kind = 'insufficient_quota' THEN 1 ELSE 0 END",
        float: false,
        value: |s| s.budget_refused.into(),
    },
    Flat {
        name: "rate_limited",
        per_record: "CASE WHEN error_kind = 'rate_limit_exceeded' THEN 1 ELSE 0 END",
        float: false,
        value: |s| s.rate_limited.into(),
    },
    Flat {
        name: "budget_rerouted",
        per_record: "CASE WHEN route_decided_by = 'budget_low' THEN 1 ELSE 0 END",
        float: false,
        value: |s| s.budget_rerouted.into(),
    },
];

/// A summed column of `rollups_hourly`.
#[derive(Debug)]
pub struct SumColumn {
    pub name: String,
    /// Its sum over rollup rows.
    pub of_rollups: String,
    /// Its sum over raw records (`requests`).
    pub of_records: String,
}

/// Every summed column of `rollups_hourly`, in the order [`Sums::push_values`] gives them:
/// the flat sums, then the latency and the time-to-first-byte buckets.
pub fn columns() -> &'static [SumColumn] {
    static COLUMNS: LazyLock<Vec<SumColumn>> = LazyLock::new(|| {
        let sum = |expr: &str, float: bool| {
            let ty = if float { "DOUBLE PRECISION" } else { "BIGINT" };
            format!("CAST(SUM({expr}) AS {ty})")
        };
        let mut columns: Vec<SumColumn> = FLAT
            .iter()
            .map(|c| SumColumn {
                name: c.name.to_string(),
                of_rollups: sum(c.name, c.float),
                of_records: sum(c.per_record, c.float),
            })
            .collect();
        for (prefix, value) in [(LATENCY_PREFIX, "latency_ms"), (TTFB_PREFIX, "ttfb_ms")] {
            columns.extend((0..BUCKETS).map(|i| {
                let name = histogram::column(prefix, i);
                SumColumn {
                    of_rollups: sum(&name, false),
                    of_records: sum(&histogram::bucket_sql(value, i), false),
                    name,
                }
            }));
        }
        columns
    });
    &COLUMNS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_has_its_value_and_the_histograms_their_prefixes() {
        let mut values = Vec::new();
        Sums::default().push_values(&mut values);
        assert_eq!(values.len(), columns().len());
        assert_eq!(columns().len(), FLAT.len() + 2 * BUCKETS);
        assert_eq!(columns()[FLAT.len()].name, "lat_b00");
        assert_eq!(columns()[FLAT.len() + BUCKETS].name, "ttfb_b00");
    }

    #[test]
    fn each_flat_value_is_its_own_field() {
        // Distinct figures in every field: each column must give back its own.
        let s = Sums {
            requests: 1,
            errors: 2,
            input_tokens: 3,
            output_tokens: 4,
            cached_input_tokens: 5,
            cache_write_tokens: 6,
            cost_usd: 7.0,
            unpriced: 8,
            estimated: 9,
            latency_ms_sum: 10,
            mitigated: 11,
            sanitized: 12,
            sanitizer_blocked: 13,
            breaker_steered: 14,
            ttfb_ms_sum: 15,
            ttfb_count: 16,
            budget_refused: 17,
            rate_limited: 18,
            budget_rerouted: 19,
            ..Sums::default()
        };
        let json = serde_json::json!({
            "requests": 1, "errors": 2, "input_tokens": 3, "output_tokens": 4,
            "cached_input_tokens": 5, "cache_write_tokens": 6, "cost_usd": 7.0, "unpriced": 8,
            "estimated": 9, "latency_ms_sum": 10, "mitigated": 11, "sanitized": 12,
            "sanitizer_blocked": 13, "breaker_steered": 14, "ttfb_ms_sum": 15, "ttfb_count": 16,
            "budget_refused": 17, "rate_limited": 18, "budget_rerouted": 19,
        });
        for c in &FLAT {
            let expected = &json[c.name];
            let got = match (c.value)(&s) {
                Value::BigInt(Some(n)) => serde_json::json!(n),
                Value::Double(Some(f)) => serde_json::json!(f),
                other => panic!("{}: {other:?}", c.name),
            };
            assert_eq!(&got, expected, "{}", c.name);
        }
    }

    #[test]
    fn the_counted_kinds_are_the_ones_the_sql_counts() {
        for (column, value) in [
            ("sanitizer_blocked", SANITIZER_BLOCKED_KIND),
            ("budget_refused", BUDGET_REFUSED_KIND),
            ("rate_limited", RATE_LIMITED_KIND),
            ("budget_rerouted", BUDGET_LOW_DECIDED_BY),
        ] {
            let flat = FLAT.iter().find(|c| c.name == column);
            assert!(
                flat.is_some_and(|c| c.per_record.contains(&format!("'{value}'"))),
                "{column} counts '{value}'"
            );
        }
    }
}
