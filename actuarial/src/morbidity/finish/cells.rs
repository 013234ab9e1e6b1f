//! The study's cell-years as the estimates need them: trended, as rate or mean pairs per
//! cell-year, and the pooled observed values with their standard errors.

use crate::morbidity::study::{CellYear, PartialStudy};
use crate::morbidity::{
    AGE_BANDS, CELLS, CONDITION_GROUPS, SEXES, StudyError, cell_index, cell_parts,
};

use super::*;

/// What one quantity needs per cell-year: the count of events, the sum and sum of squares of
/// the value per event (for means; trended, in CNY), and the weight.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    Rate,
    Mean,
}

pub(super) struct QuantityInput {
    /// `[cell][year] -> (value, weight)`.
    pub(super) pairs: Vec<Vec<(f64, f64)>>,
}

pub(super) fn person_years(c: &CellYear, year: i32) -> f64 {
    c.exposure_days as f64 / crate::morbidity::dates::days_in_year(year) as f64
}

/// Observed value and standard error from the pooled sums of a cell (all years).
pub(super) fn observed(
    kind: Kind,
    count: u64,
    weight: f64,
    sum: f64,
    sum_sq: f64,
) -> (Option<f64>, Option<f64>) {
    match kind {
        Kind::Rate => {
            if weight > 0.0 {
                (
                    Some(count as f64 / weight),
                    Some((count as f64).sqrt() / weight),
                )
            } else {
                (None, None)
            }
        }
        Kind::Mean => {
            if count == 0 {
                return (None, None);
            }
            let n = count as f64;
            let mean = sum / n;
            let se = (count >= 2).then(|| {
                let var = ((sum_sq - n * mean * mean) / (n - 1.0)).max(0.0);
                (var / n).sqrt()
            });
            (Some(mean), se)
        }
    }
}

pub(super) fn sample_cv(count: u64, sum: f64, sum_sq: f64) -> Option<f64> {
    if count < 2 || sum <= 0.0 {
        return None;
    }
    let n = count as f64;
    let mean = sum / n;
    let var = ((sum_sq - n * mean * mean) / (n - 1.0)).max(0.0);
    Some(var.sqrt() / mean)
}

/// The study's cell-years seen from the pricing year: costs trended, exposure per cell.
pub(super) struct Trended<'a> {
    pub(super) study: &'a PartialStudy,
    pub(super) years: Vec<i32>,
    pub(super) options: &'a FinishOptions,
    pub(super) exposure: Vec<f64>,
}

impl<'a> Trended<'a> {
    pub(super) fn new(study: &'a PartialStudy, options: &'a FinishOptions) -> Self {
        let years: Vec<i32> = (study.first_year..=study.last_year).collect();
        let exposure = (0..CELLS)
            .map(|c| {
                years
                    .iter()
                    .zip(&study.cells[c])
                    .map(|(&y, cy)| person_years(cy, y))
                    .sum()
            })
            .collect();
        Trended {
            study,
            years,
            options,
            exposure,
        }
    }

    /// The multiplier bringing a cost of `year` to the pricing year.
    fn factor(&self, year: i32) -> f64 {
        (1.0 + self.options.trend).powi(self.options.pricing_year - year)
    }

    fn cell_years(&self, c: usize) -> impl Iterator<Item = (i32, &CellYear)> {
        self.years.iter().copied().zip(&self.study.cells[c])
    }

    /// (rate, person-years) per cell-year of a count.
    pub(super) fn rate_pairs(&self, count: fn(&CellYear) -> u64) -> QuantityInput {
        QuantityInput {
            pairs: (0..CELLS)
                .map(|c| {
                    self.cell_years(c)
                        .map(|(y, cy)| {
                            let w = person_years(cy, y);
                            (if w > 0.0 { count(cy) as f64 / w } else { 0.0 }, w)
                        })
                        .collect()
                })
                .collect(),
        }
    }

    /// (trended mean in CNY, count) per cell-year of a (count, sum in fen).
    pub(super) fn mean_pairs(&self, sum: fn(&CellYear) -> (u64, u128)) -> QuantityInput {
        QuantityInput {
            pairs: (0..CELLS)
                .map(|c| {
                    self.cell_years(c)
                        .map(|(y, cy)| {
                            let (n, fen) = sum(cy);
                            let v = if n > 0 {
                                fen as f64 / 100.0 * self.factor(y) / n as f64
                            } else {
                                0.0
                            };
                            (v, n as f64)
                        })
                        .collect()
                })
                .collect(),
        }
    }

    /// (count, sum, sum of squares) over the years of a cell, trended, in CNY.
    fn pooled(&self, c: usize, sum: fn(&CellYear) -> (u64, u128, u128)) -> (u64, f64, f64) {
        let (mut n, mut s, mut s2) = (0u64, 0.0, 0.0);
        for (y, cy) in self.cell_years(c) {
            let (count, fen, fen_sq) = sum(cy);
            let f = self.factor(y);
            n += count;
            s += fen as f64 / 100.0 * f;
            s2 += fen_sq as f64 / 10_000.0 * f * f;
        }
        (n, s, s2)
    }

    fn oop(&self, c: usize) -> (u64, f64, f64) {
        self.pooled(c, |cy| (cy.admissions, cy.oop_fen, cy.oop_fen_sq))
    }

    /// The cost cv of admissions pooled over `cells`.
    fn pooled_cv(&self, cells: &[usize]) -> Option<f64> {
        let (n, s, s2) = cells
            .iter()
            .map(|&c| self.oop(c))
            .fold((0, 0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2));
        sample_cv(n, s, s2)
    }

    /// The cv of a thin cell leans on its parent's (both sexes), then on its condition group's,
    /// then on the whole study's.
    fn fallback_cv(&self, band: usize, pre: bool) -> Option<f64> {
        let parent_cells: Vec<usize> = (0..SEXES.len()).map(|s| cell_index(band, s, pre)).collect();
        let group_cells: Vec<usize> = (0..AGE_BANDS.len())
            .flat_map(|b| (0..SEXES.len()).map(move |s| cell_index(b, s, pre)))
            .collect();
        let all_cells: Vec<usize> = (0..CELLS).collect();
        self.pooled_cv(&parent_cells)
            .or_else(|| self.pooled_cv(&group_cells))
            .or_else(|| self.pooled_cv(&all_cells))
    }
}

/// (z, credibility-weighted value) per cell of the four quantities.
pub(super) struct Blended {
    pub(super) freq: Vec<(f64, f64)>,
    pub(super) sev: Vec<(f64, f64)>,
    pub(super) need: Vec<(f64, f64)>,
    pub(super) cost: Vec<(f64, f64)>,
}

pub(super) fn estimate(
    kind: Kind,
    count: u64,
    weight: f64,
    (s, s2): (f64, f64),
    (z, value): (f64, f64),
) -> Estimate {
    let (observed, se) = observed(kind, count, weight, s, s2);
    Estimate {
        observed,
        se,
        count,
        weight,
        z,
        value,
    }
}

/// The report of cell `c`: its four estimates and its cost cv.
pub(super) fn cell_report(
    trended: &Trended,
    blended: &Blended,
    c: usize,
    total_exposure: f64,
) -> Result<CellReport, StudyError> {
    let (band, sex, pre) = cell_parts(c);
    let exposure = trended.exposure[c];
    let (n_adm, s_oop, s2_oop) = trended.oop(c);
    let (n_drug, s_drug, s2_drug) =
        trended.pooled(c, |cy| (cy.drug_users, cy.drug_fen, cy.drug_fen_sq));
    let hospitalization_rate = estimate(Kind::Rate, n_adm, exposure, (0.0, 0.0), blended.freq[c]);
    let oop_cost_per_admission = estimate(
        Kind::Mean,
        n_adm,
        n_adm as f64,
        (s_oop, s2_oop),
        blended.sev[c],
    );
    let drug_need_rate = estimate(Kind::Rate, n_drug, exposure, (0.0, 0.0), blended.need[c]);
    let drug_cost_per_user = estimate(
        Kind::Mean,
        n_drug,
        n_drug as f64,
        (s_drug, s2_drug),
        blended.cost[c],
    );
    let cv_observed = sample_cv(n_adm, s_oop, s2_oop);
    let z = oop_cost_per_admission.z;
    let cv_cost = match (cv_observed, trended.fallback_cv(band, pre)) {
        (Some(own), Some(parent)) => z * own + (1.0 - z) * parent,
        (Some(own), None) => own,
        (None, Some(parent)) => parent,
        (None, None) => {
            return Err(StudyError::Data(
                "fewer than two admissions in the whole study: the cost spread cannot be \
                 estimated"
                    .into(),
            ));
        }
    };
    Ok(CellReport {
        age_band: AGE_BANDS[band].to_string(),
        sex: SEXES[sex].to_string(),
        condition_group: CONDITION_GROUPS[usize::from(pre)].to_string(),
        exposure_person_years: exposure,
        population_share: exposure / total_exposure,
        hospitalization_rate,
        oop_cost_per_admission,
        cv_cost_observed: cv_observed,
        cv_cost,
        drug_need_rate,
        drug_cost_per_user,
    })
}
