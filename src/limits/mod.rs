//! Budgets and rate limits per virtual key and project: the admission stage's rules, its
//! counters, and the hold a request keeps on its budget until its real cost is known.
//!
//! A request is admitted while, for every limited subject it belongs to (its key's label, its
//! `x-project`), the minute's requests are under `rpm`, the minute's tokens under `tpm`, and
//! the spend plus the reservations in flight under `max_budget_usd`. Admission reserves the
//! request's expected cost and tokens; [`Hold::settle`] replaces them with the real figures.
//! Concurrent requests can therefore overshoot a budget by at most what is in flight. Every
//! check and update happens under one lock, never read-then-write across an await.
//!
//! With shared counters ([`shared`]: the PostgreSQL ledger's, or Redis's), the same checks run
//! against the slices of each limit this instance leased from the store, so that every
//! instance enforces one limit and the request path waits on the store only when a slice ran
//! out before the next one arrived.

pub mod shared;
pub mod window;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Serialize;

use shared::{micros, usd, Counter, Grant, Metric, Store, STORE_TIMEOUT};
use window::{rfc3339, seconds_until, MINUTE_MS};
pub use window::{Clock, Period};

/// The most model ids whose typical output is kept.
const MAX_MODELS: usize = 4096;

/// The limits of one key or project, as configured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LimitSpec {
    pub max_budget_usd: Option<f64>,
    pub budget_period: Period,
    /// Requests per minute.
    pub rpm: Option<u64>,
    /// Tokens (prompt and output) per minute.
    pub tpm: Option<u64>,
    /// Model ids or globs the subject may use; None: any.
    pub models: Option<Vec<String>>,
}

impl LimitSpec {
    pub fn is_empty(&self) -> bool {
        self.max_budget_usd.is_none()
            && self.rpm.is_none()
            && self.tpm.is_none()
            && self.models.is_none()
    }

    /// The compiled allow-list, or why a pattern is not a glob.
    pub fn model_globs(&self) -> Result<Option<GlobSet>, String> {
        let Some(patterns) = &self.models else {
            return Ok(None);
        };
        let mut builder = GlobSetBuilder::new();
        for p in patterns {
            builder.add(Glob::new(p).map_err(|e| format!("`{p}` is not a valid glob: {e}"))?);
        }
        builder.build().map(Some).map_err(|e| e.to_string())
    }
}

/// Who a limit belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// A virtual key, by its label.
    Key(String),
    /// An `x-project`, by its id.
    Project(String),
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Key(label) => write!(f, "key `{label}`"),
            Self::Project(id) => write!(f, "project `{id}`"),
        }
    }
}

struct Rule {
    spec: LimitSpec,
    models: Option<GlobSet>,
}

/// A subject's counters: the budget's window and the rate limits' minute.
#[derive(Debug, Default, Clone)]
struct Counters {
    window_start: i64,
    spent_usd: f64,
    reserved_usd: f64,
    in_flight: u64,
    minute: i64,
    requests: u64,
    tokens: u64,
    /// The ledger's spend of the budget window at start-up (window start, USD): where a
    /// shared counter that does not exist yet starts.
    seed: Option<(i64, f64)>,
    /// The slices leased from the shared store, by [`Metric::index`].
    leases: [Lease; 3],
}

/// A slice of one shared limit that this instance leased and admits requests from.
#[derive(Debug, Default, Clone)]
struct Lease {
    /// The window the slice belongs to (a budget window's or a minute's start).
    window: i64,
    /// Leased units not yet reserved by a request (below 0 only until the debt is added).
    allowance: i64,
    /// The store's counter as last seen: every instance's spend, reservations and slices.
    committed: i64,
    /// The last lease found less left than it asked for (the store has nothing more).
    spent: bool,
    /// A lease is on its way (in the background).
    fetching: bool,
}

impl Lease {
    fn roll(&mut self, window: i64) {
        if self.window != window {
            *self = Lease {
                window,
                ..Lease::default()
            };
        }
    }
}

/// How long after the store failed to answer admission keeps to the local counters.
const STORE_RETRY_MS: i64 = 1_000;

/// How many times one request leases before what it holds decides.
const LEASE_ROUNDS: u32 = 3;

/// How often (limiter clock) the store drops counters of ended windows.
const SWEEP_EVERY_MS: i64 = 10 * MINUTE_MS;

impl Counters {
    /// Moves the counters to the windows holding `now`: a new budget window starts empty, a
    /// new minute too.
    fn roll(&mut self, period: Period, now: i64) {
        let start = period.start(now);
        if start != self.window_start {
            self.window_start = start;
            self.spent_usd = 0.0;
            self.reserved_usd = 0.0;
        }
        let minute = now - now.rem_euclid(MINUTE_MS);
        if minute != self.minute {
            self.minute = minute;
            self.requests = 0;
            self.tokens = 0;
        }
    }
}

/// What admission asks about a request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub key: Option<&'a str>,
    pub project: Option<&'a str>,
    /// The expected cost in USD (the prompt and the expected output at the dearest target's
    /// price); 0 for a free or an unpriced model.
    pub cost_usd: f64,
    /// The expected tokens, prompt and output.
    pub tokens: u64,
    /// Costs nothing whichever target answers: every target a local model without a price or
    /// one priced at zero (or a count of tokens).
    pub free: bool,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// A spent budget.
    Budget {
        subject: String,
        limit_usd: f64,
        spent_usd: f64,
        reserved_usd: f64,
        period: Period,
        /// When the budget starts again (None: a total budget never does).
        resets_at: Option<String>,
        retry_after_secs: Option<u64>,
    },
    /// A rate limit (`rpm` or `tpm`).
    Rate {
        subject: String,
        limit: &'static str,
        value: u64,
        resets_at: String,
        retry_after_secs: u64,
    },
    /// A model outside the subject's allow-list.
    Model {
        subject: String,
        model: String,
        allowed: Vec<String>,
    },
}

/// What a request reserved of one subject.
#[derive(Debug)]
struct Reserved {
    subject: Subject,
    window_start: i64,
    minute: i64,
    usd: f64,
    tokens: u64,
    /// What was taken from the shared slices.
    taken: Taken,
}

/// What a request took of each shared slice of one subject, by [`Metric::index`]: (window,
/// units).
type Taken = [Option<(i64, i64)>; 3];

/// The shared store and how large a slice of a limit one lease takes.
struct SharedCounters {
    store: Arc<dyn Store>,
    lease_share: f64,
}

/// One shared limit a request needs units of.
struct Need {
    /// The index of the subject's rule.
    rule: usize,
    metric: Metric,
    window: i64,
    units: i64,
    limit: i64,
}

/// A slice to lease: the counter, how much, under which limit.
struct Want {
    subject: Subject,
    metric: Metric,
    window: i64,
    counter: Counter,
    units: i64,
    limit: i64,
}

/// The budgets and rate limits of every key and project, with their counters.
pub struct Limiter {
    keys: HashMap<String, Rule>,
    projects: HashMap<String, Rule>,
    free_models_exempt: bool,
    /// Share of a budget past which a routed request takes its profile's `on_budget_low`.
    pub budget_low_share: f64,
    /// Now, for the windows (tests stop and move it).
    pub clock: Clock,
    counters: Mutex<HashMap<Subject, Counters>>,
    /// Output tokens per model (sum, count): from the ledger at start, then every request
    /// that ended; the typical output a reservation expects.
    outputs: Mutex<HashMap<String, (f64, f64)>>,
    /// Set when the counters are shared with other instances.
    shared: OnceLock<SharedCounters>,
    last_sweep: AtomicI64,
    /// When the shared store last failed to answer ([`Self::monotonic_ms`]).
    store_failed_at: AtomicI64,
    /// The start of [`Self::monotonic_ms`] (real time: the store's health is not the windows').
    started: std::time::Instant,
    /// Store calls running in the background (refills, debts, sweeps).
    pending: Arc<std::sync::atomic::AtomicUsize>,
}

impl Limiter {
    /// The limits of `keys` (by label) and `projects` (by id); specs without any limit are left out.
    pub fn new(
        keys: impl IntoIterator<Item = (String, LimitSpec)>,
        projects: impl IntoIterator<Item = (String, LimitSpec)>,
        free_models_exempt: bool,
        budget_low_share: f64,
    ) -> Result<Self, String> {
        let compile = |entries: &mut dyn Iterator<Item = (String, LimitSpec)>| -> Result<HashMap<String, Rule>, String> {
            entries
                .filter(|(_, spec)| !spec.is_empty())
                .map(|(id, spec)| Ok((id, Rule { models: spec.model_globs()?, spec })))
                .collect()
        };
        Ok(Self {
            keys: compile(&mut keys.into_iter())?,
            projects: compile(&mut projects.into_iter())?,
            free_models_exempt,
            budget_low_share,
            clock: Clock::default(),
            counters: Mutex::new(HashMap::new()),
            outputs: Mutex::new(HashMap::new()),
            shared: OnceLock::new(),
            last_sweep: AtomicI64::new(0),
            store_failed_at: AtomicI64::new(i64::MIN / 2),
            started: std::time::Instant::now(),
            pending: Arc::default(),
        })
    }

    /// Whether any limit is set (without any, admission costs nothing).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.projects.is_empty()
    }

    fn rules<'a>(
        &'a self,
        key: Option<&'a str>,
        project: Option<&'a str>,
    ) -> impl Iterator<Item = (Subject, &'a Rule)> + 'a {
        let key = key.and_then(|k| self.keys.get(k).map(|r| (Subject::Key(k.to_string()), r)));
        let project = project.and_then(|p| {
            self.projects
                .get(p)
                .map(|r| (Subject::Project(p.to_string()), r))
        });
        key.into_iter().chain(project)
    }

    /// Whether `model` may be used by the request's key and project (every allow-list holds it).
    pub fn allows(
        &self,
        key: Option<&str>,
        project: Option<&str>,
        models: &[&str],
    ) -> Result<(), Refusal> {
        for (subject, rule) in self.rules(key, project) {
            if let Some(globs) = &rule.models {
                if !models.iter().any(|m| globs.is_match(m)) {
                    return Err(Refusal::Model {
                        subject: subject.to_string(),
                        model: models.first().copied().unwrap_or("").to_string(),
                        allowed: rule.spec.models.clone().unwrap_or_default(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The largest share of a budget used (spent and held ÷ limit) among the request's key
    /// and project, if either has a budget.
    pub fn budget_used(&self, key: Option<&str>, project: Option<&str>) -> Option<f64> {
        let rules: Vec<(Subject, &Rule)> = self
            .rules(key, project)
            .filter(|(_, r)| r.spec.max_budget_usd.is_some())
            .collect();
        if rules.is_empty() {
            return None;
        }
        let now = self.clock.now_ms();
        let mut counters = self.lock();
        rules
            .into_iter()
            .filter_map(|(subject, rule)| {
                let limit = rule.spec.max_budget_usd?;
                let c = counters.entry(subject).or_default();
                c.roll(rule.spec.budget_period, now);
                let used = self.budget_committed(c, rule, now);
                Some(if limit > 0.0 { used / limit } else { 1.0 })
            })
            .reduce(f64::max)
    }

    /// A subject's budget used (USD): spent and held by requests in flight; with shared
    /// counters, every instance's (as last seen) but for this one's unused slice.
    fn budget_committed(&self, c: &Counters, rule: &Rule, now: i64) -> f64 {
        if self.shared.get().is_none() {
            return c.spent_usd + c.reserved_usd;
        }
        let start = rule.spec.budget_period.start(now);
        let seed = c
            .seed
            .filter(|(w, _)| *w == start)
            .map_or(0, |(_, s)| micros(s));
        let lease = &c.leases[Metric::Usd.index()];
        let (committed, unused) = if lease.window == start {
            (lease.committed, lease.allowance.max(0))
        } else {
            (0, 0)
        };
        usd(committed.max(seed) - unused).max(0.0)
    }

    /// Whether the request's key and project have an allow-list at all.
    pub fn has_model_lists(&self, key: Option<&str>, project: Option<&str>) -> bool {
        self.rules(key, project).any(|(_, r)| r.models.is_some())
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Subject, Counters>> {
        self.counters
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Shares the counters with every instance on `store`: from now on each limit is one
    /// limit across them. `lease_share` is the share of a limit one lease takes.
    pub fn share(&self, store: Arc<dyn Store>, lease_share: f64) -> Result<(), String> {
        self.shared
            .set(SharedCounters { store, lease_share })
            .map_err(|_| "the limit counters are shared already".to_string())
    }

    /// The store the counters are shared on (`postgres`, `redis`), if any.
    pub fn shared_store(&self) -> Option<&'static str> {
        self.shared.get().map(|s| s.store.name())
    }

    /// Admits the request or says which limit refuses it. Nothing is counted for a refused
    /// request; an admitted one holds its reservation until [`Hold::settle`] (or the hold drops).
    pub async fn admit(self: &Arc<Self>, request: &Request<'_>) -> Result<Option<Hold>, Refusal> {
        let rules: Vec<(Subject, &Rule)> = self.rules(request.key, request.project).collect();
        if rules.is_empty() {
            return Ok(None);
        }
        let Some(shared) = self.shared.get() else {
            return self.admit_local(request, rules).map(Some);
        };
        // From the slices held; what is short is leased, then decided again (a few rounds at
        // most: concurrent requests may take a fresh slice before this one gets to it).
        let mut round = 0;
        let mut exhausted = false;
        loop {
            // A store that does not answer: each instance keeps the limits by itself meanwhile.
            if self.monotonic_ms() - self.store_failed_at.load(Ordering::Relaxed) < STORE_RETRY_MS {
                return self.admit_local(request, rules).map(Some);
            }
            let last = exhausted || round >= LEASE_ROUNDS;
            let wants = match self.admit_shared(shared, request, &rules, last) {
                Ok(hold) => return Ok(Some(hold)),
                Err(Ok(wants)) => wants,
                Err(Err(refusal)) => return Err(refusal),
            };
            let grants = futures_util::future::join_all(
                wants
                    .iter()
                    .map(|w| lease_in_time(shared.store.as_ref(), w)),
            )
            .await;
            let mut counters = self.lock();
            for (want, grant) in wants.iter().zip(grants) {
                let lease = &mut counters.entry(want.subject.clone()).or_default().leases
                    [want.metric.index()];
                match grant {
                    Ok(grant) => {
                        exhausted |= grant.granted < want.units;
                        apply_grant(lease, want, grant);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the shared limit counters did not answer: limits are kept by this instance alone until they do");
                        self.store_failed_at
                            .store(self.monotonic_ms(), Ordering::Relaxed);
                    }
                }
            }
            round += 1;
        }
    }

    /// Admission against this instance's own counters.
    fn admit_local(
        self: &Arc<Self>,
        request: &Request<'_>,
        rules: Vec<(Subject, &Rule)>,
    ) -> Result<Hold, Refusal> {
        let now = self.clock.now_ms();
        let mut counters = self.lock();
        // Every check first, then every update: a refusal leaves nothing counted.
        for (subject, rule) in &rules {
            let c = counters.entry(subject.clone()).or_default();
            c.roll(rule.spec.budget_period, now);
            if let Some(rpm) = rule.spec.rpm.filter(|rpm| c.requests >= *rpm) {
                return Err(rate_refusal(subject, "rpm", rpm, c.minute, now));
            }
            if let Some(tpm) = rule.spec.tpm.filter(|tpm| c.tokens >= *tpm) {
                return Err(rate_refusal(subject, "tpm", tpm, c.minute, now));
            }
            let exempt = request.free && self.free_models_exempt;
            if let Some(limit) = rule.spec.max_budget_usd.filter(|_| !exempt) {
                if c.spent_usd + c.reserved_usd >= limit {
                    let (spent, held) = (c.spent_usd, c.reserved_usd);
                    return Err(budget_refusal(subject, rule, spent, held, now));
                }
            }
        }
        Ok(self.reserve(&mut counters, request, &rules, Vec::new()))
    }

    /// Admission against the slices leased from the shared store: the hold, or the slices to
    /// lease first (Ok), or the refusal. `last`: no more leasing, what is held decides.
    #[allow(clippy::type_complexity)]
    fn admit_shared(
        self: &Arc<Self>,
        shared: &SharedCounters,
        request: &Request<'_>,
        rules: &[(Subject, &Rule)],
        last: bool,
    ) -> Result<Hold, Result<Vec<Want>, Refusal>> {
        let now = self.clock.now_ms();
        let mut counters = self.lock();
        // At most three needs (budget, rpm, tpm) per subject, by the index of its rule.
        let mut needs: Vec<Need> = Vec::with_capacity(rules.len() * 3);
        for (i, (subject, rule)) in rules.iter().enumerate() {
            let c = counters.entry(subject.clone()).or_default();
            c.roll(rule.spec.budget_period, now);
            let minute = c.minute;
            let mut need = |metric, window, units: i64, limit: u64| {
                needs.push(Need {
                    rule: i,
                    metric,
                    window,
                    units,
                    limit: i64::try_from(limit).unwrap_or(i64::MAX),
                })
            };
            if let Some(rpm) = rule.spec.rpm {
                need(Metric::Requests, minute, 1, rpm);
            }
            if let Some(tpm) = rule.spec.tpm {
                let tokens = i64::try_from(request.tokens).unwrap_or(i64::MAX);
                need(Metric::Tokens, minute, tokens, tpm);
            }
            let exempt = request.free && self.free_models_exempt;
            if let Some(limit) = rule.spec.max_budget_usd.filter(|_| !exempt) {
                let limit = u64::try_from(micros(limit)).unwrap_or(0);
                let window = rule.spec.budget_period.start(now);
                need(Metric::Usd, window, micros(request.cost_usd), limit);
            }
        }
        let mut wants = Vec::new();
        for need in &needs {
            let (subject, rule) = &rules[need.rule];
            let Some(c) = counters.get_mut(subject) else {
                continue;
            };
            let seed = c.seed;
            let lease = &mut c.leases[need.metric.index()];
            lease.roll(need.window);
            if lease.allowance >= need.units.max(1) {
                continue;
            }
            // Nothing to take (a count of tokens, an unpriced model): it passes while the
            // limit was not spent when last seen (as locally: while what is used is under it).
            if need.units == 0 && !lease.spent && lease.committed < need.limit {
                continue;
            }
            if last {
                // The last of a limit admits one more request (the overshoot of what is in
                // flight, as locally); a limit with nothing left refuses.
                if lease.allowance > 0 {
                    continue;
                }
                return Err(Err(match need.metric {
                    Metric::Requests => {
                        rate_refusal(subject, "rpm", rule.spec.rpm.unwrap_or(0), need.window, now)
                    }
                    Metric::Tokens => {
                        rate_refusal(subject, "tpm", rule.spec.tpm.unwrap_or(0), need.window, now)
                    }
                    Metric::Usd => {
                        let held = c.reserved_usd;
                        let spent = (usd(lease.committed - lease.allowance) - held).max(0.0);
                        budget_refusal(subject, rule, spent, held, now)
                    }
                }));
            }
            let slice = lease_units(need.limit, shared.lease_share);
            wants.push(Want {
                subject: subject.clone(),
                metric: need.metric,
                window: need.window,
                counter: self.counter(subject, need.metric, need.window, seed, now),
                units: slice.max(need.units - lease.allowance),
                limit: need.limit,
            });
        }
        if !wants.is_empty() {
            return Err(Ok(wants));
        }
        // Every slice holds what the request needs: take it, and lease the next slice in the
        // background where one runs low.
        let mut taken: Vec<Taken> = vec![[None; 3]; rules.len()];
        let mut refills = Vec::new();
        for need in needs {
            let subject = &rules[need.rule].0;
            let Some(c) = counters.get_mut(subject) else {
                continue;
            };
            let seed = c.seed;
            let lease = &mut c.leases[need.metric.index()];
            // What the slice holds of the need; the rest (the last request of a limit) is
            // added to the store if the request really uses it.
            let take = need.units.min(lease.allowance.max(0));
            lease.allowance -= take;
            taken[need.rule][need.metric.index()] = Some((need.window, take));
            let slice = lease_units(need.limit, shared.lease_share);
            if lease.allowance * 2 < slice && !lease.fetching && !lease.spent {
                lease.fetching = true;
                refills.push(Want {
                    subject: subject.clone(),
                    metric: need.metric,
                    window: need.window,
                    counter: self.counter(subject, need.metric, need.window, seed, now),
                    units: slice,
                    limit: need.limit,
                });
            }
        }
        let hold = self.reserve(&mut counters, request, rules, taken);
        drop(counters);
        for want in refills {
            self.spawn_refill(want);
        }
        self.maybe_sweep(now);
        Ok(hold)
    }

    /// Counts an admitted request on its subjects (with what it took of shared slices).
    fn reserve(
        self: &Arc<Self>,
        counters: &mut HashMap<Subject, Counters>,
        request: &Request<'_>,
        rules: &[(Subject, &Rule)],
        taken: Vec<Taken>,
    ) -> Hold {
        let mut reserved = Vec::with_capacity(rules.len());
        for (i, (subject, rule)) in rules.iter().enumerate() {
            let c = counters.entry(subject.clone()).or_default();
            c.requests += 1;
            c.tokens += request.tokens;
            let usd = if rule.spec.max_budget_usd.is_some() {
                request.cost_usd.max(0.0)
            } else {
                0.0
            };
            c.reserved_usd += usd;
            c.in_flight += 1;
            reserved.push(Reserved {
                subject: subject.clone(),
                window_start: c.window_start,
                minute: c.minute,
                usd,
                tokens: request.tokens,
                taken: taken.get(i).copied().unwrap_or_default(),
            });
        }
        Hold {
            limiter: self.clone(),
            reserved,
            settled: false,
        }
    }

    /// Adds `units` to a shared counter in the background (what a request cost beyond the
    /// slice it took).
    fn spawn_add(self: &Arc<Self>, counter: Counter, units: i64) {
        let Some(shared) = self.shared.get() else {
            return;
        };
        let store = shared.store.clone();
        self.spawn(async move {
            if let Err(e) = tokio::time::timeout(STORE_TIMEOUT, store.add(&counter, units)).await.unwrap_or_else(|_| Err("timed out".into())) {
                tracing::warn!(error = %e, key = %counter.key, units, "could not add to a shared limit counter");
            }
        });
    }

    /// Leases the next slice in the background.
    fn spawn_refill(self: &Arc<Self>, want: Want) {
        let Some(shared) = self.shared.get() else {
            return;
        };
        let store = shared.store.clone();
        let limiter = self.clone();
        self.spawn(async move {
            let grant = lease_in_time(store.as_ref(), &want).await;
            let mut counters = limiter.lock();
            let lease = &mut counters.entry(want.subject.clone()).or_default().leases[want.metric.index()];
            lease.fetching = false;
            match grant {
                Ok(grant) => apply_grant(lease, &want, grant),
                Err(e) => tracing::warn!(error = %e, subject = %want.subject, "could not lease the next slice of a shared limit"),
            }
        });
    }

    /// Drops the store's counters of ended windows, at most every ten minutes.
    fn maybe_sweep(&self, now: i64) {
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now - last < SWEEP_EVERY_MS
            || self
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let Some(shared) = self.shared.get() else {
            return;
        };
        let store = shared.store.clone();
        self.spawn(async move {
            if let Err(e) = store.sweep(now).await {
                tracing::warn!(error = %e, "could not drop the limit counters of ended windows");
            }
        });
    }

    /// Gives the unused slices of the current windows back to the shared store (at shutdown),
    /// so that other instances can spend them.
    pub async fn give_back(&self) {
        let Some(shared) = self.shared.get() else {
            return;
        };
        let now = self.clock.now_ms();
        let mut returns = Vec::new();
        {
            let mut counters = self.lock();
            for (subject, c) in counters.iter_mut() {
                for metric in Metric::ALL {
                    let lease = &mut c.leases[metric.index()];
                    if lease.allowance > 0 {
                        let counter = self.counter(subject, metric, lease.window, c.seed, now);
                        returns.push((counter, lease.allowance));
                        lease.allowance = 0;
                    }
                }
            }
        }
        for (counter, units) in returns {
            let given =
                tokio::time::timeout(STORE_TIMEOUT, shared.store.add(&counter, -units)).await;
            if !matches!(given, Ok(Ok(_))) {
                tracing::warn!(key = %counter.key, units, "could not give an unused slice back to the shared limit counters");
            }
        }
    }

    /// A subject's limit of `metric`, in the store's units.
    fn limit_units(&self, subject: &Subject, metric: Metric) -> Option<i64> {
        let spec = &self.rule(subject)?.spec;
        match metric {
            Metric::Usd => spec.max_budget_usd.map(micros),
            Metric::Requests => spec.rpm.and_then(|v| i64::try_from(v).ok()),
            Metric::Tokens => spec.tpm.and_then(|v| i64::try_from(v).ok()),
        }
    }

    /// One lease's units of a subject's limit of `metric` (0 without shared counters).
    fn slice(&self, subject: &Subject, metric: Metric) -> i64 {
        match (self.shared.get(), self.limit_units(subject, metric)) {
            (Some(shared), Some(limit)) => lease_units(limit, shared.lease_share),
            _ => 0,
        }
    }

    /// Runs a store call in the background on the current runtime (none: a test without one,
    /// where nothing is shared), counted in [`Self::store_calls_pending`].
    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        use std::sync::atomic::Ordering::SeqCst;
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let pending = self.pending.clone();
            pending.fetch_add(1, SeqCst);
            handle.spawn(async move {
                task.await;
                pending.fetch_sub(1, SeqCst);
            });
        }
    }

    /// Milliseconds since the limiter was made, on the real monotonic clock.
    fn monotonic_ms(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    /// Store calls still running in the background (tests wait for 0 before reading counters).
    pub fn store_calls_pending(&self) -> usize {
        self.pending.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Reads the shared counters of the current windows, of every subject or of `only` (for
    /// `GET /v1/keys` and `/v1/keys/self`).
    pub async fn refresh(&self, only: Option<&Subject>) {
        let Some(shared) = self.shared.get() else {
            return;
        };
        let now = self.clock.now_ms();
        let mut keys = Vec::new();
        for (subject, rule) in self.all_rules() {
            if only.is_some_and(|o| *o != subject) {
                continue;
            }
            let minute = now - now.rem_euclid(MINUTE_MS);
            if rule.spec.max_budget_usd.is_some() {
                keys.push((
                    subject.clone(),
                    Metric::Usd,
                    rule.spec.budget_period.start(now),
                ));
            }
            if rule.spec.rpm.is_some() {
                keys.push((subject.clone(), Metric::Requests, minute));
            }
            if rule.spec.tpm.is_some() {
                keys.push((subject, Metric::Tokens, minute));
            }
        }
        for (subject, metric, window) in keys {
            let key = self.counter(&subject, metric, window, None, now).key;
            let Ok(Ok(value)) = tokio::time::timeout(STORE_TIMEOUT, shared.store.get(&key)).await
            else {
                continue;
            };
            let mut counters = self.lock();
            let lease = &mut counters.entry(subject).or_default().leases[metric.index()];
            lease.roll(window);
            lease.committed = value.unwrap_or(0);
        }
    }

    /// A shared counter of `subject`: its key, its seed (the ledger's spend, for the budget
    /// window start-up read it for) and its window's end.
    fn counter(
        &self,
        subject: &Subject,
        metric: Metric,
        window: i64,
        seed: Option<(i64, f64)>,
        now: i64,
    ) -> Counter {
        let end = match metric {
            Metric::Usd => self
                .rule(subject)
                .and_then(|r| r.spec.budget_period.end(window)),
            Metric::Requests | Metric::Tokens => Some(window + MINUTE_MS),
        };
        let who = match subject {
            Subject::Key(label) => format!("k:{label}"),
            Subject::Project(id) => format!("p:{id}"),
        };
        Counter {
            key: format!("{}:{window}:{who}", metric.as_str()),
            seed: match (metric, seed) {
                (Metric::Usd, Some((start, spent))) if start == window => micros(spent),
                _ => 0,
            },
            expires_at_ms: end,
            ttl_ms: end.map(|e| e - now),
        }
    }

    fn all_rules(&self) -> impl Iterator<Item = (Subject, &Rule)> + '_ {
        let keys = self.keys.iter().map(|(k, r)| (Subject::Key(k.clone()), r));
        let projects = self
            .projects
            .iter()
            .map(|(p, r)| (Subject::Project(p.clone()), r));
        keys.chain(projects)
    }

    /// Spend already recorded in the ledger for a subject's current window, at start-up (so
    /// that a restart keeps it). Added to what the counters hold.
    pub fn seed(&self, subject: Subject, window_start: i64, spent_usd: f64) {
        let period = match self.rule(&subject) {
            Some(rule) => rule.spec.budget_period,
            None => return,
        };
        let now = self.clock.now_ms();
        if period.start(now) != window_start {
            return;
        }
        let mut counters = self.lock();
        let c = counters.entry(subject).or_default();
        c.roll(period, now);
        c.spent_usd += spent_usd;
        let seeded = c.seed.map_or(0.0, |(_, s)| s);
        c.seed = Some((window_start, seeded + spent_usd));
    }

    /// Spend recorded outside a request (an adjustment; tests use it to start from a budget
    /// partly spent): added to the subject's current budget window, and to the shared counter
    /// when the counters are shared.
    pub async fn add_spend(&self, subject: &Subject, spent_usd: f64) {
        let Some(rule) = self.rule(subject) else {
            return;
        };
        let now = self.clock.now_ms();
        let window = rule.spec.budget_period.start(now);
        let counter = {
            let mut counters = self.lock();
            let c = counters.entry(subject.clone()).or_default();
            c.roll(rule.spec.budget_period, now);
            c.spent_usd += spent_usd.max(0.0);
            self.counter(subject, Metric::Usd, window, c.seed, now)
        };
        let Some(shared) = self.shared.get() else {
            return;
        };
        match tokio::time::timeout(STORE_TIMEOUT, shared.store.add(&counter, micros(spent_usd)))
            .await
        {
            Ok(Ok(used)) => {
                let mut counters = self.lock();
                let lease =
                    &mut counters.entry(subject.clone()).or_default().leases[Metric::Usd.index()];
                lease.roll(window);
                lease.committed = lease.committed.max(used);
                if let Some(limit) = self.limit_units(subject, Metric::Usd) {
                    trim(lease, limit);
                }
            }
            _ => tracing::warn!(%subject, "could not add spend to the shared limit counters"),
        }
    }

    /// The typical output of a model (its mean output tokens so far), if any request of it
    /// was seen.
    pub fn typical_output(&self, model: &str) -> Option<u64> {
        let outputs = self.outputs.lock().unwrap_or_else(|p| p.into_inner());
        outputs
            .get(model)
            .filter(|(_, n)| *n > 0.0)
            .map(|(sum, n)| (sum / n).ceil() as u64)
    }

    /// Adds `requests` requests of `model` with `output_tokens` output tokens in all to the
    /// typical output (start-up reads the ledger's; the meter adds each request's).
    pub fn note_output(&self, model: &str, requests: u64, output_tokens: u64) {
        if requests == 0 || self.is_empty() {
            return;
        }
        let mut outputs = self.outputs.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: a model id the limiter has not seen joins only while there is room.
        if outputs.len() >= MAX_MODELS && !outputs.contains_key(model) {
            return;
        }
        let entry = outputs.entry(model.to_string()).or_default();
        entry.0 += output_tokens as f64;
        entry.1 += requests as f64;
    }

    fn rule(&self, subject: &Subject) -> Option<&Rule> {
        match subject {
            Subject::Key(label) => self.keys.get(label),
            Subject::Project(id) => self.projects.get(id),
        }
    }

    /// Every limited subject with its budget period's current start: what start-up reads
    /// from the ledger.
    pub fn budget_windows(&self) -> Vec<(Subject, i64)> {
        let now = self.clock.now_ms();
        self.all_rules()
            .filter(|(_, r)| r.spec.max_budget_usd.is_some())
            .map(|(s, r)| (s, r.spec.budget_period.start(now)))
            .collect()
    }

    /// Every limited subject, its limits and where its counters stand.
    pub fn views(&self) -> Vec<LimitView> {
        let mut subjects: Vec<Subject> = self
            .keys
            .keys()
            .map(|k| Subject::Key(k.clone()))
            .chain(self.projects.keys().map(|p| Subject::Project(p.clone())))
            .collect();
        subjects.sort();
        subjects.iter().filter_map(|s| self.view(s)).collect()
    }

    /// One subject's limits and counters (None when it has no limit).
    pub fn view(&self, subject: &Subject) -> Option<LimitView> {
        let rule = self.rule(subject)?;
        let now = self.clock.now_ms();
        let mut counters = self.lock();
        let c = counters.entry(subject.clone()).or_default();
        c.roll(rule.spec.budget_period, now);
        let spec = &rule.spec;
        let used_usd = self.budget_committed(c, rule, now);
        let (requests, tokens) = match self.shared.get() {
            None => (c.requests, c.tokens),
            Some(_) => {
                let minute = |m: Metric| {
                    let lease = &c.leases[m.index()];
                    let used = if lease.window == c.minute {
                        lease.committed - lease.allowance.max(0)
                    } else {
                        0
                    };
                    u64::try_from(used).unwrap_or(0)
                };
                (minute(Metric::Requests), minute(Metric::Tokens))
            }
        };
        let (kind, id) = match subject {
            Subject::Key(label) => ("key", label.clone()),
            Subject::Project(id) => ("project", id.clone()),
        };
        Some(LimitView {
            kind,
            id,
            budget: spec.max_budget_usd.map(|limit| BudgetView {
                limit_usd: limit,
                period: spec.budget_period,
                spent_usd: (used_usd - c.reserved_usd).max(0.0),
                reserved_usd: c.reserved_usd,
                remaining_usd: (limit - used_usd).max(0.0),
                used_share: if limit > 0.0 {
                    (used_usd / limit).min(1.0)
                } else {
                    1.0
                },
                window_start: rfc3339(c.window_start),
                resets_at: spec.budget_period.end(now).map(rfc3339),
            }),
            rpm: spec.rpm,
            tpm: spec.tpm,
            requests_this_minute: requests,
            tokens_this_minute: tokens,
            in_flight: c.in_flight,
            counters: self.shared_store().unwrap_or("local"),
            models: spec.models.clone(),
        })
    }
}

/// A rate limit's refusal: `limit` (`rpm` or `tpm`) of `value`, until the minute after `minute`.
fn rate_refusal(
    subject: &Subject,
    limit: &'static str,
    value: u64,
    minute: i64,
    now: i64,
) -> Refusal {
    let next_minute = minute + MINUTE_MS;
    Refusal::Rate {
        subject: subject.to_string(),
        limit,
        value,
        resets_at: rfc3339(next_minute),
        retry_after_secs: seconds_until(now, next_minute),
    }
}

/// A spent budget's refusal.
fn budget_refusal(
    subject: &Subject,
    rule: &Rule,
    spent_usd: f64,
    reserved_usd: f64,
    now: i64,
) -> Refusal {
    let period = rule.spec.budget_period;
    let end = period.end(now);
    Refusal::Budget {
        subject: subject.to_string(),
        limit_usd: rule.spec.max_budget_usd.unwrap_or(0.0),
        spent_usd,
        reserved_usd,
        period,
        resets_at: end.map(rfc3339),
        retry_after_secs: end.map(|e| seconds_until(now, e)),
    }
}

/// How many units one lease of a limit takes: its share of the limit, at least one.
fn lease_units(limit: i64, share: f64) -> i64 {
    ((limit as f64 * share).ceil() as i64).max(1)
}

/// One lease, given up after [`STORE_TIMEOUT`].
async fn lease_in_time(store: &dyn Store, want: &Want) -> Result<Grant, String> {
    tokio::time::timeout(
        STORE_TIMEOUT,
        store.lease(&want.counter, want.units, want.limit),
    )
    .await
    .unwrap_or_else(|_| Err("the shared limit counters did not answer within 2 s".into()))
}

/// What a lease got, into the slice it was for (a slice of an ended window is dropped).
fn apply_grant(lease: &mut Lease, want: &Want, grant: Grant) {
    if lease.window != want.window {
        return;
    }
    lease.allowance += grant.granted;
    // Grants land in any order; a counter only grows within its window.
    lease.committed = lease.committed.max(grant.used);
    lease.spent = grant.granted < want.units;
    trim(lease, want.limit);
}

/// A limit the store counts past (a request used more than it took, and that was added
/// while a lease was on its way) leaves no slice to spend: what is over is cut from the
/// slice held, so that the next request finds the limit spent.
fn trim(lease: &mut Lease, limit: i64) {
    let over = lease.committed - limit;
    if over > 0 {
        lease.allowance -= lease.allowance.clamp(0, over);
        lease.spent = true;
    }
}

/// A request's reservation on its subjects' budgets and minutes, settled once.
pub struct Hold {
    limiter: Arc<Limiter>,
    reserved: Vec<Reserved>,
    settled: bool,
}

impl Hold {
    /// Replaces the reservation with what the request really cost and used (a stream: what
    /// was delivered). A window or minute that has since ended is left as it is.
    pub fn settle(mut self, cost_usd: f64, tokens: u64) {
        self.release(cost_usd, tokens);
    }

    fn release(&mut self, cost_usd: f64, tokens: u64) {
        if std::mem::replace(&mut self.settled, true) {
            return;
        }
        // Counted as pending until the store calls it makes are spawned (and counted).
        let pending = self.limiter.pending.clone();
        pending.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let now = self.limiter.clock.now_ms();
        let mut debts = Vec::new();
        let mut counters = self.limiter.lock();
        for r in &self.reserved {
            let Some(c) = counters.get_mut(&r.subject) else {
                continue;
            };
            if c.window_start == r.window_start {
                c.reserved_usd = (c.reserved_usd - r.usd).max(0.0);
                c.spent_usd += cost_usd.max(0.0);
            }
            c.in_flight = c.in_flight.saturating_sub(1);
            if c.minute == r.minute {
                c.tokens = c.tokens.saturating_sub(r.tokens).saturating_add(tokens);
            }
            // The shared slices: what the request took less what it used goes back to the
            // slice; what it used beyond is added to the store.
            for (metric, &(window, took)) in Metric::ALL
                .into_iter()
                .zip(&r.taken)
                .filter_map(|(m, t)| t.as_ref().map(|t| (m, t)))
            {
                let used = match metric {
                    Metric::Usd => micros(cost_usd),
                    Metric::Requests => 1,
                    Metric::Tokens => i64::try_from(tokens).unwrap_or(i64::MAX),
                };
                let lease = &mut c.leases[metric.index()];
                if lease.window != window {
                    continue;
                }
                lease.allowance += took - used;
                let counter = || {
                    self.limiter
                        .counter(&r.subject, metric, window, c.seed, now)
                };
                if lease.allowance < 0 {
                    let debt = -lease.allowance;
                    lease.committed += debt;
                    lease.allowance = 0;
                    debts.push((counter(), debt));
                }
                if let Some(limit) = self.limiter.limit_units(&r.subject, metric) {
                    trim(lease, limit);
                }
                // What a request did not use returns to the slice; past two slices, the rest
                // goes back to the store, for the other instances.
                let slice = self.limiter.slice(&r.subject, metric);
                if lease.allowance > 2 * slice {
                    let back = lease.allowance - slice;
                    lease.allowance = slice;
                    lease.committed -= back;
                    lease.spent = false;
                    debts.push((counter(), -back));
                }
            }
        }
        drop(counters);
        for (counter, units) in debts {
            self.limiter.spawn_add(counter, units);
        }
        pending.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Hold {
    /// A hold dropped unsettled (the request ended before its cost was known) gives its
    /// reservation back.
    fn drop(&mut self) {
        self.release(0.0, 0);
    }
}

/// `GET /v1/keys`: one key's or project's limits and where they stand.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LimitView {
    /// `key` (a virtual key, by its label) or `project`.
    pub kind: &'static str,
    /// The key's label or the project's id (never a token).
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    pub requests_this_minute: u64,
    pub tokens_this_minute: u64,
    /// Admitted requests that have not ended (on this instance).
    pub in_flight: u64,
    /// Where the counters live: `local` (this instance's), or shared by every instance on
    /// `postgres` (the ledger's database) or `redis` ([limits] redis_url). Shared figures are
    /// every instance's as last read, less the unused slice this instance leased.
    pub counters: &'static str,
    /// The allow-list of models (globs), when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
}

/// A budget and its current window.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BudgetView {
    pub limit_usd: f64,
    pub period: Period,
    /// Spent in the current window (from the ledger at start, then every request that ended).
    pub spent_usd: f64,
    /// Held by requests in flight.
    pub reserved_usd: f64,
    pub remaining_usd: f64,
    /// (spent + reserved) ÷ limit, 0 to 1.
    pub used_share: f64,
    pub window_start: String,
    /// When it starts again; null for a total budget.
    pub resets_at: Option<String>,
}
