//! The experience study of a policy year, from aggregates the database computed: exposure,
//! claims by pricing group and benefit, the payment-development triangle by service month with
//! its chain ladder (Mack) and Bornhuetter-Ferguson reserves, loss ratios, and actual against
//! expected per group and benefit against a pricing basis.
//!
//! Pure: the caller reads the aggregates (see `engine::store::experience`) and the basis.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::member::{PayoutDistribution, Resolution};
use crate::reserve::{Reserve, Triangle};
use crate::scenario::{Benefit, Scenario};

/// The payout laws of the basis need their means and second moments only, to well within the
/// sampling error of any year's experience: a coarser lattice than pricing's builds 56 of them
/// in a fraction of the time.
const BASIS_RESOLUTION: Resolution = Resolution {
    cells_per_scale: 64.0,
    max_cells: 1 << 12,
};

/// Two-sided 95 % normal quantile.
const Z_95: f64 = 1.959_963_984_540_054;

/// What the basis expects of one member-year of a group for one benefit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Expected {
    /// Mean payout per member-year.
    pub mean: f64,
    /// Second moment of the member-year payout.
    pub second_moment: f64,
}

/// The pricing basis the experience is compared with.
#[derive(Debug, Clone, PartialEq)]
pub struct Basis {
    pub name: String,
    /// The prior for Bornhuetter-Ferguson: the scenario's target loss ratio.
    pub expected_loss_ratio: Option<f64>,
    /// Per group id: the eligible population and the expected payout per benefit key.
    pub groups: BTreeMap<String, (f64, BTreeMap<String, Expected>)>,
}

impl Basis {
    /// The exact member-year payout laws of every group and benefit of a scenario.
    pub fn from_scenario(scenario: &Scenario) -> Result<Self, String> {
        let mut groups = BTreeMap::new();
        for group in scenario.groups() {
            let mut by_benefit = BTreeMap::new();
            for benefit in Benefit::ALL {
                if let Some((frequency, severity, terms)) =
                    group.benefit_model(benefit, scenario.benefits())
                {
                    let law =
                        PayoutDistribution::build(&frequency, &severity, &terms, BASIS_RESOLUTION)
                            .map_err(|e| format!("group {} {}: {e}", group.id, benefit.key()))?;
                    by_benefit.insert(
                        benefit.key().to_string(),
                        Expected {
                            mean: law.mean,
                            second_moment: law.second_moment,
                        },
                    );
                }
            }
            groups.insert(group.id.clone(), (group.eligible, by_benefit));
        }
        Ok(Basis {
            name: scenario.name().to_string(),
            expected_loss_ratio: scenario.pricing().target_loss_ratio,
            groups,
        })
    }
}

/// Exposure of one pricing group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupExposure {
    pub group: String,
    pub age_band: String,
    pub sex: String,
    pub preexisting: bool,
    pub members: u64,
    pub member_years: f64,
}

/// Claims of one group and benefit in one service month. Amounts in CNY.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimInput {
    pub group: String,
    pub benefit: String,
    pub service_month: String,
    pub claims: u64,
    pub paid_claims: u64,
    pub paid: f64,
    /// Sum over claims of the squared net payment (CNY squared).
    pub paid_squared: f64,
}

/// Everything the study is computed from.
#[derive(Debug, Clone)]
pub struct StudyInput {
    pub product_id: String,
    pub as_of: String,
    /// Premium per member-year, CNY.
    pub premium: f64,
    pub groups: Vec<GroupExposure>,
    pub claims: Vec<ClaimInput>,
    /// Paid amounts by service month (origin) and months since (development 1 = same month).
    pub triangle: Option<Triangle>,
    /// Member-years in force in each service month.
    pub month_exposure: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupRow {
    pub group: String,
    pub age_band: String,
    pub sex: String,
    pub preexisting: bool,
    pub members: u64,
    pub member_years: f64,
    /// The basis's eligible population of the group, and members / eligible.
    pub eligible: Option<f64>,
    pub take_up: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClaimsRow {
    pub group: String,
    pub benefit: String,
    pub claims: u64,
    pub paid_claims: u64,
    pub paid: f64,
    /// Paid claims per member-year.
    pub frequency: f64,
    /// Mean net payment per paid claim.
    pub mean_severity: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AeRow {
    pub group: String,
    pub benefit: String,
    pub member_years: f64,
    pub actual_paid: f64,
    /// Paid to date completed by the chain ladder's development factor of each service month.
    pub actual_ultimate: f64,
    /// Member-years x the basis's mean payout per member-year.
    pub expected: f64,
    pub ae: Option<f64>,
    pub ae_se: Option<f64>,
    /// 95 % interval (normal approximation, floored at 0).
    pub ae_low: Option<f64>,
    pub ae_high: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TriangleCell {
    pub service_month: String,
    pub development: u32,
    pub cumulative: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Study {
    pub product_id: String,
    pub as_of: String,
    pub basis: String,
    pub premium: f64,
    pub members: u64,
    pub member_years: f64,
    pub earned_premium: f64,
    pub eligible: Option<f64>,
    pub take_up: Option<f64>,
    pub groups: Vec<GroupRow>,
    pub claims: Vec<ClaimsRow>,
    pub triangle: Vec<TriangleCell>,
    pub chain_ladder: Option<Reserve>,
    pub bornhuetter_ferguson: Option<Reserve>,
    /// Why a reserve could not be computed (a triangle too young or empty), if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserve_error: Option<String>,
    pub expected_loss_ratio: Option<f64>,
    pub paid: f64,
    pub paid_loss_ratio: Option<f64>,
    pub ibnr: Option<f64>,
    pub ibnr_se: Option<f64>,
    pub ultimate: Option<f64>,
    pub ultimate_loss_ratio: Option<f64>,
    pub ultimate_loss_ratio_se: Option<f64>,
    pub bf_ibnr: Option<f64>,
    pub bf_ultimate_loss_ratio: Option<f64>,
    pub actual_vs_expected: Vec<AeRow>,
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
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

    let groups: Vec<GroupRow> = input
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
        .collect();
    let eligible_total: Option<f64> =
        (!basis.groups.is_empty()).then(|| basis.groups.values().map(|b| b.0).sum());

    // Claims per group and benefit, summed over service months.
    #[derive(Default)]
    struct Sums {
        claims: u64,
        paid_claims: u64,
        paid: f64,
        paid_squared: f64,
        completed: f64,
    }
    let mut reserve_error = None;
    let chain_ladder = input.triangle.as_ref().and_then(|t| {
        Reserve::chain_ladder(t)
            .map_err(|e| reserve_error = Some(e.to_string()))
            .ok()
    });
    let cdf: BTreeMap<&str, f64> = chain_ladder
        .as_ref()
        .map(|r| {
            r.origins
                .iter()
                .map(|o| (o.origin.as_str(), o.cdf))
                .collect()
        })
        .unwrap_or_default();
    let mut sums: BTreeMap<(String, String), Sums> = BTreeMap::new();
    for c in &input.claims {
        let s = sums
            .entry((c.group.clone(), c.benefit.clone()))
            .or_default();
        s.claims += c.claims;
        s.paid_claims += c.paid_claims;
        s.paid += c.paid;
        s.paid_squared += c.paid_squared;
        s.completed += c.paid * cdf.get(c.service_month.as_str()).copied().unwrap_or(1.0);
    }
    let claims: Vec<ClaimsRow> = sums
        .iter()
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
        .collect();

    // Actual against expected, for every group and benefit the basis prices or that claimed.
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
    let actual_vs_expected: Vec<AeRow> = keys
        .into_iter()
        .map(|(group, benefit)| {
            let s = sums
                .get(&(group.clone(), benefit.clone()))
                .unwrap_or(&empty);
            let years = exposure.get(group.as_str()).copied().unwrap_or(0.0);
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
        })
        .collect();

    let triangle = input
        .triangle
        .as_ref()
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
        .unwrap_or_default();

    // BF with the priced loss ratio on each service month's earned premium.
    let elr = basis.expected_loss_ratio;
    let bornhuetter_ferguson = match (&input.triangle, elr) {
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
                .map_err(|e| reserve_error = Some(e.to_string()))
                .ok()
        }
        _ => None,
    };

    let paid: f64 = input.claims.iter().map(|c| c.paid).sum();
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
        groups,
        claims,
        triangle,
        expected_loss_ratio: elr,
        paid,
        paid_loss_ratio: ratio(paid, earned_premium),
        ibnr: chain_ladder.as_ref().map(|r| r.ibnr_total),
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
        reserve_error,
        actual_vs_expected,
    }
}

/// The study as text for people.
pub fn render_study(s: &Study) -> String {
    let mut out = String::new();
    let pct = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{:.1}%", 100.0 * v));
    let num = |x: Option<f64>, d: usize| x.map_or("-".to_string(), |v| format!("{v:.d$}"));
    let _ = writeln!(
        out,
        "Experience study of {} as of {}",
        s.product_id, s.as_of
    );
    let _ = writeln!(out, "basis: {}", s.basis);
    let _ = writeln!(
        out,
        "members {}  member-years {:.1}  premium {:.2}  earned premium {:.0}  take-up {}",
        s.members,
        s.member_years,
        s.premium,
        s.earned_premium,
        pct(s.take_up)
    );
    let _ = writeln!(
        out,
        "paid {:.0}  paid loss ratio {}",
        s.paid,
        pct(s.paid_loss_ratio)
    );
    let _ = writeln!(
        out,
        "chain ladder: IBNR {} (Mack SE {})  ultimate {}  ultimate loss ratio {} (SE {})",
        num(s.ibnr, 0),
        num(s.ibnr_se, 0),
        num(s.ultimate, 0),
        pct(s.ultimate_loss_ratio),
        pct(s.ultimate_loss_ratio_se)
    );
    let _ = writeln!(
        out,
        "Bornhuetter-Ferguson (prior loss ratio {}): IBNR {}  ultimate loss ratio {}",
        pct(s.expected_loss_ratio),
        num(s.bf_ibnr, 0),
        pct(s.bf_ultimate_loss_ratio)
    );
    if let Some(e) = &s.reserve_error {
        let _ = writeln!(out, "no reserve: {e}");
    }
    let _ = writeln!(out, "\nexposure by pricing group");
    let _ = writeln!(
        out,
        "{:<24} {:>10} {:>14} {:>8}",
        "group", "members", "member-years", "take-up"
    );
    for g in &s.groups {
        let _ = writeln!(
            out,
            "{:<24} {:>10} {:>14.1} {:>8}",
            g.group,
            g.members,
            g.member_years,
            pct(g.take_up)
        );
    }
    let _ = writeln!(out, "\nclaims by group and benefit (reversals netted)");
    let _ = writeln!(
        out,
        "{:<24} {:<15} {:>8} {:>8} {:>14} {:>10} {:>12}",
        "group", "benefit", "claims", "paid", "amount", "frequency", "severity"
    );
    for c in &s.claims {
        let _ = writeln!(
            out,
            "{:<24} {:<15} {:>8} {:>8} {:>14.0} {:>10.5} {:>12}",
            c.group,
            c.benefit,
            c.claims,
            c.paid_claims,
            c.paid,
            c.frequency,
            num(c.mean_severity, 0)
        );
    }
    if let Some(r) = &s.chain_ladder {
        let _ = writeln!(out, "\npayment development by service month");
        let _ = write!(out, "{}", crate::reserve::render_reserve(r));
    }
    let _ = writeln!(out, "\nactual (completed) against expected, 95% interval");
    let _ = writeln!(
        out,
        "{:<24} {:<15} {:>14} {:>14} {:>7} {:>17}",
        "group", "benefit", "actual", "expected", "A/E", "interval"
    );
    for a in &s.actual_vs_expected {
        let _ = writeln!(
            out,
            "{:<24} {:<15} {:>14.0} {:>14.0} {:>7} {:>17}",
            a.group,
            a.benefit,
            a.actual_ultimate,
            a.expected,
            num(a.ae, 3),
            match (a.ae_low, a.ae_high) {
                (Some(l), Some(h)) => format!("{l:.3}-{h:.3}"),
                _ => "-".to_string(),
            }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basis() -> Basis {
        let mut groups = BTreeMap::new();
        let mut b = BTreeMap::new();
        b.insert(
            "inpatient".to_string(),
            Expected {
                mean: 50.0,
                second_moment: 1.0e6,
            },
        );
        groups.insert("65-74/M/standard".to_string(), (1000.0, b));
        Basis {
            name: "test".into(),
            expected_loss_ratio: Some(0.8),
            groups,
        }
    }

    fn input() -> StudyInput {
        let text = "origin,development,incremental\n\
                    2026-07,1,1000\n2026-07,2,500\n2026-07,3,100\n\
                    2026-08,1,1200\n2026-08,2,700\n2026-09,1,900\n";
        let (t, _) = Triangle::from_csv("t", text).unwrap();
        StudyInput {
            product_id: "p".into(),
            as_of: "2026-09-30".into(),
            premium: 100.0,
            groups: vec![GroupExposure {
                group: "65-74/M/standard".into(),
                age_band: "65-74".into(),
                sex: "M".into(),
                preexisting: false,
                members: 400,
                member_years: 100.0,
            }],
            claims: vec![
                ClaimInput {
                    group: "65-74/M/standard".into(),
                    benefit: "inpatient".into(),
                    service_month: "2026-07".into(),
                    claims: 3,
                    paid_claims: 2,
                    paid: 1600.0,
                    paid_squared: 1000.0f64.powi(2) + 600.0f64.powi(2),
                },
                ClaimInput {
                    group: "65-74/M/standard".into(),
                    benefit: "inpatient".into(),
                    service_month: "2026-09".into(),
                    claims: 1,
                    paid_claims: 1,
                    paid: 900.0,
                    paid_squared: 900.0f64.powi(2),
                },
            ],
            triangle: Some(t),
            month_exposure: [("2026-07", 33.0), ("2026-08", 33.0), ("2026-09", 34.0)]
                .into_iter()
                .map(|(m, y)| (m.to_string(), y))
                .collect(),
        }
    }

    #[test]
    fn loss_ratios_take_up_and_frequency_follow_from_the_sums() {
        let s = study(&input(), &basis());
        assert_eq!(s.members, 400);
        assert_eq!(s.earned_premium, 10_000.0);
        assert_eq!(s.take_up, Some(0.4));
        assert_eq!(s.paid, 2_500.0);
        assert_eq!(s.paid_loss_ratio, Some(0.25));
        let c = &s.claims[0];
        assert_eq!((c.claims, c.paid_claims), (4, 3));
        assert!((c.frequency - 0.03).abs() < 1e-15);
        assert!((c.mean_severity.unwrap() - 2500.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn the_reserve_is_the_chain_ladder_of_the_triangle() {
        let s = study(&input(), &basis());
        let (t, _) = Triangle::from_csv(
            "t",
            "origin,development,incremental\n2026-07,1,1000\n2026-07,2,500\n2026-07,3,100\n\
             2026-08,1,1200\n2026-08,2,700\n2026-09,1,900\n",
        )
        .unwrap();
        let cl = Reserve::chain_ladder(&t).unwrap();
        assert_eq!(s.ibnr, Some(cl.ibnr_total));
        assert_eq!(s.ibnr_se, Some(cl.mack_se_total));
        let ulr = s.ultimate_loss_ratio.unwrap();
        assert!((ulr - cl.ultimate_total / 10_000.0).abs() < 1e-12);
        // f1 = (1500 + 1900) / 2200; f2 = 1600 / 1500.
        let f1 = 3400.0 / 2200.0;
        let f2 = 1600.0 / 1500.0;
        assert!((cl.origins[2].cdf - f1 * f2).abs() < 1e-12);
        // BF prior = 0.8 x 34 member-years x 100.
        let bf = s.bornhuetter_ferguson.as_ref().unwrap();
        let want = 0.8 * 3400.0 * (1.0 - 1.0 / (f1 * f2));
        assert!((bf.origins[2].ibnr - want).abs() < 1e-9);
    }

    #[test]
    fn actual_against_expected_completes_each_service_month() {
        let s = study(&input(), &basis());
        let a = &s.actual_vs_expected[0];
        let f1 = 3400.0 / 2200.0;
        let f2 = 1600.0 / 1500.0;
        // July is fully developed (cdf 1); September takes f1 x f2.
        let completed = 1600.0 + 900.0 * f1 * f2;
        assert!((a.actual_ultimate - completed).abs() < 1e-9);
        assert_eq!(a.expected, 5_000.0);
        assert!((a.ae.unwrap() - completed / 5000.0).abs() < 1e-12);
        let se = (1000.0f64.powi(2) + 600.0f64.powi(2) + 900.0f64.powi(2)).sqrt() * completed
            / 2500.0
            / 5000.0;
        assert!((a.ae_se.unwrap() - se).abs() < 1e-12);
        assert!((a.ae_high.unwrap() - (a.ae.unwrap() + Z_95 * se)).abs() < 1e-12);
    }

    #[test]
    fn a_triangle_too_young_is_reported_not_fatal() {
        let mut i = input();
        let (t, _) = Triangle::from_csv("t", "origin,development,cumulative\n2026-07,1,0\n2026-07,2,5\n2026-08,1,0\n2026-08,2,3\n2026-09,1,1\n").unwrap();
        i.triangle = Some(t);
        let s = study(&i, &basis());
        assert!(s.chain_ladder.is_none());
        assert!(
            s.reserve_error
                .as_deref()
                .unwrap_or("")
                .contains("no factor")
        );
        assert_eq!(s.paid_loss_ratio, Some(0.25));
    }
}
