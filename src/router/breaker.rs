//! Circuit breakers: one per provider, and one per provider and model (for a model that fails
//! alone). A provider's opens after a run of failures across its models (an outage); a model's
//! after a run of its own failures or an error rate over a window, so that one failing model
//! does not take its provider's other models down with it. Every attempt's result counts (a first try, a retry or the last target alike), and
//! the request path consults them before each attempt. Time is passed in (milliseconds on the
//! breakers' own monotonic clock), so tests step it without sleeping.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// When a breaker opens and how long it stays open (`[routing.breaker]`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakerPolicy {
    /// Opens after this many failures in a row.
    pub consecutive_failures: u32,
    /// Or once this share of the attempts in the window failed (0–1)…
    pub error_rate: f64,
    /// …with at least this many attempts in the window.
    pub min_requests: u32,
    /// The window of the error rate, milliseconds.
    pub window_ms: u64,
    /// How long an open breaker refuses before it lets one probe through, milliseconds.
    pub cooldown_ms: u64,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            error_rate: 0.5,
            min_requests: 20,
            window_ms: 60_000,
            cooldown_ms: 30_000,
        }
    }
}

/// A breaker's state as shown in `/v1/providers`, `/v1/catalog` and `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Requests pass.
    Closed,
    /// Requests are refused until the cool-down ends.
    Open,
    /// The cool-down ended: one probe passes; its success closes the breaker.
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }

    /// The value of the `llm_gateway_breaker_state` gauge.
    pub fn gauge(self) -> i64 {
        match self {
            Self::Closed => 0,
            Self::HalfOpen => 1,
            Self::Open => 2,
        }
    }
}

/// Whether an attempt may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: go.
    Pass,
    /// Half-open: go, as the probe whose result decides.
    Probe,
    /// Open (or half-open with its probe out): skip this target; it may be tried again in
    /// this many milliseconds.
    Refuse { retry_in_ms: u64 },
}

/// One breaker.
#[derive(Debug, Clone)]
struct Breaker {
    state: Inner,
    consecutive: u32,
    window_start: u64,
    window_total: u32,
    window_failed: u32,
    /// Times it opened.
    opened: u64,
    last_failure: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Inner {
    Closed,
    Open {
        until: u64,
    },
    /// `probe_since`: when the probe was let through (none out yet: None). A probe whose
    /// result never comes (its client left) stops blocking after another cool-down.
    HalfOpen {
        probe_since: Option<u64>,
    },
}

impl Breaker {
    fn new(now: u64) -> Self {
        Self {
            state: Inner::Closed,
            consecutive: 0,
            window_start: now,
            window_total: 0,
            window_failed: 0,
            opened: 0,
            last_failure: None,
        }
    }

    /// The state at `now` (an open breaker whose cool-down ended shows half-open).
    fn state(&self, now: u64) -> BreakerState {
        match self.state {
            Inner::Closed => BreakerState::Closed,
            Inner::Open { until } if now >= until => BreakerState::HalfOpen,
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// What an attempt at `now` may do; `take` lets a half-open probe out.
    fn admit(&mut self, now: u64, policy: &BreakerPolicy, take: bool) -> Admission {
        match self.state {
            Inner::Closed => Admission::Pass,
            Inner::Open { until } if now < until => Admission::Refuse {
                retry_in_ms: until - now,
            },
            Inner::Open { .. } | Inner::HalfOpen { probe_since: None } => {
                if take {
                    self.state = Inner::HalfOpen {
                        probe_since: Some(now),
                    };
                }
                Admission::Probe
            }
            Inner::HalfOpen {
                probe_since: Some(since),
            } => {
                let lease_end = since.saturating_add(policy.cooldown_ms);
                if now >= lease_end {
                    if take {
                        self.state = Inner::HalfOpen {
                            probe_since: Some(now),
                        };
                    }
                    Admission::Probe
                } else {
                    Admission::Refuse {
                        retry_in_ms: lease_end - now,
                    }
                }
            }
        }
    }

    /// `by_rate`: whether the error rate may open it (a model's breaker), or only a run of
    /// failures (a provider's).
    fn record(&mut self, failed: bool, now: u64, policy: &BreakerPolicy, by_rate: bool) {
        if now.saturating_sub(self.window_start) >= policy.window_ms {
            self.window_start = now;
            self.window_total = 0;
            self.window_failed = 0;
        }
        self.window_total += 1;
        if failed {
            self.window_failed += 1;
            self.consecutive += 1;
            self.last_failure = Some(now);
        } else {
            self.consecutive = 0;
        }
        match (self.state, failed) {
            (Inner::HalfOpen { .. }, false) | (Inner::Open { .. }, false)
                if self.state(now) != BreakerState::Open =>
            {
                self.close(now)
            }
            (Inner::HalfOpen { .. }, true) => self.open(now, policy),
            (Inner::Open { until }, true) if now >= until => self.open(now, policy),
            (Inner::Closed, true) => {
                let by_rate = by_rate
                    && self.window_total >= policy.min_requests
                    && f64::from(self.window_failed)
                        >= policy.error_rate * f64::from(self.window_total);
                if self.consecutive >= policy.consecutive_failures || by_rate {
                    self.open(now, policy);
                }
            }
            // A result of an attempt let through before the breaker opened changes nothing.
            _ => {}
        }
    }

    fn open(&mut self, now: u64, policy: &BreakerPolicy) {
        self.state = Inner::Open {
            until: now.saturating_add(policy.cooldown_ms),
        };
        self.opened += 1;
    }

    fn close(&mut self, now: u64) {
        self.state = Inner::Closed;
        self.consecutive = 0;
        self.window_start = now;
        self.window_total = 0;
        self.window_failed = 0;
    }

    fn view(&self, now: u64) -> BreakerView {
        BreakerView {
            state: self.state(now),
            consecutive_failures: self.consecutive,
            window_attempts: self.window_total,
            window_failures: self.window_failed,
            times_opened: self.opened,
            retry_in_ms: match self.state {
                Inner::Open { until } if now < until => Some(until - now),
                _ => None,
            },
        }
    }
}

/// A breaker as the admin endpoints show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BreakerView {
    pub state: BreakerState,
    pub consecutive_failures: u32,
    /// Attempts and failures in the current error-rate window.
    pub window_attempts: u32,
    pub window_failures: u32,
    pub times_opened: u64,
    /// While open: when it lets a probe through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_in_ms: Option<u64>,
}

#[derive(Debug)]
struct ProviderBreakers {
    own: Breaker,
    models: HashMap<String, Breaker>,
}

impl ProviderBreakers {
    /// How many of its breakers are not closed.
    fn not_closed(&self) -> usize {
        std::iter::once(&self.own)
            .chain(self.models.values())
            .filter(|b| b.state != Inner::Closed)
            .count()
    }

    /// Whether an attempt for `model` may go at `now`: both the provider's and the model's
    /// breaker must let it; `take` claims a half-open probe from both.
    fn admit(&mut self, model: &str, now: u64, policy: &BreakerPolicy, take: bool) -> Admission {
        let own = self.own.admit(now, policy, false);
        let of_model = self
            .models
            .get_mut(model)
            .map_or(Admission::Pass, |b| b.admit(now, policy, false));
        let verdict = match (own, of_model) {
            (Admission::Refuse { retry_in_ms: a }, Admission::Refuse { retry_in_ms: b }) => {
                Admission::Refuse {
                    retry_in_ms: a.max(b),
                }
            }
            (refused @ Admission::Refuse { .. }, _) | (_, refused @ Admission::Refuse { .. }) => {
                refused
            }
            (Admission::Probe, _) | (_, Admission::Probe) => Admission::Probe,
            _ => Admission::Pass,
        };
        if take && verdict == Admission::Probe {
            self.own.admit(now, policy, true);
            if let Some(b) = self.models.get_mut(model) {
                b.admit(now, policy, true);
            }
        }
        verdict
    }
}

/// Every breaker of the gateway, shared by the request path (which asks and reports) and the
/// admin views.
#[derive(Debug)]
pub struct Breakers {
    policy: BreakerPolicy,
    clock: Instant,
    inner: Mutex<HashMap<String, ProviderBreakers>>,
    /// Whether any breaker exists (nothing failed yet: no lock taken on the request path).
    any: std::sync::atomic::AtomicBool,
    /// Breakers not closed (while none is, an admission takes no lock).
    not_closed: AtomicUsize,
}

/// The breakers as one routing decision reads them: one lock for all its candidates, none
/// while every breaker is closed.
pub struct BreakerReader<'b> {
    breakers: &'b Breakers,
    map: Option<std::sync::MutexGuard<'b, HashMap<String, ProviderBreakers>>>,
    pub now: u64,
}

impl BreakerReader<'_> {
    /// What an attempt at `provider` for `model` would be let do (no probe is claimed).
    pub fn admit(&mut self, provider: &str, model: &str) -> Admission {
        let Some(entry) = self.map.as_mut().and_then(|m| m.get_mut(provider)) else {
            return Admission::Pass;
        };
        entry.admit(model, self.now, &self.breakers.policy, false)
    }
}

/// One provider's breakers as shown by the admin endpoints.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProviderBreakerView {
    #[serde(flatten)]
    pub provider: BreakerView,
    /// The breakers of single models of the provider that have seen attempts.
    pub models: std::collections::BTreeMap<String, BreakerView>,
}

impl Breakers {
    pub fn new(policy: BreakerPolicy) -> Self {
        Self {
            policy,
            clock: Instant::now(),
            inner: Mutex::new(HashMap::new()),
            any: std::sync::atomic::AtomicBool::new(false),
            not_closed: AtomicUsize::new(0),
        }
    }

    /// A reader for one routing decision.
    pub fn reader(&self) -> BreakerReader<'_> {
        BreakerReader {
            breakers: self,
            map: (self.not_closed.load(Ordering::Acquire) > 0).then(|| self.lock()),
            now: self.now(),
        }
    }

    pub fn policy(&self) -> &BreakerPolicy {
        &self.policy
    }

    /// Now on the breakers' clock, in milliseconds.
    pub fn now(&self) -> u64 {
        self.clock.elapsed().as_millis() as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ProviderBreakers>> {
        // A panic while holding the lock leaves counts, not broken invariants: keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether an attempt at `provider` for `model` may go at `now`: both its provider's and
    /// its model's breaker must let it. `take` claims a half-open probe (the request path);
    /// without it the answer only predicts (the router's explanations).
    pub fn admit(&self, provider: &str, model: &str, now: u64, take: bool) -> Admission {
        if self.not_closed.load(Ordering::Acquire) == 0 {
            return Admission::Pass;
        }
        let mut map = self.lock();
        match map.get_mut(provider) {
            Some(entry) => entry.admit(model, now, &self.policy, take),
            None => Admission::Pass,
        }
    }

    /// An attempt's result: `failed` for a connect error, a timeout, a 429 or a 5xx.
    pub fn record(&self, provider: &str, model: &str, failed: bool, now: u64) {
        if !failed && !self.any.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let mut map = self.lock();
        if !failed && !map.contains_key(provider) {
            // Nothing has failed there yet: no breaker to keep.
            return;
        }
        self.any.store(true, std::sync::atomic::Ordering::Release);
        let entry = map
            .entry(provider.to_string())
            .or_insert_with(|| ProviderBreakers {
                own: Breaker::new(now),
                models: HashMap::new(),
            });
        let before = entry.not_closed();
        entry.own.record(failed, now, &self.policy, false);
        match entry.models.get_mut(model) {
            Some(breaker) => breaker.record(failed, now, &self.policy, true),
            None if failed => {
                let mut breaker = Breaker::new(now);
                breaker.record(true, now, &self.policy, true);
                entry.models.insert(model.to_string(), breaker);
            }
            None => {}
        }
        let after = entry.not_closed();
        if after > before {
            self.not_closed.fetch_add(after - before, Ordering::AcqRel);
        } else if before > after {
            self.not_closed.fetch_sub(before - after, Ordering::AcqRel);
        }
    }

    /// The state of a provider's breaker (`closed` when it has none), and of its model's.
    pub fn state(&self, provider: &str, model: Option<&str>, now: u64) -> BreakerState {
        let map = self.lock();
        let Some(entry) = map.get(provider) else {
            return BreakerState::Closed;
        };
        let own = entry.own.state(now);
        let of_model = model
            .and_then(|m| entry.models.get(m))
            .map_or(BreakerState::Closed, |b| b.state(now));
        worst(own, of_model)
    }

    /// Every provider's breakers, for the admin views.
    pub fn views(&self, now: u64) -> HashMap<String, ProviderBreakerView> {
        self.lock()
            .iter()
            .map(|(id, entry)| {
                (
                    id.clone(),
                    ProviderBreakerView {
                        provider: entry.own.view(now),
                        models: entry
                            .models
                            .iter()
                            .map(|(m, b)| (m.clone(), b.view(now)))
                            .collect(),
                    },
                )
            })
            .collect()
    }

    /// The view of a provider that has no breaker yet (nothing failed there).
    pub fn closed_view(&self) -> ProviderBreakerView {
        ProviderBreakerView {
            provider: Breaker::new(0).view(0),
            models: std::collections::BTreeMap::new(),
        }
    }

    /// Forgets a removed provider's breakers.
    pub fn forget(&self, provider: &str) {
        if let Some(entry) = self.lock().remove(provider) {
            self.not_closed
                .fetch_sub(entry.not_closed(), Ordering::AcqRel);
        }
    }
}

fn worst(a: BreakerState, b: BreakerState) -> BreakerState {
    if a.gauge() >= b.gauge() {
        a
    } else {
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> BreakerPolicy {
        BreakerPolicy {
            consecutive_failures: 3,
            error_rate: 0.5,
            min_requests: 10,
            window_ms: 10_000,
            cooldown_ms: 1_000,
        }
    }

    #[test]
    fn a_breaker_opens_half_opens_and_closes_again_on_the_injected_clock() {
        let b = Breakers::new(policy());
        assert_eq!(b.admit("p", "m", 0, true), Admission::Pass);
        for t in 0..2 {
            b.record("p", "m", true, t);
            assert_eq!(b.state("p", None, t), BreakerState::Closed);
        }
        // The third failure in a row opens it, whichever attempt of a request it was.
        b.record("p", "m", true, 2);
        assert_eq!(b.state("p", None, 2), BreakerState::Open);
        assert_eq!(
            b.admit("p", "m", 500, true),
            Admission::Refuse { retry_in_ms: 502 }
        );
        // After the cool-down one probe goes; a second attempt meanwhile is refused.
        assert_eq!(b.state("p", None, 1_002), BreakerState::HalfOpen);
        assert_eq!(b.admit("p", "m", 1_002, true), Admission::Probe);
        assert!(matches!(
            b.admit("p", "m", 1_003, true),
            Admission::Refuse { .. }
        ));
        // The probe fails: open for another cool-down.
        b.record("p", "m", true, 1_010);
        assert_eq!(b.state("p", None, 1_500), BreakerState::Open);
        assert_eq!(b.admit("p", "m", 2_010, true), Admission::Probe);
        // The next probe succeeds: closed, counts reset.
        b.record("p", "m", false, 2_020);
        assert_eq!(b.state("p", Some("m"), 2_020), BreakerState::Closed);
        assert_eq!(b.admit("p", "m", 2_021, true), Admission::Pass);
        let view = &b.views(2_021)["p"];
        assert_eq!(view.provider.times_opened, 2);
        assert_eq!(view.provider.consecutive_failures, 0);
    }

    #[test]
    fn the_error_rate_over_the_window_opens_it_without_a_run_of_failures() {
        let b = Breakers::new(policy());
        b.record("p", "m", true, 0);
        for t in 1..11 {
            // Alternating: never three in a row, but six of eleven fail.
            b.record("p", "m", t % 2 == 0, t);
        }
        assert_eq!(b.state("p", Some("m"), 11), BreakerState::Open);
        // The provider's own breaker counts runs only.
        assert_eq!(b.views(11)["p"].provider.state, BreakerState::Closed);
        // A new window starts clean.
        let c = Breakers::new(policy());
        for t in 0..4 {
            c.record("p", "m", t % 2 == 0, t * 4_000);
        }
        assert_eq!(c.state("p", None, 16_000), BreakerState::Closed);
    }

    #[test]
    fn a_model_that_fails_alone_opens_its_own_breaker_only() {
        let b = Breakers::new(policy());
        for t in 0..6 {
            b.record("p", "bad", true, t * 10);
            b.record("p", "good", false, t * 10 + 1);
        }
        assert_eq!(b.state("p", Some("bad"), 100), BreakerState::Open);
        assert_eq!(b.state("p", Some("good"), 100), BreakerState::Closed);
        assert!(matches!(
            b.admit("p", "bad", 100, false),
            Admission::Refuse { .. }
        ));
        assert_eq!(b.admit("p", "good", 100, false), Admission::Pass);
    }

    #[test]
    fn a_probe_whose_result_never_comes_stops_blocking_after_a_cool_down() {
        let b = Breakers::new(policy());
        for t in 0..3 {
            b.record("p", "m", true, t);
        }
        assert_eq!(b.admit("p", "m", 1_002, true), Admission::Probe);
        assert!(matches!(
            b.admit("p", "m", 1_500, true),
            Admission::Refuse { .. }
        ));
        assert_eq!(b.admit("p", "m", 2_002, true), Admission::Probe);
    }

    #[test]
    fn predicting_does_not_take_the_probe() {
        let b = Breakers::new(policy());
        for t in 0..3 {
            b.record("p", "m", true, t);
        }
        assert_eq!(b.admit("p", "m", 1_002, false), Admission::Probe);
        assert_eq!(b.admit("p", "m", 1_002, true), Admission::Probe);
        assert!(matches!(
            b.admit("p", "m", 1_003, false),
            Admission::Refuse { .. }
        ));
    }
}
