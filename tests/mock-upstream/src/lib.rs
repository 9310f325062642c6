//! A mock LLM provider speaking the real wire formats of OpenAI, Azure OpenAI, Anthropic and
//! OpenAI-compatible local servers (JSON and SSE), recording what it receives.
//!
//! Behaviour is steered per request by headers the gateway forwards unchanged:
//! `x-mock-status` (answer with that status and a provider-shaped error),
//! `x-mock-delay-ms` (wait before the response head), `x-mock-chunks` (streamed content
//! chunks, default 3), `x-mock-chunk-delay-ms` (gap between chunks), `x-mock-hold` (after the
//! first chunk, wait at least 500 ms and until [`MockUpstream::release`] is called),
//! `x-mock-cached-tokens` / `x-mock-cache-write-tokens` (report cache reads / writes),
//! `x-mock-no-usage` (report no usage at all, like some local servers), `x-mock-echo-key`
//! (an error message that repeats the credential received, as careless servers do),
//! `x-mock-location` (a `Location` header on the `x-mock-status` answer, for redirects).
//! [`MockUpstream::set_failing`] makes one mock answer every chat and messages request with an
//! error status (a provider that is down while another is up).
//! With `x-mock-echo-key`, the credential received is also repeated in a `www-authenticate`
//! header of error answers, in an `x-mock-echo` header and the text of JSON chat answers,
//! and in a chat stream's text, split across two writes in the middle of the key.
//!
//! Tool calls and thinking, in both APIs' wire formats, JSON and SSE:
//! `x-mock-tool: NAME` (with `x-mock-tool-args: <JSON object>`, default `{}`) answers with a
//! call of that tool when the request offers it (`tools[].function.name` / `tools[].name`) and
//! the conversation holds no tool result yet; once it does, the answer is the text
//! `tool result: <the latest tool results' text, first 200 chars>`. `x-mock-tools: N` makes N
//! parallel calls (ids `call_mock_<i>` / `toolu_mock_<i>`; in OpenAI streams their argument
//! fragments interleave). `x-mock-reasoning: TEXT` adds reasoning: OpenAI's
//! `reasoning_content`, Anthropic's `thinking` block (signature `sig-mock-1`) before the text.
//!
//! Embeddings (`/v1/embeddings`, and Azure's deployment path): one `data` item per input (a
//! string, strings, token ids or arrays of them), each a vector of `dimensions` floats (default
//! 8) that depends on the input's index, as a float array or, with `encoding_format: base64`,
//! the base64 of its little-endian f32 bytes; `usage.prompt_tokens` (and `total_tokens`) is
//! the sum over the inputs of a string's bytes / 4 (rounded up) or a token array's length.
//! Legacy completions (`/v1/completions`, Azure's too): a `text_completion` whose text is the
//! chunks' text (`x-mock-chunks`), or its SSE chunks (`choices[].text`, a last chunk with
//! `finish_reason`, the usage chunk when `stream_options.include_usage`, `[DONE]`); usage as
//! chat's. `x-mock-status` and `x-mock-no-usage` steer both as they do chat.
//!
//! The Responses API (`/v1/responses`, and Azure's `/openai/v1/responses`): a response object
//! whose output is a `message` item with the chunks' text, or `function_call` items of the
//! steered tool (offered as `tools[].name`; once `input` holds a `function_call_output`, the
//! text `tool result: …`); usage `input_tokens` as chat's prompt tokens (with
//! `input_tokens_details.cached_tokens`), `output_tokens` the chunk count. Streamed, its typed
//! events (`event:` and `data:` with `type` and `sequence_number`) from `response.created` to
//! `response.completed`, which carries the usage. Responses not sent with `store: false` are
//! kept: `GET` and `DELETE /v1/responses/{id}` read and delete them (404 otherwise).
//!
//! A model whose id starts with `mock-sql` writes SQL over the `/v1/ask` views instead: its
//! answer is a ```sql fence holding a query chosen by the words of the last user message
//! (cost or spend, source, error, day; else requests per model).

use std::collections::{BTreeMap, VecDeque};
use std::future::Future as _;
use std::net::TcpListener;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use bytes::Bytes;
use futures_util::Stream;
use serde_json::{json, Value};

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Header names lowercased; repeated headers joined with ", ".
    pub headers: BTreeMap<String, String>,
    pub body: Bytes,
    /// The client's address: the same port on two requests means one reused connection.
    pub peer: Option<std::net::SocketAddr>,
}

impl Recorded {
    /// A header's value, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The body as JSON (Null if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// State shared between the mock server and the test that drives it.
#[derive(Default)]
pub struct MockState {
    /// When false (the benchmark), requests are not kept: memory stays flat under load.
    recording: AtomicBool,
    requests: Mutex<Vec<Recorded>>,
    models: Mutex<Vec<String>>,
    chunks_sent: AtomicUsize,
    released: AtomicBool,
    aborted_streams: AtomicUsize,
    completed_streams: AtomicUsize,
    /// When not 0: every chat and messages request answers with this status.
    failing: std::sync::atomic::AtomicU16,
    /// The Responses API's stored responses (`store` not false), by id.
    stored: Mutex<BTreeMap<String, Value>>,
    /// The number of the next response id.
    next_response: AtomicUsize,
}

/// A running mock provider.
pub struct MockUpstream {
    pub port: u16,
    pub state: Arc<MockState>,
}

impl MockUpstream {
    /// Starts a mock on a free port of 127.0.0.1, in a thread of its own.
    pub fn start() -> std::io::Result<Self> {
        Self::start_on("127.0.0.1:0", 1)
    }

    /// Starts a mock on `address` with `workers` HTTP workers, recording what it receives.
    pub fn start_on(address: &str, workers: usize) -> std::io::Result<Self> {
        Self::start_with(address, workers, true)
    }

    /// Starts a mock on `address`; `record` false keeps no request (for load tests).
    pub fn start_with(address: &str, workers: usize, record: bool) -> std::io::Result<Self> {
        let listener = TcpListener::bind(address)?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(MockState::default());
        state.recording.store(record, Ordering::SeqCst);
        let server_state = state.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let system = actix_rt::System::new();
            let result = system.block_on(async move {
                let data = web::Data::from(server_state);
                let server =
                    HttpServer::new(move || App::new().app_data(data.clone()).configure(routes))
                        .workers(workers)
                        .disable_signals()
                        .listen(listener)?
                        .run();
                let _ = ready_tx.send(());
                server.await
            });
            if let Err(e) = result {
                eprintln!("mock upstream stopped: {e}");
            }
        });
        let _ = ready_rx.recv_timeout(Duration::from_secs(10));
        Ok(Self { port, state })
    }

    /// The base URL, e.g. `http://127.0.0.1:4711`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Everything received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// The last request received.
    pub fn last_request(&self) -> Option<Recorded> {
        self.requests().pop()
    }

    /// Sets the models `GET /v1/models` reports (local-server discovery).
    pub fn set_models(&self, models: &[&str]) {
        if let Ok(mut m) = self.state.models.lock() {
            *m = models.iter().map(|s| s.to_string()).collect();
        }
    }

    /// Makes every chat and messages request answer `status` (None: answer normally again).
    pub fn set_failing(&self, status: Option<u16>) {
        self.state
            .failing
            .store(status.unwrap_or(0), Ordering::SeqCst);
    }

    /// Streamed chunks written so far (all streams).
    pub fn chunks_sent(&self) -> usize {
        self.state.chunks_sent.load(Ordering::SeqCst)
    }

    /// Lets streams held by `x-mock-hold` continue.
    pub fn release(&self) {
        self.state.released.store(true, Ordering::SeqCst);
    }

    /// Streams whose reader went away before the last chunk.
    pub fn aborted_streams(&self) -> usize {
        self.state.aborted_streams.load(Ordering::SeqCst)
    }

    /// Streams sent to the end.
    pub fn completed_streams(&self) -> usize {
        self.state.completed_streams.load(Ordering::SeqCst)
    }
}

/// The mock's routes, for embedding in another server.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/chat/completions", web::post().to(chat))
        .route(
            "/openai/deployments/{deployment}/chat/completions",
            web::post().to(chat),
        )
        .route("/v1/embeddings", web::post().to(embeddings))
        .route(
            "/openai/deployments/{deployment}/embeddings",
            web::post().to(embeddings),
        )
        .route("/v1/completions", web::post().to(completions))
        .route(
            "/openai/deployments/{deployment}/completions",
            web::post().to(completions),
        )
        .route("/v1/responses", web::post().to(responses))
        .route("/openai/v1/responses", web::post().to(responses))
        .route("/v1/responses/{id}", web::get().to(stored_response))
        .route("/openai/v1/responses/{id}", web::get().to(stored_response))
        .route("/v1/responses/{id}", web::delete().to(stored_response))
        .route(
            "/openai/v1/responses/{id}",
            web::delete().to(stored_response),
        )
        .route("/v1/messages", web::post().to(messages))
        .route("/v1/messages/count_tokens", web::post().to(count_tokens))
        .route("/v1/models", web::get().to(models))
        .route("/__mock/requests", web::get().to(recorded));
}

/// What the mock received, as JSON, for tests that run it as a separate process.
async fn recorded(state: web::Data<MockState>) -> HttpResponse {
    let requests = state.requests.lock().map(|r| r.clone()).unwrap_or_default();
    let list: Vec<Value> = requests
        .iter()
        .map(|r| {
            json!({"method": r.method, "path": r.path, "query": r.query, "headers": r.headers,
                   "body": String::from_utf8_lossy(&r.body)})
        })
        .collect();
    HttpResponse::Ok().json(list)
}

/// How one request asks the mock to behave.
struct Steering {
    status: Option<u16>,
    delay: Duration,
    chunks: usize,
    chunk_delay: Duration,
    hold: bool,
    cached: u64,
    cache_write: u64,
    no_usage: bool,
    echo_key: Option<String>,
    location: Option<String>,
    /// `x-mock-tool`: the tool to call, if the request offers it.
    tool: Option<String>,
    /// `x-mock-tool-args`: the call's arguments (a JSON object; `{}` when absent or invalid).
    tool_args: Value,
    /// `x-mock-tools`: how many parallel calls (at least 1).
    tool_calls: usize,
    /// `x-mock-reasoning`: reasoning / thinking text to answer with.
    reasoning: Option<String>,
}

impl Steering {
    fn from(req: &HttpRequest) -> Self {
        let failing = req
            .app_data::<web::Data<MockState>>()
            .map_or(0, |s| s.failing.load(Ordering::SeqCst));
        let number = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
        };
        let text = |name: &str| {
            req.headers()
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).to_string())
        };
        Self {
            status: number("x-mock-status")
                .map(|s| s as u16)
                .or((failing != 0).then_some(failing)),
            delay: Duration::from_millis(number("x-mock-delay-ms").unwrap_or(0)),
            chunks: number("x-mock-chunks").unwrap_or(3).max(1) as usize,
            chunk_delay: Duration::from_millis(number("x-mock-chunk-delay-ms").unwrap_or(0)),
            hold: req.headers().contains_key("x-mock-hold"),
            cached: number("x-mock-cached-tokens").unwrap_or(0),
            cache_write: number("x-mock-cache-write-tokens").unwrap_or(0),
            no_usage: req.headers().contains_key("x-mock-no-usage"),
            echo_key: req.headers().contains_key("x-mock-echo-key").then(|| {
                ["authorization", "x-api-key", "api-key"]
                    .iter()
                    .find_map(|h| req.headers().get(*h))
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).to_string())
                    .unwrap_or_default()
            }),
            location: req
                .headers()
                .get("x-mock-location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            tool: text("x-mock-tool"),
            tool_args: text("x-mock-tool-args")
                .and_then(|v| serde_json::from_str::<Value>(&v).ok())
                .filter(Value::is_object)
                .unwrap_or_else(|| json!({})),
            tool_calls: number("x-mock-tools").unwrap_or(1).max(1) as usize,
            reasoning: text("x-mock-reasoning"),
        }
    }
}

/// What a request is answered with, beyond the steering of the transport.
enum Reply {
    /// The default text, `chunk0 chunk1 …`.
    Chunks,
    /// Calls of the steered tool.
    ToolCalls(Vec<ToolCall>),
    /// A text of its own: `tool result: …` once the conversation carries a tool result, or the
    /// SQL of a `mock-sql*` model.
    Text(String),
}

/// One call of the steered tool.
struct ToolCall {
    index: usize,
    name: String,
    input: Value,
    /// `input` as the compact JSON text OpenAI sends (and Anthropic streams in pieces).
    arguments: String,
}

impl Reply {
    /// The reply `steer` asks for, given whether the request offers the tool and the text of
    /// its latest tool results (None: no tool result yet).
    fn plan(steer: &Steering, offers_tool: impl Fn(&str) -> bool, result: Option<String>) -> Self {
        let Some(name) = steer.tool.as_deref().filter(|name| offers_tool(name)) else {
            return Reply::Chunks;
        };
        if let Some(result) = result {
            let head: String = result.chars().take(200).collect();
            return Reply::Text(format!("tool result: {head}"));
        }
        let arguments = steer.tool_args.to_string();
        Reply::ToolCalls(
            (0..steer.tool_calls)
                .map(|index| ToolCall {
                    index,
                    name: name.to_string(),
                    input: steer.tool_args.clone(),
                    arguments: arguments.clone(),
                })
                .collect(),
        )
    }

    /// The streamed text pieces of a text reply (none for tool calls).
    fn text_pieces(&self, chunks: usize) -> Vec<String> {
        match self {
            Reply::Chunks => (0..chunks).map(chunk_text).collect(),
            Reply::Text(text) => split_into(text, chunks),
            Reply::ToolCalls(_) => Vec::new(),
        }
    }
}

/// What a `mock-sql*` model writes for a question about the ledger (the views of `/v1/ask`),
/// chosen by the question's words, so that the gateway's check and run of it are exercised.
fn sql_for(question: &str) -> &'static str {
    let q = question.to_lowercase();
    if q.contains("cost") || q.contains("spend") {
        "SELECT model, ROUND(SUM(cost_usd), 6) AS spend_usd FROM ask_requests GROUP BY model ORDER BY spend_usd DESC"
    } else if q.contains("source") {
        "SELECT source, COUNT(*) AS requests FROM ask_requests GROUP BY source ORDER BY requests DESC"
    } else if q.contains("error") {
        "SELECT provider, AVG(is_error) AS error_rate FROM ask_requests GROUP BY provider ORDER BY error_rate DESC"
    } else if q.contains("day") {
        "SELECT day, SUM(tokens) AS tokens FROM ask_requests GROUP BY day ORDER BY day"
    } else {
        "SELECT model, COUNT(*) AS requests FROM ask_requests GROUP BY model ORDER BY requests DESC"
    }
}

/// A `mock-sql*` model's reply (the SQL in a fence) to the last user message, or None for any
/// other model. Both APIs carry `model` and `messages[].content` alike.
fn sql_reply(request: &Value) -> Option<Reply> {
    if !request["model"].as_str()?.starts_with("mock-sql") {
        return None;
    }
    let messages = request["messages"].as_array()?;
    let question = messages.iter().rev().find(|m| m["role"] == "user")?;
    let sql = sql_for(&content_text(&question["content"]));
    Some(Reply::Text(format!("Here it is:\n```sql\n{sql}\n```")))
}

/// `text` in about `parts` pieces of whole characters (at least one piece).
fn split_into(text: &str, parts: usize) -> Vec<String> {
    let size = text.chars().count().div_ceil(parts.max(1)).max(1);
    pieces(text, size)
}

/// `text` in pieces of `size` characters (at least one piece, maybe empty).
fn pieces(text: &str, size: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    chars
        .chunks(size.max(1))
        .map(|c| c.iter().collect())
        .collect()
}

/// The size of a streamed tool-argument fragment, in characters.
const ARGUMENT_FRAGMENT: usize = 5;

/// The text of a message `content` (a string, or parts / blocks carrying `text`).
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// OpenAI: whether `tools[].function.name` holds `name`.
fn openai_offers(request: &Value, name: &str) -> bool {
    request["tools"]
        .as_array()
        .is_some_and(|tools| tools.iter().any(|t| t["function"]["name"] == name))
}

/// The text of the last run of items that are tool results, if there is one.
fn last_results(
    items: &[Value],
    is_result: impl Fn(&Value) -> bool,
    text: impl Fn(&Value) -> String,
) -> Option<String> {
    let last = items.iter().rposition(&is_result)?;
    let first = items[..=last]
        .iter()
        .rposition(|i| !is_result(i))
        .map_or(0, |i| i + 1);
    Some(
        items[first..=last]
            .iter()
            .map(text)
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// OpenAI: the text of the last run of `role:"tool"` messages, if there is one.
fn openai_tool_result(request: &Value) -> Option<String> {
    last_results(
        request["messages"].as_array()?,
        |m| m["role"] == "tool",
        |m| content_text(&m["content"]),
    )
}

/// Anthropic: whether `tools[].name` holds `name`.
fn anthropic_offers(request: &Value, name: &str) -> bool {
    request["tools"]
        .as_array()
        .is_some_and(|tools| tools.iter().any(|t| t["name"] == name))
}

/// Anthropic: the text of the `tool_result` blocks of the last user message holding any.
fn anthropic_tool_result(request: &Value) -> Option<String> {
    let results = |m: &Value| -> Vec<String> {
        if m["role"] != "user" {
            return Vec::new();
        }
        m["content"]
            .as_array()
            .map(|blocks| {
                blocks
                    .iter()
                    .filter(|b| b["type"] == "tool_result")
                    .map(|b| content_text(&b["content"]))
                    .collect()
            })
            .unwrap_or_default()
    };
    request["messages"]
        .as_array()?
        .iter()
        .rev()
        .map(results)
        .find(|r| !r.is_empty())
        .map(|r| r.join("\n"))
}

fn record(state: &MockState, req: &HttpRequest, body: &Bytes) {
    if !state.recording.load(Ordering::Relaxed) {
        return;
    }
    let mut headers = BTreeMap::new();
    for (name, value) in req.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).to_string();
        headers
            .entry(name.as_str().to_string())
            .and_modify(|v: &mut String| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    if let Ok(mut requests) = state.requests.lock() {
        requests.push(Recorded {
            method: req.method().to_string(),
            path: req.path().to_string(),
            query: req.query_string().to_string(),
            headers,
            body: body.clone(),
            peer: req.peer_addr(),
        });
    }
}

/// A deterministic token count for a request body: one token per four bytes.
pub fn prompt_tokens(body: &[u8]) -> u64 {
    (body.len() as u64).div_ceil(4)
}

/// The text of streamed chunk `i`.
pub fn chunk_text(i: usize) -> String {
    format!("chunk{i} ")
}

/// The whole reply text of `chunks` chunks.
pub fn reply_text(chunks: usize) -> String {
    (0..chunks).map(chunk_text).collect()
}

fn error_message(status: u16, steer: &Steering) -> String {
    match &steer.echo_key {
        Some(key) => format!("mock upstream error {status}: bad credential {key}"),
        None => format!("mock upstream error {status}"),
    }
}

/// The head of a steered status answer, with its `Location` when one was asked for.
fn status_answer(status: u16, steer: &Steering) -> actix_web::HttpResponseBuilder {
    let mut builder = HttpResponse::build(status_code(status));
    if let Some(location) = &steer.location {
        builder.insert_header(("location", location.as_str()));
    }
    if let Some(key) = &steer.echo_key {
        // As some servers do: the rejected credential repeated in the challenge.
        builder.insert_header((
            "www-authenticate",
            format!("Bearer realm=\"mock\", error=\"invalid_token\", error_description=\"{key}\""),
        ));
    }
    builder
}

fn openai_error(status: u16, steer: &Steering) -> HttpResponse {
    status_answer(status, steer).json(json!({"error": {
        "message": error_message(status, steer),
        "type": if status == 429 { "rate_limit_error" } else { "server_error" },
        "param": null, "code": null,
    }}))
}

fn anthropic_error(status: u16, steer: &Steering) -> HttpResponse {
    let kind = match status {
        429 => "rate_limit_error",
        529 => "overloaded_error",
        400 => "invalid_request_error",
        401 => "authentication_error",
        _ => "api_error",
    };
    status_answer(status, steer).json(json!({"type": "error", "error": {
        "type": kind, "message": error_message(status, steer),
    }}))
}

fn status_code(status: u16) -> actix_web::http::StatusCode {
    actix_web::http::StatusCode::from_u16(status)
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR)
}

/// Records an OpenAI-API request and reads how it steers the mock: its steering and its body
/// (Null if not JSON), or the steered error answer after the steered delay.
async fn openai_request(
    req: &HttpRequest,
    body: &Bytes,
    state: &MockState,
) -> Result<(Steering, Value), HttpResponse> {
    record(state, req, body);
    let steer = Steering::from(req);
    actix_rt::time::sleep(steer.delay).await;
    if let Some(status) = steer.status {
        return Err(openai_error(status, &steer));
    }
    Ok((steer, serde_json::from_slice(body).unwrap_or(Value::Null)))
}

async fn chat(req: HttpRequest, body: Bytes, state: web::Data<MockState>) -> HttpResponse {
    let (steer, request) = match openai_request(&req, &body, &state).await {
        Ok(read) => read,
        Err(answer) => return answer,
    };
    let model = request["model"]
        .as_str()
        .unwrap_or("mock-model")
        .to_string();
    let reply = sql_reply(&request).unwrap_or_else(|| {
        Reply::plan(
            &steer,
            |name| openai_offers(&request, name),
            openai_tool_result(&request),
        )
    });
    let input = prompt_tokens(&body);
    let output = steer.chunks as u64;
    let usage = if steer.no_usage {
        Value::Null
    } else {
        json!({"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output,
               "prompt_tokens_details": {"cached_tokens": steer.cached}})
    };
    let echoed = steer
        .echo_key
        .as_ref()
        .map(|k| format!(" (you sent {k})"))
        .unwrap_or_default();
    let finish = match reply {
        Reply::ToolCalls(_) => "tool_calls",
        _ => "stop",
    };
    if request["stream"].as_bool() != Some(true) {
        let mut answer = HttpResponse::Ok();
        answer.insert_header(("x-request-id", "upstream-req-123"));
        if let Some(key) = &steer.echo_key {
            answer.insert_header(("x-mock-echo", key.as_str()));
        }
        let mut message = match &reply {
            Reply::ToolCalls(calls) => json!({"role": "assistant", "content": null,
                "tool_calls": calls.iter().map(|c| json!({"id": format!("call_mock_{}", c.index),
                    "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
                    .collect::<Vec<_>>(),
                "refusal": null}),
            _ => json!({"role": "assistant",
                "content": format!("{}{echoed}", reply.text_pieces(steer.chunks).concat()), "refusal": null}),
        };
        if let Some(reasoning) = &steer.reasoning {
            message["reasoning_content"] = json!(reasoning);
        }
        return answer.json(json!({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": 1_700_000_000,
            "model": model, "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "message": message,
                         "logprobs": null, "finish_reason": finish}],
            "usage": usage,
        }));
    }
    let chunk = |delta: Value, finish: Value| {
        let event = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": model, "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
        format!("data: {event}\n\n")
    };
    let mut events = vec![match reply {
        Reply::ToolCalls(_) => chunk(
            json!({"role": "assistant", "content": null, "refusal": null}),
            Value::Null,
        ),
        _ => chunk(json!({"role": "assistant", "content": ""}), Value::Null),
    }];
    if let Some(reasoning) = &steer.reasoning {
        events.extend(
            split_into(reasoning, steer.chunks)
                .into_iter()
                .map(|piece| chunk(json!({"reasoning_content": piece}), Value::Null)),
        );
    }
    if let Reply::ToolCalls(calls) = &reply {
        // Each call's head, then the argument fragments of all calls in turn: interleaved.
        events.extend(calls.iter().map(|c| {
            chunk(
                json!({"tool_calls": [{"index": c.index, "id": format!("call_mock_{}", c.index),
                    "type": "function", "function": {"name": c.name, "arguments": ""}}]}),
                Value::Null,
            )
        }));
        let fragments: Vec<Vec<String>> = calls
            .iter()
            .map(|c| pieces(&c.arguments, ARGUMENT_FRAGMENT))
            .collect();
        let rounds = fragments.iter().map(Vec::len).max().unwrap_or(0);
        for round in 0..rounds {
            for (call, pieces) in calls.iter().zip(&fragments) {
                if let Some(piece) = pieces.get(round) {
                    events.push(chunk(
                        json!({"tool_calls": [{"index": call.index, "function": {"arguments": piece}}]}),
                        Value::Null,
                    ));
                }
            }
        }
    }
    events.extend(
        reply
            .text_pieces(steer.chunks)
            .into_iter()
            .map(|piece| chunk(json!({"content": piece}), Value::Null)),
    );
    if let Some(key) = &steer.echo_key {
        // The key split across two writes, in the middle of the key.
        let event = chunk(json!({"content": echoed}), Value::Null);
        let middle = event.find(key.as_str()).map_or(0, |at| at + key.len() / 2);
        events.push(event[..middle].to_string());
        events.push(event[middle..].to_string());
    }
    events.push(chunk(json!({}), json!(finish)));
    if request["stream_options"]["include_usage"].as_bool() == Some(true) && !steer.no_usage {
        let event = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": model, "system_fingerprint": "fp_mock", "choices": [], "usage": usage});
        events.push(format!("data: {event}\n\n"));
    }
    events.push("data: [DONE]\n\n".to_string());
    sse(events, steer, state.into_inner())
}

async fn messages(req: HttpRequest, body: Bytes, state: web::Data<MockState>) -> HttpResponse {
    record(&state, &req, &body);
    let steer = Steering::from(&req);
    actix_rt::time::sleep(steer.delay).await;
    if let Some(status) = steer.status {
        return anthropic_error(status, &steer);
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let model = request["model"]
        .as_str()
        .unwrap_or("mock-model")
        .to_string();
    let reply = sql_reply(&request).unwrap_or_else(|| {
        Reply::plan(
            &steer,
            |name| anthropic_offers(&request, name),
            anthropic_tool_result(&request),
        )
    });
    let input = prompt_tokens(&body);
    let output = steer.chunks as u64;
    let (stop_reason, text_pieces, calls) = match &reply {
        Reply::ToolCalls(calls) => {
            let name = calls.first().map_or("", |c| c.name.as_str());
            ("tool_use", vec![format!("calling {name}")], &calls[..])
        }
        _ => ("end_turn", reply.text_pieces(steer.chunks), &[][..]),
    };
    if request["stream"].as_bool() != Some(true) {
        let mut content = Vec::new();
        if let Some(thinking) = &steer.reasoning {
            content
                .push(json!({"type": "thinking", "thinking": thinking, "signature": "sig-mock-1"}));
        }
        content.push(json!({"type": "text", "text": text_pieces.concat()}));
        content.extend(calls.iter().map(|c| {
            json!({"type": "tool_use", "id": format!("toolu_mock_{}", c.index), "name": c.name, "input": c.input})
        }));
        return HttpResponse::Ok()
            .insert_header(("request-id", "req_mock_123"))
            .json(json!({
                "id": "msg_mock", "type": "message", "role": "assistant", "model": model,
                "content": content,
                "stop_reason": stop_reason, "stop_sequence": null,
                "usage": {"input_tokens": input, "output_tokens": output,
                          "cache_creation_input_tokens": steer.cache_write, "cache_read_input_tokens": steer.cached},
            }));
    }
    let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let delta = |index: usize, delta: Value| {
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": index, "delta": delta}),
        )
    };
    let block_stop = |index: usize| {
        event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        )
    };
    let mut events = vec![event(
        "message_start",
        json!({"type": "message_start", "message": {
        "id": "msg_mock", "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": input, "output_tokens": 1, "cache_creation_input_tokens": steer.cache_write, "cache_read_input_tokens": steer.cached}}}),
    )];
    let mut index = 0;
    if let Some(thinking) = &steer.reasoning {
        events.push(event(
            "content_block_start",
            json!({"type": "content_block_start", "index": index,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ));
        events.push(event("ping", json!({"type": "ping"})));
        events.extend(
            split_into(thinking, steer.chunks)
                .into_iter()
                .map(|piece| delta(index, json!({"type": "thinking_delta", "thinking": piece}))),
        );
        events.push(delta(
            index,
            json!({"type": "signature_delta", "signature": "sig-mock-1"}),
        ));
        events.push(block_stop(index));
        index += 1;
    }
    events.push(event("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})));
    if index == 0 {
        events.push(event("ping", json!({"type": "ping"})));
    }
    events.extend(
        text_pieces
            .iter()
            .map(|piece| delta(index, json!({"type": "text_delta", "text": piece}))),
    );
    events.push(block_stop(index));
    for call in calls {
        index += 1;
        events.push(event("content_block_start", json!({"type": "content_block_start", "index": index,
            "content_block": {"type": "tool_use", "id": format!("toolu_mock_{}", call.index), "name": call.name, "input": {}}})));
        // As the real API does: an empty fragment first.
        events.push(delta(
            index,
            json!({"type": "input_json_delta", "partial_json": ""}),
        ));
        events.extend(
            pieces(&call.arguments, ARGUMENT_FRAGMENT)
                .into_iter()
                .map(|piece| {
                    delta(
                        index,
                        json!({"type": "input_json_delta", "partial_json": piece}),
                    )
                }),
        );
        events.push(block_stop(index));
    }
    events.push(event("message_delta", json!({"type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": null}, "usage": {"output_tokens": output}})));
    events.push(event("message_stop", json!({"type": "message_stop"})));
    sse(events, steer, state.into_inner())
}

/// The vector of input `index`: `dimensions` floats that differ by input.
/// The longest vector the mock answers (text-embedding-3-large's 3072, with room).
const MAX_DIMENSIONS: usize = 4096;

pub fn embedding_vector(index: usize, dimensions: usize) -> Vec<f32> {
    (0..dimensions)
        .map(|j| (index + 1) as f32 * 0.125 + j as f32 * 0.0625)
        .collect()
}

/// The tokens one embeddings input counts: a string's bytes / 4 (rounded up), a token array's length.
fn input_tokens(input: &Value) -> u64 {
    match input {
        Value::String(text) => (text.len() as u64).div_ceil(4),
        Value::Array(tokens) => tokens.len() as u64,
        _ => 0,
    }
}

async fn embeddings(req: HttpRequest, body: Bytes, state: web::Data<MockState>) -> HttpResponse {
    use base64::Engine as _;
    let (steer, request) = match openai_request(&req, &body, &state).await {
        Ok(read) => read,
        Err(answer) => return answer,
    };
    let model = request["model"].as_str().unwrap_or("mock-embedding");
    let dimensions = request["dimensions"].as_u64().unwrap_or(8) as usize;
    if !(1..=MAX_DIMENSIONS).contains(&dimensions) {
        // As OpenAI does: a length the model cannot give is the request's fault.
        return HttpResponse::BadRequest().json(json!({"error": {
            "message": format!("dimensions must be between 1 and {MAX_DIMENSIONS}"),
            "type": "invalid_request_error", "param": "dimensions", "code": null,
        }}));
    }
    let base64 = request["encoding_format"].as_str() == Some("base64");
    // One input: a string, or an array of token ids; else an array of inputs.
    let inputs: Vec<Value> = match &request["input"] {
        Value::Array(items) if items.iter().all(Value::is_number) && !items.is_empty() => {
            vec![request["input"].clone()]
        }
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, _)| {
            let vector = embedding_vector(index, dimensions);
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|f| f.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let tokens: u64 = inputs.iter().map(input_tokens).sum();
    let mut answer = json!({"object": "list", "data": data, "model": model});
    if !steer.no_usage {
        answer["usage"] = json!({"prompt_tokens": tokens, "total_tokens": tokens});
    }
    HttpResponse::Ok().json(answer)
}

async fn completions(req: HttpRequest, body: Bytes, state: web::Data<MockState>) -> HttpResponse {
    let (steer, request) = match openai_request(&req, &body, &state).await {
        Ok(read) => read,
        Err(answer) => return answer,
    };
    let model = request["model"]
        .as_str()
        .unwrap_or("mock-model")
        .to_string();
    let input = prompt_tokens(&body);
    let output = steer.chunks as u64;
    let usage = json!({"prompt_tokens": input, "completion_tokens": output,
                       "total_tokens": input + output});
    let completion = |choices: Value, usage: Option<&Value>| {
        let mut object = json!({"id": "cmpl-mock", "object": "text_completion",
            "created": 1_700_000_000, "model": model, "choices": choices});
        if let Some(usage) = usage {
            object["usage"] = usage.clone();
        }
        object
    };
    if request["stream"].as_bool() != Some(true) {
        let choice = json!([{"text": reply_text(steer.chunks), "index": 0,
                             "logprobs": null, "finish_reason": "stop"}]);
        let usage = (!steer.no_usage).then_some(&usage);
        return HttpResponse::Ok().json(completion(choice, usage));
    }
    let chunk = |text: String, finish: Value| {
        let choice = json!([{"text": text, "index": 0, "logprobs": null, "finish_reason": finish}]);
        format!("data: {}\n\n", completion(choice, None))
    };
    let mut events: Vec<String> = (0..steer.chunks)
        .map(|i| chunk(chunk_text(i), Value::Null))
        .collect();
    events.push(chunk(String::new(), json!("stop")));
    if request["stream_options"]["include_usage"].as_bool() == Some(true) && !steer.no_usage {
        events.push(format!("data: {}\n\n", completion(json!([]), Some(&usage))));
    }
    events.push("data: [DONE]\n\n".to_string());
    sse(events, steer, state.into_inner())
}

async fn count_tokens(req: HttpRequest, body: Bytes, state: web::Data<MockState>) -> HttpResponse {
    record(&state, &req, &body);
    let steer = Steering::from(&req);
    if let Some(status) = steer.status {
        return anthropic_error(status, &steer);
    }
    HttpResponse::Ok().json(json!({"input_tokens": prompt_tokens(&body)}))
}

async fn models(req: HttpRequest, state: web::Data<MockState>) -> HttpResponse {
    record(&state, &req, &Bytes::new());
    let models = state.models.lock().map(|m| m.clone()).unwrap_or_default();
    let data: Vec<Value> = models
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": 1_700_000_000, "owned_by": "library"}))
        .collect();
    HttpResponse::Ok().json(json!({"object": "list", "data": data}))
}

fn sse(events: Vec<String>, steer: Steering, state: Arc<MockState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .streaming(SseStream {
            events: events.into_iter().map(Bytes::from).collect(),
            sent: 0,
            chunk_delay: steer.chunk_delay,
            hold: steer.hold,
            sleep: None,
            state,
        })
}

/// The SSE body: events written one by one with the requested gaps; notes whether the
/// reader stayed to the end.
struct SseStream {
    events: VecDeque<Bytes>,
    sent: usize,
    chunk_delay: Duration,
    hold: bool,
    sleep: Option<Pin<Box<actix_rt::time::Sleep>>>,
    state: Arc<MockState>,
}

impl Stream for SseStream {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.events.is_empty() {
            return Poll::Ready(None);
        }
        if this.sent > 0 {
            let hold = this.hold && this.sent == 1;
            let gap = if hold {
                this.chunk_delay.max(Duration::from_millis(500))
            } else {
                this.chunk_delay
            };
            if !gap.is_zero() || hold {
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(actix_rt::time::sleep(gap)));
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                if hold && !this.state.released.load(Ordering::SeqCst) {
                    // Poll again shortly until the test releases the stream.
                    this.sleep = Some(Box::pin(actix_rt::time::sleep(Duration::from_millis(10))));
                    if let Some(s) = this.sleep.as_mut() {
                        let _ = s.as_mut().poll(cx);
                    }
                    return Poll::Pending;
                }
                this.sleep = None;
            }
        }
        let next = this.events.pop_front();
        this.sent += 1;
        this.state.chunks_sent.fetch_add(1, Ordering::SeqCst);
        if this.events.is_empty() {
            this.state.completed_streams.fetch_add(1, Ordering::SeqCst);
        }
        Poll::Ready(next.map(Ok))
    }
}

impl Drop for SseStream {
    fn drop(&mut self) {
        if !self.events.is_empty() {
            self.state.aborted_streams.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Responses API: whether `tools[].name` holds `name` (its function tools are flat).
fn responses_offers(request: &Value, name: &str) -> bool {
    request["tools"]
        .as_array()
        .is_some_and(|tools| tools.iter().any(|t| t["name"] == name))
}

/// Responses API: the outputs of the last run of `function_call_output` items, if any.
fn responses_tool_result(request: &Value) -> Option<String> {
    last_results(
        request["input"].as_array()?,
        |i| i["type"] == "function_call_output",
        |i| content_text(&i["output"]),
    )
}

async fn responses(req: HttpRequest, body: Bytes, state: web::Data<MockState>) -> HttpResponse {
    let (steer, request) = match openai_request(&req, &body, &state).await {
        Ok(read) => read,
        Err(answer) => return answer,
    };
    let model = request["model"]
        .as_str()
        .unwrap_or("mock-model")
        .to_string();
    let reply = Reply::plan(
        &steer,
        |name| responses_offers(&request, name),
        responses_tool_result(&request),
    );
    let number = state.next_response.fetch_add(1, Ordering::SeqCst);
    let id = format!("resp_mock{number:04}");
    let input = prompt_tokens(&body);
    let output = steer.chunks as u64;
    let usage = (!steer.no_usage).then(|| {
        json!({"input_tokens": input, "input_tokens_details": {"cached_tokens": steer.cached},
               "output_tokens": output, "output_tokens_details": {"reasoning_tokens": 0},
               "total_tokens": input + output})
    });
    let echoed = steer
        .echo_key
        .as_ref()
        .map(|k| format!(" (you sent {k})"))
        .unwrap_or_default();
    let text = format!("{}{echoed}", reply.text_pieces(steer.chunks).concat());
    let message_id = format!("msg_mock{number:04}");
    let items: Vec<Value> = match &reply {
        Reply::ToolCalls(calls) => calls
            .iter()
            .map(|c| {
                json!({"id": format!("fc_mock_{}", c.index), "type": "function_call", "status": "completed",
                       "call_id": format!("call_mock_{}", c.index), "name": c.name, "arguments": c.arguments})
            })
            .collect(),
        _ => vec![json!({"id": message_id, "type": "message", "status": "completed", "role": "assistant",
                         "content": [{"type": "output_text", "text": text, "annotations": []}]})],
    };
    let response = |status: &str, output: Vec<Value>, usage: Option<&Value>| {
        json!({"id": id, "object": "response", "created_at": 1_700_000_000, "status": status,
               "error": null, "incomplete_details": null, "instructions": request["instructions"],
               "max_output_tokens": request["max_output_tokens"], "model": model, "output": output,
               "parallel_tool_calls": true, "previous_response_id": request["previous_response_id"],
               "reasoning": {"effort": null, "summary": null}, "store": request["store"] != false,
               "temperature": 1.0, "text": {"format": {"type": "text"}}, "tool_choice": "auto",
               "tools": request["tools"].as_array().cloned().unwrap_or_default(), "top_p": 1.0,
               "truncation": "disabled", "usage": usage, "user": null, "metadata": {}})
    };
    let complete = response("completed", items.clone(), usage.as_ref());
    if request["store"] != false {
        if let Ok(mut stored) = state.stored.lock() {
            stored.insert(id.clone(), complete.clone());
        }
    }
    if request["stream"].as_bool() != Some(true) {
        return HttpResponse::Ok()
            .insert_header(("x-request-id", "upstream-req-123"))
            .json(complete);
    }
    let mut sequence = 0u64;
    let mut event = |kind: &str, mut data: Value| {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(sequence);
        sequence += 1;
        format!("event: {kind}\ndata: {data}\n\n")
    };
    let mut events = vec![
        event(
            "response.created",
            json!({"response": response("in_progress", vec![], None)}),
        ),
        event(
            "response.in_progress",
            json!({"response": response("in_progress", vec![], None)}),
        ),
    ];
    match &reply {
        Reply::ToolCalls(calls) => {
            for (index, (call, item)) in calls.iter().zip(&items).enumerate() {
                let item_id = item["id"].clone();
                let mut open = item.clone();
                open["status"] = json!("in_progress");
                open["arguments"] = json!("");
                events.push(event(
                    "response.output_item.added",
                    json!({"output_index": index, "item": open}),
                ));
                for piece in pieces(&call.arguments, ARGUMENT_FRAGMENT) {
                    events.push(event(
                        "response.function_call_arguments.delta",
                        json!({"item_id": item_id, "output_index": index, "delta": piece}),
                    ));
                }
                events.push(event(
                    "response.function_call_arguments.done",
                    json!({"item_id": item_id, "output_index": index, "arguments": call.arguments}),
                ));
                events.push(event(
                    "response.output_item.done",
                    json!({"output_index": index, "item": item}),
                ));
            }
        }
        _ => {
            events.push(event("response.output_item.added", json!({"output_index": 0,
                "item": {"id": message_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}})));
            events.push(event("response.content_part.added", json!({"item_id": message_id, "output_index": 0,
                "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}})));
            let mut deltas = reply.text_pieces(steer.chunks);
            if !echoed.is_empty() {
                deltas.push(echoed.clone());
            }
            for piece in deltas {
                events.push(event(
                    "response.output_text.delta",
                    json!({"item_id": message_id,
                    "output_index": 0, "content_index": 0, "delta": piece, "logprobs": []}),
                ));
            }
            events.push(event(
                "response.output_text.done",
                json!({"item_id": message_id, "output_index": 0,
                "content_index": 0, "text": text, "logprobs": []}),
            ));
            events.push(event("response.content_part.done", json!({"item_id": message_id, "output_index": 0,
                "content_index": 0, "part": {"type": "output_text", "text": text, "annotations": []}})));
            events.push(event(
                "response.output_item.done",
                json!({"output_index": 0, "item": items[0]}),
            ));
        }
    }
    events.push(event("response.completed", json!({"response": complete})));
    sse(events, steer, state.into_inner())
}

fn response_not_found(id: &str) -> HttpResponse {
    HttpResponse::NotFound().json(json!({"error": {
        "message": format!("Response with id '{id}' not found."),
        "type": "invalid_request_error", "param": null, "code": null,
    }}))
}

/// `GET` reads a stored response, `DELETE` removes it.
async fn stored_response(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<MockState>,
) -> HttpResponse {
    record(&state, &req, &Bytes::new());
    let delete = req.method() == actix_web::http::Method::DELETE;
    let found = state.stored.lock().ok().and_then(|mut stored| {
        if delete {
            stored.remove(id.as_str())
        } else {
            stored.get(id.as_str()).cloned()
        }
    });
    match found {
        Some(_) if delete => HttpResponse::Ok()
            .json(json!({"id": id.as_str(), "object": "response", "deleted": true})),
        Some(response) => HttpResponse::Ok().json(response),
        None => response_not_found(&id),
    }
}
