//! Authorised treatment courses: the request decided and stored, follow-up
//! assessments, cancels and the reads. Each write is one write transaction
//! with its idempotency key and its audit event.
//!
//! `rows` holds the tables' rows and puts a course's state together from
//! them (also for the claim writer's snapshot), `view` the course as shown.

mod cover;
pub(crate) mod rows;
mod view;

pub use cover::coverage_on;
pub use rows::{AuthorizationRow, CancelRow, FollowupRow};
pub use view::{AuthorizationView, CancelView, CourseCover, CycleView, FollowupView};

use std::collections::BTreeMap;

use chrono::NaiveDate;
use diesel::prelude::*;

use crate::audit;
use crate::db::{DbConn, write_transaction};
use crate::domain::ValidationErrors;
use crate::domain::adjudication::MemberCover;
use crate::domain::authorization::{
    CourseRequest, CourseState, CourseStatus, OtherCourse, decide_authorization,
};
use crate::domain::authorization_request::{
    AssessmentSubmission, AuthorizationSubmission, CancelSubmission, check_start_date,
    parse_authorization, validate_assessment, validate_cancel,
};
use crate::domain::canonical::canonical_json;
use crate::domain::product::Product;
use crate::error::StoreError;
use crate::schema::{authorization_cancels, authorization_followups, authorizations, members};
use crate::store::enrollment::enrollment_rows;
use crate::store::{Recorded, WriteContext, idempotency, products};

use rows::{CourseRows, CoursesOf, NewAuthorization, NewCancel, NewFollowup, StoredBody};
use view::Recorded as RecordedParts;

/// Decides and stores a request for a course, against the product whose
/// period contains its start date. A denial is stored and answered too
/// (201, status `denied` with its reasons); only invalid input is refused.
pub fn request(
    conn: &mut DbConn,
    ctx: &WriteContext<'_>,
    idempotency_key: &str,
    submission: &AuthorizationSubmission,
) -> Result<Recorded<AuthorizationView>, StoreError> {
    let today = ctx.today_china();
    let valid = parse_authorization(submission).map_err(StoreError::Validation)?;
    let canonical = canonical_json(&serde_json::to_value(&valid)?);
    write_transaction(conn, |conn| {
        idempotency::once(
            conn,
            ctx,
            idempotency_key,
            "authorization",
            &canonical,
            |conn| {
                check_start_date(&valid, today).map_err(StoreError::Validation)?;
                decide_and_store(conn, ctx, &valid, today)
            },
        )
    })
}

/// Inside the write transaction: decides the request against what is
/// recorded, stores it and its audit event, and returns its view.
fn decide_and_store(
    conn: &mut DbConn,
    ctx: &WriteContext<'_>,
    valid: &CourseRequest,
    today: NaiveDate,
) -> Result<AuthorizationView, StoreError> {
    let member_id = valid.member_id;
    ensure_member_known(conn, member_id)?;
    let enrolled = enrollment_on(conn, member_id, valid.start_date)?;
    let others: Vec<OtherCourse> = read_courses(conn, CoursesOf::Member(member_id))?
        .values()
        .map(OtherCourse::of)
        .collect();
    let decision = decide_authorization(
        enrolled.as_ref().map(|(product, cover)| (product, cover)),
        &others,
        valid,
    );
    let product_id = enrolled.as_ref().map_or("", |(p, _)| p.id.as_str());
    let body = serde_json::to_string(&StoredBody {
        request: valid.clone(),
        decision: decision.clone(),
    })?;
    let id: i64 = diesel::insert_into(authorizations::table)
        .values(NewAuthorization {
            member_id,
            product_id,
            drug: valid.drug.as_str(),
            start_date: valid.start_date,
            decided_status: decision.status.as_str(),
            body: &body,
            requested_by: ctx.actor,
            created_at: audit::truncate_to_micros(ctx.now.naive_utc()),
        })
        .returning(authorizations::id)
        .get_result(conn)?;
    audit::append(
        conn,
        &ctx.keys.audit,
        ctx.now,
        ctx.actor,
        "authorization.decided",
        &format!("authorization:{id}"),
        &serde_json::json!({
            "authorization_id": id,
            "member_id": member_id,
            "product_id": product_id,
            "drug": valid.drug.as_str(),
            "status": decision.status,
            "reasons": decision.reasons,
            "cycles_requested": decision.cycles_requested,
            "cycles_authorized": decision.cycles_authorized,
            "start_date": valid.start_date,
        }),
    )?;
    view_on(conn, id, today)
}

fn ensure_member_known(conn: &mut DbConn, member_id: i64) -> Result<(), StoreError> {
    let known = members::table
        .find(member_id)
        .select(members::id)
        .first::<i64>(conn)
        .optional()?;
    match known {
        Some(_) => Ok(()),
        None => Err(StoreError::Validation(ValidationErrors::unknown_member(
            member_id,
        ))),
    }
}

/// The member's enrollment in the product whose period contains `day`, with
/// its cover, if there is one.
fn enrollment_on(
    conn: &mut DbConn,
    member_id: i64,
    day: NaiveDate,
) -> Result<Option<(Product, MemberCover)>, StoreError> {
    for row in enrollment_rows(conn, member_id)? {
        let product = products::current(conn, &row.product_id)?;
        if product.product.period_contains(day) {
            return Ok(Some((product.product, row.cover()?)));
        }
    }
    Ok(None)
}

/// Records an efficacy assessment on a course that is not denied, dated
/// neither before its start nor after today (China time).
pub fn record_followup(
    conn: &mut DbConn,
    ctx: &WriteContext<'_>,
    idempotency_key: &str,
    authorization_id: i64,
    submission: &AssessmentSubmission,
) -> Result<Recorded<AuthorizationView>, StoreError> {
    let today = ctx.today_china();
    let canonical = canonical_json(&serde_json::json!({
        "authorization_id": authorization_id,
        "assessment": submission,
    }));
    write_transaction(conn, |conn| {
        idempotency::once(conn, ctx, idempotency_key, "followup", &canonical, |conn| {
            let state = one_course(conn, authorization_id)?;
            if state.course.decision.status == CourseStatus::Denied {
                return Err(StoreError::conflict(
                    "authorization_denied",
                    format!(
                        "authorisation {authorization_id} was denied: it has no course to follow"
                    ),
                ));
            }
            let assessment =
                validate_assessment(submission, state.course.request.start_date, today)
                    .map_err(StoreError::Validation)?;
            diesel::insert_into(authorization_followups::table)
                .values(NewFollowup {
                    authorization_id,
                    assessed_on: assessment.assessed_on,
                    response: assessment.response.as_str(),
                    recorded_by: ctx.actor,
                    created_at: audit::truncate_to_micros(ctx.now.naive_utc()),
                })
                .execute(conn)?;
            audit::append(
                conn,
                &ctx.keys.audit,
                ctx.now,
                ctx.actor,
                "authorization.followup_recorded",
                &format!("authorization:{authorization_id}"),
                &serde_json::json!({
                    "authorization_id": authorization_id,
                    "member_id": state.course.member_id,
                    "assessed_on": assessment.assessed_on,
                    "response": assessment.response,
                }),
            )?;
            view_on(conn, authorization_id, today)
        })
    })
}

/// Cancels an active course, dated today (China time): dispensings up to
/// and including today stay covered, while reads show it `cancelled` from
/// now. Anything but `active` today (a progression recorded today counts) is
/// 409 `not_active`.
pub fn cancel(
    conn: &mut DbConn,
    ctx: &WriteContext<'_>,
    idempotency_key: &str,
    authorization_id: i64,
    submission: &CancelSubmission,
) -> Result<Recorded<AuthorizationView>, StoreError> {
    let today = ctx.today_china();
    let reason = validate_cancel(submission).map_err(StoreError::Validation)?;
    let canonical = canonical_json(&serde_json::json!({
        "authorization_id": authorization_id,
        "reason": reason,
    }));
    write_transaction(conn, |conn| {
        idempotency::once(conn, ctx, idempotency_key, "cancel", &canonical, |conn| {
            let state = one_course(conn, authorization_id)?;
            let status = state.status_on(today);
            if status != CourseStatus::Active {
                return Err(StoreError::conflict(
                    "not_active",
                    format!(
                        "authorisation {authorization_id} is {}, not active",
                        status.as_str()
                    ),
                ));
            }
            diesel::insert_into(authorization_cancels::table)
                .values(NewCancel {
                    authorization_id,
                    cancelled_on: today,
                    reason: &reason,
                    cancelled_by: ctx.actor,
                    created_at: audit::truncate_to_micros(ctx.now.naive_utc()),
                })
                .execute(conn)?;
            audit::append(
                conn,
                &ctx.keys.audit,
                ctx.now,
                ctx.actor,
                "authorization.cancelled",
                &format!("authorization:{authorization_id}"),
                &serde_json::json!({
                    "authorization_id": authorization_id,
                    "member_id": state.course.member_id,
                    "cancelled_on": today,
                    "reason": reason,
                }),
            )?;
            view_on(conn, authorization_id, today)
        })
    })
}

/// The member a course is for (404 when there is no such course), for the
/// policy.
pub fn member_of(conn: &mut DbConn, authorization_id: i64) -> Result<i64, StoreError> {
    authorizations::table
        .find(authorization_id)
        .select(authorizations::member_id)
        .first::<i64>(conn)
        .optional()?
        .ok_or_else(|| StoreError::not_found("authorization", authorization_id))
}

/// The states of courses by id, with the cycles paid on `except_claim` left
/// out (an appeal decides that claim again).
pub(crate) fn course_states(
    conn: &mut DbConn,
    ids: &[i64],
    except_claim: Option<i64>,
) -> Result<BTreeMap<i64, CourseState>, StoreError> {
    rows::read_courses(conn, CoursesOf::Ids(ids), except_claim)?.states()
}

pub(crate) fn read_courses(
    conn: &mut DbConn,
    which: CoursesOf<'_>,
) -> Result<BTreeMap<i64, CourseState>, StoreError> {
    rows::read_courses(conn, which, None)?.states()
}

fn one_course(conn: &mut DbConn, authorization_id: i64) -> Result<CourseState, StoreError> {
    course_states(conn, &[authorization_id], None)?
        .remove(&authorization_id)
        .ok_or_else(|| StoreError::not_found("authorization", authorization_id))
}

/// One course as of `as_of` (the China date of the read).
pub fn view_on(
    conn: &mut DbConn,
    authorization_id: i64,
    as_of: NaiveDate,
) -> Result<AuthorizationView, StoreError> {
    let rows = rows::read_courses(conn, CoursesOf::Ids(&[authorization_id]), None)?;
    views(conn, &rows, as_of)?
        .pop()
        .ok_or_else(|| StoreError::not_found("authorization", authorization_id))
}

/// A member's courses, oldest first, as of `as_of`.
pub fn list_for_member(
    conn: &mut DbConn,
    member_id: i64,
    as_of: NaiveDate,
) -> Result<Vec<AuthorizationView>, StoreError> {
    crate::store::enrollment::member_row(conn, member_id)?;
    let rows = rows::read_courses(conn, CoursesOf::Member(member_id), None)?;
    views(conn, &rows, as_of)
}

fn views(
    conn: &mut DbConn,
    rows: &CourseRows,
    as_of: NaiveDate,
) -> Result<Vec<AuthorizationView>, StoreError> {
    let states = rows.states()?;
    let mut products: BTreeMap<String, Option<Product>> = BTreeMap::new();
    let mut views = Vec::with_capacity(rows.authorizations.len());
    for row in &rows.authorizations {
        let state = states
            .get(&row.id)
            .ok_or_else(|| StoreError::integrity("a course read without its state"))?;
        if !products.contains_key(&row.product_id) {
            let product = match products::current(conn, &row.product_id) {
                Ok(stored) => Some(stored.product),
                Err(StoreError::NotFound { .. }) => None,
                Err(e) => return Err(e),
            };
            products.insert(row.product_id.clone(), product);
        }
        let recorded = RecordedParts {
            row,
            followups: rows
                .followups
                .iter()
                .filter(|f| f.authorization_id == row.id)
                .collect(),
            cancel: rows.cancels.iter().find(|c| c.authorization_id == row.id),
        };
        let product = products.get(&row.product_id).and_then(Option::as_ref);
        views.push(AuthorizationView::build(state, recorded, product, as_of)?);
    }
    Ok(views)
}
