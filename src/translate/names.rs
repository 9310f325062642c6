//! Tool names OpenAI accepts (`^[a-zA-Z0-9_-]{1,64}$`), made reversibly from any Anthropic
//! tool name (Claude Code's MCP tools, `mcp__server__tool`, often exceed 64 characters).

use std::borrow::Cow;
use std::hash::BuildHasher;

/// The longest tool name OpenAI accepts.
const MAX_LEN: usize = 64;
/// Characters of the original kept before the hash.
const KEPT: usize = 55;

/// `name` when OpenAI accepts it; otherwise its first 55 characters (others than
/// `[a-zA-Z0-9_-]` made `_`), `_` and 8 hex digits of a hash of the whole name. The same name
/// always gives the same short name, so a conversation's history and tools agree.
pub fn short_tool_name(name: &str) -> Cow<'_, str> {
    if valid(name) {
        return Cow::Borrowed(name);
    }
    let mut short: String = name
        .chars()
        .take(KEPT)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // A fixed seed: the same name hashes alike in every request and process of this build.
    let hash = foldhash::fast::FixedState::with_seed(0x6c6c_6d2d_6761_7465).hash_one(name);
    short.push('_');
    short.push_str(&format!("{:08x}", hash as u32));
    Cow::Owned(short)
}

fn valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Shortens `name`, recording the pair in `map` when it changed.
pub(super) fn shorten(map: &mut Vec<(String, String)>, name: &str) -> String {
    let short = short_tool_name(name);
    if let Cow::Owned(short) = &short {
        if !map.iter().any(|(s, _)| s == short) {
            map.push((short.clone(), name.to_owned()));
        }
    }
    short.into_owned()
}

/// The original of a name sent upstream (itself when it was not shortened).
pub(super) fn original<'a>(map: &'a [(String, String)], sent: &'a str) -> &'a str {
    map.iter()
        .find(|(s, _)| s == sent)
        .map_or(sent, |(_, o)| o.as_str())
}
