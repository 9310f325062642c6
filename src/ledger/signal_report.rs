//! The shape of `GET /v1/signals`, built from the grouped signals: per model, the counts per
//! kind, the mean outcome with its 95% Wilson interval, breakdowns by provider, routing
//! profile and source, and the trend over time.

use std::collections::BTreeMap;

use serde::Serialize;

use super::report::{rfc3339, NONE_KEY};
use super::signals::{Bucket, SignalGroup};
use crate::signals::SignalKind;

/// z for a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

/// A confidence interval on a mean outcome.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// The 95% Wilson score interval of a mean outcome `mean` over `n` signals, the outcomes
/// taken as a proportion of successes (a score of 0.7 counts as 0.7 of one):
/// `(p + z²/2n ± z·√(p(1−p)/n + z²/4n²)) / (1 + z²/n)` with z = 1.96. Unlike the normal
/// approximation it stays within 0..1 and is wide for a few signals.
pub fn wilson(mean: f64, n: u64) -> Option<Interval> {
    if n == 0 || !mean.is_finite() {
        return None;
    }
    let p = mean.clamp(0.0, 1.0);
    let n = n as f64;
    let z2 = Z95 * Z95;
    let denominator = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denominator;
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denominator;
    Some(Interval {
        low: (center - half).max(0.0),
        high: (center + half).min(1.0),
    })
}

/// Signals per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct KindCounts {
    pub thumbs_up: i64,
    pub thumbs_down: i64,
    pub score: i64,
    pub retry: i64,
    pub bad_format: i64,
    pub tool_error: i64,
    pub accepted: i64,
}

impl KindCounts {
    fn add(&mut self, kind: SignalKind, n: i64) {
        let count = match kind {
            SignalKind::ThumbsUp => &mut self.thumbs_up,
            SignalKind::ThumbsDown => &mut self.thumbs_down,
            SignalKind::Score => &mut self.score,
            SignalKind::Retry => &mut self.retry,
            SignalKind::BadFormat => &mut self.bad_format,
            SignalKind::ToolError => &mut self.tool_error,
            SignalKind::Accepted => &mut self.accepted,
        };
        *count += n;
    }
}

/// The figures of a set of signals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Figures {
    pub signals: i64,
    pub counts: KindCounts,
    /// The mean outcome, 0 to 1 (thumbs_up and accepted 1, a score its value, the other
    /// kinds 0); null without signals.
    pub mean: Option<f64>,
    /// The 95% Wilson score interval of `mean`; null without signals.
    pub ci95: Option<Interval>,
    #[serde(skip)]
    sum: f64,
}

impl Figures {
    fn add(&mut self, kind: SignalKind, n: i64, sum: f64) {
        self.counts.add(kind, n);
        self.signals += n;
        self.sum += sum;
        self.mean = (self.signals > 0).then(|| self.sum / self.signals as f64);
        self.ci95 = self
            .mean
            .and_then(|m| wilson(m, u64::try_from(self.signals).unwrap_or(0)));
    }
}

/// One bucket of a model's trend.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TrendPoint {
    /// Start of the bucket (a whole UTC hour or day), RFC 3339.
    pub start: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// The signals of one model.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ModelSignals {
    #[serde(flatten)]
    pub figures: Figures,
    /// By provider id.
    pub by_provider: BTreeMap<String, Figures>,
    /// By the routing profile of the request (`(none)`: not routed by a profile).
    pub by_profile: BTreeMap<String, Figures>,
    /// By the `source` the signal was reported with (`(none)`: none given).
    pub by_source: BTreeMap<String, Figures>,
    /// Per bucket, oldest first; buckets without signals are left out.
    pub trend: Vec<TrendPoint>,
    #[serde(skip)]
    buckets: BTreeMap<i64, Figures>,
}

/// `GET /v1/signals`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SignalsReport {
    /// Start of the window (when signals were reported), RFC 3339.
    pub since: String,
    /// End of the window; null: now.
    pub until: Option<String>,
    pub bucket: Bucket,
    /// Every signal of the window.
    pub total: Figures,
    /// By model (the model that answered the request).
    pub by_model: BTreeMap<String, ModelSignals>,
}

fn key(text: &str) -> String {
    if text.is_empty() {
        NONE_KEY.to_string()
    } else {
        text.to_string()
    }
}

/// The report of the grouped signals of a window.
pub fn build(
    groups: &[SignalGroup],
    since_ms: i64,
    until_ms: Option<i64>,
    bucket: Bucket,
) -> SignalsReport {
    let mut total = Figures::default();
    let mut by_model: BTreeMap<String, ModelSignals> = BTreeMap::new();
    for g in groups {
        let Some(kind) = SignalKind::parse(&g.signal) else {
            continue;
        };
        total.add(kind, g.n, g.sum);
        let model = by_model.entry(g.model.clone()).or_default();
        model.figures.add(kind, g.n, g.sum);
        for (map, name) in [
            (&mut model.by_provider, &g.provider_id),
            (&mut model.by_profile, &g.route_profile),
            (&mut model.by_source, &g.source),
        ] {
            map.entry(key(name)).or_default().add(kind, g.n, g.sum);
        }
        model
            .buckets
            .entry(g.bucket_ms)
            .or_default()
            .add(kind, g.n, g.sum);
    }
    for model in by_model.values_mut() {
        model.trend = std::mem::take(&mut model.buckets)
            .into_iter()
            .map(|(start, figures)| TrendPoint {
                start: rfc3339(start),
                figures,
            })
            .collect();
    }
    SignalsReport {
        since: rfc3339(since_ms),
        until: until_ms.map(rfc3339),
        bucket,
        total,
        by_model,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-4
    }

    #[test]
    fn the_wilson_interval_matches_the_textbook_figures() {
        // 8 successes of 10: (0.4902, 0.9433), as tables of the Wilson interval give it.
        let i = wilson(0.8, 10).unwrap_or(Interval {
            low: 0.0,
            high: 0.0,
        });
        assert!(close(i.low, 0.4902) && close(i.high, 0.9433), "{i:?}");
        // All of 3: the interval stays below 1 and is wide.
        let i = wilson(1.0, 3).unwrap_or(Interval {
            low: 0.0,
            high: 0.0,
        });
        assert!(close(i.low, 0.4385) && close(i.high, 1.0), "{i:?}");
        // Many signals: narrow around the mean.
        let i = wilson(0.5, 10_000).unwrap_or(Interval {
            low: 0.0,
            high: 1.0,
        });
        assert!(i.high - i.low < 0.02);
        assert_eq!(wilson(0.5, 0), None);
    }

    fn group(
        model: &str,
        provider: &str,
        signal: &str,
        bucket_ms: i64,
        n: i64,
        sum: f64,
    ) -> SignalGroup {
        SignalGroup {
            model: model.into(),
            provider_id: provider.into(),
            route_profile: String::new(),
            source: "ide".into(),
            signal: signal.into(),
            bucket_ms,
            n,
            sum,
        }
    }

    #[test]
    fn groups_add_up_per_model_breakdown_and_bucket() {
        let day = Bucket::Day.ms();
        let groups = [
            group("gpt-4o", "openai", "thumbs_up", 0, 3, 3.0),
            group("gpt-4o", "azure", "thumbs_down", 0, 1, 0.0),
            group("gpt-4o", "openai", "score", day, 2, 0.5),
            group("claude", "anthropic", "retry", day, 1, 0.0),
        ];
        let report = build(&groups, 0, None, Bucket::Day);
        assert_eq!(report.total.signals, 7);
        let gpt = &report.by_model["gpt-4o"];
        assert_eq!(gpt.figures.signals, 6);
        assert_eq!(gpt.figures.counts.thumbs_up, 3);
        assert_eq!(gpt.figures.counts.score, 2);
        assert!(close(gpt.figures.mean.unwrap_or_default(), 3.5 / 6.0));
        assert_eq!(gpt.by_provider["openai"].signals, 5);
        assert_eq!(gpt.by_provider["azure"].mean, Some(0.0));
        assert_eq!(gpt.by_profile["(none)"].signals, 6);
        assert_eq!(gpt.by_source["ide"].signals, 6);
        let trend: Vec<(&str, i64)> = gpt
            .trend
            .iter()
            .map(|p| (p.start.as_str(), p.figures.signals))
            .collect();
        assert_eq!(
            trend,
            vec![
                ("1970-01-01T00:00:00.000Z", 4),
                ("1970-01-02T00:00:00.000Z", 2)
            ]
        );
        assert_eq!(report.by_model["claude"].figures.mean, Some(0.0));
    }
}
