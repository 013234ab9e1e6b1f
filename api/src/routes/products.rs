//! Products are public: the app shows them before sign-up.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, get, web};
use engine::domain::ValidationErrors;
use engine::store::products::{self, StoredProduct};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::policy::{Action, authorize};
use crate::state::AppState;

use super::{note_read, ok};

/// The current version of every product, with terms and formulary.
#[utoipa::path(get, path = "/v1/products", tag = "products",
    responses((status = 200, description = "Products with their current terms", body = ProductList)))]
#[get("/v1/products")]
pub async fn list(state: web::Data<Arc<AppState>>) -> Result<HttpResponse, ApiError> {
    let products = state.run(|conn, _| products::list_current(conn)).await?;
    // Keys sorted, as the list has always been sent.
    Ok(ok(&super::sorted_json(&ProductList { products })?))
}

/// Every product, each at its current version.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ProductList {
    pub products: Vec<StoredProduct>,
}

/// One product's current terms and formulary.
#[utoipa::path(get, path = "/v1/products/{id}", tag = "products",
    params(("id" = String, Path, description = "Product id")),
    responses((status = 200, description = "The product", body = StoredProduct), (status = 404, description = "No such product")))]
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

#[derive(serde::Deserialize)]
pub struct ExperienceQuery {
    as_of: Option<String>,
}

/// The experience study of a product up to `as_of` (China date, inclusive), for insurers and
/// auditors: exposure by pricing group, claims by group and benefit, the payment triangle, chain
/// ladder and Bornhuetter-Ferguson reserves, loss ratios, and actual against expected against
/// the demo's pricing basis (`scenarios/city-default.toml`).
#[utoipa::path(get, path = "/v1/products/{id}/experience", tag = "products",
    params(("id" = String, Path, description = "Product id"),
        ("as_of" = String, Query, format = Date, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", description = "Study date, YYYY-MM-DD (China time, inclusive), not after today")),
    responses((status = 200, description = "The study: exposure, claims, the payment triangle, reserves and actual against expected", body = actuarial::experience::Study), (status = 404, description = "No such product"),
        (status = 409, description = "The pricing scenario the product names cannot be read on the server, or has changed since the product version was loaded (`pricing_basis_unavailable`)"),
        (status = 422, description = "as_of missing, not a date, or after today")),
    security(("bearer" = [])))]
#[get("/v1/products/{id}/experience")]
pub async fn experience(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
    query: web::Query<ExperienceQuery>,
    Caller(principal): Caller,
) -> Result<HttpResponse, ApiError> {
    authorize(&principal, Action::ReadExperience)?;
    let raw = query.as_of.as_deref().unwrap_or("");
    let as_of = engine::domain::claim::iso_date(raw).ok_or_else(|| {
        ApiError::Validation(ValidationErrors::single(
            "as_of",
            "invalid_date",
            format!("as_of must be a date YYYY-MM-DD, got {raw:?}"),
        ))
    })?;
    // A study can only see what has happened; a date far ahead would also
    // make the payment triangle as wide as the months up to it.
    let today = engine::store::china_date(state.now());
    if as_of > today {
        return Err(ApiError::Validation(ValidationErrors::single(
            "as_of",
            "future_date",
            format!("as_of is after today ({today})"),
        )));
    }
    note_read(&state, &principal, &req).await?;
    let id = req.match_info().get("id").unwrap_or("").to_owned();
    let study = state
        .run(move |conn, _| {
            crate::experience::run_on_product_basis(conn, &id, as_of)
                .map_err(crate::basis::BasisError::into_store_error)
        })
        .await?;
    Ok(ok(&study))
}
