//! Streaming row sources: CSV, gzip-compressed CSV (`.csv.gz`) and Parquet (`.parquet`), read
//! in batches of rows so that memory never grows with the number of rows.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use csv::ByteRecord;

use super::StudyError;

/// Rows read at a time: large enough to keep the worker threads busy, small enough to stay a
/// few megabytes.
pub const BATCH_ROWS: usize = 65_536;

/// A batch of rows with the line (CSV, counting the header as line 1) or row number (Parquet,
/// from 1) of each, for error messages.
#[derive(Debug, Default)]
pub struct Batch {
    pub rows: Vec<ByteRecord>,
    pub lines: Vec<u64>,
    pub len: usize,
}

impl Batch {
    pub fn iter(&self) -> impl Iterator<Item = (u64, &ByteRecord)> {
        self.lines[..self.len]
            .iter()
            .copied()
            .zip(&self.rows[..self.len])
    }
}

enum Reader {
    Csv(Box<csv::Reader<Box<dyn Read + Send>>>),
    Parquet(Box<super::input_parquet::ParquetRows>),
}

/// One input table.
pub struct RowSource {
    name: String,
    headers: Vec<String>,
    reader: Reader,
}

impl RowSource {
    /// Opens a file; the format follows the extension (`.parquet`, `.csv.gz` or anything else as
    /// CSV).
    pub fn open(path: &Path) -> Result<Self, StudyError> {
        let name = path.display().to_string();
        let file_err = |message: String| StudyError::File {
            file: name.clone(),
            message,
        };
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".parquet") {
            let rows = super::input_parquet::ParquetRows::open(path).map_err(file_err)?;
            let headers = rows.headers().to_vec();
            return Ok(Self {
                name,
                headers,
                reader: Reader::Parquet(Box::new(rows)),
            });
        }
        let file = File::open(path).map_err(|e| file_err(format!("cannot open: {e}")))?;
        let inner: Box<dyn Read + Send> = if lower.ends_with(".gz") {
            Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
                1 << 20,
                file,
            )))
        } else {
            Box::new(file)
        };
        Self::from_csv_reader(name, inner)
    }

    /// A CSV source over any reader (tests, standard input).
    pub fn from_csv_reader(name: String, inner: Box<dyn Read + Send>) -> Result<Self, StudyError> {
        let mut reader = csv::ReaderBuilder::new()
            .buffer_capacity(1 << 20)
            .from_reader(inner);
        let headers = reader
            .headers()
            .map_err(|e| StudyError::File {
                file: name.clone(),
                message: format!("cannot read the header: {e}"),
            })?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        Ok(Self {
            name,
            headers,
            reader: Reader::Csv(Box::new(reader)),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Index of a required column.
    pub fn column(&self, column: &str) -> Result<usize, StudyError> {
        self.optional_column(column)
            .ok_or_else(|| StudyError::File {
                file: self.name.clone(),
                message: format!("missing column `{column}`"),
            })
    }

    pub fn optional_column(&self, column: &str) -> Option<usize> {
        self.headers.iter().position(|h| h == column)
    }

    /// Refills `batch` with up to [`BATCH_ROWS`] rows; `false` when there were none left.
    pub fn read_batch(&mut self, batch: &mut Batch) -> Result<bool, StudyError> {
        if batch.rows.len() < BATCH_ROWS {
            batch.rows.resize_with(BATCH_ROWS, ByteRecord::new);
            batch.lines.resize(BATCH_ROWS, 0);
        }
        batch.len = 0;
        match &mut self.reader {
            Reader::Csv(reader) => {
                while batch.len < BATCH_ROWS {
                    let record = &mut batch.rows[batch.len];
                    let more = reader
                        .read_byte_record(record)
                        .map_err(|e| StudyError::File {
                            file: self.name.clone(),
                            message: e.to_string(),
                        })?;
                    if !more {
                        break;
                    }
                    batch.lines[batch.len] = record.position().map_or(0, |p| p.line());
                    batch.len += 1;
                }
            }
            Reader::Parquet(rows) => {
                rows.read_batch(batch).map_err(|message| StudyError::File {
                    file: self.name.clone(),
                    message,
                })?;
            }
        }
        Ok(batch.len > 0)
    }
}
