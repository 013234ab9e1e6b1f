//! The member-level model of each group: its payout distribution per benefit, built once per
//! run (or per sweep row and factor node) and shared by the Monte Carlo and the exact method.

use std::collections::HashMap;
use std::sync::Arc;

use rand_chacha::ChaCha8Rng;
use rand_distr::{Binomial, Distribution};
use rayon::prelude::*;

use crate::engine::{Cancellation, PricingError};
use crate::factors::{FactorGrid, Multipliers, scale_frequency, scale_severity};
use crate::member::{PayoutDistribution, Resolution};
use crate::scenario::{Benefit, Scenario};

/// One group's member-level model.
pub struct GroupModel {
    pub members: u64,
    pub inpatient: Option<Arc<PayoutDistribution>>,
    pub specialty_drug: Option<Arc<PayoutDistribution>>,
    q_inpatient: f64,
    q_drug: f64,
    /// The first binomial of the category draws has fixed parameters: built once.
    first: Option<Binomial>,
}

impl GroupModel {
    pub fn new(
        members: u64,
        inpatient: Option<Arc<PayoutDistribution>>,
        specialty_drug: Option<Arc<PayoutDistribution>>,
    ) -> Self {
        let q = |d: &Option<Arc<PayoutDistribution>>| {
            d.as_ref().map_or(0.0, |d| d.prob_positive.clamp(0.0, 1.0))
        };
        let q_inpatient = q(&inpatient);
        let q_drug = q(&specialty_drug);
        let first_p = if q_inpatient > 0.0 && q_drug > 0.0 {
            q_inpatient * q_drug
        } else {
            q_inpatient.max(q_drug)
        };
        let first = if members > 0 && first_p > 0.0 {
            Binomial::new(members, first_p).ok()
        } else {
            None
        };
        Self {
            members,
            inpatient,
            specialty_drug,
            q_inpatient,
            q_drug,
            first,
        }
    }

    /// Members with (both, inpatient only, drug only) payouts this year. The benefits are
    /// independent, so the categories are multinomial; drawn as successive binomials.
    #[inline]
    pub(crate) fn categories(&self, rng: &mut ChaCha8Rng) -> (u64, u64, u64) {
        let Some(first) = &self.first else {
            return (0, 0, 0);
        };
        let k = first.sample(rng);
        let (qi, qd) = (self.q_inpatient, self.q_drug);
        if qi > 0.0 && qd > 0.0 {
            let rest = self.members - k;
            let denom = 1.0 - qi * qd;
            let p_inp = if denom > 0.0 {
                (qi * (1.0 - qd) / denom).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let inp_only = binomial(rest, p_inp, rng);
            // Given neither "both" nor "inpatient only", the drug-only probability is
            // (1 - qi) qd / (1 - qi) = qd.
            let drug_only = binomial(rest - inp_only, qd, rng);
            (k, inp_only, drug_only)
        } else if qi > 0.0 {
            (0, k, 0)
        } else {
            (0, 0, k)
        }
    }
}

#[inline]
fn binomial(n: u64, p: f64, rng: &mut ChaCha8Rng) -> u64 {
    if n == 0 || p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    // Parameters are checked above, so construction cannot fail; 0 keeps the function total.
    Binomial::new(n, p).map_or(0, |b| b.sample(rng))
}

pub fn build_models(
    scenario: &Scenario,
    cancel: Option<&Cancellation>,
) -> Result<Vec<GroupModel>, PricingError> {
    build_models_at(scenario, Resolution::default(), cancel)
}

/// The models of every group with no risk factor applied.
pub fn build_models_at(
    scenario: &Scenario,
    resolution: Resolution,
    cancel: Option<&Cancellation>,
) -> Result<Vec<GroupModel>, PricingError> {
    (0..scenario.groups().len())
        .into_par_iter()
        .map(|g| {
            Cancellation::check(cancel)?;
            let inpatient = build_one(scenario, g, Benefit::Inpatient, (1.0, 1.0), resolution)?;
            let drug = build_one(scenario, g, Benefit::SpecialtyDrug, (1.0, 1.0), resolution)?;
            Ok(GroupModel::new(
                scenario.groups()[g].members,
                inpatient,
                drug,
            ))
        })
        .collect()
}

/// The payout distribution of one benefit of group `g` with its frequency (or need rate) mean
/// and its cost multiplied by `scale`; None when the benefit is not priced.
fn build_one(
    scenario: &Scenario,
    g: usize,
    benefit: Benefit,
    (frequency_scale, cost_scale): (f64, f64),
    resolution: Resolution,
) -> Result<Option<Arc<PayoutDistribution>>, PricingError> {
    let mut built = build_at(
        scenario,
        g,
        benefit,
        &[frequency_scale],
        cost_scale,
        resolution,
    )?;
    Ok(built.pop().flatten())
}

/// The payout distributions of one benefit of group `g` with its cost multiplied by
/// `cost_scale` and its frequency (or need rate) mean by each of `frequency_scales`, built
/// together so that they share what does not depend on the frequency; None each when the
/// benefit is not priced.
fn build_at(
    scenario: &Scenario,
    g: usize,
    benefit: Benefit,
    frequency_scales: &[f64],
    cost_scale: f64,
    resolution: Resolution,
) -> Result<Vec<Option<Arc<PayoutDistribution>>>, PricingError> {
    let group = &scenario.groups()[g];
    let Some((f, s, t)) = group.benefit_model(benefit, scenario.benefits()) else {
        return Ok(vec![None; frequency_scales.len()]);
    };
    let frequencies: Vec<_> = frequency_scales
        .iter()
        .map(|&k| scale_frequency(&f, k))
        .collect();
    let s = scale_severity(&s, cost_scale);
    PayoutDistribution::build_many(&frequencies, &s, &t, resolution)
        .map(|built| built.into_iter().map(|d| Some(Arc::new(d))).collect())
        .map_err(|source| PricingError::Payout {
            group: group.id.clone(),
            benefit: benefit.key(),
            source,
        })
}

/// Lattice resolution of the member distributions at factor nodes: coarser than a run without
/// factors (many more distributions are built), and reported through their error estimates.
pub const FACTOR_RESOLUTION: Resolution = Resolution {
    cells_per_scale: 64.0,
    max_cells: 1 << 11,
};

/// The member-level models at every combination of the factors' nodes (one combination of
/// weight 1 without factors).
pub struct FactorModels {
    pub grid: FactorGrid,
    /// `models[c][g]`: group g at combination c.
    pub models: Vec<Vec<GroupModel>>,
}

impl FactorModels {
    /// Checks `cancel` before each group's models (with factors, before each benefit of a group
    /// at each cost node).
    pub fn build(scenario: &Scenario, cancel: Option<&Cancellation>) -> Result<Self, PricingError> {
        let factors = scenario.risk_factors();
        let grid = FactorGrid::new(factors);
        if factors.is_empty() {
            return Ok(Self::without_factors(build_models(scenario, cancel)?));
        }
        // Distinct (group, benefit, cost scale, frequency scale) across the grid, built once
        // each; those that differ only in the frequency scale are built together.
        type Key = (usize, Benefit, u64, u64);
        let key = |g: usize, b: Benefit, m: &Multipliers| -> Key {
            let (f, c) = benefit_scales(b, m);
            (g, b, c.to_bits(), f.to_bits())
        };
        let groups = scenario.groups().len();
        let mut keys: Vec<Key> = Vec::new();
        for c in 0..grid.combos.len() {
            for g in 0..groups {
                let m = grid.multipliers(factors, c, g);
                keys.push(key(g, Benefit::Inpatient, &m));
                keys.push(key(g, Benefit::SpecialtyDrug, &m));
            }
        }
        keys.sort_unstable();
        keys.dedup();
        let runs: Vec<&[Key]> = keys
            .chunk_by(|a, b| (a.0, a.1, a.2) == (b.0, b.1, b.2))
            .collect();
        let built: Vec<Vec<Option<Arc<PayoutDistribution>>>> = runs
            .par_iter()
            .map(|run| {
                Cancellation::check(cancel)?;
                let (g, b, c, _) = run[0];
                let frequency_scales: Vec<f64> = run.iter().map(|k| f64::from_bits(k.3)).collect();
                build_at(
                    scenario,
                    g,
                    b,
                    &frequency_scales,
                    f64::from_bits(c),
                    FACTOR_RESOLUTION,
                )
            })
            .collect::<Result<_, _>>()?;
        let table: HashMap<Key, Option<Arc<PayoutDistribution>>> = keys
            .iter()
            .copied()
            .zip(built.into_iter().flatten())
            .collect();
        let lookup = |k: Key| table.get(&k).cloned().flatten();
        let models = (0..grid.combos.len())
            .map(|c| {
                (0..groups)
                    .map(|g| {
                        let m = grid.multipliers(factors, c, g);
                        GroupModel::new(
                            scenario.groups()[g].members,
                            lookup(key(g, Benefit::Inpatient, &m)),
                            lookup(key(g, Benefit::SpecialtyDrug, &m)),
                        )
                    })
                    .collect()
            })
            .collect();
        Ok(Self { grid, models })
    }

    /// Models without factors (one combination of weight 1).
    pub fn without_factors(models: Vec<GroupModel>) -> Self {
        Self {
            grid: FactorGrid::new(&[]),
            models: vec![models],
        }
    }

    /// All models of every combination (for error estimates).
    pub fn all(&self) -> impl Iterator<Item = &GroupModel> {
        self.models.iter().flatten()
    }
}

/// The (frequency, cost) multipliers that apply to a benefit.
fn benefit_scales(benefit: Benefit, m: &Multipliers) -> (f64, f64) {
    match benefit {
        Benefit::Inpatient => (m.inpatient_frequency, m.inpatient_severity),
        Benefit::SpecialtyDrug => (m.drug_need_rate, m.drug_cost),
    }
}
