//! Per-operation times of a benchmark example, sorted, read as percentiles in microseconds.

use std::time::Duration;

/// Per-operation times, sorted.
pub struct Timings(pub Vec<Duration>);

impl Timings {
    /// Sorts `times`.
    pub fn new(mut times: Vec<Duration>) -> Self {
        times.sort();
        Self(times)
    }

    fn us(d: Duration) -> f64 {
        (d.as_nanos() as f64 / 1e3 * 100.0).round() / 100.0
    }

    /// The `p`-th percentile, in µs (to 0.01).
    pub fn percentile(&self, p: f64) -> f64 {
        let i = ((self.0.len() as f64 * p / 100.0) as usize).min(self.0.len() - 1);
        Self::us(self.0[i])
    }

    /// The mean, in µs (to 0.01).
    pub fn mean(&self) -> f64 {
        Self::us(self.0.iter().sum::<Duration>() / self.0.len() as u32)
    }
}
