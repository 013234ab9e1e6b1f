//! Frequency and severity distributions with validated constructors.
//!
//! Each distribution knows what the exact member-level computation needs: severities give their
//! distribution function, survival function and limited expected value E[min(X, x)]; frequencies
//! give P(N = 0), their mean and their probability generating function on the complex unit disc
//! (for the FFT of the annual aggregate).

use serde::Serialize;

use crate::fft::Complex;
use crate::special::{gamma_p, gamma_q, norm_cdf, norm_sf};

/// What is wrong with a distribution's parameters; the scenario layer adds the key path.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DistError {
    #[error("{parameter} must be a finite number, got {value}")]
    NotFinite { parameter: &'static str, value: f64 },
    #[error("{parameter} must be {bound}, got {value}")]
    OutOfRange {
        parameter: &'static str,
        bound: &'static str,
        value: f64,
    },
    #[error(
        "variance ({variance}) must exceed the mean ({mean}) for a negative binomial; use poisson when they are equal"
    )]
    NotOverdispersed { mean: f64, variance: f64 },
}

fn finite(parameter: &'static str, value: f64) -> Result<f64, DistError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(DistError::NotFinite { parameter, value })
    }
}

fn positive(parameter: &'static str, value: f64) -> Result<f64, DistError> {
    let value = finite(parameter, value)?;
    if value > 0.0 {
        Ok(value)
    } else {
        Err(DistError::OutOfRange {
            parameter,
            bound: "> 0",
            value,
        })
    }
}

fn non_negative(parameter: &'static str, value: f64) -> Result<f64, DistError> {
    let value = finite(parameter, value)?;
    if value >= 0.0 {
        Ok(value)
    } else {
        Err(DistError::OutOfRange {
            parameter,
            bound: ">= 0",
            value,
        })
    }
}

fn probability(parameter: &'static str, value: f64) -> Result<f64, DistError> {
    let value = finite(parameter, value)?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(DistError::OutOfRange {
            parameter,
            bound: "between 0 and 1",
            value,
        })
    }
}

/// Number of admissions (or needs) per member-year.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "distribution", rename_all = "snake_case")]
pub enum Frequency {
    Poisson { mean: f64 },
    NegativeBinomial { mean: f64, variance: f64 },
    Bernoulli { p: f64 },
}

impl Frequency {
    pub fn poisson(mean: f64) -> Result<Self, DistError> {
        Ok(Self::Poisson {
            mean: non_negative("mean", mean)?,
        })
    }

    pub fn negative_binomial(mean: f64, variance: f64) -> Result<Self, DistError> {
        let mean = positive("mean", mean)?;
        let variance = positive("variance", variance)?;
        if variance <= mean {
            return Err(DistError::NotOverdispersed { mean, variance });
        }
        Ok(Self::NegativeBinomial { mean, variance })
    }

    pub fn bernoulli(p: f64) -> Result<Self, DistError> {
        Ok(Self::Bernoulli {
            p: probability("p", p)?,
        })
    }

    pub fn mean(&self) -> f64 {
        match *self {
            Self::Poisson { mean } | Self::NegativeBinomial { mean, .. } => mean,
            Self::Bernoulli { p } => p,
        }
    }

    /// At most one event per year: the single-claim path applies and no convolution is needed.
    pub fn is_single_event(&self) -> bool {
        matches!(self, Self::Bernoulli { .. })
    }

    /// P(N = 0).
    pub fn prob_zero(&self) -> f64 {
        match *self {
            Self::Poisson { mean } => (-mean).exp(),
            Self::NegativeBinomial { mean, variance } => {
                // N ~ NB(r, p) with p = mean / variance and r = mean^2 / (variance - mean).
                let p = mean / variance;
                let r = mean * mean / (variance - mean);
                (r * p.ln()).exp()
            }
            Self::Bernoulli { p } => 1.0 - p,
        }
    }

    /// Probability generating function E[z^N] for |z| <= 1.
    pub fn pgf(&self, z: Complex) -> Complex {
        match *self {
            Self::Poisson { mean } => (z - Complex::ONE).scale(mean).exp(),
            Self::NegativeBinomial { mean, variance } => {
                let p = mean / variance;
                let r = mean * mean / (variance - mean);
                // (p / (1 - (1 - p) z))^r; the base has positive real part for |z| <= 1, so the
                // principal logarithm is continuous there.
                let denom = Complex::ONE - z.scale(1.0 - p);
                (Complex::real(p.ln()) - denom.ln()).scale(r).exp()
            }
            Self::Bernoulli { p } => Complex::real(1.0 - p) + z.scale(p),
        }
    }
}

/// Cost per admission, or annual drug cost.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "distribution", rename_all = "snake_case")]
pub enum Severity {
    /// Parameterised by mean and coefficient of variation: sigma^2 = ln(1 + cv^2).
    Lognormal { mean: f64, cv: f64 },
    /// Shape 1/cv^2, scale mean * cv^2.
    Gamma { mean: f64, cv: f64 },
    /// Pareto II (Lomax): P(X > x) = (theta / (theta + x))^alpha.
    Pareto { alpha: f64, theta: f64 },
}

impl Severity {
    pub fn lognormal(mean: f64, cv: f64) -> Result<Self, DistError> {
        Ok(Self::Lognormal {
            mean: positive("mean", mean)?,
            cv: positive("cv", cv)?,
        })
    }

    pub fn gamma(mean: f64, cv: f64) -> Result<Self, DistError> {
        Ok(Self::Gamma {
            mean: positive("mean", mean)?,
            cv: positive("cv", cv)?,
        })
    }

    /// Any alpha > 0 is accepted: payouts are capped by the annual limit, so an infinite mean
    /// severity still gives a finite price.
    pub fn pareto(alpha: f64, theta: f64) -> Result<Self, DistError> {
        Ok(Self::Pareto {
            alpha: positive("alpha", alpha)?,
            theta: positive("theta", theta)?,
        })
    }

    fn lognormal_params(mean: f64, cv: f64) -> (f64, f64) {
        let sigma2 = cv.mul_add(cv, 1.0).ln();
        (mean.ln() - 0.5 * sigma2, sigma2.sqrt())
    }

    /// P(X <= x).
    pub fn cdf(&self, x: f64) -> f64 {
        if x <= 0.0 {
            return 0.0;
        }
        match *self {
            Self::Lognormal { mean, cv } => {
                let (mu, sigma) = Self::lognormal_params(mean, cv);
                norm_cdf((x.ln() - mu) / sigma)
            }
            Self::Gamma { mean, cv } => {
                let shape = 1.0 / (cv * cv);
                gamma_p(shape, x / (mean * cv * cv))
            }
            Self::Pareto { .. } => 1.0 - self.sf(x),
        }
    }

    /// P(X > x), computed directly so that it stays accurate in the tail.
    pub fn sf(&self, x: f64) -> f64 {
        if x <= 0.0 {
            return 1.0;
        }
        match *self {
            Self::Lognormal { mean, cv } => {
                let (mu, sigma) = Self::lognormal_params(mean, cv);
                norm_sf((x.ln() - mu) / sigma)
            }
            Self::Gamma { mean, cv } => {
                let shape = 1.0 / (cv * cv);
                gamma_q(shape, x / (mean * cv * cv))
            }
            Self::Pareto { alpha, theta } => (-alpha * (x / theta).ln_1p()).exp(),
        }
    }

    /// Limited expected value E[min(X, x)].
    pub fn lev(&self, x: f64) -> f64 {
        if x <= 0.0 {
            return 0.0;
        }
        match *self {
            Self::Lognormal { mean, cv } => {
                let (mu, sigma) = Self::lognormal_params(mean, cv);
                let z = (x.ln() - mu) / sigma;
                mean * norm_cdf(z - sigma) + x * norm_sf(z)
            }
            Self::Gamma { mean, cv } => {
                let shape = 1.0 / (cv * cv);
                let y = x / (mean * cv * cv);
                mean * gamma_p(shape + 1.0, y) + x * gamma_q(shape, y)
            }
            Self::Pareto { alpha, theta } => {
                let log_ratio = (x / theta).ln_1p();
                if (alpha - 1.0).abs() < 1e-12 {
                    theta * log_ratio
                } else {
                    // theta / (alpha - 1) * (1 - (theta / (theta + x))^(alpha - 1)), via expm1
                    // so that alpha close to 1 loses no precision.
                    -theta * (-(alpha - 1.0) * log_ratio).exp_m1() / (alpha - 1.0)
                }
            }
        }
    }

    /// Partial first moment E[X; X <= x] = E[min(X, x)] - x P(X > x).
    pub fn partial_mean(&self, x: f64) -> f64 {
        if x <= 0.0 {
            return 0.0;
        }
        self.lev(x) - x * self.sf(x)
    }

    /// Typical size used to choose the discretisation span: the median.
    pub fn median(&self) -> f64 {
        match *self {
            Self::Lognormal { mean, cv } => Self::lognormal_params(mean, cv).0.exp(),
            Self::Gamma { mean, cv } => {
                // Bisection on the distribution function; the gamma median has no closed form.
                let (mut lo, mut hi) = (0.0_f64, mean * (1.0 + 20.0 * cv * cv));
                for _ in 0..200 {
                    let mid = 0.5 * (lo + hi);
                    if self.cdf(mid) < 0.5 {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                0.5 * (lo + hi)
            }
            Self::Pareto { alpha, theta } => theta * (std::f64::consts::LN_2 / alpha).exp_m1(),
        }
    }

    /// Mean, infinite for a Pareto with alpha <= 1.
    pub fn mean(&self) -> f64 {
        match *self {
            Self::Lognormal { mean, .. } | Self::Gamma { mean, .. } => mean,
            Self::Pareto { alpha, theta } => {
                if alpha > 1.0 {
                    theta / (alpha - 1.0)
                } else {
                    f64::INFINITY
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_reject_bad_parameters() {
        assert!(Severity::lognormal(-1.0, 1.0).is_err());
        assert!(Severity::lognormal(1.0, 0.0).is_err());
        assert!(Severity::gamma(f64::NAN, 1.0).is_err());
        assert!(Severity::pareto(0.0, 1.0).is_err());
        assert!(Frequency::poisson(-0.1).is_err());
        assert!(Frequency::bernoulli(1.5).is_err());
        assert!(matches!(
            Frequency::negative_binomial(1.0, 1.0),
            Err(DistError::NotOverdispersed { .. })
        ));
    }

    #[test]
    fn lev_tends_to_mean_and_matches_cdf_derivative() {
        for sev in [
            Severity::lognormal(25_000.0, 1.5).unwrap(),
            Severity::gamma(25_000.0, 0.7).unwrap(),
            Severity::pareto(3.0, 50_000.0).unwrap(),
        ] {
            let big = sev.lev(1e12);
            assert!((big - sev.mean()).abs() / sev.mean() < 1e-6, "{sev:?}");
            // d/dx E[min(X, x)] = P(X > x).
            let x = 30_000.0;
            let h = 1.0;
            let slope = (sev.lev(x + h) - sev.lev(x - h)) / (2.0 * h);
            assert!((slope - sev.sf(x)).abs() < 1e-6, "{sev:?}");
            assert!((sev.cdf(x) + sev.sf(x) - 1.0).abs() < 1e-14);
            assert!((sev.cdf(sev.median()) - 0.5).abs() < 1e-9);
        }
    }

    #[test]
    fn pgf_at_one_is_one_and_at_zero_is_prob_zero() {
        for f in [
            Frequency::poisson(0.3).unwrap(),
            Frequency::negative_binomial(0.3, 0.5).unwrap(),
            Frequency::bernoulli(0.2).unwrap(),
        ] {
            let one = f.pgf(Complex::ONE);
            assert!((one.re - 1.0).abs() < 1e-14 && one.im.abs() < 1e-14);
            let zero = f.pgf(Complex::real(0.0));
            assert!((zero.re - f.prob_zero()).abs() < 1e-14);
        }
    }
}
