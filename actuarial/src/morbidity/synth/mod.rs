//! Synthetic record-level data from a known model, to test the study (there is no real
//! record-level data in the repository).
//!
//! The true morbidity of every cell is the shipped table (`scenarios/morbidity_default.csv`):
//! admission rates, mean and cv of the out-of-pocket cost per admission (lognormal), the
//! targeted-drug need rate and the mean annual drug cost (lognormal, cv [`DRUG_COST_CV`]). A
//! person-year is pre-existing exactly as the study defines it: a diagnosis of a pre-existing
//! condition group in one of the [`LOOKBACK_YEARS`] years before. Such diagnoses arise as the
//! onset of a chronic condition (a share of the standard admissions, rising with age), at
//! follow-up admissions of people with the condition, and with every targeted-drug dispensing
//! (the drugs treat cancers). The population changes: some people enter during the period,
//! people leave (moving away or death) at age-dependent rates.
//!
//! Each person is simulated from its own random stream (`ChaCha8Rng` with the seed and the
//! person's index as the stream), so the output depends only on the seed and the options.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use super::{CELLS, CodeBook, MalformedCode};
use crate::table::{
    BuiltinTables, DEFAULT_TABLE_NAME, MorbidityRow, TableResolver, parse_morbidity,
};

mod person;
mod sink;

use person::simulate_person;
use sink::{Sink, io};

/// The look-back of the model's pre-existing definition (the study's default).
pub const LOOKBACK_YEARS: u32 = 5;
/// Coefficient of variation of the annual targeted-drug cost.
pub const DRUG_COST_CV: f64 = 0.8;
/// Share of a standard person-year's admissions that are the onset of a chronic condition, by
/// age band.
const ONSET_SHARE: [f64; 7] = [0.01, 0.03, 0.08, 0.12, 0.18, 0.22, 0.22];
/// Share of a pre-existing person's admissions for the chronic condition.
const FOLLOW_UP_SHARE: f64 = 0.7;
/// Yearly probability of moving away, and of death by age band.
const MOVE_AWAY: f64 = 0.02;
const DEATH: [f64; 7] = [0.0003, 0.0008, 0.002, 0.006, 0.015, 0.045, 0.13];
/// Share of persons who enter after the first day.
const LATE_ENTRY: f64 = 0.12;
/// Other (not targeted) dispensings per person-year.
const OTHER_DISPENSINGS: f64 = 0.33;

/// Diagnoses in the pre-existing condition groups of the demo products (ICD-10).
pub const CHRONIC_CODES: [&str; 8] = [
    "C34.1", "C50.9", "I25.1", "I63.9", "J44.1", "N18.5", "K74.6", "I50.9",
];
/// Diagnoses outside those groups.
pub const ACUTE_CODES: [&str; 8] = [
    "J18.9", "K35.8", "S72.0", "O80", "A09", "K80.2", "N39.0", "I10",
];
/// Targeted drugs on the demo formulary (WHO ATC) with the cancer each treats.
pub const TARGETED_DRUGS: [(&str, &str); 4] = [
    ("L01EB04", "C34.1"),
    ("L01FD01", "C50.9"),
    ("L01EX08", "C22.0"),
    ("L01EL03", "C83.1"),
];
/// Other drugs (not on the formulary) with their usual diagnosis.
pub const OTHER_DRUGS: [(&str, &str); 4] = [
    ("A10BA02", "E11.9"),
    ("C08CA01", "I10"),
    ("C10AA05", "E78.5"),
    ("R03AK06", "J45.9"),
];

/// The generator's own code book: the codes it writes, read as the demo products read them.
/// Anything else is malformed.
#[derive(Debug, Clone, Copy, Default)]
pub struct SynthCodes;

impl CodeBook for SynthCodes {
    fn preexisting(&self, icd10: &str) -> Result<bool, MalformedCode> {
        if CHRONIC_CODES.contains(&icd10) || TARGETED_DRUGS.iter().any(|(_, d)| *d == icd10) {
            Ok(true)
        } else if ACUTE_CODES.contains(&icd10) || OTHER_DRUGS.iter().any(|(_, d)| *d == icd10) {
            Ok(false)
        } else {
            Err(MalformedCode)
        }
    }

    fn targeted_drug(&self, atc: &str) -> Result<bool, MalformedCode> {
        if TARGETED_DRUGS.iter().any(|(a, _)| *a == atc) {
            Ok(true)
        } else if OTHER_DRUGS.iter().any(|(a, _)| *a == atc) {
            Ok(false)
        } else {
            Err(MalformedCode)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynthFormat {
    Csv,
    CsvGz,
    Parquet,
}

impl SynthFormat {
    pub fn extension(self) -> &'static str {
        match self {
            SynthFormat::Csv => "csv",
            SynthFormat::CsvGz => "csv.gz",
            SynthFormat::Parquet => "parquet",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SynthOptions {
    pub persons: u64,
    pub first_year: i32,
    pub last_year: i32,
    pub seed: u64,
    pub format: SynthFormat,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SynthSummary {
    pub persons_file: PathBuf,
    pub encounters_file: PathBuf,
    pub truth_table: PathBuf,
    pub truth_json: PathBuf,
    pub persons: u64,
    pub inpatient_encounters: u64,
    pub pharmacy_encounters: u64,
    pub person_years: f64,
}

#[derive(Serialize)]
struct Truth<'a> {
    seed: u64,
    persons: u64,
    first_year: i32,
    last_year: i32,
    lookback_years: u32,
    drug_cost_cv: f64,
    onset_share_of_standard_admissions: [f64; 7],
    follow_up_share: f64,
    note: &'a str,
}

struct PersonRow {
    key: String,
    birth_year: i32,
    sex: &'static str,
    insurance: &'static str,
    from: i64,
    to: i64,
}

struct EncounterRow {
    person: usize,
    inpatient: bool,
    date: i64,
    diagnoses: String,
    total_fen: u64,
    basic_fen: u64,
    out_of_catalogue_fen: u64,
    atc: &'static str,
}

struct Chunk {
    persons: Vec<PersonRow>,
    encounters: Vec<EncounterRow>,
    exposure_days: [f64; CELLS],
}

/// Persons simulated per task (and per Parquet row group).
const PERSONS_PER_CHUNK: u64 = 20_000;

/// Writes `persons.*`, `encounters.*`, `truth.csv` (the true table, with the population shares
/// of the simulated exposure) and `truth.json` (the model) into `dir`.
pub fn generate(dir: &Path, options: &SynthOptions) -> Result<SynthSummary, String> {
    check_options(options)?;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let table = parse_morbidity(
        &BuiltinTables
            .resolve(DEFAULT_TABLE_NAME)
            .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let (mut sink, persons_file, encounters_file) = Sink::create(dir, options.format)?;
    let written = simulate_into(&mut sink, options, &table)?;
    sink.finish()?;

    // Person-days to person-years: near enough with the mean year length for the shares.
    let total: f64 = written.exposure_days.iter().sum();
    let truth_table = dir.join("truth.csv");
    std::fs::write(
        &truth_table,
        truth_csv(&table, &written.exposure_days, total),
    )
    .map_err(io(&truth_table))?;
    let truth_json = dir.join("truth.json");
    std::fs::write(&truth_json, truth_json_text(options)? + "\n").map_err(io(&truth_json))?;
    Ok(SynthSummary {
        persons_file,
        encounters_file,
        truth_table,
        truth_json,
        persons: options.persons,
        inpatient_encounters: written.inpatient,
        pharmacy_encounters: written.pharmacy,
        person_years: total / 365.25,
    })
}

fn check_options(options: &SynthOptions) -> Result<(), String> {
    if options.persons == 0 {
        return Err("--persons must be at least 1".into());
    }
    if options.first_year > options.last_year || options.last_year - options.first_year >= 60 {
        return Err(format!(
            "--years {}-{}: need a first year not after the last, at most 60 years",
            options.first_year, options.last_year
        ));
    }
    Ok(())
}

/// What the simulation wrote: the exposure per cell and the encounters by kind.
struct Written {
    exposure_days: [f64; CELLS],
    inpatient: u64,
    pharmacy: u64,
}

/// Simulates every person, chunk by chunk on all cores, and writes the chunks in order.
fn simulate_into(
    sink: &mut Sink,
    options: &SynthOptions,
    table: &[MorbidityRow],
) -> Result<Written, String> {
    let mut band_weights = [0.0; 7];
    for (cell, row) in table.iter().enumerate() {
        band_weights[cell / 4] += row.population_share;
    }
    let chunks = options.persons.div_ceil(PERSONS_PER_CHUNK);
    let mut written = Written {
        exposure_days: [0.0; CELLS],
        inpatient: 0,
        pharmacy: 0,
    };
    // A few chunks at a time, so that memory stays bounded.
    let wave = rayon::current_num_threads() as u64 * 2;
    let mut next = 0;
    while next < chunks {
        let last = (next + wave).min(chunks);
        let produced: Vec<Chunk> = (next..last)
            .into_par_iter()
            .map(|c| {
                let mut chunk = Chunk {
                    persons: Vec::new(),
                    encounters: Vec::new(),
                    exposure_days: [0.0; CELLS],
                };
                let end = ((c + 1) * PERSONS_PER_CHUNK).min(options.persons);
                for i in c * PERSONS_PER_CHUNK..end {
                    simulate_person(i, options, table, &band_weights, &mut chunk);
                }
                chunk
            })
            .collect();
        for chunk in &produced {
            sink.write(chunk)?;
            for (e, d) in written.exposure_days.iter_mut().zip(chunk.exposure_days) {
                *e += d;
            }
            for e in &chunk.encounters {
                if e.inpatient {
                    written.inpatient += 1;
                } else {
                    written.pharmacy += 1;
                }
            }
        }
        next = last;
    }
    Ok(written)
}

/// The true table: the shipped rates with the population shares of the simulated exposure.
fn truth_csv(table: &[MorbidityRow], exposure_days: &[f64; CELLS], total: f64) -> String {
    let mut truth = String::from(
        "age_band,sex,condition_group,population_share,annual_hospitalization_rate,\
         mean_oop_cost_per_admission_cny,cv_cost,targeted_drug_need_rate,\
         mean_annual_drug_cost_cny\n",
    );
    for (cell, row) in table.iter().enumerate() {
        truth.push_str(&format!(
            "{},{},{},{:.8},{},{},{},{},{}\n",
            row.age_band,
            row.sex,
            if row.preexisting {
                "preexisting"
            } else {
                "standard"
            },
            exposure_days[cell] / total,
            row.annual_hospitalization_rate,
            row.mean_oop_cost_per_admission,
            row.cv_cost,
            row.targeted_drug_need_rate,
            row.mean_annual_drug_cost
        ));
    }
    truth
}

/// The model's parameters, as `truth.json` holds them.
fn truth_json_text(options: &SynthOptions) -> Result<String, String> {
    let model = Truth {
        seed: options.seed,
        persons: options.persons,
        first_year: options.first_year,
        last_year: options.last_year,
        lookback_years: LOOKBACK_YEARS,
        drug_cost_cv: DRUG_COST_CV,
        onset_share_of_standard_admissions: ONSET_SHARE,
        follow_up_share: FOLLOW_UP_SHARE,
        note: "truth.csv holds the true rates of every cell (those of the shipped \
               morbidity_default.csv) with the population shares of the simulated exposure over \
               all years; a person-year is pre-existing when a diagnosis in a pre-existing \
               condition group fell in one of the lookback_years years before it",
    };
    serde_json::to_string_pretty(&model).map_err(|e| e.to_string())
}
