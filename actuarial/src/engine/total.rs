//! The portfolio total's distribution as either method gives it.

use crate::exact::{ExactError, Lattice};
use crate::results::TotalDistributionSummary;
use crate::scenario::REPORT_LEVELS;
use crate::special::norm_sf;
use crate::stats::{Sample, TailEstimate};

/// Most bins of the stored density of the total.
pub const DENSITY_BINS: usize = 120;
/// The density's window runs from the quantile at this probability to the one at 1 minus it.
const DENSITY_TAIL: f64 = 0.0005;

/// The percentiles of the portfolio total and of the loss ratio that the results report.
pub const PERCENTILE_LEVELS: [f64; 7] = [0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999];

/// The probabilities of the stored quantile function: steps of 0.005, the return periods
/// 10^(1 + j / 20) years from 1 in 10 to 1 in 1,000, and the reported levels.
pub fn summary_probabilities() -> Vec<f64> {
    let mut p: Vec<f64> = (1..200).map(|i| f64::from(i) / 200.0).collect();
    p.extend((0..=40).map(|j| 1.0 - 10f64.powf(-(1.0 + f64::from(j) / 20.0))));
    p.extend(REPORT_LEVELS);
    p.sort_by(f64::total_cmp);
    p.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
    p
}

/// A density as bins of equal width: (left edge, width, probability per unit, mass outside).
pub(crate) type Histogram = (f64, f64, Vec<f64>, f64);

/// The distribution of the portfolio total as either method gives it: estimates with their
/// Monte Carlo standard errors, or exact values with bounds on their numerical error in the
/// same places.
pub(crate) trait TotalDistribution {
    /// (value, standard error or error bound)
    fn mean(&self) -> (f64, f64);
    fn std(&self) -> (f64, f64);
    fn tail(&self, level: f64) -> TailEstimate;
    fn prob_above(&self, x: f64) -> (f64, f64);
    /// The quantiles at ascending probabilities, read as VaR is.
    fn quantiles(&self, probabilities: &[f64]) -> Vec<f64>;
    /// The density on at most [`DENSITY_BINS`] bins covering [lo, hi].
    fn histogram(&self, lo: f64, hi: f64) -> Histogram;

    /// The bounded form of the distribution that the results carry.
    fn summary(&self) -> TotalDistributionSummary {
        let probabilities = summary_probabilities();
        let quantiles = self.quantiles(&probabilities);
        let window = self.quantiles(&[DENSITY_TAIL, 1.0 - DENSITY_TAIL]);
        let (density_start, density_width, density, density_mass_outside) =
            self.histogram(window[0], window[1]);
        TotalDistributionSummary {
            probabilities,
            quantiles,
            density_start,
            density_width,
            density,
            density_mass_outside,
        }
    }
}

impl TotalDistribution for Sample {
    fn mean(&self) -> (f64, f64) {
        (self.mean, self.mean_se)
    }
    fn std(&self) -> (f64, f64) {
        (self.std, self.std_se)
    }
    fn tail(&self, level: f64) -> TailEstimate {
        Sample::tail(self, level)
    }
    fn prob_above(&self, x: f64) -> (f64, f64) {
        Sample::prob_above(self, x)
    }
    fn quantiles(&self, probabilities: &[f64]) -> Vec<f64> {
        let sorted = self.sorted();
        let n = sorted.len();
        if n == 0 {
            return vec![0.0; probabilities.len()];
        }
        probabilities
            .iter()
            .map(|&p| sorted[((p * n as f64).ceil() as usize).clamp(1, n) - 1])
            .collect()
    }
    fn histogram(&self, lo: f64, hi: f64) -> Histogram {
        let sorted = self.sorted();
        let n = sorted.len().max(1) as f64;
        // About sqrt(n) years per bin keeps the Monte Carlo noise of a bin near 1 / n^(1/4).
        let bins = (n.sqrt() as usize).clamp(10, DENSITY_BINS);
        let width = bin_width(lo, hi, bins);
        let mut counts = vec![0.0; bins];
        let mut outside = 0.0;
        for &x in sorted {
            let b = ((x - lo) / width).floor();
            if b >= 0.0 && (b as usize) < bins {
                counts[b as usize] += 1.0;
            } else {
                outside += 1.0;
            }
        }
        let density = counts.iter().map(|c| c / n / width).collect();
        (lo, width, density, outside / n)
    }
}

/// Bins of equal width over [lo, hi]; a positive width when the window is a single point.
fn bin_width(lo: f64, hi: f64, bins: usize) -> f64 {
    let width = (hi - lo) / bins as f64;
    if width > 0.0 {
        // The last bin takes hi itself.
        width * (1.0 + 1e-9)
    } else {
        lo.abs().max(1.0) * 1e-6
    }
}

/// Quantiles of a lattice at ascending probabilities, in one pass over its points.
fn lattice_quantiles(lattice: &Lattice, probabilities: &[f64]) -> Vec<f64> {
    let last = lattice.probs.len().saturating_sub(1);
    let mut out = Vec::with_capacity(probabilities.len());
    let mut i = 0;
    let mut cumulative = lattice.probs.first().copied().unwrap_or(0.0);
    for &p in probabilities {
        while cumulative < p && i < last {
            i += 1;
            cumulative += lattice.probs[i];
        }
        out.push(lattice.start + i as f64 * lattice.span);
    }
    out
}

/// The lattice's probabilities summed into bins of a whole number of lattice points, each
/// point in the middle of its share of a bin, so that no bin gets more points than another.
fn lattice_histogram(lattice: &Lattice, lo: f64, hi: f64) -> Histogram {
    let span = lattice.span;
    let index = |x: f64| ((x - lattice.start) / span).round().max(0.0) as usize;
    let (first, last) = (index(lo), index(hi).max(index(lo)));
    let points = last - first + 1;
    let per_bin = points.div_ceil(DENSITY_BINS).max(1);
    let bins = points.div_ceil(per_bin);
    let width = per_bin as f64 * span;
    let mut mass = vec![0.0; bins];
    let mut outside = 0.0;
    for (i, &p) in lattice.probs.iter().enumerate() {
        match i.checked_sub(first).map(|k| k / per_bin) {
            Some(b) if b < bins => mass[b] += p,
            _ => outside += p,
        }
    }
    let start = lattice.start + (first as f64 - 0.5) * span;
    let density = mass.iter().map(|m| m / width).collect();
    (start, width, density, outside)
}

/// E[Z | Z > z] for a standard normal Z and P(Z > z) = 1 - level: the TVaR of a normal total,
/// in standard deviations above its mean (at least z, the VaR's).
fn normal_tail_mean(level: f64) -> f64 {
    let tail = (1.0 - level).clamp(1e-300, 1.0);
    let (mut lo, mut hi) = (-40.0_f64, 40.0_f64);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if norm_sf(mid) > tail {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let z = 0.5 * (lo + hi);
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt() / tail
}

/// The exact lattice distribution with its error bounds.
pub(crate) struct ExactTotal {
    pub lattice: Lattice,
    pub error: ExactError,
    /// Bound on the error of the mean from the member-level discretisation.
    pub mean_error: f64,
    std_error: f64,
    mean: f64,
    std: f64,
}

impl ExactTotal {
    /// `moments` are the mean and variance of the total computed directly from the member
    /// distributions; the lattice's own differ from them only by floating-point rounding in the
    /// transforms (and the variance by the lattice rounding), which is added to the bounds.
    pub fn new(
        lattice: Lattice,
        error: ExactError,
        mean_error: f64,
        moments: (f64, f64),
        variance_error: f64,
    ) -> Self {
        let (mean, var) = moments;
        let std = var.max(0.0).sqrt();
        let mean_error = mean_error + (lattice.mean() - mean).abs();
        // d sd = d var / (2 sd).
        let std_error = if std > 0.0 {
            variance_error / (2.0 * std)
        } else {
            0.0
        };
        Self {
            lattice,
            error,
            mean_error,
            std_error: std_error + 1e-9 * std,
            mean,
            std,
        }
    }
}

impl TotalDistribution for ExactTotal {
    fn mean(&self) -> (f64, f64) {
        (self.mean, self.mean_error)
    }
    fn std(&self) -> (f64, f64) {
        // Rounding adds at most a relative `rounding_variance` to the variance, so at most half
        // of it to the standard deviation.
        (self.std, self.std_error)
    }
    fn tail(&self, level: f64) -> TailEstimate {
        // Quantiles are read on the lattice: within one span, plus what the mean may be off,
        // plus what the lattice's rounding moves them. That rounding adds a known variance V
        // (`rounding_variance` x the variance) as the sum of many small independent errors of
        // mean zero, nearly a normal noise: for a near-normal total it raises the standard
        // deviation by V / (2 sd), which moves the quantile at z standard deviations by
        // z V / (2 sd) and the TVaR by E[Z | Z > z] V / (2 sd). Twice the larger of the two
        // leaves room for a skewed tail.
        let rounding = self.error.rounding_variance * self.std * normal_tail_mean(level);
        let e = self.error.lattice_span + self.mean_error + rounding;
        TailEstimate {
            var: self.lattice.var(level),
            var_se: e,
            tvar: self.lattice.tvar(level),
            tvar_se: e,
        }
    }
    fn prob_above(&self, x: f64) -> (f64, f64) {
        // A normal noise of variance V moves P(total > x) by about V / 2 times the slope of the
        // density at x, at most phi(1) / sd^2 for a normal total: twice that is
        // `rounding_variance` x phi(1).
        let phi_1 = (-0.5_f64).exp() / (2.0 * std::f64::consts::PI).sqrt();
        (
            self.lattice.prob_above(x),
            self.error.aliasing_mass
                + self.error.mass_defect
                + self.error.rounding_variance * phi_1,
        )
    }
    fn quantiles(&self, probabilities: &[f64]) -> Vec<f64> {
        lattice_quantiles(&self.lattice, probabilities)
    }
    fn histogram(&self, lo: f64, hi: f64) -> Histogram {
        lattice_histogram(&self.lattice, lo, hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_tail_mean_is_the_normal_tvar() {
        // phi(0) / 0.5, and phi(2.5758) / 0.005.
        assert!((normal_tail_mean(0.5) - 0.797_884_560_8).abs() < 1e-9);
        assert!((normal_tail_mean(0.995) - 2.891_949).abs() < 1e-5);
        for level in [0.9, 0.99, 0.999] {
            assert!(normal_tail_mean(level) > normal_tail_mean(level - 0.01));
        }
    }
}
