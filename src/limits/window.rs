//! Time for the limits: the budget periods as calendar windows in UTC, the rate limits' minute,
//! and a clock that tests set instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// One minute, the window of `rpm` and `tpm`.
pub const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

/// How long a budget lasts before it starts again.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// Each calendar day, from 00:00 UTC.
    Daily,
    /// Each ISO week, from Monday 00:00 UTC.
    Weekly,
    /// Each calendar month, from the 1st 00:00 UTC.
    Monthly,
    /// Never: the budget is a lifetime total.
    #[default]
    Total,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Daily => "daily",
            Self::Weekly => "weekly",
            Self::Monthly => "monthly",
            Self::Total => "total",
        }
    }

    /// The start of the window holding `now_ms` (0 for `total`).
    pub fn start(self, now_ms: i64) -> i64 {
        let day = now_ms - now_ms.rem_euclid(DAY_MS);
        match self {
            Self::Daily => day,
            Self::Weekly => {
                let weekday = date(day).weekday().num_days_from_monday();
                day - i64::from(weekday) * DAY_MS
            }
            Self::Monthly => {
                let d = date(day);
                NaiveDate::from_ymd_opt(d.year(), d.month(), 1).map_or(day, ms_of)
            }
            Self::Total => 0,
        }
    }

    /// The end of the window holding `now_ms` (None for `total`: it never resets).
    pub fn end(self, now_ms: i64) -> Option<i64> {
        let start = self.start(now_ms);
        match self {
            Self::Daily => Some(start + DAY_MS),
            Self::Weekly => Some(start + 7 * DAY_MS),
            Self::Monthly => {
                let d = date(start);
                let (y, m) = if d.month() == 12 {
                    (d.year() + 1, 1)
                } else {
                    (d.year(), d.month() + 1)
                };
                NaiveDate::from_ymd_opt(y, m, 1).map(ms_of)
            }
            Self::Total => None,
        }
    }
}

fn date(ms: i64) -> NaiveDate {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .date_naive()
}

fn ms_of(d: NaiveDate) -> i64 {
    Utc.from_utc_datetime(&d.and_time(chrono::NaiveTime::MIN))
        .timestamp_millis()
}

/// RFC 3339 of a time in milliseconds, for messages and views.
pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Whole seconds from `now_ms` until `then_ms`, at least 1 (a `Retry-After`).
pub fn seconds_until(now_ms: i64, then_ms: i64) -> u64 {
    u64::try_from((then_ms - now_ms + 999) / 1000)
        .unwrap_or(0)
        .max(1)
}

/// The limits' clock: the system's, or a time a test set (and moves on by hand).
#[derive(Debug, Default)]
pub struct Clock {
    /// 0: the system clock.
    manual_ms: AtomicI64,
}

impl Clock {
    /// Now, in Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        match self.manual_ms.load(Ordering::Relaxed) {
            0 => Utc::now().timestamp_millis(),
            ms => ms,
        }
    }

    /// Stops the clock at `ms` (tests).
    pub fn set(&self, ms: i64) {
        self.manual_ms.store(ms.max(1), Ordering::Relaxed);
    }

    /// Moves a stopped clock on by `ms` (tests); a running one is stopped at now + `ms`.
    pub fn advance(&self, ms: i64) {
        self.set(self.now_ms() + ms);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    #[test]
    fn the_periods_are_calendar_windows_in_utc() {
        let now = at("2026-12-03T13:45:10Z"); // a Thursday
        assert_eq!(Period::Daily.start(now), at("2026-12-03T00:00:00Z"));
        assert_eq!(Period::Daily.end(now), Some(at("2026-12-04T00:00:00Z")));
        assert_eq!(Period::Weekly.start(now), at("2026-11-30T00:00:00Z"));
        assert_eq!(Period::Weekly.end(now), Some(at("2026-12-07T00:00:00Z")));
        assert_eq!(Period::Monthly.start(now), at("2026-12-01T00:00:00Z"));
        assert_eq!(Period::Monthly.end(now), Some(at("2027-01-01T00:00:00Z")));
        assert_eq!(Period::Total.start(now), 0);
        assert_eq!(Period::Total.end(now), None);
        // The last millisecond of a window is still in it.
        let last = at("2026-12-31T23:59:59Z") + 999;
        assert_eq!(Period::Monthly.start(last), at("2026-12-01T00:00:00Z"));
        assert_eq!(seconds_until(now, now + 1), 1);
        assert_eq!(seconds_until(now, now + 60_000), 60);
    }
}
