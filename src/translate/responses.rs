//! OpenAI's Responses API before an upstream that has none (Anthropic, a local server): the
//! request becomes a Chat Completions request, and the Chat Completions answer (a JSON body or
//! its chunks) becomes a response object or the Responses API's typed stream events. Toward
//! Anthropic the chat request goes on through `openai_client` and its answer comes back
//! through it first, so this file knows Chat Completions only.
//!
//! Translated: `instructions`, `input` (a string, or message, `function_call` and
//! `function_call_output` items with text, image and file parts), function `tools`,
//! `tool_choice`, `parallel_tool_calls`, `max_output_tokens`, `temperature`, `top_p`,
//! `text.format` (JSON schema / JSON object), `reasoning.effort`, `user`, `stream`. Refused
//! with a 400 naming the field: what needs state the upstream does not keep
//! (`previous_response_id`, `conversation`, `prompt`, `background`), OpenAI's hosted tools
//! (web search, file search, …) and item types that only OpenAI's servers know. Dropped and
//! named in `x-gateway-translation-removed`: the rest (`store`, `include`, `metadata`, …);
//! reasoning items given back as input are dropped silently (they are the upstream's to keep).

use bytes::BytesMut;
use serde_json::{json, Map, Value};

use super::{now, write_event, Refusal};

/// What a translated Responses request asked, kept to write its answer in the Responses API's
/// shape: the id given to the response and the request's fields the response object repeats.
#[derive(Debug, Clone)]
pub struct Session {
    id: String,
    created_at: u64,
    echo: Map<String, Value>,
    /// Dropped members, for `Translation::removed`.
    pub(super) removed: Vec<String>,
}

/// Members the response object repeats from the request.
const ECHOED: &[&str] = &[
    "instructions",
    "max_output_tokens",
    "metadata",
    "parallel_tool_calls",
    "reasoning",
    "temperature",
    "text",
    "tool_choice",
    "tools",
    "top_p",
    "user",
];

/// Members that need state or tools the upstream does not have: refused when set.
const REFUSED: &[(&str, &str)] = &[
    (
        "previous_response_id",
        "the upstream keeps no responses: send the whole conversation as `input`",
    ),
    (
        "conversation",
        "the upstream keeps no conversations: send the whole conversation as `input`",
    ),
    (
        "prompt",
        "stored prompt templates exist on OpenAI's servers only",
    ),
    (
        "background",
        "background responses exist on OpenAI's servers only",
    ),
];

/// Members that are translated (or echoed only); anything else set is dropped and named.
const KNOWN: &[&str] = &[
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "max_output_tokens",
    "temperature",
    "top_p",
    "text",
    "reasoning",
    "user",
    "stream",
    "metadata",
];

/// The Chat Completions body for a Responses body, and its [`Session`].
pub(super) fn to_chat(body: &Map<String, Value>) -> Result<(Map<String, Value>, Session), Refusal> {
    for (key, why) in REFUSED {
        if body
            .get(*key)
            .is_some_and(|v| !v.is_null() && *v != Value::Bool(false))
        {
            return Err(Refusal::new(*key, *why));
        }
    }
    let mut out = Map::new();
    if let Some(model) = body.get("model") {
        out.insert("model".into(), model.clone());
    }
    let mut messages = Vec::new();
    match body.get("instructions") {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => messages.push(json!({"role": "system", "content": text})),
        Some(_) => {
            return Err(Refusal::new(
                "instructions",
                "`instructions` must be a string",
            ))
        }
    }
    match body.get("input") {
        Some(Value::String(text)) => messages.push(json!({"role": "user", "content": text})),
        Some(Value::Array(items)) => items_to_messages(items, &mut messages)?,
        _ => {
            return Err(Refusal::new(
                "input",
                "`input` must be a string or an array of items",
            ))
        }
    }
    out.insert("messages".into(), Value::Array(messages));
    if let Some(tools) = body.get("tools").filter(|t| !t.is_null()) {
        let tools = tools
            .as_array()
            .ok_or_else(|| Refusal::new("tools", "`tools` must be an array"))?;
        if !tools.is_empty() {
            let chat_tools = tools
                .iter()
                .enumerate()
                .map(|(i, tool)| tool_to_chat(i, tool))
                .collect::<Result<Vec<_>, _>>()?;
            out.insert("tools".into(), Value::Array(chat_tools));
        }
    }
    if let Some(choice) = body.get("tool_choice").filter(|c| !c.is_null()) {
        out.insert("tool_choice".into(), tool_choice_to_chat(choice)?);
    }
    for key in ["parallel_tool_calls", "temperature", "top_p", "user"] {
        if let Some(value) = body.get(key).filter(|v| !v.is_null()) {
            out.insert(key.into(), value.clone());
        }
    }
    if let Some(max) = body.get("max_output_tokens").filter(|v| !v.is_null()) {
        out.insert("max_tokens".into(), max.clone());
    }
    if let Some(format) = body.get("text").and_then(|t| t.get("format")) {
        if let Some(response_format) = format_to_chat(format)? {
            out.insert("response_format".into(), response_format);
        }
    }
    if let Some(effort) = body
        .get("reasoning")
        .and_then(|r| r.get("effort"))
        .filter(|e| !e.is_null())
    {
        out.insert("reasoning_effort".into(), effort.clone());
    }
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        out.insert("stream".into(), Value::Bool(true));
        // The usage chunk makes `response.completed`'s usage.
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    let removed = body
        .iter()
        .filter(|(key, value)| {
            !KNOWN.contains(&key.as_str())
                && !REFUSED.iter().any(|(k, _)| k == key)
                && !value.is_null()
        })
        .map(|(key, _)| key.clone())
        .collect();
    let echo = ECHOED
        .iter()
        .filter_map(|key| Some(((*key).to_string(), body.get(*key)?.clone())))
        .collect();
    let session = Session {
        id: format!("resp_{}", uuid::Uuid::now_v7().simple()),
        created_at: now(),
        echo,
        removed,
    };
    Ok((out, session))
}

/// Input items as chat messages: consecutive function calls join one assistant message.
fn items_to_messages(items: &[Value], messages: &mut Vec<Value>) -> Result<(), Refusal> {
    for (i, item) in items.iter().enumerate() {
        let param = format!("input[{i}]");
        let kind = item.get("type").and_then(Value::as_str).or_else(|| {
            // An "easy" input message has a role and no type.
            item.get("role").map(|_| "message")
        });
        match kind {
            Some("message") => messages.push(message_to_chat(item, &param)?),
            Some("function_call") => {
                let call = json!({
                    "id": str_of(item, "call_id").or_else(|| str_of(item, "id")).unwrap_or(""),
                    "type": "function",
                    "function": {
                        "name": str_of(item, "name").ok_or_else(|| Refusal::new(format!("{param}.name"), "missing"))?,
                        "arguments": str_of(item, "arguments").unwrap_or("{}"),
                    },
                });
                let joins = messages.last().is_some_and(|m| {
                    m.get("role").and_then(Value::as_str) == Some("assistant")
                        && m.get("tool_calls").is_some()
                });
                if joins {
                    if let Some(Value::Array(calls)) =
                        messages.last_mut().and_then(|m| m.get_mut("tool_calls"))
                    {
                        calls.push(call);
                    }
                } else if messages
                    .last()
                    .is_some_and(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
                {
                    // The assistant's text of the same turn, then its calls.
                    if let Some(last) = messages.last_mut().and_then(Value::as_object_mut) {
                        last.insert("tool_calls".into(), Value::Array(vec![call]));
                    }
                } else {
                    messages
                        .push(json!({"role": "assistant", "content": null, "tool_calls": [call]}));
                }
            }
            Some("function_call_output") => {
                let call_id = str_of(item, "call_id")
                    .ok_or_else(|| Refusal::new(format!("{param}.call_id"), "missing"))?;
                let output = match item.get("output") {
                    Some(Value::String(text)) => text.clone(),
                    Some(Value::Array(parts)) => parts
                        .iter()
                        .filter_map(|p| p.get("text").and_then(Value::as_str))
                        .collect::<Vec<_>>()
                        .join(""),
                    _ => {
                        return Err(Refusal::new(
                            format!("{param}.output"),
                            "a function call's output must be a string",
                        ))
                    }
                };
                messages.push(json!({"role": "tool", "tool_call_id": call_id, "content": output}));
            }
            // The upstream's own reasoning, handed back: nothing a chat API takes.
            Some("reasoning") => {}
            Some(other) => {
                return Err(Refusal::new(
                    format!("{param}.type"),
                    format!("`{other}` items exist on OpenAI's servers only"),
                ))
            }
            None => return Err(Refusal::new(param, "an input item needs a `type`")),
        }
    }
    Ok(())
}

/// One message item as a chat message.
fn message_to_chat(item: &Value, param: &str) -> Result<Value, Refusal> {
    let role = match str_of(item, "role") {
        Some("user") => "user",
        Some("assistant") => "assistant",
        Some("system" | "developer") => "system",
        _ => {
            return Err(Refusal::new(
                format!("{param}.role"),
                "the role must be user, assistant, system or developer",
            ))
        }
    };
    let content = match item.get("content") {
        Some(Value::String(text)) => Value::from(text.as_str()),
        Some(Value::Array(parts)) if role != "user" => {
            // Assistant and system content is text.
            let mut text = String::new();
            for (j, part) in parts.iter().enumerate() {
                match str_of(part, "type") {
                    Some("output_text" | "input_text" | "text" | "refusal") => text.push_str(
                        str_of(part, "text")
                            .or_else(|| str_of(part, "refusal"))
                            .unwrap_or(""),
                    ),
                    _ => {
                        return Err(Refusal::new(
                            format!("{param}.content[{j}]"),
                            format!("a {role} message's content must be text"),
                        ))
                    }
                }
            }
            Value::from(text)
        }
        Some(Value::Array(parts)) => Value::Array(
            parts
                .iter()
                .enumerate()
                .map(|(j, part)| part_to_chat(part, &format!("{param}.content[{j}]")))
                .collect::<Result<_, _>>()?,
        ),
        _ => {
            return Err(Refusal::new(
                format!("{param}.content"),
                "a message needs its content, a string or an array of parts",
            ))
        }
    };
    Ok(json!({"role": role, "content": content}))
}

/// A user content part as a chat content part.
fn part_to_chat(part: &Value, param: &str) -> Result<Value, Refusal> {
    match str_of(part, "type") {
        Some("input_text" | "output_text" | "text") => {
            Ok(json!({"type": "text", "text": str_of(part, "text").unwrap_or("")}))
        }
        Some("input_image") => {
            let url = str_of(part, "image_url").ok_or_else(|| {
                Refusal::new(
                    format!("{param}.image_url"),
                    "an image is translated from its `image_url` (a URL or a data URL); uploaded files exist on OpenAI's servers only",
                )
            })?;
            let mut image = json!({"url": url});
            if let Some(detail) = str_of(part, "detail") {
                image["detail"] = Value::from(detail);
            }
            Ok(json!({"type": "image_url", "image_url": image}))
        }
        Some("input_file") => {
            let data = str_of(part, "file_data").ok_or_else(|| {
                Refusal::new(
                    format!("{param}.file_data"),
                    "a file is translated from its `file_data`; uploaded files exist on OpenAI's servers only",
                )
            })?;
            Ok(json!({"type": "file", "file": {
                "filename": str_of(part, "filename").unwrap_or("file.pdf"),
                "file_data": data,
            }}))
        }
        other => Err(Refusal::new(
            format!("{param}.type"),
            format!(
                "content parts of type `{}` cannot be translated",
                other.unwrap_or("(none)")
            ),
        )),
    }
}

/// A Responses tool (flat: `{type, name, description, parameters, strict}`) as a chat tool.
fn tool_to_chat(i: usize, tool: &Value) -> Result<Value, Refusal> {
    let param = format!("tools[{i}]");
    match str_of(tool, "type") {
        Some("function") => {
            let name = str_of(tool, "name")
                .ok_or_else(|| Refusal::new(format!("{param}.name"), "missing"))?;
            let mut function = Map::new();
            function.insert("name".into(), Value::from(name));
            for key in ["description", "parameters", "strict"] {
                if let Some(value) = tool.get(key).filter(|v| !v.is_null()) {
                    function.insert(key.into(), value.clone());
                }
            }
            Ok(json!({"type": "function", "function": function}))
        }
        other => Err(Refusal::new(
            format!("{param}.type"),
            format!(
                "only function tools can be translated; `{}` is one of OpenAI's hosted tools",
                other.unwrap_or("(none)")
            ),
        )),
    }
}

fn tool_choice_to_chat(choice: &Value) -> Result<Value, Refusal> {
    match choice {
        Value::String(mode) if matches!(mode.as_str(), "auto" | "none" | "required") => {
            Ok(choice.clone())
        }
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => {
            let name = o
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| Refusal::new("tool_choice.name", "missing"))?;
            Ok(json!({"type": "function", "function": {"name": name}}))
        }
        _ => Err(Refusal::new(
            "tool_choice",
            "only `auto`, `none`, `required` or a function can be translated",
        )),
    }
}

/// `text.format` as a chat `response_format`; None for plain text.
fn format_to_chat(format: &Value) -> Result<Option<Value>, Refusal> {
    match str_of(format, "type") {
        None | Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}))),
        Some("json_schema") => {
            let mut schema = Map::new();
            for key in ["name", "description", "schema", "strict"] {
                if let Some(value) = format.get(key).filter(|v| !v.is_null()) {
                    schema.insert(key.into(), value.clone());
                }
            }
            if !schema.contains_key("name") {
                schema.insert("name".into(), Value::from("response"));
            }
            Ok(Some(json!({"type": "json_schema", "json_schema": schema})))
        }
        Some(other) => Err(Refusal::new(
            "text.format.type",
            format!("`{other}` cannot be translated"),
        )),
    }
}

fn str_of<'v>(value: &'v Value, key: &str) -> Option<&'v str> {
    value.get(key).and_then(Value::as_str)
}

/// The Responses API's usage from a chat usage object.
fn usage_of(chat: Option<&Value>) -> Value {
    let get = |path: &str| chat.and_then(|u| u.pointer(path)).and_then(Value::as_u64);
    let input = get("/prompt_tokens").unwrap_or(0);
    let output = get("/completion_tokens").unwrap_or(0);
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": get("/prompt_tokens_details/cached_tokens").unwrap_or(0)},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": get("/completion_tokens_details/reasoning_tokens").unwrap_or(0)},
        "total_tokens": input + output,
    })
}

/// The status and `incomplete_details` a chat `finish_reason` makes.
fn status_of(finish_reason: Option<&str>) -> (&'static str, Value) {
    match finish_reason {
        Some("length") => ("incomplete", json!({"reason": "max_output_tokens"})),
        Some("content_filter") => ("incomplete", json!({"reason": "content_filter"})),
        _ => ("completed", Value::Null),
    }
}

impl Session {
    /// The response object, with the request's echoed fields (OpenAI's defaults where it
    /// gave none). The gateway stores nothing: `store` is false.
    fn response(
        &self,
        model: &str,
        status: &str,
        incomplete: Value,
        output: Vec<Value>,
        usage: Value,
    ) -> Value {
        let echoed = |key: &str, default: Value| {
            self.echo
                .get(key)
                .filter(|v| !v.is_null())
                .cloned()
                .unwrap_or(default)
        };
        json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": null,
            "incomplete_details": incomplete,
            "instructions": echoed("instructions", Value::Null),
            "max_output_tokens": echoed("max_output_tokens", Value::Null),
            "model": model,
            "output": output,
            "parallel_tool_calls": echoed("parallel_tool_calls", Value::Bool(true)),
            "previous_response_id": null,
            "reasoning": echoed("reasoning", json!({"effort": null, "summary": null})),
            "store": false,
            "temperature": echoed("temperature", json!(1.0)),
            "text": echoed("text", json!({"format": {"type": "text"}})),
            "tool_choice": echoed("tool_choice", json!("auto")),
            "tools": echoed("tools", json!([])),
            "top_p": echoed("top_p", json!(1.0)),
            "truncation": "disabled",
            "usage": usage,
            "user": echoed("user", Value::Null),
            "metadata": echoed("metadata", json!({})),
        })
    }

    fn item_id(&self, prefix: &str, index: usize) -> String {
        let base = self.id.strip_prefix("resp_").unwrap_or(&self.id);
        format!("{prefix}_{base}{index:02}")
    }
}

fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({
        "id": id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": if status == "in_progress" { json!([]) } else {
            json!([{"type": "output_text", "text": text, "annotations": []}])
        },
    })
}

fn call_item(id: &str, call_id: &str, name: &str, arguments: &str, status: &str) -> Value {
    json!({
        "id": id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    })
}

/// A whole Chat Completions answer as a response object.
pub(super) fn answer(session: &Session, chat: &[u8]) -> Result<Vec<u8>, String> {
    let chat: Value =
        serde_json::from_slice(chat).map_err(|e| format!("the chat answer is not JSON: {e}"))?;
    let choice = chat
        .pointer("/choices/0")
        .ok_or("the chat answer has no choice")?;
    let message = choice.get("message").unwrap_or(&Value::Null);
    let mut output = Vec::new();
    if let Some(text) = message
        .get("content")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        output.push(message_item(
            &session.item_id("msg", output.len()),
            text,
            "completed",
        ));
    }
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        output.push(call_item(
            &session.item_id("fc", output.len()),
            str_of(call, "id").unwrap_or(""),
            call.pointer("/function/name")
                .and_then(Value::as_str)
                .unwrap_or(""),
            call.pointer("/function/arguments")
                .and_then(Value::as_str)
                .unwrap_or("{}"),
            "completed",
        ));
    }
    let (status, incomplete) = status_of(choice.get("finish_reason").and_then(Value::as_str));
    let model = str_of(&chat, "model").unwrap_or("");
    let response = session.response(
        model,
        status,
        incomplete,
        output,
        usage_of(chat.get("usage")),
    );
    serde_json::to_vec(&response).map_err(|e| e.to_string())
}

/// An open function call of a stream.
struct OpenCall {
    /// The chat stream's index of the call.
    chat_index: u64,
    output_index: usize,
    id: String,
    call_id: String,
    name: String,
    arguments: String,
}

/// Chat Completions chunks (the `data:` payloads) as the Responses API's typed events.
pub(super) struct Stream {
    session: Session,
    sequence: u64,
    started: bool,
    done: bool,
    model: String,
    /// Items finished, in output order.
    output: Vec<(usize, Value)>,
    /// The open message item: its output index, id and text so far.
    text: Option<(usize, String, String)>,
    calls: Vec<OpenCall>,
    next_index: usize,
    finish_reason: Option<String>,
    usage: Option<Value>,
}

impl Stream {
    pub(super) fn new(session: Session) -> Self {
        Self {
            session,
            sequence: 0,
            started: false,
            done: false,
            model: String::new(),
            output: Vec::new(),
            text: None,
            calls: Vec::new(),
            next_index: 0,
            finish_reason: None,
            usage: None,
        }
    }

    fn emit(&mut self, out: &mut BytesMut, kind: &str, mut event: Value) {
        if let Some(object) = event.as_object_mut() {
            object.insert("type".into(), Value::from(kind));
            object.insert("sequence_number".into(), Value::from(self.sequence));
        }
        self.sequence += 1;
        write_event(out, Some(kind), &event);
    }

    fn start(&mut self, out: &mut BytesMut) {
        if self.started {
            return;
        }
        self.started = true;
        let response = self.session.response(
            &self.model,
            "in_progress",
            Value::Null,
            Vec::new(),
            Value::Null,
        );
        self.emit(
            out,
            "response.created",
            json!({"response": response.clone()}),
        );
        self.emit(out, "response.in_progress", json!({"response": response}));
    }

    /// One chat chunk's payload (`[DONE]` is skipped: [`Self::finish`] ends the stream).
    pub(super) fn event(&mut self, data: &[u8], out: &mut BytesMut) {
        if self.done || data == b"[DONE]" {
            return;
        }
        let Ok(chunk) = serde_json::from_slice::<Value>(data) else {
            self.fail(
                out,
                "upstream_stream_error",
                "the upstream sent an event that is not JSON",
            );
            return;
        };
        if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
            let message = str_of(error, "message").or(error.as_str()).unwrap_or("");
            let code = str_of(error, "code")
                .or_else(|| str_of(error, "type"))
                .unwrap_or("upstream_stream_error");
            self.fail(out, code, message);
            return;
        }
        if self.model.is_empty() {
            if let Some(model) = str_of(&chunk, "model") {
                self.model = model.to_string();
            }
        }
        self.start(out);
        if let Some(usage) = chunk.get("usage").filter(|u| !u.is_null()) {
            self.usage = Some(usage.clone());
        }
        let Some(choice) = chunk.pointer("/choices/0") else {
            return;
        };
        let delta = choice.get("delta").unwrap_or(&Value::Null);
        if let Some(text) = delta
            .get("content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            self.text_delta(text, out);
        }
        for call in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.call_delta(call, out);
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_string());
        }
    }

    fn text_delta(&mut self, text: &str, out: &mut BytesMut) {
        if self.text.is_none() {
            let index = self.next_index;
            self.next_index += 1;
            let id = self.session.item_id("msg", index);
            self.emit(
                out,
                "response.output_item.added",
                json!({"output_index": index, "item": message_item(&id, "", "in_progress")}),
            );
            self.emit(
                out,
                "response.content_part.added",
                json!({"item_id": id, "output_index": index, "content_index": 0,
                       "part": {"type": "output_text", "text": "", "annotations": []}}),
            );
            self.text = Some((index, id, String::new()));
        }
        let Some((index, id, so_far)) = self.text.as_mut() else {
            return;
        };
        so_far.push_str(text);
        let event = json!({"item_id": id, "output_index": *index, "content_index": 0, "delta": text, "logprobs": []});
        self.emit(out, "response.output_text.delta", event);
    }

    fn call_delta(&mut self, call: &Value, out: &mut BytesMut) {
        let chat_index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
        let fragment = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or("");
        let position = self.calls.iter().position(|c| c.chat_index == chat_index);
        let position = match position {
            Some(p) => p,
            None => {
                // A call starts: the text before it is done.
                self.close_text(out);
                let output_index = self.next_index;
                self.next_index += 1;
                let opened = OpenCall {
                    chat_index,
                    output_index,
                    id: self.session.item_id("fc", output_index),
                    call_id: str_of(call, "id").unwrap_or("").to_string(),
                    name: call
                        .pointer("/function/name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    arguments: String::new(),
                };
                let item = call_item(&opened.id, &opened.call_id, &opened.name, "", "in_progress");
                self.emit(
                    out,
                    "response.output_item.added",
                    json!({"output_index": output_index, "item": item}),
                );
                self.calls.push(opened);
                self.calls.len() - 1
            }
        };
        if fragment.is_empty() {
            return;
        }
        let open = &mut self.calls[position];
        open.arguments.push_str(fragment);
        let event =
            json!({"item_id": open.id, "output_index": open.output_index, "delta": fragment});
        self.emit(out, "response.function_call_arguments.delta", event);
    }

    fn close_text(&mut self, out: &mut BytesMut) {
        let Some((index, id, text)) = self.text.take() else {
            return;
        };
        self.emit(
            out,
            "response.output_text.done",
            json!({"item_id": id, "output_index": index, "content_index": 0, "text": text, "logprobs": []}),
        );
        self.emit(
            out,
            "response.content_part.done",
            json!({"item_id": id, "output_index": index, "content_index": 0,
                   "part": {"type": "output_text", "text": text, "annotations": []}}),
        );
        let item = message_item(&id, &text, "completed");
        self.emit(
            out,
            "response.output_item.done",
            json!({"output_index": index, "item": item.clone()}),
        );
        self.output.push((index, item));
    }

    fn close_calls(&mut self, out: &mut BytesMut) {
        for call in std::mem::take(&mut self.calls) {
            let arguments = if call.arguments.is_empty() {
                "{}".to_string()
            } else {
                call.arguments
            };
            self.emit(
                out,
                "response.function_call_arguments.done",
                json!({"item_id": call.id, "output_index": call.output_index, "arguments": arguments}),
            );
            let item = call_item(&call.id, &call.call_id, &call.name, &arguments, "completed");
            self.emit(
                out,
                "response.output_item.done",
                json!({"output_index": call.output_index, "item": item.clone()}),
            );
            self.output.push((call.output_index, item));
        }
    }

    /// An error of the upstream's stream: the `error` event and `response.failed`.
    fn fail(&mut self, out: &mut BytesMut, code: &str, message: &str) {
        self.start(out);
        self.emit(
            out,
            "error",
            json!({"code": code, "message": message, "param": null}),
        );
        let mut response = self.session.response(
            &self.model,
            "failed",
            Value::Null,
            Vec::new(),
            usage_of(self.usage.as_ref()),
        );
        response["error"] = json!({"code": code, "message": message});
        self.emit(out, "response.failed", json!({"response": response}));
        self.done = true;
    }

    /// The upstream ended: open items are done, then `response.completed` (or
    /// `response.incomplete` when the output was cut at its limit).
    pub(super) fn finish(&mut self, out: &mut BytesMut) {
        if self.done {
            return;
        }
        self.done = true;
        self.start(out);
        self.close_text(out);
        self.close_calls(out);
        let mut items = std::mem::take(&mut self.output);
        items.sort_by_key(|(index, _)| *index);
        let output = items.into_iter().map(|(_, item)| item).collect();
        let (status, incomplete) = status_of(self.finish_reason.as_deref());
        let response = self.session.response(
            &self.model,
            status,
            incomplete,
            output,
            usage_of(self.usage.as_ref()),
        );
        let kind = if status == "completed" {
            "response.completed"
        } else {
            "response.incomplete"
        };
        self.emit(out, kind, json!({"response": response}));
    }
}
