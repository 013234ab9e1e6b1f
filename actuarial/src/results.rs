//! The results of a pricing run. The JSON form of [`PricingResults`] is the `--json` contract.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::adverse::RenewalYear;
use crate::scenario::RiskMeasure;

/// Monte Carlo estimates for one member-year payout, each with its standard error.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PayoutStats {
    pub mean_payout_per_member: f64,
    pub mean_payout_per_member_se: f64,
    pub std_payout_per_member: f64,
    pub std_payout_per_member_se: f64,
    pub prob_any_payout: f64,
    pub prob_any_payout_se: f64,
}

/// The same quantities computed from the discretised member-level distributions (no Monte
/// Carlo error; the discretisation error is reported under `method`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExactStats {
    pub mean_payout_per_member: f64,
    pub std_payout_per_member: f64,
    pub prob_any_payout: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ByBenefit {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inpatient: Option<PayoutStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub specialty_drug: Option<PayoutStats>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupResult {
    pub id: String,
    pub members: u64,
    pub preexisting: bool,
    #[serde(flatten)]
    pub stats: PayoutStats,
    pub by_benefit: ByBenefit,
    pub exact: ExactStats,
}

/// Annual portfolio payout (all members, all priced benefits). `var`/`tvar` are keyed by level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PortfolioResult {
    pub members: u64,
    pub mean: f64,
    pub mean_se: f64,
    pub std: f64,
    pub std_se: f64,
    pub var: BTreeMap<String, f64>,
    pub var_se: BTreeMap<String, f64>,
    pub tvar: BTreeMap<String, f64>,
    pub tvar_se: BTreeMap<String, f64>,
    /// Percentiles of the total (read as VaR is), keyed by probability like `var`, at
    /// [`PERCENTILE_LEVELS`](crate::engine::PERCENTILE_LEVELS), with their standard errors or
    /// error bounds. Empty only in results stored before they were reported.
    #[serde(default)]
    pub percentiles: BTreeMap<String, f64>,
    #[serde(default)]
    pub percentiles_se: BTreeMap<String, f64>,
    /// The mean and std of the total split by benefit, from the member-level distributions
    /// (over the risk factors when there are any). Absent in results stored before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_benefit: Option<PortfolioByBenefit>,
}

/// One benefit's part of the annual portfolio total.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BenefitTotal {
    pub mean: f64,
    pub std: f64,
    /// mean / portfolio mean.
    pub share_of_mean: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PortfolioByBenefit {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inpatient: Option<BenefitTotal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub specialty_drug: Option<BenefitTotal>,
}

/// The loss ratio at a flat premium per member: its expectation, distribution and the chance
/// the year loses money. The loss ratio is the total / (premium x members), so its percentiles
/// are the total's rescaled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LossRatioAtPremium {
    pub premium_per_member: f64,
    /// Premium per member x members.
    pub gross_premium: f64,
    /// This premium / the recommended flat premium.
    pub to_recommended: f64,
    pub expected_loss_ratio: f64,
    pub expected_loss_ratio_se: f64,
    pub loss_ratio_std: f64,
    /// Keyed by probability as `PortfolioResult::percentiles`.
    pub loss_ratio_percentiles: BTreeMap<String, f64>,
    pub prob_loss_ratio_above_100: f64,
    pub prob_loss_ratio_above_100_se: f64,
    /// Premium less expenses less expected payout, per member.
    pub margin_per_member: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CrossSubsidyRow {
    pub id: String,
    pub members: u64,
    /// Risk-rated pure premium: the group's expected payout per member.
    pub pure_premium_per_member: f64,
    pub pure_premium_per_member_se: f64,
    /// What the group would pay if the same loadings were applied to its own pure premium.
    pub risk_rated_premium_per_member: f64,
    pub flat_premium_per_member: f64,
    /// Flat premium x members.
    pub premium_paid: f64,
    /// Pure premium x members.
    pub expected_payout: f64,
    /// Premium paid minus the risk-rated premium for the group: positive when the group pays for
    /// others. Sums to zero over the groups.
    pub subsidy: f64,
    /// Expected payout / premium paid.
    pub loss_ratio: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TargetLossRatioResult {
    pub target_loss_ratio: f64,
    pub premium_per_member: f64,
    pub premium_per_member_se: f64,
    pub gross_premium: f64,
    /// Premium - expenses - expected payout, for the portfolio.
    pub margin: f64,
    pub margin_per_member: f64,
    /// Margin as a multiple of the risk margin the pricing basis asks for.
    pub margin_to_risk_margin: f64,
    pub prob_loss_ratio_above_100: f64,
    pub prob_loss_ratio_above_100_se: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PremiumResult {
    pub risk_measure: RiskMeasure,
    pub level: f64,
    pub expense_ratio: f64,
    pub cost_of_capital: f64,
    /// Portfolio totals per year.
    pub expected_payout: f64,
    pub expected_payout_se: f64,
    pub risk_measure_value: f64,
    pub risk_measure_value_se: f64,
    pub risk_margin: f64,
    /// Bounds the error as if the mean and the risk measure were perfectly correlated.
    pub risk_margin_se: f64,
    pub expenses: f64,
    pub gross_premium: f64,
    pub gross_premium_se: f64,
    pub flat_premium_per_member: f64,
    pub flat_premium_per_member_se: f64,
    pub expected_loss_ratio: f64,
    pub expected_loss_ratio_se: f64,
    pub prob_loss_ratio_above_100: f64,
    pub prob_loss_ratio_above_100_se: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetLossRatioResult>,
    /// The loss ratio at the recommended flat premium, as `at_premium` has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_ratio: Option<LossRatioAtPremium>,
    /// The same at the scenario's `[pricing] premium`, when it gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_premium: Option<LossRatioAtPremium>,
    pub cross_subsidy: Vec<CrossSubsidyRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupTakeUp {
    pub id: String,
    pub take_up: f64,
    pub members: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdverseSelectionResult {
    /// "equilibrium" or "no_equilibrium".
    pub status: String,
    pub max_premium: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub premium_per_member: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_payout_per_member: Option<f64>,
    /// (risk measure - mean) / std of the base run, used to scale the risk margin to other pools.
    pub risk_factor: f64,
    /// The premium per member at which the groups' take-up is observed (the stated premium, or
    /// the recommended one); the renewal path starts there. 0 in results stored before.
    #[serde(default)]
    pub observed_premium_per_member: f64,
    /// Whether that premium is the scenario's `[pricing] premium` (else the recommended one).
    #[serde(default)]
    pub observed_premium_stated: bool,
    /// How each pool on the renewal path (and the equilibrium's) was priced: "exact" (its own
    /// exact portfolio distribution) or "scaled" (the risk margin scaled from the priced pool by
    /// the standard deviation). Empty in results stored before.
    #[serde(default)]
    pub repricing: String,
    /// With exact re-pricing, |P - R(P)| per member at the reported equilibrium.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equilibrium_residual_per_member: Option<f64>,
    pub groups: Vec<GroupTakeUp>,
    pub renewal: Vec<RenewalYear>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SweepRow {
    /// One value per key, in the order of `SweepResult::keys`.
    pub values: Vec<f64>,
    pub members: u64,
    pub expected_payout: f64,
    pub expected_payout_se: f64,
    pub flat_premium_per_member: f64,
    pub flat_premium_per_member_se: f64,
    pub expected_loss_ratio: f64,
    /// VaR and TVaR of the portfolio total at the pricing level.
    pub var: f64,
    pub var_se: f64,
    pub tvar: f64,
    pub tvar_se: f64,
    pub prob_loss_ratio_above_100: f64,
    /// With `take_up_scale` and elasticities: the premium, as a multiple of the scenario's, at
    /// which this row's enrolment forms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolment_premium_ratio: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SweepResult {
    pub simulations: u64,
    pub level: f64,
    pub keys: Vec<String>,
    pub rows: Vec<SweepRow>,
}

/// The portfolio total without the risk factors (every factor at its mean): member-level
/// ("process") risk alone, computed exactly from the member distributions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProcessRiskResult {
    pub mean: f64,
    pub std: f64,
    pub var: BTreeMap<String, f64>,
    pub tvar: BTreeMap<String, f64>,
}

/// One risk factor: its nodes and how much of the variance of the portfolio total it explains
/// (Var(E[total | factor]) / Var(total), exact over the nodes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RiskFactorResult {
    pub id: String,
    pub applies_to: Vec<String>,
    pub groups: usize,
    pub distribution: String,
    pub mean: f64,
    pub cv: f64,
    pub variance_explained: f64,
    /// Nodes that represent the factor's distribution, and the share of its variance they keep.
    pub nodes: usize,
    pub node_variance_kept: f64,
}

/// What the risk factors do to the portfolio, beside the figures with them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FactorSummary {
    pub factors: Vec<RiskFactorResult>,
    /// Var(total) with the factors, exact over the nodes.
    pub total_variance: f64,
    /// E[Var(total | factors)]: the part of the variance that member-level risk makes.
    pub process_variance: f64,
    pub process_risk: ProcessRiskResult,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MethodInfo {
    /// "exact" or "monte_carlo": which method ran.
    pub name: String,
    pub description: String,
    pub rng: String,
    pub block_years: u64,
    /// Largest |E[Y]_h - E[Y]_2h| / E[Y] over groups and benefits (a conservative bound on the
    /// relative discretisation error of the expected payout).
    pub max_relative_discretisation_error: f64,
    /// Largest |P(Y>0)_h - P(Y>0)_2h| over groups and benefits.
    pub max_prob_discretisation_error: f64,
    /// The exact method's numerical error bounds (absent for Monte Carlo).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact_error: Option<ExactErrorBound>,
}

/// Bounds on the numerical error of the exact method.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExactErrorBound {
    /// Span of the portfolio lattice, in currency units: VaR and TVaR are within it.
    pub lattice_span: f64,
    pub lattice_points: usize,
    /// Upper bound on the probability that wraps around the lattice window.
    pub aliasing_mass: f64,
    /// Upper bound on the variance added by rounding payouts to the lattice, relative.
    pub rounding_variance: f64,
    /// |total probability - 1| left by floating-point rounding in the transforms.
    pub mass_defect: f64,
}

/// The distribution of the annual portfolio total, bounded in size so that it is stored with the
/// run and the report's charts can be drawn from it later: the quantile function on a fixed grid
/// of probabilities, and a density on at most [`DENSITY_BINS`](crate::engine::DENSITY_BINS)
/// bins of equal width. The loss ratio at a premium P is the total / P, so its distribution is
/// this one rescaled. From the exact lattice, or from the sorted Monte Carlo totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TotalDistributionSummary {
    /// Probabilities p, ascending: steps of 0.005 and return periods from 1 in 10 to 1 in
    /// 1,000 years.
    pub probabilities: Vec<f64>,
    /// The smallest total x with P(total <= x) >= p, for each p (as VaR is read).
    pub quantiles: Vec<f64>,
    /// Left edge of the first density bin, in currency units.
    pub density_start: f64,
    /// Width of every density bin, in currency units.
    pub density_width: f64,
    /// Probability of each bin divided by its width (per currency unit).
    pub density: Vec<f64>,
    /// Probability outside the bins (below the first and above the last).
    pub density_mass_outside: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PricingResults {
    pub name: String,
    pub currency: String,
    pub seed: u64,
    /// Portfolio-years of the Monte Carlo (the scenario's count; with `method.name = "exact"`
    /// none are simulated).
    pub simulations: u64,
    pub scenario_hash: String,
    pub version: String,
    /// The git commit the code was built from ("unknown" outside a checkout).
    pub git_commit: String,
    pub members: u64,
    pub groups: Vec<GroupResult>,
    pub portfolio: PortfolioResult,
    pub premium: PremiumResult,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adverse_selection: Option<AdverseSelectionResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk_factors: Option<FactorSummary>,
    pub method: MethodInfo,
    /// Absent only in results stored before it was reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<TotalDistributionSummary>,
    /// The model's aggregates beside published ones (`puhui price --calibration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<crate::calibration::CalibrationResult>,
}

impl PricingResults {
    pub fn to_json_pretty(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }
}
