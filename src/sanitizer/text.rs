//! Which parts of a request body are scanned: every string the provider would read, whatever the
//! API shape (messages, system prompts, content parts, tool arguments and results, metadata),
//! except fields that name things (model, role, type, ids) and inline base64 media.

use serde_json::Value;

use super::{Findings, Sanitizer, ScanOutcome};

/// Fields whose strings are names and ids chosen by the client's code, not prompt text.
const NOT_TEXT: &[&str] = &[
    "model",
    "role",
    "type",
    "id",
    "tool_call_id",
    "tool_use_id",
    "media_type",
    "detail",
    "format",
];

/// Scans every text string of a JSON body; a body that is not JSON is scanned as text.
pub fn scan_json(sanitizer: &Sanitizer, body: &[u8]) -> ScanOutcome {
    let mut findings = Findings::new();
    let mut blocking = Vec::new();
    let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
        let redacted = sanitizer.scan_text(body, &mut findings, &mut blocking);
        return ScanOutcome {
            findings,
            blocking,
            redacted,
        };
    };
    let mut changed = false;
    walk(
        sanitizer,
        &mut value,
        &mut findings,
        &mut blocking,
        &mut changed,
    );
    let redacted = if changed {
        serde_json::to_vec(&value).ok()
    } else {
        None
    };
    ScanOutcome {
        findings,
        blocking,
        redacted,
    }
}

fn walk(
    sanitizer: &Sanitizer,
    value: &mut Value,
    findings: &mut Findings,
    blocking: &mut Vec<String>,
    changed: &mut bool,
) {
    match value {
        Value::String(text) => {
            if let Some(redacted) = sanitizer.scan_text(text.as_bytes(), findings, blocking) {
                // Patterns match ASCII and replace whole matches, so the text stays UTF-8.
                if let Ok(redacted) = String::from_utf8(redacted) {
                    *text = redacted;
                    *changed = true;
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(sanitizer, item, findings, blocking, changed);
            }
        }
        Value::Object(map) => {
            let base64_source = map.get("type").and_then(Value::as_str) == Some("base64");
            for (key, item) in map.iter_mut() {
                let skip = NOT_TEXT.contains(&key.as_str())
                    || (base64_source && key == "data")
                    || (key == "url" && item.as_str().is_some_and(|u| u.starts_with("data:")))
                    || (key == "data"
                        && item
                            .as_str()
                            .is_some_and(|d| d.len() > 4096 && !d.contains(' ')));
                if !skip {
                    walk(sanitizer, item, findings, blocking, changed);
                }
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}
