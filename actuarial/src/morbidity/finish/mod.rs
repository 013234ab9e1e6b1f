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

use super::study::{BadRows, PartialStudy};
use super::{CELLS, StudyError};
use crate::credibility::Structure;

mod cells;
mod credibility;

use cells::{Blended, Trended, cell_report};
use credibility::credibility_for;

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
