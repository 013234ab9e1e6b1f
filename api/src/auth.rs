//! Bearer-token authentication and the role checks of every endpoint.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use actix_web::http::header;
use engine::store::tokens::{self, Principal, Role};

use crate::error::ApiError;
use crate::state::AppState;

/// Reads the bearer token, if any, and looks it up. A malformed or unknown
/// token is a 401, never treated as anonymous.
pub async fn optional(
    req: &HttpRequest,
    state: &Arc<AppState>,
) -> Result<Option<Principal>, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 256)
        .ok_or(ApiError::Unauthenticated)?
        .to_owned();
    let hash = tokens::hash_token(&token);
    if let Some(principal) = state.token_cache.get(&hash, Instant::now()) {
        return Ok(Some(principal));
    }
    let principal = state
        .run(move |conn, _| tokens::authenticate(conn, &token))
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    state
        .token_cache
        .put(hash, principal.clone(), Instant::now());
    Ok(Some(principal))
}

/// Tokens found recently, by hash, so that a busy client is not looked up in
/// the database on every request. Only found tokens are kept (an unknown
/// token is looked up each time), and only for [`TOKEN_CACHE_TTL`]: tokens
/// are never edited; a token revoked through this server is forgotten at
/// once, and one revoked from the command line stops working here within
/// that time.
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
    fn get(&self, hash: &str, now: Instant) -> Option<Principal> {
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

    fn put(&self, hash: String, principal: Principal, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= TOKEN_CACHE_CAPACITY {
            entries.clear();
        }
        entries.insert(hash, (now, principal));
    }
}

/// A caller that must present a valid token.
pub async fn required(req: &HttpRequest, state: &Arc<AppState>) -> Result<Principal, ApiError> {
    optional(req, state).await?.ok_or(ApiError::Unauthenticated)
}

/// Roles allowed on an endpoint.
#[derive(Debug, Clone, Copy)]
pub enum Allow {
    Enrollee,
    Provider,
    Insurer,
    Auditor,
}

pub fn allow(principal: &Principal, allowed: &[Allow]) -> Result<(), ApiError> {
    let ok = allowed.iter().any(|a| {
        matches!(
            (a, &principal.role),
            (Allow::Enrollee, Role::Enrollee { .. })
                | (Allow::Provider, Role::Provider { .. })
                | (Allow::Insurer, Role::Insurer)
                | (Allow::Auditor, Role::Auditor)
        )
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError::Forbidden("this token's role may not do this"))
    }
}

/// An enrollee may only see their own member; other roles pass through.
pub fn own_member(principal: &Principal, member_id: i64) -> Result<(), ApiError> {
    match principal.role {
        Role::Enrollee { member_id: own } if own != member_id => Err(ApiError::Forbidden(
            "an enrollee token can only access its own member",
        )),
        _ => Ok(()),
    }
}

/// Generates a new bearer token: 32 random bytes from the operating system.
pub fn new_token_secret() -> String {
    format!("phu_{}", hex::encode(crate::config::random_bytes::<32>()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
