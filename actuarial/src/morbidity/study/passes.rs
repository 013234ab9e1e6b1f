//! The study's passes over one partition: the persons, then the encounters twice (first the
//! years with a pre-existing diagnosis, then the admissions and drug costs of each person-year).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;

use csv::ByteRecord;
use rayon::prelude::*;

use super::rows::{Bad, EncounterColumns, Persons, parse_encounter, read_persons};
use super::{BadRows, CellYear, PartialStudy, ROWS_PER_TASK, StudyOptions, note};
use crate::morbidity::dates::{days_in_year, year_of, year_start};
use crate::morbidity::input::{Batch, RowSource};
use crate::morbidity::{CELLS, CodeBook, StudyError, age_band, cell_index};

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

    let study = Study {
        persons: &persons,
        options,
        codes,
        masks: (options.first_year..=options.last_year)
            .map(|y| options.lookback_mask(y))
            .collect(),
    };
    let (mut source, columns) = open_encounters(encounters_path)?;
    study.mark_preexisting_years(&mut source, &columns, &mut out.bad_rows)?;
    study.add_exposure(&mut out.cells);
    let (mut source, columns) = open_encounters(encounters_path)?;
    let drug_years = study.attribute_encounters(&mut source, &columns, &mut out)?;
    study.add_drug_years(drug_years, &mut out.cells);
    out.bad_rows.tidy();
    Ok(out)
}

fn open_encounters(path: &Path) -> Result<(RowSource, EncounterColumns), StudyError> {
    let source = RowSource::open(path)?;
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
}

/// What the passes over the encounters share: the persons, the options, the code book and the
/// look-back mask of each study year.
struct Study<'a> {
    persons: &'a Persons,
    options: &'a StudyOptions,
    codes: &'a dyn CodeBook,
    masks: Vec<u64>,
}

impl Study<'_> {
    /// The cell of a person-year, as pass 1 decided its condition group.
    fn cell_of(&self, person: usize, year: i32) -> Option<usize> {
        let p = &self.persons.people[person];
        let band = age_band(year - p.birth_year)?;
        let mask = self.masks[(year - self.options.first_year) as usize];
        let pre = self.persons.history[person].load(Ordering::Relaxed) & mask != 0;
        Some(cell_index(band, usize::from(p.sex), pre))
    }

    /// Pass 1: check every row, mark the years with a pre-existing diagnosis.
    fn mark_preexisting_years(
        &self,
        source: &mut RowSource,
        columns: &EncounterColumns,
        bad_rows_out: &mut BadRows,
    ) -> Result<(), StudyError> {
        let (options, persons) = (self.options, self.persons);
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
                        match parse_encounter(
                            record,
                            columns,
                            persons,
                            &options.partition,
                            self.codes,
                        ) {
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
                bad_rows_out.merge(&bad_rows);
            }
        }
        Ok(())
    }

    /// Exposure: each person's days in each study year, in the cell of that person-year.
    fn add_exposure(&self, cells: &mut [Vec<CellYear>]) {
        let options = self.options;
        for (i, p) in self.persons.people.iter().enumerate() {
            for year in options.first_year..=options.last_year {
                let start = year_start(year);
                let end = start + days_in_year(year) - 1;
                let days = p.to.min(end) - p.from.max(start) + 1;
                if days <= 0 {
                    continue;
                }
                if let Some(cell) = self.cell_of(i, year) {
                    cells[cell][(year - options.first_year) as usize].exposure_days += days as u64;
                }
            }
        }
    }

    /// Pass 2: attribute admissions to the person-year's cell; the targeted-drug costs are
    /// summed per person-year and returned.
    fn attribute_encounters(
        &self,
        source: &mut RowSource,
        columns: &EncounterColumns,
        out: &mut PartialStudy,
    ) -> Result<HashMap<(u32, u8), u64>, StudyError> {
        let mut batch = Batch::default();
        let mut drug_years: HashMap<(u32, u8), u64> = HashMap::new();
        while source.read_batch(&mut batch)? {
            let rows: Vec<(u64, &ByteRecord)> = batch.iter().collect();
            let parts: Vec<Pass2> = rows
                .par_chunks(ROWS_PER_TASK)
                .map(|chunk| self.attribute_rows(chunk, columns))
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
        Ok(drug_years)
    }

    fn attribute_rows(&self, chunk: &[(u64, &ByteRecord)], columns: &EncounterColumns) -> Pass2 {
        let options = self.options;
        let mut part = Pass2 {
            cells: vec![vec![CellYear::default(); options.years()]; CELLS],
            ..Pass2::default()
        };
        for &(_, record) in chunk {
            let Ok(Some(e)) = parse_encounter(
                record,
                columns,
                self.persons,
                &options.partition,
                self.codes,
            ) else {
                continue;
            };
            let year = year_of(e.date);
            if year < options.first_year || year > options.last_year {
                continue;
            }
            let y = (year - options.first_year) as usize;
            if e.inpatient {
                let Some(cell) = self.cell_of(e.person as usize, year) else {
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
    }

    /// Each person-year with a targeted-drug dispensing is one user with its annual cost.
    fn add_drug_years(&self, drug_years: HashMap<(u32, u8), u64>, cells: &mut [Vec<CellYear>]) {
        for ((person, y), fen) in drug_years {
            let year = self.options.first_year + i32::from(y);
            if let Some(cell) = self.cell_of(person as usize, year) {
                let c = &mut cells[cell][usize::from(y)];
                c.drug_users += 1;
                c.drug_fen += u128::from(fen);
                c.drug_fen_sq += u128::from(fen) * u128::from(fen);
            }
        }
    }
}
