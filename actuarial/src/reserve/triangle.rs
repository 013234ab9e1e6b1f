//! The claims development triangle and its long-form CSV.
//!
//! One row per cell: `origin` (the period the claims belong to, e.g. an accident year or a
//! service month), `development` (1 for the origin period itself, 2 for the next, ...) and the
//! amount, either `cumulative` (paid to date at the end of that development period) or
//! `incremental` (paid during it); the header says which. Rows may come in any order. Every
//! origin must have the developments 1, 2, ... up to its latest with no gap, each once.

use std::collections::BTreeMap;

/// Triangles larger than this are refused rather than read into memory.
const MAX_CELLS: usize = 1_000_000;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TriangleError {
    #[error("{input}: {message}")]
    File { input: String, message: String },
    #[error("{input} line {line}: {message}")]
    Row {
        input: String,
        line: u64,
        message: String,
    },
    #[error(
        "{input} line {line}: origin {origin}, development {development} appears twice (first on line {first_line})"
    )]
    Duplicate {
        input: String,
        line: u64,
        first_line: u64,
        origin: String,
        development: u32,
    },
    #[error(
        "{input}: origin {origin} has no development {development} (a hole: it has development {later})"
    )]
    Hole {
        input: String,
        origin: String,
        development: u32,
        later: u32,
    },
    #[error("{input}: origin {origin}, development {development}: cumulative {value} is negative")]
    NegativeCumulative {
        input: String,
        origin: String,
        development: u32,
        value: f64,
    },
}

/// Whether the amounts in the file are paid to date or paid in the period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmountKind {
    Cumulative,
    Incremental,
}

impl AmountKind {
    pub fn column(self) -> &'static str {
        match self {
            AmountKind::Cumulative => "cumulative",
            AmountKind::Incremental => "incremental",
        }
    }
}

/// A validated development triangle: per origin, the cumulative amounts at developments
/// 1..=latest, all finite and non-negative. Origins need not form a perfect triangle (a
/// portfolio may have fewer developments observed for some origins than the calendar allows).
#[derive(Debug, Clone, PartialEq)]
pub struct Triangle {
    origins: Vec<String>,
    cumulative: Vec<Vec<f64>>,
}

impl Triangle {
    /// Builds a triangle from cumulative rows (row `i`, entry `k` is development `k + 1` of
    /// origin `i`). `source` names the data in error messages.
    pub fn from_cumulative(
        source: &str,
        origins: Vec<String>,
        cumulative: Vec<Vec<f64>>,
    ) -> Result<Self, TriangleError> {
        let file_err = |message: String| TriangleError::File {
            input: source.to_string(),
            message,
        };
        if origins.is_empty() {
            return Err(file_err("the triangle has no cells".to_string()));
        }
        if origins.len() != cumulative.len() {
            return Err(file_err(format!(
                "{} origins but {} rows",
                origins.len(),
                cumulative.len()
            )));
        }
        for (origin, row) in origins.iter().zip(&cumulative) {
            if row.is_empty() {
                return Err(TriangleError::Hole {
                    input: source.to_string(),
                    origin: origin.clone(),
                    development: 1,
                    later: 2,
                });
            }
            for (k, &value) in row.iter().enumerate() {
                if !value.is_finite() {
                    return Err(file_err(format!(
                        "origin {origin}, development {}: {value} is not a finite number",
                        k + 1
                    )));
                }
                if value < 0.0 {
                    return Err(TriangleError::NegativeCumulative {
                        input: source.to_string(),
                        origin: origin.clone(),
                        development: development_number(k),
                        value,
                    });
                }
            }
        }
        Ok(Triangle {
            origins,
            cumulative,
        })
    }

    /// Parses the long-form CSV. `source` (usually the file name) names the data in errors.
    pub fn from_csv(source: &str, text: &str) -> Result<(Self, AmountKind), TriangleError> {
        let file_err = |message: String| TriangleError::File {
            input: source.to_string(),
            message,
        };
        let (mut reader, headers) = crate::csv_input::open_with_header(text).map_err(file_err)?;
        let columns = Columns::find(&headers).map_err(file_err)?;
        let cells = read_cells(source, &mut reader, &columns)?;
        let (origins, rows) = cumulative_rows(source, &cells, columns.kind)?;
        Ok((
            Triangle::from_cumulative(source, origins, rows)?,
            columns.kind,
        ))
    }

    pub fn origins(&self) -> &[String] {
        &self.origins
    }

    /// Cumulative amounts of each origin, development 1 first.
    pub fn rows(&self) -> &[Vec<f64>] {
        &self.cumulative
    }

    /// The largest development observed for any origin.
    pub fn developments(&self) -> usize {
        self.cumulative.iter().map(Vec::len).max().unwrap_or(0)
    }

    /// The latest cumulative amount of each origin.
    pub fn latest(&self) -> Vec<f64> {
        self.cumulative
            .iter()
            .map(|row| row.last().copied().unwrap_or(0.0))
            .collect()
    }
}

/// Where the triangle's columns are, and what the amounts are.
struct Columns {
    origin: usize,
    development: usize,
    amount: usize,
    kind: AmountKind,
}

impl Columns {
    fn find(headers: &csv::StringRecord) -> Result<Self, String> {
        let column = |name: &str| headers.iter().position(|h| h == name);
        let origin = column("origin").ok_or_else(|| "missing column `origin`".to_string())?;
        let development =
            column("development").ok_or_else(|| "missing column `development`".to_string())?;
        let (amount, kind) = match (column("cumulative"), column("incremental")) {
            (Some(c), None) => (c, AmountKind::Cumulative),
            (None, Some(c)) => (c, AmountKind::Incremental),
            (Some(_), Some(_)) => {
                return Err(
                    "has both `cumulative` and `incremental` columns: keep the one the amounts are"
                        .to_string(),
                );
            }
            (None, None) => {
                return Err(
                    "missing the amount column: name it `cumulative` or `incremental`".to_string(),
                );
            }
        };
        Ok(Columns {
            origin,
            development,
            amount,
            kind,
        })
    }
}

/// origin -> development -> (amount, line)
type Cells = BTreeMap<String, BTreeMap<u32, (f64, u64)>>;

/// Reads every row into its cell; a cell given twice is an error.
fn read_cells(
    source: &str,
    reader: &mut csv::Reader<&[u8]>,
    columns: &Columns,
) -> Result<Cells, TriangleError> {
    let file_err = |message: String| TriangleError::File {
        input: source.to_string(),
        message,
    };
    let kind = columns.kind;
    let mut cells: Cells = BTreeMap::new();
    let mut count = 0usize;
    for record in reader.records() {
        let record = record.map_err(|e| file_err(e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        let row_err = |message: String| TriangleError::Row {
            input: source.to_string(),
            line,
            message,
        };
        count += 1;
        if count > MAX_CELLS {
            return Err(file_err(format!("more than {MAX_CELLS} cells")));
        }
        let field = |i: usize, name: &str| -> Result<&str, TriangleError> {
            match record.get(i) {
                Some(v) if !v.is_empty() => Ok(v),
                _ => Err(row_err(format!("`{name}` is empty"))),
            }
        };
        let origin = field(columns.origin, "origin")?.to_string();
        let raw_development = field(columns.development, "development")?;
        let development: u32 = raw_development
            .parse()
            .ok()
            .filter(|&d| d >= 1)
            .ok_or_else(|| {
                row_err(format!(
                    "origin {origin}: `development` must be a whole number of periods from 1, got `{raw_development}`"
                ))
            })?;
        let raw_amount = field(columns.amount, kind.column())?;
        let amount: f64 = raw_amount
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| {
                row_err(format!(
                    "origin {origin}, development {development}: `{}` is not a number: `{raw_amount}`",
                    kind.column()
                ))
            })?;
        let by_development = cells.entry(origin.clone()).or_default();
        if let Some(&(_, first_line)) = by_development.get(&development) {
            return Err(TriangleError::Duplicate {
                input: source.to_string(),
                line,
                first_line,
                origin,
                development,
            });
        }
        by_development.insert(development, (amount, line));
    }
    Ok(cells)
}

/// The origins in order and their cumulative rows; a hole in the developments, or a negative
/// cumulative amount, is an error.
fn cumulative_rows(
    source: &str,
    cells: &Cells,
    kind: AmountKind,
) -> Result<(Vec<String>, Vec<Vec<f64>>), TriangleError> {
    let mut origins: Vec<String> = cells.keys().cloned().collect();
    sort_origins(&mut origins);
    let mut rows = Vec::with_capacity(origins.len());
    for origin in &origins {
        let by_development = &cells[origin];
        let mut row = Vec::with_capacity(by_development.len());
        let mut running = 0.0;
        for (expected, (&development, &(amount, line))) in (1u32..).zip(by_development) {
            if development != expected {
                return Err(TriangleError::Hole {
                    input: source.to_string(),
                    origin: origin.clone(),
                    development: expected,
                    later: development,
                });
            }
            let value = match kind {
                AmountKind::Cumulative => amount,
                AmountKind::Incremental => {
                    running += amount;
                    running
                }
            };
            if value < 0.0 {
                return Err(match kind {
                    AmountKind::Cumulative => TriangleError::NegativeCumulative {
                        input: source.to_string(),
                        origin: origin.clone(),
                        development,
                        value,
                    },
                    AmountKind::Incremental => TriangleError::Row {
                        input: source.to_string(),
                        line,
                        message: format!(
                            "origin {origin}, development {development}: the increments to here add up to a negative cumulative {value}"
                        ),
                    },
                });
            }
            row.push(value);
        }
        rows.push(row);
    }
    Ok((origins, rows))
}

/// Development periods are numbered from 1 in files and messages, and indexed from 0 in rows.
pub(crate) fn development_number(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

/// Origins that are all whole numbers (years) sort by value; others (e.g. `2026-07`) by text,
/// which orders ISO dates and months chronologically.
fn sort_origins(origins: &mut [String]) {
    if origins.iter().all(|o| o.parse::<i64>().is_ok()) {
        origins.sort_by_key(|o| o.parse::<i64>().unwrap_or(0));
    } else {
        origins.sort();
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PremiumError {
    #[error("{input}: {message}")]
    File { input: String, message: String },
    #[error("{input} line {line}: {message}")]
    Row {
        input: String,
        line: u64,
        message: String,
    },
}

/// Reads the premium per origin for Bornhuetter-Ferguson: CSV columns `origin` and `premium`.
pub fn parse_premiums(source: &str, text: &str) -> Result<BTreeMap<String, f64>, PremiumError> {
    let file_err = |message: String| PremiumError::File {
        input: source.to_string(),
        message,
    };
    let (mut reader, headers) = crate::csv_input::open_with_header(text).map_err(file_err)?;
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| file_err(format!("missing column `{name}`")))
    };
    let origin_col = column("origin")?;
    let premium_col = column("premium")?;
    let mut premiums = BTreeMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| file_err(e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        let row_err = |message: String| PremiumError::Row {
            input: source.to_string(),
            line,
            message,
        };
        if premiums.len() >= MAX_CELLS {
            return Err(file_err(format!("more than {MAX_CELLS} rows")));
        }
        let origin = record.get(origin_col).unwrap_or("").to_string();
        if origin.is_empty() {
            return Err(row_err("`origin` is empty".to_string()));
        }
        let raw = record.get(premium_col).unwrap_or("");
        let premium: f64 = raw
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v > 0.0)
            .ok_or_else(|| {
                row_err(format!(
                    "origin {origin}: `premium` must be a positive number, got `{raw}`"
                ))
            })?;
        if premiums.insert(origin.clone(), premium).is_some() {
            return Err(row_err(format!("origin {origin} appears twice")));
        }
    }
    Ok(premiums)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cumulative_and_incremental_give_the_same_triangle() {
        let cumulative = "origin,development,cumulative\n2001,1,10\n2001,2,15\n2002,1,12\n";
        let incremental = "development,incremental,origin\n2,5,2001\n1,10,2001\n1,12,2002\n";
        let (a, kind_a) = Triangle::from_csv("a.csv", cumulative).unwrap();
        let (b, kind_b) = Triangle::from_csv("b.csv", incremental).unwrap();
        assert_eq!(kind_a, AmountKind::Cumulative);
        assert_eq!(kind_b, AmountKind::Incremental);
        assert_eq!(a, b);
        assert_eq!(a.rows(), &[vec![10.0, 15.0], vec![12.0]]);
        assert_eq!(a.latest(), vec![15.0, 12.0]);
    }

    #[test]
    fn year_origins_sort_by_value_and_months_by_text() {
        let years = "origin,development,cumulative\n999,1,1\n1000,1,2\n";
        let (t, _) = Triangle::from_csv("t.csv", years).unwrap();
        assert_eq!(t.origins(), &["999".to_string(), "1000".to_string()]);
        let months = "origin,development,cumulative\n2027-01,1,1\n2026-12,1,2\n2026-12,2,3\n";
        let (t, _) = Triangle::from_csv("t.csv", months).unwrap();
        assert_eq!(t.origins(), &["2026-12".to_string(), "2027-01".to_string()]);
    }

    #[test]
    fn a_hole_names_the_missing_cell() {
        let text = "origin,development,cumulative\n2001,1,10\n2001,3,15\n";
        let e = Triangle::from_csv("t.csv", text).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.csv: origin 2001 has no development 2 (a hole: it has development 3)"
        );
        let text = "origin,development,cumulative\n2001,2,10\n";
        let e = Triangle::from_csv("t.csv", text).unwrap_err();
        assert!(
            e.to_string().contains("origin 2001 has no development 1"),
            "{e}"
        );
    }

    #[test]
    fn a_duplicate_names_both_lines() {
        let text = "origin,development,cumulative\n2001,1,10\n2002,1,3\n2001,1,11\n";
        let e = Triangle::from_csv("t.csv", text).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.csv line 4: origin 2001, development 1 appears twice (first on line 2)"
        );
    }

    #[test]
    fn negative_cumulative_is_refused_with_its_cell() {
        let text = "origin,development,cumulative\n2001,1,10\n2001,2,-1\n";
        let e = Triangle::from_csv("t.csv", text).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.csv: origin 2001, development 2: cumulative -1 is negative"
        );
        // Negative increments (recoveries, reversals) are fine while the total stays positive.
        let text = "origin,development,incremental\n2001,1,10\n2001,2,-4\n2001,3,-7\n";
        let e = Triangle::from_csv("t.csv", text).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.csv line 4: origin 2001, development 3: the increments to here add up to a negative cumulative -1"
        );
    }

    #[test]
    fn the_header_must_say_which_amounts() {
        let e = Triangle::from_csv("t.csv", "origin,development,paid\n1,1,1\n").unwrap_err();
        assert!(
            e.to_string().contains("`cumulative` or `incremental`"),
            "{e}"
        );
        let e =
            Triangle::from_csv("t.csv", "origin,development,cumulative,incremental\n").unwrap_err();
        assert!(e.to_string().contains("both"), "{e}");
        let e = Triangle::from_csv("t.csv", "origin,cumulative\n").unwrap_err();
        assert_eq!(e.to_string(), "t.csv: missing column `development`");
    }

    #[test]
    fn bad_numbers_name_the_line_and_field() {
        let e =
            Triangle::from_csv("t.csv", "origin,development,cumulative\n2001,0,1\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.csv line 2: origin 2001: `development` must be a whole number of periods from 1, got `0`"
        );
        let e =
            Triangle::from_csv("t.csv", "origin,development,cumulative\n2001,1,x\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.csv line 2: origin 2001, development 1: `cumulative` is not a number: `x`"
        );
        let e = Triangle::from_csv("t.csv", "origin,development,cumulative\n").unwrap_err();
        assert_eq!(e.to_string(), "t.csv: the triangle has no cells");
    }

    #[test]
    fn premiums_are_positive_and_once_per_origin() {
        let p = parse_premiums("p.csv", "origin,premium\n2001,100\n2002,120.5\n").unwrap();
        assert_eq!(p.get("2002"), Some(&120.5));
        let e = parse_premiums("p.csv", "origin,premium\n2001,0\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "p.csv line 2: origin 2001: `premium` must be a positive number, got `0`"
        );
        let e = parse_premiums("p.csv", "origin,premium\n2001,1\n2001,2\n").unwrap_err();
        assert_eq!(e.to_string(), "p.csv line 3: origin 2001 appears twice");
    }
}
