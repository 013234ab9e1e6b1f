//! Adverse selection: enrolment that responds to the premium, and the premium at which the
//! enrolled pool pays for itself.
//!
//! Take-up has one meaning: a group's `take_up` is the take-up observed at the scenario's
//! premium P0 (`[pricing] premium` when given, otherwise the flat premium the model recommends),
//! so the main report prices exactly the members who enrol at P0. Enrolment responds to value
//! for money, base_g x (b_g / P)^e_g with b_g the group's expected payout per member; passing
//! that curve through the observed take-up fixes base_g, and it becomes
//! take-up_g(P) = min(1, take_up_g x (P0 / P)^e_g). At P0 every group enrols as observed; the
//! groups with the larger elasticities (the healthy young) leave first when the premium rises.
//!
//! The premium the pool needs at P is R(P) = (sum n_g b_g + RM) / (1 - expense ratio) / sum n_g,
//! where the risk margin RM is the cost of capital times k * sqrt(sum n_g Var_g): members are
//! independent, so the standard deviation of the portfolio total is that square root, and
//! k = (risk measure - mean) / std is taken from the full run of the base pool. The pool pays
//! for itself at a premium P* = R(P*); the smallest such premium up to `max_premium` is
//! reported, or that there is none.

use serde::{Deserialize, Serialize};

use crate::engine::PricingError;
use crate::premium::gross_premium;
use crate::results::{AdverseSelectionResult, GroupTakeUp, PremiumResult, PricingResults};
use crate::scenario::{AdverseSelectionSpec, Scenario};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolGroup {
    pub eligible: f64,
    /// Take-up observed at `observed_at`.
    pub take_up: f64,
    /// The premium per member at which `take_up` is observed (the scenario's premium).
    pub observed_at: f64,
    pub elasticity: f64,
    /// Expected payout per member-year.
    pub pure_premium: f64,
    /// Variance of the payout per member-year.
    pub variance: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolParams {
    pub expense_ratio: f64,
    pub cost_of_capital: f64,
    /// (risk measure - mean) / standard deviation of the portfolio total.
    pub risk_factor: f64,
    pub max_premium: f64,
}

pub fn take_up(g: &PoolGroup, premium: f64) -> f64 {
    if g.elasticity == 0.0 || g.observed_at <= 0.0 {
        // Enrolment that does not respond, or a product that pays nothing (priced at 0): the
        // observed take-up is all there is.
        return g.take_up.min(1.0);
    }
    if premium <= 0.0 {
        // An infinitely attractive product: everyone with any take-up enrols.
        return if g.take_up > 0.0 { 1.0 } else { 0.0 };
    }
    take_up_at_ratio(g.take_up, g.elasticity, g.observed_at / premium)
}

/// Take-up when the premium is the observed one divided by `ratio` (P0 / P): the one curve both
/// the adverse-selection solve and the sweep's `take_up_scale` use.
pub fn take_up_at_ratio(observed: f64, elasticity: f64, ratio: f64) -> f64 {
    (observed * ratio.powf(elasticity)).min(1.0)
}

/// Enrolment scaled by `scale` through the premium: the ratio s = P0 / P at which
/// sum eligible_g x take-up_g = scale x today's members, and the members of each group there, so
/// that the groups that respond most to the premium move most. `groups` are (eligible, observed
/// take-up, elasticity). When no group responds (every elasticity 0) the enrolment is scaled
/// alike in every group, the limit of equal elasticities. Err names the enrolment that no
/// premium reaches.
pub fn scale_enrolment(
    groups: &[(f64, f64, f64)],
    scale: f64,
) -> Result<(Vec<f64>, Option<f64>), String> {
    let today: f64 = groups.iter().map(|(n, t, _)| n * t.min(1.0)).sum();
    let target = scale * today;
    if groups.iter().all(|&(_, _, e)| e == 0.0) {
        let members = groups
            .iter()
            .map(|&(n, t, _)| (n * t * scale).min(n))
            .collect();
        return Ok((members, None));
    }
    let at = |s: f64| -> f64 {
        groups
            .iter()
            .map(|&(n, t, e)| n * take_up_at_ratio(t, e, s))
            .sum()
    };
    // Members at the extremes: groups that do not respond keep their take-up; the others all
    // leave (s -> 0) or all enrol (s -> infinity).
    let fewest: f64 = groups
        .iter()
        .filter(|g| g.2 == 0.0)
        .map(|(n, t, _)| n * t.min(1.0))
        .sum();
    let most: f64 = groups
        .iter()
        .map(|&(n, t, e)| if e == 0.0 { n * t.min(1.0) } else { n })
        .sum();
    if target <= fewest || target > most {
        return Err(format!(
            "{scale} x today's {today:.0} members is {target:.0}, but the elasticities give \
             between {fewest:.0} (exclusive) and {most:.0} members at any premium"
        ));
    }
    // at(s) is continuous and non-decreasing: bisect on log s.
    let (mut lo, mut hi) = (1.0_f64, 1.0_f64);
    while at(lo) > target {
        lo *= 0.5;
    }
    while at(hi) < target {
        hi *= 2.0;
    }
    for _ in 0..200 {
        let m = (lo * hi).sqrt();
        if m <= lo || m >= hi {
            break;
        }
        if at(m) < target { lo = m } else { hi = m }
    }
    let s = hi;
    let members = groups
        .iter()
        .map(|&(n, t, e)| n * take_up_at_ratio(t, e, s))
        .collect();
    Ok((members, Some(1.0 / s)))
}

/// Enrolled members at a premium.
pub fn members(groups: &[PoolGroup], premium: f64) -> f64 {
    groups
        .iter()
        .map(|g| g.eligible * take_up(g, premium))
        .sum()
}

/// Premium the pool enrolled at `premium` needs, or None when nobody enrols.
pub fn required_premium(groups: &[PoolGroup], params: &PoolParams, premium: f64) -> Option<f64> {
    let mut n = 0.0;
    let mut expected = 0.0;
    let mut variance = 0.0;
    for g in groups {
        let m = g.eligible * take_up(g, premium);
        n += m;
        expected += m * g.pure_premium;
        variance += m * g.variance;
    }
    if n <= 0.0 {
        return None;
    }
    let excess = params.risk_factor.max(0.0) * variance.sqrt();
    let premium = gross_premium(
        expected,
        excess,
        params.expense_ratio,
        params.cost_of_capital,
    );
    Some(premium.gross / n)
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    Equilibrium { premium: f64, members: f64 },
    NoEquilibrium,
}

const GRID_POINTS: usize = 4_000;
const GRID_DECADES: f64 = 6.0;

/// The smallest premium in (0, max_premium] at which the pool enrolled at that premium pays for
/// itself.
pub fn solve(groups: &[PoolGroup], params: &PoolParams) -> Outcome {
    let gap = |p: f64| required_premium(groups, params, p).map(|r| p - r);
    let lo = params.max_premium * 10f64.powf(-GRID_DECADES);
    let mut prev: Option<f64> = None;
    for i in 0..=GRID_POINTS {
        let p = lo * (params.max_premium / lo).powf(i as f64 / GRID_POINTS as f64);
        match gap(p) {
            Some(h) if h >= 0.0 => {
                let premium = match prev {
                    None => p,
                    Some(a) => bisect(&gap, a, p),
                };
                return Outcome::Equilibrium {
                    premium,
                    members: members(groups, premium),
                };
            }
            Some(_) => prev = Some(p),
            // Nobody enrols at this premium: it cannot be a pool that pays for itself.
            None => prev = None,
        }
    }
    Outcome::NoEquilibrium
}

fn bisect(gap: &dyn Fn(f64) -> Option<f64>, mut a: f64, mut b: f64) -> f64 {
    // gap(a) < 0 <= gap(b).
    for _ in 0..200 {
        let m = 0.5 * (a + b);
        if m <= a || m >= b {
            break;
        }
        match gap(m) {
            Some(h) if h >= 0.0 => b = m,
            _ => a = m,
        }
    }
    b
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RenewalYear {
    pub year: u32,
    pub premium_per_member: f64,
    pub members: f64,
    pub expected_payout_per_member: f64,
    pub expected_loss_ratio: f64,
}

/// Renewal path: each year the pool re-forms at the current premium and the next premium is the
/// one that pool needs, as `required` prices it (None: nobody enrols).
pub fn renewal_path<E>(
    groups: &[PoolGroup],
    start_premium: f64,
    years: u32,
    mut required: impl FnMut(f64) -> Result<Option<f64>, E>,
) -> Result<Vec<RenewalYear>, E> {
    let mut out = Vec::new();
    let mut p = start_premium;
    for year in 0..=years {
        let n = members(groups, p);
        if n <= 0.0 || !p.is_finite() {
            break;
        }
        let expected: f64 = groups
            .iter()
            .map(|g| g.eligible * take_up(g, p) * g.pure_premium)
            .sum::<f64>()
            / n;
        out.push(RenewalYear {
            year,
            premium_per_member: p,
            members: n,
            expected_payout_per_member: expected,
            expected_loss_ratio: if p > 0.0 { expected / p } else { 0.0 },
        });
        if year == years {
            break;
        }
        match required(p)? {
            Some(r) => p = r,
            None => break,
        }
    }
    Ok(out)
}

/// Most exact re-pricings spent refining the equilibrium from the scaled solve's.
pub const EXACT_SOLVE_STEPS: u32 = 6;
/// The equilibrium is taken as found when |P - R(P)| is within this share of P.
const EXACT_SOLVE_TOLERANCE: f64 = 1e-6;

/// The premium P near `start` with P = R(P), R priced by `required` (exactly): secant steps on
/// P - R(P) from the fixed-point step, at most [`EXACT_SOLVE_STEPS`] prices, kept within
/// (0, max_premium]. Returns the best premium found and its |P - R(P)|, or None when a pool on
/// the way has nobody.
pub fn refine_equilibrium<E>(
    start: f64,
    max_premium: f64,
    mut required: impl FnMut(f64) -> Result<Option<f64>, E>,
) -> Result<Option<(f64, f64)>, E> {
    let mut gap = |p: f64| -> Result<Option<f64>, E> { Ok(required(p)?.map(|r| p - r)) };
    let (mut p0, mut g0) = match gap(start)? {
        Some(g) => (start, g),
        None => return Ok(None),
    };
    let mut best = (p0, g0.abs());
    // The first step is the renewal step P -> R(P).
    let mut p1 = (p0 - g0).clamp(f64::MIN_POSITIVE, max_premium);
    for _ in 1..EXACT_SOLVE_STEPS {
        if best.1 <= EXACT_SOLVE_TOLERANCE * best.0 {
            break;
        }
        let Some(g1) = gap(p1)? else { break };
        if g1.abs() < best.1 {
            best = (p1, g1.abs());
        }
        if g1 == g0 {
            break;
        }
        let next = p1 - g1 * (p1 - p0) / (g1 - g0);
        if !next.is_finite() {
            break;
        }
        (p0, g0) = (p1, g1);
        p1 = next.clamp(f64::MIN_POSITIVE, max_premium);
    }
    Ok(Some(best))
}

/// The premium per member at which the scenario's take-up is observed: `[pricing] premium` when
/// given, otherwise the flat premium the model recommends for the enrolled pool.
pub fn observed_premium(scenario: &Scenario, premium: &PremiumResult) -> f64 {
    scenario
        .pricing()
        .premium
        .unwrap_or(premium.flat_premium_per_member)
}

/// Prices a pool exactly: the members of each group in, the flat premium per member that pool
/// needs out (None when nobody enrols).
pub(crate) type ExactPricer<'a> = dyn Fn(&[u64]) -> Result<Option<f64>, PricingError> + 'a;

/// Enrolled members of each group at a premium, rounded as the scenario rounds them.
pub fn pool_members(groups: &[PoolGroup], premium: f64) -> Vec<u64> {
    groups
        .iter()
        .map(|g| (g.eligible * take_up(g, premium)).round().max(0.0) as u64)
        .collect()
}

/// The adverse-selection analysis of a priced scenario: the equilibrium premium (or that there is
/// none up to the ceiling), take-up there per group, and the renewal path from the scenario's
/// premium. With `exact`, every pool on the renewal path is re-priced exactly and the
/// equilibrium of the scaled solve is refined by exact re-pricing; otherwise the risk margin of
/// each pool is scaled from the priced one.
pub(crate) fn analyse(
    scenario: &Scenario,
    results: &PricingResults,
    spec: &AdverseSelectionSpec,
    exact: Option<&ExactPricer<'_>>,
) -> Result<AdverseSelectionResult, PricingError> {
    let reference = observed_premium(scenario, &results.premium);
    let pool: Vec<PoolGroup> = scenario
        .groups()
        .iter()
        .zip(&results.groups)
        .map(|(g, r)| PoolGroup {
            eligible: g.eligible,
            take_up: g.base_take_up,
            observed_at: reference,
            elasticity: g.elasticity,
            pure_premium: r.stats.mean_payout_per_member,
            variance: r.stats.std_payout_per_member * r.stats.std_payout_per_member,
        })
        .collect();
    let p = &results.premium;
    let std = results.portfolio.std;
    let risk_factor = if std > 0.0 {
        (p.risk_measure_value - p.expected_payout).max(0.0) / std
    } else {
        0.0
    };
    // Without a stated ceiling: ten times the scenario's premium, far beyond what a flat inclusive
    // product has been sold at.
    let max_premium = spec
        .max_premium
        .unwrap_or(10.0 * reference)
        .max(f64::MIN_POSITIVE);
    let params = PoolParams {
        expense_ratio: scenario.pricing().expense_ratio,
        cost_of_capital: scenario.pricing().cost_of_capital,
        risk_factor,
        max_premium,
    };
    let mut outcome = solve(&pool, &params);
    let mut residual = None;
    let renewal = match exact {
        Some(price_pool) => {
            let required = |p: f64| price_pool(&pool_members(&pool, p));
            if let Outcome::Equilibrium { premium, .. } = outcome
                && let Some((refined, gap)) = refine_equilibrium(premium, max_premium, required)?
            {
                outcome = Outcome::Equilibrium {
                    premium: refined,
                    members: members(&pool, refined),
                };
                residual = Some(gap);
            }
            renewal_path(&pool, reference, spec.renewal_years, required)?
        }
        None => renewal_path(&pool, reference, spec.renewal_years, |p| {
            Ok::<_, PricingError>(required_premium(&pool, &params, p))
        })?,
    };
    let at = match outcome {
        Outcome::Equilibrium { premium, .. } => premium,
        Outcome::NoEquilibrium => max_premium,
    };
    let groups = scenario
        .groups()
        .iter()
        .zip(&pool)
        .map(|(g, pg)| {
            let t = take_up(pg, at);
            GroupTakeUp {
                id: g.id.clone(),
                take_up: t,
                members: pg.eligible * t,
            }
        })
        .collect();
    let (status, premium_per_member, members, expected) = match outcome {
        Outcome::Equilibrium { premium, members } => {
            let expected = pool
                .iter()
                .map(|g| g.eligible * take_up(g, premium) * g.pure_premium)
                .sum::<f64>()
                / members.max(f64::MIN_POSITIVE);
            ("equilibrium", Some(premium), Some(members), Some(expected))
        }
        Outcome::NoEquilibrium => ("no_equilibrium", None, None, None),
    };
    Ok(AdverseSelectionResult {
        status: status.into(),
        max_premium,
        premium_per_member,
        members,
        expected_payout_per_member: expected,
        risk_factor,
        observed_premium_per_member: reference,
        observed_premium_stated: scenario.pricing().premium.is_some(),
        repricing: if exact.is_some() { "exact" } else { "scaled" }.into(),
        equilibrium_residual_per_member: residual,
        groups,
        renewal,
    })
}

#[cfg(test)]
mod tests;
