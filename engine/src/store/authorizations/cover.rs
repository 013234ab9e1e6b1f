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
use crate::store::enrollment::{CoverageView, coverage_with_rows};

use super::rows::CoursesOf;
use super::{CourseCover, read_courses};

/// The coverage screen on `today` (China date): the member's
/// [`coverage`](crate::store::enrollment::coverage) with each
/// active treatment course and the case reserve per product.
pub fn coverage_on(
    conn: &mut DbConn,
    member_id: i64,
    today: NaiveDate,
) -> Result<CoverageView, StoreError> {
    let (mut view, sources) = coverage_with_rows(conn, member_id)?;
    // Only a product with a drug benefit can hold courses: a member
    // without one is answered without reading the course tables.
    let any_drug_benefit = sources
        .iter()
        .any(|(_, product)| product.product.specialty_drug.is_some());
    let member_courses: Vec<CourseState> = if any_drug_benefit {
        read_courses(conn, CoursesOf::Member(member_id))?
            .into_values()
            .collect()
    } else {
        Vec::new()
    };
    for ((row, product), cover) in sources.iter().zip(&mut view.products) {
        let limit_left = cover
            .benefits
            .iter()
            .find(|b| b.benefit == BenefitKind::SpecialtyDrug)
            .map_or(Fen::ZERO, |b| b.limit_left);
        let (courses, reserve) = course_covers(
            &member_courses,
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
    member_courses: &[CourseState],
    product: &Product,
    declared: &[Icd10Code],
    limit_left: Fen,
    today: NaiveDate,
) -> Result<(Vec<CourseCover>, Fen), StoreError> {
    let Some(drugs) = &product.specialty_drug else {
        return Ok((Vec::new(), Fen::ZERO));
    };
    let states: Vec<&CourseState> = member_courses
        .iter()
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
        states.iter().map(|&state| (state, rate_of(state))),
        limit_left,
        today,
    )
    .map_err(|e| StoreError::integrity(format!("case reserve: {e}")))?;
    let covers = states
        .iter()
        .filter(|state| state.status_on(today) == CourseStatus::Active)
        .map(|&state| CourseCover::of(state, product, rate_of(state), today))
        .collect::<Result<_, _>>()?;
    Ok((covers, reserve))
}
