//! The OpenAPI document, generated from the handlers' annotations and the
//! `ToSchema` of the types they read and write.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{FieldProblem, Problem};
use crate::routes;

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

impl SharedErrors {
    /// Gives each error status a handler's annotation lists (with its own
    /// description) the `Problem` body every error is sent with.
    fn problem_bodies(responses: &mut utoipa::openapi::Responses) {
        for (status, response) in responses.responses.iter_mut() {
            let is_error = status.starts_with('4') || status.starts_with('5');
            if let (true, utoipa::openapi::RefOr::T(response)) = (is_error, response)
                && response.content.is_empty()
                && let utoipa::openapi::RefOr::T(problem) = Self::problem(&response.description)
            {
                *response = problem;
            }
        }
    }
}

impl SharedErrors {
    /// 429 and 503 say when to come back (`ApiError::error_response`).
    fn retry_after(responses: &mut utoipa::openapi::Responses) {
        use utoipa::openapi::Type;
        use utoipa::openapi::header::HeaderBuilder;
        use utoipa::openapi::schema::ObjectBuilder;
        for status in ["429", "503"] {
            if let Some(utoipa::openapi::RefOr::T(response)) = responses.responses.get_mut(status) {
                let seconds = ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0));
                response.headers.insert(
                    "Retry-After".to_owned(),
                    HeaderBuilder::new()
                        .schema(Some(seconds))
                        .description(Some("Seconds to wait before retrying"))
                        .build()
                        .into(),
                );
            }
        }
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
                        "431",
                        "The request line and headers are larger than the limit",
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
                Self::problem_bodies(&mut operation.responses);
                Self::retry_after(&mut operation.responses);
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
        routes::pricing::start, routes::pricing::status, routes::pricing::report, routes::pricing::cancel,
        routes::tokens::revoke,
        routes::fhir::get_claim, routes::fhir::get_claim_response, routes::fhir::get_explanation_of_benefit,
        routes::fhir::search_explanation_of_benefit, routes::fhir::get_coverage,
        routes::audit::events, routes::audit::verify, routes::audit::export,
        routes::ops::healthz, routes::ops::readyz, routes::ops::metrics,
    ),
    components(schemas(Problem, FieldProblem, engine::domain::Biomarker, engine::domain::Product)),
    modifiers(&BearerAuth, &SharedErrors),
)]
pub struct ApiDoc;

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn document() -> Value {
        serde_json::to_value(ApiDoc::openapi()).expect("the document is JSON")
    }

    /// `(method path, status, response)` of every response of every operation.
    fn responses(document: &Value) -> Vec<(String, String, Value)> {
        let mut all = Vec::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("a path item") {
                let listed = operation["responses"].as_object().expect("responses");
                assert!(!listed.is_empty(), "{method} {path} lists no response");
                for (status, response) in listed {
                    all.push((format!("{method} {path}"), status.clone(), response.clone()));
                }
            }
        }
        all
    }

    /// Follows a `$ref` into the components.
    fn resolve<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(reference) => {
                let name = reference
                    .strip_prefix("#/components/schemas/")
                    .expect("a reference to a component schema");
                let target = &document["components"]["schemas"][name];
                assert!(target.is_object(), "{reference} names no component");
                resolve(document, target)
            }
            None => schema,
        }
    }

    /// Every `$ref` anywhere under `value`.
    fn references(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    found.push(r.clone());
                }
                map.values().for_each(|v| references(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| references(v, found)),
            _ => {}
        }
    }

    #[test]
    fn every_status_of_every_operation_has_its_schema() {
        let document = document();
        let all = responses(&document);
        assert!(all.len() > 100, "{} responses", all.len());
        for (operation, status, response) in &all {
            let content = response["content"].as_object();
            match status.as_bytes()[0] {
                b'2' if status == "204" => {
                    assert!(content.is_none(), "{operation} {status} has a body")
                }
                b'2' => {
                    let content =
                        content.unwrap_or_else(|| panic!("{operation} {status} has no content"));
                    for (media, body) in content {
                        let schema = &body["schema"];
                        assert!(
                            schema.as_object().is_some_and(|s| !s.is_empty()),
                            "{operation} {status} {media} has no schema"
                        );
                        resolve(&document, schema);
                    }
                }
                b'4' | b'5' => {
                    let content =
                        content.unwrap_or_else(|| panic!("{operation} {status} has no content"));
                    let keys: Vec<&String> = content.keys().collect();
                    assert_eq!(keys, ["application/problem+json"], "{operation} {status}");
                    assert_eq!(
                        content["application/problem+json"]["schema"]["$ref"],
                        "#/components/schemas/Problem",
                        "{operation} {status}"
                    );
                }
                _ => panic!("{operation} answers {status}"),
            }
        }
        let mut found = Vec::new();
        references(&document, &mut found);
        for reference in found {
            resolve(&document, &serde_json::json!({ "$ref": reference }));
        }
    }

    #[test]
    fn the_claim_body_carries_the_validation_constraints() {
        let document = document();
        let body = &document["paths"]["/v1/claims"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"];
        let claim = resolve(&document, body);
        let pattern = claim["properties"]["diagnosis"]["pattern"]
            .as_str()
            .expect("the diagnosis has a pattern");
        assert!(
            pattern.contains(engine::domain::codes::ICD10_INPUT_PATTERN),
            "{pattern}"
        );
        let required: Vec<&str> = claim["required"]
            .as_array()
            .expect("required fields")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for field in [
            "member_id",
            "kind",
            "service_date",
            "provider_id",
            "diagnosis",
            "items",
        ] {
            assert!(required.contains(&field), "{field} is not required");
        }
        let items = &claim["properties"]["items"];
        assert_eq!(items["minItems"], 1);
        assert_eq!(items["maxItems"], engine::domain::claim::MAX_ITEMS);
        let drug = &items["items"]["oneOf"][1];
        assert_eq!(
            drug["properties"]["quantity"]["oneOf"][0]["maximum"],
            engine::domain::claim::MAX_QUANTITY
        );
        let header = document["paths"]["/v1/claims"]["post"]["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .find(|p| p["name"] == "Idempotency-Key")
            .expect("the Idempotency-Key header")
            .clone();
        assert_eq!(header["required"], true);
        assert_eq!(
            header["schema"]["maxLength"],
            engine::store::idempotency::MAX_KEY_LENGTH
        );
    }

    /// The body schema of `POST path`, resolved.
    fn body_of<'a>(document: &'a Value, path: &str) -> &'a Value {
        let body = &document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"];
        resolve(document, body)
    }

    fn required_of(schema: &Value) -> Vec<&str> {
        schema["required"]
            .as_array()
            .expect("required fields")
            .iter()
            .filter_map(Value::as_str)
            .collect()
    }

    #[test]
    fn the_course_bodies_carry_the_validation_constraints() {
        use engine::domain::authorization_request::{
            MAX_CYCLE_DAYS, MAX_CYCLES, MAX_QUANTITY_PER_CYCLE,
        };
        let document = document();
        let request = body_of(&document, "/v1/authorizations");
        assert_eq!(request["additionalProperties"], false);
        let mut required = required_of(request);
        required.sort_unstable();
        assert_eq!(
            required,
            [
                "cycle_days",
                "cycles",
                "diagnosis",
                "drug",
                "member_id",
                "prescriber",
                "quantity_per_cycle",
                "start_date",
                "unit_price"
            ]
        );
        let fields = &request["properties"];
        for (field, most) in [
            ("cycle_days", MAX_CYCLE_DAYS),
            ("quantity_per_cycle", MAX_QUANTITY_PER_CYCLE),
            ("cycles", MAX_CYCLES),
        ] {
            assert_eq!(fields[field]["minimum"], 1, "{field}");
            assert_eq!(fields[field]["maximum"], most, "{field}");
        }
        assert_eq!(fields["member_id"]["minimum"], 1);
        let drug = fields["drug"]["pattern"].as_str().expect("a drug pattern");
        assert!(
            drug.contains(engine::domain::codes::ATC_INPUT_PATTERN),
            "{drug}"
        );
        let diagnosis = fields["diagnosis"]["pattern"].as_str().expect("a pattern");
        assert!(
            diagnosis.contains(engine::domain::codes::ICD10_INPUT_PATTERN),
            "{diagnosis}"
        );
        assert_eq!(
            fields["unit_price"]["oneOf"][0]["pattern"],
            engine::domain::money::AMOUNT_INPUT_PATTERN
        );
        assert_eq!(fields["start_date"]["format"], "date");

        let followup = body_of(&document, "/v1/authorizations/{id}/followups");
        assert_eq!(followup["additionalProperties"], false);
        assert_eq!(required_of(followup), ["assessed_on", "response"]);
        let response = resolve(&document, &followup["properties"]["response"]);
        assert_eq!(
            response["enum"],
            serde_json::json!([
                "complete_response",
                "partial_response",
                "stable_disease",
                "progressive_disease"
            ])
        );

        let cancel = body_of(&document, "/v1/authorizations/{id}/cancel");
        assert_eq!(cancel["additionalProperties"], false);
        assert_eq!(required_of(cancel), ["reason"]);
        assert!(cancel["properties"]["reason"]["pattern"].is_string());
    }

    #[test]
    fn a_pricing_run_lists_its_statuses_and_its_cancel() {
        let document = document();
        let row = &document["components"]["schemas"]["PricingRunRow"];
        assert_eq!(
            row["properties"]["status"]["enum"],
            serde_json::json!(engine::store::pricing_runs::STATUSES)
        );
        let cancel = &document["paths"]["/v1/pricing/runs/{id}/cancel"]["post"];
        for status in ["200", "403", "404", "409"] {
            assert!(cancel["responses"][status].is_object(), "{status}");
        }
    }

    #[test]
    fn the_pricing_run_takes_json_and_toml() {
        let document = document();
        let content = document["paths"]["/v1/pricing/runs"]["post"]["requestBody"]["content"]
            .as_object()
            .expect("request content");
        assert!(content.contains_key("application/json"));
        assert!(content.contains_key("application/toml"));
    }
}
