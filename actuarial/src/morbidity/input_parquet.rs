//! Parquet tables for the study: a row reader that turns each row into the same text fields as
//! the CSV reader (so that one parser checks both), and a writer for the synthetic data.
//!
//! Columns may be strings or numbers: dates as `DATE` (days since 1970) or `YYYY-MM-DD`
//! strings, amounts as `DOUBLE` (rounded to the fen), `DECIMAL`, integers or strings.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use csv::ByteRecord;
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int32Type};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::record::{Field, reader::RowIter};
use parquet::schema::parser::parse_message_type;

use super::dates::format_date;
use super::input::{BATCH_ROWS, Batch};

pub struct ParquetRows {
    headers: Vec<String>,
    rows: RowIter<'static>,
    next_row: u64,
    scratch: String,
}

impl ParquetRows {
    pub fn open(path: &Path) -> Result<Self, String> {
        let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
        let reader =
            SerializedFileReader::new(file).map_err(|e| format!("not a Parquet file: {e}"))?;
        let headers = reader
            .metadata()
            .file_metadata()
            .schema_descr()
            .columns()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        let rows = RowIter::from_file_into(Box::new(reader));
        Ok(Self {
            headers,
            rows,
            next_row: 1,
            scratch: String::new(),
        })
    }

    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    pub fn read_batch(&mut self, batch: &mut Batch) -> Result<(), String> {
        use std::fmt::Write;
        while batch.len < BATCH_ROWS {
            let Some(row) = self.rows.next() else { break };
            let row = row.map_err(|e| format!("row {}: {e}", self.next_row))?;
            let record: &mut ByteRecord = &mut batch.rows[batch.len];
            record.clear();
            for (_, field) in row.get_column_iter() {
                self.scratch.clear();
                let text: &str = match field {
                    Field::Null => "",
                    Field::Str(s) => s,
                    Field::Bool(b) => {
                        if *b {
                            "true"
                        } else {
                            "false"
                        }
                    }
                    Field::Date(days) => {
                        self.scratch.push_str(&format_date(i64::from(*days)));
                        &self.scratch
                    }
                    Field::Float(v) => {
                        let _ = write!(self.scratch, "{:.2}", f64::from(*v));
                        &self.scratch
                    }
                    Field::Double(v) => {
                        let _ = write!(self.scratch, "{v:.2}");
                        &self.scratch
                    }
                    Field::Decimal(d) => {
                        let _ = write!(self.scratch, "{}", decimal_text(d.data(), d.scale()));
                        &self.scratch
                    }
                    Field::Byte(v) => int(&mut self.scratch, i64::from(*v)),
                    Field::Short(v) => int(&mut self.scratch, i64::from(*v)),
                    Field::Int(v) => int(&mut self.scratch, i64::from(*v)),
                    Field::Long(v) => int(&mut self.scratch, *v),
                    Field::UByte(v) => int(&mut self.scratch, i64::from(*v)),
                    Field::UShort(v) => int(&mut self.scratch, i64::from(*v)),
                    Field::UInt(v) => int(&mut self.scratch, i64::from(*v)),
                    other => {
                        let _ = write!(self.scratch, "{other}");
                        &self.scratch
                    }
                };
                record.push_field(text.as_bytes());
            }
            batch.lines[batch.len] = self.next_row;
            self.next_row += 1;
            batch.len += 1;
        }
        Ok(())
    }
}

fn int(scratch: &mut String, v: i64) -> &str {
    use std::fmt::Write;
    let _ = write!(scratch, "{v}");
    scratch
}

/// A Parquet DECIMAL (big-endian two's complement unscaled value) as decimal text.
fn decimal_text(bytes: &[u8], scale: i32) -> String {
    if bytes.is_empty() || bytes.len() > 16 {
        return String::from("?");
    }
    let negative = bytes[0] & 0x80 != 0;
    let mut value: i128 = if negative { -1 } else { 0 };
    for &b in bytes {
        value = (value << 8) | i128::from(b);
    }
    if scale <= 0 {
        return format!("{value}");
    }
    let divisor = 10i128.pow(scale as u32);
    let sign = if value < 0 { "-" } else { "" };
    let abs = value.unsigned_abs();
    let d = divisor as u128;
    format!(
        "{sign}{}.{:0width$}",
        abs / d,
        abs % d,
        width = scale as usize
    )
}

/// A column of the Parquet tables the generator writes.
pub enum ColumnData {
    Text(Vec<ByteArray>),
    /// Optional text: empty strings are written as nulls.
    OptionalText(Vec<ByteArray>),
    Int(Vec<i32>),
    Double(Vec<f64>),
}

impl ColumnData {
    fn clear(&mut self) {
        match self {
            ColumnData::Text(v) | ColumnData::OptionalText(v) => v.clear(),
            ColumnData::Int(v) => v.clear(),
            ColumnData::Double(v) => v.clear(),
        }
    }
}

/// Writes row groups of buffered columns; the schema is a Parquet message type.
pub struct ParquetWriter {
    writer: SerializedFileWriter<File>,
}

impl ParquetWriter {
    pub fn create(path: &Path, message_type: &str) -> Result<Self, String> {
        let schema = Arc::new(parse_message_type(message_type).map_err(|e| e.to_string())?);
        let props = Arc::new(
            WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .build(),
        );
        let file = File::create(path).map_err(|e| format!("cannot create: {e}"))?;
        let writer = SerializedFileWriter::new(file, schema, props).map_err(|e| e.to_string())?;
        Ok(Self { writer })
    }

    /// Writes the columns (in schema order) as one row group and clears them.
    pub fn write_group(&mut self, columns: &mut [ColumnData]) -> Result<(), String> {
        let err = |e: parquet::errors::ParquetError| e.to_string();
        let mut group = self.writer.next_row_group().map_err(err)?;
        let mut index = 0;
        while let Some(mut column) = group.next_column().map_err(err)? {
            let data = columns
                .get(index)
                .ok_or_else(|| "more columns in the schema than given".to_string())?;
            match data {
                ColumnData::Text(v) => {
                    column
                        .typed::<ByteArrayType>()
                        .write_batch(v, None, None)
                        .map_err(err)?;
                }
                ColumnData::OptionalText(v) => {
                    let levels: Vec<i16> = v.iter().map(|b| i16::from(!b.is_empty())).collect();
                    let present: Vec<ByteArray> =
                        v.iter().filter(|b| !b.is_empty()).cloned().collect();
                    column
                        .typed::<ByteArrayType>()
                        .write_batch(&present, Some(&levels), None)
                        .map_err(err)?;
                }
                ColumnData::Int(v) => {
                    column
                        .typed::<Int32Type>()
                        .write_batch(v, None, None)
                        .map_err(err)?;
                }
                ColumnData::Double(v) => {
                    column
                        .typed::<DoubleType>()
                        .write_batch(v, None, None)
                        .map_err(err)?;
                }
            }
            column.close().map_err(err)?;
            index += 1;
        }
        group.close().map_err(err)?;
        for c in columns.iter_mut() {
            c.clear();
        }
        Ok(())
    }

    pub fn finish(self) -> Result<(), String> {
        self.writer.close().map(|_| ()).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_become_text() {
        assert_eq!(decimal_text(&[0x04, 0xD2], 2), "12.34");
        assert_eq!(decimal_text(&[0xFB, 0x2E], 2), "-12.34");
        assert_eq!(decimal_text(&[0x07], 0), "7");
    }
}
