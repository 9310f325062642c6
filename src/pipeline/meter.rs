//! The meter of one proxied request: follows it through the pipeline and the response body, and
//! sends exactly one ledger record when it ends, however it ends (success, error, or the client
//! leaving). Outcomes and error kinds stay enums ([`Outcome`], [`ErrorKind`]) until the record is written.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use entities::{attempts, requests};
use secrecy::ExposeSecret;

use super::call::RequestMeta;
use super::plan::{error_counts_against_provider, Failure, RoutePlan, Target, Why};
use crate::api::usage::UsageMeter;
use crate::api::{Operation, Usage};
use crate::error::{ErrorKind, GatewayError};
use crate::ledger::inbox::LedgerInbox;
use crate::ledger::pricing::Pricing;
use crate::ledger::{now_ms, LedgerRecord, Outcome};
use crate::metrics::Metrics;
use crate::providers::{Credential, ProviderKind};
use crate::router::live::Observation;

/// Characters per token, for estimates where a provider reports no usage.
pub const CHARS_PER_TOKEN: u64 = 4;
/// The status recorded when the client left before any answer was sent.
const CLIENT_CLOSED: i32 = 499;
/// Targets of a plan kept on the record: the Router chains at most `max_targets` (default
/// 3), and an explicit model has one target per provider serving it.
pub const ROUTE_PLAN_KEPT: usize = 8;

/// Where a finished request goes: the ledger, with the prices and metrics to apply.
#[derive(Clone)]
pub struct Recorder {
    pub ledger: LedgerInbox,
    pub pricing: Arc<Pricing>,
    pub metrics: Arc<Metrics>,
    /// Where each attempt's outcome goes for the live figures (the Router actor).
    pub router: actix::Addr<crate::actors::router::Router>,
    /// Finished requests by id, for signals reported before the ledger has written them.
    pub recent: Arc<crate::signals::recent::RecentRequests>,
    /// The budgets and rate limits: each request's typical output is noted there.
    pub limits: Arc<crate::limits::Limiter>,
}

/// Follows one request and records it once.
pub struct RequestMeter {
    record: requests::Model,
    attempts: Vec<attempts::Model>,
    started: Instant,
    op: Operation,
    provider_kind: Option<ProviderKind>,
    target_model: Option<String>,
    request_bytes: u64,
    usage: Option<UsageMeter>,
    /// The credential sent upstream, scrubbed from any upstream error text kept.
    credential: Option<Credential>,
    recorder: Recorder,
    head_sent: bool,
    /// The client left before the answer ended.
    abandoned: bool,
    /// The request's reservation on its key's and project's limits, settled with its cost.
    hold: Option<crate::limits::Hold>,
    done: bool,
}

impl RequestMeter {
    /// Starts metering a request.
    pub fn start(op: Operation, meta: &RequestMeta, recorder: Recorder) -> Self {
        Self {
            record: requests::Model {
                id: meta.request_id.clone(),
                ts_ms: now_ms(),
                project: meta.project.clone(),
                source: meta.source.clone(),
                endpoint: op.as_str().to_string(),
                outcome: Outcome::Ok.as_str().to_string(),
                ..requests::Model::default()
            },
            attempts: Vec::new(),
            started: meta.arrived,
            op,
            provider_kind: None,
            target_model: None,
            request_bytes: 0,
            usage: None,
            credential: None,
            recorder,
            head_sent: false,
            abandoned: false,
            hold: None,
            done: false,
        }
    }

    /// The reservation admission made for the request (settled when the request ends).
    pub fn hold(&mut self, hold: Option<crate::limits::Hold>) {
        self.hold = hold;
    }

    /// The parsed request: the model asked for, streaming, the body size (for estimates).
    pub fn request(&mut self, model: &str, stream: bool, body_bytes: usize) {
        self.record.model_requested = Some(model.to_string());
        self.record.streamed = stream;
        self.request_bytes = body_bytes as u64;
    }

    /// The sanitizer's findings: kinds and counts, never the text.
    pub fn findings(&mut self, findings: &crate::sanitizer::Findings) {
        for (kind, count) in findings {
            self.recorder
                .metrics
                .sanitizer_findings
                .with_label_values(&[kind.as_str()])
                .inc_by(u64::from(*count));
        }
        self.record.sanitizer_findings = serde_json::to_string(findings).ok();
    }

    /// What the request needs of a model (its capabilities, the estimate of its prompt, the
    /// output it asks room for), kept so that past traffic can be routed again
    /// (`POST /v1/route/replay`).
    pub fn needs(&mut self, needs: &crate::router::needs::Needs) {
        let mut names = String::new();
        // `Capabilities::iter` goes in `Capability::ALL` order.
        for capability in needs.capabilities.iter() {
            if !names.is_empty() {
                names.push(',');
            }
            names.push_str(capability.as_str());
        }
        self.record.needs = (!names.is_empty()).then_some(names);
        self.record.prompt_tokens_estimate =
            Some(i64::try_from(needs.prompt_tokens).unwrap_or(i64::MAX));
        self.record.max_tokens = needs
            .max_tokens
            .map(|m| i64::try_from(m).unwrap_or(i64::MAX));
    }

    /// The route plan: its profile (a routed request), its targets in order (at most
    /// [`ROUTE_PLAN_KEPT`]), what decided it, and the candidates open breakers dropped.
    pub fn planned(&mut self, plan: &RoutePlan) {
        self.record.route_profile = plan.profile.clone();
        let targets: Vec<String> = plan
            .targets
            .iter()
            .take(ROUTE_PLAN_KEPT)
            .map(|t| format!("{}/{}", t.provider.id, t.model))
            .collect();
        self.record.route_plan = serde_json::to_string(&targets).ok();
        self.record.route_decided_by = Some(plan.decided_by.to_string());
        self.breaker_skips(plan.breaker_drops);
    }

    /// Targets an open circuit breaker took from the request: dropped by the Router, or
    /// skipped while forwarding.
    pub fn breaker_skips(&mut self, n: usize) {
        let n = i32::try_from(n).unwrap_or(i32::MAX);
        self.record.breaker_skips = self.record.breaker_skips.saturating_add(n);
    }

    /// The caller's key-map label.
    pub fn caller(&mut self, label: Option<&str>) {
        self.record.key_label = label.map(str::to_string);
    }

    /// An upstream attempt that failed (connect error, timeout, or a status worth failing over).
    pub fn attempt_failed(
        &mut self,
        target: &Target,
        started: Instant,
        status: Option<u16>,
        error: &GatewayError,
    ) {
        let metrics = &self.recorder.metrics;
        metrics
            .upstream_errors
            .with_label_values(&[target.provider.id.as_str(), error.code()])
            .inc();
        self.recorder.router.do_send(Observation {
            provider: target.provider.id.clone(),
            model: target.model.clone(),
            failed: match status {
                Some(status) => Failure::Status(status).counts_against_provider(),
                None => error_counts_against_provider(error),
            },
            ttft_ms: None,
            output_tokens_per_s: None,
        });
        // An error status is recorded as what it is (`upstream_http_503`), as it would be had
        // it reached the client.
        let error = match status {
            Some(status) => (
                ErrorKind::UpstreamStatus(status),
                format!(
                    "provider `{}` answered {status}; the next target was tried",
                    target.provider.id
                ),
            ),
            None => (error.kind(), self.scrub(&error.to_string())),
        };
        self.push_attempt(target, started, status, Some(error));
    }

    /// The call went through a translation (`anthropic->openai`).
    pub fn translated(&mut self, direction: &str) {
        self.record.translated = Some(direction.to_string());
    }

    /// The upstream that answered, with the status it answered with.
    pub fn answered(
        &mut self,
        target: &Target,
        started: Instant,
        status: u16,
        credential: Credential,
        strip_usage_chunk: bool,
    ) {
        self.credential = Some(credential);
        if let Why::Routed { rank } = target.why {
            self.record.route_rank = Some(i32::from(rank));
        }
        let error = (status >= 400).then(|| (ErrorKind::UpstreamStatus(status), String::new()));
        self.push_attempt(target, started, Some(status), error);
        self.record.status = i32::from(status);
        self.head_sent = true;
        let streaming = self.record.streamed && status < 400;
        // The answer is read in the shape of what was sent (a translation's upstream API).
        let sent = target
            .provider
            .kind
            .operation_for(self.op)
            .unwrap_or(self.op);
        self.usage = Some(UsageMeter::for_operation(
            sent,
            streaming,
            strip_usage_chunk,
        ));
    }

    fn push_attempt(
        &mut self,
        target: &Target,
        started: Instant,
        status: Option<u16>,
        error: Option<(ErrorKind, String)>,
    ) {
        self.set_target(target);
        let (error_kind, error_message) = error.unzip();
        let error_kind = error_kind.map(|kind| kind.as_str().into_owned());
        self.attempts.push(attempts::Model {
            id: 0,
            request_id: self.record.id.clone(),
            ts_ms: now_ms(),
            attempt: self.attempts.len() as i32,
            provider_id: target.provider.id.clone(),
            model: target.model.clone(),
            status: status.map(i32::from),
            error_kind,
            error_message: error_message.filter(|m| !m.is_empty()),
            latency_ms: started.elapsed().as_millis() as i64,
            mitigated: false,
        });
    }

    fn set_target(&mut self, target: &Target) {
        self.record.provider_id = Some(target.provider.id.clone());
        self.record.provider_type = Some(target.provider.kind.as_str().to_string());
        self.provider_kind = Some(target.provider.kind);
        self.target_model = Some(target.model.clone());
    }

    /// A chunk of the response body on its way to the client; returns the bytes to send.
    pub fn on_chunk(&mut self, chunk: Bytes) -> Bytes {
        if self.record.ttfb_ms.is_none() {
            self.record.ttfb_ms = Some(self.started.elapsed().as_millis() as i64);
        }
        match &mut self.usage {
            Some(meter) => meter.on_chunk(chunk),
            None => chunk,
        }
    }

    /// The body ended; returns bytes still held back, if any. The record is sent.
    pub fn on_end(&mut self) -> Option<Bytes> {
        let rest = self.usage.as_mut().and_then(UsageMeter::on_end);
        self.finish(None);
        rest
    }

    /// The request failed with a gateway error (before or while answering). The record is sent.
    pub fn fail(&mut self, error: &GatewayError) {
        if !self.head_sent {
            self.record.status = i32::from(error.status().as_u16());
        }
        self.finish(Some((error.kind(), self.scrub(&error.to_string()))));
    }

    fn scrub(&self, text: &str) -> String {
        let secret = match &self.credential {
            Some(Credential::Key(key)) => key.secret(),
            Some(Credential::ClientToken { token, .. }) => token,
            _ => return text.to_string(),
        };
        match secret.expose_secret() {
            "" => text.to_string(),
            key => text.replace(key, "[REDACTED]"),
        }
    }

    fn finish(&mut self, error: Option<(ErrorKind, String)>) {
        if self.done {
            return;
        }
        self.done = true;
        let meter = self.usage.as_ref();
        let upstream_error = meter.and_then(|m| m.error.clone());
        let status = self.record.status;
        // A gateway error, else an upstream error status, else an error event mid-stream.
        let error = error
            .or_else(|| {
                (status >= 400).then(|| {
                    let message = upstream_error.clone().map(|(_, m)| m).unwrap_or_default();
                    let status = u16::try_from(status).unwrap_or_default();
                    (ErrorKind::UpstreamStatus(status), message)
                })
            })
            .or_else(|| {
                upstream_error
                    .filter(|_| self.record.streamed)
                    .map(|(kind, message)| (ErrorKind::UpstreamReported(kind), message))
            });
        let outcome = match &error {
            Some(_) => Outcome::Error,
            None if self.attempts.len() > 1 => Outcome::Mitigated,
            None => Outcome::Ok,
        };
        // A client that left mid-answer is an error only if something else failed too.
        let kind = match &error {
            Some((kind, _)) => Some(kind.clone()),
            None => self.abandoned.then_some(ErrorKind::ClientDisconnected),
        };
        let abandoned = kind == Some(ErrorKind::ClientDisconnected);
        self.record.outcome = outcome.as_str().to_string();
        self.record.error_kind = kind.map(|k| k.as_str().into_owned());
        match (outcome, error) {
            (Outcome::Error, Some((_, message))) => {
                let message = self.scrub(&message).chars().take(500).collect::<String>();
                if let Some(last) = self.attempts.last_mut() {
                    last.error_kind
                        .get_or_insert_with(|| self.record.error_kind.clone().unwrap_or_default());
                    last.error_message.get_or_insert_with(|| message.clone());
                }
                self.record.error_message = Some(message);
            }
            (Outcome::Mitigated, _) => {
                let last = self.attempts.len() - 1;
                for attempt in &mut self.attempts[..last] {
                    attempt.mitigated = true;
                }
            }
            _ => {}
        }

        let meter = self.usage.as_ref();
        let r = &mut self.record;
        r.latency_ms = self.started.elapsed().as_millis() as i64;
        r.attempts = self.attempts.len() as i32;
        r.model_used = meter
            .and_then(|m| m.model.clone())
            .or_else(|| self.target_model.clone());
        let delivered = meter
            .map_or(0, |m| m.delivered_chars)
            .div_ceil(CHARS_PER_TOKEN);
        let answered_ok = self.head_sent && r.status < 400 && self.op != Operation::CountTokens;
        let usage = match meter.and_then(|m| m.usage) {
            // A stream cut short bills at least the text it delivered.
            Some(mut usage) if abandoned && usage.output < delivered => {
                usage.output = delivered;
                r.usage_estimated = true;
                usage
            }
            Some(usage) => usage,
            None if answered_ok => {
                r.usage_estimated = true;
                Usage {
                    input: self.request_bytes.div_ceil(CHARS_PER_TOKEN),
                    output: delivered,
                    cached_input: 0,
                    cache_write: 0,
                }
            }
            None => Usage::default(),
        };
        r.input_tokens = i64::try_from(usage.input).unwrap_or(i64::MAX);
        r.output_tokens = i64::try_from(usage.output).unwrap_or(i64::MAX);
        r.cached_input_tokens = i64::try_from(usage.cached_input).unwrap_or(i64::MAX);
        r.cache_write_tokens = i64::try_from(usage.cache_write).unwrap_or(i64::MAX);

        let price = self.provider_kind.and_then(|kind| {
            let models: Vec<&str> = [r.model_used.as_deref(), self.target_model.as_deref()]
                .into_iter()
                .flatten()
                .collect();
            self.recorder.pricing.price(&models, kind)
        });
        (r.cost_usd, r.priced) = match (usage == Usage::default(), price) {
            (true, _) => (Some(0.0), true),
            (false, Some(price)) => (Some(price.cost(&usage)), true),
            (false, None) => (None, false),
        };
        if let Some(hold) = self.hold.take() {
            let tokens = r.input_tokens.saturating_add(r.output_tokens);
            hold.settle(
                r.cost_usd.unwrap_or(0.0),
                u64::try_from(tokens).unwrap_or(0),
            );
        }
        if let (Some(model), true) = (r.model_used.as_deref(), r.output_tokens > 0) {
            let output = u64::try_from(r.output_tokens).unwrap_or(0);
            self.recorder.limits.note_output(model, 1, output);
        }
        self.observe();
        self.report_live();
        let r = &self.record;
        self.recorder.recent.note(
            &r.id,
            r.provider_id.as_deref(),
            r.model_used.as_deref(),
            r.route_profile.as_deref(),
        );
        self.recorder.ledger.record(LedgerRecord {
            // Sent once (`done` is set): the record moves out instead of being copied; what
            // stays behind is an empty record, which allocates nothing.
            request: std::mem::take(&mut self.record),
            attempts: std::mem::take(&mut self.attempts),
        });
    }
}

/// The model label shared by every model id the gateway does not know.
pub const OTHER_MODEL_LABEL: &str = "other";

impl RequestMeter {
    /// The model as a metric label: the model used or asked of the provider when the gateway
    /// knows it (priced, or served by a local server), else one shared label.
    fn metric_model(&self) -> &str {
        let Some(kind) = self.provider_kind else {
            return OTHER_MODEL_LABEL;
        };
        [
            self.record.model_used.as_deref(),
            self.target_model.as_deref(),
        ]
        .into_iter()
        .flatten()
        .find(|m| self.recorder.pricing.price(&[m], kind).is_some())
        .unwrap_or(OTHER_MODEL_LABEL)
    }

    /// Reports the answered attempt to the Router's live figures: its health, and for a
    /// streamed answer its time to first token and its output rate (output tokens over the
    /// time from the first byte to the last).
    fn report_live(&self) {
        let r = &self.record;
        let (Some(provider), Some(model), true) = (
            r.provider_id.as_ref(),
            self.target_model.as_ref(),
            self.head_sent,
        ) else {
            return;
        };
        let status = u16::try_from(r.status).unwrap_or(500);
        let ok = status < 400 && r.outcome != Outcome::Error.as_str();
        let streamed = r.streamed && ok && !r.usage_estimated;
        let ttft = r.ttfb_ms.filter(|_| streamed);
        let tps = ttft.and_then(|ttft| {
            let seconds = (r.latency_ms - ttft) as f64 / 1000.0;
            (r.output_tokens >= 8 && seconds > 0.0).then(|| r.output_tokens as f64 / seconds)
        });
        if let Some(rank) = r.route_rank {
            self.recorder
                .metrics
                .routed
                .with_label_values(&[r.route_profile.as_deref().unwrap_or(""), &rank.to_string()])
                .inc();
        }
        self.recorder.router.do_send(Observation {
            provider: provider.clone(),
            model: model.clone(),
            failed: Failure::Status(status).counts_against_provider(),
            ttft_ms: ttft.map(|t| t as f64),
            output_tokens_per_s: tps,
        });
    }

    /// Exports the finished request to the metrics.
    fn observe(&self) {
        let m = &self.recorder.metrics;
        let r = &self.record;
        let provider = r.provider_id.as_deref().unwrap_or("");
        // Only a model a provider answered for, and one the gateway knows, becomes a label:
        // neither clients nor upstreams can grow the series without bound.
        let model = if self.head_sent {
            self.metric_model()
        } else {
            ""
        };
        let status = r.status.to_string();
        m.requests
            .with_label_values(&[r.endpoint.as_str(), provider, model, status.as_str()])
            .inc();
        m.request_duration
            .with_label_values(&[r.endpoint.as_str(), provider, status.as_str()])
            .observe(r.latency_ms as f64 / 1000.0);
        if let Some(ttfb) = r.ttfb_ms {
            m.ttfb
                .with_label_values(&[r.endpoint.as_str(), provider])
                .observe(ttfb as f64 / 1000.0);
        }
        for (kind, tokens) in [
            ("input", r.input_tokens),
            ("output", r.output_tokens),
            ("cached_input", r.cached_input_tokens),
            ("cache_write", r.cache_write_tokens),
        ] {
            if tokens > 0 {
                m.tokens
                    .with_label_values(&[provider, model, kind])
                    .inc_by(tokens as u64);
            }
        }
        if let Some(cost) = r.cost_usd.filter(|c| *c > 0.0) {
            m.cost_usd
                .with_label_values(&[provider, model])
                .inc_by(cost);
        }
        if r.outcome == Outcome::Error.as_str() && self.head_sent {
            m.upstream_errors
                .with_label_values(&[provider, r.error_kind.as_deref().unwrap_or("")])
                .inc();
        }
    }
}

impl Drop for RequestMeter {
    /// The request was dropped before it ended: the client went away. It is billed for what
    /// was delivered.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.abandoned = true;
        if !self.head_sent {
            self.record.status = CLIENT_CLOSED;
            self.finish(Some((
                ErrorKind::ClientDisconnected,
                "the client closed the connection before the answer".into(),
            )));
        } else {
            if let Some(meter) = self.usage.as_mut() {
                let _ = meter.on_end();
            }
            self.finish(None);
        }
    }
}
