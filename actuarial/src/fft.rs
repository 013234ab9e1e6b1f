//! A minimal complex type and the power-of-two FFT of the aggregate-loss convolutions (the
//! member payout lattice and each group's total), on `rustfft`.

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
///
/// The transform is `rustfft`'s (SIMD butterflies where the CPU has them). Plans are cached per
/// thread and direction, so the many transforms of one size (one per group and factor node) plan
/// once; the buffer is copied into `rustfft`'s complex type and back, which is linear and small
/// beside the transform itself.
pub fn fft_in_place(buf: &mut [Complex], inverse: bool) -> bool {
    let n = buf.len();
    if n <= 1 {
        return true;
    }
    if !n.is_power_of_two() {
        return false;
    }
    PLANNER.with(|cell| {
        let mut state = cell.borrow_mut();
        let state = &mut *state;
        let plan = if inverse {
            state.planner.plan_fft_inverse(n)
        } else {
            state.planner.plan_fft_forward(n)
        };
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
    true
}

/// One thread's FFT planner (which caches its plans by size and direction) and its buffers.
struct PlannerState {
    planner: rustfft::FftPlanner<f64>,
    work: Vec<rustfft::num_complex::Complex64>,
    scratch: Vec<rustfft::num_complex::Complex64>,
}

thread_local! {
    static PLANNER: std::cell::RefCell<PlannerState> = std::cell::RefCell::new(PlannerState {
        planner: rustfft::FftPlanner::new(),
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
    fn fft_matches_direct_dft_both_directions() {
        let n = 512;
        let x: Vec<Complex> = (0..n)
            .map(|j| Complex::new((j as f64 * 0.37).sin(), (j as f64 * 0.11).cos() * 0.5))
            .collect();
        for inverse in [false, true] {
            let sign = if inverse { 1.0 } else { -1.0 };
            let mut fast = x.clone();
            assert!(fft_in_place(&mut fast, inverse));
            for (k, got) in fast.iter().enumerate() {
                let direct = x
                    .iter()
                    .enumerate()
                    .fold(Complex::new(0.0, 0.0), |acc, (j, v)| {
                        let angle =
                            sign * 2.0 * std::f64::consts::PI * ((j * k) % n) as f64 / n as f64;
                        let (s, c) = angle.sin_cos();
                        acc + *v * Complex::new(c, s)
                    });
                assert!((got.re - direct.re).abs() < 1e-10 && (got.im - direct.im).abs() < 1e-10);
            }
        }
    }
}
