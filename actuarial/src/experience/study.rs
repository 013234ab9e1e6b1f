//! Computing the study from its input, one step per section: exposure by group, claims summed
//! by group and benefit, the reserves, actual against expected, and the totals.

use std::collections::BTreeMap;

use super::{AeRow, Basis, ClaimInput, ClaimsRow, GroupRow, Study, StudyInput, TriangleCell, Z_95};
use crate::reserve::{Reserve, Triangle};

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

/// Claims of one group and benefit, summed over service months.
#[derive(Default)]
struct Sums {
    claims: u64,
    paid_claims: u64,
    paid: f64,
    paid_squared: f64,
    /// Paid to date completed by each service month's development factor.
    completed: f64,
}

type ByGroupBenefit = BTreeMap<(String, String), Sums>;

/// The two reserves of the triangle, and why one could not be computed, if so.
struct Reserves {
    chain_ladder: Option<Reserve>,
    bornhuetter_ferguson: Option<Reserve>,
    error: Option<String>,
}

/// Computes the study.
pub fn study(input: &StudyInput, basis: &Basis) -> Study {
    let member_years: f64 = input.groups.iter().map(|g| g.member_years).sum();
    let members: u64 = input.groups.iter().map(|g| g.members).sum();
    let earned_premium = member_years * input.premium;
    let exposure: BTreeMap<&str, f64> = input
        .groups
        .iter()
        .map(|g| (g.group.as_str(), g.member_years))
        .collect();
    let eligible_total: Option<f64> =
        (!basis.groups.is_empty()).then(|| basis.groups.values().map(|b| b.0).sum());

    let reserves = reserves(input, basis);
    let sums = sum_claims(&input.claims, reserves.chain_ladder.as_ref());
    let paid: f64 = input.claims.iter().map(|c| c.paid).sum();
    let chain_ladder = reserves.chain_ladder;
    let bornhuetter_ferguson = reserves.bornhuetter_ferguson;
    let chain_ladder_ibnr = chain_ladder.as_ref().map(|r| r.ibnr_total);
    // + 0.0: an empty sum of f64 is -0.0, which would print as "-0".
    let case_reserve: f64 = input
        .case_reserves
        .iter()
        .map(|r| r.case_reserve)
        .sum::<f64>()
        + 0.0;
    let ultimate_with_case_reserve = chain_ladder
        .as_ref()
        .map(|r| r.ultimate_total + case_reserve);
    Study {
        product_id: input.product_id.clone(),
        as_of: input.as_of.clone(),
        basis: basis.name.clone(),
        premium: input.premium,
        members,
        member_years,
        earned_premium,
        eligible: eligible_total,
        take_up: eligible_total.and_then(|e| ratio(members as f64, e)),
        groups: group_rows(input, basis),
        claims: claims_rows(&sums, &exposure),
        triangle: triangle_cells(input.triangle.as_ref()),
        expected_loss_ratio: basis.expected_loss_ratio,
        paid,
        paid_loss_ratio: ratio(paid, earned_premium),
        ibnr: chain_ladder_ibnr,
        ibnr_se: chain_ladder.as_ref().map(|r| r.mack_se_total),
        ultimate: chain_ladder.as_ref().map(|r| r.ultimate_total),
        ultimate_loss_ratio: chain_ladder
            .as_ref()
            .and_then(|r| ratio(r.ultimate_total, earned_premium)),
        ultimate_loss_ratio_se: chain_ladder
            .as_ref()
            .and_then(|r| ratio(r.mack_se_total, earned_premium)),
        bf_ibnr: bornhuetter_ferguson.as_ref().map(|r| r.ibnr_total),
        bf_ultimate_loss_ratio: bornhuetter_ferguson
            .as_ref()
            .and_then(|r| ratio(r.ultimate_total, earned_premium)),
        chain_ladder,
        bornhuetter_ferguson,
        reserve_error: reserves.error,
        actual_vs_expected: actual_vs_expected(input, basis, &sums, &exposure),
        case_reserves: input.case_reserves.clone(),
        case_reserve,
        outstanding: chain_ladder_ibnr.map(|ibnr| ibnr + case_reserve),
        ultimate_with_case_reserve,
        ultimate_with_case_reserve_loss_ratio: ultimate_with_case_reserve
            .and_then(|u| ratio(u, earned_premium)),
    }
}

/// Exposure by pricing group, with the take-up of the basis's eligible population.
fn group_rows(input: &StudyInput, basis: &Basis) -> Vec<GroupRow> {
    input
        .groups
        .iter()
        .map(|g| {
            let eligible = basis.groups.get(&g.group).map(|b| b.0);
            GroupRow {
                group: g.group.clone(),
                age_band: g.age_band.clone(),
                sex: g.sex.clone(),
                preexisting: g.preexisting,
                members: g.members,
                member_years: g.member_years,
                eligible,
                take_up: eligible.and_then(|e| ratio(g.members as f64, e)),
            }
        })
        .collect()
}

/// The chain ladder of the triangle, and Bornhuetter-Ferguson with the priced loss ratio on each
/// service month's earned premium when the chain ladder succeeded. A failure is kept as text:
/// a triangle too young is reported, not fatal.
fn reserves(input: &StudyInput, basis: &Basis) -> Reserves {
    let mut error = None;
    let chain_ladder = input.triangle.as_ref().and_then(|t| {
        Reserve::chain_ladder(t)
            .map_err(|e| error = Some(e.to_string()))
            .ok()
    });
    let bornhuetter_ferguson = match (&input.triangle, basis.expected_loss_ratio) {
        (Some(t), Some(elr)) if chain_ladder.is_some() => {
            let premiums: BTreeMap<String, f64> = t
                .origins()
                .iter()
                .map(|o| {
                    let years = input.month_exposure.get(o).copied().unwrap_or(0.0);
                    (o.clone(), (years * input.premium).max(f64::MIN_POSITIVE))
                })
                .collect();
            Reserve::bornhuetter_ferguson(t, &premiums, elr)
                .map_err(|e| error = Some(e.to_string()))
                .ok()
        }
        _ => None,
    };
    Reserves {
        chain_ladder,
        bornhuetter_ferguson,
        error,
    }
}

/// Claims per group and benefit summed over service months, each month's payments completed by
/// the chain ladder's development factor of that month (1 without a chain ladder).
fn sum_claims(claims: &[ClaimInput], chain_ladder: Option<&Reserve>) -> ByGroupBenefit {
    let cdf: BTreeMap<&str, f64> = chain_ladder
        .map(|r| {
            r.origins
                .iter()
                .map(|o| (o.origin.as_str(), o.cdf))
                .collect()
        })
        .unwrap_or_default();
    let mut sums = ByGroupBenefit::new();
    for c in claims {
        let s = sums
            .entry((c.group.clone(), c.benefit.clone()))
            .or_default();
        s.claims += c.claims;
        s.paid_claims += c.paid_claims;
        s.paid += c.paid;
        s.paid_squared += c.paid_squared;
        s.completed += c.paid * cdf.get(c.service_month.as_str()).copied().unwrap_or(1.0);
    }
    sums
}

fn claims_rows(sums: &ByGroupBenefit, exposure: &BTreeMap<&str, f64>) -> Vec<ClaimsRow> {
    sums.iter()
        .map(|((group, benefit), s)| ClaimsRow {
            group: group.clone(),
            benefit: benefit.clone(),
            claims: s.claims,
            paid_claims: s.paid_claims,
            paid: s.paid,
            frequency: ratio(
                s.paid_claims as f64,
                exposure.get(group.as_str()).copied().unwrap_or(0.0),
            )
            .unwrap_or(0.0),
            mean_severity: ratio(s.paid, s.paid_claims as f64),
        })
        .collect()
}

/// Actual against expected, for every group and benefit the basis prices or that claimed.
fn actual_vs_expected(
    input: &StudyInput,
    basis: &Basis,
    sums: &ByGroupBenefit,
    exposure: &BTreeMap<&str, f64>,
) -> Vec<AeRow> {
    let mut keys: Vec<(String, String)> = sums.keys().cloned().collect();
    for g in &input.groups {
        if let Some((_, by_benefit)) = basis.groups.get(&g.group) {
            for benefit in by_benefit.keys() {
                keys.push((g.group.clone(), benefit.clone()));
            }
        }
    }
    keys.sort();
    keys.dedup();
    let empty = Sums::default();
    keys.into_iter()
        .map(|(group, benefit)| {
            let s = sums
                .get(&(group.clone(), benefit.clone()))
                .unwrap_or(&empty);
            let years = exposure.get(group.as_str()).copied().unwrap_or(0.0);
            ae_row(basis, group, benefit, s, years)
        })
        .collect()
}

fn ae_row(basis: &Basis, group: String, benefit: String, s: &Sums, years: f64) -> AeRow {
    let law = basis
        .groups
        .get(&group)
        .and_then(|(_, b)| b.get(&benefit))
        .copied();
    let expected = law.map_or(0.0, |l| l.mean * years);
    // The spread of the actual: from the claims themselves (compound Poisson:
    // Var S ~ sum X^2), scaled up with the completion; with no claim paid, the basis's
    // own spread of `years` member-years.
    let actual_se = if s.paid > 0.0 {
        s.paid_squared.sqrt() * s.completed / s.paid
    } else {
        law.map_or(0.0, |l| (l.second_moment * years).sqrt())
    };
    let ae = ratio(s.completed, expected);
    let ae_se = ratio(actual_se, expected);
    AeRow {
        group,
        benefit,
        member_years: years,
        actual_paid: s.paid,
        actual_ultimate: s.completed,
        expected,
        ae,
        ae_se,
        ae_low: ae.zip(ae_se).map(|(a, e)| (a - Z_95 * e).max(0.0)),
        ae_high: ae.zip(ae_se).map(|(a, e)| a + Z_95 * e),
    }
}

/// The cumulative triangle cell by cell (development 1 = the service month itself).
fn triangle_cells(triangle: Option<&Triangle>) -> Vec<TriangleCell> {
    triangle
        .map(|t| {
            t.origins()
                .iter()
                .zip(t.rows())
                .flat_map(|(origin, row)| {
                    row.iter().enumerate().map(move |(k, &v)| TriangleCell {
                        service_month: origin.clone(),
                        development: u32::try_from(k + 1).unwrap_or(u32::MAX),
                        cumulative: v,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}
