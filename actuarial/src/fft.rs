//! A minimal complex type and the FFT (power-of-two and 5-smooth lengths) of the aggregate-loss
//! convolutions (the member payout lattice and each group's total), on `rustfft`.

use std::ops::{Add, Mul, Sub};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Complex {
    pub re: f64,
    pub im: f64,
}

impl Complex {
    pub const ONE: Self = Self { re: 1.0, im: 0.0 };

    pub const fn new(re: f64, im: f64) -> Self {
        Self { re, im }
    }

    pub const fn real(re: f64) -> Self {
        Self { re, im: 0.0 }
    }

    pub fn scale(self, k: f64) -> Self {
        Self::new(self.re * k, self.im * k)
    }

    pub fn exp(self) -> Self {
        let m = self.re.exp();
        let (s, c) = self.im.sin_cos();
        Self::new(m * c, m * s)
    }

    /// Principal logarithm.
    pub fn ln(self) -> Self {
        Self::new(self.re.hypot(self.im).ln(), self.im.atan2(self.re))
    }
}

impl Add for Complex {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self::new(self.re + o.re, self.im + o.im)
    }
}

impl Sub for Complex {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Self::new(self.re - o.re, self.im - o.im)
    }
}

impl Mul for Complex {
    type Output = Self;
    fn mul(self, o: Self) -> Self {
        Self::new(
            self.re * o.re - self.im * o.im,
            self.re * o.im + self.im * o.re,
        )
    }
}

/// In-place FFT of a power-of-two length buffer. `inverse` computes the unnormalised inverse
/// transform (the caller divides by the length).
///
/// Returns false, leaving the buffer untouched, when the length is not a power of two.
pub fn fft_in_place(buf: &mut [Complex], inverse: bool) -> bool {
    if buf.len() > 1 && !buf.len().is_power_of_two() {
        return false;
    }
    transform(buf, inverse);
    true
}

/// In-place FFT of a buffer of any length, meant for lengths from [`smooth_size`], whose
/// factors 2, 3 and 5 `rustfft` transforms about as fast per point as a power of two. A
/// lattice sized to the next such length instead of the next power of two is at most 25%
/// (rather than up to 100%) longer than it needs to be.
pub fn fft_smooth_in_place(buf: &mut [Complex], inverse: bool) {
    transform(buf, inverse);
}

/// The smallest length at least `n` with no prime factor above 5 (1 for 0).
pub fn smooth_size(n: usize) -> usize {
    let mut best = n.max(1).next_power_of_two();
    let mut p5 = 1;
    while p5 < best {
        let mut p35 = p5;
        while p35 < best {
            // The smallest p35 x 2^a >= n.
            let mut size = p35;
            while size < n {
                size *= 2;
            }
            best = best.min(size);
            p35 *= 3;
        }
        p5 *= 5;
    }
    best
}

/// The transform is `rustfft`'s (SIMD butterflies where the CPU has them). Plans are cached per
/// thread, size and direction, so the many transforms of one size (one per group and factor
/// node) plan once; the buffer is copied into `rustfft`'s complex type and back, which is linear
/// and small beside the transform itself.
///
/// Each size is planned by a planner of its own: a planner reuses the sub-transforms it has
/// already built, so the plan of a mixed-radix length depends on the sizes planned before it.
/// Threads see the sizes in different orders, and two plans of one length round differently in
/// the last bits; a fresh planner gives every thread the same plan, and the results do not
/// depend on the thread count.
fn transform(buf: &mut [Complex], inverse: bool) {
    let n = buf.len();
    if n <= 1 {
        return;
    }
    PLANNER.with(|cell| {
        let mut state = cell.borrow_mut();
        let state = &mut *state;
        let plan = state
            .plans
            .entry((n, inverse))
            .or_insert_with(|| {
                let mut planner = rustfft::FftPlanner::new();
                if inverse {
                    planner.plan_fft_inverse(n)
                } else {
                    planner.plan_fft_forward(n)
                }
            })
            .clone();
        state.work.clear();
        state.work.extend(
            buf.iter()
                .map(|z| rustfft::num_complex::Complex64::new(z.re, z.im)),
        );
        let scratch_len = plan.get_inplace_scratch_len();
        if state.scratch.len() < scratch_len {
            state
                .scratch
                .resize(scratch_len, rustfft::num_complex::Complex64::new(0.0, 0.0));
        }
        plan.process_with_scratch(&mut state.work, &mut state.scratch[..scratch_len]);
        for (z, w) in buf.iter_mut().zip(&state.work) {
            *z = Complex::new(w.re, w.im);
        }
    });
}

/// One thread's FFT plans by size and direction, and its buffers.
struct PlannerState {
    plans: std::collections::HashMap<(usize, bool), std::sync::Arc<dyn rustfft::Fft<f64>>>,
    work: Vec<rustfft::num_complex::Complex64>,
    scratch: Vec<rustfft::num_complex::Complex64>,
}

thread_local! {
    static PLANNER: std::cell::RefCell<PlannerState> = std::cell::RefCell::new(PlannerState {
        plans: std::collections::HashMap::new(),
        work: Vec::new(),
        scratch: Vec::new(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fft_matches_direct_convolution() {
        let a = [0.5, 0.25, 0.25];
        let b = [0.1, 0.2, 0.3, 0.4];
        let mut direct = [0.0; 6];
        for (i, x) in a.iter().enumerate() {
            for (j, y) in b.iter().enumerate() {
                direct[i + j] += x * y;
            }
        }
        let n = 8;
        let mut fa: Vec<Complex> = (0..n)
            .map(|i| Complex::real(a.get(i).copied().unwrap_or(0.0)))
            .collect();
        let mut fb: Vec<Complex> = (0..n)
            .map(|i| Complex::real(b.get(i).copied().unwrap_or(0.0)))
            .collect();
        assert!(fft_in_place(&mut fa, false));
        assert!(fft_in_place(&mut fb, false));
        let mut prod: Vec<Complex> = fa.iter().zip(&fb).map(|(x, y)| *x * *y).collect();
        assert!(fft_in_place(&mut prod, true));
        for (k, d) in direct.iter().enumerate() {
            assert!((prod[k].re / n as f64 - d).abs() < 1e-15);
        }
        assert!(!fft_in_place(&mut [Complex::ONE; 3], false));
    }

    #[test]
    fn smooth_sizes_are_the_least_with_factors_up_to_five() {
        let smooth = |mut n: usize| {
            for p in [2, 3, 5] {
                while n.is_multiple_of(p) {
                    n /= p;
                }
            }
            n == 1
        };
        for n in 0..2_000 {
            let s = smooth_size(n);
            assert!(s >= n && smooth(s), "{n}: {s}");
            assert!((n.max(1)..s).all(|m| !smooth(m)), "{n}: {s}");
        }
        assert_eq!(smooth_size(1 << 20), 1 << 20);
        assert_eq!(smooth_size(4_098), 4_320);
    }

    #[test]
    fn smooth_transform_matches_direct_dft() {
        let n = 360;
        let x = test_signal(n);
        let mut fast = x.clone();
        fft_smooth_in_place(&mut fast, false);
        for (k, got) in fast.iter().enumerate() {
            let direct = direct_dft(&x, k, -1.0);
            assert!((got.re - direct.re).abs() < 1e-10 && (got.im - direct.im).abs() < 1e-10);
        }
    }

    /// A complex sequence with no symmetry for the transforms to hide behind.
    fn test_signal(n: usize) -> Vec<Complex> {
        (0..n)
            .map(|j| Complex::new((j as f64 * 0.37).sin(), (j as f64 * 0.11).cos() * 0.5))
            .collect()
    }

    /// Term k of the DFT of `x` by its definition, with exp(sign 2 pi i j k / n).
    fn direct_dft(x: &[Complex], k: usize, sign: f64) -> Complex {
        let n = x.len();
        x.iter()
            .enumerate()
            .fold(Complex::new(0.0, 0.0), |acc, (j, v)| {
                let angle = sign * 2.0 * std::f64::consts::PI * ((j * k) % n) as f64 / n as f64;
                let (s, c) = angle.sin_cos();
                acc + *v * Complex::new(c, s)
            })
    }

    #[test]
    fn fft_matches_direct_dft_both_directions() {
        let n = 512;
        let x = test_signal(n);
        for inverse in [false, true] {
            let sign = if inverse { 1.0 } else { -1.0 };
            let mut fast = x.clone();
            assert!(fft_in_place(&mut fast, inverse));
            for (k, got) in fast.iter().enumerate() {
                let direct = direct_dft(&x, k, sign);
                assert!((got.re - direct.re).abs() < 1e-10 && (got.im - direct.im).abs() < 1e-10);
            }
        }
    }
}
