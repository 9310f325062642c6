//! ProviderRegistry: owns the configured providers, adds and removes them at runtime, discovers local models,
//! and publishes an immutable snapshot that the request path reads without a round-trip.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use arc_swap::ArcSwap;
use serde::Serialize;

use crate::catalog::Catalog;
use crate::error::GatewayError;
use crate::providers::{local, Provider, ProviderKind, ProviderView};
use crate::runtime::build_provider;
use crate::settings::{validate_provider, ProviderDefaults, ProviderSettings};

/// How long a local server's model list is trusted before it is asked again.
const DISCOVERY_TTL: Duration = Duration::from_secs(30);
/// How long a local server may take to list its models; a slow one does not hold up `/v1/models`.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(3);

pub use crate::providers::snapshot::RegistrySnapshot;

/// One entry of `GET /v1/models`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ModelEntry {
    pub id: String,
    pub object: &'static str,
    pub created: i64,
    /// The id of the provider serving it.
    pub provider: String,
    pub provider_type: ProviderKind,
    pub owned_by: String,
}

struct Discovered {
    at: Instant,
    models: Arc<Vec<String>>,
    contexts: Arc<HashMap<String, u64>>,
}

/// The actor owning the providers.
pub struct ProviderRegistry {
    providers: Vec<Arc<Provider>>,
    discovered: HashMap<String, Discovered>,
    published: Arc<ArcSwap<RegistrySnapshot>>,
    defaults: ProviderDefaults,
    default_tls: Arc<rustls::ClientConfig>,
    catalog: Arc<Catalog>,
}

impl ProviderRegistry {
    /// Builds the registry from validated providers; `published` is the snapshot handle the request path reads.
    pub fn new(
        providers: Vec<Arc<Provider>>,
        defaults: ProviderDefaults,
        default_tls: Arc<rustls::ClientConfig>,
        catalog: Arc<Catalog>,
    ) -> Self {
        let published = Arc::new(ArcSwap::from_pointee(RegistrySnapshot {
            providers: providers.clone(),
            discovered: HashMap::new(),
            contexts: HashMap::new(),
        }));
        Self {
            providers,
            discovered: HashMap::new(),
            published,
            defaults,
            default_tls,
            catalog,
        }
    }

    /// The handle through which the request path reads the current snapshot.
    pub fn snapshot_handle(&self) -> Arc<ArcSwap<RegistrySnapshot>> {
        self.published.clone()
    }

    fn publish(&self) {
        self.published.store(Arc::new(RegistrySnapshot {
            providers: self.providers.clone(),
            discovered: self
                .discovered
                .iter()
                .map(|(id, d)| (id.clone(), d.models.clone()))
                .collect(),
            contexts: self
                .discovered
                .iter()
                .map(|(id, d)| (id.clone(), d.contexts.clone()))
                .collect(),
        }));
    }

    /// Local providers whose model list is older than `max_age` (or was never fetched).
    fn stale_local(&self, max_age: Duration) -> Vec<Arc<Provider>> {
        self.providers
            .iter()
            .filter(|p| p.enabled && p.kind == ProviderKind::Local)
            .filter(|p| {
                self.discovered
                    .get(&p.id)
                    .is_none_or(|d| d.at.elapsed() >= max_age)
            })
            .cloned()
            .collect()
    }

    /// Asks the stale local servers for their models, then records and publishes what they said.
    fn refresh(&self, max_age: Duration) -> ResponseActFuture<Self, ()> {
        let stale = self.stale_local(max_age);
        let fetches = stale.into_iter().map(|provider| async move {
            let models = fetch_local_models(&provider).await;
            (provider.id.clone(), models)
        });
        Box::pin(
            futures_util::future::join_all(fetches)
                .into_actor(self)
                .map(|results, actor, _| {
                    for (id, models) in results {
                        // A server that is down keeps the list it last gave, if any.
                        let (models, contexts) = match models {
                            Some((m, c)) => (Arc::new(m), Arc::new(c)),
                            None => actor
                                .discovered
                                .get(&id)
                                .map(|d| (d.models.clone(), d.contexts.clone()))
                                .unwrap_or_default(),
                        };
                        actor.discovered.insert(
                            id,
                            Discovered {
                                at: Instant::now(),
                                models,
                                contexts,
                            },
                        );
                    }
                    actor.publish();
                }),
        )
    }

    fn models(&self) -> Vec<ModelEntry> {
        let mut out = Vec::new();
        for provider in self.providers.iter().filter(|p| p.enabled) {
            let mut ids: Vec<String> = provider.configured_models().map(str::to_string).collect();
            match provider.kind {
                ProviderKind::OpenAi | ProviderKind::Anthropic => {
                    ids.extend(self.catalog.ids_for(provider.kind).map(str::to_string))
                }
                ProviderKind::Local => {
                    if let Some(d) = self.discovered.get(&provider.id) {
                        ids.extend(d.models.iter().cloned());
                    }
                }
                ProviderKind::AzureOpenAi => {}
            }
            let mut seen = std::collections::HashSet::new();
            for id in ids {
                if seen.insert(id.clone()) {
                    out.push(ModelEntry {
                        id,
                        object: "model",
                        created: 0,
                        provider: provider.id.clone(),
                        provider_type: provider.kind,
                        owned_by: provider.kind.as_str().to_string(),
                    });
                }
            }
        }
        out
    }
}

/// A local server's models and the context windows it reports for them.
type Reported = (Vec<String>, HashMap<String, u64>);

async fn fetch_local_models(provider: &Provider) -> Option<Reported> {
    let connector = awc::Connector::new()
        .rustls_0_23(provider.tls.clone())
        .timeout(provider.connect_timeout.min(DISCOVERY_TIMEOUT));
    let client = awc::Client::builder()
        .connector(connector)
        .timeout(DISCOVERY_TIMEOUT)
        .finish();
    let mut request = client.get(local::models_url(&provider.endpoint));
    if let Some(key) = &provider.api_key {
        if let Ok(Some((name, value))) =
            provider.credential_header(&crate::providers::Credential::Key(key.clone()))
        {
            request = request.insert_header((name, value));
        }
    }
    let mut response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(provider = %provider.id, error = %e, "local model discovery failed");
            return None;
        }
    };
    if !response.status().is_success() {
        tracing::warn!(provider = %provider.id, status = %response.status(), "local model discovery failed");
        return None;
    }
    let body = response.body().limit(4 * 1024 * 1024).await.ok()?;
    let models = local::parse_models(&body);
    if models.is_none() {
        tracing::warn!(provider = %provider.id, "local server's /v1/models answer is not an OpenAI model list");
    }
    models.map(|m| (m, local::parse_model_contexts(&body)))
}

impl Actor for ProviderRegistry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Learn what the local servers serve before the first request needs it.
        ctx.spawn(self.refresh(Duration::ZERO));
    }
}

/// Lists the providers, without their keys.
#[derive(Message)]
#[rtype(result = "Vec<ProviderView>")]
pub struct ListProviders;

impl Handler<ListProviders> for ProviderRegistry {
    type Result = Vec<ProviderView>;

    fn handle(&mut self, _: ListProviders, _: &mut Self::Context) -> Self::Result {
        self.providers.iter().map(|p| p.view()).collect()
    }
}

/// Registers a provider at runtime (kept in memory until restart).
#[derive(Message)]
#[rtype(result = "Result<ProviderView, GatewayError>")]
pub struct AddProvider(pub ProviderSettings);

impl Handler<AddProvider> for ProviderRegistry {
    type Result = Result<ProviderView, GatewayError>;

    fn handle(&mut self, msg: AddProvider, ctx: &mut Self::Context) -> Self::Result {
        let settings = msg.0;
        validate_provider(&settings).map_err(|(field, message)| GatewayError::InvalidRequest {
            message: format!("`{field}`: {message}"),
            param: Some(field),
        })?;
        if self.providers.iter().any(|p| p.id == settings.id) {
            return Err(GatewayError::Conflict {
                message: format!(
                    "a provider with id `{}` already exists; DELETE /v1/providers/{} first to replace it",
                    settings.id, settings.id
                ),
            });
        }
        let provider =
            build_provider(&settings, &self.defaults, &self.default_tls).map_err(|message| {
                GatewayError::InvalidRequest {
                    message,
                    param: None,
                }
            })?;
        let view = provider.view();
        let is_local = provider.kind == ProviderKind::Local;
        self.providers.push(Arc::new(provider));
        self.publish();
        if is_local {
            ctx.spawn(self.refresh(DISCOVERY_TTL));
        }
        Ok(view)
    }
}

/// Removes a provider by id; answers the endpoint it had.
#[derive(Message)]
#[rtype(result = "Result<String, GatewayError>")]
pub struct RemoveProvider(pub String);

impl Handler<RemoveProvider> for ProviderRegistry {
    type Result = Result<String, GatewayError>;

    fn handle(&mut self, msg: RemoveProvider, _: &mut Self::Context) -> Self::Result {
        let Some(at) = self.providers.iter().position(|p| p.id == msg.0) else {
            return Err(GatewayError::ProviderNotFound { id: msg.0 });
        };
        let removed = self.providers.remove(at);
        self.discovered.remove(&msg.0);
        self.publish();
        Ok(removed.endpoint.clone())
    }
}

/// Lists every model the enabled providers serve, refreshing local servers' lists when stale.
#[derive(Message)]
#[rtype(result = "Vec<ModelEntry>")]
pub struct ListModels;

impl Handler<ListModels> for ProviderRegistry {
    type Result = ResponseActFuture<Self, Vec<ModelEntry>>;

    fn handle(&mut self, _: ListModels, _: &mut Self::Context) -> Self::Result {
        Box::pin(
            self.refresh(DISCOVERY_TTL)
                .map(|(), actor, _| actor.models()),
        )
    }
}

/// Refreshes local servers' model lists older than `max_age` (a request named a model nobody serves yet).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RefreshLocalModels {
    pub max_age: Duration,
}

impl Handler<RefreshLocalModels> for ProviderRegistry {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, msg: RefreshLocalModels, _: &mut Self::Context) -> Self::Result {
        self.refresh(msg.max_age)
    }
}
