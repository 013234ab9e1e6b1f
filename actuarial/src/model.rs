//! The member-level model of each group: its payout distribution per benefit, built once per
//! run (or per sweep row and factor node) and shared by the Monte Carlo and the exact method.

use rand_chacha::ChaCha8Rng;
use rand_distr::{Binomial, Distribution};
use rayon::prelude::*;

use crate::engine::PricingError;
use crate::member::{PayoutDistribution, Resolution};
use crate::scenario::{Benefit, Scenario};

/// One group's member-level model.
pub struct GroupModel {
    pub members: u64,
    pub inpatient: Option<PayoutDistribution>,
    pub specialty_drug: Option<PayoutDistribution>,
    q_inpatient: f64,
    q_drug: f64,
    /// The first binomial of the category draws has fixed parameters: built once.
    first: Option<Binomial>,
}

impl GroupModel {
    pub fn new(
        members: u64,
        inpatient: Option<PayoutDistribution>,
        specialty_drug: Option<PayoutDistribution>,
    ) -> Self {
        let q = |d: &Option<PayoutDistribution>| {
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

pub fn build_models(scenario: &Scenario) -> Result<Vec<GroupModel>, PricingError> {
    build_models_at(scenario, Resolution::default())
}

pub fn build_models_at(
    scenario: &Scenario,
    resolution: Resolution,
) -> Result<Vec<GroupModel>, PricingError> {
    scenario
        .groups()
        .par_iter()
        .map(|g| {
            let build = |b: Benefit| -> Result<Option<PayoutDistribution>, PricingError> {
                match g.benefit_model(b, scenario.benefits()) {
                    None => Ok(None),
                    Some((f, s, t)) => PayoutDistribution::build(&f, &s, &t, resolution)
                        .map(Some)
                        .map_err(|source| PricingError::Payout {
                            group: g.id.clone(),
                            benefit: b.key(),
                            source,
                        }),
                }
            };
            Ok(GroupModel::new(
                g.members,
                build(Benefit::Inpatient)?,
                build(Benefit::SpecialtyDrug)?,
            ))
        })
        .collect()
}
