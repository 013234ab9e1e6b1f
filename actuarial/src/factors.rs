//! Risk factors: quantities common to every member of a simulated year (morbidity trend,
//! medical-cost inflation, newly listed drugs, the error of the morbidity table itself).
//!
//! Each portfolio-year draws one value per factor, independently across factors; every member of
//! every group the factor applies to has the targeted quantity multiplied by it (a frequency
//! mean, a drug need rate capped at 1, or the cost before deductible, coinsurance and limit).
//!
//! A factor's distribution (gamma or lognormal, given by mean and cv) is represented by
//! [`NODES_ONE`] or [`NODES_MANY`] nodes: the distribution is cut into strata of fixed
//! probability, finer in both tails, and each stratum becomes one node at its exact conditional
//! mean with the stratum's probability. The factor's mean is kept exactly; its variance is
//! understated by the within-stratum variance, which [`FactorNodes::variance_kept`] reports. The
//! Monte Carlo and the exact method use the same nodes, so they price the same model.

use serde::Serialize;

use crate::dist::{Frequency, Severity};

/// The quantities a factor can multiply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum FactorTarget {
    #[serde(rename = "inpatient.frequency")]
    InpatientFrequency,
    #[serde(rename = "inpatient.severity")]
    InpatientSeverity,
    #[serde(rename = "specialty_drug.need_rate")]
    DrugNeedRate,
    #[serde(rename = "specialty_drug.cost")]
    DrugCost,
}

impl FactorTarget {
    pub const ALL: [FactorTarget; 4] = [
        FactorTarget::InpatientFrequency,
        FactorTarget::InpatientSeverity,
        FactorTarget::DrugNeedRate,
        FactorTarget::DrugCost,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Self::InpatientFrequency => "inpatient.frequency",
            Self::InpatientSeverity => "inpatient.severity",
            Self::DrugNeedRate => "specialty_drug.need_rate",
            Self::DrugCost => "specialty_drug.cost",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.key() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FactorFamily {
    Gamma,
    Lognormal,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RiskFactor {
    pub id: String,
    pub applies_to: Vec<FactorTarget>,
    /// Indices of the groups it applies to, in scenario order.
    pub groups: Vec<usize>,
    pub family: FactorFamily,
    pub mean: f64,
    pub cv: f64,
}

/// Strata boundaries (cumulative probabilities) for one factor alone, and for each of several.
const STRATA_ONE: [f64; 25] = [
    0.0, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.07, 0.1, 0.15, 0.25, 0.35, 0.5, 0.65, 0.75,
    0.85, 0.9, 0.93, 0.96, 0.98, 0.99, 0.995, 0.9975, 0.999, 1.0,
];
const STRATA_MANY: [f64; 12] = [
    0.0, 0.005, 0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975, 0.995, 0.999, 1.0,
];
pub const NODES_ONE: usize = STRATA_ONE.len() - 1;
pub const NODES_MANY: usize = STRATA_MANY.len() - 1;

/// A factor's nodes: values and probabilities.
#[derive(Debug, Clone, PartialEq)]
pub struct FactorNodes {
    pub values: Vec<f64>,
    pub weights: Vec<f64>,
    /// Variance of the nodes / variance of the factor.
    pub variance_kept: f64,
}

impl RiskFactor {
    fn distribution(&self) -> Severity {
        match self.family {
            FactorFamily::Gamma => Severity::Gamma {
                mean: self.mean,
                cv: self.cv,
            },
            FactorFamily::Lognormal => Severity::Lognormal {
                mean: self.mean,
                cv: self.cv,
            },
        }
    }

    /// The nodes, with the coarser strata when the scenario has more than one factor.
    pub fn nodes(&self, alone: bool) -> FactorNodes {
        let strata: &[f64] = if alone { &STRATA_ONE } else { &STRATA_MANY };
        let d = self.distribution();
        let bounds: Vec<f64> = strata.iter().map(|&u| quantile(&d, u)).collect();
        let mut values = Vec::with_capacity(strata.len() - 1);
        let mut weights = Vec::with_capacity(strata.len() - 1);
        for (u, x) in strata.windows(2).zip(bounds.windows(2)) {
            let w = u[1] - u[0];
            let pm = |x: f64| {
                if x.is_finite() {
                    d.partial_mean(x)
                } else {
                    self.mean
                }
            };
            let v = ((pm(x[1]) - pm(x[0])) / w).clamp(x[0], x[1].max(x[0]));
            values.push(v);
            weights.push(w);
        }
        let var_nodes: f64 = values
            .iter()
            .zip(&weights)
            .map(|(v, w)| w * (v - self.mean).powi(2))
            .sum();
        let var = (self.mean * self.cv).powi(2);
        FactorNodes {
            values,
            weights,
            variance_kept: if var > 0.0 { var_nodes / var } else { 1.0 },
        }
    }
}

/// The u-quantile of a gamma or lognormal, by bisection on the distribution function (0 at
/// u = 0, infinite at u = 1).
fn quantile(d: &Severity, u: f64) -> f64 {
    if u <= 0.0 {
        return 0.0;
    }
    if u >= 1.0 {
        return f64::INFINITY;
    }
    let mut hi = d.mean().max(1e-300);
    while d.cdf(hi) < u {
        hi *= 2.0;
    }
    let mut lo = 0.0;
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if d.cdf(mid) < u {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// A frequency with its mean multiplied by `k` (a Bernoulli p capped at 1; a negative binomial
/// keeps its variance-to-mean ratio).
pub fn scale_frequency(f: &Frequency, k: f64) -> Frequency {
    match *f {
        Frequency::Poisson { mean } => Frequency::Poisson { mean: mean * k },
        Frequency::NegativeBinomial { mean, variance } => Frequency::NegativeBinomial {
            mean: mean * k,
            variance: variance * k,
        },
        Frequency::Bernoulli { p } => Frequency::Bernoulli {
            p: (p * k).min(1.0),
        },
    }
}

/// A cost multiplied by `k`.
pub fn scale_severity(s: &Severity, k: f64) -> Severity {
    match *s {
        Severity::Lognormal { mean, cv } => Severity::Lognormal { mean: mean * k, cv },
        Severity::Gamma { mean, cv } => Severity::Gamma { mean: mean * k, cv },
        Severity::Pareto { alpha, theta } => Severity::Pareto {
            alpha,
            theta: theta * k,
        },
    }
}

/// Multipliers of the four targets for one group at one combination of factor values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Multipliers {
    pub inpatient_frequency: f64,
    pub inpatient_severity: f64,
    pub drug_need_rate: f64,
    pub drug_cost: f64,
}

impl Multipliers {
    pub const ONE: Self = Self {
        inpatient_frequency: 1.0,
        inpatient_severity: 1.0,
        drug_need_rate: 1.0,
        drug_cost: 1.0,
    };

    fn times(mut self, target: FactorTarget, v: f64) -> Self {
        match target {
            FactorTarget::InpatientFrequency => self.inpatient_frequency *= v,
            FactorTarget::InpatientSeverity => self.inpatient_severity *= v,
            FactorTarget::DrugNeedRate => self.drug_need_rate *= v,
            FactorTarget::DrugCost => self.drug_cost *= v,
        }
        self
    }
}

/// Every combination of the factors' nodes (the last factor fastest), with its probability.
#[derive(Debug, Clone, PartialEq)]
pub struct FactorGrid {
    pub nodes: Vec<FactorNodes>,
    /// Node index of each factor, per combination.
    pub combos: Vec<Vec<usize>>,
    pub weights: Vec<f64>,
}

impl FactorGrid {
    pub fn new(factors: &[RiskFactor]) -> Self {
        let alone = factors.len() == 1;
        let nodes: Vec<FactorNodes> = factors.iter().map(|f| f.nodes(alone)).collect();
        let mut combos: Vec<Vec<usize>> = vec![Vec::new()];
        let mut weights = vec![1.0];
        for n in &nodes {
            let mut next_c = Vec::with_capacity(combos.len() * n.values.len());
            let mut next_w = Vec::with_capacity(combos.len() * n.values.len());
            for (c, w) in combos.iter().zip(&weights) {
                for (k, nw) in n.weights.iter().enumerate() {
                    let mut c = c.clone();
                    c.push(k);
                    next_c.push(c);
                    next_w.push(w * nw);
                }
            }
            combos = next_c;
            weights = next_w;
        }
        Self {
            nodes,
            combos,
            weights,
        }
    }

    /// The multipliers of group `g` at combination `c`.
    pub fn multipliers(&self, factors: &[RiskFactor], c: usize, g: usize) -> Multipliers {
        let mut m = Multipliers::ONE;
        for (f, (factor, &k)) in factors.iter().zip(&self.combos[c]).enumerate() {
            if factor.groups.binary_search(&g).is_ok() {
                let v = self.nodes[f].values[k];
                for &t in &factor.applies_to {
                    m = m.times(t, v);
                }
            }
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn factor(family: FactorFamily, cv: f64) -> RiskFactor {
        RiskFactor {
            id: "f".into(),
            applies_to: vec![FactorTarget::InpatientFrequency],
            groups: vec![0],
            family,
            mean: 1.0,
            cv,
        }
    }

    #[test]
    fn nodes_keep_the_mean_and_most_of_the_variance() {
        for family in [FactorFamily::Gamma, FactorFamily::Lognormal] {
            for alone in [true, false] {
                let n = factor(family, 0.1).nodes(alone);
                let w: f64 = n.weights.iter().sum();
                let m: f64 = n.values.iter().zip(&n.weights).map(|(v, w)| v * w).sum();
                assert!((w - 1.0).abs() < 1e-12);
                assert!((m - 1.0).abs() < 1e-9, "{family:?} {alone}: mean {m}");
                assert!(n.values.windows(2).all(|p| p[0] < p[1]));
                let floor = if alone { 0.98 } else { 0.95 };
                assert!(
                    n.variance_kept > floor && n.variance_kept <= 1.0 + 1e-9,
                    "{family:?} {alone}: {}",
                    n.variance_kept
                );
            }
        }
    }

    #[test]
    fn grid_weights_multiply() {
        let f = [
            factor(FactorFamily::Gamma, 0.1),
            RiskFactor {
                applies_to: vec![FactorTarget::InpatientSeverity, FactorTarget::DrugCost],
                ..factor(FactorFamily::Lognormal, 0.05)
            },
        ];
        let g = FactorGrid::new(&f);
        assert_eq!(g.combos.len(), NODES_MANY * NODES_MANY);
        assert!((g.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let m = g.multipliers(&f, 0, 0);
        assert_eq!(m.inpatient_frequency, g.nodes[0].values[0]);
        assert_eq!(m.drug_cost, g.nodes[1].values[0]);
        assert_eq!(g.multipliers(&f, 0, 1), Multipliers::ONE);
    }
}
