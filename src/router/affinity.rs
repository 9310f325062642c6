//! Prompt-cache affinity: the provider and model that served a conversation last, so that its
//! next request goes there while it is healthy and allowed, and the provider's prompt cache
//! stays warm. A conversation is known by a session id the client sends (`x-session-id`, or
//! Claude Code's `x-claude-code-session-id`), else by a hash of the caller, the system prompt
//! and the first message (`Needs::conversation`). Memory is bounded: at most `max_sessions`
//! conversations (least recently used out first) and none older than `ttl_secs` since its last
//! request. The map is sharded so that workers rarely wait for each other.

use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};

use actix_web::http::header::{HeaderMap, HeaderName};
use hashlink::LruCache;
use serde::{Deserialize, Serialize};

/// `[routing.affinity]`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AffinitySettings {
    /// Keep conversations on their provider and model (a profile may still turn it off).
    pub enabled: bool,
    /// Conversations remembered at most (least recently used forgotten first).
    pub max_sessions: usize,
    /// A conversation idle this long is forgotten.
    pub ttl_secs: u64,
}

/// The session headers clients already send, in order of precedence.
const SESSION_HEADERS: [&str; 2] = ["x-session-id", "x-claude-code-session-id"];
/// A session header longer than this is ignored (as one with control characters is).
const MAX_SESSION_ID: usize = 256;
const SHARDS: usize = 16;

/// Where a conversation went last.
#[derive(Debug, PartialEq, Eq)]
pub struct Pinned {
    pub provider: String,
    pub model: String,
}

struct Entry {
    pinned: Arc<Pinned>,
    used_ms: u64,
}

type Fast = foldhash::fast::RandomState;

/// The conversations' providers and models. About 80 bytes per conversation (its key, a
/// shared pointer to its provider and model, the time of its last request and the LRU's links
/// and table slot); 100,000 conversations take about 8 MB.
pub struct Affinity {
    settings: AffinitySettings,
    shards: Box<[Mutex<LruCache<u64, Entry, Fast>>]>,
}

impl Affinity {
    pub fn new(settings: AffinitySettings) -> Self {
        let per_shard = settings.max_sessions.div_ceil(SHARDS).max(1);
        Self {
            settings,
            shards: (0..SHARDS)
                .map(|_| Mutex::new(LruCache::with_hasher(per_shard, Fast::default())))
                .collect(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    fn shard(&self, key: u64) -> std::sync::MutexGuard<'_, LruCache<u64, Entry, Fast>> {
        // Counts and links only: a panic elsewhere leaves nothing half-done.
        self.shards[(key % SHARDS as u64) as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Where the conversation went last, unless it has been idle past the TTL; counts as a use.
    pub fn get(&self, key: u64, now_ms: u64) -> Option<Arc<Pinned>> {
        let ttl_ms = self.settings.ttl_secs.saturating_mul(1000);
        let mut shard = self.shard(key);
        let entry = shard.get_mut(&key)?;
        if now_ms.saturating_sub(entry.used_ms) > ttl_ms {
            shard.remove(&key);
            return None;
        }
        entry.used_ms = now_ms;
        Some(entry.pinned.clone())
    }

    /// The conversation went to `provider` / `model`.
    pub fn put(&self, key: u64, provider: &str, model: &str, now_ms: u64) {
        let mut shard = self.shard(key);
        if let Some(entry) = shard.get_mut(&key) {
            entry.used_ms = now_ms;
            if entry.pinned.provider == provider && entry.pinned.model == model {
                return;
            }
        }
        let pinned = Arc::new(Pinned {
            provider: provider.to_string(),
            model: model.to_string(),
        });
        shard.insert(
            key,
            Entry {
                pinned,
                used_ms: now_ms,
            },
        );
    }

    /// Conversations remembered.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The key of a request's conversation under a routing profile: a session header the client
/// sends, else the hash of its opening (`conversation`), each together with the caller (the
/// virtual key's label, or "") so that two teams' alike ids never meet, and the profile (a
/// conversation asked for under another profile is that profile's to place). Hashed with a fixed seed: every worker and
/// instance gives a conversation one key.
pub fn session_key(
    headers: &HeaderMap,
    caller: &str,
    profile: &str,
    conversation: Option<u64>,
) -> Option<u64> {
    let mut hasher = foldhash::fast::FixedState::with_seed(0x7365_7373_696f_6e00).build_hasher();
    hasher.write(caller.as_bytes());
    hasher.write_u8(0xff);
    hasher.write(profile.as_bytes());
    hasher.write_u8(0xff);
    let session = SESSION_HEADERS.iter().find_map(|name| {
        let value = headers.get(HeaderName::from_static(name))?.as_bytes();
        let usable = !value.is_empty()
            && value.len() <= MAX_SESSION_ID
            && !value.iter().any(u8::is_ascii_control);
        usable.then_some(value)
    });
    match (session, conversation) {
        (Some(id), _) => {
            hasher.write_u8(1);
            hasher.write(id);
        }
        (None, Some(opening)) => {
            hasher.write_u8(2);
            hasher.write_u64(opening);
        }
        (None, None) => return None,
    }
    Some(hasher.finish())
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    fn affinity(max_sessions: usize, ttl_secs: u64) -> Affinity {
        Affinity::new(AffinitySettings {
            enabled: true,
            max_sessions,
            ttl_secs,
        })
    }

    #[test]
    fn a_conversation_keeps_its_pair_until_it_moves_or_idles_past_the_ttl() {
        let a = affinity(100, 60);
        assert!(a.get(1, 0).is_none());
        a.put(1, "p", "m", 0);
        assert_eq!(
            a.get(1, 30_000).as_deref().map(|p| p.provider.as_str()),
            Some("p")
        );
        a.put(1, "q", "m", 40_000);
        assert_eq!(
            a.get(1, 50_000).as_deref().map(|p| p.provider.as_str()),
            Some("q")
        );
        // Each use renews it: 50 s + 60 s is still in time, 50 s + 61 s is not.
        assert!(a.get(1, 110_000).is_some());
        assert!(a.get(1, 171_001).is_none());
        assert!(a.get(1, 171_002).is_none(), "forgotten, not only hidden");
        assert_eq!(a.len(), 0);
    }

    #[test]
    fn the_least_recently_used_go_first_and_the_bound_holds_with_100_000_sessions() {
        let a = affinity(100_000, 3_600);
        for key in 0..250_000u64 {
            a.put(key, "p", "m", key);
        }
        let len = a.len();
        assert!(len <= 100_000, "{len}");
        assert!(len > 99_000, "{len}");
        // The newest are there, the oldest gone.
        assert!(a.get(249_999, 250_000).is_some());
        assert!(a.get(0, 250_000).is_none());
        // A use keeps an old one: 150,001 is touched, then 100,000 newer ones come.
        a.put(150_001, "p", "m", 250_001);
        for key in 250_000..349_000u64 {
            a.put(key, "p", "m", key);
        }
        assert!(a.get(150_001, 349_001).is_some());
        assert!(a.get(150_002, 349_001).is_none());
    }

    #[test]
    fn workers_share_it() {
        let a = Arc::new(affinity(10_000, 3_600));
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let a = a.clone();
                std::thread::spawn(move || {
                    for i in 0..5_000u64 {
                        let key = t * 1_000_000 + i;
                        a.put(key, "p", &format!("m{t}"), i);
                        assert!(a.get(key, i).is_some());
                    }
                })
            })
            .collect();
        for t in threads {
            assert!(t.join().is_ok());
        }
        assert!(a.len() <= 10_000 + SHARDS);
    }

    #[test]
    fn the_session_header_goes_before_the_opening_and_the_caller_separates() {
        let mut headers = HeaderMap::new();
        let opening = Some(42);
        let by_opening = session_key(&headers, "team", "balanced", opening);
        assert!(by_opening.is_some());
        assert_eq!(session_key(&headers, "team", "balanced", None), None);
        assert_ne!(
            by_opening,
            session_key(&headers, "other", "balanced", opening)
        );
        assert_ne!(by_opening, session_key(&headers, "team", "coding", opening));
        headers.insert(
            HeaderName::from_static("x-claude-code-session-id"),
            HeaderValue::from_static("abc"),
        );
        let claude = session_key(&headers, "team", "balanced", opening);
        assert_ne!(claude, by_opening);
        assert_eq!(
            claude,
            session_key(&headers, "team", "balanced", Some(7)),
            "the header decides"
        );
        headers.insert(
            HeaderName::from_static("x-session-id"),
            HeaderValue::from_static("abc"),
        );
        let explicit = session_key(&headers, "team", "balanced", opening);
        assert_eq!(explicit, claude, "the same id in either header");
        headers.insert(
            HeaderName::from_static("x-session-id"),
            HeaderValue::from_static("xyz"),
        );
        assert_ne!(
            session_key(&headers, "team", "balanced", opening),
            claude,
            "x-session-id first"
        );
        // An oversized id is ignored: the next header decides.
        let long = "a".repeat(MAX_SESSION_ID + 1);
        headers.insert(
            HeaderName::from_static("x-session-id"),
            HeaderValue::from_str(&long).unwrap_or_else(|e| panic!("{e}")),
        );
        assert_eq!(session_key(&headers, "team", "balanced", opening), claude);
    }
}
