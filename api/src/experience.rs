//! The experience study: the store's aggregates turned into the pure study's input, against a
//! pricing basis. Shared by `puhui experience`, `puhui renew` and
//! `GET /v1/products/{id}/experience`.
//!
//! The basis is the scenario the product names (`pricing_scenario`, checked against the hash
//! stored with the product version: `basis.rs`); for a product that names none, the demo's
//! city-wide scenario (`scenarios/city-default.toml`, built in). The command line may give
//! another basis instead.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use actuarial::experience::{
    Basis, CaseReserveRow, ClaimInput, GroupExposure, Study, StudyInput, study,
};
use actuarial::reserve::Triangle;
use actuarial::{BuiltinTables, Scenario};
use chrono::{Datelike, NaiveDate};
use engine::DbConn;
use engine::StoreError;
use engine::store::experience::{self, ExperienceData};
use engine::store::products;

use crate::basis::{self, BasisError};

pub const DEFAULT_BASIS_NAME: &str = "scenarios/city-default.toml";
const DEFAULT_BASIS_TOML: &str = include_str!("../../scenarios/city-default.toml");

/// The default basis, built once (its payout laws take a moment).
pub fn default_basis() -> Result<&'static Basis, String> {
    static BASIS: OnceLock<Result<Basis, String>> = OnceLock::new();
    BASIS
        .get_or_init(|| {
            let scenario =
                Scenario::from_toml_str(DEFAULT_BASIS_TOML, DEFAULT_BASIS_NAME, &BuiltinTables)
                    .map_err(|e| e.to_string())?;
            Basis::from_scenario(&scenario)
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The basis of a product: its own pricing scenario, or the default when it names none.
/// Bases are kept by the scenario's hash, so a server builds each one once.
pub fn product_basis(conn: &mut DbConn, product_id: &str) -> Result<Arc<Basis>, BasisError> {
    type Cache = Mutex<HashMap<String, Arc<Basis>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let stored = products::current(conn, product_id)?;
    let Some((text, scenario)) = basis::product_basis(conn, &stored)? else {
        let basis = default_basis().map_err(|message| BasisError::Invalid {
            product: product_id.to_string(),
            message,
        })?;
        return Ok(Arc::new(basis.clone()));
    };
    let key = text.sha256();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(hit) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(Arc::clone(hit));
    }
    let built =
        Arc::new(
            Basis::from_scenario(&scenario).map_err(|message| BasisError::Invalid {
                product: product_id.to_string(),
                message,
            })?,
        );
    let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
    if map.len() >= 64 {
        map.clear();
    }
    map.insert(key, Arc::clone(&built));
    Ok(built)
}

/// Reads the aggregates and computes the study.
pub fn run(
    conn: &mut DbConn,
    product_id: &str,
    as_of: NaiveDate,
    basis: &Basis,
) -> Result<Study, StoreError> {
    let data = experience::read(conn, product_id, as_of)?;
    Ok(study(&study_input(&data), basis))
}

/// The study against the product's own basis.
pub fn run_on_product_basis(
    conn: &mut DbConn,
    product_id: &str,
    as_of: NaiveDate,
) -> Result<Study, BasisError> {
    let basis = product_basis(conn, product_id)?;
    Ok(run(conn, product_id, as_of, &basis)?)
}

/// Months since year 0, so that month differences are subtractions.
fn month_number(date: NaiveDate) -> i64 {
    i64::from(date.year()) * 12 + i64::from(date.month0())
}

fn month_label(number: i64) -> String {
    format!(
        "{:04}-{:02}",
        number.div_euclid(12),
        number.rem_euclid(12) + 1
    )
}

fn parse_month(label: &str) -> Option<i64> {
    let (y, m) = label.split_once('-')?;
    let (y, m): (i64, i64) = (y.parse().ok()?, m.parse().ok()?);
    (1..=12).contains(&m).then_some(y * 12 + m - 1)
}

/// Exposure, claims and the triangle in the study's terms: member-years are days in force
/// (cover start to the as-of date or the period end) over the days of the period, so a member
/// covered all year is one member-year; amounts go from fen to CNY.
pub fn study_input(data: &ExperienceData) -> StudyInput {
    let product = &data.product.product;
    let period_days = (product.period_end - product.period_start).num_days() + 1;
    let end = data.as_of.min(product.period_end);
    let per_day = 1.0 / period_days.max(1) as f64;

    let mut groups: BTreeMap<String, GroupExposure> = BTreeMap::new();
    let mut month_exposure: BTreeMap<String, f64> = BTreeMap::new();
    for cell in &data.enrolment {
        let start = cell.coverage_start.max(product.period_start);
        if start > end {
            continue;
        }
        let members = cell.members as f64;
        let days = (end - start).num_days() + 1;
        let g = groups
            .entry(cell.group.id())
            .or_insert_with(|| GroupExposure {
                group: cell.group.id(),
                age_band: cell.group.age_band.clone(),
                sex: cell.group.sex.clone(),
                preexisting: cell.group.preexisting,
                members: 0,
                member_years: 0.0,
            });
        g.members += u64::try_from(cell.members).unwrap_or(0);
        g.member_years += members * days as f64 * per_day;
    }
    for ((_, month), member_years) in exposure_by_group_month(data) {
        *month_exposure.entry(month).or_default() += member_years;
    }

    let claims = data
        .claims
        .iter()
        .map(|c| ClaimInput {
            group: c.group.id(),
            benefit: c.benefit.clone(),
            service_month: c.service_month.clone(),
            claims: u64::try_from(c.claims).unwrap_or(0),
            paid_claims: u64::try_from(c.paid_claims).unwrap_or(0),
            paid: c.paid_fen as f64 / 100.0,
            paid_squared: c.paid_fen_squared / 10_000.0,
        })
        .collect();

    StudyInput {
        product_id: product.id.clone(),
        as_of: data.as_of.to_string(),
        premium: data.product.product.premium.0 as f64 / 100.0,
        groups: groups.into_values().collect(),
        claims,
        triangle: payment_triangle(data, end),
        month_exposure,
        case_reserves: data
            .case_reserves
            .iter()
            .map(|c| CaseReserveRow {
                group: c.group.id(),
                members: u64::try_from(c.members).unwrap_or(0),
                authorizations: u64::try_from(c.authorizations).unwrap_or(0),
                case_reserve: c.case_reserve_fen as f64 / 100.0,
            })
            .collect(),
    }
}

/// Member-years in force per pricing group and calendar month (days in force in the month,
/// from cover start to the as-of date or the period end, over the days of the period).
pub fn exposure_by_group_month(data: &ExperienceData) -> BTreeMap<(String, String), f64> {
    let product = &data.product.product;
    let period_days = (product.period_end - product.period_start).num_days() + 1;
    let end = data.as_of.min(product.period_end);
    let per_day = 1.0 / period_days.max(1) as f64;
    let mut out: BTreeMap<(String, String), f64> = BTreeMap::new();
    for cell in &data.enrolment {
        let members = cell.members as f64;
        let mut month_start = cell.coverage_start.max(product.period_start);
        while month_start <= end {
            let next = month_start
                .with_day(1)
                .and_then(|d| d.checked_add_months(chrono::Months::new(1)))
                .unwrap_or(end + chrono::Duration::days(1));
            let month_end = (next - chrono::Duration::days(1)).min(end);
            let days = (month_end - month_start).num_days() + 1;
            *out.entry((cell.group.id(), month_label(month_number(month_start))))
                .or_default() += members * days as f64 * per_day;
            month_start = next;
        }
    }
    out
}

/// The paid triangle by service month: every month from the period start to the as-of date is
/// an origin, developed to the as-of month (development 1 = paid in the service month).
fn payment_triangle(data: &ExperienceData, end: NaiveDate) -> Option<Triangle> {
    let first = month_number(data.product.product.period_start);
    let last = month_number(end);
    if last < first {
        return None;
    }
    let as_of_month = month_number(data.as_of);
    let mut rows: Vec<Vec<f64>> = (first..=last)
        .map(|m| vec![0.0; usize::try_from(as_of_month - m + 1).unwrap_or(1).max(1)])
        .collect();
    for cell in &data.payments {
        let (Some(service), Some(paid)) = (
            parse_month(&cell.service_month),
            parse_month(&cell.payment_month),
        ) else {
            continue;
        };
        if service < first || service > last {
            continue;
        }
        let row = &mut rows[usize::try_from(service - first).unwrap_or(0)];
        // A payment cannot precede the service; a clock that says so counts as development 1.
        let k = usize::try_from((paid - service).max(0))
            .unwrap_or(0)
            .min(row.len() - 1);
        row[k] += cell.paid_fen as f64 / 100.0;
    }
    for row in &mut rows {
        for k in 1..row.len() {
            row[k] += row[k - 1];
        }
    }
    let origins = (first..=last).map(month_label).collect();
    Triangle::from_cumulative(
        &format!("payments of {}", data.product.product.id),
        origins,
        rows,
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_basis_prices_every_group_of_the_demo_scenario() {
        let basis = default_basis().unwrap();
        assert_eq!(basis.expected_loss_ratio, Some(0.85));
        assert_eq!(basis.groups.len(), 28);
        for (id, (eligible, by_benefit)) in &basis.groups {
            assert!(*eligible > 0.0, "{id}");
            assert_eq!(by_benefit.len(), 2, "{id}");
            for (benefit, law) in by_benefit {
                // E[Y^2] >= E[Y]^2 > 0 for a payout that is sometimes positive.
                assert!(
                    law.mean > 0.0 && law.second_moment >= law.mean * law.mean,
                    "{id} {benefit}"
                );
            }
        }
        // Older and pre-existing members are expected to cost more in hospital.
        let inpatient = |id: &str| basis.groups[id].1["inpatient"].mean;
        assert!(inpatient("75-84/M/standard") > inpatient("18-39/M/standard"));
        assert!(inpatient("55-64/F/preexisting") > inpatient("55-64/F/standard"));
    }

    #[test]
    fn months_round_trip() {
        let d = NaiveDate::from_ymd_opt(2027, 3, 31).unwrap();
        assert_eq!(month_label(month_number(d)), "2027-03");
        assert_eq!(parse_month("2027-03"), Some(month_number(d)));
        assert_eq!(parse_month("2027-13"), None);
        assert_eq!(month_label(month_number(d) + 10), "2028-01");
    }
}
