//! The member-level annual payout distribution of one benefit, computed exactly up to a stated
//! discretisation, and sampled through an alias table.
//!
//! Payout for a member-year: Y = min(L, c * max(S - D, 0)) with S the annual cost.
//!
//! * Single-event frequencies (Bernoulli): S is one severity draw. The range [D, D + L/c] is cut
//!   into cells; each cell becomes one atom at its exact conditional mean payout (the payout is
//!   linear in S on the cell), plus an atom at L for S above D + L/c. P(Y > 0) and E[Y] are then
//!   exact; only the spread inside a cell is lost from the variance.
//! * Other frequencies: severities are capped at the top of the lattice (exact for Y, which only
//!   depends on min(S, D + L/c)), discretised on a lattice of span h by local moment matching
//!   (mean preserving), and compounded with an FFT of the frequency's generating function, with
//!   exponential tilting against wrap-around. The lattice is shifted so that D falls half way
//!   between two points, which makes both P(Y > 0) and E[Y] second-order accurate in h. The
//!   error is estimated by rebuilding at twice the span and reported.

use std::sync::OnceLock;

use rand::RngCore;
use serde::Serialize;

use crate::alias::AliasTable;
use crate::dist::{Frequency, Severity};

mod lattice;

use lattice::build_cores;

/// Terms of one benefit as they apply to one group (coinsurance already chosen for the group's
/// pre-existing status).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PayoutTerms {
    pub deductible: f64,
    pub coinsurance: f64,
    pub annual_limit: f64,
}

impl PayoutTerms {
    pub fn payout(&self, annual_cost: f64) -> f64 {
        (self.coinsurance * (annual_cost - self.deductible).max(0.0)).min(self.annual_limit)
    }

    /// Annual cost at and above which the limit is reached, infinite when nothing is paid.
    fn cap_point(&self) -> f64 {
        if self.coinsurance > 0.0 {
            self.deductible + self.annual_limit / self.coinsurance
        } else {
            f64::INFINITY
        }
    }

    fn pays_nothing(&self) -> bool {
        self.coinsurance <= 0.0 || self.annual_limit <= 0.0
    }
}

/// Discretisation settings. `cells_per_scale` is the number of lattice cells per typical claim
/// size (the smaller of the severity's median and the deductible).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resolution {
    pub cells_per_scale: f64,
    pub max_cells: usize,
}

impl Default for Resolution {
    fn default() -> Self {
        Self {
            cells_per_scale: 256.0,
            // Caps the FFT at 2^18 points (4 MB of complex numbers) per build.
            max_cells: 1 << 16,
        }
    }
}

impl Resolution {
    fn coarser(self) -> Self {
        Self {
            cells_per_scale: self.cells_per_scale / 2.0,
            max_cells: (self.max_cells / 2).max(16),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutMethod {
    /// No payout is possible (zero frequency, zero coinsurance or zero limit).
    None,
    SingleClaim,
    Compound,
}

/// Exact-up-to-discretisation distribution of one member's annual payout for one benefit.
#[derive(Debug, Clone)]
pub struct PayoutDistribution {
    pub method: PayoutMethod,
    /// P(Y > 0).
    pub prob_positive: f64,
    /// E[Y].
    pub mean: f64,
    /// E[Y^2].
    pub second_moment: f64,
    /// Lattice or cell span in CNY of annual cost (0 when nothing is paid).
    pub span: f64,
    /// Number of positive-payout atoms.
    pub atoms: usize,
    /// |E[Y] at span h - E[Y] at span 2h|: a conservative estimate of the discretisation error
    /// of the mean (the error is second order, so about a third of this).
    pub mean_error_estimate: f64,
    /// The same for P(Y > 0).
    pub prob_error_estimate: f64,
    /// The same for the standard deviation of Y.
    pub std_error_estimate: f64,
    values: Vec<f64>,
    probs: Vec<f64>,
    /// The annual limit, where merging for sampling stops.
    limit: f64,
    /// Built on the first draw: the exact method never samples.
    sampling: OnceLock<Sampling>,
}

/// The merged atoms of a distribution as the Monte Carlo samples them.
#[derive(Debug, Clone)]
struct Sampling {
    table: Option<AliasTable>,
    /// Atoms in the sampling table after merging (see [`merge_for_sampling`]).
    atoms: usize,
    /// Relative loss of E[Y^2] from merging atoms for sampling (mean and P(Y > 0) are kept).
    second_moment_loss: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PayoutError {
    #[error("the payout distribution could not be computed: {0}")]
    Numerical(&'static str),
}

struct Core {
    method: PayoutMethod,
    prob_positive: f64,
    span: f64,
    values: Vec<f64>,
    probs: Vec<f64>,
}

impl Core {
    /// Every probability multiplied by `ratio`: a single event's distribution at another event
    /// probability.
    fn scaled(&self, ratio: f64) -> Self {
        Self {
            method: self.method,
            prob_positive: self.prob_positive * ratio,
            span: self.span,
            values: self.values.clone(),
            probs: self.probs.iter().map(|p| p * ratio).collect(),
        }
    }
}

impl PayoutDistribution {
    /// Builds the distribution at the given resolution, plus a coarser build for the error
    /// estimate.
    pub fn build(
        frequency: &Frequency,
        severity: &Severity,
        terms: &PayoutTerms,
        resolution: Resolution,
    ) -> Result<Self, PayoutError> {
        Self::build_many(std::slice::from_ref(frequency), severity, terms, resolution)?
            .pop()
            .ok_or(PayoutError::Numerical("no distribution built"))
    }

    /// The distributions for several frequencies with the same severity and terms (the nodes
    /// of a frequency factor), each as [`build`](Self::build) gives it; the severity's lattice
    /// and its transform (or a single event's payout given the event) are computed once for
    /// all of them.
    pub fn build_many(
        frequencies: &[Frequency],
        severity: &Severity,
        terms: &PayoutTerms,
        resolution: Resolution,
    ) -> Result<Vec<Self>, PayoutError> {
        let fine = build_cores(frequencies, severity, terms, resolution)?;
        let coarse = build_cores(frequencies, severity, terms, resolution.coarser())?;
        fine.into_iter()
            .zip(coarse)
            .map(|(fine, coarse)| Self::from_cores(fine, &coarse, terms))
            .collect()
    }

    fn from_cores(fine: Core, coarse: &Core, terms: &PayoutTerms) -> Result<Self, PayoutError> {
        let (mean, second) = moments(&fine.values, &fine.probs);
        let (coarse_mean, coarse_second) = moments(&coarse.values, &coarse.probs);
        let std = |m: f64, s: f64| (s - m * m).max(0.0).sqrt();
        // What the sampling table would refuse (see `AliasTable::new`), checked here so that
        // building it on the first draw cannot fail: merging keeps the total probability.
        let weight: f64 = fine
            .probs
            .iter()
            .filter(|p| p.is_finite() && **p > 0.0)
            .sum();
        if fine.prob_positive > 0.0 && !(weight > 0.0 && weight.is_finite()) {
            return Err(PayoutError::Numerical("empty positive-payout distribution"));
        }
        Ok(Self {
            method: fine.method,
            prob_positive: fine.prob_positive,
            mean,
            second_moment: second,
            span: fine.span,
            atoms: fine.values.len(),
            mean_error_estimate: (mean - coarse_mean).abs(),
            prob_error_estimate: (fine.prob_positive - coarse.prob_positive).abs(),
            std_error_estimate: (std(mean, second) - std(coarse_mean, coarse_second)).abs(),
            values: fine.values,
            probs: fine.probs,
            limit: terms.annual_limit,
            sampling: OnceLock::new(),
        })
    }

    /// Var[Y].
    pub fn variance(&self) -> f64 {
        (self.second_moment - self.mean * self.mean).max(0.0)
    }

    /// Positive-payout atoms as (payout, unconditional probability).
    pub fn atoms(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.values.iter().copied().zip(self.probs.iter().copied())
    }

    /// One draw of Y given Y > 0 (0 when no payout is possible).
    #[inline]
    pub fn sample_positive<R: RngCore + ?Sized>(&self, rng: &mut R) -> f64 {
        self.sample_positive_word(rng.next_u64())
    }

    /// The draw of Y given Y > 0 for one uniformly random 64-bit word.
    #[inline]
    pub fn sample_positive_word(&self, word: u64) -> f64 {
        match &self.sampling().table {
            Some(t) => t.sample_word(word),
            None => 0.0,
        }
    }

    /// The table that [`sample_positive_word`](Self::sample_positive_word) draws from (None
    /// when nothing is paid): for loops that draw many times and need it looked up once.
    pub fn sampling_table(&self) -> Option<&AliasTable> {
        self.sampling().table.as_ref()
    }

    /// Atoms in the sampling table after merging (see [`merge_for_sampling`]).
    pub fn sampling_atoms(&self) -> usize {
        self.sampling().atoms
    }

    /// Relative loss of E[Y^2] from merging atoms for sampling (mean and P(Y > 0) are kept).
    pub fn sampling_second_moment_loss(&self) -> f64 {
        self.sampling().second_moment_loss
    }

    fn sampling(&self) -> &Sampling {
        self.sampling.get_or_init(|| {
            let (values, probs) = merge_for_sampling(&self.values, &self.probs, self.limit);
            let (_, merged_second) = moments(&values, &probs);
            let second = self.second_moment;
            Sampling {
                // None when nothing is paid; otherwise `from_cores` checked what the table needs.
                table: if self.prob_positive > 0.0 {
                    AliasTable::new(&values, &probs)
                } else {
                    None
                },
                atoms: values.len(),
                second_moment_loss: if second > 0.0 {
                    ((second - merged_second) / second).max(0.0)
                } else {
                    0.0
                },
            }
        })
    }
}

/// Relative width of a merged sampling atom: buckets span at most 1/512 of their lowest payout.
const SAMPLING_RELATIVE_WIDTH: f64 = 1.0 / 512.0;

/// Merges neighbouring atoms (values ascending) into buckets no wider than
/// [`SAMPLING_RELATIVE_WIDTH`] of their lowest payout, each at its conditional mean. Atoms at
/// payouts below 512 lattice steps stay as they are, the zero and limit atoms are never merged,
/// and probability and mean are kept exactly; the variance lost is at most the within-bucket
/// variance, under (1/512)^2 / 12 = 3e-7 relative. Large lattices then sample from a few
/// thousand atoms that stay in cache instead of hundreds of thousands.
pub fn merge_for_sampling(values: &[f64], probs: &[f64], limit: f64) -> (Vec<f64>, Vec<f64>) {
    let mut out_v = Vec::new();
    let mut out_p = Vec::new();
    let mut bucket: Option<(f64, f64, f64)> = None; // (lowest value, sum p, sum p v)
    let flush = |b: &mut Option<(f64, f64, f64)>, out_v: &mut Vec<f64>, out_p: &mut Vec<f64>| {
        if let Some((low, p, pv)) = b.take()
            && p > 0.0
        {
            out_v.push((pv / p).max(low));
            out_p.push(p);
        }
    };
    for (&v, &p) in values.iter().zip(probs) {
        let alone = v <= 0.0 || v >= limit;
        if let Some((low, _, _)) = bucket
            && (alone || v - low > SAMPLING_RELATIVE_WIDTH * low)
        {
            flush(&mut bucket, &mut out_v, &mut out_p);
        }
        if alone {
            out_v.push(v);
            out_p.push(p);
            continue;
        }
        let b = bucket.get_or_insert((v, 0.0, 0.0));
        b.1 += p;
        b.2 += p * v;
    }
    flush(&mut bucket, &mut out_v, &mut out_p);
    (out_v, out_p)
}

fn moments(values: &[f64], probs: &[f64]) -> (f64, f64) {
    values
        .iter()
        .zip(probs)
        .fold((0.0, 0.0), |(m1, m2), (&v, &p)| {
            (m1 + v * p, m2 + v * v * p)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(d: f64, c: f64, l: f64) -> PayoutTerms {
        PayoutTerms {
            deductible: d,
            coinsurance: c,
            annual_limit: l,
        }
    }

    #[test]
    fn compound_without_terms_has_compound_moments() {
        // D = 0, c = 1, limit far above any plausible cost: E[Y] = lambda E[X],
        // Var[Y] = lambda E[X^2] for a compound Poisson.
        let lambda: f64 = 0.4;
        let sev = Severity::gamma(1_000.0, 0.5).unwrap();
        let freq = Frequency::poisson(lambda).unwrap();
        let dist = PayoutDistribution::build(
            &freq,
            &sev,
            &terms(0.0, 1.0, 200_000.0),
            Resolution::default(),
        )
        .unwrap();
        let ex2 = 1_000.0 * 1_000.0 * (1.0 + 0.25);
        assert!((dist.mean - lambda * 1_000.0).abs() < 1e-6 * 400.0);
        assert!((dist.variance() - lambda * ex2).abs() / (lambda * ex2) < 1e-4);
        assert!((dist.prob_positive - (1.0 - (-lambda).exp())).abs() < 1e-12);
    }

    #[test]
    fn merging_keeps_probability_and_mean() {
        let values: Vec<f64> = (1..=10_000)
            .map(|i| i as f64 * 7.0)
            .chain([80_000.0])
            .collect();
        let probs: Vec<f64> = values.iter().map(|v| (-v / 5_000.0).exp()).collect();
        let (mv, mp) = merge_for_sampling(&values, &probs, 80_000.0);
        // 512 unmerged atoms up to 512 steps, then about 512 ln(70000 / 3584) = 1521 buckets.
        assert!(mv.len() < 2_100, "{}", mv.len());
        assert!(mv.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(*mv.last().unwrap(), 80_000.0);
        let (m1, m2) = moments(&values, &probs);
        let (n1, n2) = moments(&mv, &mp);
        let p: f64 = probs.iter().sum();
        let q: f64 = mp.iter().sum();
        assert!(((p - q) / p).abs() < 1e-12);
        assert!(((m1 - n1) / m1).abs() < 1e-12);
        assert!((m2 - n2) / m2 < 1e-6 && n2 <= m2 * (1.0 + 1e-12));
    }

    #[test]
    fn deductible_below_one_lattice_step() {
        let dist = PayoutDistribution::build(
            &Frequency::poisson(0.2).unwrap(),
            &Severity::lognormal(20_000.0, 1.0).unwrap(),
            &terms(1.0, 0.8, 1e6),
            Resolution::default(),
        )
        .unwrap();
        // Nearly every admission costs more than 1 CNY.
        assert!((dist.prob_positive - (1.0 - (-0.2_f64).exp())).abs() < 1e-3);
        assert!((dist.mean - 0.8 * 0.2 * 20_000.0).abs() / dist.mean < 1e-3);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        #[test]
        fn any_valid_parameters_build_or_fail_cleanly(
            mean in 1e-3_f64..1e9,
            cv in 1e-3_f64..10.0,
            rate in 0.0_f64..3.0,
            d in 0.0_f64..1e7,
            c in 0.0_f64..=1.0,
            l in 1e-2_f64..1e9,
            kind in 0usize..3,
        ) {
            let sev = match kind {
                0 => Severity::lognormal(mean, cv).unwrap(),
                1 => Severity::gamma(mean, cv).unwrap(),
                _ => Severity::pareto(0.5 + cv, mean).unwrap(),
            };
            let freq = if kind == 2 {
                Frequency::bernoulli(rate / 3.0).unwrap()
            } else {
                Frequency::poisson(rate).unwrap()
            };
            let small = Resolution { cells_per_scale: 32.0, max_cells: 1 << 10 };
            if let Ok(dist) = PayoutDistribution::build(&freq, &sev, &terms(d, c, l), small) {
                proptest::prop_assert!(dist.mean.is_finite() && dist.mean >= 0.0);
                proptest::prop_assert!(dist.mean <= l * (1.0 + 1e-9));
                proptest::prop_assert!((0.0..=1.0 + 1e-9).contains(&dist.prob_positive));
            }
        }
    }

    #[test]
    fn zero_coinsurance_pays_nothing() {
        let dist = PayoutDistribution::build(
            &Frequency::poisson(0.1).unwrap(),
            &Severity::lognormal(1000.0, 1.0).unwrap(),
            &terms(0.0, 0.0, 1e6),
            Resolution::default(),
        )
        .unwrap();
        assert_eq!(dist.method, PayoutMethod::None);
        assert_eq!(dist.mean, 0.0);
        assert_eq!(dist.prob_positive, 0.0);
    }
}
