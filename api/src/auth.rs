//! Bearer-token authentication: who the caller is, as actix extractors.
//! What each caller may do is [`crate::policy`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use engine::store::tokens::{self, Principal};

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

fn app_state(req: &HttpRequest) -> Result<Arc<AppState>, ApiError> {
    req.app_data::<web::Data<Arc<AppState>>>()
        .map(|data| Arc::clone(data.get_ref()))
        .ok_or_else(|| ApiError::Internal("the server state is not registered".into()))
}

/// A caller that presented a valid token (401 otherwise).
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = app_state(&req)?;
            optional(&req, &state)
                .await?
                .map(Caller)
                .ok_or(ApiError::Unauthenticated)
        })
    }
}

/// A caller with a valid token, or none (an invalid token is still a 401).
#[derive(Debug, Clone)]
pub struct MaybeCaller(pub Option<Principal>);

impl FromRequest for MaybeCaller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<MaybeCaller, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = app_state(&req)?;
            Ok(MaybeCaller(optional(&req, &state).await?))
        })
    }
}

/// Generates a new bearer token: 32 random bytes from the operating system.
pub fn new_token_secret() -> String {
    format!("phu_{}", hex::encode(crate::config::random_bytes::<32>()))
}
