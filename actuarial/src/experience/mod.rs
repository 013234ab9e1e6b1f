//! The experience study of a policy year, from aggregates the database computed: exposure,
//! claims by pricing group and benefit, the payment-development triangle by service month with
//! its chain ladder (Mack) and Bornhuetter-Ferguson reserves, loss ratios, and actual against
//! expected per group and benefit against a pricing basis.
//!
//! Pure: the caller reads the aggregates (see `engine::store::experience`) and the basis.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::member::{PayoutDistribution, Resolution};
use crate::reserve::{Reserve, Triangle};
use crate::scenario::{Benefit, Scenario};

mod render;
mod study;

pub use render::render_study;
pub use study::study;

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
    /// Mean number of claims per member-year (admissions; for a drug, the need rate).
    pub claims: f64,
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
                            claims: frequency.mean(),
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

/// The case reserve of one group's treatment courses as of the study's date (CNY): authorised
/// cycles not yet dispensed, each member's total capped at their drug limit left.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CaseReserveRow {
    pub group: String,
    /// Members with a course reserved for.
    pub members: u64,
    /// Courses with a reserve of their own.
    pub authorizations: u64,
    /// CNY, after each member's cap.
    pub case_reserve: f64,
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
    /// The case reserve of the specialty-drug courses by group.
    pub case_reserves: Vec<CaseReserveRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TriangleCell {
    pub service_month: String,
    pub development: u32,
    pub cumulative: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// The case reserve of the specialty-drug courses by group, and in total (CNY): authorised
    /// cycles not yet dispensed are known claims, so they are reserved case by case, on top of
    /// the chain ladder's IBNR, which projects the payments of service months to date.
    pub case_reserves: Vec<CaseReserveRow>,
    pub case_reserve: f64,
    /// IBNR (chain ladder) + case reserve.
    pub outstanding: Option<f64>,
    /// Chain-ladder ultimate + case reserve, and its ratio to earned premium.
    pub ultimate_with_case_reserve: Option<f64>,
    pub ultimate_with_case_reserve_loss_ratio: Option<f64>,
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
                claims: 0.01,
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
            case_reserves: vec![],
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
    fn the_case_reserve_is_added_to_ibnr_and_the_ultimate() {
        let mut i = input();
        i.case_reserves = vec![
            CaseReserveRow {
                group: "65-74/M/standard".into(),
                members: 2,
                authorizations: 3,
                case_reserve: 700.0,
            },
            CaseReserveRow {
                group: "40-54/F/standard".into(),
                members: 1,
                authorizations: 1,
                case_reserve: 50.5,
            },
        ];
        let s = study(&i, &basis());
        let plain = study(&input(), &basis());
        assert_eq!(s.case_reserve, 750.5);
        assert_eq!(plain.case_reserve, 0.0);
        // The chain ladder is that of the payments alone.
        assert_eq!(s.ibnr, plain.ibnr);
        assert_eq!(s.outstanding, Some(plain.ibnr.unwrap() + 750.5));
        assert_eq!(
            s.ultimate_with_case_reserve,
            Some(plain.ultimate.unwrap() + 750.5)
        );
        let ratio = s.ultimate_with_case_reserve_loss_ratio.unwrap();
        assert!((ratio - (plain.ultimate.unwrap() + 750.5) / 10_000.0).abs() < 1e-12);
        assert_eq!(s.case_reserves, i.case_reserves);
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
