//! Walker/Vose alias table for O(1) sampling from a discrete distribution.
//!
//! The number of columns is a power of two so that the column comes from the top bits of one
//! 64-bit draw without any modulo bias, and the low 32 bits decide between the column and its
//! alias. One random word per sample.

use rand::RngCore;

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Take the column's own value when the low 32 bits are below this.
    threshold: u32,
    /// Index taken otherwise; equal to the column itself for columns that are (numerically) full.
    alias: u32,
}

#[derive(Debug, Clone)]
pub struct AliasTable {
    shift: u32,
    entries: Vec<Entry>,
    values: Vec<f64>,
}

impl AliasTable {
    /// Builds a table from (value, weight) pairs. Weights need not be normalised; negative or
    /// non-finite weights are treated as zero. Returns None when the total weight is zero or the
    /// table would exceed 2^31 columns.
    pub fn new(values: &[f64], weights: &[f64]) -> Option<Self> {
        if values.len() != weights.len() || values.is_empty() {
            return None;
        }
        let clean = |w: f64| if w.is_finite() && w > 0.0 { w } else { 0.0 };
        let total: f64 = weights.iter().map(|&w| clean(w)).sum();
        if !(total > 0.0 && total.is_finite()) {
            return None;
        }
        // At least two columns so that the shift below stays within 1..=63.
        let columns = values.len().max(2).checked_next_power_of_two()?;
        if columns > 1 << 31 {
            return None;
        }
        let bits = columns.trailing_zeros();
        let scale = columns as f64 / total;
        let mut scaled: Vec<f64> = (0..columns)
            .map(|i| weights.get(i).map_or(0.0, |&w| clean(w) * scale))
            .collect();
        let mut padded_values = values.to_vec();
        padded_values.resize(columns, 0.0);

        let mut entries: Vec<Entry> = (0..columns)
            .map(|i| Entry {
                threshold: 0,
                alias: i as u32,
            })
            .collect();
        let mut small: Vec<usize> = Vec::new();
        let mut large: Vec<usize> = Vec::new();
        for (i, &p) in scaled.iter().enumerate() {
            if p < 1.0 {
                small.push(i);
            } else {
                large.push(i);
            }
        }
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            entries[s] = Entry {
                threshold: to_threshold(scaled[s]),
                alias: l as u32,
            };
            scaled[l] -= 1.0 - scaled[s];
            if scaled[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // Whatever is left is full up to rounding: it always takes its own value.
        for i in small.into_iter().chain(large) {
            entries[i] = Entry {
                threshold: u32::MAX,
                alias: i as u32,
            };
        }
        Some(Self {
            shift: 64 - bits,
            entries,
            values: padded_values,
        })
    }

    #[inline]
    pub fn sample<R: RngCore + ?Sized>(&self, rng: &mut R) -> f64 {
        self.sample_word(rng.next_u64())
    }

    /// The sample for one uniformly random 64-bit word.
    #[inline]
    pub fn sample_word(&self, r: u64) -> f64 {
        let column = (r >> self.shift) as usize;
        // The shift is at least 33 (at most 2^31 columns), so the low 32 bits are independent of
        // the column bits.
        let entry = self.entries[column];
        // Select without a branch: the comparison is a coin flip the predictor cannot learn.
        let take_alias = ((r as u32) >= entry.threshold) as usize;
        let index = column ^ ((column ^ entry.alias as usize) & take_alias.wrapping_neg());
        self.values[index]
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn to_threshold(p: f64) -> u32 {
    // p is in [0, 1); the product is below 2^32 and the cast saturates anyway.
    (p * 4_294_967_296.0).round() as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn reproduces_probabilities() {
        let values = [1.0, 2.0, 3.0, 4.0, 5.0];
        let weights = [0.5, 0.2, 0.15, 0.1, 0.05];
        let table = AliasTable::new(&values, &weights).unwrap();
        assert_eq!(table.len(), 8);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let n = 200_000;
        let mut counts = [0usize; 5];
        for _ in 0..n {
            let v = table.sample(&mut rng);
            counts[v as usize - 1] += 1;
        }
        for (c, w) in counts.iter().zip(weights) {
            let p = *c as f64 / n as f64;
            let se = (w * (1.0 - w) / n as f64).sqrt();
            assert!((p - w).abs() < 5.0 * se, "p={p} w={w}");
        }
    }

    #[test]
    fn rejects_degenerate_input() {
        assert!(AliasTable::new(&[], &[]).is_none());
        assert!(AliasTable::new(&[1.0], &[0.0]).is_none());
        assert!(AliasTable::new(&[1.0, 2.0], &[1.0]).is_none());
        let one = AliasTable::new(&[7.0], &[3.0]).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..100 {
            assert_eq!(one.sample(&mut rng), 7.0);
        }
    }
}
