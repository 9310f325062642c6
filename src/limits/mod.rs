//! Budgets and rate limits per virtual key and project: the admission stage's rules, its
//! counters, and the hold a request keeps on its budget until its real cost is known.
//!
//! A request is admitted while, for every limited subject it belongs to (its key's label, its
//! `x-project`), the minute's requests are under `rpm`, the minute's tokens under `tpm`, and
//! the spend plus the reservations in flight under `max_budget_usd`. Admission reserves the
//! request's expected cost and tokens; [`Hold::settle`] replaces them with the real figures.
//! Concurrent requests can therefore overshoot a budget by at most what is in flight. Every
//! check and update happens under one lock, never read-then-write across an await.

pub mod window;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Serialize;

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
}

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
                let used = c.spent_usd + c.reserved_usd;
                Some(if limit > 0.0 { used / limit } else { 1.0 })
            })
            .reduce(f64::max)
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

    /// Admits the request or says which limit refuses it. Nothing is counted for a refused
    /// request; an admitted one holds its reservation until [`Hold::settle`] (or the hold drops).
    pub fn admit(self: &Arc<Self>, request: &Request<'_>) -> Result<Option<Hold>, Refusal> {
        let rules: Vec<(Subject, &Rule)> = self.rules(request.key, request.project).collect();
        if rules.is_empty() {
            return Ok(None);
        }
        let now = self.clock.now_ms();
        let mut counters = self.lock();
        // Every check first, then every update: a refusal leaves nothing counted.
        for (subject, rule) in &rules {
            let c = counters.entry(subject.clone()).or_default();
            c.roll(rule.spec.budget_period, now);
            let next_minute = c.minute + MINUTE_MS;
            let rate = |limit: &'static str, value: u64| Refusal::Rate {
                subject: subject.to_string(),
                limit,
                value,
                resets_at: rfc3339(next_minute),
                retry_after_secs: seconds_until(now, next_minute),
            };
            if let Some(rpm) = rule.spec.rpm.filter(|rpm| c.requests >= *rpm) {
                return Err(rate("rpm", rpm));
            }
            if let Some(tpm) = rule.spec.tpm.filter(|tpm| c.tokens >= *tpm) {
                return Err(rate("tpm", tpm));
            }
            let exempt = request.free && self.free_models_exempt;
            if let Some(limit) = rule.spec.max_budget_usd.filter(|_| !exempt) {
                if c.spent_usd + c.reserved_usd >= limit {
                    let end = rule.spec.budget_period.end(now);
                    return Err(Refusal::Budget {
                        subject: subject.to_string(),
                        limit_usd: limit,
                        spent_usd: c.spent_usd,
                        reserved_usd: c.reserved_usd,
                        period: rule.spec.budget_period,
                        resets_at: end.map(rfc3339),
                        retry_after_secs: end.map(|e| seconds_until(now, e)),
                    });
                }
            }
        }
        let mut reserved = Vec::with_capacity(rules.len());
        for (subject, rule) in rules {
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
                subject,
                window_start: c.window_start,
                minute: c.minute,
                usd,
                tokens: request.tokens,
            });
        }
        Ok(Some(Hold {
            limiter: self.clone(),
            reserved,
            settled: false,
        }))
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
        let keys = self.keys.iter().map(|(k, r)| (Subject::Key(k.clone()), r));
        let projects = self
            .projects
            .iter()
            .map(|(p, r)| (Subject::Project(p.clone()), r));
        keys.chain(projects)
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
                spent_usd: c.spent_usd,
                reserved_usd: c.reserved_usd,
                remaining_usd: (limit - c.spent_usd - c.reserved_usd).max(0.0),
                used_share: if limit > 0.0 {
                    ((c.spent_usd + c.reserved_usd) / limit).min(1.0)
                } else {
                    1.0
                },
                window_start: rfc3339(c.window_start),
                resets_at: spec.budget_period.end(now).map(rfc3339),
            }),
            rpm: spec.rpm,
            tpm: spec.tpm,
            requests_this_minute: c.requests,
            tokens_this_minute: c.tokens,
            in_flight: c.in_flight,
            models: spec.models.clone(),
        })
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
        }
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
    /// Admitted requests that have not ended.
    pub in_flight: u64,
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
