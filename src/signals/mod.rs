//! Quality signals: the kinds a client reports against a proxied answer (`POST /v1/signals`),
//! the outcome each counts as, and the evidence per provider and model that the
//! SignalCollector keeps and publishes for the router ([`SignalFigures`]). Imports nothing of
//! the crate, so that the router can read the figures without a circle.

pub mod recent;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// What a client says about an answer.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    ThumbsUp,
    ThumbsDown,
    /// A grade from 0 (worst) to 1 (best), in `value`.
    Score,
    /// The user asked again: the answer did not serve.
    Retry,
    /// The answer was not in the format asked for (invalid JSON, a broken schema).
    BadFormat,
    /// A tool call in the answer failed (bad arguments, an unknown tool).
    ToolError,
    /// The answer was used as it was (a suggestion accepted, an edit applied).
    Accepted,
}

impl SignalKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [SignalKind; 7] = [
        Self::ThumbsUp,
        Self::ThumbsDown,
        Self::Score,
        Self::Retry,
        Self::BadFormat,
        Self::ToolError,
        Self::Accepted,
    ];

    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ThumbsUp => "thumbs_up",
            Self::ThumbsDown => "thumbs_down",
            Self::Score => "score",
            Self::Retry => "retry",
            Self::BadFormat => "bad_format",
            Self::ToolError => "tool_error",
            Self::Accepted => "accepted",
        }
    }

    /// The kind of a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The outcome the signal counts as, from 0 (bad) to 1 (good): `thumbs_up` and
    /// `accepted` 1, a `score` its value, every other kind 0. `value` is a score's
    /// (validated to lie in 0..=1 before it gets here; clamped all the same).
    pub fn outcome(self, value: Option<f64>) -> f64 {
        match self {
            Self::ThumbsUp | Self::Accepted => 1.0,
            Self::Score => value
                .filter(|v| v.is_finite())
                .unwrap_or(0.0)
                .clamp(0.0, 1.0),
            Self::ThumbsDown | Self::Retry | Self::BadFormat | Self::ToolError => 0.0,
        }
    }
}

/// The longest `comment` kept, in characters.
pub const MAX_COMMENT_CHARS: usize = 2000;
/// The longest `source`, in characters.
pub const MAX_SOURCE_CHARS: usize = 200;
/// The longest `request_id`, in characters (the gateway's are 36).
const MAX_REQUEST_ID_CHARS: usize = 100;
/// The members a signal's body may have.
const FIELDS: [&str; 5] = ["request_id", "signal", "value", "comment", "source"];

/// The body of `POST /v1/signals`, as sent.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignalBody {
    /// The `x-request-id` of the proxied answer the signal is about.
    #[schema(value_type = String, required = true, example = "0193a6c4-1f2e-7cc1-9d35-6a1c2b3d4e5f")]
    pub request_id: Option<String>,
    #[schema(value_type = SignalKind, required = true)]
    pub signal: Option<SignalKind>,
    /// A `score`'s grade, 0 to 1; only with `signal: "score"`, and required with it.
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub value: Option<f64>,
    /// Free text, at most 2000 characters.
    #[schema(max_length = 2000)]
    pub comment: Option<String>,
    /// Who reports (a tool, a reviewer): the same request may get the same kind once per
    /// source. At most 200 characters; default "".
    #[schema(max_length = 200)]
    pub source: Option<String>,
}

/// A signal as validated.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalReport {
    pub request_id: String,
    pub kind: SignalKind,
    /// A score's value; None for the other kinds.
    pub value: Option<f64>,
    pub comment: Option<String>,
    /// '' when none was given.
    pub source: String,
}

/// Why a signal's body was refused: the member at fault (None: the body as a whole) and what
/// to send instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSignal {
    pub field: Option<String>,
    pub message: String,
}

fn invalid(field: &str, message: String) -> InvalidSignal {
    InvalidSignal {
        field: Some(field.to_string()),
        message,
    }
}

impl SignalReport {
    /// Validates a signal's JSON body; the error names the member at fault.
    pub fn from_json(body: serde_json::Value) -> Result<Self, InvalidSignal> {
        let Some(members) = body.as_object() else {
            return Err(InvalidSignal {
                field: None,
                message: "the body must be a JSON object: {\"request_id\": …, \"signal\": …}"
                    .into(),
            });
        };
        if let Some(unknown) = members.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            let name: String = unknown.chars().take(100).collect();
            return Err(invalid(
                &name,
                format!(
                    "unknown field `{name}`: a signal takes {}",
                    FIELDS.join(", ")
                ),
            ));
        }
        let body: SignalBody = serde_path_to_error::deserialize(body).map_err(|e| {
            let field = e.path().to_string();
            let field = field
                .split(['.', '['])
                .next()
                .unwrap_or_default()
                .to_string();
            InvalidSignal {
                message: format!("`{field}`: {}", e.into_inner()),
                field: (!field.is_empty()).then_some(field),
            }
        })?;
        let request_id = body
            .request_id
            .map(|id| id.trim().to_string())
            .unwrap_or_default();
        if request_id.is_empty() {
            return Err(invalid(
                "request_id",
                "`request_id` is required: the x-request-id header of the proxied answer".into(),
            ));
        }
        if request_id.chars().any(char::is_control) {
            return Err(invalid(
                "request_id",
                "`request_id` holds a control character: send the x-request-id header of a proxied answer".into(),
            ));
        }
        if request_id.chars().count() > MAX_REQUEST_ID_CHARS {
            return Err(invalid(
                "request_id",
                format!("`request_id` is longer than {MAX_REQUEST_ID_CHARS} characters: send the x-request-id header of a proxied answer"),
            ));
        }
        let Some(kind) = body.signal else {
            return Err(invalid(
                "signal",
                format!(
                    "`signal` is required: one of {}",
                    SignalKind::ALL.map(SignalKind::as_str).join(", ")
                ),
            ));
        };
        let value = match (kind, body.value) {
            (SignalKind::Score, None) => {
                return Err(invalid(
                    "value",
                    "a `score` needs a `value` from 0 to 1".into(),
                ))
            }
            (SignalKind::Score, Some(v)) if !(v.is_finite() && (0.0..=1.0).contains(&v)) => {
                return Err(invalid(
                    "value",
                    format!("`value` must lie from 0 to 1, not {v}"),
                ))
            }
            (SignalKind::Score, Some(v)) => Some(v),
            (_, Some(_)) => {
                return Err(invalid(
                    "value",
                    format!(
                        "`value` is taken with `signal: \"score\"` only, not with `{}`",
                        kind.as_str()
                    ),
                ))
            }
            (_, None) => None,
        };
        if let Some(comment) = &body.comment {
            // PostgreSQL's text holds no NUL: one would fail every batch it is written with.
            if comment.contains('\0') {
                return Err(invalid("comment", "`comment` holds a NUL character".into()));
            }
            let chars = comment.chars().count();
            if chars > MAX_COMMENT_CHARS {
                return Err(invalid(
                    "comment",
                    format!(
                        "`comment` has {chars} characters; at most {MAX_COMMENT_CHARS} are kept"
                    ),
                ));
            }
        }
        let source = body.source.unwrap_or_default();
        if source.chars().any(char::is_control) {
            return Err(invalid(
                "source",
                "`source` holds a control character".into(),
            ));
        }
        if source.chars().count() > MAX_SOURCE_CHARS {
            return Err(invalid(
                "source",
                format!("`source` is longer than {MAX_SOURCE_CHARS} characters"),
            ));
        }
        Ok(Self {
            request_id,
            kind,
            value,
            comment: body.comment,
            source,
        })
    }
}

/// What the signals say of one provider and model: `n` signals whose outcomes
/// ([`SignalKind::outcome`]) add up to `sum`, so `sum / n` is their mean, from 0 to 1.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Evidence {
    pub n: u32,
    pub sum: f64,
}

impl Evidence {
    /// Counts one more signal.
    pub fn add(&mut self, outcome: f64) {
        self.n = self.n.saturating_add(1);
        self.sum += outcome;
    }

    /// The mean outcome, None without signals.
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / f64::from(self.n))
    }
}

/// About how many of a provider and model's latest signals count for routing: each new signal
/// multiplies the weight of those before it by `1 − 1/RECENT_SIGNALS` (an exponential window),
/// so that quality follows a provider that changes.
pub const RECENT_SIGNALS: f64 = 100.0;

/// The recent signals of a provider and model, older ones fading: their total `weight` (at
/// most [`RECENT_SIGNALS`]) and the `sum` of their weighted outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Recent {
    pub weight: f64,
    pub sum: f64,
}

impl Recent {
    /// Takes in `evidence` as its signals' newest: `n` signals of mean outcome `sum / n` weigh
    /// `RECENT_SIGNALS · (1 − λⁿ)` together, and what came before fades by `λⁿ`
    /// (λ = 1 − 1/RECENT_SIGNALS): one signal at a time is exactly the exponential window.
    pub fn add(&mut self, evidence: Evidence) {
        let Some(mean) = evidence.mean() else {
            return;
        };
        let keep = (1.0 - 1.0 / RECENT_SIGNALS).powf(f64::from(evidence.n));
        let new = RECENT_SIGNALS * (1.0 - keep);
        self.weight = self.weight * keep + new;
        self.sum = self.sum * keep + mean * new;
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Entry {
    all: Evidence,
    recent: Recent,
}

type Fast = foldhash::fast::RandomState;

/// Every provider and model's evidence, as published: an immutable snapshot the request
/// path reads (through an `Arc<ArcSwap<SignalFigures>>`) without a message.
#[derive(Debug, Clone, Default)]
pub struct SignalFigures {
    /// foldhash: looked up for every candidate of every routed request.
    by_key: HashMap<String, HashMap<String, Entry, Fast>, Fast>,
}

/// One provider's part of the [`SignalFigures`].
#[derive(Debug, Clone, Copy)]
pub struct ProviderSignals<'a>(&'a HashMap<String, Entry, Fast>);

impl ProviderSignals<'_> {
    /// The recent signals of one of the provider's models.
    pub fn recent(&self, model: &str) -> Option<Recent> {
        self.0.get(model).map(|e| e.recent)
    }
}

impl SignalFigures {
    /// The evidence of a model at a provider (`model` as the ledger records it: the model
    /// the provider answered with), None when no signal was reported for it.
    pub fn get(&self, provider: &str, model: &str) -> Option<Evidence> {
        self.by_key.get(provider)?.get(model).map(|e| e.all)
    }

    /// The recent signals of a model at a provider (what routing weighs), None without any.
    pub fn recent(&self, provider: &str, model: &str) -> Option<Recent> {
        self.of_provider(provider)?.recent(model)
    }

    /// The evidence of one provider's models, None when none has any: the router looks the
    /// provider up once for all the ids of a card.
    pub fn of_provider(&self, provider: &str) -> Option<ProviderSignals<'_>> {
        if self.by_key.is_empty() {
            return None;
        }
        self.by_key.get(provider).map(ProviderSignals)
    }

    /// Every (provider, model, evidence), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, Evidence)> {
        self.by_key.iter().flat_map(|(provider, models)| {
            models
                .iter()
                .map(move |(model, e)| (provider.as_str(), model.as_str(), e.all))
        })
    }

    /// Providers and models with evidence.
    pub fn len(&self) -> usize {
        self.by_key.values().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

/// The SignalCollector's working state: evidence per provider and model, and whether it
/// changed since it was last published.
#[derive(Debug, Default)]
pub struct EvidenceTally {
    figures: SignalFigures,
    changed: bool,
}

impl EvidenceTally {
    /// Adds evidence (a signal written, or the database's totals at start-up).
    pub fn add(&mut self, provider: &str, model: &str, evidence: Evidence) {
        let models = self.figures.by_key.entry(provider.to_string()).or_default();
        let entry = models.entry(model.to_string()).or_default();
        entry.all.n = entry.all.n.saturating_add(evidence.n);
        entry.all.sum += evidence.sum;
        entry.recent.add(evidence);
        self.changed = true;
    }

    /// The snapshot to publish, when anything changed since the last call.
    pub fn publish(&mut self) -> Option<SignalFigures> {
        std::mem::take(&mut self.changed).then(|| self.figures.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_signals_fade_in_an_exponential_window() {
        let mut one_by_one = Recent::default();
        for _ in 0..10 {
            one_by_one.add(Evidence { n: 1, sum: 1.0 });
        }
        let mut at_once = Recent::default();
        at_once.add(Evidence { n: 10, sum: 10.0 });
        assert!((one_by_one.weight - at_once.weight).abs() < 1e-9);
        assert!((one_by_one.sum - at_once.sum).abs() < 1e-9);
        // Ten signals weigh a little under ten; a million, the window.
        assert!(one_by_one.weight > 9.5 && one_by_one.weight < 10.0);
        let mut many = Recent::default();
        many.add(Evidence {
            n: 1_000_000,
            sum: 250_000.0,
        });
        assert!((many.weight - RECENT_SIGNALS).abs() < 1e-6);
        assert!((many.sum / many.weight - 0.25).abs() < 1e-9);
        // After 100 signals of 0, the earlier mean of 0.25 has faded to about a third of its
        // weight (λ¹⁰⁰ ≈ e⁻¹).
        many.add(Evidence { n: 100, sum: 0.0 });
        let mean = many.sum / many.weight;
        assert!((mean - 0.25 * 0.366).abs() < 0.005, "{mean}");
    }

    #[test]
    fn each_kind_counts_as_its_outcome() {
        let outcomes: Vec<(&str, f64)> = SignalKind::ALL
            .into_iter()
            .map(|k| (k.as_str(), k.outcome(Some(0.25))))
            .collect();
        assert_eq!(
            outcomes,
            vec![
                ("thumbs_up", 1.0),
                ("thumbs_down", 0.0),
                ("score", 0.25),
                ("retry", 0.0),
                ("bad_format", 0.0),
                ("tool_error", 0.0),
                ("accepted", 1.0),
            ]
        );
        assert_eq!(SignalKind::Score.outcome(None), 0.0);
        assert_eq!(SignalKind::Score.outcome(Some(f64::NAN)), 0.0);
        for kind in SignalKind::ALL {
            assert_eq!(SignalKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(SignalKind::parse("thumbs_sideways"), None);
    }

    fn refused(body: serde_json::Value) -> Option<String> {
        SignalReport::from_json(body).err().and_then(|e| e.field)
    }

    #[test]
    fn every_bad_member_is_named() {
        use serde_json::json;
        let id = "0193a6c4-1f2e-7cc1-9d35-6a1c2b3d4e5f";
        let cases = [
            (json!({"signal": "thumbs_up"}), "request_id"),
            (
                json!({"request_id": " ", "signal": "thumbs_up"}),
                "request_id",
            ),
            (
                json!({"request_id": 7, "signal": "thumbs_up"}),
                "request_id",
            ),
            (
                json!({"request_id": "x".repeat(101), "signal": "thumbs_up"}),
                "request_id",
            ),
            (json!({"request_id": id}), "signal"),
            (
                json!({"request_id": id, "signal": "thumbs_sideways"}),
                "signal",
            ),
            (json!({"request_id": id, "signal": "score"}), "value"),
            (
                json!({"request_id": id, "signal": "score", "value": 1.5}),
                "value",
            ),
            (
                json!({"request_id": id, "signal": "score", "value": -0.1}),
                "value",
            ),
            (
                json!({"request_id": id, "signal": "score", "value": "NaN"}),
                "value",
            ),
            (
                json!({"request_id": id, "signal": "retry", "value": 0.5}),
                "value",
            ),
            (
                json!({"request_id": id, "signal": "retry", "comment": "x".repeat(2001)}),
                "comment",
            ),
            (
                json!({"request_id": id, "signal": "retry", "comment": 3}),
                "comment",
            ),
            (
                json!({"request_id": id, "signal": "retry", "source": "s".repeat(201)}),
                "source",
            ),
            (
                json!({"request_id": id, "signal": "retry", "rating": 5}),
                "rating",
            ),
        ];
        for (body, field) in cases {
            assert_eq!(refused(body.clone()).as_deref(), Some(field), "{body}");
        }
        assert_eq!(refused(json!([1, 2])), None);
        let ok = SignalReport::from_json(
            json!({"request_id": id, "signal": "score", "value": 0.5, "comment": "é".repeat(2000)}),
        );
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn the_tally_publishes_its_sums_once_per_change() {
        let mut tally = EvidenceTally::default();
        assert!(tally.publish().is_none(), "nothing yet");
        tally.add("openai", "gpt-4o", Evidence { n: 2, sum: 1.5 });
        tally.add("openai", "gpt-4o", Evidence { n: 1, sum: 0.0 });
        tally.add("anthropic", "claude", Evidence { n: 1, sum: 1.0 });
        let figures = tally.publish().unwrap_or_default();
        assert_eq!(
            figures.get("openai", "gpt-4o"),
            Some(Evidence { n: 3, sum: 1.5 })
        );
        assert_eq!(
            figures.get("openai", "gpt-4o").and_then(|e| e.mean()),
            Some(0.5)
        );
        assert_eq!(figures.get("anthropic", "claude").map(|e| e.n), Some(1));
        assert_eq!(figures.get("openai", "claude"), None);
        assert_eq!(figures.len(), 2);
        assert!(tally.publish().is_none(), "nothing changed");
    }
}
