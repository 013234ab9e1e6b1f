//! Pricing runs for insurers: the same engine as `puhui price`, in the background.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use actuarial::table::{ResolvedTable, TableError};
use actuarial::{BuiltinTables, Scenario, TableResolver};
use engine::domain::ValidationErrors;
use engine::store::pricing_runs::{self, PricingRunRow};
use engine::store::tokens::Principal;

use crate::auth::Caller;
use crate::body;
use crate::error::ApiError;
use crate::policy::{Action, authorize};
use crate::pricing_runs::{Refusal, Stop};
use crate::state::AppState;

use super::{note_read, path_id};

/// Starts a pricing run from a scenario (JSON, or TOML with a TOML or
/// text/plain content type). Population tables may name the table shipped
/// with the server, or a table sent inline: a JSON body
/// `{"scenario": "<TOML text>" | {...}, "tables": {"name.csv": "<CSV text>"}}`
/// (at most [`MAX_INLINE_TABLES`] tables of [`MAX_INLINE_TABLE_BYTES`] each),
/// where `[population] table = "name.csv"` names one of them. Responds 202
/// with the run's id; poll it.
#[utoipa::path(post, path = "/v1/pricing/runs", tag = "pricing",
    request_body(description = "A scenario, as in scenarios/*.toml (TOML), or the same as a JSON object, or a JSON envelope `{\"scenario\": <TOML text or object>, \"tables\": {\"name.csv\": \"<CSV>\"}}`",
        content((Object = "application/json"), (String = "application/toml"), (String = "application/x-toml"), (String = "text/plain"))),
    responses((status = 202, description = "Accepted; poll GET /v1/pricing/runs/{id}", body = RunAccepted,
            headers(("Location" = String, description = "The run's URL"))),
        (status = 422, description = "Invalid or too large scenario (`simulations` or `sweep` named when too large)"), (status = 429, description = "Too many runs at once")),
    security(("bearer" = [])))]
#[post("/v1/pricing/runs")]
pub async fn start(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
    payload: web::Payload,
    Caller(principal): Caller,
) -> Result<HttpResponse, ApiError> {
    authorize(&principal, Action::StartPricingRun)?;
    let bytes = body::read(payload, state.limits.body_bytes).await?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::Malformed("the scenario is not UTF-8".into()))?;
    let parsed = match body::media_type(&req).as_deref() {
        Some("application/json") => match with_inline_tables(text)? {
            Some((scenario, tables)) => scenario.parse(&tables),
            None => Scenario::from_json_str(text, "request body", &BuiltinTables),
        },
        Some("application/toml" | "text/plain" | "application/x-toml") => {
            Scenario::from_toml_str(text, "request body", &BuiltinTables)
        }
        _ => {
            return Err(ApiError::UnsupportedMediaType(
                "application/json or application/toml",
            ));
        }
    };
    let scenario = parsed.map_err(|e| {
        ApiError::Validation(ValidationErrors::single(
            e.key().unwrap_or("scenario").to_owned(),
            "invalid_scenario",
            e.to_string(),
        ))
    })?;
    state.pricing.admit(&scenario).map_err(|refusal| match refusal {
        Refusal::Busy => ApiError::RateLimited(5),
        Refusal::TooLarge { field, work, max } => ApiError::Validation(ValidationErrors::single(
            field,
            "scenario_too_large",
            format!(
                "the run needs about {work:.3e} member-years of work (simulated portfolio-years, \
                 and every group's models built again for each sweep row); this server accepts \
                 at most {max}"
            ),
        )),
    })?;
    let actor = principal.actor();
    let name = scenario.name().to_string();
    let hash = scenario.hash();
    let started = state
        .run(move |conn, state| {
            let ctx = state.context(&actor);
            pricing_runs::start(conn, &ctx, &name, &hash).map(|id| (id, actor.clone()))
        })
        .await;
    let (id, actor) = match started {
        Ok(v) => v,
        Err(e) => {
            state.pricing.release();
            return Err(e);
        }
    };
    let pricing = Arc::clone(&state.pricing);
    pricing.spawn(id, scenario, state.db.clone(), state.keys.clone(), actor);
    Ok(HttpResponse::Accepted()
        .insert_header(("Location", format!("/v1/pricing/runs/{id}")))
        .json(RunAccepted {
            id,
            status: pricing_runs::RUNNING,
        }))
}

/// The answer to a started run.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct RunAccepted {
    pub id: i64,
    /// `running`
    #[schema(value_type = String, pattern = "^running$")]
    pub status: &'static str,
}

/// How far a run is: done and total while it runs, the fraction always.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Progress {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    #[schema(minimum = 0, maximum = 1)]
    pub fraction: f64,
}

/// A run as `GET /v1/pricing/runs/{id}` shows it.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct RunStatus {
    #[serde(flatten)]
    pub run: PricingRunRow,
    /// While running or once succeeded; null otherwise.
    pub progress: Option<Progress>,
    /// Once succeeded: the same JSON as `puhui price --json`.
    #[schema(value_type = Option<actuarial::PricingResults>)]
    pub results: Option<serde_json::Value>,
}

/// Inline morbidity tables of one request: bounded so that a request cannot make the server
/// hold much more than its body.
pub const MAX_INLINE_TABLES: usize = 4;
pub const MAX_INLINE_TABLE_BYTES: usize = 256 * 1024;

/// Tables sent with the request, then the shipped one.
struct InlineTables(std::collections::BTreeMap<String, String>);

impl TableResolver for InlineTables {
    fn resolve(&self, table: &str) -> Result<ResolvedTable, TableError> {
        match self.0.get(table) {
            Some(text) => Ok(ResolvedTable {
                name: format!("tables.{table}"),
                text: text.clone(),
            }),
            None => BuiltinTables.resolve(table),
        }
    }
}

/// The scenario of an envelope, as TOML text or a JSON object.
enum EnvelopeScenario {
    Toml(String),
    Json(String),
}

impl EnvelopeScenario {
    fn parse(&self, tables: &InlineTables) -> Result<Scenario, actuarial::ScenarioError> {
        match self {
            EnvelopeScenario::Toml(text) => Scenario::from_toml_str(text, "scenario", tables),
            EnvelopeScenario::Json(text) => Scenario::from_json_str(text, "scenario", tables),
        }
    }
}

/// Reads `{"scenario": ..., "tables": {...}}`; `None` for a plain JSON scenario.
fn with_inline_tables(text: &str) -> Result<Option<(EnvelopeScenario, InlineTables)>, ApiError> {
    let invalid = |field: &str, message: String| {
        ApiError::Validation(ValidationErrors::single(
            field.to_owned(),
            "invalid_scenario",
            message,
        ))
    };
    let Ok(serde_json::Value::Object(mut envelope)) = serde_json::from_str(text) else {
        return Ok(None);
    };
    if !envelope.contains_key("tables") {
        return Ok(None);
    }
    let scenario = match envelope.remove("scenario") {
        Some(serde_json::Value::String(toml)) => EnvelopeScenario::Toml(toml),
        Some(value @ serde_json::Value::Object(_)) => EnvelopeScenario::Json(value.to_string()),
        _ => {
            return Err(invalid(
                "scenario",
                "with `tables`, `scenario` is the scenario as TOML text or a JSON object".into(),
            ));
        }
    };
    let Some(serde_json::Value::Object(given)) = envelope.remove("tables") else {
        return Err(invalid(
            "tables",
            "`tables` maps file names to CSV text".into(),
        ));
    };
    if let Some(key) = envelope.keys().next() {
        return Err(invalid(key, format!("unknown field `{key}`")));
    }
    if given.len() > MAX_INLINE_TABLES {
        return Err(invalid(
            "tables",
            format!("at most {MAX_INLINE_TABLES} tables per request"),
        ));
    }
    let mut tables = std::collections::BTreeMap::new();
    for (name, value) in given {
        let field = format!("tables.{name}");
        let serde_json::Value::String(csv) = value else {
            return Err(invalid(&field, "a table is CSV text".into()));
        };
        if csv.len() > MAX_INLINE_TABLE_BYTES {
            return Err(invalid(
                &field,
                format!("larger than {MAX_INLINE_TABLE_BYTES} bytes"),
            ));
        }
        tables.insert(name, csv);
    }
    Ok(Some((scenario, InlineTables(tables))))
}

/// The run a read names, once the caller may read runs and the read is in the audit log.
async fn read_run(
    state: &web::Data<Arc<AppState>>,
    req: &HttpRequest,
    principal: &Principal,
) -> Result<PricingRunRow, ApiError> {
    authorize(principal, Action::ReadPricingRun)?;
    let id = path_id(req, "id")?;
    note_read(state, principal, req).await?;
    state.run(move |conn, _| pricing_runs::get(conn, id)).await
}

/// A run's status, progress and, once finished, its results (the same
/// shape as `puhui price --json`).
#[utoipa::path(get, path = "/v1/pricing/runs/{id}", tag = "pricing",
    params(("id" = i64, Path, minimum = 1, description = "Run id")),
    responses((status = 200, description = "Status, progress and results", body = RunStatus), (status = 404, description = "No such run")),
    security(("bearer" = [])))]
#[get("/v1/pricing/runs/{id}")]
pub async fn status(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
    Caller(principal): Caller,
) -> Result<HttpResponse, ApiError> {
    let row = read_run(&state, &req, &principal).await?;
    let id = row.id;
    let results = match &row.result {
        Some(text) => Some(
            serde_json::from_str::<serde_json::Value>(text)
                .map_err(|e| ApiError::Internal(format!("stored pricing result: {e}")))?,
        ),
        None => None,
    };
    let progress = match (row.status.as_str(), state.pricing.progress(id)) {
        (pricing_runs::RUNNING, Some((done, total))) => Some(Progress {
            done: Some(done),
            total: Some(total),
            fraction: if total == 0 {
                0.0
            } else {
                done as f64 / total as f64
            },
        }),
        (pricing_runs::SUCCEEDED, _) => Some(Progress {
            done: None,
            total: None,
            fraction: 1.0,
        }),
        _ => None,
    };
    // Keys sorted, as the status has always been sent.
    let body = super::sorted_json(&RunStatus {
        run: row,
        progress,
        results,
    })?;
    Ok(HttpResponse::Ok().json(body))
}

/// The run's report as one self-contained HTML page (inline SVG charts, no scripts, nothing
/// fetched), the same page as `puhui price --html`, drawn from the stored results.
#[utoipa::path(get, path = "/v1/pricing/runs/{id}/report.html", tag = "pricing",
    params(("id" = i64, Path, minimum = 1, description = "Run id")),
    responses((status = 200, description = "The report page", content_type = "text/html", body = String),
        (status = 404, description = "No such run"),
        (status = 409, description = "The run has not succeeded (running, failed, interrupted, cancelled or timed out): it has no results to draw")),
    security(("bearer" = [])))]
#[get("/v1/pricing/runs/{id}/report.html")]
pub async fn report(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
    Caller(principal): Caller,
) -> Result<HttpResponse, ApiError> {
    let row = read_run(&state, &req, &principal).await?;
    let id = row.id;
    let text = match (row.status.as_str(), &row.result) {
        (pricing_runs::SUCCEEDED, Some(text)) => text,
        (run_status, _) => {
            return Err(ApiError::Conflict {
                code: "run_not_succeeded",
                detail: format!(
                    "pricing run {id} is {run_status}: its report is drawn once it has succeeded"
                ),
            });
        }
    };
    let results: actuarial::PricingResults = serde_json::from_str(text)
        .map_err(|e| ApiError::Internal(format!("stored pricing result: {e}")))?;
    let page = actuarial::html::pricing_report(&results);
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page))
}

/// Cancels a running run: it is `cancelled` at once, its computation stops
/// at its next check between units of work, and its slot is free for
/// another run. No Idempotency-Key: like the start of a run, a cancel
/// stores nothing a retry could duplicate, and a repeated cancel changes
/// nothing (409, the run has ended).
#[utoipa::path(post, path = "/v1/pricing/runs/{id}/cancel", tag = "pricing",
    params(("id" = i64, Path, minimum = 1, description = "Run id")),
    responses((status = 200, description = "Cancelled; the run as it now stands", body = RunStatus),
        (status = 404, description = "No such run"),
        (status = 409, description = "run_not_running: the run has already ended (succeeded, failed, interrupted, cancelled or timed out)")),
    security(("bearer" = [])))]
#[post("/v1/pricing/runs/{id}/cancel")]
pub async fn cancel(
    state: web::Data<Arc<AppState>>,
    req: HttpRequest,
    Caller(principal): Caller,
) -> Result<HttpResponse, ApiError> {
    authorize(&principal, Action::CancelPricingRun)?;
    let id = path_id(&req, "id")?;
    let actor = principal.actor();
    let row = state
        .run(move |conn, state| pricing_runs::cancel(conn, &state.context(&actor), id))
        .await?;
    state.pricing.stop(id, Stop::Cancelled);
    let body = super::sorted_json(&RunStatus {
        run: row,
        progress: None,
        results: None,
    })?;
    Ok(HttpResponse::Ok().json(body))
}
