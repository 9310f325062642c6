//! The latency and time-to-first-byte histograms of the hourly rollups: one table of bucket
//! bounds for the batch writer, the SQL over raw records and the percentiles read back.

use sea_orm::{FromQueryResult, QueryResult, TryGetError};

/// Upper bounds of the buckets, in milliseconds, inclusive: bucket `i` counts the values
/// `BOUNDS_MS[i - 1] < v <= BOUNDS_MS[i]` (bucket 0 everything up to 10 ms), and the last
/// bucket everything beyond 20 s. The rollups keep one column per bucket: a changed bound
/// would mix old counts into new buckets, so bounds are only ever added through a migration.
pub const BOUNDS_MS: [i64; 15] = [
    10, 25, 50, 100, 200, 350, 500, 750, 1000, 1500, 2500, 4000, 6000, 10000, 20000,
];

/// Buckets per histogram: one per bound, and the last beyond the last bound.
pub const BUCKETS: usize = BOUNDS_MS.len() + 1;

/// The rollup columns of the latency histogram are `lat_b00` … `lat_b15`.
pub const LATENCY_PREFIX: &str = "lat_";
/// The rollup columns of the time-to-first-byte histogram are `ttfb_b00` … `ttfb_b15`.
pub const TTFB_PREFIX: &str = "ttfb_";

/// The column of bucket `i` under `prefix` (`lat_b03`).
pub fn column(prefix: &str, i: usize) -> String {
    format!("{prefix}b{i:02}")
}

/// The bucket a value falls in.
pub fn bucket_of(ms: i64) -> usize {
    BOUNDS_MS
        .iter()
        .position(|bound| ms <= *bound)
        .unwrap_or(BOUNDS_MS.len())
}

/// The SQL that is 1 when `value` (a column of `requests`) falls in bucket `i`, else 0
/// (0 for NULL, which is in no bucket): the raw records' share of a rollup column.
pub fn bucket_sql(value: &str, i: usize) -> String {
    let test = match i {
        0 => format!("{value} <= {}", BOUNDS_MS[0]),
        i if i == BOUNDS_MS.len() => format!("{value} > {}", BOUNDS_MS[i - 1]),
        i => format!(
            "{value} > {} AND {value} <= {}",
            BOUNDS_MS[i - 1],
            BOUNDS_MS[i]
        ),
    };
    format!("CASE WHEN {test} THEN 1 ELSE 0 END")
}

/// Counts per bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Histogram(pub [i64; BUCKETS]);

impl Histogram {
    /// Counts one value.
    pub fn record(&mut self, ms: i64) {
        self.0[bucket_of(ms)] += 1;
    }

    /// Adds another histogram's counts.
    pub fn add(&mut self, other: &Histogram) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine += theirs;
        }
    }

    /// Values counted.
    pub fn count(&self) -> i64 {
        self.0.iter().sum()
    }

    /// The `q` quantile (0 < q < 1; 0.5 for the median), as Prometheus' `histogram_quantile`
    /// estimates it: the bucket holding the value of rank `q × count` is found, and the value
    /// interpolated linearly between the bucket's lower bound (0 for the first) and its upper
    /// bound, by the rank's place among the bucket's values. The last bucket has no upper
    /// bound: a quantile that falls in it is reported as its lower bound, 20000 ms. None when
    /// nothing was counted.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total <= 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut below = 0i64;
        for (i, &n) in self.0.iter().enumerate() {
            if n > 0 && (below + n) as f64 >= rank {
                let lower = if i == 0 { 0.0 } else { BOUNDS_MS[i - 1] as f64 };
                let Some(&upper) = BOUNDS_MS.get(i) else {
                    return Some(lower);
                };
                let share = ((rank - below as f64) / n as f64).clamp(0.0, 1.0);
                return Some(lower + (upper as f64 - lower) * share);
            }
            below += n;
        }
        // Only a rank of 0 with no value in any bucket gets here, ruled out above.
        None
    }
}

/// Read from the columns `{prefix}b00` … (the prefix given by `#[sea_orm(nested(prefix))]`).
impl FromQueryResult for Histogram {
    fn from_query_result(res: &QueryResult, pre: &str) -> Result<Self, sea_orm::DbErr> {
        Self::from_query_result_nullable(res, pre).map_err(Into::into)
    }

    fn from_query_result_nullable(res: &QueryResult, pre: &str) -> Result<Self, TryGetError> {
        let mut counts = [0i64; BUCKETS];
        for (i, count) in counts.iter_mut().enumerate() {
            *count = res.try_get_nullable(pre, &format!("b{i:02}"))?;
        }
        Ok(Self(counts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(values: &[i64]) -> Histogram {
        let mut h = Histogram::default();
        for v in values {
            h.record(*v);
        }
        h
    }

    #[test]
    fn each_value_falls_in_the_bucket_of_its_upper_bound() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(10), 0);
        assert_eq!(bucket_of(11), 1);
        assert_eq!(bucket_of(20_000), 14);
        assert_eq!(bucket_of(20_001), 15);
        assert_eq!(BUCKETS, 16);
        assert_eq!(column(LATENCY_PREFIX, 3), "lat_b03");
        assert_eq!(column(TTFB_PREFIX, 15), "ttfb_b15");
    }

    #[test]
    fn the_sql_of_a_bucket_tests_its_two_bounds() {
        assert_eq!(bucket_sql("x", 0), "CASE WHEN x <= 10 THEN 1 ELSE 0 END");
        assert_eq!(
            bucket_sql("x", 1),
            "CASE WHEN x > 10 AND x <= 25 THEN 1 ELSE 0 END"
        );
        assert_eq!(bucket_sql("x", 15), "CASE WHEN x > 20000 THEN 1 ELSE 0 END");
    }

    #[test]
    fn quantiles_interpolate_within_their_bucket() {
        // 4 values in (100, 200]: the median's rank is 2 of 4, halfway through the bucket.
        let h = of(&[150, 150, 150, 150]);
        assert_eq!(h.quantile(0.5), Some(150.0));
        assert_eq!(h.quantile(0.95), Some(100.0 + 100.0 * 0.95));
        // 10 values: 5 in [0, 10], 5 in (500, 750]. p50: rank 5, the end of the first bucket;
        // p95: rank 9.5, 4.5 of the 5 in (500, 750].
        let h = of(&[1, 2, 3, 4, 5, 600, 600, 600, 600, 600]);
        assert_eq!(h.quantile(0.5), Some(10.0));
        assert_eq!(h.quantile(0.95), Some(500.0 + 250.0 * 0.9));
    }

    #[test]
    fn the_open_bucket_reports_its_lower_bound_and_nothing_reports_none() {
        assert_eq!(of(&[30_000, 90_000]).quantile(0.5), Some(20_000.0));
        assert_eq!(Histogram::default().quantile(0.5), None);
    }
}
