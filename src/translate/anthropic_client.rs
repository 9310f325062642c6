//! An Anthropic Messages client before an OpenAI Chat Completions upstream: its request as a
//! chat completions body, and OpenAI's answers and stream chunks as Anthropic messages.

use std::borrow::Cow;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::BytesMut;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::names::shorten;
use super::{write_event, Refusal, Target, Translation};
use crate::api::ApiFormat;

/// `reasoning_effort` for a thinking budget.
fn effort(budget: u64) -> &'static str {
    match budget {
        0..=2048 => "low",
        2049..=8192 => "medium",
        _ => "high",
    }
}

/// Notes `cache_control` when a block or tool carries it.
fn note_cache_control(t: &mut Translation, value: &Value) {
    if value.get("cache_control").is_some_and(|c| !c.is_null()) {
        t.remove("cache_control");
    }
}

pub(super) fn request(
    body: Map<String, Value>,
    target: &Target,
) -> Result<(Value, Translation), Refusal> {
    let mut t = Translation::new(ApiFormat::Anthropic, ApiFormat::OpenAi);
    let mut out = Map::new();
    out.insert("model".into(), Value::from(target.model));
    let mut messages: Vec<Value> = Vec::new();

    match body.get("system") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => messages.push(json!({"role": "system", "content": s})),
        Some(Value::Array(blocks)) => {
            let mut texts = Vec::with_capacity(blocks.len());
            for (i, block) in blocks.iter().enumerate() {
                note_cache_control(&mut t, block);
                let text = block.get("text").and_then(Value::as_str).ok_or_else(|| {
                    Refusal::new(format!("system[{i}]"), "a system block needs text")
                })?;
                texts.push(text);
            }
            messages.push(json!({"role": "system", "content": texts.join("\n\n")}));
        }
        Some(_) => {
            return Err(Refusal::new(
                "system",
                "`system` must be a string or text blocks",
            ))
        }
    }

    let list = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| Refusal::new("messages", "`messages` must be an array"))?;
    for (i, message) in list.iter().enumerate() {
        let at = format!("messages[{i}]");
        let role = message.get("role").and_then(Value::as_str).unwrap_or("");
        let content = message.get("content");
        match (role, content) {
            ("user" | "assistant", Some(Value::String(s))) => {
                messages.push(json!({"role": role, "content": s}));
            }
            ("user", Some(Value::Array(blocks))) => {
                user_blocks(blocks, &at, target, &mut t, &mut messages)?;
            }
            ("assistant", Some(Value::Array(blocks))) => {
                assistant_blocks(blocks, &at, &mut t, &mut messages)?;
            }
            ("user" | "assistant", _) => {
                return Err(Refusal::new(
                    format!("{at}.content"),
                    "content must be a string or blocks",
                ))
            }
            _ => {
                return Err(Refusal::new(
                    format!("{at}.role"),
                    "role must be user or assistant",
                ))
            }
        }
    }
    out.insert("messages".into(), Value::Array(messages));

    if let Some(tools) = body.get("tools").filter(|v| !v.is_null()) {
        let tools = tools
            .as_array()
            .ok_or_else(|| Refusal::new("tools", "`tools` must be an array"))?;
        let mut list = Vec::with_capacity(tools.len());
        for (i, tool) in tools.iter().enumerate() {
            let param = format!("tools[{i}]");
            if let Some(kind) = tool.get("type").and_then(Value::as_str) {
                if kind != "custom" {
                    return Err(Refusal::new(
                        param,
                        format!("the server tool `{kind}` is not available on this model"),
                    ));
                }
            }
            note_cache_control(&mut t, tool);
            let name = tool
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| Refusal::new(format!("{param}.name"), "a tool needs a name"))?;
            let mut function = Map::new();
            function.insert("name".into(), Value::from(shorten(&mut t.tool_names, name)));
            if let Some(d) = tool.get("description").filter(|d| d.is_string()) {
                function.insert("description".into(), d.clone());
            }
            let schema = tool
                .get("input_schema")
                .filter(|s| s.is_object())
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            function.insert("parameters".into(), schema);
            list.push(json!({"type": "function", "function": function}));
        }
        if !list.is_empty() {
            out.insert("tools".into(), Value::Array(list));
        }
    }
    if let Some(choice) = body.get("tool_choice").filter(|v| !v.is_null()) {
        let value = match choice.get("type").and_then(Value::as_str) {
            Some("auto") => Value::from("auto"),
            Some("any") => Value::from("required"),
            Some("none") => Value::from("none"),
            Some("tool") => {
                let name = choice.get("name").and_then(Value::as_str).ok_or_else(|| {
                    Refusal::new("tool_choice.name", "a tool choice needs a name")
                })?;
                json!({"type": "function", "function": {"name": shorten(&mut t.tool_names, name)}})
            }
            _ => return Err(Refusal::new("tool_choice.type", "unknown tool_choice type")),
        };
        out.insert("tool_choice".into(), value);
        if choice.get("disable_parallel_tool_use") == Some(&Value::Bool(true))
            && out.contains_key("tools")
        {
            out.insert("parallel_tool_calls".into(), Value::Bool(false));
        }
    }

    let max_tokens = match body.get("max_tokens") {
        None | Some(Value::Null) => target.max_output_tokens,
        Some(v) => v
            .as_u64()
            .ok_or_else(|| Refusal::new("max_tokens", "`max_tokens` must be a positive integer"))?
            .min(target.max_output_tokens),
    };
    let key = if target.local {
        "max_tokens"
    } else {
        "max_completion_tokens"
    };
    out.insert(key.into(), Value::from(max_tokens));
    if let Some(stop) = body.get("stop_sequences").filter(|v| !v.is_null()) {
        if !stop
            .as_array()
            .is_some_and(|s| s.iter().all(Value::is_string))
        {
            return Err(Refusal::new(
                "stop_sequences",
                "`stop_sequences` must be a list of strings",
            ));
        }
        if stop.as_array().is_some_and(|s| !s.is_empty()) {
            out.insert("stop".into(), stop.clone());
        }
    }
    for key in ["temperature", "top_p"] {
        if let Some(v) = body.get(key).filter(|v| !v.is_null()) {
            if !v.is_number() {
                return Err(Refusal::new(key, format!("`{key}` must be a number")));
            }
            out.insert(key.into(), v.clone());
        }
    }
    if body.get("top_k").is_some_and(|v| !v.is_null()) {
        t.remove("top_k");
    }
    if let Some(user) = body
        .get("metadata")
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str)
    {
        out.insert("user".into(), Value::from(user));
    }
    if let Some(thinking) = body.get("thinking").filter(|v| !v.is_null()) {
        let kind = thinking.get("type").and_then(Value::as_str).unwrap_or("");
        if kind != "disabled" {
            if target.reasoning {
                let budget = thinking
                    .get("budget_tokens")
                    .and_then(Value::as_u64)
                    .unwrap_or(8192);
                out.insert("reasoning_effort".into(), Value::from(effort(budget)));
            } else {
                t.remove("thinking");
            }
        }
    }
    t.stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    if t.stream {
        out.insert("stream".into(), Value::Bool(true));
        // The gateway needs the usage, which OpenAI streams report only when asked.
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    const KNOWN: &[&str] = &[
        "model",
        "system",
        "messages",
        "tools",
        "tool_choice",
        "max_tokens",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "metadata",
        "thinking",
        "stream",
    ];
    for (key, value) in &body {
        if !KNOWN.contains(&key.as_str()) && !value.is_null() {
            t.remove(key);
        }
    }
    Ok((Value::Object(out), t))
}

/// A user turn's blocks: its tool results as `tool` messages first, then the rest as one user
/// message.
fn user_blocks(
    blocks: &[Value],
    at: &str,
    target: &Target,
    t: &mut Translation,
    messages: &mut Vec<Value>,
) -> Result<(), Refusal> {
    let mut parts: Vec<Value> = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let bat = format!("{at}.content[{j}]");
        note_cache_control(t, block);
        match block.get("type").and_then(Value::as_str).unwrap_or("") {
            "text" => {
                let text = block
                    .get("text")
                    .and_then(Value::as_str)
                    .ok_or_else(|| Refusal::new(&bat, "a text block needs text"))?;
                parts.push(json!({"type": "text", "text": text}));
            }
            "image" => parts.push(image_part(block, &bat, target)?),
            "document" => parts.push(document_part(block, &bat, target)?),
            "tool_result" => {
                let id = block
                    .get("tool_use_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| Refusal::new(format!("{bat}.tool_use_id"), "missing"))?;
                let mut text = String::new();
                match block.get("content") {
                    None | Some(Value::Null) => {}
                    Some(Value::String(s)) => text.push_str(s),
                    Some(Value::Array(items)) => {
                        for (k, item) in items.iter().enumerate() {
                            let iat = format!("{bat}.content[{k}]");
                            note_cache_control(t, item);
                            match item.get("type").and_then(Value::as_str).unwrap_or("") {
                                "text" => {
                                    if !text.is_empty() {
                                        text.push('\n');
                                    }
                                    text.push_str(
                                        item.get("text").and_then(Value::as_str).unwrap_or(""),
                                    );
                                }
                                // OpenAI's tool messages take text only: images follow in the
                                // user message.
                                "image" => parts.push(image_part(item, &iat, target)?),
                                "document" => parts.push(document_part(item, &iat, target)?),
                                other => {
                                    return Err(Refusal::new(
                                        iat,
                                        format!(
                                            "a `{other}` block cannot be sent in a tool result"
                                        ),
                                    ))
                                }
                            }
                        }
                    }
                    Some(_) => {
                        return Err(Refusal::new(
                            format!("{bat}.content"),
                            "must be a string or blocks",
                        ))
                    }
                }
                if block.get("is_error") == Some(&Value::Bool(true)) {
                    text.insert_str(0, "Error: ");
                }
                messages.push(json!({"role": "tool", "tool_call_id": id, "content": text}));
            }
            "thinking" | "redacted_thinking" => t.remove("thinking blocks of earlier turns"),
            other => {
                return Err(Refusal::new(
                    bat,
                    format!("a `{other}` block cannot be sent to this model"),
                ))
            }
        }
    }
    match parts.as_slice() {
        [] => {}
        [only] if only.get("type").and_then(Value::as_str) == Some("text") => {
            let text = only.get("text").cloned().unwrap_or_default();
            messages.push(json!({"role": "user", "content": text}));
        }
        _ => messages.push(json!({"role": "user", "content": parts})),
    }
    Ok(())
}

fn image_part(block: &Value, at: &str, target: &Target) -> Result<Value, Refusal> {
    if !target.vision {
        return Err(Refusal::new(at, "this model does not take images"));
    }
    let source = block.get("source");
    let url = match source.and_then(|s| s.get("type")).and_then(Value::as_str) {
        Some("base64") => {
            let media_type = source
                .and_then(|s| s.get("media_type"))
                .and_then(Value::as_str);
            let data = source.and_then(|s| s.get("data")).and_then(Value::as_str);
            match (media_type, data) {
                (Some(m), Some(d)) => format!("data:{m};base64,{d}"),
                _ => {
                    return Err(Refusal::new(
                        format!("{at}.source"),
                        "needs media_type and data",
                    ))
                }
            }
        }
        Some("url") => source
            .and_then(|s| s.get("url"))
            .and_then(Value::as_str)
            .ok_or_else(|| Refusal::new(format!("{at}.source.url"), "missing"))?
            .to_owned(),
        _ => {
            return Err(Refusal::new(
                format!("{at}.source"),
                "images are sent as base64 or url",
            ))
        }
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

fn document_part(block: &Value, at: &str, target: &Target) -> Result<Value, Refusal> {
    let source = block.get("source");
    let kind = source.and_then(|s| s.get("type")).and_then(Value::as_str);
    let media_type = source
        .and_then(|s| s.get("media_type"))
        .and_then(Value::as_str);
    let data = source.and_then(|s| s.get("data")).and_then(Value::as_str);
    match (kind, media_type, data) {
        (Some("text"), _, Some(text)) => Ok(json!({"type": "text", "text": text})),
        (Some("base64"), Some("application/pdf"), Some(data)) => {
            if !target.pdf {
                return Err(Refusal::new(at, "this model does not take PDF documents"));
            }
            let name = block
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or("document.pdf");
            Ok(json!({"type": "file", "file": {
                "filename": name,
                "file_data": format!("data:application/pdf;base64,{data}"),
            }}))
        }
        _ => Err(Refusal::new(
            at,
            "only base64 PDF and text documents can be sent to this model",
        )),
    }
}

fn assistant_blocks(
    blocks: &[Value],
    at: &str,
    t: &mut Translation,
    messages: &mut Vec<Value>,
) -> Result<(), Refusal> {
    let mut text = String::new();
    let mut calls = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let bat = format!("{at}.content[{j}]");
        note_cache_control(t, block);
        match block.get("type").and_then(Value::as_str).unwrap_or("") {
            "text" => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or("")),
            "tool_use" => {
                let id = block.get("id").and_then(Value::as_str).unwrap_or("");
                let name = block.get("name").and_then(Value::as_str).ok_or_else(|| {
                    Refusal::new(format!("{bat}.name"), "a tool_use needs a name")
                })?;
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                let arguments = serde_json::to_string(&input).unwrap_or_else(|_| "{}".into());
                calls.push(json!({
                    "id": id,
                    "type": "function",
                    "function": {"name": shorten(&mut t.tool_names, name), "arguments": arguments},
                }));
            }
            "thinking" | "redacted_thinking" => t.remove("thinking blocks of earlier turns"),
            other => {
                return Err(Refusal::new(
                    bat,
                    format!("a `{other}` block cannot be sent to this model"),
                ))
            }
        }
    }
    if text.is_empty() && calls.is_empty() {
        return Ok(());
    }
    let mut message = Map::new();
    message.insert("role".into(), Value::from("assistant"));
    let content = if text.is_empty() {
        Value::Null
    } else {
        Value::from(text)
    };
    message.insert("content".into(), content);
    if !calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(calls));
    }
    messages.push(Value::Object(message));
    Ok(())
}

fn stop_reason(finish_reason: &str) -> &'static str {
    match finish_reason {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

/// The Anthropic message id for a chat completion id.
fn message_id(completion_id: &str) -> String {
    let id = completion_id
        .strip_prefix("chatcmpl-")
        .unwrap_or(completion_id);
    if id.is_empty() {
        return generated_id("msg_");
    }
    format!("msg_{id}")
}

/// A fresh id such as `toolu_…`, for what the upstream did not name.
fn generated_id(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let state = foldhash::fast::FixedState::with_seed(n);
    format!("{prefix}{:016x}{:08x}", state.hash_one(nanos), n as u32)
}

#[derive(Deserialize, Default, Clone, Copy)]
struct OpenAiUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<Details>,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct Details {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

impl OpenAiUsage {
    fn cached(&self) -> u64 {
        self.prompt_tokens_details
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0)
            .min(self.prompt_tokens)
    }
}

/// Parses tool arguments; unparseable (or empty) arguments become `{}`, as Anthropic's input
/// must be an object.
fn parse_arguments(arguments: &str) -> Value {
    serde_json::from_str::<Value>(arguments)
        .ok()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}))
}

pub(super) fn answer(t: &Translation, body: &[u8]) -> Result<Vec<u8>, String> {
    let answer: Value = serde_json::from_slice(body)
        .map_err(|e| format!("the upstream answer is not JSON: {e}"))?;
    let choice = answer
        .pointer("/choices/0")
        .ok_or("the upstream answer has no choices")?;
    let message = choice
        .get("message")
        .ok_or("the upstream answer has no message")?;
    let mut content = Vec::new();
    let reasoning = message
        .get("reasoning_content")
        .and_then(Value::as_str)
        .or_else(|| message.get("reasoning").and_then(Value::as_str))
        .filter(|r| !r.is_empty());
    if let Some(r) = reasoning {
        content.push(json!({"type": "thinking", "thinking": r, "signature": ""}));
    }
    match message.get("content") {
        Some(Value::String(s)) if !s.is_empty() => content.push(json!({"type": "text", "text": s})),
        Some(Value::Array(parts)) => {
            for part in parts {
                if let Some(text) = part.get("text").and_then(Value::as_str) {
                    content.push(json!({"type": "text", "text": text}));
                }
            }
        }
        _ => {}
    }
    let refusal = message
        .get("refusal")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty());
    if let Some(r) = refusal {
        content.push(json!({"type": "text", "text": r}));
    }
    let mut has_tools = false;
    if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
        for call in calls {
            has_tools = true;
            let id = call
                .get("id")
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty())
                .map_or_else(|| generated_id("toolu_"), str::to_owned);
            let name = call
                .pointer("/function/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            let arguments = call
                .pointer("/function/arguments")
                .and_then(Value::as_str)
                .unwrap_or("");
            content.push(json!({
                "type": "tool_use",
                "id": id,
                "name": t.original_name(name),
                "input": parse_arguments(arguments),
            }));
        }
    }
    let finish = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .unwrap_or("stop");
    // Some local servers say "stop" after tool calls: the client must run them all the same.
    let stop = if refusal.is_some() {
        "refusal"
    } else if has_tools && finish == "stop" {
        "tool_use"
    } else {
        stop_reason(finish)
    };
    let usage: OpenAiUsage = answer
        .get("usage")
        .and_then(|u| OpenAiUsage::deserialize(u).ok())
        .unwrap_or_default();
    let cached = usage.cached();
    let out = json!({
        "id": message_id(answer.get("id").and_then(Value::as_str).unwrap_or("")),
        "type": "message",
        "role": "assistant",
        "model": answer.get("model").and_then(Value::as_str).unwrap_or(""),
        "content": content,
        "stop_reason": stop,
        "stop_sequence": null,
        "usage": {
            "input_tokens": usage.prompt_tokens - cached,
            "cache_read_input_tokens": cached,
            "cache_creation_input_tokens": 0,
            "output_tokens": usage.completion_tokens,
        },
    });
    serde_json::to_vec(&out).map_err(|e| e.to_string())
}

// ---- Stream: chat.completion.chunk events → Anthropic events.

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    choices: Vec<Choice<'a>>,
    #[serde(default)]
    usage: Option<OpenAiUsage>,
    #[serde(borrow, default)]
    error: Option<&'a serde_json::value::RawValue>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow, default)]
    delta: Option<ChoiceDelta<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ChoiceDelta<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    refusal: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<ToolCallDelta<'a>>>,
}

#[derive(Deserialize)]
struct ToolCallDelta<'a> {
    #[serde(default)]
    index: Option<u64>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    function: Option<FunctionDelta<'a>>,
}

#[derive(Deserialize)]
struct FunctionDelta<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arguments: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct UpstreamError<'a> {
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Out<'a> {
    MessageStart {
        message: StartMessage<'a>,
    },
    ContentBlockStart {
        index: u64,
        content_block: StartBlock<'a>,
    },
    ContentBlockDelta {
        index: u64,
        delta: Delta<'a>,
    },
    ContentBlockStop {
        index: u64,
    },
    MessageDelta {
        delta: MessageDelta,
        usage: DeltaUsage,
    },
    MessageStop,
}

impl Out<'_> {
    fn name(&self) -> &'static str {
        match self {
            Out::MessageStart { .. } => "message_start",
            Out::ContentBlockStart { .. } => "content_block_start",
            Out::ContentBlockDelta { .. } => "content_block_delta",
            Out::ContentBlockStop { .. } => "content_block_stop",
            Out::MessageDelta { .. } => "message_delta",
            Out::MessageStop => "message_stop",
        }
    }
}

#[derive(Serialize)]
struct StartMessage<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: [(); 0],
    stop_reason: Option<()>,
    stop_sequence: Option<()>,
    usage: StartUsage,
}

#[derive(Serialize)]
struct StartUsage {
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    output_tokens: u64,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StartBlock<'a> {
    Text {
        text: &'static str,
    },
    Thinking {
        thinking: &'static str,
        signature: &'static str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: Empty,
    },
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Delta<'a> {
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: &'a str },
}

#[derive(Serialize)]
struct MessageDelta {
    stop_reason: &'static str,
    stop_sequence: Option<()>,
}

#[derive(Serialize)]
struct DeltaUsage {
    input_tokens: u64,
    output_tokens: u64,
    cache_read_input_tokens: u64,
}

#[derive(Clone, Copy, PartialEq)]
enum Open {
    Text,
    Thinking,
}

/// A tool call's block: OpenAI's tool_calls index → Anthropic's block index.
struct ToolBlock {
    openai: u64,
    block: u64,
    open: bool,
}

/// Chat completion chunks → Anthropic events, every delta after its block's start.
///
/// Text and thinking blocks close when another block starts. Tool blocks stay open until the
/// finish (or a text block after them), so that argument fragments of parallel calls, however
/// interleaved, each reach their own block; an argument fragment of a call whose block was
/// closed (text came between) is dropped rather than sent to a closed block. `message_delta`
/// waits for the usage chunk, `[DONE]` or the end.
pub(super) struct Stream {
    tool_names: Vec<(String, String)>,
    started: bool,
    open: Option<(Open, u64)>,
    tools: Vec<ToolBlock>,
    next_block: u64,
    stop_reason: Option<&'static str>,
    saw_tool: bool,
    usage: Option<OpenAiUsage>,
    stopped: bool,
}

impl Stream {
    pub(super) fn new(t: &Translation) -> Self {
        Self {
            tool_names: t.tool_names.clone(),
            started: false,
            open: None,
            tools: Vec::new(),
            next_block: 0,
            stop_reason: None,
            saw_tool: false,
            usage: None,
            stopped: false,
        }
    }

    fn send(out: &mut BytesMut, event: &Out) {
        write_event(out, Some(event.name()), event);
    }

    fn start(
        &mut self,
        out: &mut BytesMut,
        id: Option<&str>,
        model: Option<&str>,
        usage: Option<OpenAiUsage>,
    ) {
        if self.started {
            return;
        }
        self.started = true;
        let id = message_id(id.unwrap_or(""));
        let (input, cached) = usage.map_or((0, 0), |u| (u.prompt_tokens - u.cached(), u.cached()));
        let event = Out::MessageStart {
            message: StartMessage {
                id: &id,
                kind: "message",
                role: "assistant",
                model: model.unwrap_or(""),
                content: [],
                stop_reason: None,
                stop_sequence: None,
                usage: StartUsage {
                    input_tokens: input,
                    cache_creation_input_tokens: 0,
                    cache_read_input_tokens: cached,
                    output_tokens: 0,
                },
            },
        };
        Self::send(out, &event);
    }

    /// Closes the open text or thinking block.
    fn close_open(&mut self, out: &mut BytesMut) {
        if let Some((_, index)) = self.open.take() {
            Self::send(out, &Out::ContentBlockStop { index });
        }
    }

    fn close_tools(&mut self, out: &mut BytesMut) {
        for tool in &mut self.tools {
            if tool.open {
                tool.open = false;
                Self::send(out, &Out::ContentBlockStop { index: tool.block });
            }
        }
    }

    /// A text or thinking delta, in a block of its kind (opened when needed).
    fn text(&mut self, out: &mut BytesMut, kind: Open, text: &str) {
        if text.is_empty() {
            return;
        }
        let index = match self.open {
            Some((open, index)) if open == kind => index,
            _ => {
                self.close_open(out);
                self.close_tools(out);
                let index = self.next_block;
                self.next_block += 1;
                let content_block = match kind {
                    Open::Text => StartBlock::Text { text: "" },
                    Open::Thinking => StartBlock::Thinking {
                        thinking: "",
                        signature: "",
                    },
                };
                Self::send(
                    out,
                    &Out::ContentBlockStart {
                        index,
                        content_block,
                    },
                );
                self.open = Some((kind, index));
                index
            }
        };
        let delta = match kind {
            Open::Text => Delta::Text { text },
            Open::Thinking => Delta::Thinking { thinking: text },
        };
        Self::send(out, &Out::ContentBlockDelta { index, delta });
    }

    fn tool(&mut self, out: &mut BytesMut, call: &ToolCallDelta, position: u64) {
        let openai = call.index.unwrap_or(position);
        let arguments = call
            .function
            .as_ref()
            .and_then(|f| f.arguments.as_deref())
            .unwrap_or("");
        let block = match self.tools.iter().find(|t| t.openai == openai) {
            Some(tool) if tool.open => tool.block,
            Some(_) => return,
            None => {
                self.close_open(out);
                self.saw_tool = true;
                let index = self.next_block;
                self.next_block += 1;
                let generated;
                let id = match call.id.as_deref().filter(|id| !id.is_empty()) {
                    Some(id) => id,
                    None => {
                        generated = generated_id("toolu_");
                        &generated
                    }
                };
                let sent = call
                    .function
                    .as_ref()
                    .and_then(|f| f.name.as_deref())
                    .unwrap_or("");
                let name = super::names::original(&self.tool_names, sent);
                let content_block = StartBlock::ToolUse {
                    id,
                    name,
                    input: Empty {},
                };
                Self::send(
                    out,
                    &Out::ContentBlockStart {
                        index,
                        content_block,
                    },
                );
                self.tools.push(ToolBlock {
                    openai,
                    block: index,
                    open: true,
                });
                index
            }
        };
        if !arguments.is_empty() {
            let delta = Delta::InputJson {
                partial_json: arguments,
            };
            Self::send(
                out,
                &Out::ContentBlockDelta {
                    index: block,
                    delta,
                },
            );
        }
    }

    /// `message_delta` and `message_stop`, once.
    fn stop(&mut self, out: &mut BytesMut) {
        if self.stopped {
            return;
        }
        self.start(out, None, None, None);
        self.close_open(out);
        self.close_tools(out);
        self.stopped = true;
        let usage = self.usage.unwrap_or_default();
        let cached = usage.cached();
        let stop_reason = match self.stop_reason {
            Some("end_turn") | None if self.saw_tool => "tool_use",
            Some(reason) => reason,
            None => "end_turn",
        };
        let event = Out::MessageDelta {
            delta: MessageDelta {
                stop_reason,
                stop_sequence: None,
            },
            usage: DeltaUsage {
                input_tokens: usage.prompt_tokens - cached,
                output_tokens: usage.completion_tokens,
                cache_read_input_tokens: cached,
            },
        };
        Self::send(out, &event);
        Self::send(out, &Out::MessageStop);
    }

    fn error(&mut self, out: &mut BytesMut, message: &str) {
        self.stopped = true;
        let body = crate::api::anthropic::error_body(500, message);
        write_event(out, Some("error"), &body);
    }

    pub(super) fn event(&mut self, data: &[u8], out: &mut BytesMut) {
        if self.stopped {
            return;
        }
        if data == b"[DONE]" {
            self.stop(out);
            return;
        }
        let chunk = match serde_json::from_slice::<Chunk>(data) {
            Ok(chunk) => chunk,
            Err(e) => {
                let message = format!("the upstream sent an unreadable stream event: {e}");
                self.error(out, &message);
                return;
            }
        };
        if let Some(error) = chunk.error {
            let message = serde_json::from_str::<UpstreamError>(error.get())
                .ok()
                .and_then(|e| e.message.map(Cow::into_owned))
                .unwrap_or_else(|| error.get().to_owned());
            self.error(out, &message);
            return;
        }
        self.start(
            out,
            chunk.id.as_deref(),
            chunk.model.as_deref(),
            chunk.usage,
        );
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
        }
        for choice in &chunk.choices {
            if let Some(delta) = &choice.delta {
                let reasoning = delta
                    .reasoning_content
                    .as_deref()
                    .or(delta.reasoning.as_deref());
                if let Some(r) = reasoning {
                    self.text(out, Open::Thinking, r);
                }
                if let Some(c) = delta.content.as_deref() {
                    self.text(out, Open::Text, c);
                }
                if let Some(r) = delta.refusal.as_deref() {
                    self.text(out, Open::Text, r);
                }
                for (position, call) in delta.tool_calls.iter().flatten().enumerate() {
                    self.tool(out, call, position as u64);
                }
            }
            if let Some(reason) = choice.finish_reason.as_deref() {
                self.close_open(out);
                self.close_tools(out);
                self.stop_reason = Some(stop_reason(reason));
            }
        }
        if self.stop_reason.is_some() && self.usage.is_some() {
            self.stop(out);
        }
    }

    pub(super) fn finish(&mut self, out: &mut BytesMut) {
        self.stop(out);
    }
}
