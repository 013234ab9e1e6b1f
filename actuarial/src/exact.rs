//! The exact portfolio distribution: the distribution of the annual total on a lattice,
//! computed in Fourier space.
//!
//! For each combination of factor nodes (one without factors), each group's member-level payout
//! distribution (inpatient and drug, independent, so their transforms multiply) is put on a
//! lattice of span H by splitting every atom between its two neighbouring points in proportion,
//! which keeps the mean exactly and adds H^2 f (1 - f) <= H^2 / 4 to the variance of a payout at
//! fraction f of the span above a point; a zero payout, most members' in a year, sits on the
//! lattice and adds nothing. H is chosen so that the added variance stays under 1e-4 of the
//! total's, and it is reported. The group's total over its n members has the transform
//! exp(n log phi), groups multiply, and one inverse FFT gives the total modulo the window width
//! W = n_points x H (n_points with no prime factor above 5). The window is placed at
//! [mean - k sd, mean + k sd] with k from Bernstein's inequality (payouts per member-year are
//! bounded by the sum of the annual limits), so the mass that wraps around is bounded and
//! reported. Combinations are mixed with their probabilities on one common lattice.
//!
//! Memory: at most [`MAX_POINTS`] complex numbers per group being transformed and per
//! combination, plus the mixed lattice; nothing per member.

use rayon::prelude::*;

use crate::fft::{Complex, fft_smooth_in_place, smooth_size};
use crate::member::PayoutDistribution;
use crate::model::{FactorModels, GroupModel};

/// Lattice points of one combination without factors (2^20: 16 MB of complex numbers), and with
/// factors (2^15 per combination, there being up to a few hundred combinations; the factors
/// dominate the variance, so the coarser lattice's rounding is a small share of it).
pub const MAX_POINTS: usize = 1 << 20;
pub const MAX_POINTS_WITH_FACTORS: usize = 1 << 15;
/// Target for the wrapped-around mass of each combination.
const ALIASING_TARGET: f64 = 1e-12;
/// Target for the variance the lattice rounding may add, relative to the variance of the total.
/// The added variance also moves the quantiles (by about z V / (2 sd) at z standard
/// deviations), which the reported VaR and TVaR errors include.
const ROUNDING_TARGET: f64 = 1e-4;

/// A distribution on the lattice start + i span, i = 0..probs.len().
#[derive(Debug, Clone, PartialEq)]
pub struct Lattice {
    pub start: f64,
    pub span: f64,
    pub probs: Vec<f64>,
}

/// What bounds the numerical error of an exact run.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ExactError {
    pub lattice_span: f64,
    pub lattice_points: usize,
    /// Upper bound on the probability that wrapped around the window (summed over combinations,
    /// weighted).
    pub aliasing_mass: f64,
    /// The variance added by rounding payouts to the lattice (summed atom by atom, so exact for
    /// the member distributions, and in particular a bound), relative to the variance of the
    /// total.
    pub rounding_variance: f64,
    /// |sum of probabilities - 1| after the inverse transform (rounding in the FFT).
    pub mass_defect: f64,
}

impl Lattice {
    fn value(&self, i: usize) -> f64 {
        self.start + i as f64 * self.span
    }

    pub fn mean(&self) -> f64 {
        self.probs
            .iter()
            .enumerate()
            .map(|(i, p)| p * self.value(i))
            .sum()
    }

    pub fn std(&self) -> f64 {
        let m = self.mean();
        self.probs
            .iter()
            .enumerate()
            .map(|(i, p)| p * (self.value(i) - m).powi(2))
            .sum::<f64>()
            .max(0.0)
            .sqrt()
    }

    /// Smallest lattice value with P(total <= x) >= level.
    pub fn var(&self, level: f64) -> f64 {
        let mut c = 0.0;
        for (i, p) in self.probs.iter().enumerate() {
            c += p;
            if c >= level {
                return self.value(i);
            }
        }
        self.value(self.probs.len().saturating_sub(1))
    }

    /// TVaR: the mean of the worst 1 - level of years, (1 / (1 - level)) integral of VaR_u from
    /// level to 1, with the atom at VaR split.
    pub fn tvar(&self, level: f64) -> f64 {
        let tail = 1.0 - level;
        if tail <= 0.0 {
            return self.value(self.probs.len().saturating_sub(1));
        }
        let mut left = tail;
        let mut sum = 0.0;
        for (i, &p) in self.probs.iter().enumerate().rev() {
            let take = p.min(left);
            sum += take * self.value(i);
            left -= take;
            if left <= 0.0 {
                break;
            }
        }
        sum / (tail - left.max(0.0)).max(f64::MIN_POSITIVE)
    }

    /// P(total > x).
    pub fn prob_above(&self, x: f64) -> f64 {
        self.probs
            .iter()
            .enumerate()
            .filter(|(i, _)| self.value(*i) > x)
            .map(|(_, p)| p)
            .sum()
    }

    /// Cumulative probabilities at the lattice points.
    pub fn cdf(&self) -> Vec<f64> {
        self.probs
            .iter()
            .scan(0.0, |c, p| {
                *c += p;
                Some(*c)
            })
            .collect()
    }
}

/// A member-year's payout moments in one group, as the lattice needs them.
struct MemberMoments {
    mean: f64,
    var: f64,
    /// The largest payout.
    max: f64,
    /// P(Y > 0) summed over the benefits: only a payout off the lattice's zero point is
    /// rounded, so this bounds the members whose rounding adds variance.
    off_zero: f64,
}

fn member_moments(m: &GroupModel) -> MemberMoments {
    let parts = [&m.inpatient, &m.specialty_drug];
    let mut out = MemberMoments {
        mean: 0.0,
        var: 0.0,
        max: 0.0,
        off_zero: 0.0,
    };
    for d in parts.into_iter().flatten() {
        out.mean += d.mean;
        out.var += d.variance();
        let (max, off_zero) = d
            .atoms()
            .filter(|&(v, _)| v > 0.0)
            .fold((0.0, 0.0), |(m, q), (v, p)| (f64::max(m, v), q + p));
        out.max += max;
        out.off_zero += off_zero;
    }
    out
}

/// The k such that Bernstein's bound exp(-t^2 / (2 (s^2 + b t / 3))), t = k s, is below `target`
/// for a sum of independent terms bounded by b about their means.
fn bernstein_k(sd: f64, bound: f64, target: f64) -> f64 {
    let l = -target.ln();
    let r = if sd > 0.0 { bound / sd } else { 0.0 };
    // k^2 = 2 l (1 + r k / 3): the positive root.
    let a = 2.0 * l * r / 3.0;
    0.5 * (a + (a * a + 8.0 * l).sqrt())
}

/// One benefit's member distribution put on the lattice (span h, n points, modulo n), each atom
/// split between its two neighbouring points; returns the variance that the split adds,
/// sum of p h^2 f (1 - f) over the atoms at fraction f of the span above a point.
fn scatter(d: &PayoutDistribution, h: f64, buf: &mut [f64]) -> f64 {
    let n = buf.len();
    let mut positive = 0.0;
    let mut added = 0.0;
    for (v, p) in d.atoms() {
        positive += p;
        let x = v / h;
        let j = x.floor();
        let frac = x - j;
        let j = (j as usize) % n;
        buf[j] += p * (1.0 - frac);
        buf[(j + 1) % n] += p * frac;
        added += p * frac * (1.0 - frac);
    }
    buf[0] += (1.0 - positive).max(0.0);
    added * h * h
}

/// Below this real part, exp rounds to exactly 0 in f64 (the least positive f64 is about
/// exp(-744.4)). A characteristic function has |phi| <= 1, so every group adds a real part
/// n log |phi| <= 0 to the log transform of the total: once a partial sum is below this, the
/// total's transform at that frequency is 0 whatever the other groups add, and their
/// logarithms there need not be taken. The total's transform is negligible outside its few
/// lowest frequencies (it decays like exp(-var w^2 / 2), and the window is some 25 standard
/// deviations wide), so this skips nearly every logarithm.
const NEGLIGIBLE_LOG: f64 = -750.0;

/// Sum over groups of n_g log phi_g on frequencies 0..=n/2 (the rest follow by symmetry), and
/// the variance that putting the members' payouts on the lattice adds to the total. Where the
/// sum is below [`NEGLIGIBLE_LOG`] only its real part is kept.
///
/// The group with the most expected payouts comes first and alone: its transform alone is
/// negligible at most frequencies, which the others then skip. The rest are transformed in
/// parallel a few at a time. Groups are added in that order, which depends on the models only,
/// so the sum, and every figure after it, is the same whatever the number of threads (a
/// parallel reduce would add in an order that depends on how the work was split).
fn log_transform(models: &[GroupModel], h: f64, n: usize) -> (Vec<Complex>, f64) {
    const GROUPS_AT_ONCE: usize = 8;
    let mut sum = vec![Complex::new(0.0, 0.0); n / 2 + 1];
    let mut added = 0.0;
    let mut populated: Vec<&GroupModel> = models.iter().filter(|m| m.members > 0).collect();
    let payers: Vec<f64> = populated
        .iter()
        .map(|m| m.members as f64 * member_moments(m).off_zero)
        .collect();
    if let Some(first) =
        (0..populated.len()).max_by(|&a, &b| payers[a].total_cmp(&payers[b]).then(b.cmp(&a)))
    {
        populated[..=first].rotate_right(1);
    }
    let (head, rest) = populated.split_at(populated.len().min(1));
    for chunk in std::iter::once(head).chain(rest.chunks(GROUPS_AT_ONCE)) {
        let parts: Vec<(Vec<Complex>, f64)> = chunk
            .par_iter()
            .map(|m| group_log_transform(m, h, n, &sum))
            .collect();
        for (part, part_added) in &parts {
            for (a, b) in sum.iter_mut().zip(part) {
                *a = *a + *b;
            }
            added += part_added;
        }
    }
    (sum, added)
}

/// n_g log phi_g of one group on frequencies 0..=n/2, and n_g times the variance that the
/// lattice adds to a member-year (members and benefits are independent, so these add). `before`
/// is the sum over the groups already added: where it, or it with this group's real part, is
/// below [`NEGLIGIBLE_LOG`], the total's transform is 0 and the rest is not computed.
fn group_log_transform(
    m: &GroupModel,
    h: f64,
    n: usize,
    before: &[Complex],
) -> (Vec<Complex>, f64) {
    // Inpatient in the real part and drug in the imaginary part: one complex FFT
    // transforms both real sequences.
    let mut re = vec![0.0; n];
    let mut im = vec![0.0; n];
    let mut added = 0.0;
    if let Some(d) = &m.inpatient {
        added += scatter(d, h, &mut re);
    } else {
        re[0] = 1.0;
    }
    if let Some(d) = &m.specialty_drug {
        added += scatter(d, h, &mut im);
    } else {
        im[0] = 1.0;
    }
    let mut buf: Vec<Complex> = re
        .iter()
        .zip(&im)
        .map(|(&a, &b)| Complex::new(a, b))
        .collect();
    fft_smooth_in_place(&mut buf, false);
    let members = m.members as f64;
    let half = (0..=n / 2)
        .zip(before)
        .map(|(k, before)| {
            if before.re < NEGLIGIBLE_LOG {
                return Complex::new(0.0, 0.0);
            }
            let z = buf[k];
            let zc = buf[(n - k) % n];
            let zc = Complex::new(zc.re, -zc.im);
            // A = (Z_k + conj Z_{n-k}) / 2, B = (Z_k - conj Z_{n-k}) / (2i).
            let a = (z + zc).scale(0.5);
            let d = z - zc;
            let b = Complex::new(d.im * 0.5, -d.re * 0.5);
            // The member count is a whole number, so exp(n log(phi)) = phi^n on any branch of
            // the logarithm: one logarithm of the product serves both benefits.
            let phi = a * b;
            let log_abs = members * ln_abs(phi);
            if before.re + log_abs < NEGLIGIBLE_LOG {
                Complex::new(log_abs, 0.0)
            } else {
                Complex::new(log_abs, members * phi.im.atan2(phi.re))
            }
        })
        .collect();
    (half, members * added)
}

/// log |z|, from |z|^2 (cheaper than the overflow-safe hypot, which characteristic functions,
/// |z| <= 1, do not need unless |z|^2 would underflow).
fn ln_abs(z: Complex) -> f64 {
    let r2 = z.re * z.re + z.im * z.im;
    if r2 > 1e-300 {
        0.5 * r2.ln()
    } else {
        z.re.hypot(z.im).ln()
    }
}

/// The window of one combination: (start index on the lattice of span h, points), and its
/// bound on the wrapped mass.
struct Window {
    first: i64,
    points: usize,
    aliasing: f64,
}

/// The total of one combination: its mean and variance, the bound on one member-year's payout,
/// and the expected number of member-year payouts that the lattice rounds.
struct Totals {
    mean: f64,
    var: f64,
    bound: f64,
    payers: f64,
}

/// Splitting a payout y between its two neighbouring lattice points, at fraction f of the
/// span from the lower one, keeps its mean and adds h^2 f (1 - f) <= h^2 / 4 to its variance;
/// a zero payout sits on the lattice and adds nothing. Members are independent, and so are a
/// member's benefits (each is put on the lattice separately), so the added variance is at most
/// h^2 / 4 times the expected number of positive payouts (`payers`).
fn moments(models: &[GroupModel]) -> Totals {
    let mut t = Totals {
        mean: 0.0,
        var: 0.0,
        bound: 0.0,
        payers: 0.0,
    };
    for m in models {
        let mm = member_moments(m);
        let n = m.members as f64;
        t.mean += n * mm.mean;
        t.var += n * mm.var;
        if m.members > 0 {
            t.bound = t.bound.max(mm.max);
        }
        t.payers += n * mm.off_zero;
    }
    t
}

fn window(totals: &Totals, h: f64, max_points: usize) -> Window {
    let &Totals {
        mean, var, bound, ..
    } = totals;
    let sd = var.sqrt();
    let k = bernstein_k(sd, bound, ALIASING_TARGET);
    let lo = (mean - k * sd - bound).max(0.0);
    let hi = mean + k * sd + bound;
    let first = (lo / h).floor() as i64;
    let needed = ((hi / h).ceil() as i64 - first + 2).max(2) as usize;
    // The next length with factors 2, 3 and 5 only: at most 25% above what the window needs.
    let points = smooth_size(needed).clamp(64, max_points);
    let below = mean - first as f64 * h;
    let above = (first + points as i64) as f64 * h - mean;
    let tail = |t: f64| {
        if var > 0.0 && t > 0.0 {
            (-t * t / (2.0 * (var + bound * t / 3.0))).exp()
        } else if var > 0.0 {
            1.0
        } else {
            0.0
        }
    };
    // The total is never negative: nothing wraps from below a window that starts at 0.
    let aliasing = tail(above) + if first > 0 { tail(below) } else { 0.0 };
    Window {
        first,
        points,
        aliasing: aliasing.min(1.0),
    }
}

/// Mean and variance of the total mixed over the combinations.
fn mixture_moments(totals: &[Totals], weights: &[f64]) -> (f64, f64) {
    let mut mean = 0.0;
    let mut second = 0.0;
    for (t, w) in totals.iter().zip(weights) {
        mean += w * t.mean;
        second += w * (t.var + t.mean * t.mean);
    }
    (mean, (second - mean * mean).max(0.0))
}

/// The lattice span: fine enough that rounding adds at most [`ROUNDING_TARGET`] of the variance
/// of the total (mixed over the combinations: the variance that is reported, of which the
/// factors make most when there are any), and coarse enough that every window fits in
/// `max_points`.
fn span(totals: &[Totals], weights: &[f64], max_points: usize) -> f64 {
    let mut h_fit: f64 = 0.0;
    let mut payers_mixed = 0.0;
    for (t, w) in totals.iter().zip(weights) {
        let &Totals {
            mean,
            var,
            bound,
            payers,
        } = t;
        let sd = var.sqrt();
        let k = bernstein_k(sd, bound, ALIASING_TARGET);
        let width = 2.0 * (k * sd + bound);
        h_fit = h_fit.max(width.min(mean + k * sd + bound) / (max_points as f64 - 2.0));
        payers_mixed += w * payers;
    }
    let (_, var) = mixture_moments(totals, weights);
    // Rounding adds at most sum over combinations of weight x payers x h^2 / 4 (see `moments`).
    let h_fine = if payers_mixed > 0.0 && var > 0.0 {
        2.0 * (ROUNDING_TARGET * var / payers_mixed).sqrt()
    } else {
        f64::INFINITY
    };
    let h = h_fine.max(h_fit);
    if h.is_finite() && h > 0.0 { h } else { 1.0 }
}

/// The distribution of one combination's total on its window: (probabilities, |mass - 1|, the
/// variance that the lattice adds).
fn combination(models: &[GroupModel], h: f64, w: &Window) -> (Vec<f64>, f64, f64) {
    let n = w.points;
    let (half, added) = log_transform(models, h, n);
    let mut buf = vec![Complex::new(0.0, 0.0); n];
    for (k, z) in half.iter().enumerate() {
        if z.re < NEGLIGIBLE_LOG {
            // exp is 0 here (and buf already is).
            continue;
        }
        let e = z.exp();
        buf[k] = e;
        if k > 0 && k < n - k {
            buf[n - k] = Complex::new(e.re, -e.im);
        }
    }
    fft_smooth_in_place(&mut buf, true);
    let inv = 1.0 / n as f64;
    let first = w.first.rem_euclid(n as i64) as usize;
    let probs: Vec<f64> = (0..n)
        .map(|i| (buf[(first + i) % n].re * inv).max(0.0))
        .collect();
    let total: f64 = probs.iter().sum();
    (probs, (total - 1.0).abs(), added)
}

/// The exact distribution of the portfolio total, mixed over the factor combinations.
pub fn portfolio(factor_models: &FactorModels) -> (Lattice, ExactError) {
    let max_points = if factor_models.models.len() > 1 {
        MAX_POINTS_WITH_FACTORS
    } else {
        MAX_POINTS
    };
    let weights = &factor_models.grid.weights;
    let totals: Vec<Totals> = factor_models.models.iter().map(|m| moments(m)).collect();
    let h = span(&totals, weights, max_points);
    let windows: Vec<Window> = totals.iter().map(|t| window(t, h, max_points)).collect();
    let lo = windows.iter().map(|w| w.first).min().unwrap_or(0);
    let hi = windows
        .iter()
        .map(|w| w.first + w.points as i64)
        .max()
        .unwrap_or(1);
    let mut mixed = vec![0.0; (hi - lo).max(1) as usize];
    let mut rounding = 0.0;
    let mut err = ExactError {
        lattice_span: h,
        lattice_points: windows.iter().map(|w| w.points).max().unwrap_or(0),
        ..ExactError::default()
    };
    let parts: Vec<(Vec<f64>, f64, f64)> = factor_models
        .models
        .par_iter()
        .zip(&windows)
        .map(|(m, w)| combination(m, h, w))
        .collect();
    for ((probs, defect, added), (w, weight)) in parts
        .iter()
        .zip(windows.iter().zip(&factor_models.grid.weights))
    {
        let offset = (w.first - lo) as usize;
        for (slot, p) in mixed[offset..].iter_mut().zip(probs) {
            *slot += weight * p;
        }
        err.aliasing_mass += weight * w.aliasing;
        rounding += weight * added;
        err.mass_defect += weight * defect;
    }
    let (_, var) = mixture_moments(&totals, weights);
    err.rounding_variance = if var > 0.0 { rounding / var } else { 0.0 };
    (
        Lattice {
            start: lo as f64 * h,
            span: h,
            probs: mixed,
        },
        err,
    )
}
