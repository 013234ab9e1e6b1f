//! Reading persons and encounters into per-cell, per-year integer statistics.
//!
//! The persons table is read into memory (a few dozen bytes a person). The encounters are
//! streamed twice: the first pass checks every row and records, per person, the calendar years
//! with a diagnosis in a pre-existing condition group; the second attributes each admission and
//! targeted-drug dispensing to the cell of its person-year, whose condition group the first pass
//! decided. Batches of rows are checked on all cores; every sum is an integer, so the result
//! does not depend on how the work was split.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use csv::ByteRecord;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::dates::{days_in_year, parse_date, year_of, year_start};
use super::input::{Batch, RowSource};
use super::{CELLS, CodeBook, Partition, StudyError, age_band, cell_index};

/// The partial-statistics format written by `--partition` and read by `merge`.
pub const PARTIAL_FORMAT: &str = "puhui-morbidity-partial/1";
/// Line numbers kept per reason of a bad row.
pub const FIRST_LINES_KEPT: usize = 10;
/// Longest look-back plus study span the per-person year mask holds.
const MAX_HISTORY_YEARS: i32 = 64;
const ROWS_PER_TASK: usize = 4096;

#[derive(Debug, Clone, PartialEq)]
pub struct StudyOptions {
    pub first_year: i32,
    pub last_year: i32,
    /// Years before a person-year in which a pre-existing diagnosis counts.
    pub lookback: u32,
    pub partition: Partition,
    /// Any bad row is an error instead of being counted.
    pub strict: bool,
    /// Names the code book (the product id and version) in the partial statistics, so that
    /// partials built with different products are not merged.
    pub code_book: String,
}

impl StudyOptions {
    pub fn validate(&self) -> Result<(), StudyError> {
        if self.first_year > self.last_year {
            return Err(StudyError::Options(format!(
                "--years: {} is after {}",
                self.first_year, self.last_year
            )));
        }
        if self.last_year - self.first_year < 1 {
            return Err(StudyError::Options(
                "--years: credibility over calendar years needs at least two years".into(),
            ));
        }
        if !(1..=30).contains(&self.lookback) {
            return Err(StudyError::Options(format!(
                "--lookback: {} is not between 1 and 30 years",
                self.lookback
            )));
        }
        if self.history_years() > MAX_HISTORY_YEARS {
            return Err(StudyError::Options(format!(
                "--years and --lookback span more than {MAX_HISTORY_YEARS} years"
            )));
        }
        Ok(())
    }

    pub fn years(&self) -> usize {
        (self.last_year - self.first_year + 1) as usize
    }

    fn history_start(&self) -> i32 {
        self.first_year - self.lookback as i32
    }

    fn history_years(&self) -> i32 {
        self.last_year - self.history_start()
    }

    /// Bit of a year in the pre-existing history mask, if the year matters.
    fn history_bit(&self, year: i32) -> Option<u32> {
        let bit = year - self.history_start();
        (0..self.history_years())
            .contains(&bit)
            .then_some(bit as u32)
    }

    /// Mask of the years whose pre-existing diagnoses make `year` pre-existing.
    fn lookback_mask(&self, year: i32) -> u64 {
        let mut mask = 0;
        for y in (year - self.lookback as i32)..year {
            if let Some(bit) = self.history_bit(y) {
                mask |= 1u64 << bit;
            }
        }
        mask
    }
}

/// Sums for one cell in one calendar year. Money in fen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellYear {
    pub exposure_days: u64,
    pub admissions: u64,
    pub oop_fen: u128,
    pub oop_fen_sq: u128,
    /// Person-years with at least one targeted-drug dispensing.
    pub drug_users: u64,
    pub drug_fen: u128,
    pub drug_fen_sq: u128,
}

impl CellYear {
    fn add(&mut self, o: &CellYear) {
        self.exposure_days += o.exposure_days;
        self.admissions += o.admissions;
        self.oop_fen += o.oop_fen;
        self.oop_fen_sq += o.oop_fen_sq;
        self.drug_users += o.drug_users;
        self.drug_fen += o.drug_fen;
        self.drug_fen_sq += o.drug_fen_sq;
    }
}

/// How many rows were refused for one reason, and the first of their line numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadReason {
    pub count: u64,
    pub first_lines: Vec<u64>,
}

/// Bad rows by reason, per table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadRows {
    pub persons: BTreeMap<String, BadReason>,
    pub encounters: BTreeMap<String, BadReason>,
}

fn note(map: &mut BTreeMap<String, BadReason>, reason: &str, line: u64) {
    let entry = map.entry(reason.to_string()).or_default();
    entry.count += 1;
    entry.first_lines.push(line);
    if entry.first_lines.len() > 4 * FIRST_LINES_KEPT {
        trim(&mut entry.first_lines);
    }
}

fn trim(lines: &mut Vec<u64>) {
    lines.sort_unstable();
    lines.dedup();
    lines.truncate(FIRST_LINES_KEPT);
}

fn merge_reasons(into: &mut BTreeMap<String, BadReason>, from: &BTreeMap<String, BadReason>) {
    for (reason, bad) in from {
        let entry = into.entry(reason.clone()).or_default();
        entry.count += bad.count;
        entry.first_lines.extend_from_slice(&bad.first_lines);
        trim(&mut entry.first_lines);
    }
}

impl BadRows {
    fn merge(&mut self, o: &BadRows) {
        merge_reasons(&mut self.persons, &o.persons);
        merge_reasons(&mut self.encounters, &o.encounters);
    }

    fn tidy(&mut self) {
        for bad in self
            .persons
            .values_mut()
            .chain(self.encounters.values_mut())
        {
            trim(&mut bad.first_lines);
        }
    }

    pub fn total(&self) -> u64 {
        self.persons
            .values()
            .chain(self.encounters.values())
            .map(|b| b.count)
            .sum()
    }
}

/// The study's sufficient statistics over one partition of the persons. Merging the partials
/// of all partitions gives exactly the one-pass statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartialStudy {
    pub format: String,
    pub first_year: i32,
    pub last_year: i32,
    pub lookback: u32,
    pub code_book: String,
    /// The partitions summed in here (1-based indices) out of `partition_count`.
    pub partitions: Vec<u32>,
    pub partition_count: u32,
    pub persons: u64,
    pub encounters_used: u64,
    /// `cells[cell][year - first_year]`.
    pub cells: Vec<Vec<CellYear>>,
    pub bad_rows: BadRows,
}

impl PartialStudy {
    fn empty(options: &StudyOptions) -> Self {
        Self {
            format: PARTIAL_FORMAT.to_string(),
            first_year: options.first_year,
            last_year: options.last_year,
            lookback: options.lookback,
            code_book: options.code_book.clone(),
            partitions: vec![options.partition.index],
            partition_count: options.partition.count,
            persons: 0,
            encounters_used: 0,
            cells: vec![vec![CellYear::default(); options.years()]; CELLS],
            bad_rows: BadRows::default(),
        }
    }

    pub fn years(&self) -> usize {
        (self.last_year - self.first_year + 1) as usize
    }

    /// Whether every partition is in.
    pub fn is_complete(&self) -> bool {
        self.partitions.len() as u32 == self.partition_count
    }

    /// Adds another partition's statistics; both must come from the same study.
    pub fn merge(&mut self, other: &PartialStudy, other_name: &str) -> Result<(), StudyError> {
        let err = |message: String| StudyError::Partial {
            file: other_name.to_string(),
            message,
        };
        if other.format != PARTIAL_FORMAT {
            return Err(err(format!(
                "format `{}`, expected `{PARTIAL_FORMAT}`",
                other.format
            )));
        }
        if (other.first_year, other.last_year, other.lookback)
            != (self.first_year, self.last_year, self.lookback)
        {
            return Err(err(format!(
                "years {}-{} lookback {} differ from {}-{} lookback {}",
                other.first_year,
                other.last_year,
                other.lookback,
                self.first_year,
                self.last_year,
                self.lookback
            )));
        }
        if other.code_book != self.code_book {
            return Err(err(format!(
                "built with product `{}`, the others with `{}`",
                other.code_book, self.code_book
            )));
        }
        if other.partition_count != self.partition_count {
            return Err(err(format!(
                "one of {} partitions, the others of {}",
                other.partition_count, self.partition_count
            )));
        }
        if let Some(p) = other
            .partitions
            .iter()
            .find(|p| self.partitions.contains(p))
        {
            return Err(err(format!("partition {p} is already merged")));
        }
        if other.cells.len() != CELLS || other.cells.iter().any(|c| c.len() != self.years()) {
            return Err(err("the cell table has the wrong shape".into()));
        }
        self.partitions.extend_from_slice(&other.partitions);
        self.partitions.sort_unstable();
        self.persons += other.persons;
        self.encounters_used += other.encounters_used;
        for (mine, theirs) in self.cells.iter_mut().zip(&other.cells) {
            for (a, b) in mine.iter_mut().zip(theirs) {
                a.add(b);
            }
        }
        self.bad_rows.merge(&other.bad_rows);
        Ok(())
    }
}

struct Person {
    birth_year: i32,
    sex: u8,
    from: i64,
    to: i64,
}

struct Persons {
    index: HashMap<Box<[u8]>, u32>,
    people: Vec<Person>,
    /// Per person: bit `y - history_start` set when a pre-existing diagnosis fell in year y.
    history: Vec<AtomicU64>,
}

/// A refused row: the reason (a stable snake_case code), the column and what is wrong.
struct Bad {
    reason: &'static str,
    column: &'static str,
    message: String,
}

fn bad(reason: &'static str, column: &'static str, message: impl Into<String>) -> Bad {
    Bad {
        reason,
        column,
        message: message.into(),
    }
}

fn field(record: &ByteRecord, index: usize) -> &[u8] {
    let raw = record.get(index).unwrap_or(b"");
    raw.trim_ascii()
}

fn text(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

/// Parses a non-negative amount in CNY with at most two decimals into fen.
fn parse_fen(raw: &[u8], column: &'static str) -> Result<u64, Bad> {
    let malformed = || {
        bad(
            "malformed_amount",
            column,
            format!("`{}` is not an amount in CNY", text(raw)),
        )
    };
    if raw.is_empty() {
        return Err(bad("malformed_amount", column, "is empty"));
    }
    if raw[0] == b'-' {
        let rest = &raw[1..];
        if !rest.is_empty() && rest.iter().all(|b| b.is_ascii_digit() || *b == b'.') {
            return Err(bad(
                "negative_amount",
                column,
                format!("`{}` is negative", text(raw)),
            ));
        }
        return Err(malformed());
    }
    let (whole, frac) = match raw.iter().position(|&b| b == b'.') {
        Some(dot) => (&raw[..dot], &raw[dot + 1..]),
        None => (raw, &b""[..]),
    };
    if whole.is_empty() || whole.len() > 12 || frac.len() > 2 {
        return Err(malformed());
    }
    let digits = |s: &[u8]| -> Option<u64> {
        s.iter().try_fold(0u64, |acc, &b| {
            b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
        })
    };
    let w = digits(whole).ok_or_else(malformed)?;
    let mut f = digits(frac).ok_or_else(malformed)?;
    if frac.len() == 1 {
        f *= 10;
    }
    Ok(w * 100 + f)
}

fn read_persons(
    source: &mut RowSource,
    options: &StudyOptions,
    bad_rows: &mut BadRows,
) -> Result<Persons, StudyError> {
    let col = |name: &str| source.column(name);
    let (c_key, c_birth, c_sex, c_type, c_from, c_to) = (
        col("person_key")?,
        col("birth_year")?,
        col("sex")?,
        col("insurance_type")?,
        col("observed_from")?,
        col("observed_to")?,
    );
    let mut persons = Persons {
        index: HashMap::new(),
        people: Vec::new(),
        history: Vec::new(),
    };
    let mut batch = Batch::default();
    let file = source.name().to_string();
    while source.read_batch(&mut batch)? {
        for (line, record) in batch.iter() {
            let key = field(record, c_key);
            if !options.partition.contains(key) {
                continue;
            }
            let parsed = (|| -> Result<Person, Bad> {
                if key.is_empty() {
                    return Err(bad("malformed_person_key", "person_key", "is empty"));
                }
                let raw = field(record, c_birth);
                let birth_year: i32 = std::str::from_utf8(raw)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .filter(|y| (1850..=2200).contains(y))
                    .ok_or_else(|| {
                        bad(
                            "malformed_birth_year",
                            "birth_year",
                            format!("`{}` is not a year", text(raw)),
                        )
                    })?;
                let sex = match field(record, c_sex) {
                    b"M" => 0,
                    b"F" => 1,
                    other => {
                        return Err(bad(
                            "malformed_sex",
                            "sex",
                            format!("`{}` is not `M` or `F`", text(other)),
                        ));
                    }
                };
                match field(record, c_type) {
                    b"urban_employee" | b"urban_rural_resident" => {}
                    other => {
                        return Err(bad(
                            "malformed_insurance_type",
                            "insurance_type",
                            format!(
                                "`{}` is not `urban_employee` or `urban_rural_resident`",
                                text(other)
                            ),
                        ));
                    }
                }
                let date = |c: usize, column: &'static str| {
                    let raw = field(record, c);
                    parse_date(raw).ok_or_else(|| {
                        bad(
                            "malformed_date",
                            column,
                            format!("`{}` is not a date YYYY-MM-DD", text(raw)),
                        )
                    })
                };
                let from = date(c_from, "observed_from")?;
                let to = date(c_to, "observed_to")?;
                if to < from {
                    return Err(bad(
                        "observed_to_before_from",
                        "observed_to",
                        "is before observed_from",
                    ));
                }
                Ok(Person {
                    birth_year,
                    sex,
                    from,
                    to,
                })
            })();
            let outcome = parsed.and_then(|person| {
                if persons.index.contains_key(key) {
                    Err(bad(
                        "duplicate_person",
                        "person_key",
                        "appears on an earlier line",
                    ))
                } else {
                    Ok(person)
                }
            });
            match outcome {
                Ok(person) => {
                    persons
                        .index
                        .insert(key.into(), persons.people.len() as u32);
                    persons.people.push(person);
                }
                Err(b) => {
                    if options.strict {
                        return Err(StudyError::Row {
                            file,
                            line,
                            column: b.column.into(),
                            message: b.message,
                        });
                    }
                    note(&mut bad_rows.persons, b.reason, line);
                }
            }
        }
    }
    persons.history = (0..persons.people.len())
        .map(|_| AtomicU64::new(0))
        .collect();
    Ok(persons)
}

struct EncounterColumns {
    key: usize,
    kind: usize,
    start: usize,
    diagnoses: usize,
    total: usize,
    basic: usize,
    out_of_catalogue: usize,
    atc: Option<usize>,
}

struct Encounter {
    person: u32,
    inpatient: bool,
    date: i64,
    preexisting_diagnosis: bool,
    targeted_drug: bool,
    oop_fen: u64,
}

/// Checks one encounter row. `Ok(None)`: the person belongs to another partition.
fn parse_encounter(
    record: &ByteRecord,
    c: &EncounterColumns,
    persons: &Persons,
    partition: &Partition,
    codes: &dyn CodeBook,
) -> Result<Option<Encounter>, Bad> {
    let key = field(record, c.key);
    if !partition.contains(key) {
        return Ok(None);
    }
    let person = *persons.index.get(key).ok_or_else(|| {
        bad(
            "unknown_person",
            "person_key",
            "is not in the persons table",
        )
    })?;
    let inpatient = match field(record, c.kind) {
        b"inpatient" => true,
        b"pharmacy" => false,
        other => {
            return Err(bad(
                "malformed_kind",
                "kind",
                format!("`{}` is not `inpatient` or `pharmacy`", text(other)),
            ));
        }
    };
    let raw_date = field(record, c.start);
    let date = parse_date(raw_date).ok_or_else(|| {
        bad(
            "malformed_date",
            "start_date",
            format!("`{}` is not a date YYYY-MM-DD", text(raw_date)),
        )
    })?;
    let diagnoses = field(record, c.diagnoses);
    if diagnoses.is_empty() {
        return Err(bad("malformed_code", "diagnoses", "is empty"));
    }
    let mut preexisting_diagnosis = false;
    for (position, code) in diagnoses.split(|&b| b == b';').enumerate() {
        let code = std::str::from_utf8(code.trim_ascii()).unwrap_or("\u{fffd}");
        match codes.preexisting(code) {
            Ok(p) => preexisting_diagnosis |= p,
            Err(_) => {
                return Err(bad(
                    "malformed_code",
                    "diagnoses",
                    format!("code {} is not an ICD-10 code", position + 1),
                ));
            }
        }
    }
    let mut targeted_drug = false;
    if !inpatient {
        let raw = c.atc.map_or(&b""[..], |i| field(record, i));
        if raw.is_empty() {
            return Err(bad("malformed_code", "atc", "is empty on a pharmacy row"));
        }
        let atc = std::str::from_utf8(raw).unwrap_or("\u{fffd}");
        targeted_drug = codes
            .targeted_drug(atc)
            .map_err(|_| bad("malformed_code", "atc", "is not a WHO ATC code"))?;
    }
    let total = parse_fen(field(record, c.total), "total_cost")?;
    let basic = parse_fen(field(record, c.basic), "basic_paid")?;
    parse_fen(field(record, c.out_of_catalogue), "out_of_catalogue")?;
    if basic > total {
        return Err(bad(
            "basic_paid_exceeds_total",
            "basic_paid",
            "is more than total_cost",
        ));
    }
    let p = &persons.people[person as usize];
    if date < p.from || date > p.to {
        return Err(bad(
            "outside_observed_period",
            "start_date",
            "lies outside the person's observed period",
        ));
    }
    Ok(Some(Encounter {
        person,
        inpatient,
        date,
        preexisting_diagnosis,
        targeted_drug,
        oop_fen: total - basic,
    }))
}

#[derive(Default)]
struct Pass2 {
    cells: Vec<Vec<CellYear>>,
    used: u64,
    /// `(person, year index, fen)` of targeted-drug dispensings.
    drugs: Vec<(u32, u8, u64)>,
}

/// Runs the study over one partition of the persons.
pub fn run(
    persons_path: &Path,
    encounters_path: &Path,
    codes: &dyn CodeBook,
    options: &StudyOptions,
) -> Result<PartialStudy, StudyError> {
    options.validate()?;
    let mut out = PartialStudy::empty(options);
    let mut person_source = RowSource::open(persons_path)?;
    let persons = read_persons(&mut person_source, options, &mut out.bad_rows)?;
    out.persons = persons.people.len() as u64;

    let open_encounters = || -> Result<(RowSource, EncounterColumns), StudyError> {
        let source = RowSource::open(encounters_path)?;
        let columns = EncounterColumns {
            key: source.column("person_key")?,
            kind: source.column("kind")?,
            start: source.column("start_date")?,
            diagnoses: source.column("diagnoses")?,
            total: source.column("total_cost")?,
            basic: source.column("basic_paid")?,
            out_of_catalogue: source.column("out_of_catalogue")?,
            atc: source.optional_column("atc"),
        };
        Ok((source, columns))
    };

    // Pass 1: check every row, mark the years with a pre-existing diagnosis.
    let (mut source, columns) = open_encounters()?;
    let file = source.name().to_string();
    let mut batch = Batch::default();
    while source.read_batch(&mut batch)? {
        let rows: Vec<(u64, &ByteRecord)> = batch.iter().collect();
        let parts: Vec<(BadRows, Option<(u64, Bad)>)> = rows
            .par_chunks(ROWS_PER_TASK)
            .map(|chunk| {
                let mut bad_rows = BadRows::default();
                let mut first: Option<(u64, Bad)> = None;
                for &(line, record) in chunk {
                    match parse_encounter(record, &columns, &persons, &options.partition, codes) {
                        Ok(Some(e)) if e.preexisting_diagnosis => {
                            if let Some(bit) = options.history_bit(year_of(e.date)) {
                                persons.history[e.person as usize]
                                    .fetch_or(1 << bit, Ordering::Relaxed);
                            }
                        }
                        Ok(_) => {}
                        Err(b) => {
                            note(&mut bad_rows.encounters, b.reason, line);
                            if first.is_none() {
                                first = Some((line, b));
                            }
                        }
                    }
                }
                (bad_rows, first)
            })
            .collect();
        for (bad_rows, first) in parts {
            if let (true, Some((line, b))) = (options.strict, first) {
                return Err(StudyError::Row {
                    file,
                    line,
                    column: b.column.into(),
                    message: b.message,
                });
            }
            out.bad_rows.merge(&bad_rows);
        }
    }

    // Exposure: each person's days in each study year, in the cell of that person-year.
    let masks: Vec<u64> = (options.first_year..=options.last_year)
        .map(|y| options.lookback_mask(y))
        .collect();
    let cell_of = |person: usize, year: i32| -> Option<usize> {
        let p = &persons.people[person];
        let band = age_band(year - p.birth_year)?;
        let mask = masks[(year - options.first_year) as usize];
        let pre = persons.history[person].load(Ordering::Relaxed) & mask != 0;
        Some(cell_index(band, usize::from(p.sex), pre))
    };
    for (i, p) in persons.people.iter().enumerate() {
        for year in options.first_year..=options.last_year {
            let start = year_start(year);
            let end = start + days_in_year(year) - 1;
            let days = p.to.min(end) - p.from.max(start) + 1;
            if days <= 0 {
                continue;
            }
            if let Some(cell) = cell_of(i, year) {
                out.cells[cell][(year - options.first_year) as usize].exposure_days += days as u64;
            }
        }
    }

    // Pass 2: attribute admissions and targeted-drug costs to the person-year's cell.
    let (mut source, columns) = open_encounters()?;
    let years = options.years();
    let mut drug_years: HashMap<(u32, u8), u64> = HashMap::new();
    while source.read_batch(&mut batch)? {
        let rows: Vec<(u64, &ByteRecord)> = batch.iter().collect();
        let parts: Vec<Pass2> = rows
            .par_chunks(ROWS_PER_TASK)
            .map(|chunk| {
                let mut part = Pass2 {
                    cells: vec![vec![CellYear::default(); years]; CELLS],
                    ..Pass2::default()
                };
                for &(_, record) in chunk {
                    let Ok(Some(e)) =
                        parse_encounter(record, &columns, &persons, &options.partition, codes)
                    else {
                        continue;
                    };
                    let year = year_of(e.date);
                    if year < options.first_year || year > options.last_year {
                        continue;
                    }
                    let y = (year - options.first_year) as usize;
                    if e.inpatient {
                        let Some(cell) = cell_of(e.person as usize, year) else {
                            continue;
                        };
                        let c = &mut part.cells[cell][y];
                        c.admissions += 1;
                        c.oop_fen += u128::from(e.oop_fen);
                        c.oop_fen_sq += u128::from(e.oop_fen) * u128::from(e.oop_fen);
                        part.used += 1;
                    } else if e.targeted_drug {
                        part.drugs.push((e.person, y as u8, e.oop_fen));
                        part.used += 1;
                    }
                }
                part
            })
            .collect();
        for part in parts {
            out.encounters_used += part.used;
            for (mine, theirs) in out.cells.iter_mut().zip(&part.cells) {
                for (a, b) in mine.iter_mut().zip(theirs) {
                    a.add(b);
                }
            }
            for (person, y, fen) in part.drugs {
                *drug_years.entry((person, y)).or_default() += fen;
            }
        }
    }
    for ((person, y), fen) in drug_years {
        let year = options.first_year + i32::from(y);
        if let Some(cell) = cell_of(person as usize, year) {
            let c = &mut out.cells[cell][usize::from(y)];
            c.drug_users += 1;
            c.drug_fen += u128::from(fen);
            c.drug_fen_sq += u128::from(fen) * u128::from(fen);
        }
    }
    out.bad_rows.tidy();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_read_exactly_in_fen() {
        assert_eq!(parse_fen(b"12.34", "x").ok(), Some(1234));
        assert_eq!(parse_fen(b"12.3", "x").ok(), Some(1230));
        assert_eq!(parse_fen(b"12", "x").ok(), Some(1200));
        assert_eq!(parse_fen(b"0.05", "x").ok(), Some(5));
        assert_eq!(
            parse_fen(b"-1.00", "x").unwrap_err().reason,
            "negative_amount"
        );
        assert_eq!(
            parse_fen(b"1.234", "x").unwrap_err().reason,
            "malformed_amount"
        );
        assert_eq!(
            parse_fen(b"1e5", "x").unwrap_err().reason,
            "malformed_amount"
        );
        assert_eq!(parse_fen(b"", "x").unwrap_err().reason, "malformed_amount");
        assert_eq!(
            parse_fen(b".5", "x").unwrap_err().reason,
            "malformed_amount"
        );
    }

    #[test]
    fn lookback_mask_covers_the_years_before() {
        let o = StudyOptions {
            first_year: 2019,
            last_year: 2023,
            lookback: 5,
            partition: Partition::WHOLE,
            strict: false,
            code_book: "t".into(),
        };
        // History starts in 2014: bit 0. 2019 looks at 2014..=2018.
        assert_eq!(o.lookback_mask(2019), 0b11111);
        assert_eq!(o.lookback_mask(2020), 0b111110);
        assert_eq!(o.history_bit(2013), None);
        assert_eq!(o.history_bit(2023), None);
        assert_eq!(o.history_bit(2022), Some(8));
    }
}
