//! The runtime types, built once from the validated settings: the catalog, the providers with
//! their keys and TLS, the key map and the prices. The settings have already read every
//! environment key and CA file they name (`settings::load`); nothing here reads either again.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::catalog::Catalog;
use crate::keys::KeyMap;
use crate::ledger::pricing::Pricing;
use crate::providers::{tls, Provider};
use crate::router::profile::Profiles;
use crate::router::Routing;
use crate::secret::HeldKey;
use crate::settings::{ProviderDefaults, ProviderSettings, Settings};
use crate::signals::SignalFigures;

/// What the settings describe, ready to serve.
pub struct Runtime {
    pub catalog: Arc<Catalog>,
    pub providers: Vec<Arc<Provider>>,
    /// The TLS configuration of providers without a `ca_file`.
    pub default_tls: Arc<rustls::ClientConfig>,
    pub keys: KeyMap,
    pub pricing: Arc<Pricing>,
    pub routing: Arc<Routing>,
    /// The evidence of quality signals per provider and model, as the SignalCollector
    /// publishes it (empty until it has loaded what the database holds).
    pub signal_figures: Arc<ArcSwap<SignalFigures>>,
    /// Budgets and rate limits per key label and project.
    pub limits: Arc<crate::limits::Limiter>,
}

impl Runtime {
    /// Builds every runtime type; the error names the setting at fault.
    pub fn build(settings: &Settings) -> Result<Self, String> {
        let catalog = Arc::new(
            Catalog::with_patches(&settings.models)
                .map_err(|(key, message)| format!("{key}: {message}"))?,
        );
        let default_tls = tls::default_client_config()?;
        let providers = settings
            .providers()
            .iter()
            .enumerate()
            .map(|(i, p)| {
                build_provider(p, &settings.provider_defaults, &default_tls)
                    .map(Arc::new)
                    .map_err(|e| format!("providers[{i}] (`{}`): {e}", p.id))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let pricing = Arc::new(Pricing::new(&catalog, &settings.pricing));
        let routing = &settings.routing;
        let profiles = Profiles::load(&routing.profiles, &routing.default_profile)
            .map_err(|(key, message)| format!("{key}: {message}"))?;
        let routing = Arc::new(Routing::new(profiles, routing.tuning()));
        let limits = crate::limits::Limiter::new(
            settings
                .key_map
                .values()
                .map(|e| (e.label.clone(), e.limits().spec())),
            settings
                .projects
                .iter()
                .map(|(id, l)| (id.clone(), l.spec())),
            settings.limits.free_models_exempt,
            settings.limits.budget_low_share,
        )
        .map_err(|e| format!("key_map / projects models: {e}"))?;
        Ok(Self {
            limits: Arc::new(limits),
            catalog,
            providers,
            default_tls,
            keys: KeyMap::new(&settings.key_map, settings.auth.require_key),
            pricing,
            signal_figures: routing.signals.clone(),
            routing,
        })
    }
}

/// A provider from its validated entry (from the config file, or `POST /v1/providers`).
pub fn build_provider(
    settings: &ProviderSettings,
    defaults: &ProviderDefaults,
    default_tls: &Arc<rustls::ClientConfig>,
) -> Result<Provider, String> {
    let kind = settings.provider_type;
    let raw = settings
        .endpoint
        .as_deref()
        .or(kind.default_endpoint())
        .ok_or_else(|| format!("provider `{}` needs an endpoint", settings.id))?;
    let max_connections = settings
        .max_connections
        .unwrap_or(defaults.max_connections)
        .min(tokio::sync::Semaphore::MAX_PERMITS);
    let tls = match &settings.ca_certs {
        Some(certs) => tls::client_config_with_certs(certs).map_err(|e| {
            let file = settings
                .ca_file
                .as_ref()
                .map_or_else(String::new, |p| p.display().to_string());
            format!("CA file {file}: {e}")
        })?,
        None => default_tls.clone(),
    };
    Ok(Provider {
        id: settings.id.clone(),
        kind,
        endpoint: Provider::normalise_endpoint(kind, raw),
        api_key: settings.api_key.clone().and_then(HeldKey::new),
        deployment: settings.deployment.clone(),
        api_version: settings.api_version.clone(),
        enabled: settings.enabled,
        models: settings.models.clone(),
        connect_timeout: Duration::from_millis(
            settings
                .connect_timeout_ms
                .unwrap_or(defaults.connect_timeout_ms),
        ),
        read_timeout: Duration::from_millis(
            settings.read_timeout_ms.unwrap_or(defaults.read_timeout_ms),
        ),
        ca_file: settings.ca_file.clone(),
        tls,
        connections: Arc::new(tokio::sync::Semaphore::new(max_connections)),
        max_connections,
    })
}
