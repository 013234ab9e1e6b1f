//! Figures of the total beside the premium: the loss ratio's distribution at a premium and the
//! split of the total by benefit.

use crate::member::PayoutDistribution;
use crate::model::{FactorModels, GroupModel};
use crate::scenario::Pricing;

use super::*;

/// The loss ratio's distribution at a flat premium per member: the total's rescaled by the
/// portfolio premium.
pub(super) fn loss_ratio_at(
    premium_per_member: f64,
    recommended_per_member: f64,
    pricing: &Pricing,
    total: &dyn TotalDistribution,
    members: f64,
) -> LossRatioAtPremium {
    let gross = premium_per_member * members;
    let ratio = |x: f64| if gross > 0.0 { x / gross } else { 0.0 };
    let (mean, mean_se) = total.mean();
    let loss_ratio_percentiles = PERCENTILE_LEVELS
        .iter()
        .map(|&level| (level_key(level), ratio(total.tail(level).var)))
        .collect();
    let (p, p_se) = total.prob_above(gross);
    LossRatioAtPremium {
        premium_per_member,
        gross_premium: gross,
        to_recommended: if recommended_per_member > 0.0 {
            premium_per_member / recommended_per_member
        } else {
            0.0
        },
        expected_loss_ratio: ratio(mean),
        expected_loss_ratio_se: ratio(mean_se),
        loss_ratio_std: ratio(total.std().0),
        loss_ratio_percentiles,
        prob_loss_ratio_above_100: p,
        prob_loss_ratio_above_100_se: p_se,
        margin_per_member: premium_per_member * (1.0 - pricing.expense_ratio) - mean / members,
    }
}

/// The mean and std of each benefit's part of the total, from the member-level distributions:
/// given the factors, members and groups are independent, so conditional means and variances
/// add; over the factors, Var = E[conditional variance] + Var(conditional mean).
pub(super) fn benefit_split(models: &FactorModels, portfolio_mean: f64) -> PortfolioByBenefit {
    let part = |pick: fn(&GroupModel) -> Option<&PayoutDistribution>| {
        let mut any = false;
        let (mut mean, mut second) = (0.0, 0.0);
        for (w, ms) in models.grid.weights.iter().zip(&models.models) {
            let (mut m, mut v) = (0.0, 0.0);
            for g in ms {
                if let Some(d) = pick(g) {
                    any = true;
                    let n = g.members as f64;
                    m += n * d.mean;
                    v += n * d.variance();
                }
            }
            mean += w * m;
            second += w * (v + m * m);
        }
        any.then(|| BenefitTotal {
            mean,
            std: (second - mean * mean).max(0.0).sqrt(),
            share_of_mean: if portfolio_mean > 0.0 {
                mean / portfolio_mean
            } else {
                0.0
            },
        })
    };
    PortfolioByBenefit {
        inpatient: part(|g| g.inpatient.as_deref()),
        specialty_drug: part(|g| g.specialty_drug.as_deref()),
    }
}
