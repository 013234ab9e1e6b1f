//! The OpenAPI document, generated from the handlers' annotations, and the
//! request body shapes it shows.

#![allow(dead_code)] // The *Doc types exist only to describe bodies.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::error::{FieldProblem, Problem};
use crate::routes;

/// Body of `POST /v1/enrollments`.
#[derive(ToSchema)]
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
#[derive(ToSchema)]
pub struct ClaimItemDoc {
    total: Option<String>,
    basic_paid: String,
    out_of_catalogue: Option<String>,
    drug: Option<String>,
    quantity: Option<u32>,
    unit_price: Option<String>,
    biomarkers: Option<Vec<BiomarkerDoc>>,
}

#[derive(ToSchema)]
pub struct BiomarkerDoc {
    marker: String,
    positive: bool,
}

/// Body of `POST /v1/claims`.
#[derive(ToSchema)]
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
}

/// Body of `POST /v1/claims/{id}/reversal`.
#[derive(ToSchema)]
pub struct ReversalRequestDoc {
    reason: String,
}

/// Body of `POST /v1/claims/{id}/appeal`: new biomarker results per item.
#[derive(ToSchema)]
pub struct AppealRequestDoc {
    items: Vec<AppealItemDoc>,
}

#[derive(ToSchema)]
pub struct AppealItemDoc {
    index: usize,
    biomarkers: Vec<BiomarkerDoc>,
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
        routes::pricing::start, routes::pricing::status,
        routes::audit::events, routes::audit::verify, routes::audit::export,
        routes::ops::healthz, routes::ops::readyz, routes::ops::metrics,
    ),
    components(schemas(Problem, FieldProblem, EnrollmentRequestDoc, ClaimRequestDoc, ClaimItemDoc,
        BiomarkerDoc, ReversalRequestDoc, AppealRequestDoc, AppealItemDoc)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;
