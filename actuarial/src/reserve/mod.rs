//! Claims reserving: the volume-weighted chain ladder with Mack's (1993) standard errors, and
//! Bornhuetter-Ferguson.
//!
//! Notation follows Mack, "Distribution-free calculation of the standard error of chain ladder
//! reserve estimates", ASTIN Bulletin 23(2), 1993: `C[i][k]` is the cumulative amount of origin
//! `i` at development `k`, `f[k]` the age-to-age factor from `k` to `k + 1`, `sigma2[k]` the
//! variance parameter of that step (`Var(C[i][k+1] | C[i][k]) = sigma2[k] * C[i][k]`). The
//! amounts are estimates, not payments, so they are `f64`.

mod report;
mod triangle;

use std::collections::BTreeMap;

use serde::Serialize;

pub use report::render_reserve;
pub use triangle::{AmountKind, PremiumError, Triangle, TriangleError, parse_premiums};

use triangle::development_number;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReserveError {
    #[error(transparent)]
    Triangle(#[from] TriangleError),
    #[error(transparent)]
    Premium(#[from] PremiumError),
    #[error(
        "development {development} to {next} has no factor: every origin observed at {next} has cumulative 0 at {development} ({origins})"
    )]
    NoFactor {
        development: u32,
        next: u32,
        origins: String,
    },
    #[error(
        "development {development} to {next}: a single origin, so nothing to estimate the variability of the factor from"
    )]
    NoSigma { development: u32, next: u32 },
    #[error("premium file: no premium for origin {0}")]
    MissingPremium(String),
    #[error("premium file: origin {0} is not in the triangle")]
    UnknownPremiumOrigin(String),
    #[error("--expected-loss-ratio must be a positive number, got {0}")]
    ExpectedLossRatio(f64),
}

/// The chain ladder fitted to a triangle: factors, variance parameters and the projection.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainLadder {
    pub origins: Vec<String>,
    /// Observed cumulative rows (as in the triangle).
    pub observed: Vec<Vec<f64>>,
    /// Volume-weighted age-to-age factors, `f[k]` from development `k + 1` to `k + 2`.
    pub ldf: Vec<f64>,
    /// Mack's `sigma^2[k]`; the ones that cannot be estimated (a single origin) by Mack's rule.
    pub sigma2: Vec<f64>,
    /// `S[k]`: the sum of `C[i][k]` over the origins that also have development `k + 1`.
    pub volume: Vec<f64>,
}

impl ChainLadder {
    /// Fits the volume-weighted chain ladder: `f[k] = sum C[i][k+1] / sum C[i][k]` over the
    /// origins observed at `k + 1`, and Mack's variance parameters
    /// `sigma2[k] = 1/(n-1) sum C[i][k] (C[i][k+1]/C[i][k] - f[k])^2`. Where only one origin
    /// reaches `k + 1` (the last period of a triangle), Mack's rule extrapolates:
    /// `sigma2[k] = min(sigma2[k-1]^2 / sigma2[k-2], sigma2[k-2], sigma2[k-1])` (with one earlier
    /// period only, that period's).
    pub fn fit(triangle: &Triangle) -> Result<Self, ReserveError> {
        let rows = triangle.rows();
        let steps = triangle.developments().saturating_sub(1);
        let mut ldf = Vec::with_capacity(steps);
        let mut volume = Vec::with_capacity(steps);
        // Per step: (sum of squared weighted residuals, number of terms), or None when fewer
        // than two origins contribute.
        let mut estimated: Vec<Option<f64>> = Vec::with_capacity(steps);
        for k in 0..steps {
            let pairs: Vec<(f64, f64)> = rows
                .iter()
                .filter(|row| row.len() > k + 1)
                .map(|row| (row[k], row[k + 1]))
                .collect();
            let from: f64 = pairs.iter().map(|p| p.0).sum();
            let to: f64 = pairs.iter().map(|p| p.1).sum();
            if from <= 0.0 {
                let origins = triangle
                    .origins()
                    .iter()
                    .zip(rows)
                    .filter(|(_, row)| row.len() > k + 1)
                    .map(|(o, _)| o.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(ReserveError::NoFactor {
                    development: development_number(k),
                    next: development_number(k + 1),
                    origins,
                });
            }
            let f = to / from;
            // An origin at 0 contributes nothing to the factor and, under Mack's variance
            // assumption, nothing to its variability.
            let terms: Vec<f64> = pairs
                .iter()
                .filter(|p| p.0 > 0.0)
                .map(|&(c, next)| (next - f * c).powi(2) / c)
                .collect();
            estimated.push(if terms.len() >= 2 {
                Some(terms.iter().sum::<f64>() / (terms.len() - 1) as f64)
            } else {
                None
            });
            ldf.push(f);
            volume.push(from);
        }
        let mut sigma2 = Vec::with_capacity(steps);
        for (k, estimate) in estimated.iter().enumerate() {
            let value = match estimate {
                Some(v) => *v,
                None if k >= 2 => {
                    let (a, b) = (sigma2[k - 2], sigma2[k - 1]);
                    let ratio: f64 = if a > 0.0 { b * b / a } else { f64::INFINITY };
                    ratio.min(a).min(b)
                }
                // One earlier period only: the minimum over what there is (as R's ChainLadder
                // does), that is the earlier period's sigma.
                None if k == 1 => sigma2[0],
                None => {
                    return Err(ReserveError::NoSigma {
                        development: development_number(k),
                        next: development_number(k + 1),
                    });
                }
            };
            sigma2.push(value);
        }
        Ok(ChainLadder {
            origins: triangle.origins().to_vec(),
            observed: rows.to_vec(),
            ldf,
            sigma2,
            volume,
        })
    }

    /// Index of each origin's latest development (0-based).
    fn latest_index(&self, i: usize) -> usize {
        self.observed[i].len() - 1
    }

    /// The factor from each origin's latest development to ultimate.
    pub fn cdf(&self) -> Vec<f64> {
        (0..self.observed.len())
            .map(|i| self.ldf[self.latest_index(i)..].iter().product())
            .collect()
    }

    /// `C[i][k]`, observed or projected, for `k >= latest`.
    fn projected(&self, i: usize) -> Vec<f64> {
        let row = &self.observed[i];
        let mut out = row.clone();
        for k in row.len() - 1..self.ldf.len() {
            let last = out[k];
            out.push(last * self.ldf[k]);
        }
        out
    }

    /// Mack's mean squared error of each origin's reserve and of the total (squared standard
    /// errors):
    /// `mse(R_i) = C[i][K]^2 sum_{k >= I_i} sigma2[k]/f[k]^2 (1/C[i][k] + 1/S[k])`, and for the
    /// total the cross terms `C[i][K] C[j][K] sum_{k >= max(I_i, I_j)} sigma2[k]/f[k]^2 / S[k]`
    /// over ordered pairs `i != j` (his `2 sigma^2/f^2/S` over pairs `i < j`).
    pub fn mack_mse(&self) -> (Vec<f64>, f64) {
        let n = self.observed.len();
        let full: Vec<Vec<f64>> = (0..n).map(|i| self.projected(i)).collect();
        let ultimate: Vec<f64> = full
            .iter()
            .map(|r| r.last().copied().unwrap_or(0.0))
            .collect();
        let step = |k: usize| self.sigma2[k] / (self.ldf[k] * self.ldf[k]);
        let per_origin: Vec<f64> = (0..n)
            .map(|i| {
                let sum: f64 = (self.latest_index(i)..self.ldf.len())
                    .map(|k| {
                        let process = if full[i][k] > 0.0 {
                            1.0 / full[i][k]
                        } else {
                            0.0
                        };
                        step(k) * (process + 1.0 / self.volume[k])
                    })
                    .sum();
                ultimate[i] * ultimate[i] * sum
            })
            .collect();
        // Parameter-error tail sums: tail[k] = sum_{k' >= k} sigma2/f^2/S.
        let mut tail = vec![0.0; self.ldf.len() + 1];
        for k in (0..self.ldf.len()).rev() {
            tail[k] = tail[k + 1] + step(k) / self.volume[k];
        }
        let mut total: f64 = per_origin.iter().sum();
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    let from = self.latest_index(i).max(self.latest_index(j));
                    total += ultimate[i] * ultimate[j] * tail[from];
                }
            }
        }
        (per_origin, total)
    }
}

/// Which estimate of the ultimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Method {
    ChainLadder,
    Bf,
}

/// One origin's reserve.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OriginReserve {
    pub origin: String,
    /// The latest development observed (1 = the origin period itself).
    pub development: u32,
    pub latest: f64,
    /// Development factor from the latest development to ultimate.
    pub cdf: f64,
    pub ultimate: f64,
    pub ibnr: f64,
    /// Mack's standard error of the chain ladder reserve of this origin.
    pub mack_se: f64,
    /// Bornhuetter-Ferguson only: the premium and the prior ultimate (premium x expected loss
    /// ratio).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub premium: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prior_ultimate: Option<f64>,
}

/// A reserve for the whole triangle: the `puhui reserve` result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reserve {
    pub method: Method,
    /// Number of development periods observed.
    pub developments: usize,
    /// Volume-weighted age-to-age factors, development 1 to 2 first.
    pub ldf: Vec<f64>,
    /// Mack's sigma (square root of the variance parameter) per age-to-age step.
    pub sigma: Vec<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_loss_ratio: Option<f64>,
    pub origins: Vec<OriginReserve>,
    pub latest_total: f64,
    pub ultimate_total: f64,
    pub ibnr_total: f64,
    /// Mack's standard error of the total chain ladder reserve (with the covariances between
    /// origins through the shared factors).
    pub mack_se_total: f64,
}

impl Reserve {
    /// The chain ladder reserve with Mack's standard errors.
    pub fn chain_ladder(triangle: &Triangle) -> Result<Self, ReserveError> {
        let fit = ChainLadder::fit(triangle)?;
        let cdf = fit.cdf();
        let latest = triangle.latest();
        let ultimates: Vec<f64> = latest.iter().zip(&cdf).map(|(l, f)| l * f).collect();
        Ok(Self::assemble(
            Method::ChainLadder,
            &fit,
            &ultimates,
            None,
            None,
        ))
    }

    /// Bornhuetter-Ferguson: `IBNR_i = premium_i x ELR x (1 - 1/cdf_i)` with the chain ladder's
    /// development factors, so a young origin's reserve rests on the prior rather than on its
    /// few observed amounts. The standard errors reported are the chain ladder's (Mack's), as a
    /// measure of how uncertain the development pattern is; BF itself has no closed form here.
    pub fn bornhuetter_ferguson(
        triangle: &Triangle,
        premiums: &BTreeMap<String, f64>,
        expected_loss_ratio: f64,
    ) -> Result<Self, ReserveError> {
        if !(expected_loss_ratio.is_finite() && expected_loss_ratio > 0.0) {
            return Err(ReserveError::ExpectedLossRatio(expected_loss_ratio));
        }
        if let Some(unknown) = premiums.keys().find(|o| !triangle.origins().contains(o)) {
            return Err(ReserveError::UnknownPremiumOrigin(unknown.clone()));
        }
        let premium: Vec<f64> = triangle
            .origins()
            .iter()
            .map(|o| {
                premiums
                    .get(o)
                    .copied()
                    .ok_or_else(|| ReserveError::MissingPremium(o.clone()))
            })
            .collect::<Result<_, _>>()?;
        let fit = ChainLadder::fit(triangle)?;
        let priors: Vec<f64> = premium.iter().map(|p| p * expected_loss_ratio).collect();
        let ultimates = bf_ultimates(&triangle.latest(), &fit.cdf(), &priors);
        let mut reserve =
            Self::assemble(Method::Bf, &fit, &ultimates, Some(&premium), Some(&priors));
        reserve.expected_loss_ratio = Some(expected_loss_ratio);
        Ok(reserve)
    }

    fn assemble(
        method: Method,
        fit: &ChainLadder,
        ultimates: &[f64],
        premium: Option<&[f64]>,
        priors: Option<&[f64]>,
    ) -> Self {
        let cdf = fit.cdf();
        let (mse, mse_total) = fit.mack_mse();
        let origins: Vec<OriginReserve> = fit
            .origins
            .iter()
            .enumerate()
            .map(|(i, origin)| {
                let latest = fit.observed[i].last().copied().unwrap_or(0.0);
                OriginReserve {
                    origin: origin.clone(),
                    development: development_number(fit.latest_index(i)),
                    latest,
                    cdf: cdf[i],
                    ultimate: ultimates[i],
                    ibnr: ultimates[i] - latest,
                    // + 0.0 turns the -0.0 of a fully developed origin into 0.
                    mack_se: mse[i].max(0.0).sqrt() + 0.0,
                    premium: premium.map(|p| p[i]),
                    prior_ultimate: priors.map(|p| p[i]),
                }
            })
            .collect();
        let latest_total = origins.iter().map(|o| o.latest).sum();
        let ultimate_total = origins.iter().map(|o| o.ultimate).sum();
        let ibnr_total = origins.iter().map(|o| o.ibnr).sum();
        Reserve {
            method,
            developments: fit.observed.iter().map(Vec::len).max().unwrap_or(0),
            ldf: fit.ldf.clone(),
            sigma: fit.sigma2.iter().map(|s| s.sqrt()).collect(),
            expected_loss_ratio: None,
            origins,
            latest_total,
            ultimate_total,
            ibnr_total,
            mack_se_total: mse_total.max(0.0).sqrt() + 0.0,
        }
    }

    pub fn to_json_pretty(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }
}

/// Bornhuetter-Ferguson ultimates: the latest amount plus the prior's share still to develop.
pub fn bf_ultimates(latest: &[f64], cdf: &[f64], prior_ultimate: &[f64]) -> Vec<f64> {
    latest
        .iter()
        .zip(cdf)
        .zip(prior_ultimate)
        .map(|((l, f), u)| l + u * (1.0 - 1.0 / f))
        .collect()
}

#[cfg(test)]
mod tests;
