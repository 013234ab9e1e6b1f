//! FHIR R4 resources over the native claim and member views, with the same
//! role rules as the native endpoints (see `crate::fhir` for the mapping).

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, get, web};
use engine::store::{claims, enrollment};
use serde::Deserialize;
use serde_json::Value;

use engine::store::tokens::Principal;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::fhir::{self, ClaimIn, CoverageIn, MemberIn, from_view};
use crate::policy::{Action, authorize};
use crate::state::AppState;

use super::claims::ownership;
use super::{note_read, path_id, readable_member};

/// Most claims one search returns (newest first).
const SEARCH_MAX: usize = 1_000;

fn fhir_ok(resource: &Value) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(fhir::FHIR_JSON)
        .body(resource.to_string())
}

fn mapping_error(e: String) -> ApiError {
    ApiError::Internal(format!("a native view did not parse for FHIR: {e}"))
}

/// The claim at `{id}` once the caller may read it, with the member's cover.
async fn readable_claim(
    state: &Arc<AppState>,
    req: &HttpRequest,
    principal: &Principal,
) -> Result<(ClaimIn, CoverageIn), ApiError> {
    let id = path_id(req, "id")?;
    authorize(principal, Action::ReadClaim(&ownership(state, id).await?))?;
    note_read(state, principal, req).await?;
    let (claim, coverage) = state
        .run(move |conn, _| {
            let claim = claims::view(conn, id)?;
            let coverage = enrollment::coverage(conn, claim.member_id)?;
            Ok((claim, coverage))
        })
        .await?;
    Ok((
        from_view(&claim).map_err(mapping_error)?,
        from_view(&coverage).map_err(mapping_error)?,
    ))
}

/// The claim as submitted, as a FHIR Claim.
#[utoipa::path(get, path = "/fhir/Claim/{id}", tag = "fhir",
    params(("id" = i64, Path, minimum = 1, description = "Claim id")),
    responses((status = 200, description = "FHIR R4 Claim", content_type = "application/fhir+json", body = Object),
        (status = 401, description = "No valid token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not this caller's claim", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such claim", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[get("/fhir/Claim/{id}")]
pub async fn get_claim(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
    Caller(principal): Caller,
) -> Result<HttpResponse, ApiError> {
    let (claim, _) = readable_claim(&state, &req, &principal).await?;
    Ok(fhir_ok(&fhir::claim(&claim)))
}

/// The decision in force, as a FHIR ClaimResponse.
#[utoipa::path(get, path = "/fhir/ClaimResponse/{id}", tag = "fhir",
    params(("id" = i64, Path, minimum = 1, description = "Claim id")),
    responses((status = 200, description = "FHIR R4 ClaimResponse", content_type = "application/fhir+json", body = Object),
        (status = 401, description = "No valid token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not this caller's claim", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such claim", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[get("/fhir/ClaimResponse/{id}")]
pub async fn get_claim_response(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
    Caller(principal): Caller,
) -> Result<HttpResponse, ApiError> {
    let (claim, _) = readable_claim(&state, &req, &principal).await?;
    Ok(fhir_ok(&fhir::claim_response(&claim)))
}

/// The claim, its decision and the balances left, as a FHIR ExplanationOfBenefit.
#[utoipa::path(get, path = "/fhir/ExplanationOfBenefit/{id}", tag = "fhir",
    params(("id" = i64, Path, minimum = 1, description = "Claim id")),
    responses((status = 200, description = "FHIR R4 ExplanationOfBenefit", content_type = "application/fhir+json", body = Object),
        (status = 401, description = "No valid token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not this caller's claim", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such claim", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[get("/fhir/ExplanationOfBenefit/{id}")]
pub async fn get_explanation_of_benefit(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
    Caller(principal): Caller,
) -> Result<HttpResponse, ApiError> {
    let (claim, coverage) = readable_claim(&state, &req, &principal).await?;
    Ok(fhir_ok(&fhir::explanation_of_benefit(&claim, &coverage)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientQuery {
    /// The member id, bare or as `Patient/{id}`.
    pub patient: String,
}

/// A member's explanations of benefit, newest first, as a searchset Bundle.
#[utoipa::path(get, path = "/fhir/ExplanationOfBenefit", tag = "fhir",
    params(("patient" = String, Query, description = "Member id, bare or as Patient/{id}", pattern = r"^(Patient/)?[1-9][0-9]{0,17}$")),
    responses((status = 200, description = "FHIR R4 Bundle (searchset)", content_type = "application/fhir+json", body = Object),
        (status = 400, description = "No or malformed patient", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not this caller's member", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such member", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[get("/fhir/ExplanationOfBenefit")]
pub async fn search_explanation_of_benefit(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
    query: web::Query<PatientQuery>,
    Caller(principal): Caller,
) -> Result<HttpResponse, ApiError> {
    authorize(&principal, Action::ReadMembers)?;
    let raw = query
        .patient
        .strip_prefix("Patient/")
        .unwrap_or(&query.patient);
    let member_id = raw
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::Malformed("patient must be a member id".into()))?;
    authorize(&principal, Action::ReadMember { member_id })?;
    note_read(&state, &principal, &req).await?;
    let (views, coverage) = state
        .run(move |conn, _| {
            let coverage = enrollment::coverage(conn, member_id)?;
            let mut views = Vec::new();
            let mut cursor = None;
            loop {
                let page = claims::list_for_member(conn, member_id, cursor, 100)?;
                for summary in &page.claims {
                    if views.len() < SEARCH_MAX {
                        views.push(claims::view(conn, summary.id)?);
                    }
                }
                match page.next_cursor {
                    Some(next) if views.len() < SEARCH_MAX => cursor = Some(next),
                    _ => break,
                }
            }
            Ok((views, coverage))
        })
        .await?;
    let coverage: CoverageIn = from_view(&coverage).map_err(mapping_error)?;
    let resources = views
        .iter()
        .map(|view| {
            from_view::<ClaimIn>(view)
                .map(|claim| fhir::explanation_of_benefit(&claim, &coverage))
                .map_err(mapping_error)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let info = req.connection_info();
    let base = format!("{}://{}", info.scheme(), info.host());
    Ok(fhir_ok(&fhir::searchset(&base, resources)))
}

/// The member's cover, as a FHIR Coverage.
#[utoipa::path(get, path = "/fhir/Coverage/{id}", tag = "fhir",
    params(("id" = i64, Path, minimum = 1, description = "Member id")),
    responses((status = 200, description = "FHIR R4 Coverage", content_type = "application/fhir+json", body = Object),
        (status = 401, description = "No valid token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not this caller's member", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such member, or no enrollment", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[get("/fhir/Coverage/{id}")]
pub async fn get_coverage(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
    Caller(principal): Caller,
) -> Result<HttpResponse, ApiError> {
    let id = readable_member(&state, &req, &principal).await?;
    let (member, coverage) = state
        .run(move |conn, _| {
            Ok((
                enrollment::member(conn, id)?,
                enrollment::coverage(conn, id)?,
            ))
        })
        .await?;
    let member: MemberIn = from_view(&member).map_err(mapping_error)?;
    let coverage: CoverageIn = from_view(&coverage).map_err(mapping_error)?;
    let resource = fhir::coverage(&member, &coverage)
        .ok_or_else(|| ApiError::NotFound(format!("member {id} has no enrollment")))?;
    Ok(fhir_ok(&resource))
}
