//! The OpenAPI document, generated from the handlers' annotations, and the
//! request body shapes it shows.

#![allow(dead_code)] // The *Doc types exist only to describe bodies.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::error::{FieldProblem, Problem};
use crate::routes;

/// Body of `POST /v1/enrollments`.
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentRequestDoc {
    /// e.g. `xiamen-2026`
    product_id: String,
    /// 18-character PRC resident ID number (GB 11643 check digit).
    resident_id: String,
    name: String,
    phone: String,
    /// `urban_employee` or `urban_rural_resident`
    insurance_type: String,
    /// ICD-10 codes of declared pre-existing conditions, e.g. `C34.1`.
    declared_conditions: Vec<String>,
}

/// One item of a claim. Inpatient: `total`, `basic_paid`, `out_of_catalogue`.
/// Specialty drug: `drug` (ATC), `quantity`, `unit_price`, `basic_paid`,
/// `biomarkers`. Amounts are CNY with at most 2 decimals, as numbers or strings.
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimItemDoc {
    total: Option<String>,
    basic_paid: String,
    out_of_catalogue: Option<String>,
    drug: Option<String>,
    quantity: Option<u32>,
    unit_price: Option<String>,
    biomarkers: Option<Vec<BiomarkerDoc>>,
}

#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BiomarkerDoc {
    marker: String,
    positive: bool,
}

/// Body of `POST /v1/claims`.
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequestDoc {
    member_id: i64,
    /// `inpatient` or `specialty_drug`
    kind: String,
    /// YYYY-MM-DD; for a hospital stay, the admission date.
    service_date: String,
    provider_id: String,
    /// ICD-10, e.g. `C34.1` or `C34.100x001`.
    diagnosis: String,
    items: Vec<ClaimItemDoc>,
    /// The authorised course a dispensing is made in: a specialty_drug claim
    /// of exactly one item. The explanation of benefits gives each item's
    /// `authorization_id` and `cycle` (null outside a course).
    authorization_id: Option<i64>,
}

/// Body of `POST /v1/authorizations`. Amounts are CNY with at most 2
/// decimals, as numbers or strings.
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationRequestDoc {
    member_id: i64,
    /// ATC code, e.g. `L01EB03`.
    drug: String,
    /// ICD-10, e.g. `C34.1`.
    diagnosis: String,
    biomarkers: Option<Vec<BiomarkerDoc>>,
    /// Hospital id of the prescriber.
    prescriber: String,
    /// Days one dispensing covers, 1 to 366.
    cycle_days: u32,
    /// 1 to 100,000.
    quantity_per_cycle: u32,
    /// List price per unit.
    unit_price: String,
    /// Default 0.
    expected_basic_paid_per_cycle: Option<String>,
    /// 1 to 366.
    cycles: u32,
    /// YYYY-MM-DD, not before today (China time).
    start_date: String,
}

/// Body of `POST /v1/authorizations/{id}/followups`.
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowupRequestDoc {
    /// YYYY-MM-DD, not before the course starts, not after today.
    assessed_on: String,
    /// `complete_response`, `partial_response`, `stable_disease` or
    /// `progressive_disease` (RECIST 1.1).
    response: String,
}

/// Body of `POST /v1/authorizations/{id}/cancel`.
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelRequestDoc {
    /// 1 to 500 characters.
    reason: String,
}

/// Body of `POST /v1/claims/{id}/reversal`.
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReversalRequestDoc {
    reason: String,
}

/// Body of `POST /v1/claims/{id}/appeal`: new biomarker results per item.
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppealRequestDoc {
    items: Vec<AppealItemDoc>,
}

#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppealItemDoc {
    index: usize,
    biomarkers: Vec<BiomarkerDoc>,
}

/// Adds to every operation the error statuses the server's shared layers
/// can answer it with, each an `application/problem+json` `Problem`: what
/// the request parsing, the token check, the body limits and the database
/// can refuse, whatever the handler. A handler's own statuses (404 for its
/// resource, 409, 429...) are in its annotation.
struct SharedErrors;

impl SharedErrors {
    fn problem(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build()
            .into()
    }
}

impl Modify for SharedErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let has_path_id = path.contains('{');
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                let has_body = operation.request_body.is_some();
                let has_query = operation.parameters.iter().flatten().any(|p| {
                    matches!(
                        p,
                        utoipa::openapi::RefOr::T(p)
                            if matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query)
                    )
                });
                let mut shared: Vec<(&str, &str)> = vec![
                    (
                        "400",
                        "Malformed request (unknown query parameter, bad header, not JSON)",
                    ),
                    (
                        "503",
                        "Database busy or unavailable; retry after Retry-After",
                    ),
                ];
                if secured {
                    shared.push(("401", "No valid bearer token"));
                    shared.push(("403", "This token's role may not do this"));
                }
                if has_path_id {
                    shared.push(("404", "No such resource"));
                }
                if has_body {
                    shared.push(("408", "The body did not arrive within the deadline"));
                    shared.push(("413", "The body is larger than the limit"));
                    shared.push(("415", "The body's content type is not accepted"));
                }
                if has_body || has_query {
                    shared.push(("422", "A field is invalid; `errors` names each"));
                }
                for (status, description) in shared {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| Self::problem(description));
                }
            }
        }
    }
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Puhui", description = "Claims and pricing engine for inclusive city health insurance (Huimin Bao). Errors are application/problem+json."),
    paths(
        routes::products::list, routes::products::get_one, routes::products::experience,
        routes::enrollments::enroll, routes::enrollments::member, routes::enrollments::coverage,
        routes::claims::submit, routes::claims::get_one, routes::claims::for_member,
        routes::claims::submitted_by_me, routes::claims::reverse, routes::claims::appeal,
        routes::authorizations::request, routes::authorizations::get_one,
        routes::authorizations::for_member, routes::authorizations::followup,
        routes::authorizations::cancel,
        routes::pricing::start, routes::pricing::status,
        routes::tokens::revoke,
        routes::fhir::get_claim, routes::fhir::get_claim_response, routes::fhir::get_explanation_of_benefit,
        routes::fhir::search_explanation_of_benefit, routes::fhir::get_coverage,
        routes::audit::events, routes::audit::verify, routes::audit::export,
        routes::ops::healthz, routes::ops::readyz, routes::ops::metrics,
    ),
    components(schemas(Problem, FieldProblem, EnrollmentRequestDoc, ClaimRequestDoc, ClaimItemDoc,
        BiomarkerDoc, ReversalRequestDoc, AppealRequestDoc, AppealItemDoc, AuthorizationRequestDoc,
        FollowupRequestDoc, CancelRequestDoc)),
    modifiers(&BearerAuth, &SharedErrors),
)]
pub struct ApiDoc;
