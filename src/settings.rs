//! Typed configuration (the raw serde types): embedded defaults, the user's TOML file, `LLM_GATEWAY__…` environment overrides, validated loudly; the env keys and CA files it names are read once, here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::providers::ProviderKind;

/// The shipped defaults (`settings/defaults.toml`), the bottom layer of every configuration.
const DEFAULTS_TOML: &str = include_str!("../settings/defaults.toml");
/// Providers used when the configuration declares no `[[providers]]` (`settings/providers.toml`).
const DEFAULT_PROVIDERS_TOML: &str = include_str!("../settings/providers.toml");
/// Prefix of environment overrides: `LLM_GATEWAY__SERVER__PORT=9000`.
const ENV_PREFIX: &str = "LLM_GATEWAY";

/// Everything the gateway is configured with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub auth: AuthSettings,
    pub provider_defaults: ProviderDefaults,
    #[serde(default)]
    pub providers: Option<Vec<ProviderSettings>>,
    pub sanitization: SanitizationSettings,
    #[serde(default)]
    pub key_map: BTreeMap<String, KeyMapEntry>,
    /// `[projects.<id>]`: the limits of an `x-project`.
    #[serde(default)]
    pub projects: BTreeMap<String, LimitFields>,
    pub limits: LimitsSettings,
    pub database: DatabaseSettings,
    #[serde(default)]
    pub pricing: Vec<PricingSettings>,
    /// `[[models]]`: cards added to the catalog, or changes to a catalog card of the same id.
    #[serde(default)]
    pub models: Vec<crate::catalog::CardPatch>,
    pub routing: RoutingSettings,
    pub signals: SignalSettings,
    pub analytics: AnalyticsSettings,
    pub log: LogSettings,
    /// Where this configuration was read from (the file, the environment, the defaults), for
    /// the start-up log.
    #[serde(skip)]
    pub origin: String,
}

/// `[routing]`: the router's profiles, its default, live figures and circuit breakers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingSettings {
    /// The profile of `model: "auto"` requests without an `x-route-profile` header.
    pub default_profile: String,
    pub min_live_samples: u32,
    pub max_targets: usize,
    pub expected_output_tokens: u64,
    pub live_refresh_ms: u64,
    pub quality_prior_weight: f64,
    pub near_equal: f64,
    pub breaker: crate::router::breaker::BreakerPolicy,
    pub affinity: crate::router::affinity::AffinitySettings,
    /// `[routing.profiles.<id>]`: profiles added, or replacing a shipped one of the same id.
    #[serde(default)]
    pub profiles: BTreeMap<String, crate::router::profile::ProfileSpec>,
}

impl RoutingSettings {
    /// The router's tuning.
    pub fn tuning(&self) -> crate::router::RouterTuning {
        crate::router::RouterTuning {
            min_live_samples: self.min_live_samples,
            max_targets: self.max_targets,
            expected_output_tokens: self.expected_output_tokens,
            live_refresh_ms: self.live_refresh_ms,
            quality_prior_weight: self.quality_prior_weight,
            near_equal: self.near_equal,
            breaker: self.breaker,
            affinity: self.affinity,
        }
    }
}

/// `[signals]`: how quality signals (`POST /v1/signals`) are written and published.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalSettings {
    /// How often taken signals are written.
    pub flush_interval_ms: u64,
    /// Signals written per transaction at most.
    pub batch_size: usize,
    /// Signals held while the database is unreachable, at most; past it, 503.
    pub max_pending: usize,
    /// How often the evidence per provider and model is republished to the router.
    pub publish_interval_ms: u64,
    /// Finished requests remembered by id, so that a signal reported before the ledger has
    /// written its request still finds it; 0 looks every request up in the database.
    pub recent_requests: usize,
}

/// `[analytics]`: the model that writes the SQL of `POST /v1/ask`, and the limits of a query.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsSettings {
    /// A model id, or a routing profile id (sent as `model: "auto"` under that profile);
    /// None: `/v1/ask` answers 503 naming this key.
    #[serde(default)]
    pub model: Option<String>,
    /// Rows returned at most; more are cut (`truncated: true`).
    pub max_rows: usize,
    /// How long a query may run before the database stops it.
    pub timeout_ms: u64,
}

/// The most rows `[analytics] max_rows` may return.
pub const MAX_ASK_ROWS: usize = 100_000;
/// The longest `[analytics] timeout_ms`: ten minutes.
pub const MAX_ASK_TIMEOUT_MS: u64 = 600_000;

/// The most finished requests `[signals] recent_requests` may remember (about 60 bytes each).
pub const MAX_RECENT_REQUESTS: usize = 10_000_000;

/// `[log]`: how log lines are written (to stderr; `RUST_LOG` filters them).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
}

/// The shape of a log line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One readable line per event, coloured on a terminal.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// `[database]`: where the ledger lives and how it is written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://file.db?mode=rwc` (embedded) or `postgres://…` (shared by several instances).
    pub url: String,
    /// Raw records older than this many days are deleted (rollups are kept); 0 keeps them forever.
    pub retention_days: u32,
    /// How often pending records are written.
    pub flush_interval_ms: u64,
    /// Records written per transaction at most.
    pub batch_size: usize,
    /// Records held in memory while the database is unreachable, at most; the rest wait in
    /// the spool only, and are read back from it.
    pub max_pending: usize,
    /// Where finished records are spooled before they reach the database (per instance).
    pub spool_dir: PathBuf,
    /// A spool segment file is closed once this large (or a second old).
    pub spool_segment_bytes: u64,
}

/// One `[[pricing]]` entry: a model's price in USD per million tokens, added to or
/// overriding the catalog's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricingSettings {
    pub model: String,
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    #[serde(default)]
    pub cached_input_per_mtok: Option<f64>,
    #[serde(default)]
    pub cache_write_per_mtok: Option<f64>,
}

/// `[server]`: where and how the HTTP server listens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub max_body_bytes: usize,
    /// The whole request body must arrive within this time after the head (slow clients).
    pub body_timeout_ms: u64,
    /// The request head (every header name and value) may be this large at most; larger gets 431.
    pub max_header_bytes: usize,
    /// Open client connections at most, across workers; more wait in the listen backlog.
    pub max_connections: usize,
    /// Bytes of request bodies held at once across all requests; a request past it gets 503.
    pub max_buffered_body_bytes: usize,
    pub workers: usize,
    /// Guards every admin and analytics endpoint (`Authorization: Bearer <admin_token>`).
    #[serde(default)]
    pub admin_token: Option<SecretString>,
    /// Or: the name of an environment variable holding the admin token (read once, at load).
    #[serde(default)]
    pub admin_token_env: Option<String>,
    /// Serve `/metrics` without the admin token (for scrapers on a trusted network).
    pub metrics_public: bool,
}

/// `[auth]`: whether proxy calls need a virtual key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub require_key: bool,
    /// Allow callers without a virtual key to spend the providers' own keys on a gateway
    /// bound beyond loopback (a trusted network).
    pub allow_anonymous: bool,
}

/// `[provider_defaults]`: per-provider settings applied where an entry sets none.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderDefaults {
    pub connect_timeout_ms: u64,
    pub read_timeout_ms: u64,
    /// Requests in flight to one provider at most (each holds an upstream connection);
    /// more wait for one, and the wait shows in `/metrics`.
    pub max_connections: usize,
}

/// One `[[providers]]` entry, as written by the user (also the body of `POST /v1/providers`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSettings {
    pub id: String,
    pub provider_type: ProviderKind,
    #[serde(default)]
    pub api_key: Option<SecretString>,
    /// Name of an environment variable holding the key, so keys stay out of config files.
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub deployment: Option<String>,
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Extra model ids this provider serves, beyond the catalog and discovery.
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default)]
    pub connect_timeout_ms: Option<u64>,
    #[serde(default)]
    pub read_timeout_ms: Option<u64>,
    /// Overrides `[provider_defaults] max_connections`.
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// A PEM file of extra CA certificates (a corporate TLS-inspecting proxy).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The certificates of `ca_file`, read once when the configuration is loaded.
    #[serde(skip)]
    pub ca_certs: Option<Arc<Vec<CertificateDer<'static>>>>,
}

fn enabled_by_default() -> bool {
    true
}

/// `[sanitization]`: prompt scanning switches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SanitizationSettings {
    pub enabled: bool,
    pub scan_credentials: bool,
    /// Report personal data (emails, phone numbers, SSNs, cards, IBANs) as findings.
    pub scan_pii: bool,
    pub redact_pii: bool,
    /// Mask credentials instead of only reporting them.
    pub redact_credentials: bool,
    pub compliance_gate: bool,
    /// With `compliance_gate`, block on likely findings too (a secret's name with a
    /// random-looking value, a bearer credential of no known format), not only on certain ones.
    pub compliance_gate_likely: bool,
    /// Bodies up to this size are scanned on the HTTP worker (microseconds); larger ones on
    /// the sanitizer's own threads.
    pub inline_scan_bytes: usize,
    /// The operator's own patterns.
    #[serde(default)]
    pub patterns: Vec<CustomPattern>,
}

/// One `[[sanitization.patterns]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomPattern {
    /// The finding's kind, e.g. `internal_hostname`.
    pub name: String,
    pub regex: String,
    #[serde(default)]
    pub action: CustomPatternAction,
}

/// What a custom pattern's finding does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomPatternAction {
    /// Log and record (or block, with `compliance_gate`).
    #[default]
    Report,
    /// Replace with `[REDACTED_<NAME>]`.
    Redact,
    /// Refuse the request with 403.
    Block,
}

/// `[key_map.<virtual token>]`: a team's label and the provider keys its token stands for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyMapEntry {
    pub label: String,
    #[serde(default)]
    pub anthropic_key: Option<SecretString>,
    #[serde(default)]
    pub openai_key: Option<SecretString>,
    #[serde(default)]
    pub azure_openai_key: Option<SecretString>,
    #[serde(default)]
    pub local_key: Option<SecretString>,
    /// Keys for individual providers by id; these win over the per-type keys.
    #[serde(default)]
    pub provider_keys: BTreeMap<String, SecretString>,
    /// Spend in USD per `budget_period` (see [`LimitFields`]).
    #[serde(default)]
    pub max_budget_usd: Option<f64>,
    #[serde(default)]
    pub budget_period: Option<crate::limits::Period>,
    #[serde(default)]
    pub rpm: Option<u64>,
    #[serde(default)]
    pub tpm: Option<u64>,
    #[serde(default)]
    pub models: Option<Vec<String>>,
}

impl KeyMapEntry {
    /// The key's budget and rate limits.
    pub fn limits(&self) -> LimitFields {
        LimitFields {
            max_budget_usd: self.max_budget_usd,
            budget_period: self.budget_period,
            rpm: self.rpm,
            tpm: self.tpm,
            models: self.models.clone(),
        }
    }
}

/// The limits of a key (`[key_map.<token>]`) or a project (`[projects.<id>]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitFields {
    /// Spend in USD per `budget_period`; past it requests get 429 `insufficient_quota`.
    #[serde(default)]
    pub max_budget_usd: Option<f64>,
    /// `daily`, `weekly`, `monthly` (calendar windows in UTC) or `total` (the default).
    #[serde(default)]
    pub budget_period: Option<crate::limits::Period>,
    /// Requests per minute.
    #[serde(default)]
    pub rpm: Option<u64>,
    /// Tokens (prompt and output) per minute.
    #[serde(default)]
    pub tpm: Option<u64>,
    /// The models it may use: ids or globs (`gpt-4o*`, `claude-*`).
    #[serde(default)]
    pub models: Option<Vec<String>>,
}

impl LimitFields {
    /// As the limiter takes them.
    pub fn spec(&self) -> crate::limits::LimitSpec {
        crate::limits::LimitSpec {
            max_budget_usd: self.max_budget_usd,
            budget_period: self.budget_period.unwrap_or_default(),
            rpm: self.rpm,
            tpm: self.tpm,
            models: self.models.clone(),
        }
    }

    /// Why the limits are invalid: (the field, the message).
    fn check(&self) -> Result<(), (&'static str, String)> {
        if let Some(usd) = self.max_budget_usd {
            if !usd.is_finite() || usd < 0.0 {
                return Err((
                    "max_budget_usd",
                    format!("must be a number of USD, 0 or more (got {usd})"),
                ));
            }
        }
        if self.budget_period.is_some() && self.max_budget_usd.is_none() {
            return Err((
                "budget_period",
                "is set without max_budget_usd: set the budget it is the period of".into(),
            ));
        }
        for (field, value) in [("rpm", self.rpm), ("tpm", self.tpm)] {
            if value == Some(0) {
                return Err((
                    field,
                    "must be at least 1 (leave it out for no limit)".into(),
                ));
            }
        }
        if let Some(models) = &self.models {
            if models.is_empty() {
                return Err(("models", "is empty, which would allow no model: list at least one id or glob, or leave it out".into()));
            }
        }
        self.spec()
            .model_globs()
            .map(|_| ())
            .map_err(|e| ("models", e))
    }
}

/// `[limits]`: how budgets treat free models.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSettings {
    /// A request whose every target is free (a local model without a price, or priced at zero)
    /// passes a spent budget (rate limits still apply).
    pub free_models_exempt: bool,
    /// Share of a budget (0 to 1) past which a routed request goes to its profile's
    /// `on_budget_low` profile.
    pub budget_low_share: f64,
    /// Shares the limit counters of every instance through Redis (`redis://[user:password@]host:port[/db]`);
    /// unset, instances on one PostgreSQL ledger share them there, and a SQLite ledger keeps
    /// them per instance.
    #[serde(default)]
    pub redis_url: Option<SecretString>,
    /// The environment variable holding `redis_url` (not both).
    #[serde(default)]
    pub redis_url_env: Option<String>,
    /// Prefixes every Redis key (several deployments on one Redis keep apart).
    pub redis_prefix: String,
    /// The share of a limit one instance leases from the shared counters at a time (0 to 1).
    pub lease_share: f64,
}

/// Fills a secret setting (`<key>`) from the environment variable its `<key>_env` names.
fn secret_from_env(
    value: &mut Option<SecretString>,
    var: Option<&str>,
    key: &str,
) -> Result<(), (String, String)> {
    let Some(var) = var else {
        return Ok(());
    };
    let field = format!("{key}_env");
    let name = key.rsplit('.').next().unwrap_or(key);
    if value
        .as_ref()
        .is_some_and(|t| !t.expose_secret().is_empty())
    {
        return Err((field, format!("set either {name} or {name}_env, not both")));
    }
    match std::env::var(var) {
        Ok(secret) if !secret.trim().is_empty() => {
            *value = Some(SecretString::from(secret.trim().to_string()));
            Ok(())
        }
        _ => Err((
            field,
            format!("environment variable {var} is not set; export it or remove {name}_env"),
        )),
    }
}

/// Why the configuration could not be loaded; the message names the key and the file.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("config file {0} does not exist (pass an existing file with --config, or omit --config to use config.toml if present)")]
    MissingFile(PathBuf),
    #[error("failed to read config file {file}: {message}")]
    Unreadable { file: String, message: String },
    #[error("invalid configuration in {origin}: key `{key}`: {message}")]
    Invalid {
        origin: String,
        key: String,
        message: String,
    },
}

/// Where the configuration comes from.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    /// The file to read.
    pub path: PathBuf,
    /// Whether the user named it (a named file must exist; the default `config.toml` may not).
    pub explicit: bool,
}

/// Loads and validates the configuration: defaults, then the file, then the environment.
pub fn load(source: &ConfigSource) -> Result<Settings, SettingsError> {
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
        .collect();
    load_with_env(source, env)
}

/// As [`load`], with the environment overrides given explicitly (tests use this).
pub fn load_with_env(
    source: &ConfigSource,
    env: Vec<(String, String)>,
) -> Result<Settings, SettingsError> {
    let file_exists = source.path.is_file();
    if source.explicit && !file_exists {
        return Err(SettingsError::MissingFile(source.path.clone()));
    }
    let file_label = source.path.display().to_string();
    let origin = match (file_exists, env.is_empty()) {
        (true, true) => file_label.clone(),
        (true, false) => format!("{file_label} or the LLM_GATEWAY__ environment variables"),
        (false, false) => "the LLM_GATEWAY__ environment variables".to_string(),
        (false, true) => "the built-in defaults".to_string(),
    };
    let invalid = |key: String, message: String| SettingsError::Invalid {
        origin: origin.clone(),
        key,
        message,
    };

    let mut builder = config::Config::builder().add_source(config::File::from_str(
        DEFAULTS_TOML,
        config::FileFormat::Toml,
    ));
    if file_exists {
        let text =
            std::fs::read_to_string(&source.path).map_err(|e| SettingsError::Unreadable {
                file: file_label.clone(),
                message: e.to_string(),
            })?;
        // Parse with toml first: its errors carry line and column, config's do not.
        if let Err(e) = text.parse::<toml::Table>() {
            return Err(SettingsError::Unreadable {
                file: file_label,
                message: e.to_string(),
            });
        }
        builder = builder.add_source(config::File::from_str(&text, config::FileFormat::Toml));
    }
    let env_map: config::Map<String, String> = env.into_iter().collect();
    builder = builder.add_source(
        config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .source(Some(env_map)),
    );
    let merged: serde_json::Value = builder
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| invalid("(file)".into(), e.to_string()))?;

    let mut settings: Settings = serde_path_to_error::deserialize(merged).map_err(|e| {
        let key = e.path().to_string();
        invalid(key, e.into_inner().to_string())
    })?;
    secret_from_env(
        &mut settings.server.admin_token,
        settings.server.admin_token_env.as_deref(),
        "server.admin_token",
    )
    .map_err(|(key, message)| invalid(key, message))?;
    secret_from_env(
        &mut settings.limits.redis_url,
        settings.limits.redis_url_env.as_deref(),
        "limits.redis_url",
    )
    .map_err(|(key, message)| invalid(key, message))?;
    if settings.providers.is_none() {
        let defaults: DefaultProviders = toml::from_str(DEFAULT_PROVIDERS_TOML)
            .map_err(|e| invalid("providers".into(), format!("built-in defaults: {e}")))?;
        settings.providers = Some(defaults.providers);
    }
    validate(&settings).map_err(|(key, message)| invalid(key, message))?;
    for (i, provider) in settings.providers.iter_mut().flatten().enumerate() {
        resolve_provider(provider)
            .map_err(|(field, message)| invalid(format!("providers[{i}].{field}"), message))?;
    }
    settings.origin = origin.clone();
    Ok(settings)
}

#[derive(Deserialize)]
struct DefaultProviders {
    providers: Vec<ProviderSettings>,
}

impl Settings {
    /// The configured providers (the defaults when the file declares none).
    pub fn providers(&self) -> &[ProviderSettings] {
        self.providers.as_deref().unwrap_or_default()
    }
}

/// Cross-field rules checked after deserializing; the error is `(key, message with the fix)`.
fn validate(settings: &Settings) -> Result<(), (String, String)> {
    if settings.server.max_body_bytes == 0 {
        return Err((
            "server.max_body_bytes".into(),
            "must be greater than 0 (default 10485760, 10 MiB)".into(),
        ));
    }
    for (key, value) in [
        (
            "server.body_timeout_ms",
            settings.server.body_timeout_ms as usize,
        ),
        ("server.max_header_bytes", settings.server.max_header_bytes),
        ("server.max_connections", settings.server.max_connections),
        (
            "server.max_buffered_body_bytes",
            settings.server.max_buffered_body_bytes,
        ),
        (
            "provider_defaults.max_connections",
            settings.provider_defaults.max_connections,
        ),
    ] {
        if value == 0 {
            return Err((key.into(), "must be greater than 0".into()));
        }
    }
    if settings.server.max_buffered_body_bytes < settings.server.max_body_bytes {
        return Err((
            "server.max_buffered_body_bytes".into(),
            format!(
                "must be at least [server] max_body_bytes ({}), or no largest body could ever be held",
                settings.server.max_body_bytes
            ),
        ));
    }
    if settings.server.host.trim().is_empty() {
        return Err((
            "server.host".into(),
            "must not be empty (use 127.0.0.1, or 0.0.0.0 for all interfaces)".into(),
        ));
    }
    for (field, value) in [
        (
            "connect_timeout_ms",
            settings.provider_defaults.connect_timeout_ms,
        ),
        (
            "read_timeout_ms",
            settings.provider_defaults.read_timeout_ms,
        ),
    ] {
        if value == 0 {
            return Err((
                format!("provider_defaults.{field}"),
                "must be greater than 0".into(),
            ));
        }
    }
    let db = &settings.database;
    if !(db.url.starts_with("sqlite:")
        || db.url.starts_with("postgres://")
        || db.url.starts_with("postgresql://"))
    {
        return Err((
            "database.url".into(),
            "must start with sqlite: (e.g. sqlite://llm-gateway.db?mode=rwc) or postgres://".into(),
        ));
    }
    for (field, value) in [
        ("flush_interval_ms", db.flush_interval_ms as usize),
        ("batch_size", db.batch_size),
        ("max_pending", db.max_pending),
        ("spool_segment_bytes", db.spool_segment_bytes as usize),
    ] {
        if value == 0 {
            return Err((format!("database.{field}"), "must be greater than 0".into()));
        }
    }
    if db.spool_dir.as_os_str().is_empty() {
        return Err((
            "database.spool_dir".into(),
            "must name a directory (default llm-gateway-spool, in the working directory)".into(),
        ));
    }
    crate::catalog::Catalog::with_patches(&settings.models)?;
    let routing = &settings.routing;
    crate::router::profile::Profiles::load(&routing.profiles, &routing.default_profile)?;
    for (field, value) in [
        ("max_targets", routing.max_targets as u64),
        ("expected_output_tokens", routing.expected_output_tokens),
        ("live_refresh_ms", routing.live_refresh_ms),
        (
            "breaker.consecutive_failures",
            u64::from(routing.breaker.consecutive_failures),
        ),
        ("breaker.window_ms", routing.breaker.window_ms),
        ("breaker.cooldown_ms", routing.breaker.cooldown_ms),
    ] {
        if value == 0 {
            return Err((format!("routing.{field}"), "must be greater than 0".into()));
        }
    }
    if !(routing.quality_prior_weight.is_finite()
        && routing.quality_prior_weight > 0.0
        && routing.quality_prior_weight <= 1_000_000.0)
    {
        return Err((
            "routing.quality_prior_weight".into(),
            "must lie above 0 and at most 1000000 (signals the card's prior counts as)".into(),
        ));
    }
    if !(1..=10_000_000).contains(&routing.affinity.max_sessions) {
        return Err((
            "routing.affinity.max_sessions".into(),
            "must lie between 1 and 10000000".into(),
        ));
    }
    if routing.affinity.ttl_secs == 0 {
        return Err((
            "routing.affinity.ttl_secs".into(),
            "must be greater than 0".into(),
        ));
    }
    if !(routing.near_equal.is_finite() && (0.0..=1.0).contains(&routing.near_equal)) {
        return Err((
            "routing.near_equal".into(),
            "must lie between 0 and 1 (a difference of scores)".into(),
        ));
    }
    if !(routing.breaker.error_rate > 0.0 && routing.breaker.error_rate <= 1.0) {
        return Err((
            "routing.breaker.error_rate".into(),
            "must lie above 0 and at most 1 (a share of the attempts)".into(),
        ));
    }
    let signals = &settings.signals;
    for (field, value) in [
        ("flush_interval_ms", signals.flush_interval_ms),
        ("batch_size", signals.batch_size as u64),
        ("max_pending", signals.max_pending as u64),
        ("publish_interval_ms", signals.publish_interval_ms),
    ] {
        if value == 0 {
            return Err((format!("signals.{field}"), "must be greater than 0".into()));
        }
    }
    if signals.recent_requests > MAX_RECENT_REQUESTS {
        return Err((
            "signals.recent_requests".into(),
            format!("must be at most {MAX_RECENT_REQUESTS} (each remembered request holds about 60 bytes; default 100000)"),
        ));
    }
    let analytics = &settings.analytics;
    if analytics
        .model
        .as_deref()
        .is_some_and(|m| m.trim().is_empty())
    {
        return Err((
            "analytics.model".into(),
            "must name a model id (e.g. \"gpt-4o\") or a routing profile (e.g. \"balanced\"); leave it out to turn POST /v1/ask off".into(),
        ));
    }
    if !(1..=MAX_ASK_ROWS).contains(&analytics.max_rows) {
        return Err((
            "analytics.max_rows".into(),
            format!("must lie between 1 and {MAX_ASK_ROWS} (default 1000)"),
        ));
    }
    if !(1..=MAX_ASK_TIMEOUT_MS).contains(&analytics.timeout_ms) {
        return Err((
            "analytics.timeout_ms".into(),
            format!("must lie between 1 and {MAX_ASK_TIMEOUT_MS} ms (default 5000)"),
        ));
    }
    for (i, p) in settings.pricing.iter().enumerate() {
        let rates = [
            Some(p.input_per_mtok),
            Some(p.output_per_mtok),
            p.cached_input_per_mtok,
            p.cache_write_per_mtok,
        ];
        if p.model.trim().is_empty() {
            return Err((format!("pricing[{i}].model"), "must name a model id".into()));
        }
        if rates
            .into_iter()
            .flatten()
            .any(|r| !r.is_finite() || r < 0.0)
        {
            return Err((
                format!("pricing[{i}]"),
                format!(
                    "prices of `{}` must be non-negative numbers (USD per million tokens)",
                    p.model
                ),
            ));
        }
    }
    for (i, p) in settings.sanitization.patterns.iter().enumerate() {
        let name_ok = !p.name.is_empty()
            && p.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !name_ok {
            return Err((
                format!("sanitization.patterns[{i}].name"),
                format!(
                    "`{}` must be letters, digits and '_' (it names the finding)",
                    p.name
                ),
            ));
        }
        if let Err(e) = regex::bytes::RegexBuilder::new(&p.regex)
            .unicode(false)
            .build()
        {
            return Err((
                format!("sanitization.patterns[{i}].regex"),
                format!(
                    "pattern `{}` is not a valid regular expression: {e}",
                    p.name
                ),
            ));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (i, provider) in settings.providers().iter().enumerate() {
        validate_provider(provider)
            .map_err(|(field, message)| (format!("providers[{i}].{field}"), message))?;
        if !seen.insert(provider.id.as_str()) {
            return Err((
                format!("providers[{i}].id"),
                format!(
                    "provider id `{}` is used twice; ids must be unique",
                    provider.id
                ),
            ));
        }
    }
    if let Some(message) = anonymous_exposure(settings) {
        return Err(("server.host".into(), message));
    }
    let share = settings.limits.budget_low_share;
    if !(share > 0.0 && share <= 1.0) {
        return Err((
            "limits.budget_low_share".into(),
            format!("must be a share of the budget above 0 and at most 1 (got {share})"),
        ));
    }
    let lease = settings.limits.lease_share;
    if !(lease > 0.0 && lease <= 1.0) {
        return Err((
            "limits.lease_share".into(),
            format!("must be a share of a limit above 0 and at most 1 (got {lease})"),
        ));
    }
    if let Some(url) = &settings.limits.redis_url {
        let url = url.expose_secret();
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err((
                "limits.redis_url".into(),
                "must start with redis:// or rediss://".into(),
            ));
        }
    }
    for (id, limits) in &settings.projects {
        if let Err((field, message)) = limits.check() {
            return Err((format!("projects.{id}.{field}"), message));
        }
    }
    let mut labels: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for entry in settings.key_map.values() {
        *labels.entry(entry.label.as_str()).or_default() += 1;
    }
    for entry in settings
        .key_map
        .values()
        .filter(|e| !e.limits().spec().is_empty())
    {
        if labels.get(entry.label.as_str()).copied().unwrap_or(0) > 1 {
            return Err((
                format!("key_map.<token labelled {:?}>", entry.label),
                "this key has limits and shares its label with another virtual key; limits are kept per label, so give each key its own label".into(),
            ));
        }
    }
    for (token, entry) in &settings.key_map {
        // Name the entry by its label: the token itself is a secret.
        let key = format!("key_map.<token labelled {:?}>", entry.label);
        if token.trim().is_empty() {
            return Err((key, "the virtual token must not be empty".into()));
        }
        if entry.label.trim().is_empty() {
            return Err((
                "key_map.<token>.label".into(),
                "every virtual key needs a non-empty label (it names the team in the ledger)"
                    .into(),
            ));
        }
        if let Err((field, message)) = entry.limits().check() {
            return Err((format!("{key}.{field}"), message));
        }
        for id in entry.provider_keys.keys() {
            if !seen.contains(id.as_str()) {
                return Err((
                    format!("{key}.provider_keys.{id}"),
                    format!(
                        "there is no provider with id `{id}`; use one of the [[providers]] ids"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Why the configuration would let anyone who reaches the port spend the providers' keys:
/// bound beyond loopback, keys held, no virtual key required, and no explicit opt-in.
fn anonymous_exposure(settings: &Settings) -> Option<String> {
    if settings.auth.require_key
        || settings.auth.allow_anonymous
        || crate::access::is_loopback(&settings.server.host)
    {
        return None;
    }
    let holding: Vec<&str> = settings
        .providers()
        .iter()
        .filter(|p| p.enabled && (p.api_key.is_some() || p.api_key_env.is_some()))
        .map(|p| p.id.as_str())
        .collect();
    if holding.is_empty() {
        return None;
    }
    Some(format!(
        "refusing to listen on {} with [auth] require_key = false: provider(s) {} hold API keys, so anyone who can reach the port would spend them. Set [auth] require_key = true and give each team a [key_map] token, or bind [server] host = \"127.0.0.1\", or set [auth] allow_anonymous = true if every client of this network may use those keys",
        settings.server.host,
        holding.join(", ")
    ))
}

/// Rules for one provider entry, shared by the config file and `POST /v1/providers`; they
/// read nothing outside the entry. The error is `(field, message with the fix)`.
pub fn validate_provider(provider: &ProviderSettings) -> Result<(), (String, String)> {
    let id_ok = !provider.id.is_empty()
        && provider
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !id_ok {
        return Err((
            "id".into(),
            format!(
                "`{}` is not a valid provider id: use letters, digits, '-', '_' or '.' (it appears in URLs and in `provider/model` pins)",
                provider.id
            ),
        ));
    }
    let kind = provider.provider_type;
    if let Some(endpoint) = &provider.endpoint {
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
            || endpoint.parse::<awc::http::Uri>().is_err()
        {
            return Err((
                "endpoint".into(),
                format!("`{endpoint}` is not an http:// or https:// URL"),
            ));
        }
    } else if kind.default_endpoint().is_none() {
        return Err((
            "endpoint".into(),
            format!(
                "a provider of type {} needs an endpoint (e.g. {})",
                kind.as_str(),
                kind.endpoint_example()
            ),
        ));
    }
    if kind == ProviderKind::AzureOpenAi {
        for (field, value) in [
            ("deployment", &provider.deployment),
            ("api_version", &provider.api_version),
        ] {
            if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
                return Err((
                    field.into(),
                    format!("an azure_openai provider needs `{field}` (e.g. deployment = \"gpt-4o\", api_version = \"2024-10-21\")"),
                ));
            }
        }
    }
    if provider.api_key.is_some() && provider.api_key_env.is_some() {
        return Err((
            "api_key_env".into(),
            "set either api_key or api_key_env, not both".into(),
        ));
    }
    for (field, value) in [
        ("connect_timeout_ms", provider.connect_timeout_ms),
        ("read_timeout_ms", provider.read_timeout_ms),
        (
            "max_connections",
            provider.max_connections.map(|n| n as u64),
        ),
    ] {
        if value == Some(0) {
            return Err((field.into(), "must be greater than 0".into()));
        }
    }
    for (field, value, max) in [
        (
            "connect_timeout_ms",
            provider.connect_timeout_ms,
            MAX_TIMEOUT_MS,
        ),
        ("read_timeout_ms", provider.read_timeout_ms, MAX_TIMEOUT_MS),
        (
            "max_connections",
            provider.max_connections.map(|n| n as u64),
            MAX_PROVIDER_CONNECTIONS,
        ),
    ] {
        if value.is_some_and(|v| v > max) {
            return Err((field.into(), format!("must be at most {max}")));
        }
    }
    Ok(())
}

/// The longest connect or read timeout a provider may have: a day, in milliseconds.
pub const MAX_TIMEOUT_MS: u64 = 86_400_000;
/// The most connections a provider may hold.
pub const MAX_PROVIDER_CONNECTIONS: u64 = 1_000_000;

/// Reads, once, what a config-file entry names outside the file: the key in `api_key_env`
/// (into `api_key`) and the certificates of `ca_file` (into `ca_certs`). The error is
/// `(field, message naming the variable or the file)`.
fn resolve_provider(provider: &mut ProviderSettings) -> Result<(), (String, String)> {
    if let Some(var) = &provider.api_key_env {
        match std::env::var(var) {
            Ok(value) if !value.is_empty() => provider.api_key = Some(SecretString::from(value)),
            _ => {
                return Err((
                    "api_key_env".into(),
                    format!(
                        "environment variable {var} is not set; export it or remove api_key_env"
                    ),
                ))
            }
        }
    }
    if let Some(path) = &provider.ca_file {
        let certs = crate::providers::tls::load_ca_file(path).map_err(|e| ("ca_file".into(), e))?;
        provider.ca_certs = Some(Arc::new(certs));
    }
    Ok(())
}

/// The default config path: `config.toml` in the working directory.
pub fn default_config_path() -> &'static Path {
    Path::new("config.toml")
}
