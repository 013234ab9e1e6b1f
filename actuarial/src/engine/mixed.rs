//! The exact method's figures: member distributions mixed over the risk factors' nodes, with
//! their discretisation error bounds, and the risk-factor summary.

use std::collections::BTreeMap;

use crate::exact;
use crate::member::PayoutDistribution;
use crate::model::{FactorModels, GroupModel};
use crate::scenario::{REPORT_LEVELS, Scenario};

use super::*;

/// Bound on a group's total mean error from discretisation: members x the per-benefit estimates.
pub(super) fn mean_error(m: &GroupModel) -> f64 {
    [&m.inpatient, &m.specialty_drug]
        .into_iter()
        .flatten()
        .map(|d| d.mean_error_estimate)
        .sum::<f64>()
        * m.members as f64
}

/// Group figures from the member distributions (mixed over the factor nodes), with the
/// discretisation error estimates where Monte Carlo gives standard errors.
pub(super) fn exact_group_results(scenario: &Scenario, models: &FactorModels) -> Vec<GroupResult> {
    scenario
        .groups()
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let e = mixed_exact_stats(models, i);
            let part = |pick: fn(&GroupModel) -> Option<&PayoutDistribution>| {
                pick(&models.models[0][i])?;
                Some(mixed_benefit_stats(models, i, pick))
            };
            let err = mixed_errors(models, i);
            let inpatient = part(|m| m.inpatient.as_deref());
            let specialty_drug = part(|m| m.specialty_drug.as_deref());
            let only = match (inpatient, specialty_drug) {
                (Some(s), None) | (None, Some(s)) => Some(s),
                _ => None,
            };
            GroupResult {
                id: g.id.clone(),
                members: g.members,
                preexisting: g.preexisting,
                stats: only.unwrap_or(PayoutStats {
                    mean_payout_per_member: e.mean_payout_per_member,
                    mean_payout_per_member_se: err.0,
                    std_payout_per_member: e.std_payout_per_member,
                    std_payout_per_member_se: err.1,
                    prob_any_payout: e.prob_any_payout,
                    prob_any_payout_se: err.2,
                }),
                by_benefit: ByBenefit {
                    inpatient,
                    specialty_drug,
                },
                exact: e,
            }
        })
        .collect()
}

/// Discretisation error estimates of a member-year's (mean, std, P(any payout)), weighted over
/// the factor nodes; floating-point rounding (1e-12 relative) is the floor.
pub(super) fn mixed_errors(models: &FactorModels, g: usize) -> (f64, f64, f64) {
    let mut out = (0.0, 0.0, 0.0);
    for (w, ms) in models.grid.weights.iter().zip(&models.models) {
        let m = &ms[g];
        for d in [&m.inpatient, &m.specialty_drug].into_iter().flatten() {
            out.0 += w * (d.mean_error_estimate + 1e-12 * d.mean);
            out.1 += w * (d.std_error_estimate + 1e-12 * d.variance().sqrt());
            out.2 += w * (d.prob_error_estimate + 1e-12 * d.prob_positive);
        }
    }
    out
}

/// One benefit's mean, std and P(payout > 0) per member-year, mixed over the factor nodes.
pub(super) fn mixed_benefit_stats(
    models: &FactorModels,
    g: usize,
    pick: fn(&GroupModel) -> Option<&PayoutDistribution>,
) -> PayoutStats {
    let (mut m1, mut m2, mut p) = (0.0, 0.0, 0.0);
    let (mut e1, mut e2, mut ep) = (0.0, 0.0, 0.0);
    for (w, ms) in models.grid.weights.iter().zip(&models.models) {
        if let Some(d) = pick(&ms[g]) {
            m1 += w * d.mean;
            m2 += w * d.second_moment;
            p += w * d.prob_positive;
            e1 += w * (d.mean_error_estimate + 1e-12 * d.mean);
            e2 += w * (d.std_error_estimate + 1e-12 * d.variance().sqrt());
            ep += w * (d.prob_error_estimate + 1e-12 * d.prob_positive);
        }
    }
    PayoutStats {
        mean_payout_per_member: m1,
        mean_payout_per_member_se: e1,
        std_payout_per_member: (m2 - m1 * m1).max(0.0).sqrt(),
        std_payout_per_member_se: e2,
        prob_any_payout: p,
        prob_any_payout_se: ep,
    }
}

/// A member-year's mean, std and P(any payout), mixed over the factor nodes: within a node the
/// benefits are independent; across nodes the moments mix with the node probabilities.
pub(super) fn mixed_exact_stats(models: &FactorModels, g: usize) -> ExactStats {
    let (mut m1, mut m2, mut p) = (0.0, 0.0, 0.0);
    for (w, ms) in models.grid.weights.iter().zip(&models.models) {
        let e = exact_stats(&ms[g]);
        let second = e.std_payout_per_member.powi(2) + e.mean_payout_per_member.powi(2);
        m1 += w * e.mean_payout_per_member;
        m2 += w * second;
        p += w * e.prob_any_payout;
    }
    ExactStats {
        mean_payout_per_member: m1,
        std_payout_per_member: (m2 - m1 * m1).max(0.0).sqrt(),
        prob_any_payout: p,
    }
}

/// Mean and variance of the portfolio total at every factor combination, exactly from the
/// member distributions (members are independent given the factors).
pub(super) fn conditional_moments(models: &FactorModels) -> Vec<(f64, f64)> {
    models
        .models
        .iter()
        .map(|ms| {
            ms.iter().fold((0.0, 0.0), |(m, v), g| {
                let e = exact_stats(g);
                let n = g.members as f64;
                (
                    m + n * e.mean_payout_per_member,
                    v + n * e.std_payout_per_member.powi(2),
                )
            })
        })
        .collect()
}

/// Mean and variance of the total over the factor combinations.
pub(super) fn mixed_moments(models: &FactorModels) -> (f64, f64) {
    let cond = conditional_moments(models);
    let w = &models.grid.weights;
    let mean: f64 = w.iter().zip(&cond).map(|(w, (m, _))| w * m).sum();
    let second: f64 = w.iter().zip(&cond).map(|(w, (m, v))| w * (v + m * m)).sum();
    (mean, (second - mean * mean).max(0.0))
}

/// The variance decomposition over the factors and the figures without them.
pub(super) fn factor_summary(
    scenario: &Scenario,
    models: &FactorModels,
    cancel: Option<&Cancellation>,
) -> Result<FactorSummary, PricingError> {
    let cond = conditional_moments(models);
    let w = &models.grid.weights;
    let mean: f64 = w.iter().zip(&cond).map(|(w, (m, _))| w * m).sum();
    let process_variance: f64 = w.iter().zip(&cond).map(|(w, (_, v))| w * v).sum();
    let between: f64 = w
        .iter()
        .zip(&cond)
        .map(|(w, (m, _))| w * (m - mean).powi(2))
        .sum();
    let total_variance = process_variance + between;
    let factors = scenario
        .risk_factors()
        .iter()
        .enumerate()
        .map(|(f, factor)| {
            let nodes = &models.grid.nodes[f];
            // E[total | factor f at node k], averaged over the other factors.
            let mut by_node = vec![0.0; nodes.values.len()];
            for ((combo, w), (m, _)) in models.grid.combos.iter().zip(w).zip(&cond) {
                by_node[combo[f]] += w * m;
            }
            let explained: f64 = by_node
                .iter()
                .zip(&nodes.weights)
                .map(|(s, nw)| nw * (s / nw - mean).powi(2))
                .sum();
            RiskFactorResult {
                id: factor.id.clone(),
                applies_to: factor
                    .applies_to
                    .iter()
                    .map(|t| t.key().to_string())
                    .collect(),
                groups: factor.groups.len(),
                distribution: format!("{:?}", factor.family).to_lowercase(),
                mean: factor.mean,
                cv: factor.cv,
                variance_explained: if total_variance > 0.0 {
                    explained / total_variance
                } else {
                    0.0
                },
                nodes: nodes.values.len(),
                node_variance_kept: nodes.variance_kept,
            }
        })
        .collect();
    let base = FactorModels::without_factors(crate::model::build_models(scenario, cancel)?);
    let (lattice, _) = exact::portfolio(&base);
    let mut var = BTreeMap::new();
    let mut tvar = BTreeMap::new();
    for level in REPORT_LEVELS {
        var.insert(level_key(level), lattice.var(level));
        tvar.insert(level_key(level), lattice.tvar(level));
    }
    Ok(FactorSummary {
        factors,
        total_variance,
        process_variance,
        process_risk: ProcessRiskResult {
            mean: lattice.mean(),
            std: lattice.std(),
            var,
            tvar,
        },
    })
}
