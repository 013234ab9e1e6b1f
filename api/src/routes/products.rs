//! Products are public: the app shows them before sign-up.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, get, web};
use engine::store::products;

use crate::error::ApiError;
use crate::state::AppState;

use super::ok;

/// The current version of every product, with terms and formulary.
#[utoipa::path(get, path = "/v1/products", tag = "products",
    responses((status = 200, description = "Products with their current terms")))]
#[get("/v1/products")]
pub async fn list(state: web::Data<Arc<AppState>>) -> Result<HttpResponse, ApiError> {
    let all = state.run(|conn, _| products::list_current(conn)).await?;
    Ok(ok(&serde_json::json!({ "products": all })))
}

/// One product's current terms and formulary.
#[utoipa::path(get, path = "/v1/products/{id}", tag = "products",
    params(("id" = String, Path, description = "Product id")),
    responses((status = 200, description = "The product"), (status = 404, description = "No such product")))]
#[get("/v1/products/{id}")]
pub async fn get_one(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = req.match_info().get("id").unwrap_or("").to_owned();
    let product = state
        .run(move |conn, _| products::current(conn, &id))
        .await?;
    Ok(ok(&product))
}
