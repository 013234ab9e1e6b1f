//! The case reserve of a product's treatment courses as of the study's date, by pricing group:
//! each member's courses reserved by the rule of the coverage screen
//! ([`case_reserve`]: each authorised cycle not dispensed whose last day is no more than 30
//! days before the date, at the coinsurance rate the course's diagnosis gets, the deductible
//! ignored), capped at the member's drug limit left after the payments made by the date.
//!
//! The database does the per-row work: one row per member with a course (group, declared
//! conditions, drug benefit paid) and one per cycle dispensed; the courses are the product's
//! authorisations with their follow-ups and cancels, never its claims.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text, Timestamp};

use super::{PricingGroup, pricing_group};
use crate::db::DbConn;
use crate::domain::authorization::{CourseState, case_reserve};
use crate::domain::codes::Icd10Code;
use crate::domain::money::Fen;
use crate::domain::product::Product;
use crate::error::StoreError;
use crate::store::authorizations::read_courses;
use crate::store::authorizations::rows::CoursesOf;

/// The case reserve of one pricing group's members as of the study's date.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseReserveCell {
    pub group: PricingGroup,
    /// Members with at least one course reserved for.
    pub members: i64,
    /// Courses with a reserve of their own (before the members' caps).
    pub authorizations: i64,
    /// After each member's cap at the drug limit left.
    pub case_reserve_fen: i64,
}

#[derive(QueryableByName)]
struct CourseMemberRow {
    #[diesel(sql_type = BigInt)]
    member_id: i64,
    #[diesel(sql_type = Text)]
    age_band: String,
    #[diesel(sql_type = Text)]
    sex: String,
    #[diesel(sql_type = Integer)]
    preexisting: i32,
    #[diesel(sql_type = Text)]
    declared_conditions: String,
    #[diesel(sql_type = BigInt)]
    drug_paid_fen: i64,
}

#[derive(QueryableByName)]
struct DispensedRow {
    #[diesel(sql_type = BigInt)]
    authorization_id: i64,
    #[diesel(sql_type = Integer)]
    cycle: i32,
}

/// Reads and computes the case reserve by group. `queries` are the study's (see
/// `sql::Queries`); `cutoff` is the first instant after the as-of date.
pub(super) fn read(
    conn: &mut DbConn,
    product: &Product,
    queries: &super::sql::Queries,
    as_of: NaiveDate,
    cutoff: NaiveDateTime,
) -> Result<Vec<CaseReserveCell>, StoreError> {
    let Some(drugs) = &product.specialty_drug else {
        return Ok(Vec::new());
    };
    let mut states = read_courses(conn, CoursesOf::Product(&product.id))?;
    if states.is_empty() {
        return Ok(Vec::new());
    }
    macro_rules! on_backend {
        ($conn:expr, |$c:ident| $body:expr) => {
            match $conn {
                DbConn::Postgres($c) => $body,
                DbConn::Sqlite($c) => $body,
            }
        };
    }
    let members: Vec<CourseMemberRow> =
        on_backend!(conn, |c| diesel::sql_query(&queries.course_members)
            .bind::<Text, _>(&product.id)
            .bind::<Timestamp, _>(cutoff)
            .load(c)?);
    let dispensed: Vec<DispensedRow> = on_backend!(conn, |c| diesel::sql_query(&queries.dispensed)
        .bind::<Text, _>(&product.id)
        .bind::<Timestamp, _>(cutoff)
        .load(c)?);
    // The cycles dispensed as of the date, not as recorded since.
    for state in states.values_mut() {
        state.dispensed = BTreeSet::new();
    }
    for row in &dispensed {
        let cycle = u32::try_from(row.cycle)
            .map_err(|_| StoreError::integrity(format!("cycle {} out of range", row.cycle)))?;
        if let Some(state) = states.get_mut(&row.authorization_id) {
            state.dispensed.insert(cycle);
        }
    }
    by_group(product, drugs, &states, members, as_of)
}

/// Each member's courses reserved and capped, summed by the member's pricing group.
fn by_group(
    product: &Product,
    drugs: &crate::domain::product::DrugBenefit,
    states: &BTreeMap<i64, CourseState>,
    members: Vec<CourseMemberRow>,
    as_of: NaiveDate,
) -> Result<Vec<CaseReserveCell>, StoreError> {
    let mut by_member: BTreeMap<i64, Vec<&CourseState>> = BTreeMap::new();
    for state in states.values() {
        by_member
            .entry(state.course.member_id)
            .or_default()
            .push(state);
    }
    let mut cells: BTreeMap<PricingGroup, CaseReserveCell> = BTreeMap::new();
    let money = |e| StoreError::integrity(format!("case reserve: {e}"));
    for row in members {
        let Some(courses) = by_member.get(&row.member_id) else {
            continue;
        };
        let declared: Vec<Icd10Code> = serde_json::from_str(&row.declared_conditions)?;
        let rate_of = |state: &CourseState| {
            if product.preexisting_applies(&state.course.request.diagnosis, &declared) {
                drugs.terms.coinsurance_preexisting
            } else {
                drugs.terms.coinsurance
            }
        };
        let limit_left = Fen(drugs.terms.annual_limit.0 - row.drug_paid_fen).max(Fen::ZERO);
        let reserve = case_reserve(
            courses.iter().map(|state| (*state, rate_of(state))),
            limit_left,
            as_of,
        )
        .map_err(money)?;
        let reserved = courses
            .iter()
            .map(|state| state.reserve(rate_of(state), as_of).map_err(money))
            .collect::<Result<Vec<Fen>, _>>()?
            .into_iter()
            .filter(|own| own.0 > 0)
            .count() as i64;
        if reserved == 0 {
            continue;
        }
        let group = pricing_group(row.age_band, row.sex, row.preexisting);
        let cell = cells.entry(group.clone()).or_insert(CaseReserveCell {
            group,
            members: 0,
            authorizations: 0,
            case_reserve_fen: 0,
        });
        cell.members += 1;
        cell.authorizations += reserved;
        cell.case_reserve_fen += reserve.0;
    }
    Ok(cells.into_values().collect())
}
