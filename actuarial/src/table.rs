//! The population morbidity table (CSV) and where scenarios may load it from.

use std::path::{Path, PathBuf};

/// The morbidity table shipped in `scenarios/`, available to resolvers that must not touch the
/// file system (the HTTP API).
pub const DEFAULT_TABLE_NAME: &str = "morbidity_default.csv";
pub const DEFAULT_TABLE_CSV: &str = include_str!("../../scenarios/morbidity_default.csv");

/// The demo product file, which the demo's pricing scenario takes its terms from
/// (`[product] file = "../products/xiamen-2026.toml"`), by its file name.
pub const DEMO_PRODUCT_NAME: &str = "xiamen-2026.toml";
pub const DEMO_PRODUCT_TOML: &str = include_str!("../../products/xiamen-2026.toml");

/// Tables larger than this are refused rather than read into memory.
const MAX_TABLE_BYTES: u64 = 8 * 1024 * 1024;
const MAX_TABLE_ROWS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TableError {
    #[error("table `{0}` is not available here")]
    NotAllowed(String),
    #[error("cannot read table `{name}`: {message}")]
    Io { name: String, message: String },
    #[error("table `{name}` line {line}: {message}")]
    Row {
        name: String,
        line: u64,
        message: String,
    },
    #[error("table `{name}`: {message}")]
    Table { name: String, message: String },
}

/// Text of a table, with the name to use in messages.
#[derive(Debug, Clone)]
pub struct ResolvedTable {
    pub name: String,
    pub text: String,
}

/// Decides which tables a scenario may name and produces their text.
pub trait TableResolver {
    fn resolve(&self, table: &str) -> Result<ResolvedTable, TableError>;
}

/// Resolves table paths relative to a directory (the scenario file's), for the command line.
#[derive(Debug, Clone)]
pub struct DirResolver {
    pub base: PathBuf,
}

impl DirResolver {
    pub fn new(base: impl Into<PathBuf>) -> Self {
        Self { base: base.into() }
    }
}

impl TableResolver for DirResolver {
    fn resolve(&self, table: &str) -> Result<ResolvedTable, TableError> {
        let path = self.base.join(Path::new(table));
        let name = path.display().to_string();
        let io = |e: std::io::Error| TableError::Io {
            name: name.clone(),
            message: e.to_string(),
        };
        let meta = std::fs::metadata(&path).map_err(io)?;
        if meta.len() > MAX_TABLE_BYTES {
            return Err(TableError::Io {
                name,
                message: format!("larger than {MAX_TABLE_BYTES} bytes"),
            });
        }
        let text = std::fs::read_to_string(&path).map_err(io)?;
        Ok(ResolvedTable { name, text })
    }
}

/// Resolves only the shipped default table and the demo product file, by their file names; no
/// file system access.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuiltinTables;

impl TableResolver for BuiltinTables {
    fn resolve(&self, table: &str) -> Result<ResolvedTable, TableError> {
        let file_name = Path::new(table).file_name().and_then(|s| s.to_str());
        if file_name == Some(DEFAULT_TABLE_NAME) {
            Ok(ResolvedTable {
                name: DEFAULT_TABLE_NAME.to_string(),
                text: DEFAULT_TABLE_CSV.to_string(),
            })
        } else if file_name == Some(DEMO_PRODUCT_NAME) {
            Ok(ResolvedTable {
                name: DEMO_PRODUCT_NAME.to_string(),
                text: DEMO_PRODUCT_TOML.to_string(),
            })
        } else {
            Err(TableError::NotAllowed(table.to_string()))
        }
    }
}

/// Refuses every table: for scenarios that must list their groups explicitly.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTables;

impl TableResolver for NoTables {
    fn resolve(&self, table: &str) -> Result<ResolvedTable, TableError> {
        Err(TableError::NotAllowed(table.to_string()))
    }
}

/// One row of the morbidity table.
#[derive(Debug, Clone, PartialEq)]
pub struct MorbidityRow {
    pub age_band: String,
    pub sex: String,
    pub preexisting: bool,
    pub population_share: f64,
    pub annual_hospitalization_rate: f64,
    pub mean_oop_cost_per_admission: f64,
    pub cv_cost: f64,
    pub targeted_drug_need_rate: f64,
    pub mean_annual_drug_cost: f64,
}

impl MorbidityRow {
    /// Group id: `age_band/sex/condition_group`.
    pub fn id(&self) -> String {
        format!(
            "{}/{}/{}",
            self.age_band,
            self.sex,
            if self.preexisting {
                "preexisting"
            } else {
                "standard"
            }
        )
    }
}

/// The columns of a morbidity table, in the order the shipped table writes them.
pub const COLUMNS: [&str; 9] = [
    "age_band",
    "sex",
    "condition_group",
    "population_share",
    "annual_hospitalization_rate",
    "mean_oop_cost_per_admission_cny",
    "cv_cost",
    "targeted_drug_need_rate",
    "mean_annual_drug_cost_cny",
];

/// Shares must add up to one within this tolerance (the shipped table is rounded to 6 places).
const SHARE_TOLERANCE: f64 = 1e-3;

/// The 1-based line on which the record starting at byte `offset` of `text` lies. The CSV
/// reader's own line count falls one behind per CRLF line ending, and with CRLF its offset points
/// at the previous line's `\n`, so lines are counted here, skipping line ends at the offset.
fn line_of_byte(text: &str, offset: u64) -> u64 {
    let bytes = text.as_bytes();
    let mut end = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    let mut line = 1 + bytes[..end].iter().filter(|&&b| b == b'\n').count() as u64;
    while let Some(&b) = bytes.get(end).filter(|&&b| b == b'\r' || b == b'\n') {
        line += u64::from(b == b'\n');
        end += 1;
    }
    line
}

/// One record as a row, its values checked; `row_err` names the table and line.
fn parse_row(
    record: &csv::StringRecord,
    index: &[usize; 9],
    row_err: &dyn Fn(String) -> TableError,
) -> Result<MorbidityRow, TableError> {
    let text = |i: usize| -> Result<String, TableError> {
        let v = record.get(index[i]).unwrap_or("").to_string();
        if v.is_empty() {
            Err(row_err(format!("`{}` is empty", COLUMNS[i])))
        } else {
            Ok(v)
        }
    };
    let number = |i: usize, check: fn(f64) -> bool, bound: &str| -> Result<f64, TableError> {
        let raw = text(i)?;
        let v: f64 = raw
            .parse()
            .map_err(|_| row_err(format!("`{}` is not a number: `{raw}`", COLUMNS[i])))?;
        if v.is_finite() && check(v) {
            Ok(v)
        } else {
            Err(row_err(format!(
                "`{}` must be {bound}, got {v}",
                COLUMNS[i]
            )))
        }
    };
    let condition = text(2)?;
    let preexisting = match condition.as_str() {
        "preexisting" => true,
        "standard" => false,
        other => {
            return Err(row_err(format!(
                "`condition_group` must be `standard` or `preexisting`, got `{other}`"
            )));
        }
    };
    Ok(MorbidityRow {
        age_band: text(0)?,
        sex: text(1)?,
        preexisting,
        population_share: number(3, |v| (0.0..=1.0).contains(&v), "between 0 and 1")?,
        annual_hospitalization_rate: number(4, |v| v >= 0.0, ">= 0")?,
        mean_oop_cost_per_admission: number(5, |v| v > 0.0, "> 0")?,
        cv_cost: number(6, |v| v > 0.0, "> 0")?,
        targeted_drug_need_rate: number(7, |v| (0.0..=1.0).contains(&v), "between 0 and 1")?,
        mean_annual_drug_cost: number(8, |v| v > 0.0, "> 0")?,
    })
}

/// Parses and validates a morbidity table. Extra columns are ignored.
pub fn parse_morbidity(table: &ResolvedTable) -> Result<Vec<MorbidityRow>, TableError> {
    let name = table.name.clone();
    let table_err = |message: String| TableError::Table {
        name: name.clone(),
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(table.text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| table_err(format!("cannot read the header: {e}")))?
        .clone();
    let mut index = [0usize; 9];
    for (slot, column) in index.iter_mut().zip(COLUMNS) {
        *slot = headers
            .iter()
            .position(|h| h == column)
            .ok_or_else(|| table_err(format!("missing column `{column}`")))?;
    }
    let mut rows: Vec<MorbidityRow> = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| table_err(e.to_string()))?;
        let line = record
            .position()
            .map_or(0, |p| line_of_byte(&table.text, p.byte()));
        let row_err = |message: String| TableError::Row {
            name: name.clone(),
            line,
            message,
        };
        if rows.len() >= MAX_TABLE_ROWS {
            return Err(table_err(format!("more than {MAX_TABLE_ROWS} rows")));
        }
        let row = parse_row(&record, &index, &row_err)?;
        if row.age_band.contains('/') || row.sex.contains('/') {
            return Err(row_err("`age_band` and `sex` may not contain `/`".into()));
        }
        if rows.iter().any(|r| r.id() == row.id()) {
            return Err(row_err(format!("duplicate group `{}`", row.id())));
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(table_err("no rows".into()));
    }
    let total: f64 = rows.iter().map(|r| r.population_share).sum();
    if (total - 1.0).abs() > SHARE_TOLERANCE {
        return Err(table_err(format!(
            "population_share adds up to {total}, not 1"
        )));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_table_parses() {
        let rows = parse_morbidity(&BuiltinTables.resolve(DEFAULT_TABLE_NAME).unwrap()).unwrap();
        assert_eq!(rows.len(), 28);
        assert_eq!(rows[1].id(), "0-17/M/preexisting");
        // The aggregate admission rate documented with the table (0.155 per member-year).
        let rate: f64 = rows
            .iter()
            .map(|r| r.population_share * r.annual_hospitalization_rate)
            .sum();
        assert!((rate - 0.155).abs() < 0.001, "{rate}");
    }

    #[test]
    fn bad_tables_are_rejected_with_the_line() {
        let t = |text: &str| ResolvedTable {
            name: "t.csv".into(),
            text: text.into(),
        };
        let header = COLUMNS.join(",");
        let missing = parse_morbidity(&t("age_band,sex\n0-17,M\n")).unwrap_err();
        assert!(missing.to_string().contains("missing column"), "{missing}");
        let neg = parse_morbidity(&t(&format!(
            "{header}\n0-17,M,standard,1.0,-0.1,2800,2.0,0.00002,300000\n"
        )))
        .unwrap_err();
        assert!(
            neg.to_string().contains("line 2")
                && neg.to_string().contains("annual_hospitalization_rate"),
            "{neg}"
        );
        let share = parse_morbidity(&t(&format!(
            "{header}\n0-17,M,standard,0.5,0.1,2800,2.0,0.00002,300000\n"
        )))
        .unwrap_err();
        assert!(share.to_string().contains("adds up"), "{share}");
        // A bad value on line 6 is reported as line 6, with LF and with CRLF line endings.
        let good = "0-17,M,standard,0.2,0.1,2800,2.0,0.00002,300000";
        let mut lines = vec![header.clone()];
        for (i, band) in ["0-17", "18-39", "40-64", "65-74"].iter().enumerate() {
            lines.push(good.replacen("0-17", band, 1));
            if i == 3 {
                lines.push("75-84,M,standard,0.2,0.1,2800,-2.0,0.00002,300000".into());
            }
        }
        for ending in ["\n", "\r\n"] {
            let e = parse_morbidity(&t(&(lines.join(ending) + ending))).unwrap_err();
            assert!(
                e.to_string().contains("line 6:") && e.to_string().contains("cv_cost"),
                "{ending:?}: {e}"
            );
        }
        assert!(matches!(
            NoTables.resolve("x.csv"),
            Err(TableError::NotAllowed(_))
        ));
        assert!(BuiltinTables.resolve("../secret.csv").is_err());
    }
}
