//! Checking the rows of the two tables: a person or an encounter, or the reason it is refused.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;

use csv::ByteRecord;

use super::{BadRows, StudyOptions, note};
use crate::morbidity::dates::parse_date;
use crate::morbidity::input::{Batch, RowSource};
use crate::morbidity::{CodeBook, Partition, StudyError};

pub(super) struct Person {
    pub(super) birth_year: i32,
    pub(super) sex: u8,
    pub(super) from: i64,
    pub(super) to: i64,
}

pub(super) struct Persons {
    index: HashMap<Box<[u8]>, u32>,
    pub(super) people: Vec<Person>,
    /// Per person: bit `y - history_start` set when a pre-existing diagnosis fell in year y.
    pub(super) history: Vec<AtomicU64>,
}

/// A refused row: the reason (a stable snake_case code), the column and what is wrong.
pub(super) struct Bad {
    pub(super) reason: &'static str,
    pub(super) column: &'static str,
    pub(super) message: String,
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
pub(super) fn parse_fen(raw: &[u8], column: &'static str) -> Result<u64, Bad> {
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

/// The columns of the persons table.
struct PersonColumns {
    key: usize,
    birth: usize,
    sex: usize,
    insurance_type: usize,
    from: usize,
    to: usize,
}

/// Reads the persons of the partition; a bad row is counted (or, strict, the error).
pub(super) fn read_persons(
    source: &mut RowSource,
    options: &StudyOptions,
    bad_rows: &mut BadRows,
) -> Result<Persons, StudyError> {
    let col = |name: &str| source.column(name);
    let columns = PersonColumns {
        key: col("person_key")?,
        birth: col("birth_year")?,
        sex: col("sex")?,
        insurance_type: col("insurance_type")?,
        from: col("observed_from")?,
        to: col("observed_to")?,
    };
    let mut persons = Persons {
        index: HashMap::new(),
        people: Vec::new(),
        history: Vec::new(),
    };
    let mut batch = Batch::default();
    let file = source.name().to_string();
    while source.read_batch(&mut batch)? {
        for (line, record) in batch.iter() {
            let key = field(record, columns.key);
            if !options.partition.contains(key) {
                continue;
            }
            let outcome = parse_person(record, &columns, key).and_then(|person| {
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

/// Checks one persons row (its key is `key`).
fn parse_person(record: &ByteRecord, c: &PersonColumns, key: &[u8]) -> Result<Person, Bad> {
    if key.is_empty() {
        return Err(bad("malformed_person_key", "person_key", "is empty"));
    }
    let raw = field(record, c.birth);
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
    let sex = match field(record, c.sex) {
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
    match field(record, c.insurance_type) {
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
    let from = date(c.from, "observed_from")?;
    let to = date(c.to, "observed_to")?;
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
}

pub(super) struct EncounterColumns {
    pub(super) key: usize,
    pub(super) kind: usize,
    pub(super) start: usize,
    pub(super) diagnoses: usize,
    pub(super) total: usize,
    pub(super) basic: usize,
    pub(super) out_of_catalogue: usize,
    pub(super) atc: Option<usize>,
}

pub(super) struct Encounter {
    pub(super) person: u32,
    pub(super) inpatient: bool,
    pub(super) date: i64,
    pub(super) preexisting_diagnosis: bool,
    pub(super) targeted_drug: bool,
    pub(super) oop_fen: u64,
}

/// Checks one encounter row. `Ok(None)`: the person belongs to another partition.
pub(super) fn parse_encounter(
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
    let preexisting_diagnosis = any_preexisting(diagnoses, codes)?;
    let targeted_drug = !inpatient && is_targeted_drug(record, c, codes)?;
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

/// Whether any of the `;`-separated diagnoses is in a pre-existing condition group.
fn any_preexisting(diagnoses: &[u8], codes: &dyn CodeBook) -> Result<bool, Bad> {
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
    Ok(preexisting_diagnosis)
}

/// Whether a pharmacy row dispenses a targeted drug.
fn is_targeted_drug(
    record: &ByteRecord,
    c: &EncounterColumns,
    codes: &dyn CodeBook,
) -> Result<bool, Bad> {
    let raw = c.atc.map_or(&b""[..], |i| field(record, i));
    if raw.is_empty() {
        return Err(bad("malformed_code", "atc", "is empty on a pharmacy row"));
    }
    let atc = std::str::from_utf8(raw).unwrap_or("\u{fffd}");
    codes
        .targeted_drug(atc)
        .map_err(|_| bad("malformed_code", "atc", "is not a WHO ATC code"))
}
