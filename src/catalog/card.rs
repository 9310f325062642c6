//! A model card: what the catalog knows of one model (limits, capabilities, prices, latency and
//! quality priors, dates, and where each figure was read), the patch a config file applies to
//! one, and the conservative card of a local model the catalog does not know.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::providers::ProviderKind;

/// What a model can do, as routing requirements name it.
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
pub enum Capability {
    /// Function / tool calling.
    Tools,
    /// Several tool calls in one answer.
    ParallelTools,
    /// Image input.
    Vision,
    /// Structured output constrained by a JSON schema.
    JsonSchema,
    /// Server-sent-event streaming.
    Streaming,
    /// Extended thinking / reasoning tokens.
    Reasoning,
    /// Provider-side prompt caching.
    PromptCaching,
    /// PDF document input.
    Pdf,
}

impl Capability {
    /// Every capability, in declaration order.
    pub const ALL: [Capability; 8] = [
        Self::Tools,
        Self::ParallelTools,
        Self::Vision,
        Self::JsonSchema,
        Self::Streaming,
        Self::Reasoning,
        Self::PromptCaching,
        Self::Pdf,
    ];

    /// The name used in cards, profiles and requirements.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::ParallelTools => "parallel_tools",
            Self::Vision => "vision",
            Self::JsonSchema => "json_schema",
            Self::Streaming => "streaming",
            Self::Reasoning => "reasoning",
            Self::PromptCaching => "prompt_caching",
            Self::Pdf => "pdf",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of capabilities, as a bit set (checked on every routed request).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities(u16);

impl Capabilities {
    /// The set of these capabilities.
    pub fn of(caps: &[Capability]) -> Self {
        Self(caps.iter().fold(0, |set, c| set | c.bit()))
    }

    pub fn insert(&mut self, cap: Capability) {
        self.0 |= cap.bit();
    }

    /// Whether every capability of `needed` is in the set.
    pub fn covers(self, needed: Self) -> bool {
        self.0 & needed.0 == needed.0
    }

    /// Both sets together.
    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    pub fn contains(self, cap: Capability) -> bool {
        self.0 & cap.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The capabilities of `needed` this set lacks.
    pub fn missing(self, needed: Capabilities) -> impl Iterator<Item = Capability> {
        Capability::ALL
            .into_iter()
            .filter(move |c| needed.contains(*c) && !self.contains(*c))
    }

    /// The members, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL
            .into_iter()
            .filter(move |c| self.contains(*c))
    }
}

/// Prices past a prompt size, where the provider publishes a long-context tier: the whole
/// request is billed at these rates once its input exceeds `above_input_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LongContextPrice {
    pub above_input_tokens: u64,
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_per_mtok: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_per_mtok: Option<f64>,
}

/// The latency a model is expected to show before live figures exist.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencyPrior {
    /// Time to first token, milliseconds (median).
    pub ttft_ms: f64,
    /// Output tokens per second once streaming (median).
    pub output_tokens_per_s: f64,
}

/// Quality priors per task kind, on a 0–1 scale: 1.0 is the strongest model available when
/// the card was written, 0.5 a capable small model, 0.2 a model that manages simple chat
/// only. Derived from public benchmark standings (third-party unless the card says so).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QualityPrior {
    pub general: f64,
    pub coding: f64,
    pub reasoning: f64,
    pub long_context: f64,
}

/// A kind of task, which picks the quality figure a profile scores by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    #[default]
    General,
    Coding,
    Reasoning,
    LongContext,
}

impl TaskKind {
    pub const ALL: [TaskKind; 4] = [
        Self::General,
        Self::Coding,
        Self::Reasoning,
        Self::LongContext,
    ];

    /// The kind of a name (`general`, `coding`, `reasoning`, `long_context`; `long-context`
    /// too), case-insensitively.
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.trim().to_ascii_lowercase().replace('-', "_");
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::General => "general",
            Self::Coding => "coding",
            Self::Reasoning => "reasoning",
            Self::LongContext => "long_context",
        }
    }
}

impl QualityPrior {
    /// The prior for one kind of task.
    pub fn for_task(&self, task: TaskKind) -> f64 {
        match task {
            TaskKind::General => self.general,
            TaskKind::Coding => self.coding,
            TaskKind::Reasoning => self.reasoning,
            TaskKind::LongContext => self.long_context,
        }
    }
}

/// Where a card's figures were read, and when they were last checked. A source marked
/// "third-party" was not (yet) seen on the provider's own page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardSources {
    #[schema(value_type = String)]
    pub prices: Cow<'static, str>,
    #[serde(default, skip_serializing_if = "is_blank")]
    #[schema(value_type = String)]
    pub limits: Cow<'static, str>,
    #[serde(default, skip_serializing_if = "is_blank")]
    #[schema(value_type = String)]
    pub latency: Cow<'static, str>,
    #[serde(default, skip_serializing_if = "is_blank")]
    #[schema(value_type = String)]
    pub quality: Cow<'static, str>,
    /// The date (YYYY-MM-DD) the figures were last checked.
    #[serde(default, skip_serializing_if = "is_blank")]
    #[schema(value_type = String)]
    pub checked: Cow<'static, str>,
}

fn is_blank(text: &str) -> bool {
    text.is_empty()
}

/// Where a card came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CardOrigin {
    /// `settings/catalog.toml`, shipped in the binary.
    #[default]
    Catalog,
    /// Added or changed by the configuration's `[[models]]`.
    Config,
    /// A local model the catalog does not know: conservative defaults, not measurements.
    Defaults,
}

/// What the catalog knows of one model. (No `deny_unknown_fields`: `GET /v1/catalog` adds
/// members beside a card's own. The shipped file's keys are checked by a test, and the
/// configuration's cards are read as [`CardPatch`], which refuses unknown keys.)
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ModelCard {
    pub id: String,
    pub provider_type: ProviderKind,
    /// Other ids of the same model (dated snapshots, a local server's naming).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// The largest prompt plus output, in tokens.
    pub context_window: u64,
    pub max_output_tokens: u64,
    #[schema(value_type = Vec<Capability>)]
    #[serde(with = "capability_list")]
    pub capabilities: Capabilities,
    /// USD per million uncached input tokens.
    pub input_per_mtok: f64,
    /// USD per million output tokens (reasoning tokens included).
    pub output_per_mtok: f64,
    /// Cache reads; absent: billed as input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_per_mtok: Option<f64>,
    /// Cache writes; absent: billed as input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_per_mtok: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_context: Option<LongContextPrice>,
    pub latency: LatencyPrior,
    pub quality: QualityPrior,
    /// YYYY-MM-DD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released: Option<String>,
    /// The provider's announced retirement date (YYYY-MM-DD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retires: Option<String>,
    pub sources: CardSources,
    #[serde(default)]
    pub origin: CardOrigin,
}

mod capability_list {
    use super::{Capabilities, Capability};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(caps: &Capabilities, s: S) -> Result<S::Ok, S::Error> {
        caps.iter().collect::<Vec<_>>().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Capabilities, D::Error> {
        Vec::<Capability>::deserialize(d).map(|v| Capabilities::of(&v))
    }
}

/// Context window assumed for a local model the catalog does not know and whose server does
/// not report one (the smallest window popular local servers default to).
pub const DEFAULT_LOCAL_CONTEXT: u64 = 8192;

impl ModelCard {
    /// The card of a local model the catalog does not know: what its server reported (a
    /// context length, when it reports one) and conservative defaults for the rest, marked
    /// as defaults. It claims streaming only: a capability it lacks would fail requests.
    pub fn local_default(id: &str, reported_context: Option<u64>) -> Self {
        let context_window = reported_context.unwrap_or(DEFAULT_LOCAL_CONTEXT);
        Self {
            id: id.to_string(),
            provider_type: ProviderKind::Local,
            aliases: Vec::new(),
            context_window,
            max_output_tokens: context_window.min(4096),
            capabilities: Capabilities::of(&[Capability::Streaming]),
            input_per_mtok: 0.0,
            output_per_mtok: 0.0,
            cached_input_per_mtok: None,
            cache_write_per_mtok: None,
            long_context: None,
            latency: LatencyPrior {
                ttft_ms: 1500.0,
                output_tokens_per_s: 20.0,
            },
            quality: QualityPrior {
                general: 0.3,
                coding: 0.25,
                reasoning: 0.2,
                long_context: 0.2,
            },
            released: None,
            retires: None,
            // Static text: unknown local models get a card on every routed request.
            sources: CardSources {
                prices: Cow::Borrowed(
                    "defaults: a local model is free unless [[pricing]] says otherwise",
                ),
                limits: Cow::Borrowed(match reported_context {
                    Some(_) => "reported by the local server",
                    None => "defaults: 8192 tokens assumed",
                }),
                latency: Cow::Borrowed("defaults: conservative, until live figures exist"),
                quality: Cow::Borrowed("defaults: conservative"),
                checked: Cow::Borrowed(""),
            },
            origin: CardOrigin::Defaults,
        }
    }

    /// Every id the card answers to: its own, then its aliases.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.id.as_str()).chain(self.aliases.iter().map(String::as_str))
    }
}

/// One `[[models]]` entry of the configuration: a new card, or changes to a catalog card of
/// the same id (only the fields it sets change).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardPatch {
    pub id: String,
    #[serde(default)]
    pub provider_type: Option<ProviderKind>,
    #[serde(default)]
    pub aliases: Option<Vec<String>>,
    #[serde(default)]
    pub context_window: Option<u64>,
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
    #[serde(default)]
    pub capabilities: Option<Vec<Capability>>,
    #[serde(default)]
    pub input_per_mtok: Option<f64>,
    #[serde(default)]
    pub output_per_mtok: Option<f64>,
    #[serde(default)]
    pub cached_input_per_mtok: Option<f64>,
    #[serde(default)]
    pub cache_write_per_mtok: Option<f64>,
    #[serde(default)]
    pub long_context: Option<LongContextPrice>,
    #[serde(default)]
    pub latency: Option<LatencyPrior>,
    #[serde(default)]
    pub quality: Option<QualityPrior>,
    #[serde(default)]
    pub released: Option<String>,
    #[serde(default)]
    pub retires: Option<String>,
    /// Where the configuration's figures come from (shown in `GET /v1/catalog`).
    #[serde(default)]
    pub source: Option<String>,
}

impl CardPatch {
    /// Applies the patch to `card` (an existing card of the same id).
    pub fn apply(&self, card: &mut ModelCard) {
        macro_rules! set {
            ($($field:ident),*) => {$(
                if let Some(value) = &self.$field { card.$field = value.clone(); }
            )*};
        }
        set!(
            provider_type,
            aliases,
            context_window,
            max_output_tokens,
            input_per_mtok,
            output_per_mtok,
            latency,
            quality
        );
        macro_rules! set_opt {
            ($($field:ident),*) => {$(
                if self.$field.is_some() { card.$field = self.$field.clone(); }
            )*};
        }
        set_opt!(
            cached_input_per_mtok,
            cache_write_per_mtok,
            long_context,
            released,
            retires
        );
        if let Some(caps) = &self.capabilities {
            card.capabilities = Capabilities::of(caps);
        }
        let source = self
            .source
            .clone()
            .unwrap_or_else(|| "the configuration's [[models]]".into());
        card.sources.checked = Cow::Borrowed("");
        if self.input_per_mtok.is_some() || self.output_per_mtok.is_some() {
            card.sources.prices = source.clone().into();
        }
        if self.context_window.is_some() || self.max_output_tokens.is_some() {
            card.sources.limits = source.clone().into();
        }
        if self.latency.is_some() {
            card.sources.latency = source.clone().into();
        }
        if self.quality.is_some() {
            card.sources.quality = source.into();
        }
        card.origin = CardOrigin::Config;
    }

    /// A new card from the patch alone: it must give the provider type and, for a cloud
    /// model, the prices; the rest falls back to the conservative defaults of an unknown model.
    pub fn to_card(&self) -> Result<ModelCard, (String, String)> {
        let kind = self.provider_type.ok_or_else(|| {
            (
                "provider_type".to_string(),
                format!(
                    "`{}` is not in the catalog: a new card needs provider_type (anthropic, openai, azure_openai or local)",
                    self.id
                ),
            )
        })?;
        let mut card = ModelCard::local_default(&self.id, None);
        card.provider_type = kind;
        if kind != ProviderKind::Local {
            for (field, value) in [
                ("input_per_mtok", self.input_per_mtok),
                ("output_per_mtok", self.output_per_mtok),
            ] {
                if value.is_none() {
                    return Err((
                        field.to_string(),
                        format!(
                            "`{}` is not in the catalog: a new {} card needs {field} (USD per million tokens)",
                            self.id,
                            kind.as_str()
                        ),
                    ));
                }
            }
        }
        self.apply(&mut card);
        Ok(card)
    }

    /// Checks the patch's figures; the error names the field.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.id.trim().is_empty() {
            return Err(("id".into(), "must name a model id".into()));
        }
        let prices = [
            ("input_per_mtok", self.input_per_mtok),
            ("output_per_mtok", self.output_per_mtok),
            ("cached_input_per_mtok", self.cached_input_per_mtok),
            ("cache_write_per_mtok", self.cache_write_per_mtok),
        ];
        for (field, value) in prices {
            if value.is_some_and(|v| !v.is_finite() || v < 0.0) {
                return Err((
                    field.into(),
                    "must be a non-negative number (USD per million tokens)".into(),
                ));
            }
        }
        for (field, value) in [
            ("context_window", self.context_window),
            ("max_output_tokens", self.max_output_tokens),
        ] {
            if value == Some(0) {
                return Err((field.into(), "must be greater than 0 (tokens)".into()));
            }
        }
        if let Some(latency) = &self.latency {
            if !(latency.ttft_ms.is_finite() && latency.ttft_ms >= 0.0) {
                return Err((
                    "latency.ttft_ms".into(),
                    "must be a non-negative number of milliseconds".into(),
                ));
            }
            if !(latency.output_tokens_per_s.is_finite() && latency.output_tokens_per_s > 0.0) {
                return Err((
                    "latency.output_tokens_per_s".into(),
                    "must be a positive number".into(),
                ));
            }
        }
        if let Some(q) = &self.quality {
            for (field, value) in [
                ("general", q.general),
                ("coding", q.coding),
                ("reasoning", q.reasoning),
                ("long_context", q.long_context),
            ] {
                if !(0.0..=1.0).contains(&value) {
                    return Err((
                        format!("quality.{field}"),
                        "must lie between 0 and 1".into(),
                    ));
                }
            }
        }
        for (field, value) in [("released", &self.released), ("retires", &self.retires)] {
            if let Some(date) = value {
                if chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_err() {
                    return Err((
                        field.into(),
                        format!("must be a date as YYYY-MM-DD, not `{date}`"),
                    ));
                }
            }
        }
        Ok(())
    }
}
