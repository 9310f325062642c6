//! An OpenAI Chat Completions client before an Anthropic Messages upstream: its request as a
//! `/v1/messages` body, and Anthropic's answers and stream events as chat completions.

use std::borrow::Cow;

use bytes::BytesMut;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{now, write_event, Refusal, Target, Translation};
use crate::api::ApiFormat;

/// The forced tool that carries `response_format: json_schema` to Anthropic.
pub(super) const JSON_TOOL: &str = "json_response";

/// Thinking budgets for `reasoning_effort` minimal/low/medium/high.
fn budget(effort: &str) -> Option<u64> {
    match effort {
        "minimal" => Some(1024),
        "low" => Some(2048),
        "medium" => Some(8192),
        "high" => Some(16384),
        _ => None,
    }
}

/// Members that Anthropic has no use for and that are dropped, noted unless default-valued.
const DROPPED: &[&str] = &[
    "frequency_penalty",
    "presence_penalty",
    "seed",
    "logit_bias",
    "service_tier",
    "store",
    "metadata",
];

fn is_default(key: &str, value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(false) => true,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Object(o) => o.is_empty(),
        Value::String(s) => key == "service_tier" && (s == "auto" || s == "default"),
        _ => false,
    }
}

pub(super) fn request(
    mut body: Map<String, Value>,
    target: &Target,
) -> Result<(Value, Translation), Refusal> {
    let mut t = Translation::new(ApiFormat::OpenAi, ApiFormat::Anthropic);
    let mut out = Map::new();
    out.insert("model".into(), Value::from(target.model));

    // Refused: what would change the answer's meaning if dropped.
    if let Some(n) = body.get("n").filter(|n| !n.is_null()) {
        if n.as_u64() != Some(1) {
            return Err(Refusal::new("n", "only n=1 can be served by this model"));
        }
    }
    for key in ["logprobs", "top_logprobs", "audio", "prediction"] {
        if body.get(key).is_some_and(|v| !is_default(key, v)) {
            return Err(Refusal::new(
                key,
                format!("`{key}` is not supported by this model"),
            ));
        }
    }
    if let Some(modalities) = body.get("modalities").and_then(Value::as_array) {
        if modalities.iter().any(|m| m.as_str() == Some("audio")) {
            return Err(Refusal::new(
                "modalities",
                "audio output is not supported by this model",
            ));
        }
    }

    let mut system: Vec<Value> = Vec::new();
    let messages = match body.remove("messages") {
        Some(Value::Array(m)) => m,
        _ => return Err(Refusal::new("messages", "`messages` must be an array")),
    };
    let turns = messages_to_anthropic(&messages, target, &mut system, &mut t)?;

    // Tools.
    let mut tools: Vec<Value> = Vec::new();
    if let Some(list) = body.get("tools").filter(|v| !v.is_null()) {
        let list = list
            .as_array()
            .ok_or_else(|| Refusal::new("tools", "`tools` must be an array"))?;
        for (i, tool) in list.iter().enumerate() {
            let param = format!("tools[{i}]");
            if tool
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("function")
                != "function"
            {
                return Err(Refusal::new(param, "only function tools are supported"));
            }
            let function = tool
                .get("function")
                .ok_or_else(|| Refusal::new(&param, "a function tool needs `function`"))?;
            let name = function
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| Refusal::new(format!("{param}.function.name"), "missing"))?;
            let mut entry = Map::new();
            entry.insert("name".into(), Value::from(name));
            if let Some(d) = function.get("description").filter(|d| d.is_string()) {
                entry.insert("description".into(), d.clone());
            }
            let schema = match function.get("parameters") {
                Some(p) if p.is_object() => p.clone(),
                _ => json!({"type": "object", "properties": {}}),
            };
            entry.insert("input_schema".into(), schema);
            if let Some(c) = tool.get("cache_control").filter(|c| !c.is_null()) {
                entry.insert("cache_control".into(), c.clone());
            }
            tools.push(Value::Object(entry));
        }
    }
    let mut tool_choice: Option<Value> = match body.get("tool_choice") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(json!({"type": "auto"})),
            "none" => Some(json!({"type": "none"})),
            "required" => Some(json!({"type": "any"})),
            _ => {
                return Err(Refusal::new(
                    "tool_choice",
                    format!("unknown tool_choice `{s}`"),
                ))
            }
        },
        Some(choice) => {
            let name = choice
                .pointer("/function/name")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    Refusal::new("tool_choice", "a named tool_choice needs function.name")
                })?;
            Some(json!({"type": "tool", "name": name}))
        }
    };
    if body.get("parallel_tool_calls") == Some(&Value::Bool(false)) && !tools.is_empty() {
        let choice = tool_choice.get_or_insert_with(|| json!({"type": "auto"}));
        if choice.get("type").and_then(Value::as_str) != Some("none") {
            choice["disable_parallel_tool_use"] = Value::Bool(true);
        }
    }

    // response_format.
    match body.get("response_format").filter(|v| !v.is_null()) {
        None => {}
        Some(format) => {
            match format.get("type").and_then(Value::as_str) {
                Some("text") => {}
                Some("json_object") => {
                    system.push(json!({"type": "text", "text": "Respond with a single JSON object and nothing else."}));
                    t.remove("response_format json_object (asked in the system prompt)");
                }
                Some("json_schema") => {
                    let spec = format.get("json_schema");
                    let schema = spec
                        .and_then(|s| s.get("schema"))
                        .filter(|s| s.is_object())
                        .cloned()
                        .unwrap_or_else(|| json!({"type": "object"}));
                    let mut description =
                        String::from("Respond with a JSON value matching this schema.");
                    if let Some(d) = spec
                        .and_then(|s| s.get("description"))
                        .and_then(Value::as_str)
                    {
                        description.push(' ');
                        description.push_str(d);
                    }
                    tools.push(json!({"name": JSON_TOOL, "description": description, "input_schema": schema}));
                    tool_choice = Some(json!({"type": "tool", "name": JSON_TOOL}));
                    t.json_tool = true;
                }
                _ => {
                    return Err(Refusal::new(
                        "response_format.type",
                        "unknown response_format type",
                    ))
                }
            }
        }
    }

    // Sampling and limits.
    let mut max_tokens = target.max_output_tokens;
    for key in ["max_tokens", "max_completion_tokens"] {
        match body.get(key) {
            None | Some(Value::Null) => {}
            Some(v) => {
                let asked = v.as_u64().ok_or_else(|| {
                    Refusal::new(key, format!("`{key}` must be a positive integer"))
                })?;
                max_tokens = asked.min(target.max_output_tokens);
            }
        }
    }
    let mut temperature = None;
    if let Some(v) = body.get("temperature").filter(|v| !v.is_null()) {
        let x = v
            .as_f64()
            .ok_or_else(|| Refusal::new("temperature", "`temperature` must be a number"))?;
        if !(0.0..=1.0).contains(&x) {
            return Err(Refusal::new(
                "temperature",
                "this model takes a temperature between 0 and 1",
            ));
        }
        temperature = Some(v.clone());
    }
    let mut top_p = body.get("top_p").filter(|v| !v.is_null()).cloned();
    let mut top_k = body.get("top_k").filter(|v| !v.is_null()).cloned();

    let mut thinking_budget = None;
    if let Some(effort) = body.get("reasoning_effort").filter(|v| !v.is_null()) {
        let effort = effort.as_str().unwrap_or_default();
        if effort == "none" {
        } else if !target.reasoning {
            t.remove("reasoning_effort");
        } else if t.json_tool {
            // Anthropic does not think when a tool is forced.
            t.remove("reasoning_effort (with response_format json_schema)");
        } else {
            thinking_budget = Some(budget(effort).ok_or_else(|| {
                Refusal::new(
                    "reasoning_effort",
                    "reasoning_effort is minimal, low, medium or high",
                )
            })?);
        }
    }
    if let Some(mut b) = thinking_budget {
        if max_tokens <= b {
            max_tokens = (b + max_tokens).min(target.max_output_tokens);
        }
        if max_tokens <= b {
            b = max_tokens.saturating_sub(1);
        }
        if b < 1024 {
            t.remove("reasoning_effort");
        } else {
            out.insert(
                "thinking".into(),
                json!({"type": "enabled", "budget_tokens": b}),
            );
            if temperature.take().is_some() {
                t.remove("temperature");
            }
            if top_k.take().is_some() {
                t.remove("top_k");
            }
            if top_p
                .as_ref()
                .and_then(Value::as_f64)
                .is_some_and(|p| p < 0.95)
            {
                top_p = None;
                t.remove("top_p");
            }
        }
    }

    out.insert("max_tokens".into(), Value::from(max_tokens));
    if !system.is_empty() {
        let plain = system.iter().all(|b| b.get("cache_control").is_none());
        let value = if plain {
            let texts: Vec<&str> = system
                .iter()
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect();
            Value::from(texts.join("\n\n"))
        } else {
            Value::Array(system)
        };
        out.insert("system".into(), value);
    }
    out.insert("messages".into(), Value::Array(turns));
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = tool_choice {
        out.insert("tool_choice".into(), choice);
    }
    match body.get("stop") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            out.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(list)) => {
            if list.iter().any(|s| !s.is_string()) {
                return Err(Refusal::new(
                    "stop",
                    "`stop` must be a string or a list of strings",
                ));
            }
            out.insert("stop_sequences".into(), Value::Array(list.clone()));
        }
        Some(_) => {
            return Err(Refusal::new(
                "stop",
                "`stop` must be a string or a list of strings",
            ))
        }
    }
    if let Some(v) = temperature {
        out.insert("temperature".into(), v);
    }
    if let Some(v) = top_p {
        out.insert("top_p".into(), v);
    }
    if let Some(v) = top_k {
        out.insert("top_k".into(), v);
    }
    if let Some(user) = body.get("user").and_then(Value::as_str) {
        out.insert("metadata".into(), json!({"user_id": user}));
    }
    t.stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    if t.stream {
        out.insert("stream".into(), Value::Bool(true));
        t.client_include_usage = body
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
    }

    for key in DROPPED {
        if body.get(*key).is_some_and(|v| !is_default(key, v)) {
            t.remove(key);
        }
    }
    const KNOWN: &[&str] = &[
        "model",
        "messages",
        "n",
        "logprobs",
        "top_logprobs",
        "audio",
        "prediction",
        "modalities",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "top_k",
        "reasoning_effort",
        "stop",
        "user",
        "stream",
        "stream_options",
    ];
    for (key, value) in &body {
        if !KNOWN.contains(&key.as_str()) && !DROPPED.contains(&key.as_str()) && !value.is_null() {
            t.remove(key);
        }
    }
    Ok((Value::Object(out), t))
}

/// The chat messages as Anthropic's alternating turns; system messages go to `system`.
fn messages_to_anthropic(
    messages: &[Value],
    target: &Target,
    system: &mut Vec<Value>,
    t: &mut Translation,
) -> Result<Vec<Value>, Refusal> {
    // (role, blocks): consecutive messages of one role are merged, as Anthropic alternates.
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let at = format!("messages[{i}]");
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| Refusal::new(format!("{at}.role"), "a message needs a role"))?;
        let content = message.get("content").filter(|c| !c.is_null());
        match role {
            "system" | "developer" => {
                let blocks = content_blocks(content, &at, target, true)?;
                system.extend(blocks);
            }
            "user" => {
                let blocks = content_blocks(content, &at, target, false)?;
                push_turn(&mut turns, "user", blocks, false);
            }
            "assistant" => {
                let mut blocks = Vec::new();
                if let Some(thinking) = message.get("thinking_blocks").filter(|v| !v.is_null()) {
                    let list = thinking.as_array().ok_or_else(|| {
                        Refusal::new(format!("{at}.thinking_blocks"), "must be an array")
                    })?;
                    blocks.extend(list.iter().cloned());
                } else if message
                    .get("reasoning_content")
                    .and_then(Value::as_str)
                    .is_some_and(|r| !r.is_empty())
                {
                    // Unsigned reasoning cannot go back to Anthropic.
                    t.remove("reasoning_content of earlier turns");
                }
                blocks.extend(content_blocks(content, &at, target, true)?);
                if let Some(calls) = message.get("tool_calls").filter(|v| !v.is_null()) {
                    let calls = calls.as_array().ok_or_else(|| {
                        Refusal::new(format!("{at}.tool_calls"), "must be an array")
                    })?;
                    for (j, call) in calls.iter().enumerate() {
                        let cat = format!("{at}.tool_calls[{j}]");
                        let id = call.get("id").and_then(Value::as_str).ok_or_else(|| {
                            Refusal::new(format!("{cat}.id"), "a tool call needs an id")
                        })?;
                        let name = call
                            .pointer("/function/name")
                            .and_then(Value::as_str)
                            .ok_or_else(|| {
                                Refusal::new(
                                    format!("{cat}.function.name"),
                                    "a tool call needs a name",
                                )
                            })?;
                        let arguments = call
                            .pointer("/function/arguments")
                            .and_then(Value::as_str)
                            .unwrap_or("");
                        let input: Value = if arguments.trim().is_empty() {
                            json!({})
                        } else {
                            serde_json::from_str(arguments).map_err(|e| {
                                Refusal::new(
                                    format!("{cat}.function.arguments"),
                                    format!("the arguments are not JSON: {e}"),
                                )
                            })?
                        };
                        blocks.push(
                            json!({"type": "tool_use", "id": id, "name": name, "input": input}),
                        );
                    }
                }
                if !blocks.is_empty() {
                    push_turn(&mut turns, "assistant", blocks, false);
                }
            }
            "tool" => {
                let id = message
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        Refusal::new(
                            format!("{at}.tool_call_id"),
                            "a tool message needs tool_call_id",
                        )
                    })?;
                let result = match content {
                    None => Value::from(""),
                    Some(Value::String(s)) => Value::from(s.as_str()),
                    Some(_) => Value::Array(content_blocks(content, &at, target, true)?),
                };
                let block = json!({"type": "tool_result", "tool_use_id": id, "content": result});
                push_turn(&mut turns, "user", vec![block], true);
            }
            _ => {
                return Err(Refusal::new(
                    format!("{at}.role"),
                    format!("role `{role}` is not supported"),
                ))
            }
        }
    }
    Ok(turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect())
}

/// Adds blocks to the last turn when it has the same role; tool results go before the turn's
/// other content.
fn push_turn(
    turns: &mut Vec<(&'static str, Vec<Value>)>,
    role: &'static str,
    blocks: Vec<Value>,
    tool_results: bool,
) {
    match turns.last_mut() {
        Some((last, existing)) if *last == role => {
            if tool_results {
                let at = existing
                    .iter()
                    .take_while(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
                    .count();
                existing.splice(at..at, blocks);
            } else {
                existing.extend(blocks);
            }
        }
        _ => turns.push((role, blocks)),
    }
}

/// A message's content (string or parts) as Anthropic blocks; `text_only` for roles that take
/// text alone.
fn content_blocks(
    content: Option<&Value>,
    at: &str,
    target: &Target,
    text_only: bool,
) -> Result<Vec<Value>, Refusal> {
    let parts = match content {
        None => return Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => return Ok(Vec::new()),
        Some(Value::String(s)) => return Ok(vec![json!({"type": "text", "text": s})]),
        Some(Value::Array(parts)) => parts,
        Some(_) => {
            return Err(Refusal::new(
                format!("{at}.content"),
                "content must be a string or an array of parts",
            ))
        }
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let pat = format!("{at}.content[{j}]");
        let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
        let mut block = match kind {
            "text" | "refusal" => {
                let text = part
                    .get(kind)
                    .and_then(Value::as_str)
                    .ok_or_else(|| Refusal::new(&pat, "a text part needs `text`"))?;
                if text.is_empty() {
                    continue;
                }
                json!({"type": "text", "text": text})
            }
            "image_url" if !text_only => {
                if !target.vision {
                    return Err(Refusal::new(pat, "this model does not take images"));
                }
                let url = part
                    .get("image_url")
                    .and_then(|u| u.get("url").or(Some(u)))
                    .and_then(Value::as_str)
                    .ok_or_else(|| Refusal::new(&pat, "an image_url part needs a url"))?;
                if url.starts_with("data:") {
                    let (media_type, data) = data_url(url)
                        .ok_or_else(|| Refusal::new(&pat, "the image data URL is not base64"))?;
                    json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}})
                } else if url.starts_with("https://") || url.starts_with("http://") {
                    json!({"type": "image", "source": {"type": "url", "url": url}})
                } else {
                    return Err(Refusal::new(
                        pat,
                        "the image url is neither data: nor http(s)",
                    ));
                }
            }
            "file" if !text_only => {
                let data = part
                    .pointer("/file/file_data")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        Refusal::new(&pat, "only files sent as file_data are supported")
                    })?;
                let (media_type, data) = data_url(data)
                    .ok_or_else(|| Refusal::new(&pat, "file_data is not a base64 data URL"))?;
                if media_type != "application/pdf" {
                    return Err(Refusal::new(pat, "only PDF files are supported"));
                }
                if !target.pdf {
                    return Err(Refusal::new(pat, "this model does not take PDF documents"));
                }
                json!({"type": "document", "source": {"type": "base64", "media_type": media_type, "data": data}})
            }
            "input_audio" => return Err(Refusal::new(pat, "this model does not take audio")),
            _ => {
                return Err(Refusal::new(
                    pat,
                    format!("content part `{kind}` is not supported here"),
                ))
            }
        };
        if let Some(c) = part.get("cache_control").filter(|c| !c.is_null()) {
            block["cache_control"] = c.clone();
        }
        blocks.push(block);
    }
    Ok(blocks)
}

/// (media type, base64 data) of `data:<type>;base64,<data>`.
fn data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (head, data) = rest.split_once(',')?;
    let media_type = head.strip_suffix(";base64")?;
    Some((media_type, data))
}

fn finish_reason(stop_reason: &str, json_tool: bool) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" if json_tool => "stop",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

/// The chat completion id for an Anthropic message id.
fn completion_id(message_id: &str) -> String {
    format!(
        "chatcmpl-{}",
        message_id.strip_prefix("msg_").unwrap_or(message_id)
    )
}

#[derive(Deserialize, Default, Clone, Copy)]
struct Usage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
}

impl Usage {
    /// Later figures replace earlier ones (message_delta's are cumulative).
    fn update(&mut self, later: &Usage) {
        self.input_tokens = later.input_tokens.or(self.input_tokens);
        self.output_tokens = later.output_tokens.or(self.output_tokens);
        self.cache_read_input_tokens = later
            .cache_read_input_tokens
            .or(self.cache_read_input_tokens);
        self.cache_creation_input_tokens = later
            .cache_creation_input_tokens
            .or(self.cache_creation_input_tokens);
    }

    fn openai(&self) -> OpenAiUsage {
        let cached = self.cache_read_input_tokens.unwrap_or(0);
        let prompt =
            self.input_tokens.unwrap_or(0) + cached + self.cache_creation_input_tokens.unwrap_or(0);
        let completion = self.output_tokens.unwrap_or(0);
        OpenAiUsage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            prompt_tokens_details: CachedTokens {
                cached_tokens: cached,
            },
        }
    }
}

#[derive(Serialize)]
struct OpenAiUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: CachedTokens,
}

#[derive(Serialize)]
struct CachedTokens {
    cached_tokens: u64,
}

pub(super) fn answer(t: &Translation, body: &[u8]) -> Result<Vec<u8>, String> {
    let message: Value = serde_json::from_slice(body)
        .map_err(|e| format!("the upstream answer is not JSON: {e}"))?;
    let blocks = message
        .get("content")
        .and_then(Value::as_array)
        .ok_or("the upstream answer has no content array")?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut thinking_blocks = Vec::new();
    let mut tool_calls = Vec::new();
    // The forced tool's input, when the answer has it: the whole content (a text block beside
    // it is no part of the JSON the client asked for).
    let mut json_content: Option<String> = None;
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("thinking") => {
                reasoning.push_str(block.get("thinking").and_then(Value::as_str).unwrap_or(""));
                thinking_blocks.push(block.clone());
            }
            Some("redacted_thinking") => thinking_blocks.push(block.clone()),
            Some("tool_use") => {
                let name = block.get("name").and_then(Value::as_str).unwrap_or("");
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                let arguments = serde_json::to_string(&input).map_err(|e| e.to_string())?;
                if t.json_tool && name == JSON_TOOL {
                    json_content
                        .get_or_insert_with(String::new)
                        .push_str(&arguments);
                } else {
                    tool_calls.push(json!({
                        "id": block.get("id").and_then(Value::as_str).unwrap_or(""),
                        "type": "function",
                        "function": {"name": name, "arguments": arguments},
                    }));
                }
            }
            _ => {}
        }
    }
    if let Some(json) = json_content {
        text = json;
    }
    let stop_reason = message
        .get("stop_reason")
        .and_then(Value::as_str)
        .unwrap_or("end_turn");
    let mut out_message = Map::new();
    out_message.insert("role".into(), Value::from("assistant"));
    let content = if text.is_empty() && !tool_calls.is_empty() {
        Value::Null
    } else {
        Value::from(text)
    };
    out_message.insert("content".into(), content);
    if !thinking_blocks.is_empty() {
        out_message.insert("reasoning_content".into(), Value::from(reasoning));
        out_message.insert("thinking_blocks".into(), Value::Array(thinking_blocks));
    }
    if !tool_calls.is_empty() {
        out_message.insert("tool_calls".into(), Value::Array(tool_calls));
    }
    let usage: Usage = message
        .get("usage")
        .and_then(|u| Usage::deserialize(u).ok())
        .unwrap_or_default();
    let out = json!({
        "id": completion_id(message.get("id").and_then(Value::as_str).unwrap_or("")),
        "object": "chat.completion",
        "created": now(),
        "model": message.get("model").and_then(Value::as_str).unwrap_or(""),
        "choices": [{
            "index": 0,
            "message": out_message,
            "logprobs": null,
            "finish_reason": finish_reason(stop_reason, t.json_tool),
        }],
        "usage": usage.openai(),
    });
    serde_json::to_vec(&out).map_err(|e| e.to_string())
}

// ---- Stream: Anthropic events → chat.completion.chunk events.

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event<'a> {
    MessageStart {
        #[serde(borrow)]
        message: StartMessage<'a>,
    },
    ContentBlockStart {
        index: u64,
        #[serde(borrow)]
        content_block: StartBlock<'a>,
    },
    ContentBlockDelta {
        index: u64,
        #[serde(borrow)]
        delta: Delta<'a>,
    },
    ContentBlockStop {
        index: u64,
    },
    MessageDelta {
        #[serde(borrow)]
        delta: MessageDelta<'a>,
        #[serde(default)]
        usage: Option<Usage>,
    },
    MessageStop,
    Error {
        #[serde(borrow)]
        error: ErrorBody<'a>,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct StartMessage<'a> {
    #[serde(borrow, default)]
    id: Cow<'a, str>,
    #[serde(borrow, default)]
    model: Cow<'a, str>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StartBlock<'a> {
    Text {
        #[serde(borrow, default)]
        text: Cow<'a, str>,
    },
    Thinking {
        #[serde(borrow, default)]
        thinking: Cow<'a, str>,
        #[serde(borrow, default)]
        signature: Cow<'a, str>,
    },
    RedactedThinking {
        #[serde(borrow, default)]
        data: Cow<'a, str>,
    },
    ToolUse {
        #[serde(borrow, default)]
        id: Cow<'a, str>,
        #[serde(borrow, default)]
        name: Cow<'a, str>,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Delta<'a> {
    #[serde(rename = "text_delta")]
    Text {
        #[serde(borrow)]
        text: Cow<'a, str>,
    },
    #[serde(rename = "thinking_delta")]
    Thinking {
        #[serde(borrow)]
        thinking: Cow<'a, str>,
    },
    #[serde(rename = "signature_delta")]
    Signature {
        #[serde(borrow)]
        signature: Cow<'a, str>,
    },
    #[serde(rename = "input_json_delta")]
    InputJson {
        #[serde(borrow)]
        partial_json: Cow<'a, str>,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct MessageDelta<'a> {
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ErrorBody<'a> {
    #[serde(borrow, rename = "type", default)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    message: Cow<'a, str>,
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [ChunkChoice<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<OpenAiUsage>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: ChunkDelta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

#[derive(Serialize, Default)]
struct ChunkDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_blocks: Option<[ThinkingOut<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallOut<'a>; 1]>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ThinkingOut<'a> {
    Thinking {
        thinking: &'a str,
        signature: &'a str,
    },
    RedactedThinking {
        data: &'a str,
    },
}

#[derive(Serialize)]
struct ToolCallOut<'a> {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionOut<'a>,
}

#[derive(Serialize)]
struct FunctionOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

/// What an Anthropic content block (by its index) is to the client.
enum Block {
    Text,
    Thinking {
        signature: String,
    },
    /// The k-th tool call of the answer.
    Tool(usize),
    /// The forced tool of `response_format: json_schema`: its input is the content.
    Json,
    Other,
}

/// Anthropic events → chat completion chunks.
///
/// A thinking block's signature comes, when the block stops, as a chunk of its own:
/// `delta.thinking_blocks: [{type:"thinking", thinking:"", signature}]` (the text came as
/// `reasoning_content` deltas; a client rebuilding LiteLLM's `thinking_blocks` joins them); a
/// redacted thinking block comes whole as `delta.thinking_blocks: [{type:"redacted_thinking",
/// data}]`. If the upstream ends without `message_stop`, `finish` sends the usage chunk (when
/// asked) and `[DONE]`, but no `finish_reason` it never had.
pub(super) struct Stream {
    id: String,
    model: String,
    pub(super) created: u64,
    include_usage: bool,
    json_tool: bool,
    /// With the forced JSON tool: text held back until it is known whether the tool's input
    /// (the content) comes; sent only if it does not.
    held: String,
    /// The forced JSON tool's block has started: text is no longer content.
    json_seen: bool,
    started: bool,
    blocks: Vec<(u64, Block)>,
    tool_calls: usize,
    usage: Usage,
    done: bool,
}

impl Stream {
    pub(super) fn new(t: &Translation) -> Self {
        Self {
            id: String::new(),
            model: String::new(),
            created: now(),
            include_usage: t.client_include_usage,
            json_tool: t.json_tool,
            held: String::new(),
            json_seen: false,
            started: false,
            blocks: Vec::new(),
            tool_calls: 0,
            usage: Usage::default(),
            done: false,
        }
    }

    fn chunk(&self, out: &mut BytesMut, delta: ChunkDelta, finish_reason: Option<&'static str>) {
        let choices = [ChunkChoice {
            index: 0,
            delta,
            logprobs: None,
            finish_reason,
        }];
        let chunk = Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices: &choices,
            usage: None,
        };
        write_event(out, None, &chunk);
    }

    fn block(&self, index: u64) -> Option<&Block> {
        self.blocks
            .iter()
            .rev()
            .find(|(i, _)| *i == index)
            .map(|(_, b)| b)
    }

    /// The role chunk, if not sent yet (an upstream that skipped message_start).
    fn start(&mut self, out: &mut BytesMut) {
        if !self.started {
            self.started = true;
            let delta = ChunkDelta {
                role: Some("assistant"),
                content: Some(""),
                ..ChunkDelta::default()
            };
            self.chunk(out, delta, None);
        }
    }

    pub(super) fn event(&mut self, data: &[u8], out: &mut BytesMut) {
        if self.done {
            return;
        }
        let event = match serde_json::from_slice::<Event>(data) {
            Ok(event) => event,
            Err(e) => {
                let message = format!("the upstream sent an unreadable stream event: {e}");
                let error = crate::api::openai::error_body(502, &message, "upstream_error", None);
                write_event(out, None, &error);
                return;
            }
        };
        match event {
            Event::MessageStart { message } => {
                if self.id.is_empty() {
                    self.id = completion_id(&message.id);
                    self.model = message.model.into_owned();
                }
                if let Some(u) = &message.usage {
                    self.usage.update(u);
                }
                self.start(out);
            }
            Event::ContentBlockStart {
                index,
                content_block,
            } => {
                self.start(out);
                let block = match content_block {
                    StartBlock::Text { text } => {
                        if self.json_tool {
                            self.hold(&text);
                        } else if !text.is_empty() {
                            let delta = ChunkDelta {
                                content: Some(&text),
                                ..ChunkDelta::default()
                            };
                            self.chunk(out, delta, None);
                        }
                        Block::Text
                    }
                    StartBlock::Thinking {
                        thinking,
                        signature,
                    } => {
                        if !thinking.is_empty() {
                            let delta = ChunkDelta {
                                reasoning_content: Some(&thinking),
                                ..ChunkDelta::default()
                            };
                            self.chunk(out, delta, None);
                        }
                        Block::Thinking {
                            signature: signature.into_owned(),
                        }
                    }
                    StartBlock::RedactedThinking { data } => {
                        let delta = ChunkDelta {
                            thinking_blocks: Some([ThinkingOut::RedactedThinking { data: &data }]),
                            ..ChunkDelta::default()
                        };
                        self.chunk(out, delta, None);
                        Block::Other
                    }
                    StartBlock::ToolUse { id, name } => {
                        if self.json_tool && name == JSON_TOOL {
                            self.json_seen = true;
                            self.held.clear();
                            Block::Json
                        } else {
                            let k = self.tool_calls;
                            self.tool_calls += 1;
                            let call = ToolCallOut {
                                index: k,
                                id: Some(&id),
                                kind: Some("function"),
                                function: FunctionOut {
                                    name: Some(&name),
                                    arguments: "",
                                },
                            };
                            let delta = ChunkDelta {
                                tool_calls: Some([call]),
                                ..ChunkDelta::default()
                            };
                            self.chunk(out, delta, None);
                            Block::Tool(k)
                        }
                    }
                    StartBlock::Other => Block::Other,
                };
                self.blocks.push((index, block));
            }
            Event::ContentBlockDelta { index, delta } => {
                self.start(out);
                let block = self.block(index);
                let out_delta = match (&delta, block) {
                    (Delta::Text { text }, _) if self.json_tool => {
                        self.hold(text);
                        return;
                    }
                    (Delta::Text { text }, _) => ChunkDelta {
                        content: Some(text),
                        ..ChunkDelta::default()
                    },
                    (Delta::Thinking { thinking }, _) => ChunkDelta {
                        reasoning_content: Some(thinking),
                        ..ChunkDelta::default()
                    },
                    (Delta::InputJson { partial_json }, Some(Block::Json)) => ChunkDelta {
                        content: Some(partial_json),
                        ..ChunkDelta::default()
                    },
                    (Delta::InputJson { partial_json }, Some(Block::Tool(k))) => ChunkDelta {
                        tool_calls: Some([ToolCallOut {
                            index: *k,
                            id: None,
                            kind: None,
                            function: FunctionOut {
                                name: None,
                                arguments: partial_json,
                            },
                        }]),
                        ..ChunkDelta::default()
                    },
                    (Delta::Signature { signature }, _) => {
                        if let Some((_, Block::Thinking { signature: s })) =
                            self.blocks.iter_mut().rev().find(|(i, _)| *i == index)
                        {
                            s.push_str(signature);
                        }
                        return;
                    }
                    _ => return,
                };
                if matches!(
                    &out_delta,
                    ChunkDelta {
                        content: Some(""),
                        ..
                    } | ChunkDelta {
                        reasoning_content: Some(""),
                        ..
                    }
                ) {
                    return;
                }
                self.chunk(out, out_delta, None);
            }
            Event::ContentBlockStop { index } => {
                if let Some(Block::Thinking { signature }) = self.block(index) {
                    let delta = ChunkDelta {
                        thinking_blocks: Some([ThinkingOut::Thinking {
                            thinking: "",
                            signature,
                        }]),
                        ..ChunkDelta::default()
                    };
                    self.chunk(out, delta, None);
                }
            }
            Event::MessageDelta { delta, usage } => {
                self.start(out);
                self.flush_held(out);
                if let Some(u) = &usage {
                    self.usage.update(u);
                }
                if let Some(reason) = delta.stop_reason {
                    let reason = finish_reason(&reason, self.json_tool);
                    self.chunk(out, ChunkDelta::default(), Some(reason));
                }
            }
            Event::MessageStop => self.end(out),
            Event::Error { error } => {
                let status = match error.kind.as_ref() {
                    "invalid_request_error" => 400,
                    "authentication_error" => 401,
                    "permission_error" => 403,
                    "not_found_error" => 404,
                    "request_too_large" => 413,
                    "rate_limit_error" => 429,
                    "overloaded_error" => 529,
                    _ => 500,
                };
                let body =
                    crate::api::openai::error_body(status, &error.message, &error.kind, None);
                write_event(out, None, &body);
            }
            Event::Other => {}
        }
    }

    /// Text beside the forced JSON tool, held back while the tool's input may still come.
    fn hold(&mut self, text: &str) {
        if !self.json_seen {
            self.held.push_str(text);
        }
    }

    /// Held text goes out as content when the forced tool never came.
    fn flush_held(&mut self, out: &mut BytesMut) {
        if self.json_seen || self.held.is_empty() {
            return;
        }
        let held = std::mem::take(&mut self.held);
        let delta = ChunkDelta {
            content: Some(&held),
            ..ChunkDelta::default()
        };
        self.chunk(out, delta, None);
    }

    /// The usage chunk (when asked) and `[DONE]`.
    fn end(&mut self, out: &mut BytesMut) {
        if self.done {
            return;
        }
        self.flush_held(out);
        self.done = true;
        if self.include_usage {
            let chunk = Chunk {
                id: &self.id,
                object: "chat.completion.chunk",
                created: self.created,
                model: &self.model,
                choices: &[],
                usage: Some(self.usage.openai()),
            };
            write_event(out, None, &chunk);
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
    }

    pub(super) fn finish(&mut self, out: &mut BytesMut) {
        self.end(out);
    }
}
