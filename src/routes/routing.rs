//! The router's endpoints: `POST /v1/route` (a routing decision explained layer by layer),
//! `GET /v1/profiles` and `GET /v1/catalog` (the model cards, with live figures and breaker
//! states for callers that pass the admin gate).

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::access::AdminGate;
use crate::api::ApiFormat;
use crate::catalog::{Capability, ModelCard};
use crate::error::{ApiError, GatewayError};
use crate::pipeline::plan::BudgetLow;
use crate::pipeline::{call, inbound};
use crate::providers::ProviderKind;
use crate::router::breaker::BreakerState;
use crate::router::live::Live;
use crate::router::needs::{Needs, Requirements};
use crate::router::{inventory, RankedView, RouteQuery, Trace};
use crate::state::AppState;

/// The body of `POST /v1/route`: a profile and requirements, or a whole chat or messages
/// request (its needs are read from it as the proxy would).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RouteRequest {
    /// A profile id (GET /v1/profiles); default: `[routing] default_profile`.
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub requirements: Option<Requirements>,
    /// The API of the request being routed: `openai` (Chat Completions, the default) or
    /// `anthropic` (Messages; also assumed when an `anthropic-version` header is sent). Until
    /// requests are translated between APIs, only models of providers speaking it are chosen.
    #[serde(default)]
    pub api: Option<String>,
    /// The task kind whose quality figures score the candidates (the `x-task-kind` header
    /// too); default: the profile's.
    #[serde(default)]
    pub task: Option<crate::catalog::TaskKind>,
    /// A chat-completions or messages body may follow (model, messages, tools, …).
    #[serde(default)]
    pub messages: Option<Vec<serde_json::Value>>,
}

/// What the router read the request to need.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NeedsView {
    pub capabilities: Vec<Capability>,
    pub prompt_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_context: Option<u64>,
}

/// The answer of `POST /v1/route`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RouteAnswer {
    pub profile: String,
    /// The chosen model and provider (rank 0).
    pub model: String,
    pub provider: String,
    pub provider_type: ProviderKind,
    /// The failover chain after the primary, in order.
    pub failover: Vec<RankedView>,
    pub api: &'static str,
    pub needs: NeedsView,
    /// Present when the caller's key or `x-project` had used at least `[limits]
    /// budget_low_share` of a budget and the profile asked for names an `on_budget_low`
    /// profile: `profile` is then that cheaper one, and `decided_by` is `budget_low`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_low: Option<BudgetLow>,
    #[serde(flatten)]
    pub trace: Trace,
}

/// The API whose error shape a caller of `/v1/route` expects: Anthropic's when it says
/// `anthropic-version` (as Anthropic's SDKs do), else OpenAI's.
fn caller_api(req: &HttpRequest) -> ApiFormat {
    if req.headers().contains_key("anthropic-version") {
        ApiFormat::Anthropic
    } else {
        ApiFormat::OpenAi
    }
}

fn invalid(message: String, param: Option<&str>) -> GatewayError {
    GatewayError::InvalidRequest {
        message,
        param: param.map(str::to_string),
    }
}

/// Routes a request without sending it: the chosen model and provider, its failover chain,
/// and for each of the five layers the candidates that entered, those dropped with the
/// reason, and the scores with their parts. Follows the proxy's virtual-key rules, and its
/// budgets: a key (or `x-project`) past `[limits] budget_low_share` of its budget is routed
/// under the profile's `on_budget_low` profile, as the proxy would route it.
#[utoipa::path(
    post, path = "/v1/route", tag = "routing",
    params(super::proxy::RoutingHeaders,
        ("x-project" = Option<String>, Header, description = "The project routed for: past `[limits] budget_low_share` of its budget, the profile's `on_budget_low` profile decides (as for the caller's virtual key)"),
        ("anthropic-version" = Option<String>, Header, description = "Present: the caller speaks Anthropic's API (its error shape, and `api` when the body does not say)")),
    request_body(content = RouteRequest, content_type = "application/json",
        example = json!({"profile": "coding", "requirements": {"capabilities": ["vision"], "min_context": 100000},
            "messages": [{"role": "user", "content": "Refactor this function"}]})),
    responses(
        (status = 200, description = "The decision, layer by layer", body = RouteAnswer),
        (status = 400, description = "Malformed body, unknown profile, or no model fits (the message says which layer dropped what)", body = crate::error::OpenAiErrorBody),
        (status = 401, description = "A virtual key is required ([auth] require_key)", body = crate::error::OpenAiErrorBody),
        (status = 413, description = "Body over [server] max_body_bytes", body = crate::error::OpenAiErrorBody),
    )
)]
#[post("/v1/route")]
pub async fn route(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let header_api = caller_api(&req);
    decide(&req, payload, &state, header_api)
        .await
        .map_err(|e| e.in_shape(header_api))
}

async fn decide(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    header_api: ApiFormat,
) -> Result<HttpResponse, GatewayError> {
    let pipeline = &state.pipeline;
    let caller = pipeline.keys.identify(req.headers())?;
    let (body, _reservation) =
        inbound::read_body(req.headers(), payload, &pipeline.body_limits).await?;
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| invalid(format!("the body is not valid JSON: {e}"), None))?;
    if !value.is_object() {
        return Err(invalid(
            "the body must be a JSON object: {\"profile\": …, \"requirements\": {…}} or a chat/messages request".into(),
            None,
        ));
    }
    let request: RouteRequest = serde_json::from_value(value.clone())
        .map_err(|e| invalid(format!("invalid routing request: {e}"), None))?;
    let api = match request.api.as_deref() {
        None => header_api,
        Some("openai") => ApiFormat::OpenAi,
        Some("anthropic") => ApiFormat::Anthropic,
        Some(other) => {
            return Err(invalid(
                format!("`api` must be `openai` or `anthropic`, not `{other}`"),
                Some("api"),
            ))
        }
    };
    let routing = &pipeline.routing;
    let id = request
        .profile
        .as_deref()
        .or_else(|| {
            req.headers()
                .get("x-route-profile")
                .and_then(|v| v.to_str().ok())
        })
        .unwrap_or(&routing.profiles.default);
    let asked = routing
        .profile(id)
        .map_err(|message| GatewayError::UnknownProfile { message })?;
    let project = call::project(req.headers());
    let (profile, budget_low) = pipeline.budget_profile(asked, caller.label(), project.as_deref());
    let needs = Needs::of_json(&body)
        .map_err(|e| invalid(format!("the body is not valid JSON: {e}"), None))?
        .with(&request.requirements.unwrap_or_default());
    let query = RouteQuery {
        api: Some(api),
        profile,
        needs,
        today: crate::router::today(),
        task: match request.task {
            Some(task) => Some(task),
            None => call::task_kind(req.headers())?,
        },
        pinned: None,
        balance: true,
        explain: true,
    };
    let snapshot = pipeline.providers.load();
    let mut decision = routing
        .route(&snapshot, &pipeline.catalog, &query)
        .map_err(|none| GatewayError::NoRoute {
            summary: none.summary(),
            profile: none.profile,
        })?;
    if budget_low.is_some() {
        decision.mark_budget_low();
    }
    let primary = decision
        .targets
        .first()
        .ok_or_else(|| GatewayError::Internal {
            message: "the router returned an empty route".into(),
        })?;
    let mut trace = decision.trace.unwrap_or(Trace {
        decided_by: decision.decided_by,
        load: Vec::new(),
        layers: Vec::new(),
        scores: Vec::new(),
        ranking: Vec::new(),
    });
    let failover = trace.ranking.iter().skip(1).cloned().collect();
    trace.scores.truncate(50);
    Ok(HttpResponse::Ok().json(RouteAnswer {
        profile: decision.profile.clone(),
        model: primary.model.clone(),
        provider: primary.provider.id.clone(),
        provider_type: primary.provider.kind,
        failover,
        api: match api {
            ApiFormat::OpenAi => "openai",
            ApiFormat::Anthropic => "anthropic",
        },
        needs: NeedsView {
            capabilities: needs.capabilities.iter().collect(),
            prompt_tokens: needs.prompt_tokens,
            max_tokens: needs.max_tokens,
            min_context: needs.min_context,
        },
        budget_low,
        trace,
    }))
}

/// One profile as `GET /v1/profiles` lists it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProfileView {
    pub id: String,
    /// Whether `model: "auto"` without a header uses it.
    pub default: bool,
    pub description: String,
    /// The task kind whose quality prior scores the models.
    pub task: crate::catalog::TaskKind,
    pub weights: crate::router::profile::Weights,
    /// Capabilities every candidate must have.
    pub require: Vec<Capability>,
    /// Provider ids or types: allow (empty: all), prefer, exclude.
    pub providers: crate::router::profile::Lists,
    /// Model ids or globs: allow (empty: all), prefer, exclude.
    pub models: crate::router::profile::Lists,
    pub caps: crate::router::profile::Caps,
    /// What a preferred provider or model adds to its score.
    pub prefer_bonus: f64,
    /// Whether conversations stay on the provider and model that served them last.
    pub affinity: bool,
}

/// The routing profiles: weights, task kind, required capabilities, provider and model lists, caps.
#[utoipa::path(
    get, path = "/v1/profiles", tag = "routing",
    responses((status = 200, description = "Every profile, shipped and configured", body = [ProfileView]))
)]
#[get("/v1/profiles")]
pub async fn profiles(state: web::Data<AppState>) -> HttpResponse {
    let profiles = &state.pipeline.routing.profiles;
    let list: Vec<ProfileView> = profiles
        .by_id
        .values()
        .map(|p| {
            let spec = p.spec.clone();
            ProfileView {
                id: p.id.clone(),
                default: p.id == profiles.default,
                description: spec.description,
                task: spec.task,
                weights: spec.weights,
                require: spec.require,
                providers: spec.providers,
                models: spec.models,
                caps: spec.caps,
                prefer_bonus: spec
                    .prefer_bonus
                    .unwrap_or(crate::router::profile::DEFAULT_PREFER_BONUS),
                affinity: p.affinity(),
            }
        })
        .collect();
    HttpResponse::Ok().json(list)
}

/// A provider serving a card, with its live figures and breaker state.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ServingView {
    pub provider: String,
    pub provider_type: ProviderKind,
    /// The model id sent to it (a deployment, or a local server's name).
    pub model: String,
    pub enabled: bool,
    pub breaker: BreakerState,
    /// Observed figures (absent until traffic was seen).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<Live>,
    /// Its recent quality signals (absent until one was reported).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signals: Option<SignalsView>,
}

/// A provider and model's recent quality signals, as the Router weighs them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SignalsView {
    /// The weight of the recent signals (about the last 100, older ones fading).
    pub recent: f64,
    /// Their mean outcome, 0–1.
    pub mean: f64,
    /// The card's general-quality prior blended with them (`[routing] quality_prior_weight`).
    pub quality_general: f64,
}

/// One card of `GET /v1/catalog`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CatalogEntry {
    #[serde(flatten)]
    pub card: ModelCard,
    /// The configured providers serving it (shown only to callers that pass the admin gate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serving: Option<Vec<ServingView>>,
}

/// `GET /v1/catalog`'s query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CatalogQuery {
    /// Only cards served by a configured provider.
    #[serde(default)]
    pub served: Option<bool>,
    /// Only cards of this provider type.
    #[serde(default)]
    #[param(value_type = Option<String>, pattern = "^(anthropic|openai|azure_openai|local)$")]
    pub provider_type: Option<ProviderKind>,
}

/// The answer of `GET /v1/catalog`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CatalogAnswer {
    pub models: Vec<CatalogEntry>,
    /// Whether `serving` (live figures, breakers) is included: it is for callers that pass
    /// the admin gate.
    pub live: bool,
    /// Streamed answers needed before live latency replaces a card's prior in routing.
    pub min_live_samples: u32,
}

/// The model cards: context window, output limit, capabilities, prices (cache and
/// long-context tiers), latency and quality priors, dates, and each figure's source; with the
/// admin token, each serving provider's live figures and breaker state beside them.
#[utoipa::path(
    get, path = "/v1/catalog", tag = "routing",
    params(CatalogQuery),
    responses(
        (status = 200, description = "The cards (with live figures for admin callers)", body = CatalogAnswer),
        (status = 400, description = "Unknown query parameter", body = crate::error::OpenAiErrorBody),
    )
)]
#[get("/v1/catalog")]
pub async fn catalog(
    req: HttpRequest,
    state: web::Data<AppState>,
    gate: web::Data<AdminGate>,
    query: web::Query<CatalogQuery>,
) -> HttpResponse {
    let pipeline = &state.pipeline;
    let admin = gate.check(req.headers()).is_ok();
    let snapshot = pipeline.providers.load();
    let live = pipeline.routing.live.load();
    let signals = pipeline.routing.signals.load();
    let breakers = &pipeline.routing.breakers;
    let now = breakers.now();
    let mut serving: BTreeMap<String, Vec<ServingView>> = BTreeMap::new();
    let mut defaults: Vec<Arc<ModelCard>> = Vec::new();
    for c in inventory(&snapshot, &pipeline.catalog) {
        if c.card.origin == crate::catalog::CardOrigin::Defaults
            && !defaults.iter().any(|d| d.id == c.card.id)
        {
            defaults.push(c.card.clone());
        }
        serving
            .entry(c.card.id.clone())
            .or_default()
            .push(ServingView {
                provider: c.provider.id.clone(),
                provider_type: c.provider.kind,
                model: c.model().to_string(),
                enabled: c.provider.enabled,
                breaker: breakers.state(&c.provider.id, Some(c.model()), now),
                live: live.get(&c.provider.id, c.model()).copied(),
                signals: {
                    let recent = c.recent_signals(&signals);
                    let k = pipeline.routing.tuning.quality_prior_weight;
                    let prior = c.card.quality.for_task(crate::catalog::TaskKind::General);
                    (recent.weight > 0.0).then(|| SignalsView {
                        recent: recent.weight,
                        mean: recent.sum / recent.weight,
                        quality_general: (k * prior + recent.sum) / (k + recent.weight),
                    })
                },
            });
    }
    let cards: Vec<Arc<ModelCard>> = pipeline
        .catalog
        .models()
        .iter()
        .cloned()
        .chain(defaults)
        .filter(|card| query.provider_type.is_none_or(|k| k == card.provider_type))
        .filter(|card| query.served != Some(true) || serving.contains_key(&card.id))
        .collect();
    let models = cards
        .into_iter()
        .map(|card| CatalogEntry {
            serving: admin.then(|| serving.remove(&card.id).unwrap_or_default()),
            card: (*card).clone(),
        })
        .collect();
    HttpResponse::Ok().json(CatalogAnswer {
        models,
        live: admin,
        min_live_samples: pipeline.routing.tuning.min_live_samples,
    })
}
