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

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use parquet::data_type::ByteArray;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Poisson};
use rayon::prelude::*;
use serde::Serialize;

use super::dates::{days_in_year, format_date, year_start};
use super::input_parquet::{ColumnData, ParquetWriter};
use super::{CELLS, CodeBook, MalformedCode, age_band, cell_index};
use crate::table::{
    BuiltinTables, DEFAULT_TABLE_NAME, MorbidityRow, TableResolver, parse_morbidity,
};

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

fn fen_text(fen: u64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

fn lognormal(mean: f64, cv: f64) -> LogNormal<f64> {
    let sigma2 = (1.0 + cv * cv).ln();
    // The parameters are finite and sigma > 0 for the positive means and cvs of the table.
    LogNormal::new(mean.ln() - sigma2 / 2.0, sigma2.sqrt())
        .unwrap_or_else(|_| LogNormal::new(0.0, 1.0).expect("standard lognormal"))
}

fn poisson(rng: &mut ChaCha8Rng, mean: f64) -> u64 {
    if mean <= 0.0 {
        return 0;
    }
    Poisson::new(mean).map_or(0, |p| p.sample(rng) as u64)
}

fn simulate_person(
    index: u64,
    options: &SynthOptions,
    table: &[MorbidityRow],
    band_weights: &[f64; 7],
    out: &mut Chunk,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    rng.set_stream(index);
    let person = out.persons.len();
    let key = format!(
        "{:016x}",
        index.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ options.seed
    );
    let sex = usize::from(rng.random::<f64>() >= 0.51);
    let start = year_start(options.first_year);
    let end = year_start(options.last_year) + days_in_year(options.last_year) - 1;
    let from = if rng.random::<f64>() < LATE_ENTRY {
        rng.random_range(start..=end)
    } else {
        start
    };
    let entry_year = super::dates::year_of(from);
    let total: f64 = band_weights.iter().sum();
    let mut u = rng.random::<f64>() * total;
    let mut band = 6;
    for (b, w) in band_weights.iter().enumerate() {
        if u < *w {
            band = b;
            break;
        }
        u -= w;
    }
    let lower = [0, 18, 40, 55, 65, 75, 85][band];
    let upper = [17, 39, 54, 64, 74, 84, 99][band];
    let age_at_entry = rng.random_range(lower..=upper);
    let birth_year = entry_year - age_at_entry;
    let insurance = if (18..65).contains(&age_at_entry) && rng.random::<f64>() < 0.6 {
        "urban_employee"
    } else {
        "urban_rural_resident"
    };
    // Exit: move away or death, year by year.
    let mut to = end;
    for year in entry_year..=options.last_year {
        let age = year - birth_year;
        let Some(b) = age_band(age) else { continue };
        if rng.random::<f64>() < MOVE_AWAY + DEATH[b] {
            let ys = year_start(year).max(from);
            let ye = year_start(year) + days_in_year(year) - 1;
            to = rng.random_range(ys..=ye);
            break;
        }
    }
    out.persons.push(PersonRow {
        key,
        birth_year,
        sex: ["M", "F"][sex],
        insurance,
        from,
        to,
    });

    let mut history: u64 = 0;
    let first = options.first_year;
    let mut chronic: Option<&'static str> = None;
    for year in entry_year..=super::dates::year_of(to) {
        let ys = year_start(year).max(from);
        let ye = (year_start(year) + days_in_year(year) - 1).min(to);
        if ye < ys {
            continue;
        }
        let Some(b) = age_band(year - birth_year) else {
            continue;
        };
        let mut mask = 0u64;
        for y in (year - LOOKBACK_YEARS as i32)..year {
            if y >= first {
                mask |= 1 << (y - first);
            }
        }
        let pre = history & mask != 0;
        let cell = cell_index(b, sex, pre);
        let row = &table[cell];
        let days = (ye - ys + 1) as f64;
        out.exposure_days[cell] += days;
        let t = days / days_in_year(year) as f64;
        let mark = |history: &mut u64| *history |= 1 << (year - first);

        let cost = lognormal(row.mean_oop_cost_per_admission, row.cv_cost);
        for _ in 0..poisson(&mut rng, row.annual_hospitalization_rate * t) {
            let date = rng.random_range(ys..=ye);
            let oop = (cost.sample(&mut rng) * 100.0).round().max(1.0) as u64;
            let basic_share = rng.random_range(0.45..0.75);
            let total = (oop as f64 / (1.0 - basic_share)).round() as u64;
            let total = total.max(oop);
            let acute = ACUTE_CODES[rng.random_range(0..ACUTE_CODES.len())];
            let diagnoses = match chronic {
                Some(code) if pre => {
                    mark(&mut history);
                    if rng.random::<f64>() < FOLLOW_UP_SHARE {
                        code.to_string()
                    } else {
                        format!("{acute};{code}")
                    }
                }
                _ if rng.random::<f64>() < ONSET_SHARE[b] => {
                    let code = CHRONIC_CODES[rng.random_range(0..CHRONIC_CODES.len())];
                    chronic = Some(code);
                    mark(&mut history);
                    code.to_string()
                }
                _ => acute.to_string(),
            };
            let out_of_catalogue = (oop as f64 * rng.random_range(0.0..0.5)).round() as u64;
            out.encounters.push(EncounterRow {
                person,
                inpatient: true,
                date,
                diagnoses,
                total_fen: total,
                basic_fen: total - oop,
                out_of_catalogue_fen: out_of_catalogue,
                atc: "",
            });
        }
        if rng.random::<f64>() < row.targeted_drug_need_rate * t {
            let (atc, diagnosis) = TARGETED_DRUGS[rng.random_range(0..TARGETED_DRUGS.len())];
            let annual = (lognormal(row.mean_annual_drug_cost, DRUG_COST_CV).sample(&mut rng)
                * 100.0)
                .round()
                .max(100.0) as u64;
            let fills = (1 + poisson(&mut rng, 5.0)).min(12);
            let each = annual / fills;
            for k in 0..fills {
                let fen = if k + 1 == fills {
                    annual - each * (fills - 1)
                } else {
                    each
                };
                out.encounters.push(EncounterRow {
                    person,
                    inpatient: false,
                    date: rng.random_range(ys..=ye),
                    diagnoses: diagnosis.to_string(),
                    total_fen: fen,
                    basic_fen: 0,
                    out_of_catalogue_fen: fen,
                    atc,
                });
            }
            chronic.get_or_insert(diagnosis);
            mark(&mut history);
        }
        let other_cost = lognormal(300.0, 1.0);
        for _ in 0..poisson(&mut rng, OTHER_DISPENSINGS * t) {
            let (atc, diagnosis) = OTHER_DRUGS[rng.random_range(0..OTHER_DRUGS.len())];
            let total = (other_cost.sample(&mut rng) * 100.0).round().max(1.0) as u64;
            let basic = (total as f64 * 0.7).round() as u64;
            out.encounters.push(EncounterRow {
                person,
                inpatient: false,
                date: rng.random_range(ys..=ye),
                diagnoses: diagnosis.to_string(),
                total_fen: total,
                basic_fen: basic,
                out_of_catalogue_fen: 0,
                atc,
            });
        }
    }
}

const PERSONS_PARQUET: &str = "message persons { required binary person_key (UTF8); \
    required int32 birth_year; required binary sex (UTF8); required binary insurance_type (UTF8); \
    required int32 observed_from (DATE); required int32 observed_to (DATE); }";
const ENCOUNTERS_PARQUET: &str = "message encounters { required binary person_key (UTF8); \
    required binary kind (UTF8); required int32 start_date (DATE); \
    required binary diagnoses (UTF8); required double total_cost; required double basic_paid; \
    required double out_of_catalogue; optional binary atc (UTF8); }";

enum Sink {
    Csv {
        persons: Box<dyn Write>,
        encounters: Box<dyn Write>,
    },
    Parquet(Box<ParquetSink>),
}

struct ParquetSink {
    persons: ParquetWriter,
    encounters: ParquetWriter,
    person_columns: Vec<ColumnData>,
    encounter_columns: Vec<ColumnData>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

impl Sink {
    fn create(dir: &Path, format: SynthFormat) -> Result<(Self, PathBuf, PathBuf), String> {
        let ext = format.extension();
        let persons_path = dir.join(format!("persons.{ext}"));
        let encounters_path = dir.join(format!("encounters.{ext}"));
        let sink = match format {
            SynthFormat::Csv | SynthFormat::CsvGz => {
                let open = |path: &Path| -> Result<Box<dyn Write>, String> {
                    let file =
                        BufWriter::with_capacity(1 << 20, File::create(path).map_err(io(path))?);
                    Ok(if format == SynthFormat::CsvGz {
                        Box::new(flate2::write::GzEncoder::new(
                            file,
                            flate2::Compression::fast(),
                        ))
                    } else {
                        Box::new(file)
                    })
                };
                let mut persons = open(&persons_path)?;
                let mut encounters = open(&encounters_path)?;
                persons
                    .write_all(
                        b"person_key,birth_year,sex,insurance_type,observed_from,observed_to\n",
                    )
                    .map_err(io(&persons_path))?;
                encounters
                    .write_all(
                        b"person_key,kind,start_date,diagnoses,total_cost,basic_paid,\
                          out_of_catalogue,atc\n",
                    )
                    .map_err(io(&encounters_path))?;
                Sink::Csv {
                    persons,
                    encounters,
                }
            }
            SynthFormat::Parquet => {
                let text = || ColumnData::Text(Vec::new());
                let int = || ColumnData::Int(Vec::new());
                let double = || ColumnData::Double(Vec::new());
                let named = |path: &Path, e: String| format!("{}: {e}", path.display());
                Sink::Parquet(Box::new(ParquetSink {
                    persons: ParquetWriter::create(&persons_path, PERSONS_PARQUET)
                        .map_err(|e| named(&persons_path, e))?,
                    encounters: ParquetWriter::create(&encounters_path, ENCOUNTERS_PARQUET)
                        .map_err(|e| named(&encounters_path, e))?,
                    person_columns: vec![text(), int(), text(), text(), int(), int()],
                    encounter_columns: vec![
                        text(),
                        text(),
                        int(),
                        text(),
                        double(),
                        double(),
                        double(),
                        ColumnData::OptionalText(Vec::new()),
                    ],
                }))
            }
        };
        Ok((sink, persons_path, encounters_path))
    }

    fn write(&mut self, chunk: &Chunk) -> Result<(), String> {
        match self {
            Sink::Csv {
                persons,
                encounters,
            } => {
                let err = |e: std::io::Error| e.to_string();
                for p in &chunk.persons {
                    writeln!(
                        persons,
                        "{},{},{},{},{},{}",
                        p.key,
                        p.birth_year,
                        p.sex,
                        p.insurance,
                        format_date(p.from),
                        format_date(p.to)
                    )
                    .map_err(err)?;
                }
                for e in &chunk.encounters {
                    writeln!(
                        encounters,
                        "{},{},{},{},{},{},{},{}",
                        chunk.persons[e.person].key,
                        if e.inpatient { "inpatient" } else { "pharmacy" },
                        format_date(e.date),
                        e.diagnoses,
                        fen_text(e.total_fen),
                        fen_text(e.basic_fen),
                        fen_text(e.out_of_catalogue_fen),
                        e.atc
                    )
                    .map_err(err)?;
                }
            }
            Sink::Parquet(sink) => {
                let ParquetSink {
                    persons,
                    encounters,
                    person_columns,
                    encounter_columns,
                } = sink.as_mut();
                for p in &chunk.persons {
                    let values: [Value; 6] = [
                        Value::Text(p.key.as_bytes()),
                        Value::Int(p.birth_year),
                        Value::Text(p.sex.as_bytes()),
                        Value::Text(p.insurance.as_bytes()),
                        Value::Int(p.from as i32),
                        Value::Int(p.to as i32),
                    ];
                    push_row(person_columns, &values);
                }
                persons.write_group(person_columns)?;
                for e in &chunk.encounters {
                    let values: [Value; 8] = [
                        Value::Text(chunk.persons[e.person].key.as_bytes()),
                        Value::Text(if e.inpatient {
                            b"inpatient"
                        } else {
                            b"pharmacy"
                        }),
                        Value::Int(e.date as i32),
                        Value::Text(e.diagnoses.as_bytes()),
                        Value::Double(e.total_fen as f64 / 100.0),
                        Value::Double(e.basic_fen as f64 / 100.0),
                        Value::Double(e.out_of_catalogue_fen as f64 / 100.0),
                        Value::Text(e.atc.as_bytes()),
                    ];
                    push_row(encounter_columns, &values);
                }
                encounters.write_group(encounter_columns)?;
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<(), String> {
        match self {
            Sink::Csv {
                mut persons,
                mut encounters,
            } => {
                persons.flush().map_err(|e| e.to_string())?;
                encounters.flush().map_err(|e| e.to_string())?;
                // Dropping the gzip encoders writes their trailers.
                drop(persons);
                drop(encounters);
                Ok(())
            }
            Sink::Parquet(sink) => {
                sink.persons.finish()?;
                sink.encounters.finish()
            }
        }
    }
}

enum Value<'a> {
    Text(&'a [u8]),
    Int(i32),
    Double(f64),
}

fn push_row(columns: &mut [ColumnData], values: &[Value]) {
    for (column, value) in columns.iter_mut().zip(values) {
        match (column, value) {
            (ColumnData::Text(v) | ColumnData::OptionalText(v), Value::Text(t)) => {
                v.push(ByteArray::from(t.to_vec()));
            }
            (ColumnData::Int(v), Value::Int(i)) => v.push(*i),
            (ColumnData::Double(v), Value::Double(d)) => v.push(*d),
            _ => {}
        }
    }
}

/// Persons simulated per task (and per Parquet row group).
const PERSONS_PER_CHUNK: u64 = 20_000;

/// Writes `persons.*`, `encounters.*`, `truth.csv` (the true table, with the population shares
/// of the simulated exposure) and `truth.json` (the model) into `dir`.
pub fn generate(dir: &Path, options: &SynthOptions) -> Result<SynthSummary, String> {
    if options.persons == 0 {
        return Err("--persons must be at least 1".into());
    }
    if options.first_year > options.last_year || options.last_year - options.first_year >= 60 {
        return Err(format!(
            "--years {}-{}: need a first year not after the last, at most 60 years",
            options.first_year, options.last_year
        ));
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let table = parse_morbidity(
        &BuiltinTables
            .resolve(DEFAULT_TABLE_NAME)
            .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let mut band_weights = [0.0; 7];
    for (cell, row) in table.iter().enumerate() {
        band_weights[cell / 4] += row.population_share;
    }
    let (mut sink, persons_file, encounters_file) = Sink::create(dir, options.format)?;
    let chunks = options.persons.div_ceil(PERSONS_PER_CHUNK);
    let mut exposure = [0.0; CELLS];
    let (mut inpatient, mut pharmacy) = (0u64, 0u64);
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
                    simulate_person(i, options, &table, &band_weights, &mut chunk);
                }
                chunk
            })
            .collect();
        for chunk in &produced {
            sink.write(chunk)?;
            for (e, d) in exposure.iter_mut().zip(chunk.exposure_days) {
                *e += d;
            }
            for e in &chunk.encounters {
                if e.inpatient {
                    inpatient += 1;
                } else {
                    pharmacy += 1;
                }
            }
        }
        next = last;
    }
    sink.finish()?;

    // Person-days to person-years: near enough with the mean year length for the shares.
    let total: f64 = exposure.iter().sum();
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
            exposure[cell] / total,
            row.annual_hospitalization_rate,
            row.mean_oop_cost_per_admission,
            row.cv_cost,
            row.targeted_drug_need_rate,
            row.mean_annual_drug_cost
        ));
    }
    let truth_table = dir.join("truth.csv");
    std::fs::write(&truth_table, truth).map_err(io(&truth_table))?;
    let truth_json = dir.join("truth.json");
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
    let json = serde_json::to_string_pretty(&model).map_err(|e| e.to_string())?;
    std::fs::write(&truth_json, json + "\n").map_err(io(&truth_json))?;
    Ok(SynthSummary {
        persons_file,
        encounters_file,
        truth_table,
        truth_json,
        persons: options.persons,
        inpatient_encounters: inpatient,
        pharmacy_encounters: pharmacy,
        person_years: total / 365.25,
    })
}
