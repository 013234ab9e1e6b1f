//! The Monte Carlo of portfolio-years.
//!
//! Simulation per portfolio-year and group: draw how many members have an inpatient payout, a
//! drug payout, or both (binomial draws, exact), then draw only those members' payouts from the
//! exact member-level distributions (alias tables). Members with no payout cost nothing, so the
//! work is proportional to paying members, not to members.
//!
//! Reproducibility: portfolio-years are cut into fixed blocks of [`BLOCK_YEARS`]; block b uses
//! `ChaCha8Rng::seed_from_u64(seed)` on stream b, and block results are merged sequentially in
//! block order. Neither depends on the thread count, so neither do the results.

use std::sync::atomic::Ordering;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::engine::{Cancellation, PricingError, RunOptions};
use crate::member::PayoutDistribution;
use crate::model::FactorModels;
use crate::stats::Moments;

/// Portfolio-years per block of work (one RNG stream each). Part of the reproducibility
/// contract: changing it changes every result.
pub const BLOCK_YEARS: u64 = 128;

/// Per-group sums over simulated member-years.
#[derive(Debug, Clone, Copy, Default)]
pub struct GroupAcc {
    pub n_inp_only: u64,
    pub n_drug_only: u64,
    pub n_both: u64,
    pub inp_only: Moments,
    pub drug_only: Moments,
    pub both_inp: Moments,
    pub both_drug: Moments,
    pub both_total: Moments,
}

impl GroupAcc {
    fn merge(&mut self, o: &Self) {
        self.n_inp_only += o.n_inp_only;
        self.n_drug_only += o.n_drug_only;
        self.n_both += o.n_both;
        self.inp_only.merge(&o.inp_only);
        self.drug_only.merge(&o.drug_only);
        self.both_inp.merge(&o.both_inp);
        self.both_drug.merge(&o.both_drug);
        self.both_total.merge(&o.both_total);
    }
}

pub struct SimOutput {
    /// Portfolio total per simulated year, in simulation order.
    pub totals: Vec<f64>,
    pub groups: Vec<GroupAcc>,
}

struct BlockOut {
    totals: Vec<f64>,
    groups: Vec<GroupAcc>,
}

/// Random words are drawn in batches before use, so that the accumulation loop makes no calls
/// and its sums stay in registers. Words are consumed in the same order as one at a time.
const BATCH: usize = 64;

fn draw_many(dist: Option<&PayoutDistribution>, k: u64, rng: &mut ChaCha8Rng) -> Moments {
    let (mut s1, mut s2, mut s3, mut s4) = (0.0, 0.0, 0.0, 0.0);
    if let Some(d) = dist {
        let table = d.sampling_table();
        let mut words = [0u64; BATCH];
        let mut left = k;
        while left > 0 {
            let n = left.min(BATCH as u64) as usize;
            for w in &mut words[..n] {
                *w = rng.next_u64();
            }
            for &w in &words[..n] {
                let y = table.map_or(0.0, |t| t.sample_word(w));
                let y2 = y * y;
                s1 += y;
                s2 += y2;
                s3 += y2 * y;
                s4 += y2 * y2;
            }
            left -= n as u64;
        }
    }
    Moments { s1, s2, s3, s4 }
}

/// Members with payouts under both benefits: one inpatient and one drug draw each, in that
/// order. Returns the sums for inpatient, drug and the member total.
fn draw_both(
    inpatient: &PayoutDistribution,
    drug: &PayoutDistribution,
    k: u64,
    rng: &mut ChaCha8Rng,
) -> (Moments, Moments, Moments) {
    let (mut mi, mut md, mut mt) = (Moments::default(), Moments::default(), Moments::default());
    let (ti, td) = (inpatient.sampling_table(), drug.sampling_table());
    let mut words = [0u64; BATCH];
    let mut left = k;
    while left > 0 {
        let n = left.min((BATCH / 2) as u64) as usize;
        for w in &mut words[..2 * n] {
            *w = rng.next_u64();
        }
        for pair in words[..2 * n].chunks_exact(2) {
            let yi = ti.map_or(0.0, |t| t.sample_word(pair[0]));
            let yd = td.map_or(0.0, |t| t.sample_word(pair[1]));
            mi.add(yi);
            md.add(yd);
            mt.add(yi + yd);
        }
        left -= n as u64;
    }
    (mi, md, mt)
}

/// The combination of factor nodes for one portfolio-year: one 64-bit word, drawn first in the
/// year, against the cumulative weights (no word is drawn without factors).
fn draw_combination(cumulative: &[f64], rng: &mut ChaCha8Rng) -> usize {
    if cumulative.len() <= 1 {
        return 0;
    }
    // 53 random bits as a uniform in [0, 1).
    let u = (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
    cumulative
        .partition_point(|&c| c <= u)
        .min(cumulative.len() - 1)
}

fn run_block(
    factor_models: &FactorModels,
    cumulative: &[f64],
    seed: u64,
    block: u64,
    years: u64,
    cancel: Option<&Cancellation>,
) -> Option<BlockOut> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(block);
    let mut totals = Vec::with_capacity(years as usize);
    let mut groups = vec![GroupAcc::default(); factor_models.models[0].len()];
    for _ in 0..years {
        if cancel.is_some_and(Cancellation::is_cancelled) {
            return None;
        }
        let models = &factor_models.models[draw_combination(cumulative, &mut rng)];
        let mut total = 0.0;
        for (model, acc) in models.iter().zip(groups.iter_mut()) {
            let (both, inp_only, drug_only) = model.categories(&mut rng);
            if inp_only > 0 {
                let m = draw_many(model.inpatient.as_deref(), inp_only, &mut rng);
                acc.n_inp_only += inp_only;
                acc.inp_only.merge(&m);
                total += m.s1;
            }
            if drug_only > 0 {
                let m = draw_many(model.specialty_drug.as_deref(), drug_only, &mut rng);
                acc.n_drug_only += drug_only;
                acc.drug_only.merge(&m);
                total += m.s1;
            }
            if both > 0 {
                acc.n_both += both;
                if let (Some(di), Some(dd)) = (&model.inpatient, &model.specialty_drug) {
                    let (mi, md, mt) = draw_both(di, dd, both, &mut rng);
                    acc.both_inp.merge(&mi);
                    acc.both_drug.merge(&md);
                    acc.both_total.merge(&mt);
                    total += mt.s1;
                }
            }
        }
        totals.push(total);
    }
    Some(BlockOut { totals, groups })
}

/// Simulates `years` portfolio-years. Blocks run in parallel in waves; each wave's results are
/// merged in block order, which bounds memory (one wave of per-group sums at a time) and keeps
/// the float summation order fixed.
pub fn simulate(
    models: &FactorModels,
    years: u64,
    seed: u64,
    options: &RunOptions<'_>,
) -> Result<SimOutput, PricingError> {
    let blocks = years.div_ceil(BLOCK_YEARS);
    let wave = (rayon::current_num_threads() as u64).max(1) * 4;
    let mut totals = Vec::with_capacity(years as usize);
    let mut groups = vec![GroupAcc::default(); models.models[0].len()];
    let cumulative: Vec<f64> = models
        .grid
        .weights
        .iter()
        .scan(0.0, |acc, w| {
            *acc += w;
            Some(*acc)
        })
        .collect();
    let mut start = 0;
    while start < blocks {
        Cancellation::check(options.cancel)?;
        let end = (start + wave).min(blocks);
        let outs: Vec<Option<BlockOut>> = (start..end)
            .into_par_iter()
            .map(|b| {
                let n = BLOCK_YEARS.min(years - b * BLOCK_YEARS);
                let out = run_block(models, &cumulative, seed, b, n, options.cancel);
                if let (Some(_), Some(p)) = (&out, options.progress) {
                    p.fetch_add(n, Ordering::Relaxed);
                }
                out
            })
            .collect();
        for out in outs {
            let out = out.ok_or(PricingError::Cancelled)?;
            totals.extend_from_slice(&out.totals);
            for (a, b) in groups.iter_mut().zip(&out.groups) {
                a.merge(b);
            }
        }
        start = end;
    }
    Ok(SimOutput { totals, groups })
}
