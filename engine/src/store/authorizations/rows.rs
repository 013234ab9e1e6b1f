//! The rows of the course tables and the one way a course's state is put
//! together from them (its row, assessments, cancel and the cycles paid on
//! non-reversed claims), whichever backend or statement read them.

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::db::DbConn;
use crate::domain::authorization::{
    Assessment, Course, CourseDecision, CourseRequest, CourseState, Response,
};
use crate::error::StoreError;
use crate::schema::{
    authorization_cancels, authorization_followups, authorizations, paid_items, reversals,
};

/// Deserialize: the claim writer on PostgreSQL reads these rows as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Deserialize)]
#[diesel(table_name = authorizations)]
pub struct AuthorizationRow {
    pub id: i64,
    pub member_id: i64,
    pub product_id: String,
    pub drug: String,
    pub start_date: NaiveDate,
    pub decided_status: String,
    pub body: String,
    pub requested_by: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Deserialize)]
#[diesel(table_name = authorization_followups)]
pub struct FollowupRow {
    pub id: i64,
    pub authorization_id: i64,
    pub assessed_on: NaiveDate,
    pub response: String,
    pub recorded_by: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Deserialize)]
#[diesel(table_name = authorization_cancels)]
pub struct CancelRow {
    pub authorization_id: i64,
    pub cancelled_on: NaiveDate,
    pub reason: String,
    pub cancelled_by: String,
    pub created_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = authorizations)]
pub(crate) struct NewAuthorization<'a> {
    pub member_id: i64,
    pub product_id: &'a str,
    pub drug: &'a str,
    pub start_date: NaiveDate,
    pub decided_status: &'a str,
    pub body: &'a str,
    pub requested_by: &'a str,
    pub created_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = authorization_followups)]
pub(crate) struct NewFollowup<'a> {
    pub authorization_id: i64,
    pub assessed_on: NaiveDate,
    pub response: &'a str,
    pub recorded_by: &'a str,
    pub created_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = authorization_cancels)]
pub(crate) struct NewCancel<'a> {
    pub authorization_id: i64,
    pub cancelled_on: NaiveDate,
    pub reason: &'a str,
    pub cancelled_by: &'a str,
    pub created_at: NaiveDateTime,
}

/// What the `body` column holds: the request as validated and its decision.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredBody {
    pub request: CourseRequest,
    pub decision: CourseDecision,
}

impl AuthorizationRow {
    pub fn course(&self) -> Result<Course, StoreError> {
        let body: StoredBody = serde_json::from_str(&self.body)?;
        Ok(Course {
            id: self.id,
            member_id: self.member_id,
            product_id: self.product_id.clone(),
            request: body.request,
            decision: body.decision,
        })
    }
}

impl FollowupRow {
    pub fn assessment(&self) -> Result<Assessment, StoreError> {
        let response = Response::parse(&self.response).ok_or_else(|| {
            StoreError::integrity(format!(
                "assessment of unknown response {:?}",
                self.response
            ))
        })?;
        Ok(Assessment {
            assessed_on: self.assessed_on,
            response,
        })
    }
}

/// Everything recorded about some courses, as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CourseRows {
    pub authorizations: Vec<AuthorizationRow>,
    pub followups: Vec<FollowupRow>,
    pub cancels: Vec<CancelRow>,
    /// (authorisation, cycle) paid on a non-reversed claim.
    pub dispensed: Vec<(i64, i32)>,
}

impl CourseRows {
    /// The state of each course, by id.
    pub fn states(&self) -> Result<BTreeMap<i64, CourseState>, StoreError> {
        let mut states = BTreeMap::new();
        for row in &self.authorizations {
            let state = CourseState {
                course: row.course()?,
                assessments: Vec::new(),
                cancelled_on: None,
                dispensed: Default::default(),
            };
            states.insert(row.id, state);
        }
        for followup in &self.followups {
            let assessment = followup.assessment()?;
            state_of(&mut states, followup.authorization_id)?
                .assessments
                .push(assessment);
        }
        for cancel in &self.cancels {
            state_of(&mut states, cancel.authorization_id)?.cancelled_on =
                Some(cancel.cancelled_on);
        }
        for (id, cycle) in &self.dispensed {
            let cycle = u32::try_from(*cycle)
                .map_err(|_| StoreError::integrity(format!("cycle {cycle} out of range")))?;
            state_of(&mut states, *id)?.dispensed.insert(cycle);
        }
        Ok(states)
    }
}

fn state_of(
    states: &mut BTreeMap<i64, CourseState>,
    id: i64,
) -> Result<&mut CourseState, StoreError> {
    states.get_mut(&id).ok_or_else(|| {
        StoreError::integrity(format!(
            "a record of authorisation {id}, which was not read"
        ))
    })
}

/// Which courses to read.
pub(crate) enum CoursesOf<'a> {
    Ids(&'a [i64]),
    Member(i64),
    /// Every course decided against a product (the experience study).
    Product(&'a str),
}

/// Reads courses with portable queries; the cycles paid on `except_claim`
/// are left out (an appeal decides that claim again).
pub(crate) fn read_courses(
    conn: &mut DbConn,
    which: CoursesOf<'_>,
    except_claim: Option<i64>,
) -> Result<CourseRows, StoreError> {
    let authorizations: Vec<AuthorizationRow> = match which {
        CoursesOf::Ids([]) => Vec::new(),
        CoursesOf::Ids(ids) => authorizations::table
            .filter(authorizations::id.eq_any(ids))
            .order(authorizations::id.asc())
            .select(AuthorizationRow::as_select())
            .load(conn)?,
        CoursesOf::Member(member_id) => authorizations::table
            .filter(authorizations::member_id.eq(member_id))
            .order(authorizations::id.asc())
            .select(AuthorizationRow::as_select())
            .load(conn)?,
        CoursesOf::Product(product_id) => authorizations::table
            .filter(authorizations::product_id.eq(product_id))
            .order(authorizations::id.asc())
            .select(AuthorizationRow::as_select())
            .load(conn)?,
    };
    if authorizations.is_empty() {
        return Ok(CourseRows::default());
    }
    let ids: Vec<i64> = authorizations.iter().map(|row| row.id).collect();
    let followups = authorization_followups::table
        .filter(authorization_followups::authorization_id.eq_any(&ids))
        .order(authorization_followups::id.asc())
        .select(FollowupRow::as_select())
        .load(conn)?;
    let cancels = authorization_cancels::table
        .filter(authorization_cancels::authorization_id.eq_any(&ids))
        .select(CancelRow::as_select())
        .load(conn)?;
    let reversed = reversals::table.select(reversals::claim_id);
    let mut paid = paid_items::table
        .filter(paid_items::authorization_id.eq_any(&ids))
        .filter(paid_items::claim_id.ne_all(reversed))
        .select((paid_items::authorization_id, paid_items::cycle))
        .into_boxed();
    if let Some(claim_id) = except_claim {
        paid = paid.filter(paid_items::claim_id.ne(claim_id));
    }
    let dispensed = paid
        .load::<(Option<i64>, Option<i32>)>(conn)?
        .into_iter()
        .filter_map(|(id, cycle)| Some((id?, cycle?)))
        .collect();
    Ok(CourseRows {
        authorizations,
        followups,
        cancels,
        dispensed,
    })
}
