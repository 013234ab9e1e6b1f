//! The portfolio total's distribution as either method gives it.

use crate::exact::{ExactError, Lattice};
use crate::stats::{Sample, TailEstimate};

/// The distribution of the portfolio total as either method gives it: estimates with their
/// Monte Carlo standard errors, or exact values with bounds on their numerical error in the
/// same places.
pub(crate) trait TotalDistribution {
    /// (value, standard error or error bound)
    fn mean(&self) -> (f64, f64);
    fn std(&self) -> (f64, f64);
    fn tail(&self, level: f64) -> TailEstimate;
    fn prob_above(&self, x: f64) -> (f64, f64);
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
        // Quantiles are read on the lattice: within one span, plus what the mean may be off.
        let e = self.error.lattice_span + self.mean_error;
        TailEstimate {
            var: self.lattice.var(level),
            var_se: e,
            tvar: self.lattice.tvar(level),
            tvar_se: e,
        }
    }
    fn prob_above(&self, x: f64) -> (f64, f64) {
        (
            self.lattice.prob_above(x),
            self.error.aliasing_mass + self.error.mass_defect,
        )
    }
}
