//! Live figures per provider and model, from the outcomes the meter reports: time to first
//! token and output tokens per second (exponentially weighted moving averages, which the
//! Router uses, and medians of the recent samples of streamed answers), the error rate, and
//! sample counts. The Router actor folds observations in and publishes a
//! [`LiveFigures`] snapshot on an interval; the request path only reads the snapshot.

use std::collections::{HashMap, VecDeque};

use serde::Serialize;

/// Samples kept per provider and model for the medians.
const SAMPLES_KEPT: usize = 256;
/// Attempts kept per provider and model for the error rate.
const OUTCOMES_KEPT: usize = 256;
/// The weight of a new sample in the moving averages: about the last ten samples count, so
/// that a provider that slows down is seen within a few answers.
pub const EWMA_ALPHA: f64 = 0.2;

/// What one finished attempt showed.
#[derive(Debug, Clone, actix::Message)]
#[rtype(result = "()")]
pub struct Observation {
    pub provider: String,
    pub model: String,
    pub failed: bool,
    /// Streamed answers only: milliseconds from the request to the first byte of the answer.
    pub ttft_ms: Option<f64>,
    /// Streamed answers only: output tokens over the time from the first byte to the end
    /// (never the time to first token divided by a token count).
    pub output_tokens_per_s: Option<f64>,
}

/// The live figures of one provider and model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Live {
    /// Median time to first token, ms (None until a streamed answer was seen).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttft_ms_p50: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens_per_s_p50: Option<f64>,
    /// Moving average of the time to first token, ms (what the Router weighs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttft_ms_ewma: Option<f64>,
    /// Moving average of the output rate, tokens/s (what the Router weighs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens_per_s_ewma: Option<f64>,
    /// Share of the recent attempts that failed.
    pub error_rate: f64,
    /// Streamed answers behind the latency medians.
    pub latency_samples: u32,
    /// Attempts behind the error rate.
    pub attempts: u32,
}

/// Every provider and model's live figures, as published.
#[derive(Debug, Clone, Default)]
pub struct LiveFigures {
    /// foldhash: read for every candidate of every routed request.
    by_key: HashMap<String, HashMap<String, Live, Fast>, Fast>,
}

type Fast = foldhash::fast::RandomState;

/// One provider's part of the [`LiveFigures`].
#[derive(Debug, Clone, Copy)]
pub struct ProviderLive<'a>(&'a HashMap<String, Live, Fast>);

impl<'a> ProviderLive<'a> {
    /// The figures of one of the provider's models.
    pub fn get(self, model: &str) -> Option<&'a Live> {
        self.0.get(model)
    }
}

impl LiveFigures {
    /// The figures of a model at a provider.
    pub fn get(&self, provider: &str, model: &str) -> Option<&Live> {
        self.of_provider(provider)?.get(model)
    }

    /// The figures of one provider's models, None when it has none: the router looks the
    /// provider up once for all its candidates.
    pub fn of_provider(&self, provider: &str) -> Option<ProviderLive<'_>> {
        if self.by_key.is_empty() {
            return None;
        }
        self.by_key.get(provider).map(ProviderLive)
    }

    /// A model's figures at every provider that served it.
    pub fn of_model<'a>(&'a self, model: &'a str) -> impl Iterator<Item = (&'a str, &'a Live)> {
        self.by_key
            .iter()
            .filter_map(move |(p, models)| models.get(model).map(|l| (p.as_str(), l)))
    }
}

#[derive(Debug, Default)]
struct Samples {
    ttft: VecDeque<f64>,
    tps: VecDeque<f64>,
    ttft_ewma: Option<f64>,
    tps_ewma: Option<f64>,
    outcomes: VecDeque<bool>,
    failed: u32,
}

fn push<T>(queue: &mut VecDeque<T>, value: T, cap: usize) -> Option<T> {
    let dropped = (queue.len() >= cap).then(|| queue.pop_front()).flatten();
    queue.push_back(value);
    dropped
}

fn ewma(average: &mut Option<f64>, sample: f64) {
    *average = Some(match *average {
        Some(a) => a + EWMA_ALPHA * (sample - a),
        None => sample,
    });
}

fn median(values: &VecDeque<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted: Vec<f64> = values.iter().copied().collect();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    })
}

/// The actor's working state: recent samples per provider and model.
#[derive(Debug, Default)]
pub struct LiveTally {
    samples: HashMap<(String, String), Samples>,
    changed: bool,
}

impl LiveTally {
    pub fn observe(&mut self, o: Observation) {
        let s = self.samples.entry((o.provider, o.model)).or_default();
        if let Some(ttft) = o.ttft_ms.filter(|v| v.is_finite() && *v >= 0.0) {
            push(&mut s.ttft, ttft, SAMPLES_KEPT);
            ewma(&mut s.ttft_ewma, ttft);
        }
        if let Some(tps) = o.output_tokens_per_s.filter(|v| v.is_finite() && *v > 0.0) {
            push(&mut s.tps, tps, SAMPLES_KEPT);
            ewma(&mut s.tps_ewma, tps);
        }
        if push(&mut s.outcomes, o.failed, OUTCOMES_KEPT) == Some(true) {
            s.failed -= 1;
        }
        if o.failed {
            s.failed += 1;
        }
        self.changed = true;
    }

    /// The figures to publish, when anything changed since the last call.
    pub fn publish(&mut self) -> Option<LiveFigures> {
        if !std::mem::take(&mut self.changed) {
            return None;
        }
        let mut figures = LiveFigures::default();
        for ((provider, model), s) in &self.samples {
            let live = Live {
                ttft_ms_p50: median(&s.ttft),
                output_tokens_per_s_p50: median(&s.tps),
                ttft_ms_ewma: s.ttft_ewma,
                output_tokens_per_s_ewma: s.tps_ewma,
                error_rate: if s.outcomes.is_empty() {
                    0.0
                } else {
                    f64::from(s.failed) / s.outcomes.len() as f64
                },
                latency_samples: s.ttft.len() as u32,
                attempts: s.outcomes.len() as u32,
            };
            figures
                .by_key
                .entry(provider.clone())
                .or_default()
                .insert(model.clone(), live);
        }
        Some(figures)
    }

    /// Forgets a removed provider.
    pub fn forget(&mut self, provider: &str) {
        self.samples.retain(|(p, _), _| p != provider);
        self.changed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_error_rates_come_from_the_recent_samples() {
        let mut tally = LiveTally::default();
        for (i, ttft) in [100.0, 300.0, 200.0].into_iter().enumerate() {
            tally.observe(Observation {
                provider: "p".into(),
                model: "m".into(),
                failed: i == 0,
                ttft_ms: Some(ttft),
                output_tokens_per_s: Some(ttft / 10.0),
            });
        }
        let figures = tally.publish().unwrap_or_default();
        let live = figures.get("p", "m").copied().unwrap_or_default();
        assert_eq!(live.ttft_ms_p50, Some(200.0));
        assert_eq!(live.output_tokens_per_s_p50, Some(20.0));
        assert!((live.error_rate - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!((live.latency_samples, live.attempts), (3, 3));
        // 100, then 100 + 0.2·(300 − 100) = 140, then 140 + 0.2·(200 − 140) = 152.
        let ewma = live.ttft_ms_ewma.unwrap_or_default();
        assert!((ewma - 152.0).abs() < 1e-9, "{ewma}");
        assert!((live.output_tokens_per_s_ewma.unwrap_or_default() - 15.2).abs() < 1e-9);
        assert!(tally.publish().is_none(), "nothing changed");
    }

    #[test]
    fn old_outcomes_leave_the_error_rate() {
        let mut tally = LiveTally::default();
        for i in 0..(OUTCOMES_KEPT + 10) {
            tally.observe(Observation {
                provider: "p".into(),
                model: "m".into(),
                failed: i < 10,
                ttft_ms: None,
                output_tokens_per_s: None,
            });
        }
        let figures = tally.publish().unwrap_or_default();
        assert_eq!(figures.get("p", "m").map(|l| l.error_rate), Some(0.0));
    }
}
