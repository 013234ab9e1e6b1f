//! A minimal complex type and an iterative radix-2 FFT, enough for the aggregate-loss
//! convolution of one member's annual claims (a few hundred thousand points at most).

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
    let n = buf.len();
    if n <= 1 {
        return true;
    }
    if !n.is_power_of_two() {
        return false;
    }
    // Bit-reversal permutation.
    let bits = n.trailing_zeros();
    for i in 0..n {
        let j = i.reverse_bits() >> (usize::BITS - bits);
        if j > i {
            buf.swap(i, j);
        }
    }
    let sign = if inverse { 1.0 } else { -1.0 };
    // Twiddles of the last stage, computed directly (not by repeated multiplication, which
    // would accumulate rounding error); earlier stages use every (n / len)-th of them.
    let step = sign * 2.0 * std::f64::consts::PI / n as f64;
    let twiddles: Vec<Complex> = (0..n / 2)
        .map(|k| {
            let (s, c) = (step * k as f64).sin_cos();
            Complex::new(c, s)
        })
        .collect();
    let mut len = 2;
    while len <= n {
        let half = len / 2;
        let stride = n / len;
        for chunk in buf.chunks_exact_mut(len) {
            let (lo, hi) = chunk.split_at_mut(half);
            for (k, (a, b)) in lo.iter_mut().zip(hi.iter_mut()).enumerate() {
                let t = *b * twiddles[k * stride];
                *b = *a - t;
                *a = *a + t;
            }
        }
        len *= 2;
    }
    true
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
}
