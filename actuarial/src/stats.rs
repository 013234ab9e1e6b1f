//! Estimators with standard errors for the quantities reported.

use serde::Serialize;

/// Sums of powers of observations, merged in a fixed order to keep results independent of the
/// thread count.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moments {
    pub s1: f64,
    pub s2: f64,
    pub s3: f64,
    pub s4: f64,
}

impl Moments {
    #[inline]
    pub fn add(&mut self, y: f64) {
        let y2 = y * y;
        self.s1 += y;
        self.s2 += y2;
        self.s3 += y2 * y;
        self.s4 += y2 * y2;
    }

    pub fn merge(&mut self, o: &Self) {
        self.s1 += o.s1;
        self.s2 += o.s2;
        self.s3 += o.s3;
        self.s4 += o.s4;
    }
}

/// Mean, standard deviation and probability of a positive value of a member-year payout, with
/// standard errors, from `n` observations of which `positive` were non-zero and whose power
/// sums are `m` (zeros contribute nothing to the sums).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MemberStats {
    pub mean: f64,
    pub mean_se: f64,
    pub std: f64,
    pub std_se: f64,
    pub prob: f64,
    pub prob_se: f64,
}

impl MemberStats {
    pub const ZERO: Self = Self {
        mean: 0.0,
        mean_se: 0.0,
        std: 0.0,
        std_se: 0.0,
        prob: 0.0,
        prob_se: 0.0,
    };

    pub fn from_sums(n: f64, positive: f64, m: &Moments) -> Self {
        if n < 2.0 {
            return Self::ZERO;
        }
        let mean = m.s1 / n;
        let e2 = m.s2 / n;
        let e3 = m.s3 / n;
        let e4 = m.s4 / n;
        let var_pop = (e2 - mean * mean).max(0.0);
        let var = var_pop * n / (n - 1.0);
        let std = var.sqrt();
        // Fourth central moment from raw moments.
        let mu4 = (e4 - 4.0 * mean * e3 + 6.0 * mean * mean * e2 - 3.0 * mean.powi(4)).max(0.0);
        // Delta method: Var(s) ~ (mu4 - sigma^4) / (4 sigma^2 n).
        let std_se = if var_pop > 0.0 {
            ((mu4 - var_pop * var_pop).max(0.0) / (4.0 * var_pop * n)).sqrt()
        } else {
            0.0
        };
        let prob = positive / n;
        Self {
            mean,
            mean_se: (var / n).sqrt(),
            std,
            std_se,
            prob,
            prob_se: (prob * (1.0 - prob) / n).sqrt(),
        }
    }
}

/// Summary of the simulated portfolio totals.
#[derive(Debug, Clone, PartialEq)]
pub struct TailEstimate {
    pub var: f64,
    pub var_se: f64,
    pub tvar: f64,
    pub tvar_se: f64,
}

/// Sorted sample of portfolio-year totals.
pub struct Sample {
    sorted: Vec<f64>,
    pub mean: f64,
    pub mean_se: f64,
    pub std: f64,
    pub std_se: f64,
}

impl Sample {
    /// `totals` in simulation order; the mean is summed in that order.
    pub fn new(totals: &[f64]) -> Self {
        let n = totals.len() as f64;
        let mean = totals.iter().sum::<f64>() / n.max(1.0);
        let (m2, m4) = totals.iter().fold((0.0, 0.0), |(a, b), &x| {
            let d = x - mean;
            let d2 = d * d;
            (a + d2, b + d2 * d2)
        });
        let var_pop = if n > 0.0 { m2 / n } else { 0.0 };
        let var = if n > 1.0 { m2 / (n - 1.0) } else { 0.0 };
        let mu4 = if n > 0.0 { m4 / n } else { 0.0 };
        let std_se = if var_pop > 0.0 {
            ((mu4 - var_pop * var_pop).max(0.0) / (4.0 * var_pop * n)).sqrt()
        } else {
            0.0
        };
        let mut sorted = totals.to_vec();
        sorted.sort_by(f64::total_cmp);
        Self {
            sorted,
            mean,
            mean_se: (var / n.max(1.0)).sqrt(),
            std: var.sqrt(),
            std_se,
        }
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// VaR as the ceil(level n)-th order statistic (as the numpy baseline computes it) and TVaR
    /// as the mean from there up. Standard errors: for VaR, half the width of the order-statistic
    /// band +-sqrt(n level (1 - level)); for TVaR, sqrt((Var_tail + level (TVaR - VaR)^2) /
    /// (n (1 - level))) (Manistre and Hancock, 2005).
    pub fn tail(&self, level: f64) -> TailEstimate {
        let n = self.sorted.len();
        if n == 0 {
            return TailEstimate {
                var: 0.0,
                var_se: 0.0,
                tvar: 0.0,
                tvar_se: 0.0,
            };
        }
        let nf = n as f64;
        let k = ((level * nf).ceil() as usize).clamp(1, n) - 1;
        let var = self.sorted[k];
        let band = (nf * level * (1.0 - level)).sqrt().ceil() as usize;
        let lo = self.sorted[k.saturating_sub(band)];
        let hi = self.sorted[(k + band).min(n - 1)];
        let tail = &self.sorted[k..];
        let tn = tail.len() as f64;
        let tvar = tail.iter().sum::<f64>() / tn;
        let tail_var = if tn > 1.0 {
            tail.iter().map(|x| (x - tvar) * (x - tvar)).sum::<f64>() / (tn - 1.0)
        } else {
            0.0
        };
        let tvar_se = ((tail_var + level * (tvar - var) * (tvar - var)) / (nf * (1.0 - level)))
            .max(0.0)
            .sqrt();
        TailEstimate {
            var,
            var_se: 0.5 * (hi - lo),
            tvar,
            tvar_se,
        }
    }

    /// The totals in ascending order.
    pub fn sorted(&self) -> &[f64] {
        &self.sorted
    }

    /// Share of totals strictly above `threshold`, with its binomial standard error.
    pub fn prob_above(&self, threshold: f64) -> (f64, f64) {
        let n = self.sorted.len();
        if n == 0 {
            return (0.0, 0.0);
        }
        let above = n - self.sorted.partition_point(|&x| x <= threshold);
        let p = above as f64 / n as f64;
        (p, (p * (1.0 - p) / n as f64).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_matches_definition() {
        let totals: Vec<f64> = (1..=1000).map(|i| i as f64).collect();
        let s = Sample::new(&totals);
        let t = s.tail(0.99);
        assert_eq!(t.var, 990.0);
        assert!((t.tvar - (990..=1000).sum::<i32>() as f64 / 11.0).abs() < 1e-12);
        assert!((s.mean - 500.5).abs() < 1e-12);
        assert_eq!(
            s.prob_above(990.0),
            (0.01, (0.01_f64 * 0.99 / 1000.0).sqrt())
        );
    }

    #[test]
    fn member_stats_of_a_bernoulli() {
        // 1000 observations, 100 equal to 10: mean 1, variance 9 * 1000 / 999.
        let mut m = Moments::default();
        for _ in 0..100 {
            m.add(10.0);
        }
        let st = MemberStats::from_sums(1000.0, 100.0, &m);
        assert!((st.mean - 1.0).abs() < 1e-12);
        assert!((st.std - (9.0_f64 * 1000.0 / 999.0).sqrt()).abs() < 1e-12);
        assert!((st.prob - 0.1).abs() < 1e-12);
    }
}
