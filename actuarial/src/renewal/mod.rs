//! The renewal price: this year's IBNR-completed experience blended with the pricing basis by
//! Bühlmann-Straub credibility, trended to next year, on next year's enrolment, written as a
//! complete scenario and priced; the change from this year's premium decomposed into
//! experience, mix and selection, trend and margin.
//!
//! Credibility (the same estimators as `puhui credibility`, `crate::credibility`), per benefit,
//! on what the benefit's part of the table prices:
//! - hospital admissions: per group and service month, the month's inpatient claims (each a
//!   stay), completed by the chain ladder's factor to ultimate of the month, over the
//!   admissions the basis expects of the month's member-years, weighted by that expected count.
//!   Counts carry the table's admission rate without the noise of the cost per stay, which at
//!   the size of a year's group is most of the spread of its cost (and the morbidity the
//!   table can be wrong about is the rate);
//! - specialty drugs: the month's drug payout, completed the same way, over the basis's
//!   expected drug payout, reported beside the admissions but not blended: a user's course is
//!   dispensed month after month, so a group's months are not independent observations and
//!   Bühlmann-Straub does not apply; the need rate stays the basis's.
//!
//! The structural parameters (within variance sigma^2, between variance tau^2) are estimated
//! from the admissions' observations; each group's A/E is blended towards 1 (the basis):
//! `c = Z x observed + (1 - Z)`, `Z = w / (w + k)`. The renewal multiplies the group's admission
//! rate by `c` (and its drug need rate by the drugs' blend, which is 1); the cost per admission
//! and per user stay the basis's, trended. The mean squared error of a credibility estimate
//! towards a known mean is `(1 - Z) tau^2` (Bühlmann and Gisler 2005, section 4.5), which the
//! written scenario carries as a risk factor on the frequencies (see `scenario.rs`): a thin
//! group's price is less certain.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::credibility::{self, GroupSummary, Structure};
use crate::experience::{Basis, Expected};
use crate::scenario::Benefit;

mod render;
mod scenario;
#[cfg(test)]
mod tests;

pub use render::{RenewalReport, render_renewal, renewal_html};
pub use scenario::{RenewalBasis, RenewalScenario, price_renewal};

/// Huhuibao kept 6.53 M of its 7.39 M members from 2021 to 2022 (docs/domain/
/// products-and-morbidity.md, section 1.3): 88%.
pub const DEFAULT_RENEWAL_RATE: f64 = 0.88;
/// Medical-cost trend per year applied to the cost per admission and per drug user. An
/// assumption: the domain notes give no series of the out-of-pocket cost per admission.
pub const DEFAULT_TREND: f64 = 0.05;

/// One group's experience in one service month.
#[derive(Debug, Clone, PartialEq)]
pub struct MonthCell {
    pub group: String,
    pub month: String,
    pub member_years: f64,
    /// Inpatient claims (stays) with service in the month, decided by the as-of date.
    pub admissions: f64,
    /// Paid to the as-of date, inpatient, CNY.
    pub inpatient_paid: f64,
    /// Paid to the as-of date, specialty drugs, CNY.
    pub drug_paid: f64,
}

/// The renewal's assumptions, as the user gave them or by default.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Assumptions {
    /// Share of this year's members who enrol again, per group.
    pub renewal_rate: f64,
    /// Cost trend from this year to next.
    pub trend: f64,
    /// Loading on the model premium: recommended = model x (1 + margin).
    pub margin: f64,
}

/// One group's credibility for one benefit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenefitCredibility {
    /// What the basis expects of the member-years: admissions (a count) or the drug payout (CNY).
    pub expected: f64,
    /// The same, observed and IBNR-completed.
    pub ultimate: f64,
    /// The basis's expected payout of the member-years for this benefit, CNY.
    pub expected_payout: f64,
    /// The credibility weight: `expected` as reported by the as-of date (each month's over its
    /// factor to ultimate).
    pub weight: f64,
    pub observed_ae: Option<f64>,
    pub z: f64,
    /// The credibility-weighted A/E the renewal prices on.
    pub blended_ae: f64,
    /// Standard error of `blended_ae`: sqrt((1 - Z) tau^2).
    pub blended_ae_se: f64,
}

/// One group's credibility.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupCredibility {
    pub group: String,
    pub members: u64,
    pub next_members: u64,
    pub member_years: f64,
    /// Expected payout of the member-years on the basis, all benefits, CNY.
    pub expected: f64,
    /// IBNR-completed payout, all benefits, CNY.
    pub ultimate: f64,
    /// Hospital admissions: the A/E of the count, applied to the admission rate.
    pub admissions: BenefitCredibility,
    /// Specialty drugs: the A/E of the payout, applied to the need rate.
    pub drug: BenefitCredibility,
}

/// The structural parameters of one benefit's blend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlendStructure {
    pub within_variance: f64,
    pub between_variance: f64,
    pub k: Option<f64>,
    /// Why the structure could not be estimated (then every Z is 0), if so.
    pub note: Option<String>,
}

/// The credibility blend of every group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Blend {
    pub admissions: BlendStructure,
    pub drug: BlendStructure,
    pub groups: Vec<GroupCredibility>,
}

/// The change from this year's premium, in parts that sum to it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Decomposition {
    pub premium_now: f64,
    /// The basis's model premium for this year's enrolled pool.
    pub model_now: f64,
    pub experience: f64,
    pub mix_and_selection: f64,
    pub trend: f64,
    /// Next year's margin over the model premium less this year's; includes
    /// `parameter_uncertainty`.
    pub margin: f64,
    /// Of the margin: what the credibility estimates' variance adds to the premium.
    pub parameter_uncertainty: f64,
    pub recommended: f64,
    pub total_change: f64,
}

/// The model premiums of the steps from this year to the renewal.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StepPremiums {
    /// The basis on this year's enrolled pool.
    pub basis: f64,
    /// ... with the credibility-weighted experience.
    pub experience: f64,
    /// ... on next year's enrolment.
    pub next_pool: f64,
    /// ... trended.
    pub trended: f64,
    /// ... with the estimates' uncertainty as risk factors: the written scenario.
    pub with_uncertainty: f64,
    /// Monte Carlo standard error of `with_uncertainty` (0 when priced exactly). The steps
    /// before it keep the basis's risk factors, so the exact method prices them when the basis
    /// allows it; the written scenario has a factor per group and is simulated, so the
    /// parameter-uncertainty part carries this error.
    pub with_uncertainty_se: f64,
}

/// The parts of the change: each step's difference, and the margin as the change of the
/// premium over the model premium (next year's `(1 + margin) x model - trended model` against
/// this year's `premium_now - basis`).
pub fn decompose(premium_now: f64, steps: &StepPremiums, margin: f64) -> Decomposition {
    let recommended = steps.with_uncertainty * (1.0 + margin);
    Decomposition {
        premium_now,
        model_now: steps.basis,
        experience: steps.experience - steps.basis,
        mix_and_selection: steps.next_pool - steps.experience,
        trend: steps.trended - steps.next_pool,
        margin: (recommended - steps.trended) - (premium_now - steps.basis),
        parameter_uncertainty: steps.with_uncertainty - steps.trended,
        recommended,
        total_change: recommended - premium_now,
    }
}

/// What the basis expects of one member-year of a group for a benefit (zero when it does not
/// price it).
fn expected_of(basis: &Basis, group: &str, benefit: &str) -> Expected {
    basis
        .groups
        .get(group)
        .and_then(|(_, by_benefit)| by_benefit.get(benefit))
        .copied()
        .unwrap_or(Expected {
            mean: 0.0,
            second_moment: 0.0,
            claims: 0.0,
        })
}

/// Why a benefit is not blended, when it is not.
type Unblended = Option<&'static str>;

/// The drugs are not blended: a user's course is dispensed month after month, so a group's
/// months are one claim seen twelve times, not the independent observations Bühlmann-Straub
/// needs (their within-group spread is small and the between-group spread large, which would
/// give the few groups with a user a credibility near 1 and an A/E of 20 or more).
const DRUGS_NOT_BLENDED: Unblended = Some(
    "not blended (every Z is 0): a user's dispensings recur month after month, so a group's \
     months are not independent observations; the need rate stays the basis's",
);

/// One benefit's observations per group and month, `(A/E, weight)`, blended towards the basis
/// (or with every Z 0, and the reason, when `unblended` says why not).
fn blend_benefit(
    ids: &[&str],
    observations: &BTreeMap<&str, Vec<(f64, f64)>>,
    unblended: Unblended,
) -> (
    BlendStructure,
    Vec<(GroupSummary, credibility::Blended, f64)>,
) {
    let summaries: Vec<GroupSummary> = ids
        .iter()
        .map(|g| {
            GroupSummary::from_pairs(
                observations
                    .get(g)
                    .into_iter()
                    .flatten()
                    .copied()
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let estimated = match unblended {
        Some(reason) => Err(reason.to_string()),
        None => credibility::estimate_structure(std::slice::from_ref(&summaries))
            .map_err(|e| format!("no credibility (every Z is 0): {e}")),
    };
    let (structure, note) = match estimated {
        Ok(s) => (s, None),
        Err(note) => (
            Structure {
                within_variance: 0.0,
                between_variance: 0.0,
            },
            Some(note),
        ),
    };
    let (_, blended) = credibility::blend(&summaries, &structure, Some(1.0));
    let se = |z: f64| ((1.0 - z) * structure.between_variance).max(0.0).sqrt();
    let groups = summaries
        .into_iter()
        .zip(blended)
        .map(|(s, b)| {
            let z = b.z;
            (s, b, se(z))
        })
        .collect();
    (
        BlendStructure {
            within_variance: structure.within_variance,
            between_variance: structure.between_variance,
            k: structure.k(),
            note,
        },
        groups,
    )
}

/// The credibility blend. `completion` is the chain ladder's factor to ultimate per service
/// month (1 when absent; a claim is paid when it is decided, so a month's count of claims
/// develops as its payments do); `members` this year's enrolled members per group.
///
/// A month's weight is what the basis expects of it reported by the as-of date, the expected
/// amount over the month's factor to ultimate: the completed A/E of a month with factor f is
/// f times a ratio on 1 / f of the claims, so its variance is f times that of a complete
/// month's (Poisson counts; the same for compound payouts), and Bühlmann-Straub weights are
/// inversely proportional to the variance. An immature month then counts for what it has
/// seen, in its group's credibility as in the estimate of the variances.
pub fn blend<'a>(
    basis: &Basis,
    cells: &'a [MonthCell],
    completion: &BTreeMap<String, f64>,
    members: &BTreeMap<String, u64>,
    renewal_rate: f64,
) -> Blend {
    // Per group: (actual completed, expected) per month for each benefit, and the totals.
    let mut admissions: BTreeMap<&'a str, Vec<(f64, f64)>> = BTreeMap::new();
    let mut drugs: BTreeMap<&'a str, Vec<(f64, f64)>> = BTreeMap::new();
    #[derive(Default, Clone, Copy)]
    struct Totals {
        member_years: f64,
        expected_admissions: f64,
        admissions: f64,
        expected_inpatient: f64,
        inpatient: f64,
        expected_drug: f64,
        drug: f64,
    }
    let mut totals: BTreeMap<&str, Totals> = BTreeMap::new();
    for cell in cells {
        let factor = completion.get(&cell.month).copied().unwrap_or(1.0);
        let inpatient = expected_of(basis, &cell.group, Benefit::Inpatient.key());
        let drug = expected_of(basis, &cell.group, Benefit::SpecialtyDrug.key());
        let t = totals.entry(&cell.group).or_default();
        let expected_admissions = cell.member_years * inpatient.claims;
        let expected_drug = cell.member_years * drug.mean;
        t.member_years += cell.member_years;
        t.expected_admissions += expected_admissions;
        t.admissions += cell.admissions * factor;
        t.expected_inpatient += cell.member_years * inpatient.mean;
        t.inpatient += cell.inpatient_paid * factor;
        t.expected_drug += expected_drug;
        t.drug += cell.drug_paid * factor;
        let observe =
            |into: &mut BTreeMap<&'a str, Vec<(f64, f64)>>, actual: f64, expected: f64| {
                if expected > 0.0 && factor > 0.0 {
                    into.entry(&cell.group)
                        .or_default()
                        .push((actual * factor / expected, expected / factor));
                }
            };
        observe(&mut admissions, cell.admissions, expected_admissions);
        observe(&mut drugs, cell.drug_paid, expected_drug);
    }
    let ids: Vec<&str> = members
        .keys()
        .map(String::as_str)
        .chain(totals.keys().copied())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let (admissions_structure, admissions_blend) = blend_benefit(&ids, &admissions, None);
    let (drug_structure, drug_blend) = blend_benefit(&ids, &drugs, DRUGS_NOT_BLENDED);
    let credibility_of = |(s, b, se): &(GroupSummary, credibility::Blended, f64),
                          expected: f64,
                          ultimate: f64,
                          expected_payout: f64| BenefitCredibility {
        expected,
        ultimate,
        expected_payout,
        weight: s.weight,
        observed_ae: s.has_data().then_some(s.mean),
        z: b.z,
        blended_ae: b.estimate,
        blended_ae_se: *se,
    };
    let groups = ids
        .iter()
        .zip(admissions_blend.iter().zip(&drug_blend))
        .map(|(id, (a, d))| {
            let t = totals.get(id).copied().unwrap_or_default();
            let now = members.get(*id).copied().unwrap_or(0);
            GroupCredibility {
                group: (*id).to_string(),
                members: now,
                next_members: (now as f64 * renewal_rate).round() as u64,
                member_years: t.member_years,
                expected: t.expected_inpatient + t.expected_drug,
                ultimate: t.inpatient + t.drug,
                admissions: credibility_of(
                    a,
                    t.expected_admissions,
                    t.admissions,
                    t.expected_inpatient,
                ),
                drug: credibility_of(d, t.expected_drug, t.drug, t.expected_drug),
            }
        })
        .collect();
    Blend {
        admissions: admissions_structure,
        drug: drug_structure,
        groups,
    }
}
