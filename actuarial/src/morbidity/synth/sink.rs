//! Where the synthetic rows go: CSV (plain or gzip) or Parquet, one row group per chunk.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use parquet::data_type::ByteArray;

use super::{Chunk, SynthFormat};
use crate::morbidity::dates::format_date;
use crate::morbidity::input_parquet::{ColumnData, ParquetWriter};

fn fen_text(fen: u64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

const PERSONS_PARQUET: &str = "message persons { required binary person_key (UTF8); \
    required int32 birth_year; required binary sex (UTF8); required binary insurance_type (UTF8); \
    required int32 observed_from (DATE); required int32 observed_to (DATE); }";
const ENCOUNTERS_PARQUET: &str = "message encounters { required binary person_key (UTF8); \
    required binary kind (UTF8); required int32 start_date (DATE); \
    required binary diagnoses (UTF8); required double total_cost; required double basic_paid; \
    required double out_of_catalogue; optional binary atc (UTF8); }";

pub(super) enum Sink {
    Csv {
        persons: Box<dyn Write>,
        encounters: Box<dyn Write>,
    },
    Parquet(Box<ParquetSink>),
}

pub(super) struct ParquetSink {
    persons: ParquetWriter,
    encounters: ParquetWriter,
    person_columns: Vec<ColumnData>,
    encounter_columns: Vec<ColumnData>,
}

pub(super) fn io(path: &Path) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

impl Sink {
    /// Opens `persons.*` and `encounters.*` in `dir` (CSV with its header row, or Parquet).
    pub(super) fn create(
        dir: &Path,
        format: SynthFormat,
    ) -> Result<(Self, PathBuf, PathBuf), String> {
        let ext = format.extension();
        let persons_path = dir.join(format!("persons.{ext}"));
        let encounters_path = dir.join(format!("encounters.{ext}"));
        let sink = match format {
            SynthFormat::Csv | SynthFormat::CsvGz => create_csv(
                &persons_path,
                &encounters_path,
                format == SynthFormat::CsvGz,
            )?,
            SynthFormat::Parquet => Sink::Parquet(Box::new(ParquetSink::create(
                &persons_path,
                &encounters_path,
            )?)),
        };
        Ok((sink, persons_path, encounters_path))
    }

    pub(super) fn write(&mut self, chunk: &Chunk) -> Result<(), String> {
        match self {
            Sink::Csv {
                persons,
                encounters,
            } => write_csv(persons, encounters, chunk).map_err(|e| e.to_string()),
            Sink::Parquet(sink) => sink.write(chunk),
        }
    }

    pub(super) fn finish(self) -> Result<(), String> {
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

fn create_csv(persons_path: &Path, encounters_path: &Path, gzip: bool) -> Result<Sink, String> {
    let open = |path: &Path| -> Result<Box<dyn Write>, String> {
        let file = BufWriter::with_capacity(1 << 20, File::create(path).map_err(io(path))?);
        Ok(if gzip {
            Box::new(flate2::write::GzEncoder::new(
                file,
                flate2::Compression::fast(),
            ))
        } else {
            Box::new(file)
        })
    };
    let mut persons = open(persons_path)?;
    let mut encounters = open(encounters_path)?;
    persons
        .write_all(b"person_key,birth_year,sex,insurance_type,observed_from,observed_to\n")
        .map_err(io(persons_path))?;
    encounters
        .write_all(
            b"person_key,kind,start_date,diagnoses,total_cost,basic_paid,\
              out_of_catalogue,atc\n",
        )
        .map_err(io(encounters_path))?;
    Ok(Sink::Csv {
        persons,
        encounters,
    })
}

fn write_csv(
    persons: &mut dyn Write,
    encounters: &mut dyn Write,
    chunk: &Chunk,
) -> Result<(), std::io::Error> {
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
        )?;
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
        )?;
    }
    Ok(())
}

impl ParquetSink {
    fn create(persons_path: &Path, encounters_path: &Path) -> Result<Self, String> {
        let text = || ColumnData::Text(Vec::new());
        let int = || ColumnData::Int(Vec::new());
        let double = || ColumnData::Double(Vec::new());
        let named = |path: &Path, e: String| format!("{}: {e}", path.display());
        Ok(ParquetSink {
            persons: ParquetWriter::create(persons_path, PERSONS_PARQUET)
                .map_err(|e| named(persons_path, e))?,
            encounters: ParquetWriter::create(encounters_path, ENCOUNTERS_PARQUET)
                .map_err(|e| named(encounters_path, e))?,
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
        })
    }

    /// Writes the chunk as one row group of each file.
    fn write(&mut self, chunk: &Chunk) -> Result<(), String> {
        for p in &chunk.persons {
            let values: [Value; 6] = [
                Value::Text(p.key.as_bytes()),
                Value::Int(p.birth_year),
                Value::Text(p.sex.as_bytes()),
                Value::Text(p.insurance.as_bytes()),
                Value::Int(p.from as i32),
                Value::Int(p.to as i32),
            ];
            push_row(&mut self.person_columns, &values);
        }
        self.persons.write_group(&mut self.person_columns)?;
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
            push_row(&mut self.encounter_columns, &values);
        }
        self.encounters.write_group(&mut self.encounter_columns)
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
