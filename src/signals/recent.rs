//! The requests finished most recently, by id, with who answered them: a signal reported
//! right after an answer finds its request here while the ledger still holds the record in
//! its batch (the database is asked only for older ones). Bounded: the oldest ids leave first.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

/// Who answered a request: the provider and model a signal about it is counted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    pub provider_id: String,
    /// The model used, as the ledger records it (`model_used`).
    pub model: String,
    pub route_profile: Option<String>,
}

/// How a request ended, as far as signals go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    /// A provider answered (successfully or not).
    Answered(Arc<Answered>),
    /// It ended before any provider answered (refused, blocked, no route): a signal about
    /// it would be about no model.
    Unanswered,
}

/// Distinct answerers remembered for sharing, at most; past it the table starts again.
const INTERNED_MAX: usize = 4096;

type Fast = foldhash::fast::RandomState;

/// The last `capacity` finished requests. Written by every request's meter (one short
/// lock), read by `POST /v1/signals`.
pub struct RecentRequests {
    capacity: usize,
    inner: Mutex<Inner>,
}

/// A map that keeps its last `capacity` keys: past it, the oldest key leaves first.
#[derive(Debug)]
pub struct Bounded<K, V> {
    capacity: usize,
    map: HashMap<K, V, Fast>,
    /// Keys in the order they came, oldest first.
    order: VecDeque<K>,
}

impl<K: std::hash::Hash + Eq + Clone, V> Bounded<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            map: HashMap::default(),
            order: VecDeque::new(),
        }
    }

    /// Inserts or replaces; returns whether the key is new. With no capacity, keeps nothing.
    pub fn insert(&mut self, key: K, value: V) -> bool {
        if self.capacity == 0 {
            return false;
        }
        let new = self.map.insert(key.clone(), value).is_none();
        if new {
            self.order.push_back(key);
        }
        while self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.map.remove(&oldest);
            }
        }
        new
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }

    pub fn contains(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

struct Inner {
    /// Request ids are UUIDs: kept as 16 bytes, not as text.
    by_id: Bounded<u128, Finished>,
    /// Requests are answered by a handful of providers and models: one shared copy of each,
    /// by the hash of its fields, so that an entry costs no allocation of its own.
    interned: HashMap<u64, Arc<Answered>, Fast>,
    hasher: Fast,
}

impl RecentRequests {
    /// Remembers the last `capacity` requests (0: none, every lookup goes to the database).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner {
                by_id: Bounded::new(capacity),
                interned: HashMap::default(),
                hasher: Fast::default(),
            }),
        }
    }

    /// Notes a finished request: its id, and the provider and model that answered it (None
    /// when none did). An id that is not a UUID is not kept (it is looked up in the database).
    pub fn note(
        &self,
        request_id: &str,
        provider_id: Option<&str>,
        model: Option<&str>,
        route_profile: Option<&str>,
    ) {
        if self.capacity == 0 {
            return;
        }
        let Ok(id) = uuid::Uuid::try_parse(request_id) else {
            return;
        };
        let id = id.as_u128();
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let finished = match (provider_id, model) {
            (Some(provider_id), Some(model)) => {
                Finished::Answered(inner.intern(provider_id, model, route_profile))
            }
            _ => Finished::Unanswered,
        };
        inner.by_id.insert(id, finished);
    }

    /// How a recently finished request ended; None when it is not among the last ones.
    pub fn get(&self, request_id: &str) -> Option<Finished> {
        let id = uuid::Uuid::try_parse(request_id).ok()?.as_u128();
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.by_id.get(&id).cloned()
    }

    /// Requests remembered.
    pub fn len(&self) -> usize {
        self.inner.lock().map_or(0, |i| i.by_id.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    fn intern(
        &mut self,
        provider_id: &str,
        model: &str,
        route_profile: Option<&str>,
    ) -> Arc<Answered> {
        let hash = self.hasher.hash_one((provider_id, model, route_profile));
        if let Some(shared) = self.interned.get(&hash) {
            if shared.provider_id == provider_id
                && shared.model == model
                && shared.route_profile.as_deref() == route_profile
            {
                return shared.clone();
            }
        }
        let answered = Arc::new(Answered {
            provider_id: provider_id.to_string(),
            model: model.to_string(),
            route_profile: route_profile.map(str::to_string),
        });
        if self.interned.len() >= INTERNED_MAX {
            self.interned.clear();
        }
        self.interned.insert(hash, answered.clone());
        answered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> String {
        uuid::Uuid::from_u128(n).to_string()
    }

    #[test]
    fn the_oldest_requests_leave_first() {
        let recent = RecentRequests::new(3);
        for n in 1..=5 {
            recent.note(&id(n), Some("openai"), Some("gpt-4o"), None);
        }
        assert_eq!(recent.len(), 3);
        assert_eq!(recent.get(&id(1)), None);
        assert_eq!(recent.get(&id(2)), None);
        let Some(Finished::Answered(a)) = recent.get(&id(5)) else {
            panic!("the newest request is kept");
        };
        assert_eq!(
            (a.provider_id.as_str(), a.model.as_str()),
            ("openai", "gpt-4o")
        );
    }

    #[test]
    fn a_request_no_provider_answered_is_told_apart() {
        let recent = RecentRequests::new(10);
        recent.note(&id(1), None, None, Some("coding"));
        recent.note(&id(2), Some("anthropic"), Some("claude"), Some("coding"));
        assert_eq!(recent.get(&id(1)), Some(Finished::Unanswered));
        let Some(Finished::Answered(a)) = recent.get(&id(2)) else {
            panic!("answered");
        };
        assert_eq!(a.route_profile.as_deref(), Some("coding"));
    }

    #[test]
    fn answerers_are_shared_and_ids_that_are_not_uuids_are_not_kept() {
        let recent = RecentRequests::new(10);
        recent.note(&id(1), Some("openai"), Some("gpt-4o"), None);
        recent.note(&id(2), Some("openai"), Some("gpt-4o"), None);
        recent.note("not-a-uuid", Some("openai"), Some("gpt-4o"), None);
        let (Some(Finished::Answered(a)), Some(Finished::Answered(b))) =
            (recent.get(&id(1)), recent.get(&id(2)))
        else {
            panic!("both kept");
        };
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(recent.len(), 2);
        assert_eq!(recent.get("not-a-uuid"), None);
    }

    #[test]
    fn nothing_is_kept_with_no_capacity() {
        let recent = RecentRequests::new(0);
        recent.note(&id(1), Some("openai"), Some("gpt-4o"), None);
        assert!(recent.is_empty());
    }
}
