//! The morbidity study: from record-level population medical data (persons and their
//! encounters) to the population morbidity table that pricing reads, with standard errors and
//! Bühlmann-Straub credibility for thin cells.
//!
//! The study is a sum of per-person statistics kept in integers (person-days, admissions, fen,
//! fen squared), so partial studies over disjoint sets of persons ([`Partition`]) merge into
//! exactly the one-pass result, whatever the order or the thread count. [`study::run`] reads the
//! inputs into a [`PartialStudy`]; [`finish::finish`] turns one (or a merge of several) into the
//! table and the report.
//!
//! Which diagnoses put a person-year in the pre-existing group, and which drugs are targeted
//! drugs, is the product's business: the caller passes a [`CodeBook`] (the command line builds
//! it from the product file through the claims engine's own code matching, so the study and the
//! claims engine share one definition).

pub mod dates;
pub mod finish;
pub mod html;
pub mod input;
pub mod input_parquet;
pub mod study;
pub mod synth;

pub use finish::{FinishOptions, StudyReport, finish, table_csv};
pub use html::render_html;
pub use study::{BadRows, PartialStudy, StudyOptions, run};

/// The age bands of the shipped morbidity table: age = calendar year - birth year.
pub const AGE_BANDS: [&str; 7] = ["0-17", "18-39", "40-54", "55-64", "65-74", "75-84", "85+"];
const AGE_BAND_LOWER: [i32; 7] = [0, 18, 40, 55, 65, 75, 85];
pub const SEXES: [&str; 2] = ["M", "F"];
pub const CONDITION_GROUPS: [&str; 2] = ["standard", "preexisting"];
/// Cells in the order of the shipped table: age band, then sex, then condition group.
pub const CELLS: usize = AGE_BANDS.len() * SEXES.len() * CONDITION_GROUPS.len();

/// The band of an age; `None` for a negative age (a year before birth).
pub fn age_band(age: i32) -> Option<usize> {
    if age < 0 {
        return None;
    }
    Some(
        AGE_BAND_LOWER
            .iter()
            .rposition(|&lower| age >= lower)
            .unwrap_or(0),
    )
}

/// Index of a cell: `(band * 2 + sex) * 2 + condition`.
pub fn cell_index(band: usize, sex: usize, preexisting: bool) -> usize {
    (band * SEXES.len() + sex) * CONDITION_GROUPS.len() + usize::from(preexisting)
}

/// `(band, sex, preexisting)` of a cell index.
pub fn cell_parts(cell: usize) -> (usize, usize, bool) {
    let condition = cell % CONDITION_GROUPS.len();
    let rest = cell / CONDITION_GROUPS.len();
    (rest / SEXES.len(), rest % SEXES.len(), condition == 1)
}

/// `age_band/sex/condition_group`, the pricing group id.
pub fn cell_id(cell: usize) -> String {
    let (band, sex, pre) = cell_parts(cell);
    format!(
        "{}/{}/{}",
        AGE_BANDS[band],
        SEXES[sex],
        CONDITION_GROUPS[usize::from(pre)]
    )
}

/// A code the code book cannot read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedCode;

/// The product's reading of clinical codes.
pub trait CodeBook: Sync {
    /// Whether an ICD-10 diagnosis falls in one of the product's pre-existing condition groups.
    fn preexisting(&self, icd10: &str) -> Result<bool, MalformedCode>;
    /// Whether a WHO ATC code is a drug on the product's targeted-drug formulary.
    fn targeted_drug(&self, atc: &str) -> Result<bool, MalformedCode>;
}

/// Persons `index` of `count` (1-based), split by a hash of the person key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Partition {
    pub index: u32,
    pub count: u32,
}

impl Partition {
    pub const WHOLE: Partition = Partition { index: 1, count: 1 };

    /// Parses `i/N` with 1 <= i <= N.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| format!("`{text}` is not of the form i/N"))?;
        let index: u32 = i
            .trim()
            .parse()
            .map_err(|_| format!("`{i}` in `{text}` is not a whole number"))?;
        let count: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("`{n}` in `{text}` is not a whole number"))?;
        if count == 0 || index == 0 || index > count {
            return Err(format!("`{text}`: need 1 <= i <= N"));
        }
        Ok(Self { index, count })
    }

    /// Whether the person with this key belongs to the partition: FNV-1a (64 bit) of the key,
    /// modulo the count. The hash is fixed here so that every run splits the same way.
    pub fn contains(&self, key: &[u8]) -> bool {
        if self.count == 1 {
            return true;
        }
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in key {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        hash % u64::from(self.count) == u64::from(self.index - 1)
    }
}

/// Errors of the study. Messages name the file, the line and the column.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StudyError {
    #[error("{file}: {message}")]
    File { file: String, message: String },
    #[error("{file}: line {line}: `{column}`: {message}")]
    Row {
        file: String,
        line: u64,
        column: String,
        message: String,
    },
    #[error("{0}")]
    Options(String),
    #[error("partial statistics `{file}`: {message}")]
    Partial { file: String, message: String },
    #[error("{0}")]
    Data(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_follow_the_shipped_order() {
        assert_eq!(cell_id(0), "0-17/M/standard");
        assert_eq!(cell_id(1), "0-17/M/preexisting");
        assert_eq!(cell_id(2), "0-17/F/standard");
        assert_eq!(cell_id(CELLS - 1), "85+/F/preexisting");
        for c in 0..CELLS {
            let (b, s, p) = cell_parts(c);
            assert_eq!(cell_index(b, s, p), c);
        }
        assert_eq!(age_band(-1), None);
        assert_eq!(age_band(0), Some(0));
        assert_eq!(age_band(17), Some(0));
        assert_eq!(age_band(18), Some(1));
        assert_eq!(age_band(64), Some(3));
        assert_eq!(age_band(85), Some(6));
        assert_eq!(age_band(120), Some(6));
    }

    #[test]
    fn partitions_split_every_key_exactly_once() {
        assert!(Partition::parse("0/3").is_err());
        assert!(Partition::parse("4/3").is_err());
        assert!(Partition::parse("x").is_err());
        let parts: Vec<Partition> = (1..=3)
            .map(|i| Partition::parse(&format!("{i}/3")).unwrap())
            .collect();
        for k in 0..1000 {
            let key = format!("P{k}");
            let owners = parts.iter().filter(|p| p.contains(key.as_bytes())).count();
            assert_eq!(owners, 1);
        }
    }
}

#[cfg(test)]
mod study_tests;

#[cfg(test)]
mod html_tests;
