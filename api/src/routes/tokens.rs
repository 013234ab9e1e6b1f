//! Token revocation, for insurers.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, delete, web};
use engine::store::tokens;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::policy::{Action, authorize};
use crate::state::AppState;

use super::path_id;

/// Revokes a token (insurer only): from now on it authenticates nobody. The
/// token stays on record and its revocation is audited. Revoking a revoked
/// token again is allowed and changes nothing.
#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "tokens",
    params(("id" = i64, Path, minimum = 1, description = "Token id (from `puhui token create` or a sign-up's `token_id`)")),
    responses((status = 204, description = "Revoked (or already revoked)"),
        (status = 404, description = "No such token")),
    security(("bearer" = [])))]
#[delete("/v1/tokens/{id}")]
pub async fn revoke(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
    Caller(principal): Caller,
) -> Result<HttpResponse, ApiError> {
    authorize(&principal, Action::RevokeToken)?;
    let id = path_id(&req, "id")?;
    let actor = principal.actor();
    state
        .run(move |conn, state| {
            let ctx = state.context(&actor);
            engine::db::write_transaction(conn, |conn| tokens::revoke(conn, &ctx, id))
        })
        .await?;
    state.token_cache.forget(id);
    Ok(HttpResponse::NoContent().finish())
}
