//! From the study's statistics to estimates with standard errors, credibility-weighted values
//! and the morbidity table in the shipped format.
//!
//! Four quantities are estimated per cell: the admission rate (admissions per person-year), the
//! mean out-of-pocket cost per admission after basic insurance, the targeted-drug need rate
//! (person-years with a formulary dispensing per person-year) and the mean annual drug cost of
//! those person-years. Each is blended by Bühlmann-Straub credibility over the calendar years
//! (the periods), in two levels: the parent (age band and condition group, both sexes) towards
//! the condition group's collective mean, then the cell towards its parent's estimate; the
//! structural parameters of each level are estimated from the data and shared by its
//! collectives (see [`crate::credibility`]).
//!
//! Standard errors: rates as Poisson counts over the exposure (`sqrt(count) / exposure`), means
//! as the sample standard deviation over the square root of the count.

use serde::Serialize;

use super::study::{BadRows, CellYear, PartialStudy};
use super::{AGE_BANDS, CELLS, CONDITION_GROUPS, SEXES, StudyError, cell_index, cell_parts};
use crate::credibility::{GroupSummary, Structure, blend, estimate_structure};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FinishOptions {
    /// Yearly cost trend: costs of year y are multiplied by `(1 + trend)^(pricing_year - y)`.
    pub trend: f64,
    pub pricing_year: i32,
}

/// One estimated quantity of one cell.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    /// From the cell's own data; `null` without data.
    pub observed: Option<f64>,
    pub se: Option<f64>,
    /// Events behind it: admissions, or drug-using person-years.
    pub count: u64,
    /// The credibility weight: person-years for rates, the count for means.
    pub weight: f64,
    pub z: f64,
    /// The credibility-weighted value, written to the table.
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CellReport {
    pub age_band: String,
    pub sex: String,
    pub condition_group: String,
    pub exposure_person_years: f64,
    pub population_share: f64,
    pub hospitalization_rate: Estimate,
    pub oop_cost_per_admission: Estimate,
    pub cv_cost_observed: Option<f64>,
    pub cv_cost: f64,
    pub drug_need_rate: Estimate,
    pub drug_cost_per_user: Estimate,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LevelStructure {
    pub within_variance: f64,
    pub between_variance: f64,
    /// `null` when the between variance is 0 (every Z is 0).
    pub k: Option<f64>,
}

impl From<Structure> for LevelStructure {
    fn from(s: Structure) -> Self {
        Self {
            within_variance: s.within_variance,
            between_variance: s.between_variance,
            k: s.k(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParentReport {
    pub age_band: String,
    pub condition_group: String,
    pub weight: f64,
    pub mean: Option<f64>,
    pub z: f64,
    pub estimate: f64,
}

/// The credibility model of one quantity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuantityCredibility {
    /// Cells (sexes) within a parent.
    pub cell_level: LevelStructure,
    /// Parents (age bands) within a condition group.
    pub parent_level: LevelStructure,
    /// The collective mean of each condition group (`standard`, `preexisting`).
    pub collective: Vec<(String, f64)>,
    pub parents: Vec<ParentReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CredibilityModels {
    pub hospitalization_rate: QuantityCredibility,
    pub oop_cost_per_admission: QuantityCredibility,
    pub drug_need_rate: QuantityCredibility,
    pub drug_cost_per_user: QuantityCredibility,
}

/// The `--json` report of the study.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StudyReport {
    pub first_year: i32,
    pub last_year: i32,
    pub lookback: u32,
    pub trend: f64,
    pub pricing_year: i32,
    pub code_book: String,
    pub partitions: u32,
    pub persons: u64,
    pub encounters_used: u64,
    pub exposure_person_years: f64,
    pub bad_rows: BadRows,
    pub credibility: CredibilityModels,
    pub cells: Vec<CellReport>,
}

/// What one quantity needs per cell-year: the count of events, the sum and sum of squares of
/// the value per event (for means; trended, in CNY), and the weight.
#[derive(Clone, Copy)]
enum Kind {
    Rate,
    Mean,
}

struct QuantityInput {
    /// `[cell][year] -> (value, weight)`.
    pairs: Vec<Vec<(f64, f64)>>,
}

fn person_years(c: &CellYear, year: i32) -> f64 {
    c.exposure_days as f64 / super::dates::days_in_year(year) as f64
}

fn credibility_for(
    input: &QuantityInput,
) -> Result<(QuantityCredibility, Vec<(f64, f64)>), StudyError> {
    let cells: Vec<GroupSummary> = input
        .pairs
        .iter()
        .map(|p| GroupSummary::from_pairs(p.iter().copied()))
        .collect();
    let years = input.pairs[0].len();
    // Parents: the two sexes pooled, year by year.
    let parent_of = |band: usize, pre: bool| -> GroupSummary {
        let pairs: Vec<(f64, f64)> = (0..years)
            .map(|y| {
                let (mut w, mut wv) = (0.0, 0.0);
                for sex in 0..SEXES.len() {
                    let (v, wt) = input.pairs[cell_index(band, sex, pre)][y];
                    w += wt;
                    wv += wt * v;
                }
                (if w > 0.0 { wv / w } else { 0.0 }, w)
            })
            .collect();
        GroupSummary::from_pairs(pairs.iter().copied())
    };
    let zero = Structure {
        within_variance: 0.0,
        between_variance: 0.0,
    };
    let mut parents: Vec<Vec<GroupSummary>> = Vec::new();
    for pre in [false, true] {
        parents.push((0..AGE_BANDS.len()).map(|b| parent_of(b, pre)).collect());
    }
    let parent_structure = estimate_structure(&parents).unwrap_or(zero);
    let mut collective = Vec::new();
    let mut parent_reports = Vec::new();
    let mut parent_estimate = vec![[0.0; 2]; AGE_BANDS.len()];
    for (ci, group) in parents.iter().enumerate() {
        let (mean, blended) = blend(group, &parent_structure, None);
        collective.push((CONDITION_GROUPS[ci].to_string(), mean));
        for (band, (g, b)) in group.iter().zip(&blended).enumerate() {
            parent_estimate[band][ci] = b.estimate;
            parent_reports.push(ParentReport {
                age_band: AGE_BANDS[band].to_string(),
                condition_group: CONDITION_GROUPS[ci].to_string(),
                weight: g.weight,
                mean: g.has_data().then_some(g.mean),
                z: b.z,
                estimate: b.estimate,
            });
        }
    }
    // Cells within parents share one structure.
    let cell_collectives: Vec<Vec<GroupSummary>> = (0..AGE_BANDS.len())
        .flat_map(|band| {
            let cells = &cells;
            [false, true].map(move |pre| {
                (0..SEXES.len())
                    .map(|sex| cells[cell_index(band, sex, pre)])
                    .collect()
            })
        })
        .collect();
    let cell_structure = estimate_structure(&cell_collectives).unwrap_or(zero);
    let mut out = vec![(0.0, 0.0); CELLS];
    for band in 0..AGE_BANDS.len() {
        for (ci, pre) in [false, true].into_iter().enumerate() {
            let group: Vec<GroupSummary> = (0..SEXES.len())
                .map(|sex| cells[cell_index(band, sex, pre)])
                .collect();
            let (_, blended) = blend(&group, &cell_structure, Some(parent_estimate[band][ci]));
            for (sex, b) in blended.iter().enumerate() {
                out[cell_index(band, sex, pre)] = (b.z, b.estimate);
            }
        }
    }
    Ok((
        QuantityCredibility {
            cell_level: cell_structure.into(),
            parent_level: parent_structure.into(),
            collective,
            parents: parent_reports,
        },
        out,
    ))
}

/// Observed value and standard error from the pooled sums of a cell (all years).
fn observed(
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

fn sample_cv(count: u64, sum: f64, sum_sq: f64) -> Option<f64> {
    if count < 2 || sum <= 0.0 {
        return None;
    }
    let n = count as f64;
    let mean = sum / n;
    let var = ((sum_sq - n * mean * mean) / (n - 1.0)).max(0.0);
    Some(var.sqrt() / mean)
}

/// Turns complete statistics into the report (and so the table).
pub fn finish(study: &PartialStudy, options: &FinishOptions) -> Result<StudyReport, StudyError> {
    if !study.is_complete() {
        let missing: Vec<String> = (1..=study.partition_count)
            .filter(|p| !study.partitions.contains(p))
            .map(|p| p.to_string())
            .collect();
        return Err(StudyError::Data(format!(
            "partitions {} of {} are missing",
            missing.join(", "),
            study.partition_count
        )));
    }
    if !options.trend.is_finite() || options.trend <= -1.0 {
        return Err(StudyError::Options(format!(
            "--trend: {} must be a yearly rate above -1",
            options.trend
        )));
    }
    let years: Vec<i32> = (study.first_year..=study.last_year).collect();
    let factor = |year: i32| (1.0 + options.trend).powi(options.pricing_year - year);
    let exposure: Vec<f64> = (0..CELLS)
        .map(|c| {
            years
                .iter()
                .zip(&study.cells[c])
                .map(|(&y, cy)| person_years(cy, y))
                .sum()
        })
        .collect();
    let total_exposure: f64 = exposure.iter().sum();
    if total_exposure <= 0.0 {
        return Err(StudyError::Data(format!(
            "no person-years of exposure in {}-{}",
            study.first_year, study.last_year
        )));
    }

    // (count, sum, sum of squares) per cell-year of a quantity, trended, in CNY.
    let rate_pairs = |count: fn(&CellYear) -> u64| QuantityInput {
        pairs: (0..CELLS)
            .map(|c| {
                years
                    .iter()
                    .zip(&study.cells[c])
                    .map(|(&y, cy)| {
                        let w = person_years(cy, y);
                        (if w > 0.0 { count(cy) as f64 / w } else { 0.0 }, w)
                    })
                    .collect()
            })
            .collect(),
    };
    let mean_pairs = |sum: fn(&CellYear) -> (u64, u128)| QuantityInput {
        pairs: (0..CELLS)
            .map(|c| {
                years
                    .iter()
                    .zip(&study.cells[c])
                    .map(|(&y, cy)| {
                        let (n, fen) = sum(cy);
                        let v = if n > 0 {
                            fen as f64 / 100.0 * factor(y) / n as f64
                        } else {
                            0.0
                        };
                        (v, n as f64)
                    })
                    .collect()
            })
            .collect(),
    };
    let pooled = |c: usize, sum: fn(&CellYear) -> (u64, u128, u128)| -> (u64, f64, f64) {
        let (mut n, mut s, mut s2) = (0u64, 0.0, 0.0);
        for (&y, cy) in years.iter().zip(&study.cells[c]) {
            let (count, fen, fen_sq) = sum(cy);
            let f = factor(y);
            n += count;
            s += fen as f64 / 100.0 * f;
            s2 += fen_sq as f64 / 10_000.0 * f * f;
        }
        (n, s, s2)
    };

    let (freq_model, freq) = credibility_for(&rate_pairs(|c| c.admissions))?;
    let (sev_model, sev) = credibility_for(&mean_pairs(|c| (c.admissions, c.oop_fen)))?;
    let (need_model, need) = credibility_for(&rate_pairs(|c| c.drug_users))?;
    let (cost_model, cost) = credibility_for(&mean_pairs(|c| (c.drug_users, c.drug_fen)))?;

    // The cv of a thin cell leans on its parent's (both sexes), then on its condition group's.
    let oop = |c: usize| pooled(c, |cy| (cy.admissions, cy.oop_fen, cy.oop_fen_sq));
    let pooled_cv = |cells: &[usize]| {
        let (n, s, s2) = cells
            .iter()
            .map(|&c| oop(c))
            .fold((0, 0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2));
        sample_cv(n, s, s2)
    };

    let mut cells = Vec::with_capacity(CELLS);
    for c in 0..CELLS {
        let (band, sex, pre) = cell_parts(c);
        let (n_adm, s_oop, s2_oop) = oop(c);
        let (n_drug, s_drug, s2_drug) =
            pooled(c, |cy| (cy.drug_users, cy.drug_fen, cy.drug_fen_sq));
        let estimate = |kind, count: u64, weight: f64, s, s2, (z, value): (f64, f64)| {
            let (obs, se) = observed(kind, count, weight, s, s2);
            Estimate {
                observed: obs,
                se,
                count,
                weight,
                z,
                value,
            }
        };
        let hospitalization_rate = estimate(Kind::Rate, n_adm, exposure[c], 0.0, 0.0, freq[c]);
        let oop_cost_per_admission =
            estimate(Kind::Mean, n_adm, n_adm as f64, s_oop, s2_oop, sev[c]);
        let drug_need_rate = estimate(Kind::Rate, n_drug, exposure[c], 0.0, 0.0, need[c]);
        let drug_cost_per_user =
            estimate(Kind::Mean, n_drug, n_drug as f64, s_drug, s2_drug, cost[c]);
        let cv_observed = sample_cv(n_adm, s_oop, s2_oop);
        let parent_cells: Vec<usize> = (0..SEXES.len()).map(|s| cell_index(band, s, pre)).collect();
        let group_cells: Vec<usize> = (0..AGE_BANDS.len())
            .flat_map(|b| (0..SEXES.len()).map(move |s| cell_index(b, s, pre)))
            .collect();
        let all_cells: Vec<usize> = (0..CELLS).collect();
        let fallback_cv = pooled_cv(&parent_cells)
            .or_else(|| pooled_cv(&group_cells))
            .or_else(|| pooled_cv(&all_cells));
        let z = oop_cost_per_admission.z;
        let cv_cost = match (cv_observed, fallback_cv) {
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
        cells.push(CellReport {
            age_band: AGE_BANDS[band].to_string(),
            sex: SEXES[sex].to_string(),
            condition_group: CONDITION_GROUPS[usize::from(pre)].to_string(),
            exposure_person_years: exposure[c],
            population_share: exposure[c] / total_exposure,
            hospitalization_rate,
            oop_cost_per_admission,
            cv_cost_observed: cv_observed,
            cv_cost,
            drug_need_rate,
            drug_cost_per_user,
        });
    }
    for cell in &cells {
        let id = format!("{}/{}/{}", cell.age_band, cell.sex, cell.condition_group);
        for (what, v) in [
            (
                "mean out-of-pocket cost per admission",
                cell.oop_cost_per_admission.value,
            ),
            ("mean annual drug cost", cell.drug_cost_per_user.value),
            ("cost cv", cell.cv_cost),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(StudyError::Data(format!(
                    "cell {id}: no data for the {what}, in the cell or in its condition group"
                )));
            }
        }
    }
    Ok(StudyReport {
        first_year: study.first_year,
        last_year: study.last_year,
        lookback: study.lookback,
        trend: options.trend,
        pricing_year: options.pricing_year,
        code_book: study.code_book.clone(),
        partitions: study.partition_count,
        persons: study.persons,
        encounters_used: study.encounters_used,
        exposure_person_years: total_exposure,
        bad_rows: study.bad_rows.clone(),
        credibility: CredibilityModels {
            hospitalization_rate: freq_model,
            oop_cost_per_admission: sev_model,
            drug_need_rate: need_model,
            drug_cost_per_user: cost_model,
        },
        cells,
    })
}

/// The morbidity table in the shipped format (`scenarios/morbidity_default.csv`).
pub fn table_csv(report: &StudyReport) -> String {
    let mut out = String::from(
        "age_band,sex,condition_group,population_share,annual_hospitalization_rate,\
         mean_oop_cost_per_admission_cny,cv_cost,targeted_drug_need_rate,\
         mean_annual_drug_cost_cny\n",
    );
    for c in &report.cells {
        out.push_str(&format!(
            "{},{},{},{:.8},{:.6},{:.2},{:.4},{:.8},{:.2}\n",
            c.age_band,
            c.sex,
            c.condition_group,
            c.population_share,
            c.hospitalization_rate.value,
            c.oop_cost_per_admission.value,
            c.cv_cost,
            c.drug_need_rate.value.min(1.0),
            c.drug_cost_per_user.value,
        ));
    }
    out
}
