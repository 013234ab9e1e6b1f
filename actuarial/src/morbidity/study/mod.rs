//! Reading persons and encounters into per-cell, per-year integer statistics.
//!
//! The persons table is read into memory (a few dozen bytes a person). The encounters are
//! streamed twice: the first pass checks every row and records, per person, the calendar years
//! with a diagnosis in a pre-existing condition group; the second attributes each admission and
//! targeted-drug dispensing to the cell of its person-year, whose condition group the first pass
//! decided. Batches of rows are checked on all cores; every sum is an integer, so the result
//! does not depend on how the work was split.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{CELLS, Partition, StudyError};

mod passes;
mod rows;

pub use passes::run;
#[cfg(test)]
use rows::parse_fen;

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
