//! What a request needs of a model, read from the request itself: tools present → `tools`; an
//! image → `vision`; a PDF → `pdf`; a JSON schema response format → `json_schema`; thinking or
//! a reasoning effort → `reasoning`; `stream: true` → `streaming`; and its size (an estimate of
//! the prompt's tokens, plus `max_tokens`) against the context window. Both APIs' shapes.

use std::borrow::Cow;
use std::hash::Hasher;

use serde::de;
use serde::Deserialize;
use serde_json::Value;

use crate::catalog::{Capabilities, Capability};

/// Characters per token in the estimate of a prompt's size.
const CHARS_PER_TOKEN: usize = 4;
/// Tokens counted for one image (about what a 1-megapixel image costs at the providers).
const TOKENS_PER_IMAGE: u64 = 1_600;
/// Tokens counted for one PDF document when its size is unknown.
const TOKENS_PER_DOCUMENT: u64 = 3_000;

/// What a request needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    pub capabilities: Capabilities,
    /// Estimated tokens of the prompt (messages, system prompt, tool definitions).
    pub prompt_tokens: u64,
    /// The output the request asks room for (`max_tokens`, `max_completion_tokens`).
    pub max_tokens: Option<u64>,
    /// A context window the caller asks for on top (`requirements.min_context`).
    pub min_context: Option<u64>,
    /// A hash of the system prompt and the first message: every request of one conversation
    /// repeats them, so they share it (for prompt-cache affinity when the client names no
    /// session).
    pub conversation: Option<u64>,
}

/// Messages of a conversation hashed for [`Needs::conversation`]: the first, which every
/// later request of the conversation repeats (the second already differs from the first
/// request, which has none).
const CONVERSATION_MESSAGES: usize = 1;

/// Explicit requirements of a routing request (`POST /v1/route`'s `requirements`).
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Requirements {
    /// Capabilities every candidate must have.
    #[serde(default)]
    pub capabilities: Vec<Capability>,
    /// Prompt tokens to plan for (instead of, or above, the estimate from `messages`).
    #[serde(default)]
    pub prompt_tokens: Option<u64>,
    /// Output tokens to plan for.
    #[serde(default)]
    pub max_tokens: Option<u64>,
    /// The smallest context window acceptable.
    #[serde(default)]
    pub min_context: Option<u64>,
}

impl Needs {
    /// Reads what a chat-completions or messages body needs, in one pass over its JSON
    /// (nothing of the body is kept: strings are measured where they lie). A body that is not
    /// an object needs nothing; one that is not JSON is an error.
    pub fn of_json(body: &[u8]) -> Result<Self, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let needs = de::DeserializeSeed::deserialize(TopLevel, &mut de)?;
        de.end()?;
        Ok(needs)
    }

    /// Adds explicit requirements.
    pub fn with(mut self, requirements: &Requirements) -> Self {
        for cap in &requirements.capabilities {
            self.capabilities.insert(*cap);
        }
        if let Some(tokens) = requirements.prompt_tokens {
            self.prompt_tokens = self.prompt_tokens.max(tokens);
        }
        if requirements.max_tokens.is_some() {
            self.max_tokens = requirements.max_tokens;
        }
        self.min_context = requirements.min_context;
        self
    }

    /// The tokens the request needs the window to hold: the prompt and the output asked for.
    pub fn window(&self) -> u64 {
        self.prompt_tokens
            .saturating_add(self.max_tokens.unwrap_or(0))
    }
}

/// The top level of a request body.
struct TopLevel;

impl<'de> de::DeserializeSeed<'de> for TopLevel {
    type Value = Needs;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Needs, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> de::Visitor<'de> for TopLevel {
    type Value = Needs;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a request body")
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Needs, A::Error> {
        let mut needs = Needs::default();
        let mut text = Text::default();
        let (mut max_tokens, mut max_completion_tokens) = (None, None);
        while let Some(key) = map.next_key_seed(Key)? {
            match key.as_ref() {
                // The Responses API's `instructions` and `input` are the chat APIs' system
                // prompt and messages.
                "system" | "instructions" => {
                    text.hash.get_or_insert_with(conversation_hasher);
                    map.next_value_seed(Walk(&mut text))?;
                }
                "messages" | "input" => {
                    map.next_value_seed(Messages(&mut text))?;
                }
                "tools" | "functions" => {
                    if let Shape::Array(n) = map.next_value_seed(Walk(&mut text))? {
                        if n > 0 {
                            needs.capabilities.insert(Capability::Tools);
                        }
                    }
                }
                "parallel_tool_calls" | "stream" => {
                    if map.next_value::<Value>()? == Value::Bool(true) {
                        needs.capabilities.insert(if key.as_ref() == "stream" {
                            Capability::Streaming
                        } else {
                            Capability::ParallelTools
                        });
                    }
                }
                "response_format" => {
                    if type_of(&map.next_value::<Value>()?) == Some("json_schema") {
                        needs.capabilities.insert(Capability::JsonSchema);
                    }
                }
                // The Responses API's `text.format` and `reasoning.effort`.
                "text" => {
                    if map.next_value::<Value>()?.get("format").and_then(type_of)
                        == Some("json_schema")
                    {
                        needs.capabilities.insert(Capability::JsonSchema);
                    }
                }
                "reasoning" => {
                    if map
                        .next_value::<Value>()?
                        .get("effort")
                        .is_some_and(|e| !e.is_null())
                    {
                        needs.capabilities.insert(Capability::Reasoning);
                    }
                }
                "thinking" => {
                    if type_of(&map.next_value::<Value>()?) == Some("enabled") {
                        needs.capabilities.insert(Capability::Reasoning);
                    }
                }
                "reasoning_effort" => {
                    if !map.next_value::<Value>()?.is_null() {
                        needs.capabilities.insert(Capability::Reasoning);
                    }
                }
                "max_tokens" | "max_output_tokens" => {
                    max_tokens = map.next_value::<Value>()?.as_u64();
                }
                "max_completion_tokens" => {
                    max_completion_tokens = map.next_value::<Value>()?.as_u64();
                }
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        needs.capabilities = needs.capabilities.union(text.caps);
        needs.max_tokens = max_tokens.or(max_completion_tokens);
        needs.prompt_tokens =
            (text.chars.div_ceil(CHARS_PER_TOKEN) as u64).saturating_add(text.extra_tokens);
        needs.conversation = text.hash.map(|h| h.finish());
        Ok(needs)
    }

    // Anything but an object needs nothing.
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Needs, A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(Needs::default())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Needs, E> {
        Ok(Needs::default())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Needs, E> {
        Ok(Needs::default())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Needs, E> {
        Ok(Needs::default())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Needs, E> {
        Ok(Needs::default())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Needs, E> {
        Ok(Needs::default())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Needs, E> {
        Ok(Needs::default())
    }
}

/// The `type` of an object value.
fn type_of(value: &Value) -> Option<&str> {
    value.get("type").and_then(Value::as_str)
}

/// The text and media of a part of a request.
#[derive(Default)]
struct Text {
    /// Bytes of prompt text.
    chars: usize,
    /// Tokens counted for media.
    extra_tokens: u64,
    caps: Capabilities,
    /// While the conversation's opening is read: its hash so far.
    hash: Option<foldhash::fast::FoldHasher<'static>>,
}

/// The hasher of [`Needs::conversation`]: seeded alike in every process, so that any worker
/// or instance gives one conversation one hash.
fn conversation_hasher() -> foldhash::fast::FoldHasher<'static> {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x6c6c_6d2d_6761_7465).build_hasher()
}

/// The `messages` array: walked as any value, its first [`CONVERSATION_MESSAGES`] hashed.
struct Messages<'t>(&'t mut Text);

impl<'de> de::DeserializeSeed<'de> for Messages<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> de::Visitor<'de> for Messages<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("the messages")
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let text = self.0;
        let mut hash = Some(text.hash.take().unwrap_or_else(conversation_hasher));
        let mut index = 0;
        loop {
            // Only the opening messages are hashed: later ones differ request by request.
            if index < CONVERSATION_MESSAGES {
                text.hash = hash.take();
            }
            let more = seq.next_element_seed(Walk(&mut *text))?.is_some();
            if index < CONVERSATION_MESSAGES {
                hash = text.hash.take();
            }
            if !more {
                break;
            }
            index += 1;
        }
        text.hash = hash;
        Ok(())
    }

    // Messages that are not an array count as any value would.
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.0.chars += v.len();
        Ok(())
    }
    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        Walk(self.0).visit_map(map).map(|_| ())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// A key, borrowed from the body where it has no escapes.
struct Key;

impl<'de> de::DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> de::Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a key")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
}

/// What a walked value was, as far as its parent cares.
enum Shape {
    Array(usize),
    Other,
}

/// The kind of media an object's `type` names.
enum Media {
    /// OpenAI's image part, Anthropic's image block, the Responses API's input image.
    Image,
    /// Anthropic's document block, OpenAI's file part.
    Document,
}

/// Counts the text and marks the media of a part of a request: strings are prompt text, an
/// image or a document counts as a fixed number of tokens (its base64 is not text).
struct Walk<'t>(&'t mut Text);

impl<'de> de::DeserializeSeed<'de> for Walk<'_> {
    type Value = Shape;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Shape, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> de::Visitor<'de> for Walk<'_> {
    type Value = Shape;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Shape, E> {
        self.0.chars += v.len();
        if let Some(hash) = &mut self.0.hash {
            hash.write(v.as_bytes());
            hash.write_u8(0xff);
        }
        Ok(Shape::Other)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        let mut n = 0;
        while seq.next_element_seed(Walk(&mut *self.0))?.is_some() {
            n += 1;
        }
        Ok(Shape::Array(n))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        // What the object holds is counted apart until its `type` (which may come last) says
        // whether it is media.
        let mut inner = Text {
            hash: self.0.hash.take(),
            ..Text::default()
        };
        let mut media = None;
        while let Some(key) = map.next_key_seed(Key)? {
            match key.as_ref() {
                "type" => {
                    media = match map.next_value::<Value>()?.as_str() {
                        Some("image_url" | "image" | "input_image") => Some(Media::Image),
                        Some("document" | "file" | "input_file") => Some(Media::Document),
                        _ => None,
                    };
                }
                // Keys and ids are not prompt text worth counting; the signature of a
                // thinking block is opaque.
                "id" | "tool_use_id" | "signature" | "role" => {
                    map.next_value::<de::IgnoredAny>()?;
                }
                _ => {
                    map.next_value_seed(Walk(&mut inner))?;
                }
            }
        }
        let text = &mut *self.0;
        text.hash = inner.hash.take();
        match media {
            Some(Media::Image) => {
                text.caps.insert(Capability::Vision);
                text.extra_tokens += TOKENS_PER_IMAGE;
            }
            Some(Media::Document) => {
                text.caps.insert(Capability::Pdf);
                text.extra_tokens += TOKENS_PER_DOCUMENT;
            }
            None => {
                text.chars += inner.chars;
                text.extra_tokens = text.extra_tokens.saturating_add(inner.extra_tokens);
                text.caps = text.caps.union(inner.caps);
            }
        }
        Ok(Shape::Other)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn of(body: &Value) -> Needs {
        Needs::of_json(body.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn tools_images_schemas_and_size_are_read_from_either_api() {
        let openai = json!({
            "model": "auto",
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "x".repeat(400)},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
            ]}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {}}},
            "max_tokens": 50,
        });
        let needs = of(&openai);
        for cap in [
            Capability::Tools,
            Capability::Vision,
            Capability::JsonSchema,
        ] {
            assert!(needs.capabilities.contains(cap), "{cap:?}");
        }
        assert!(!needs.capabilities.contains(Capability::Streaming));
        assert!(needs.prompt_tokens >= 100 + TOKENS_PER_IMAGE);
        assert_eq!(needs.max_tokens, Some(50));
        let anthropic = json!({
            "model": "auto", "max_tokens": 10, "stream": true,
            "system": [{"type": "text", "text": "be brief"}],
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "A".repeat(100_000)}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "AAAA"}}
            ]}]
        });
        let needs = of(&anthropic);
        for cap in [
            Capability::Vision,
            Capability::Pdf,
            Capability::Reasoning,
            Capability::Streaming,
        ] {
            assert!(needs.capabilities.contains(cap), "{cap:?}");
        }
        // One conversation, one hash: its later requests repeat the system prompt and the first
        // message; another opening, another hash; no messages, none.
        let turn = |messages: Value| of(&json!({"system": "be brief", "messages": messages}));
        let first = turn(json!([{"role": "user", "content": "hi"}]));
        let later = turn(json!([
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": [{"type": "text", "text": "more"}]}
        ]));
        assert!(first.conversation.is_some());
        assert_eq!(first.conversation, later.conversation);
        assert_ne!(
            first.conversation,
            turn(json!([{"role": "user", "content": "ho"}])).conversation
        );
        assert_ne!(
            first.conversation,
            of(&json!({"messages": [{"role": "user", "content": "hi"}]})).conversation
        );
        assert_eq!(of(&json!({"model": "x"})).conversation, None);
        // The image's base64 is not counted as text.
        assert!(needs.prompt_tokens < 10_000, "{}", needs.prompt_tokens);
    }
}
