//! The request pipeline of the proxy endpoints, stage by stage:
//! parse → identify the caller → sanitize → plan the route → forward (walking the plan,
//! failing over) → the answer, with a meter following the call from start to end so that it
//! leaves exactly one ledger record. [`Pipeline::call`] takes plain values ([`Inbound`]), so
//! it serves the HTTP endpoints (`http::serve`) and callers inside the gateway alike.

pub mod admission;
pub mod call;
pub mod http;
pub mod inbound;
pub mod mask;
pub mod meter;
pub mod plan;
pub mod response;
pub mod stored;
pub mod translation;
pub mod upstream;
pub mod whole;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Addr;
use arc_swap::ArcSwap;
use bytes::Bytes;

use crate::actors::provider_registry::{ProviderRegistry, RefreshLocalModels, RegistrySnapshot};
use crate::actors::sanitizer::SanitizerHandle;
use crate::api::Operation;
use crate::catalog::Catalog;
use crate::error::{GatewayError, TargetFailure};
use crate::keys::KeyMap;
use crate::providers::Credential;
use crate::router::affinity::session_key;
use crate::router::breaker::Admission;
use crate::router::needs::Needs;
use crate::router::profile::Profile;
use crate::router::{RouteQuery, Routing};
use crate::translate;
use call::{Inbound, ProxyCall, RequestMeta};
use inbound::BodyLimits;
use meter::{Recorder, RequestMeter};
use plan::{moves_on, Failure, RoutePlan, Target};
use upstream::UpstreamClients;

/// How fresh a local server's model list must be before a model it does not list is refused.
const MISS_REFRESH_AGE: Duration = Duration::from_secs(5);

/// What the stages need, shared by every call.
pub struct Pipeline {
    pub keys: KeyMap,
    /// Present when `[sanitization] enabled`.
    pub sanitizer: Option<SanitizerHandle>,
    /// The registry, asked to refresh local servers' models on a miss.
    pub registry: Addr<ProviderRegistry>,
    /// The registry's providers, read without a round-trip.
    pub providers: Arc<ArcSwap<RegistrySnapshot>>,
    pub catalog: Arc<Catalog>,
    /// Profiles, circuit breakers and live figures.
    pub routing: Arc<Routing>,
    /// Size, time and memory bounds of request bodies.
    pub body_limits: BodyLimits,
    /// Where finished calls go (ledger, prices, metrics).
    pub recorder: Recorder,
    /// Budgets and rate limits per key and project: the admission stage.
    pub limits: Arc<crate::limits::Limiter>,
}

/// What answered a call.
pub enum Reply {
    /// The upstream's response head, its body still to come.
    Upstream {
        response: awc::ClientResponse,
        /// The provider's connection slot, held until the answer has been passed on.
        permit: tokio::sync::OwnedSemaphorePermit,
    },
    /// `count_tokens` for a model of OpenAI's API, which has no such endpoint: the gateway's
    /// own count with a tokenizer, an estimate.
    Counted { input_tokens: u64 },
}

/// An upstream answer ready to be passed on.
pub struct Answer {
    pub reply: Reply,
    /// The translation the answer goes back through, when the upstream speaks the other API.
    pub translation: Option<translate::Translation>,
    pub read_timeout: Duration,
    pub provider_id: String,
    /// The key the gateway sent, if it holds it (never shown back to the client).
    pub secret: Option<Arc<crate::secret::HeldKey>>,
    /// Time spent in the gateway so far, excluding waits for upstreams.
    pub overhead: Duration,
    /// The routing profile and the model it chose, for a routed request.
    pub routed: Option<(String, String)>,
}

impl Pipeline {
    /// The meter of a new call.
    pub fn meter(&self, op: Operation, meta: &RequestMeta) -> RequestMeter {
        RequestMeter::start(op, meta, self.recorder.clone())
    }

    /// Runs a call through every stage up to the upstream's response head. An error is
    /// returned as it is; the caller fails the meter with it (or, on success, passes the
    /// meter on with the answer's body).
    pub async fn call(
        &self,
        inbound: Inbound<'_>,
        clients: &UpstreamClients,
        meter: &mut RequestMeter,
    ) -> Result<Answer, GatewayError> {
        let Inbound {
            op,
            meta,
            headers,
            query,
            body,
            // Held until the answer's head: the body's share of the memory budget.
            reservation: _reservation,
        } = inbound;
        let parsed = inbound::parse(op, &body)?;
        meter.request(&parsed.model, parsed.stream, body.len());
        let caller = self.keys.identify(headers)?;
        meter.caller(caller.label());
        let mut call = ProxyCall {
            op,
            meta,
            headers,
            query,
            body,
            parsed,
            caller,
        };
        if let Some(sanitizer) = &self.sanitizer {
            call.body = sanitize(sanitizer, call.body.clone(), &call.meta, meter).await?;
        }
        // What the request needs of a model: the Router's question, and kept on the record
        // (so that past traffic can be routed again under another profile).
        let needs = Needs::of_json(&call.body).map_err(|e| GatewayError::InvalidRequest {
            message: format!("the request body is not valid JSON: {e}"),
            param: None,
        })?;
        meter.needs(&needs);
        let size = self.size(&call, &needs);
        let routed = call.parsed.model == "auto" || call.meta.route_profile.is_some();
        if routed && !op.routable() {
            return Err(GatewayError::InvalidRequest {
                message: format!(
                    "{} does not route: name the model (`model: \"auto\"` and `x-route-profile` choose among chat models)",
                    op.endpoint()
                ),
                param: Some("model".into()),
            });
        }
        let (mut plan, session) = if routed {
            self.route(&call, needs, meter)?
        } else {
            (self.plan(op, &call.parsed.model).await?, None)
        };
        // Admission: the key's and project's limits, before anything is forwarded (a model
        // list may narrow the plan).
        let hold =
            admission::admit(&self.limits, &self.recorder.pricing, &call, &mut plan, size).await?;
        meter.hold(hold);
        meter.planned(&plan);
        let answer = self.forward(&call, plan, clients, meter).await?;
        // The conversation goes on where it was answered (after a failover: the new place).
        if let (Some(key), Some((_, model))) = (session, &answer.routed) {
            let now = self.routing.breakers.now();
            self.routing
                .affinity
                .put(key, &answer.provider_id, model, now);
        }
        Ok(answer)
    }

    /// What the call asks of a model, for admission's expected cost. The chat APIs' prompt is
    /// what `Needs` measured in `messages`; embeddings' `input` and completions' `prompt` are
    /// estimated from the body's size, and embeddings have no output.
    fn size(&self, call: &ProxyCall<'_>, needs: &Needs) -> admission::Size {
        let by_size = call.body.len() as u64 / meter::CHARS_PER_TOKEN;
        let (prompt_tokens, max_tokens) = match call.op {
            Operation::Embeddings => (by_size, Some(0)),
            Operation::Completions | Operation::Responses => {
                (needs.prompt_tokens.max(by_size), needs.max_tokens)
            }
            Operation::ChatCompletions | Operation::Messages | Operation::CountTokens => {
                (needs.prompt_tokens, needs.max_tokens)
            }
        };
        admission::Size {
            prompt_tokens,
            max_tokens,
            default_output: self.routing.tuning.expected_output_tokens,
        }
    }

    /// The Router's plan for `model: "auto"` or an `x-route-profile` header: the header's
    /// profile, else `[routing] default_profile`, over what the request needs.
    /// With the plan, the conversation's affinity key when the profile keeps conversations on
    /// their provider.
    /// A refusal for open breakers alone still counts them on the record (`meter`).
    fn route(
        &self,
        call: &ProxyCall<'_>,
        needs: Needs,
        meter: &mut RequestMeter,
    ) -> Result<(RoutePlan, Option<u64>), GatewayError> {
        let routing = &self.routing;
        let id = call
            .meta
            .route_profile
            .as_deref()
            .unwrap_or(&routing.profiles.default);
        let asked = routing
            .profile(id)
            .map_err(|message| GatewayError::UnknownProfile { message })?;
        let (profile, budget_low) =
            self.budget_profile(asked, call.caller.label(), call.meta.project.as_deref());
        let affinity = &routing.affinity;
        let session = (affinity.enabled() && profile.affinity())
            .then(|| {
                session_key(
                    call.headers,
                    call.caller.label().unwrap_or(""),
                    &profile.id,
                    needs.conversation,
                )
            })
            .flatten();
        let pinned = session.and_then(|key| affinity.get(key, routing.breakers.now()));
        let query = RouteQuery {
            api: Some(call.op.api()),
            profile,
            needs,
            today: crate::router::today(),
            task: call::task_kind(call.headers)?,
            pinned: pinned
                .as_deref()
                .map(|p| (p.provider.as_str(), p.model.as_str())),
            balance: true,
            explain: false,
        };
        let snapshot = self.providers.load();
        match routing.route(&snapshot, &self.catalog, &query) {
            Ok(mut decision) => {
                if budget_low.is_some() {
                    decision.mark_budget_low();
                }
                Ok((RoutePlan::routed(decision), session))
            }
            Err(none) if none.only_breakers => {
                meter.breaker_skips(none.breaker_drops);
                Err(GatewayError::CircuitOpen {
                    providers: none
                        .trace
                        .layers
                        .iter()
                        .flat_map(|l| &l.dropped)
                        .filter(|d| d.reason.starts_with("circuit breaker"))
                        .map(|d| format!("{}/{}", d.provider, d.model))
                        .take(5)
                        .collect(),
                    retry_in_ms: none.retry_in_ms.unwrap_or(0),
                })
            }
            Err(none) => Err(GatewayError::NoRoute {
                summary: none.summary(),
                profile: none.profile,
            }),
        }
    }

    /// The profile a routed request is decided under: `profile`, or its `on_budget_low`
    /// profile when the request's key (by label) or project has used at least
    /// `[limits] budget_low_share` of its budget, with what the switch was for the trace.
    /// The proxy and `POST /v1/route` both ask here.
    pub fn budget_profile<'p>(
        &'p self,
        profile: &'p Profile,
        key: Option<&str>,
        project: Option<&str>,
    ) -> (&'p Profile, Option<plan::BudgetLow>) {
        let Some(low) = profile.spec.on_budget_low.as_deref() else {
            return (profile, None);
        };
        let low_share = self.limits.budget_low_share;
        let Some(used_share) = self
            .limits
            .budget_used(key, project)
            .filter(|used| *used >= low_share)
        else {
            return (profile, None);
        };
        // Settings validation makes `on_budget_low` name a profile; were it gone, the asked
        // profile still routes.
        let Ok(cheaper) = self.routing.profile(low) else {
            return (profile, None);
        };
        tracing::info!(from = %profile.id, to = %cheaper.id, used_share, "budget low: routed under the cheaper profile");
        let switch = plan::BudgetLow {
            from: profile.id.clone(),
            to: cheaper.id.clone(),
            used_share,
            low_share,
        };
        (cheaper, Some(switch))
    }

    /// The route plan of a model; a miss asks local servers for their current models once.
    async fn plan(&self, op: Operation, model: &str) -> Result<RoutePlan, GatewayError> {
        let snapshot = self.providers.load();
        match RoutePlan::resolve(&snapshot, &self.catalog, op, model) {
            Err(GatewayError::ModelNotFound { .. }) if snapshot.has_local_providers() => {
                self.registry
                    .send(RefreshLocalModels {
                        max_age: MISS_REFRESH_AGE,
                    })
                    .await
                    .map_err(|e| GatewayError::Internal {
                        message: format!("failed to ask the provider registry: {e}"),
                    })?;
                RoutePlan::resolve(&self.providers.load(), &self.catalog, op, model)
            }
            other => other,
        }
    }

    /// Walks the plan: each target in turn until one answers with something to pass on, or
    /// a failure that another target would not help ([`moves_on`]).
    async fn forward(
        &self,
        call: &ProxyCall<'_>,
        plan: RoutePlan,
        clients: &UpstreamClients,
        meter: &mut RequestMeter,
    ) -> Result<Answer, GatewayError> {
        let metrics = &self.recorder.metrics;
        let breakers = &self.routing.breakers;
        let mut upstream_wait = Duration::ZERO;
        let mut failures: Vec<TargetFailure> = Vec::new();
        let mut last_error = None;
        // Targets skipped because their breaker is open, and the soonest one reopens.
        let mut refused: Vec<String> = Vec::new();
        let mut retry_in_ms = u64::MAX;
        let targets = &plan.targets;
        for (index, target) in targets.iter().enumerate() {
            let provider = target.provider.id.as_str();
            if let Admission::Refuse { retry_in_ms: wait } =
                breakers.admit(provider, &target.model, breakers.now(), true)
            {
                tracing::debug!(provider, model = %target.model, "circuit breaker open: target skipped");
                metrics.breaker_skips.with_label_values(&[provider]).inc();
                meter.breaker_skips(1);
                refused.push(format!("{provider}/{}", target.model));
                retry_in_ms = retry_in_ms.min(wait);
                continue;
            }
            // A later target its breaker would let through.
            let has_next = targets[index + 1..].iter().any(|t| {
                !matches!(
                    breakers.admit(&t.provider.id, &t.model, breakers.now(), false),
                    Admission::Refuse { .. }
                )
            });
            let attempt_started = Instant::now();
            let translated = target.provider.kind.translates(call.op);
            if target.provider.kind.operation_for(call.op).is_none() {
                // count_tokens for a model of OpenAI's API: counted here.
                let input_tokens = translation::count_tokens(call.body.clone()).await?;
                meter.answered(target, attempt_started, 200, Credential::None, false);
                return Ok(Answer {
                    reply: Reply::Counted { input_tokens },
                    translation: None,
                    read_timeout: target.provider.read_timeout,
                    provider_id: target.provider.id.clone(),
                    secret: None,
                    overhead: call.meta.arrived.elapsed().saturating_sub(upstream_wait),
                    routed: plan
                        .profile
                        .as_deref()
                        .map(|p| (p.to_string(), target.model.clone())),
                });
            }
            let credential = call.caller.credential_for(&target.provider)?;
            let upstream_body = if translated {
                let card = translation::card_of(&self.catalog, target);
                match translation::body(call, target, card) {
                    Ok((body, translation)) => inbound::UpstreamBody {
                        body,
                        strip_usage_chunk: false,
                        translation: Some(translation),
                    },
                    // What this target cannot take another may (a model with `pdf`, a
                    // provider of the client's own API).
                    Err(error) if has_next => {
                        tracing::debug!(provider, model = %target.model, error = %error, "not translatable for this target: moving on");
                        failures.push(TargetFailure {
                            provider: provider.to_string(),
                            failure: error.to_string(),
                        });
                        last_error = Some(error);
                        continue;
                    }
                    Err(error) => {
                        if failures.is_empty() {
                            return Err(error);
                        }
                        last_error = Some(error);
                        break;
                    }
                }
            } else {
                inbound::body_for_target(call.op, &call.body, &call.parsed, target)?
            };
            let waited = Instant::now();
            let sent = match self.connection_permit(target).await {
                Ok(permit) => {
                    upstream::send(clients, target, call, upstream_body.body, &credential)
                        .await
                        .map(|response| (response, permit))
                }
                Err(error) => Err(error),
            };
            upstream_wait += waited.elapsed();
            let failure = match sent {
                Ok((response, permit)) => {
                    let status = response.status().as_u16();
                    let failure = Failure::Status(status);
                    breakers.record(
                        provider,
                        &target.model,
                        failure.counts_against_provider(),
                        breakers.now(),
                    );
                    if !(has_next && moves_on(&failure)) {
                        return Ok(self.answered(
                            call,
                            target,
                            plan.profile.as_deref(),
                            attempt_started,
                            (response, permit),
                            credential,
                            upstream_body.strip_usage_chunk,
                            upstream_body.translation,
                            upstream_wait,
                            meter,
                        ));
                    }
                    tracing::warn!(provider, status, "upstream failed, failing over");
                    failure
                }
                Err(error) => {
                    tracing::warn!(provider, error = %error, "upstream attempt failed");
                    let failure = Failure::Error(error);
                    breakers.record(
                        provider,
                        &target.model,
                        failure.counts_against_provider(),
                        breakers.now(),
                    );
                    failure
                }
            };
            let moving = has_next && moves_on(&failure);
            let (status, error) = match failure {
                Failure::Status(status) => (
                    Some(status),
                    GatewayError::UpstreamBroken {
                        provider: provider.to_string(),
                        message: format!("status {status}"),
                    },
                ),
                Failure::Error(error) => (None, error),
            };
            meter.attempt_failed(target, attempt_started, status, &error);
            failures.push(TargetFailure {
                provider: provider.to_string(),
                failure: match status {
                    Some(status) => format!("status {status}"),
                    None => error.to_string(),
                },
            });
            last_error = Some(error);
            if !moving {
                break;
            }
            metrics.failovers.with_label_values(&[provider]).inc();
        }
        if last_error.is_none() && !refused.is_empty() {
            return Err(GatewayError::CircuitOpen {
                providers: refused,
                retry_in_ms: if retry_in_ms == u64::MAX {
                    0
                } else {
                    retry_in_ms
                },
            });
        }
        let last = last_error.unwrap_or_else(|| GatewayError::Internal {
            message: "no upstream attempt was made".into(),
        });
        Err(if failures.len() > 1 {
            GatewayError::AllTargetsFailed {
                failures,
                last: Box::new(last),
            }
        } else {
            last
        })
    }

    /// The target that answered: logged, metered, and its answer made ready to pass on.
    #[allow(clippy::too_many_arguments)]
    fn answered(
        &self,
        call: &ProxyCall<'_>,
        target: &Target,
        profile: Option<&str>,
        attempt_started: Instant,
        (response, permit): (awc::ClientResponse, tokio::sync::OwnedSemaphorePermit),
        credential: Credential,
        strip_usage_chunk: bool,
        translation: Option<translate::Translation>,
        upstream_wait: Duration,
        meter: &mut RequestMeter,
    ) -> Answer {
        let status = response.status().as_u16();
        let meta = &call.meta;
        tracing::info!(
            request_id = %meta.request_id,
            provider = %target.provider.id,
            model = %target.model,
            label = call.caller.label().unwrap_or(""),
            source = meta.source.as_deref().unwrap_or(""),
            project = meta.project.as_deref().unwrap_or(""),
            status,
            stream = call.parsed.stream,
            translated = translation.as_ref().map_or("", translation::direction),
            head_ms = meta.arrived.elapsed().as_millis() as u64,
            "proxied"
        );
        let secret = match &credential {
            Credential::Key(key) => Some(key.clone()),
            _ => None,
        };
        meter.answered(
            target,
            attempt_started,
            status,
            credential,
            strip_usage_chunk,
        );
        if let Some(translation) = &translation {
            meter.translated(translation::direction(translation));
        }
        Answer {
            reply: Reply::Upstream { response, permit },
            translation,
            read_timeout: target.provider.read_timeout,
            provider_id: target.provider.id.clone(),
            secret,
            overhead: meta.arrived.elapsed().saturating_sub(upstream_wait),
            routed: profile.map(|p| (p.to_string(), target.model.clone())),
        }
    }

    /// One of the target provider's `max_connections` slots: at once when one is free; else
    /// after a wait (measured), which gives up after the connect timeout so that failover can help.
    async fn connection_permit(
        &self,
        target: &Target,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, GatewayError> {
        let provider = &target.provider;
        if let Ok(permit) = provider.connections.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let waited = Instant::now();
        let permit = tokio::time::timeout(
            provider.connect_timeout,
            provider.connections.clone().acquire_owned(),
        )
        .await;
        self.recorder
            .metrics
            .connection_wait
            .with_label_values(&[provider.id.as_str()])
            .observe(waited.elapsed().as_secs_f64());
        match permit {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(GatewayError::Internal {
                message: format!(
                    "the connection slots of provider `{}` were closed",
                    provider.id
                ),
            }),
            Err(_) => {
                tracing::warn!(provider = %provider.id, max_connections = provider.max_connections, "no free upstream connection within the connect timeout");
                Err(GatewayError::UpstreamTimeout {
                    provider: provider.id.clone(),
                    timeout_ms: provider.connect_timeout.as_millis() as u64,
                })
            }
        }
    }
}

/// Scans the body: records the findings, refuses the request when one blocks, and returns
/// the body to forward (redacted where redaction applies).
async fn sanitize(
    sanitizer: &SanitizerHandle,
    body: Bytes,
    meta: &RequestMeta,
    meter: &mut RequestMeter,
) -> Result<Bytes, GatewayError> {
    let scan = sanitizer.scan(body.clone()).await?;
    if scan.findings.is_empty() {
        return Ok(body);
    }
    tracing::warn!(
        request_id = %meta.request_id,
        findings = ?scan.findings,
        redacted = scan.redacted.is_some(),
        blocked = !scan.blocking.is_empty(),
        "sanitizer findings"
    );
    meter.findings(&scan.findings);
    if !scan.blocking.is_empty() {
        return Err(GatewayError::ComplianceBlocked {
            kinds: scan.blocking,
        });
    }
    Ok(scan.redacted.map_or(body, Bytes::from))
}
