//! Treatment courses on the coverage screen: each active course, and the
//! case reserve of the member's courses per product.

use chrono::NaiveDate;

use crate::db::DbConn;
use crate::domain::authorization::{CourseState, CourseStatus, case_reserve};
use crate::domain::claim::BenefitKind;
use crate::domain::codes::Icd10Code;
use crate::domain::money::Fen;
use crate::domain::product::Product;
use crate::error::StoreError;
use crate::store::enrollment::{CoverageView, coverage, enrollment_rows};
use crate::store::products;

use super::rows::CoursesOf;
use super::{CourseCover, read_courses};

/// The coverage screen on `today` (China date): [`coverage`] with each
/// active treatment course and the case reserve per product.
pub fn coverage_on(
    conn: &mut DbConn,
    member_id: i64,
    today: NaiveDate,
) -> Result<CoverageView, StoreError> {
    let mut view = coverage(conn, member_id)?;
    for (row, cover) in enrollment_rows(conn, member_id)?
        .iter()
        .zip(&mut view.products)
    {
        let product = products::current(conn, &row.product_id)?;
        let limit_left = cover
            .benefits
            .iter()
            .find(|b| b.benefit == BenefitKind::SpecialtyDrug)
            .map_or(Fen::ZERO, |b| b.limit_left);
        let (courses, reserve) = course_covers(
            conn,
            member_id,
            &product.product,
            &row.declared()?,
            limit_left,
            today,
        )?;
        cover.courses = courses;
        cover.case_reserve = reserve;
    }
    Ok(view)
}

/// The member's courses under `product` that are active on `today`, for the
/// coverage screen, and their case reserve capped at the drug limit left.
fn course_covers(
    conn: &mut DbConn,
    member_id: i64,
    product: &Product,
    declared: &[Icd10Code],
    limit_left: Fen,
    today: NaiveDate,
) -> Result<(Vec<CourseCover>, Fen), StoreError> {
    let Some(drugs) = &product.specialty_drug else {
        return Ok((Vec::new(), Fen::ZERO));
    };
    let states: Vec<CourseState> = read_courses(conn, CoursesOf::Member(member_id))?
        .into_values()
        .filter(|state| state.course.product_id == product.id)
        .collect();
    let rate_of = |state: &CourseState| {
        if product.preexisting_applies(&state.course.request.diagnosis, declared) {
            drugs.terms.coinsurance_preexisting
        } else {
            drugs.terms.coinsurance
        }
    };
    let reserve = case_reserve(
        states.iter().map(|state| (state, rate_of(state))),
        limit_left,
        today,
    )
    .map_err(|e| StoreError::integrity(format!("case reserve: {e}")))?;
    let covers = states
        .iter()
        .filter(|state| state.status_on(today) == CourseStatus::Active)
        .map(|state| CourseCover::of(state, product, rate_of(state), today))
        .collect::<Result<_, _>>()?;
    Ok((covers, reserve))
}
