//! Tokens found recently, so that a busy client is not looked up in the
//! database on every request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use engine::store::tokens::Principal;

/// Found tokens by hash. Only found tokens are kept (an unknown token is
/// looked up each time), and only for [`TOKEN_CACHE_TTL`]: tokens are never
/// edited; a token revoked through this server is forgotten at once, and
/// one revoked from the command line stops working here within that time.
pub struct TokenCache {
    entries: Mutex<HashMap<String, (Instant, Principal)>>,
}

pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(5);
/// Past this many entries the cache starts over, so memory stays bounded.
const TOKEN_CACHE_CAPACITY: usize = 100_000;

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl TokenCache {
    pub fn get(&self, hash: &str, now: Instant) -> Option<Principal> {
        // A poisoned lock means a thread panicked while holding it; every
        // entry is complete, so the map is still usable.
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(hash)
            .filter(|(at, _)| now.saturating_duration_since(*at) < TOKEN_CACHE_TTL)
            .map(|(_, principal)| principal.clone())
    }

    /// Drops a token that was just revoked.
    pub fn forget(&self, token_id: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|_, (_, principal)| principal.token_id != token_id);
    }

    pub fn put(&self, hash: String, principal: Principal, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= TOKEN_CACHE_CAPACITY {
            entries.clear();
        }
        entries.insert(hash, (now, principal));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::store::tokens::Role;

    #[test]
    fn token_cache_forgets_after_its_ttl() {
        let cache = TokenCache::default();
        let t0 = Instant::now();
        let principal = Principal {
            token_id: 7,
            role: Role::Insurer,
        };
        assert_eq!(cache.get("h", t0), None);
        cache.put("h".into(), principal.clone(), t0);
        assert_eq!(cache.get("h", t0 + Duration::from_secs(1)), Some(principal));
        assert_eq!(cache.get("other", t0), None);
        assert_eq!(cache.get("h", t0 + TOKEN_CACHE_TTL), None);
    }
}
