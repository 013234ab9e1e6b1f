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
    let parents = parent_level(input);
    let (cell_structure, out) = cell_level(&cells, &parents.estimate);
    Ok((
        QuantityCredibility {
            cell_level: cell_structure.into(),
            parent_level: parents.structure.into(),
            collective: parents.collective,
            parents: parents.reports,
        },
        out,
    ))
}

const NO_STRUCTURE: Structure = Structure {
    within_variance: 0.0,
    between_variance: 0.0,
};

/// The parent level: each age band and condition group (both sexes) blended towards its
/// condition group's collective mean.
struct ParentLevel {
    structure: Structure,
    /// `(condition group, collective mean)`.
    collective: Vec<(String, f64)>,
    reports: Vec<ParentReport>,
    /// `[band][condition group]`.
    estimate: Vec<[f64; 2]>,
}

fn parent_level(input: &QuantityInput) -> ParentLevel {
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
    let mut parents: Vec<Vec<GroupSummary>> = Vec::new();
    for pre in [false, true] {
        parents.push((0..AGE_BANDS.len()).map(|b| parent_of(b, pre)).collect());
    }
    let structure = estimate_structure(&parents).unwrap_or(NO_STRUCTURE);
    let mut collective = Vec::new();
    let mut reports = Vec::new();
    let mut estimate = vec![[0.0; 2]; AGE_BANDS.len()];
    for (ci, group) in parents.iter().enumerate() {
        let (mean, blended) = blend(group, &structure, None);
        collective.push((CONDITION_GROUPS[ci].to_string(), mean));
        for (band, (g, b)) in group.iter().zip(&blended).enumerate() {
            estimate[band][ci] = b.estimate;
            reports.push(ParentReport {
                age_band: AGE_BANDS[band].to_string(),
                condition_group: CONDITION_GROUPS[ci].to_string(),
                weight: g.weight,
                mean: g.has_data().then_some(g.mean),
                z: b.z,
                estimate: b.estimate,
            });
        }
    }
    ParentLevel {
        structure,
        collective,
        reports,
        estimate,
    }
}

/// The cell level: each cell blended towards its parent's estimate; the cells within parents
/// share one structure. Returns it with `(z, estimate)` per cell.
fn cell_level(
    cells: &[GroupSummary],
    parent_estimate: &[[f64; 2]],
) -> (Structure, Vec<(f64, f64)>) {
    let cell_collectives: Vec<Vec<GroupSummary>> = (0..AGE_BANDS.len())
        .flat_map(|band| {
            [false, true].map(move |pre| {
                (0..SEXES.len())
                    .map(|sex| cells[cell_index(band, sex, pre)])
                    .collect()
            })
        })
        .collect();
    let cell_structure = estimate_structure(&cell_collectives).unwrap_or(NO_STRUCTURE);
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
    (cell_structure, out)
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
    check_inputs(study, options)?;
    let trended = Trended::new(study, options);
    let total_exposure: f64 = trended.exposure.iter().sum();
    if total_exposure <= 0.0 {
        return Err(StudyError::Data(format!(
            "no person-years of exposure in {}-{}",
            study.first_year, study.last_year
        )));
    }

    let (freq_model, freq) = credibility_for(&trended.rate_pairs(|c| c.admissions))?;
    let (sev_model, sev) = credibility_for(&trended.mean_pairs(|c| (c.admissions, c.oop_fen)))?;
    let (need_model, need) = credibility_for(&trended.rate_pairs(|c| c.drug_users))?;
    let (cost_model, cost) = credibility_for(&trended.mean_pairs(|c| (c.drug_users, c.drug_fen)))?;
    let blended = Blended {
        freq,
        sev,
        need,
        cost,
    };

    let cells = (0..CELLS)
        .map(|c| cell_report(&trended, &blended, c, total_exposure))
        .collect::<Result<Vec<_>, _>>()?;
    check_cells(&cells)?;
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

/// Refuses a study with partitions missing, and a trend that cannot be compounded.
fn check_inputs(study: &PartialStudy, options: &FinishOptions) -> Result<(), StudyError> {
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
    Ok(())
}

/// The study's cell-years seen from the pricing year: costs trended, exposure per cell.
struct Trended<'a> {
    study: &'a PartialStudy,
    years: Vec<i32>,
    options: &'a FinishOptions,
    exposure: Vec<f64>,
}

impl<'a> Trended<'a> {
    fn new(study: &'a PartialStudy, options: &'a FinishOptions) -> Self {
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
    fn rate_pairs(&self, count: fn(&CellYear) -> u64) -> QuantityInput {
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
    fn mean_pairs(&self, sum: fn(&CellYear) -> (u64, u128)) -> QuantityInput {
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
struct Blended {
    freq: Vec<(f64, f64)>,
    sev: Vec<(f64, f64)>,
    need: Vec<(f64, f64)>,
    cost: Vec<(f64, f64)>,
}

fn estimate(
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
fn cell_report(
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

/// Every value the table carries must be a positive number.
fn check_cells(cells: &[CellReport]) -> Result<(), StudyError> {
    for cell in cells {
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
    Ok(())
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
