//! Bearer-token authentication and the role checks of every endpoint.

use std::sync::Arc;

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
    let principal = state
        .run(move |conn, _| tokens::authenticate(conn, &token))
        .await?;
    principal.map(Some).ok_or(ApiError::Unauthenticated)
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
