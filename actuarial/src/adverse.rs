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
/// one that pool needs.
pub fn renewal_path(
    groups: &[PoolGroup],
    params: &PoolParams,
    start_premium: f64,
    years: u32,
) -> Vec<RenewalYear> {
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
        match required_premium(groups, params, p) {
            Some(r) => p = r,
            None => break,
        }
    }
    out
}

/// The premium per member at which the scenario's take-up is observed: `[pricing] premium` when
/// given, otherwise the flat premium the model recommends for the enrolled pool.
pub fn observed_premium(scenario: &Scenario, premium: &PremiumResult) -> f64 {
    scenario
        .pricing()
        .premium
        .unwrap_or(premium.flat_premium_per_member)
}

/// The adverse-selection analysis of a priced scenario: the equilibrium premium (or that there is
/// none up to the ceiling), take-up there per group, and the renewal path from the base premium.
pub(crate) fn analyse(
    scenario: &Scenario,
    results: &PricingResults,
    spec: &AdverseSelectionSpec,
) -> AdverseSelectionResult {
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
    let base = reference;
    // Without a stated ceiling: ten times the scenario's premium, far beyond what a flat inclusive
    // product has been sold at.
    let max_premium = spec
        .max_premium
        .unwrap_or(10.0 * base)
        .max(f64::MIN_POSITIVE);
    let params = PoolParams {
        expense_ratio: scenario.pricing().expense_ratio,
        cost_of_capital: scenario.pricing().cost_of_capital,
        risk_factor,
        max_premium,
    };
    let outcome = solve(&pool, &params);
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
    AdverseSelectionResult {
        status: status.into(),
        max_premium,
        premium_per_member,
        members,
        expected_payout_per_member: expected,
        risk_factor,
        observed_premium_per_member: reference,
        observed_premium_stated: scenario.pricing().premium.is_some(),
        groups,
        renewal: renewal_path(&pool, &params, base, spec.renewal_years),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_groups() -> Vec<PoolGroup> {
        vec![
            PoolGroup {
                eligible: 1000.0,
                take_up: 1.0,
                observed_at: 100.0,
                elasticity: 0.0,
                pure_premium: 100.0,
                variance: 0.0,
            },
            PoolGroup {
                eligible: 1000.0,
                // Observed 50% at a premium of 10: take-up 5 / P.
                take_up: 0.5,
                observed_at: 10.0,
                elasticity: 1.0,
                pure_premium: 10.0,
                variance: 0.0,
            },
        ]
    }

    #[test]
    fn known_equilibrium() {
        // n_B(P) = 1000 * 5 / P for P >= 5, so P = (100000 + 50000 / P) / (1000 + 5000 / P),
        // i.e. P^2 - 95 P - 50 = 0.
        let params = PoolParams {
            expense_ratio: 0.0,
            cost_of_capital: 0.0,
            risk_factor: 0.0,
            max_premium: 1000.0,
        };
        let expected = (95.0 + (95.0_f64 * 95.0 + 200.0).sqrt()) / 2.0;
        match solve(&two_groups(), &params) {
            Outcome::Equilibrium { premium, members } => {
                assert!((premium - expected).abs() < 1e-9, "{premium} vs {expected}");
                assert!((members - (1000.0 + 5000.0 / expected)).abs() < 1e-6);
            }
            Outcome::NoEquilibrium => panic!("an equilibrium exists"),
        }
        // The renewal path converges to it from the base premium.
        let path = renewal_path(&two_groups(), &params, 55.0, 30);
        let last = path.last().unwrap().premium_per_member;
        assert!((last - expected).abs() < 1e-6, "{last}");
        // Expenses scale the equilibrium: with a 10% expense ratio the pool needs
        // P = (100000 + 50000/P) / 0.9 / (1000 + 5000/P): 0.9 P^2 - 95.5 P - 50 = 0.
        let with_expenses = PoolParams {
            expense_ratio: 0.1,
            ..params
        };
        let expected = (95.5 + (95.5_f64 * 95.5 + 4.0 * 0.9 * 50.0).sqrt()) / 1.8;
        match solve(&two_groups(), &with_expenses) {
            Outcome::Equilibrium { premium, .. } => assert!((premium - expected).abs() < 1e-9),
            Outcome::NoEquilibrium => panic!("an equilibrium exists"),
        }
    }

    #[test]
    fn enrolment_scales_through_the_premium() {
        // Group A does not respond; B's take-up is 0.5 s with s = P0 / P. Halving today's 1,500
        // members is impossible (A keeps 1,000 at any premium); 1,250 needs B at 250, s = 0.5.
        let groups = [(1000.0, 1.0, 0.0), (1000.0, 0.5, 1.0)];
        let (members, ratio) = scale_enrolment(&groups, 1250.0 / 1500.0).unwrap();
        assert!((members[0] - 1000.0).abs() < 1e-9);
        assert!((members[1] - 250.0).abs() < 1e-6, "{members:?}");
        assert!((ratio.unwrap() - 2.0).abs() < 1e-9, "premium twice today's");
        let e = scale_enrolment(&groups, 0.5).unwrap_err();
        assert!(e.contains("between 1000"), "{e}");
        // Everyone enrolled (2,000) is the most: 1.4 x 1,500 = 2,100 is out of reach.
        assert!(scale_enrolment(&groups, 1.4).is_err());
        // Equal elasticities and no cap reached: every group scales alike.
        let equal = [(1000.0, 0.2, 0.7), (4000.0, 0.1, 0.7)];
        let (m, _) = scale_enrolment(&equal, 1.5).unwrap();
        assert!(
            (m[0] - 300.0).abs() < 1e-6 && (m[1] - 600.0).abs() < 1e-6,
            "{m:?}"
        );
        // No elasticity: scaled alike, capped at the eligible.
        let (m, ratio) = scale_enrolment(&[(1000.0, 0.6, 0.0), (10.0, 0.5, 0.0)], 2.0).unwrap();
        assert_eq!((m, ratio), (vec![1000.0, 10.0], None));
    }

    #[test]
    fn none_below_the_ceiling() {
        let params = PoolParams {
            expense_ratio: 0.0,
            cost_of_capital: 0.0,
            risk_factor: 0.0,
            max_premium: 90.0,
        };
        assert_eq!(solve(&two_groups(), &params), Outcome::NoEquilibrium);
    }

    #[test]
    fn risk_margin_can_make_every_pool_too_expensive() {
        // One group leaving fast (elasticity 3): the fewer members, the larger the risk margin
        // per member, which grows like P^1.5 and outruns the premium. Check the pool never pays
        // for itself on a fine grid and that the solver agrees.
        let g = [PoolGroup {
            eligible: 100.0,
            take_up: 1.0,
            observed_at: 50.0,
            elasticity: 3.0,
            pure_premium: 50.0,
            variance: 1e8,
        }];
        let params = PoolParams {
            expense_ratio: 0.1,
            cost_of_capital: 0.1,
            risk_factor: 3.0,
            max_premium: 1e6,
        };
        for i in 0..10_000 {
            let p = 1e-3 * (1e9_f64).powf(i as f64 / 10_000.0);
            if let Some(r) = required_premium(&g, &params, p) {
                assert!(r > p, "pays for itself at {p}");
            }
        }
        assert_eq!(solve(&g, &params), Outcome::NoEquilibrium);
    }
}
