//! The renewal price: this year's IBNR-completed experience blended with the pricing basis by
//! Bühlmann-Straub credibility, trended to next year, on next year's enrolment, written as a
//! complete scenario and priced; the change from this year's premium decomposed into
//! experience, mix and selection, trend and margin.
//!
//! Credibility (the same estimators as `puhui credibility`, `crate::credibility`): the ratio
//! observed per group and service month is the group's ultimate (paid completed by the chain
//! ladder's factor to ultimate of its service month) over what the basis expected of the
//! month's member-years, weighted by that expected amount. The structural parameters (within
//! variance sigma^2, between variance tau^2) are estimated from these observations; each
//! group's A/E is blended towards 1 (the basis): `c = Z x observed + (1 - Z)`, `Z = w / (w + k)`.
//! The mean squared error of a credibility estimate towards a known mean is `(1 - Z) tau^2`
//! (Bühlmann and Gisler 2005, section 4.5), which the written scenario carries as one gamma risk
//! factor per group on its frequencies (cv = sqrt((1 - Z) tau^2) / c): a thin group's price is
//! less certain.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::credibility::{self, GroupSummary, Structure};
use crate::experience::Basis;

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
    /// Paid to the as-of date, all benefits, CNY.
    pub paid: f64,
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

/// One group's credibility.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupCredibility {
    pub group: String,
    pub members: u64,
    pub next_members: u64,
    pub member_years: f64,
    /// Expected payout of the member-years on the basis, CNY.
    pub expected: f64,
    /// IBNR-completed payout, CNY.
    pub ultimate: f64,
    pub observed_ae: Option<f64>,
    pub z: f64,
    /// The credibility-weighted A/E the renewal prices on.
    pub blended_ae: f64,
    /// Standard error of `blended_ae`: sqrt((1 - Z) tau^2).
    pub blended_ae_se: f64,
}

/// The credibility blend of every group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Blend {
    pub within_variance: f64,
    pub between_variance: f64,
    pub k: Option<f64>,
    /// Why the structure could not be estimated (then every Z is 0), if so.
    pub note: Option<String>,
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

/// Expected payout per member-year of each group on the basis (all benefits).
fn expected_rate(basis: &Basis, group: &str) -> f64 {
    basis.groups.get(group).map_or(0.0, |(_, by_benefit)| {
        by_benefit.values().map(|e| e.mean).sum()
    })
}

/// The credibility blend. `completion` is the chain ladder's factor to ultimate per service
/// month (1 when absent); `members` this year's enrolled members per group.
pub fn blend(
    basis: &Basis,
    cells: &[MonthCell],
    completion: &BTreeMap<String, f64>,
    members: &BTreeMap<String, u64>,
    renewal_rate: f64,
) -> Blend {
    // Per group: (A/E, expected) per month, and the totals.
    let mut by_group: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    let mut totals: BTreeMap<&str, (f64, f64, f64)> = BTreeMap::new();
    for cell in cells {
        let expected = cell.member_years * expected_rate(basis, &cell.group);
        let ultimate = cell.paid * completion.get(&cell.month).copied().unwrap_or(1.0);
        let t = totals.entry(&cell.group).or_default();
        t.0 += cell.member_years;
        t.1 += expected;
        t.2 += ultimate;
        if expected > 0.0 {
            by_group
                .entry(&cell.group)
                .or_default()
                .push((ultimate / expected, expected));
        }
    }
    let ids: Vec<&str> = members
        .keys()
        .map(String::as_str)
        .chain(totals.keys().copied())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let summaries: Vec<GroupSummary> = ids
        .iter()
        .map(|g| GroupSummary::from_pairs(by_group.get(g).cloned().unwrap_or_default()))
        .collect();
    let (structure, note) = match credibility::estimate_structure(std::slice::from_ref(&summaries))
    {
        Ok(s) => (s, None),
        Err(e) => (
            Structure {
                within_variance: 0.0,
                between_variance: 0.0,
            },
            Some(format!("no credibility (every Z is 0): {e}")),
        ),
    };
    let (_, blended) = credibility::blend(&summaries, &structure, Some(1.0));
    let groups = ids
        .iter()
        .zip(&summaries)
        .zip(blended)
        .map(|((id, s), b)| {
            let (member_years, expected, ultimate) = totals.get(id).copied().unwrap_or_default();
            let now = members.get(*id).copied().unwrap_or(0);
            GroupCredibility {
                group: (*id).to_string(),
                members: now,
                next_members: (now as f64 * renewal_rate).round() as u64,
                member_years,
                expected,
                ultimate,
                observed_ae: s.has_data().then_some(s.mean),
                z: b.z,
                blended_ae: b.estimate,
                blended_ae_se: ((1.0 - b.z) * structure.between_variance).max(0.0).sqrt(),
            }
        })
        .collect();
    Blend {
        within_variance: structure.within_variance,
        between_variance: structure.between_variance,
        k: structure.k(),
        note,
        groups,
    }
}
