//! From a run to the results: group, portfolio and premium figures, the cross-subsidy and the
//! method.

use crate::exact::ExactError;
use crate::model::{FactorModels, GroupModel};
use crate::montecarlo::{BLOCK_YEARS, GroupAcc};
use crate::premium::gross_premium;
use crate::report::money;
use crate::scenario::{Pricing, REPORT_LEVELS, RiskMeasure, Scenario};
use crate::stats::{MemberStats, TailEstimate};

use super::figures::{benefit_split, loss_ratio_at};
use super::*;

pub(super) fn payout_stats(s: MemberStats) -> PayoutStats {
    PayoutStats {
        mean_payout_per_member: s.mean,
        mean_payout_per_member_se: s.mean_se,
        std_payout_per_member: s.std,
        std_payout_per_member_se: s.std_se,
        prob_any_payout: s.prob,
        prob_any_payout_se: s.prob_se,
    }
}

/// The key of a probability level in the results' maps ("0.995").
pub(crate) fn level_key(level: f64) -> String {
    format!("{level}")
}

/// The main figures of one run: per group, for the portfolio, and the premium.
pub(crate) struct Summary {
    pub groups: Vec<GroupResult>,
    pub portfolio: PortfolioResult,
    pub premium: PremiumResult,
    /// VaR and TVaR at the pricing level (the sweep reports them).
    pub pricing_tail: TailEstimate,
}

pub(crate) fn summarise(scenario: &Scenario, run: &Run) -> Summary {
    let total = run.total.as_ref();
    let members = scenario.total_members();
    let pricing_tail = total.tail(scenario.pricing().level);
    let premium = premium_result(
        scenario.pricing(),
        total,
        &pricing_tail,
        &run.groups,
        members,
    );
    Summary {
        groups: run.groups.clone(),
        portfolio: portfolio_result(members, total),
        premium,
        pricing_tail,
    }
}

/// One group's simulated payout statistics per member-year, overall and by benefit, beside the
/// exact (discretised) ones.
pub(super) fn group_result(
    id: &str,
    preexisting: bool,
    models: &FactorModels,
    g: usize,
    acc: &GroupAcc,
    years: f64,
) -> GroupResult {
    let model = &models.models[0][g];
    let n = model.members as f64 * years;
    let mut inp_m = acc.inp_only;
    inp_m.merge(&acc.both_inp);
    let mut drug_m = acc.drug_only;
    drug_m.merge(&acc.both_drug);
    let mut all_m = acc.inp_only;
    all_m.merge(&acc.drug_only);
    all_m.merge(&acc.both_total);
    let inp = MemberStats::from_sums(n, (acc.n_inp_only + acc.n_both) as f64, &inp_m);
    let drug = MemberStats::from_sums(n, (acc.n_drug_only + acc.n_both) as f64, &drug_m);
    let all = MemberStats::from_sums(
        n,
        (acc.n_inp_only + acc.n_drug_only + acc.n_both) as f64,
        &all_m,
    );
    GroupResult {
        id: id.to_string(),
        members: model.members,
        preexisting,
        stats: payout_stats(all),
        by_benefit: ByBenefit {
            inpatient: model.inpatient.as_ref().map(|_| payout_stats(inp)),
            specialty_drug: model.specialty_drug.as_ref().map(|_| payout_stats(drug)),
        },
        exact: mixed_exact_stats(models, g),
    }
}

/// Mean, std and P(any payout) of a member-year from the discretised distributions; the benefits
/// are independent, so means and variances add.
pub(super) fn exact_stats(model: &GroupModel) -> ExactStats {
    let parts = || {
        [&model.inpatient, &model.specialty_drug]
            .into_iter()
            .flatten()
    };
    let mean: f64 = parts().map(|d| d.mean).sum();
    let var: f64 = parts().map(|d| d.variance()).sum();
    let none: f64 = parts().map(|d| 1.0 - d.prob_positive).product();
    ExactStats {
        mean_payout_per_member: mean,
        std_payout_per_member: var.sqrt(),
        prob_any_payout: 1.0 - none,
    }
}

pub(super) fn portfolio_result(members: u64, total: &dyn TotalDistribution) -> PortfolioResult {
    let mut portfolio = PortfolioResult {
        members,
        mean: total.mean().0,
        mean_se: total.mean().1,
        std: total.std().0,
        std_se: total.std().1,
        var: Default::default(),
        var_se: Default::default(),
        tvar: Default::default(),
        tvar_se: Default::default(),
        percentiles: Default::default(),
        percentiles_se: Default::default(),
        by_benefit: None,
    };
    for level in PERCENTILE_LEVELS {
        let t = total.tail(level);
        portfolio.percentiles.insert(level_key(level), t.var);
        portfolio.percentiles_se.insert(level_key(level), t.var_se);
    }
    for level in REPORT_LEVELS {
        let t = total.tail(level);
        let k = level_key(level);
        portfolio.var.insert(k.clone(), t.var);
        portfolio.var_se.insert(k.clone(), t.var_se);
        portfolio.tvar.insert(k.clone(), t.tvar);
        portfolio.tvar_se.insert(k, t.tvar_se);
    }
    portfolio
}

pub(super) fn premium_result(
    pricing: &Pricing,
    total: &dyn TotalDistribution,
    tail: &TailEstimate,
    groups: &[GroupResult],
    members: u64,
) -> PremiumResult {
    let (measure, measure_se) = match pricing.risk_measure {
        RiskMeasure::Tvar => (tail.tvar, tail.tvar_se),
        RiskMeasure::Var => (tail.var, tail.var_se),
    };
    let mean = total.mean().0;
    let coc = pricing.cost_of_capital;
    let build_up = gross_premium(
        mean,
        measure - mean,
        pricing.expense_ratio,
        pricing.cost_of_capital,
    );
    let gross = build_up.gross;
    let load = 1.0 / (1.0 - pricing.expense_ratio);
    // (1 - coc) mean + coc measure, errors combined as if perfectly correlated (an upper bound).
    let gross_se = ((1.0 - coc).abs() * total.mean().1 + coc * measure_se) * load;
    let nm = members.max(1) as f64;
    let flat = gross / nm;
    let denom = mean + build_up.risk_margin;
    let loss_ratio_se = if denom > 0.0 {
        (1.0 - pricing.expense_ratio) * coc * (measure * total.mean().1 + mean * measure_se)
            / (denom * denom)
    } else {
        0.0
    };
    let (p_exceed, p_exceed_se) = total.prob_above(gross);
    PremiumResult {
        risk_measure: pricing.risk_measure,
        level: pricing.level,
        expense_ratio: pricing.expense_ratio,
        cost_of_capital: coc,
        expected_payout: mean,
        expected_payout_se: total.mean().1,
        risk_measure_value: measure,
        risk_measure_value_se: measure_se,
        risk_margin: build_up.risk_margin,
        risk_margin_se: coc * (measure_se + total.mean().1),
        expenses: build_up.expenses,
        gross_premium: gross,
        gross_premium_se: gross_se,
        flat_premium_per_member: flat,
        flat_premium_per_member_se: gross_se / nm,
        expected_loss_ratio: if gross > 0.0 { mean / gross } else { 0.0 },
        expected_loss_ratio_se: loss_ratio_se,
        prob_loss_ratio_above_100: p_exceed,
        prob_loss_ratio_above_100_se: p_exceed_se,
        target: pricing
            .target_loss_ratio
            .map(|t| target_result(t, pricing, total, build_up.risk_margin, nm)),
        loss_ratio: Some(loss_ratio_at(flat, flat, pricing, total, nm)),
        at_premium: pricing
            .premium
            .map(|p| loss_ratio_at(p, flat, pricing, total, nm)),
        cross_subsidy: cross_subsidy(groups, flat, mean / nm),
    }
}

/// The premium at a target loss ratio and what it leaves after expenses and claims.
pub(super) fn target_result(
    target: f64,
    pricing: &Pricing,
    total: &dyn TotalDistribution,
    risk_margin: f64,
    members: f64,
) -> TargetLossRatioResult {
    let mean = total.mean().0;
    let premium = mean / target;
    let margin = premium * (1.0 - pricing.expense_ratio) - mean;
    let (p, p_se) = total.prob_above(premium);
    TargetLossRatioResult {
        target_loss_ratio: target,
        premium_per_member: premium / members,
        premium_per_member_se: total.mean().1 / target / members,
        gross_premium: premium,
        margin,
        margin_per_member: margin / members,
        margin_to_risk_margin: if risk_margin > 0.0 {
            margin / risk_margin
        } else {
            0.0
        },
        prob_loss_ratio_above_100: p,
        prob_loss_ratio_above_100_se: p_se,
    }
}

/// Who pays for whom under the flat premium: each group's own loaded premium (the flat premium
/// scaled by its expected payout relative to the portfolio's) against the flat one.
pub(super) fn cross_subsidy(
    groups: &[GroupResult],
    flat: f64,
    mean_per_member: f64,
) -> Vec<CrossSubsidyRow> {
    groups
        .iter()
        .map(|g| {
            let b = g.stats.mean_payout_per_member;
            let risk_rated = if mean_per_member > 0.0 {
                flat * b / mean_per_member
            } else {
                flat
            };
            let m = g.members as f64;
            CrossSubsidyRow {
                id: g.id.clone(),
                members: g.members,
                pure_premium_per_member: b,
                pure_premium_per_member_se: g.stats.mean_payout_per_member_se,
                risk_rated_premium_per_member: risk_rated,
                flat_premium_per_member: flat,
                premium_paid: flat * m,
                expected_payout: b * m,
                subsidy: (flat - risk_rated) * m,
                loss_ratio: if flat > 0.0 { b / flat } else { 0.0 },
            }
        })
        .collect()
}

pub(super) fn method_info(
    models: &FactorModels,
    exact: Option<&ExactError>,
    currency: &str,
) -> MethodInfo {
    let mut max_rel: f64 = 0.0;
    let mut max_prob: f64 = 0.0;
    for m in models.all() {
        for d in [&m.inpatient, &m.specialty_drug].into_iter().flatten() {
            if d.mean > 0.0 {
                max_rel = max_rel.max(d.mean_error_estimate / d.mean);
            }
            max_prob = max_prob.max(d.prob_error_estimate);
        }
    }
    let combinations = models.models.len();
    let (name, description) = match exact {
        Some(e) => {
            let factors = if combinations > 1 {
                format!(
                    " The risk factors are averaged over {combinations} combinations of their \
                     values: each factor's distribution is cut into bands of fixed probability \
                     (finer in the tails) and each band is represented by its mean."
                )
            } else {
                String::new()
            };
            (
                "exact",
                format!(
                    "Exact, no simulation. Each group's payout per member is a full probability \
                     distribution on a grid of amounts {} {} apart ({} points); the \
                     distribution of the portfolio total follows from these by Fourier \
                     transforms, with no sampling error.{factors} Numerical error: at most {:.1e} \
                     of the probability wraps around the grid, and rounding amounts to the grid \
                     adds at most {:.2}% to the variance.",
                    money(e.lattice_span, 1),
                    currency,
                    money(e.lattice_points as f64, 0),
                    e.aliasing_mass,
                    100.0 * e.rounding_variance
                ),
            )
        }
        None => {
            let factors = if combinations > 1 {
                format!(
                    " Each simulated year draws the risk factors' values from {combinations} \
                     combinations (each factor's distribution cut into bands of fixed \
                     probability, each band represented by its mean)."
                )
            } else {
                String::new()
            };
            (
                "monte_carlo",
                format!(
                    "Monte Carlo: simulated years. In each year and group, the number of members \
                     paid for inpatient care, for specialty drugs or for both is drawn, and each \
                     such member's payout is drawn from the group's payout distribution per \
                     member (worked out exactly on a grid of amounts).{factors} Figures carry \
                     one standard error of the simulation."
                ),
            )
        }
    };
    MethodInfo {
        name: name.to_string(),
        description,
        rng: "ChaCha8Rng seeded with seed, stream = block index".to_string(),
        block_years: BLOCK_YEARS,
        max_relative_discretisation_error: max_rel,
        max_prob_discretisation_error: max_prob,
        exact_error: exact.map(|e| ExactErrorBound {
            lattice_span: e.lattice_span,
            lattice_points: e.lattice_points,
            aliasing_mass: e.aliasing_mass,
            rounding_variance: e.rounding_variance,
            mass_defect: e.mass_defect,
        }),
    }
}

pub(crate) fn assemble(scenario: &Scenario, models: &FactorModels, run: &Run) -> PricingResults {
    let mut s = summarise(scenario, run);
    s.portfolio.by_benefit = Some(benefit_split(models, s.portfolio.mean));
    PricingResults {
        name: scenario.name().to_string(),
        currency: scenario.currency().to_string(),
        seed: scenario.seed(),
        simulations: run.simulated_years,
        scenario_hash: scenario.hash(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: env!("PUHUI_GIT_COMMIT").to_string(),
        members: scenario.total_members(),
        groups: s.groups,
        portfolio: s.portfolio,
        premium: s.premium,
        adverse_selection: None,
        sweep: None,
        risk_factors: None,
        method: method_info(models, run.exact.as_ref(), scenario.currency()),
        distribution: Some(run.total.summary()),
        calibration: None,
    }
}
