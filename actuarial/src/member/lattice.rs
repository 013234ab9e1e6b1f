//! Building the payout distribution: one atom per cell for a single-event frequency, or
//! severities discretised on a lattice and compounded by FFT for the others.

use crate::dist::{Frequency, Severity};
use crate::fft::{Complex, fft_smooth_in_place, smooth_size};

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

/// The cores for several frequencies with the same severity and terms (a frequency factor's
/// nodes, or one frequency). What does not depend on the frequency is computed once: the
/// severity's lattice and its transform for a compound, and for a single event the payout
/// given the event, whose atoms every event probability only scales.
pub(super) fn build_cores(
    frequencies: &[Frequency],
    severity: &Severity,
    terms: &PayoutTerms,
    resolution: Resolution,
) -> Result<Vec<Core>, PayoutError> {
    let mut lattice: Option<SeverityLattice> = None;
    let mut single: Option<(f64, Core)> = None;
    let mut out = Vec::with_capacity(frequencies.len());
    for frequency in frequencies {
        let p = frequency.mean();
        let core = if terms.pays_nothing() || p <= 0.0 {
            none_core()
        } else if frequency.is_single_event() {
            let (p0, base) = match &single {
                Some(s) => s,
                None => single.insert((p, single_claim(p, severity, terms, resolution)?)),
            };
            base.scaled(p / *p0)
        } else {
            let lattice = match &lattice {
                Some(l) => l,
                None => lattice.insert(SeverityLattice::new(severity, terms, resolution)?),
            };
            lattice.compound(frequency, terms)?
        };
        out.push(core);
    }
    Ok(out)
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

/// A severity discretised on the lattice of one benefit's terms, tilted and transformed: what
/// compounding it with any frequency starts from.
struct SeverityLattice {
    /// Lattice span.
    h: f64,
    /// Lattice points 0..=m; the top one carries all annual cost >= m h >= the cap.
    m: usize,
    /// Transform length, at least 2 (m + 1).
    n: usize,
    /// The transform of the tilted severity at frequencies 0..=n/2 (the rest are their
    /// conjugates: the severity is real).
    spectrum: Vec<Complex>,
    /// exp(theta j), j < m: undoes the tilt.
    untilt: Vec<f64>,
}

impl SeverityLattice {
    fn new(
        severity: &Severity,
        terms: &PayoutTerms,
        resolution: Resolution,
    ) -> Result<Self, PayoutError> {
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
        // beyond its cap); it then falls inside the first cell, which the reported error
        // estimate accounts for.
        let h = if d >= h0 {
            d / ((d / h0).floor() + 0.5)
        } else {
            h0
        };
        let m = (cap / h).ceil() as usize;
        if m < 1 || m > 2 * max_cells + 2 {
            return Err(PayoutError::Numerical("lattice size out of range"));
        }
        let f = discretise_capped(severity, h, m);
        // The next length with factors 2, 3 and 5 only (rather than the next power of two,
        // which can nearly double it).
        let n = smooth_size(2 * (m + 1)).max(64);
        // Tilting by exp(-theta j) suppresses wrap-around by exp(-12) on top of the (already
        // tiny) probability of an annual cost beyond twice the cap, while untilting amplifies
        // rounding by at most exp(6).
        let theta = 12.0 / n as f64;
        let mut buf: Vec<Complex> = (0..n)
            .map(|j| {
                let x = f.get(j).copied().unwrap_or(0.0);
                Complex::real(x * (-theta * j as f64).exp())
            })
            .collect();
        fft_smooth_in_place(&mut buf, false);
        buf.truncate(n / 2 + 1);
        Ok(Self {
            h,
            m,
            n,
            spectrum: buf,
            untilt: (0..m).map(|j| (theta * j as f64).exp()).collect(),
        })
    }

    /// The payout distribution with this severity and `frequency` (not a single event).
    fn compound(&self, frequency: &Frequency, terms: &PayoutTerms) -> Result<Core, PayoutError> {
        let g = self.annual_cost(frequency)?;
        let below_cap: f64 = g.iter().sum();
        let tail = (1.0 - below_cap).max(0.0);
        let (values, probs, prob_positive) = payout_atoms(&g, tail, self.h, terms, frequency);
        Ok(Core {
            method: PayoutMethod::Compound,
            prob_positive,
            span: self.h,
            values,
            probs,
        })
    }

    /// The annual cost on the lattice below the top point: the compound of the frequency with
    /// the lattice severity, by the inverse FFT of the generating function at the severity's
    /// transform, untilted.
    fn annual_cost(&self, frequency: &Frequency) -> Result<Vec<f64>, PayoutError> {
        let n = self.n;
        let mut buf = vec![Complex::real(0.0); n];
        // The generating function has real coefficients, so pgf(conj z) = conj pgf(z): half
        // the frequencies give the other half.
        for (k, z) in self.spectrum.iter().enumerate() {
            let v = frequency.pgf(*z);
            buf[k] = v;
            if k > 0 && k < n - k {
                buf[n - k] = Complex::new(v.re, -v.im);
            }
        }
        fft_smooth_in_place(&mut buf, true);
        let inv_n = 1.0 / n as f64;
        let g: Vec<f64> = buf[..self.m]
            .iter()
            .zip(&self.untilt)
            .map(|(z, u)| (z.re * inv_n * u).max(0.0))
            .collect();
        if g.iter().any(|v| !v.is_finite()) {
            return Err(PayoutError::Numerical("non-finite aggregate probability"));
        }
        Ok(g)
    }
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
