//! Building the payout distribution: one atom per cell for a single-event frequency, or
//! severities discretised on a lattice and compounded by FFT for the others.

use crate::dist::{Frequency, Severity};
use crate::fft::{Complex, fft_in_place};

use super::{Core, PayoutError, PayoutMethod, PayoutTerms, Resolution};

/// Size that sets the lattice span: the median, but not far below the mean, so that a gamma with
/// a large cv (median near zero) does not force a needlessly fine lattice.
fn severity_scale(severity: &Severity) -> f64 {
    let median = severity.median();
    let mean = severity.mean();
    if mean.is_finite() {
        median.max(0.05 * mean)
    } else {
        median
    }
}

fn none_core() -> Core {
    Core {
        method: PayoutMethod::None,
        prob_positive: 0.0,
        span: 0.0,
        values: Vec::new(),
        probs: Vec::new(),
    }
}

pub(super) fn build_core(
    frequency: &Frequency,
    severity: &Severity,
    terms: &PayoutTerms,
    resolution: Resolution,
) -> Result<Core, PayoutError> {
    if terms.pays_nothing() || frequency.mean() <= 0.0 {
        return Ok(none_core());
    }
    if frequency.is_single_event() {
        single_claim(frequency.mean(), severity, terms, resolution)
    } else {
        compound(frequency, severity, terms, resolution)
    }
}

fn single_claim(
    p_event: f64,
    severity: &Severity,
    terms: &PayoutTerms,
    resolution: Resolution,
) -> Result<Core, PayoutError> {
    let d = terms.deductible;
    let top = terms.cap_point();
    let h = severity_scale(severity) / resolution.cells_per_scale;
    if !(h > 0.0 && h.is_finite() && top.is_finite()) {
        return Err(PayoutError::Numerical("cell width"));
    }
    // Cells of width h up to two typical claim sizes above the deductible, then growing by
    // 1/cells_per_scale of their position: a limit far above any plausible claim costs a few
    // thousand cells, not millions. Each cell's atom is its exact conditional mean payout, so
    // the mean and P(Y > 0) do not depend on the cell widths; the within-cell variance lost is
    // at most (width / position)^2 / 12 of the second moment.
    let uniform_end = d + 2.0 * resolution.cells_per_scale * h;
    let growth = 1.0 + 1.0 / resolution.cells_per_scale;
    let mut bounds = vec![d];
    let mut x = d;
    while x < top {
        let next = if x < uniform_end { x + h } else { x * growth };
        x = next.min(top);
        bounds.push(x);
        if bounds.len() > resolution.max_cells.max(16) * 4 {
            return Err(PayoutError::Numerical("too many cells"));
        }
    }
    let median = severity.median();
    let mut values = Vec::with_capacity(bounds.len());
    let mut probs = Vec::with_capacity(bounds.len());
    let mut pm_lo = severity.partial_mean(d);
    for w in bounds.windows(2) {
        let (lo, hi) = (w[0], w[1]);
        // Differences of the survival function in the upper half keep small tail cells
        // accurate; differences of the distribution function do the same in the lower half.
        let prob = if lo >= median {
            severity.sf(lo) - severity.sf(hi)
        } else {
            severity.cdf(hi) - severity.cdf(lo)
        };
        let pm_hi = severity.partial_mean(hi);
        if prob > 0.0 {
            let cell_mean = ((pm_hi - pm_lo) / prob).clamp(lo, hi);
            values.push(terms.payout(cell_mean));
            probs.push(p_event * prob);
        }
        pm_lo = pm_hi;
    }
    let tail = severity.sf(top);
    if tail > 0.0 {
        values.push(terms.annual_limit);
        probs.push(p_event * tail);
    }
    let prob_positive = p_event * severity.sf(d);
    if !prob_positive.is_finite() {
        return Err(PayoutError::Numerical("non-finite claim probability"));
    }
    Ok(Core {
        method: PayoutMethod::SingleClaim,
        prob_positive,
        span: h,
        values,
        probs,
    })
}

fn compound(
    frequency: &Frequency,
    severity: &Severity,
    terms: &PayoutTerms,
    resolution: Resolution,
) -> Result<Core, PayoutError> {
    let d = terms.deductible;
    let cap = terms.cap_point();
    let max_cells = resolution.max_cells.max(16);
    let mut scale = severity_scale(severity);
    if d > 0.0 {
        scale = scale.min(d);
    }
    let h0 = (scale / resolution.cells_per_scale).max(cap / max_cells as f64);
    // Put D half way between lattice points (see the module notes). A deductible below one
    // lattice step cannot be placed so without shrinking the step below h0 (and the lattice
    // beyond its cap); it then falls inside the first cell, which the reported error estimate
    // accounts for.
    let h = if d >= h0 {
        d / ((d / h0).floor() + 0.5)
    } else {
        h0
    };
    // Lattice points 0..=m; the top one carries all annual cost >= m h >= cap.
    let m = (cap / h).ceil() as usize;
    if m < 1 || m > 2 * max_cells + 2 {
        return Err(PayoutError::Numerical("lattice size out of range"));
    }
    let f = discretise_capped(severity, h, m);
    let g = compound_on_lattice(&f, frequency)?;
    let below_cap: f64 = g.iter().sum();
    let tail = (1.0 - below_cap).max(0.0);
    let (values, probs, prob_positive) = payout_atoms(&g, tail, h, terms, frequency);
    Ok(Core {
        method: PayoutMethod::Compound,
        prob_positive,
        span: h,
        values,
        probs,
    })
}

/// Severity on the lattice 0, h, ..., m h by local moment matching (mass at j h from the cells on
/// either side, weighted linearly); the top point carries all cost >= m h.
fn discretise_capped(severity: &Severity, h: f64, m: usize) -> Vec<f64> {
    let top = m as f64 * h;
    let lev = |x: f64| severity.lev(x.min(top));
    // Local moment matching: mass at j h from the cells on either side, weighted linearly.
    let levs: Vec<f64> = (0..=m + 1).map(|j| lev(j as f64 * h)).collect();
    let mut f = vec![0.0_f64; m + 1];
    f[0] = 1.0 - levs[1] / h;
    for j in 1..m {
        f[j] = (2.0 * levs[j] - levs[j - 1] - levs[j + 1]) / h;
    }
    f[m] = (levs[m] - levs[m - 1]) / h;
    for v in f.iter_mut() {
        // Second differences of a smooth function can come out at -1e-17 in the far tail.
        if v.is_nan() || *v < 0.0 {
            *v = 0.0;
        }
    }
    f
}

/// The annual cost on the lattice below the top point, m = f.len() - 1 points: the compound of
/// the frequency with the lattice severity `f`, by FFT of the generating function with
/// exponential tilting.
fn compound_on_lattice(f: &[f64], frequency: &Frequency) -> Result<Vec<f64>, PayoutError> {
    let m = f.len() - 1;

    let n = (2 * (m + 1)).next_power_of_two().max(64);
    // Tilting by exp(-theta j) suppresses wrap-around by exp(-12) on top of the (already tiny)
    // probability of an annual cost beyond twice the cap, while untilting amplifies rounding
    // by at most exp(6).
    let theta = 12.0 / n as f64;
    let mut buf: Vec<Complex> = (0..n)
        .map(|j| {
            let x = f.get(j).copied().unwrap_or(0.0);
            Complex::real(x * (-theta * j as f64).exp())
        })
        .collect();
    if !fft_in_place(&mut buf, false) {
        return Err(PayoutError::Numerical("FFT length"));
    }
    for z in buf.iter_mut() {
        *z = frequency.pgf(*z);
    }
    if !fft_in_place(&mut buf, true) {
        return Err(PayoutError::Numerical("FFT length"));
    }
    let inv_n = 1.0 / n as f64;
    let g: Vec<f64> = buf[..m]
        .iter()
        .enumerate()
        .map(|(j, z)| (z.re * inv_n * (theta * j as f64).exp()).max(0.0))
        .collect();
    if g.iter().any(|v| !v.is_finite()) {
        return Err(PayoutError::Numerical("non-finite aggregate probability"));
    }
    Ok(g)
}

/// Payout atoms from the annual cost on the lattice (`g`, span h) and the mass at or above the
/// cap (`tail`): (payouts, probabilities, P(Y > 0)).
fn payout_atoms(
    g: &[f64],
    tail: f64,
    h: f64,
    terms: &PayoutTerms,
    frequency: &Frequency,
) -> (Vec<f64>, Vec<f64>, f64) {
    let d = terms.deductible;

    let mut values = Vec::new();
    let mut probs = Vec::new();
    let prob_positive = if d > 0.0 {
        let first = (d / h).ceil() as usize;
        for (j, &p) in g.iter().enumerate().skip(first) {
            if p > 0.0 {
                values.push(terms.payout(j as f64 * h));
                probs.push(p);
            }
        }
        if tail > 0.0 {
            values.push(terms.annual_limit);
            probs.push(tail);
        }
        probs.iter().sum()
    } else {
        // With no deductible every member with a claim is paid something; the lattice only
        // rounds very small claims to zero cost. P(Y > 0) = 1 - P(N = 0) exactly, and the
        // rounded-down mass stays as a zero-valued atom so that the mean is unaffected.
        let p0 = frequency.prob_zero();
        let zero_mass = (g[0] - p0).max(0.0);
        if zero_mass > 0.0 {
            values.push(0.0);
            probs.push(zero_mass);
        }
        for (j, &p) in g.iter().enumerate().skip(1) {
            if p > 0.0 {
                values.push(terms.payout(j as f64 * h));
                probs.push(p);
            }
        }
        if tail > 0.0 {
            values.push(terms.annual_limit);
            probs.push(tail);
        }
        1.0 - p0
    };
    (values, probs, prob_positive)
}
