//! One person's life in the synthetic population: entry, exit, and the encounters of each
//! person-year, all drawn from the person's own random stream in a fixed order.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Poisson};

use super::{
    ACUTE_CODES, CHRONIC_CODES, Chunk, DEATH, DRUG_COST_CV, EncounterRow, FOLLOW_UP_SHARE,
    LATE_ENTRY, LOOKBACK_YEARS, MOVE_AWAY, ONSET_SHARE, OTHER_DISPENSINGS, OTHER_DRUGS, PersonRow,
    SynthOptions, TARGETED_DRUGS,
};
use crate::morbidity::dates::{days_in_year, year_of, year_start};
use crate::morbidity::{age_band, cell_index};
use crate::table::MorbidityRow;

const BAND_LOWER_AGE: [i32; 7] = [0, 18, 40, 55, 65, 75, 85];
const BAND_UPPER_AGE: [i32; 7] = [17, 39, 54, 64, 74, 84, 99];

pub(super) fn lognormal(mean: f64, cv: f64) -> LogNormal<f64> {
    let sigma2 = (1.0 + cv * cv).ln();
    // The parameters are finite and sigma > 0 for the positive means and cvs of the table.
    LogNormal::new(mean.ln() - sigma2 / 2.0, sigma2.sqrt())
        .unwrap_or_else(|_| LogNormal::new(0.0, 1.0).expect("standard lognormal"))
}

fn poisson(rng: &mut ChaCha8Rng, mean: f64) -> u64 {
    if mean <= 0.0 {
        return 0;
    }
    Poisson::new(mean).map_or(0, |p| p.sample(rng) as u64)
}

/// Who a person is: the row of the persons table, with the sex as a cell index.
struct Entrant {
    row: PersonRow,
    sex: usize,
    entry_year: i32,
}

/// What a person's history carries from one encounter to the next: the years with a
/// pre-existing diagnosis (bit `year - first_year`) and the chronic condition, once one began.
struct History {
    first_year: i32,
    years: u64,
    chronic: Option<&'static str>,
}

impl History {
    fn mark(&mut self, year: i32) {
        self.years |= 1 << (year - self.first_year);
    }

    /// Whether a diagnosis in one of the look-back years before `year` makes it pre-existing.
    fn preexisting(&self, year: i32) -> bool {
        let mut mask = 0u64;
        for y in (year - LOOKBACK_YEARS as i32)..year {
            if y >= self.first_year {
                mask |= 1 << (y - self.first_year);
            }
        }
        self.years & mask != 0
    }
}

/// One observed person-year: its days and its cell's true morbidity.
struct PersonYear<'a> {
    person: usize,
    year: i32,
    band: usize,
    preexisting: bool,
    /// First and last observed day of the year.
    first_day: i64,
    last_day: i64,
    /// Observed share of the year.
    share: f64,
    row: &'a MorbidityRow,
}

/// Simulates person `index` from its own stream into `out`.
pub(super) fn simulate_person(
    index: u64,
    options: &SynthOptions,
    table: &[MorbidityRow],
    band_weights: &[f64; 7],
    out: &mut Chunk,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    rng.set_stream(index);
    let person = out.persons.len();
    let entrant = enter(&mut rng, index, options, band_weights);
    let (from, to, birth_year) = (entrant.row.from, entrant.row.to, entrant.row.birth_year);
    out.persons.push(entrant.row);

    let mut history = History {
        first_year: options.first_year,
        years: 0,
        chronic: None,
    };
    for year in entrant.entry_year..=year_of(to) {
        let first_day = year_start(year).max(from);
        let last_day = (year_start(year) + days_in_year(year) - 1).min(to);
        if last_day < first_day {
            continue;
        }
        let Some(band) = age_band(year - birth_year) else {
            continue;
        };
        let preexisting = history.preexisting(year);
        let cell = cell_index(band, entrant.sex, preexisting);
        let days = (last_day - first_day + 1) as f64;
        out.exposure_days[cell] += days;
        let person_year = PersonYear {
            person,
            year,
            band,
            preexisting,
            first_day,
            last_day,
            share: days / days_in_year(year) as f64,
            row: &table[cell],
        };
        admissions(&mut rng, &person_year, &mut history, out);
        if rng.random::<f64>() < person_year.row.targeted_drug_need_rate * person_year.share {
            targeted_drug(&mut rng, &person_year, &mut history, out);
        }
        other_dispensings(&mut rng, &person_year, out);
    }
}

/// Draws the person: sex, entry day, age band and age at entry, insurance, and the exit (moving
/// away or death, year by year).
fn enter(
    rng: &mut ChaCha8Rng,
    index: u64,
    options: &SynthOptions,
    band_weights: &[f64; 7],
) -> Entrant {
    let key = format!(
        "{:016x}",
        index.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ options.seed
    );
    let sex = usize::from(rng.random::<f64>() >= 0.51);
    let start = year_start(options.first_year);
    let end = year_start(options.last_year) + days_in_year(options.last_year) - 1;
    let from = if rng.random::<f64>() < LATE_ENTRY {
        rng.random_range(start..=end)
    } else {
        start
    };
    let entry_year = year_of(from);
    let band = draw_band(rng, band_weights);
    let age_at_entry = rng.random_range(BAND_LOWER_AGE[band]..=BAND_UPPER_AGE[band]);
    let birth_year = entry_year - age_at_entry;
    let insurance = if (18..65).contains(&age_at_entry) && rng.random::<f64>() < 0.6 {
        "urban_employee"
    } else {
        "urban_rural_resident"
    };
    let mut to = end;
    for year in entry_year..=options.last_year {
        let age = year - birth_year;
        let Some(b) = age_band(age) else { continue };
        if rng.random::<f64>() < MOVE_AWAY + DEATH[b] {
            let ys = year_start(year).max(from);
            let ye = year_start(year) + days_in_year(year) - 1;
            to = rng.random_range(ys..=ye);
            break;
        }
    }
    Entrant {
        row: PersonRow {
            key,
            birth_year,
            sex: ["M", "F"][sex],
            insurance,
            from,
            to,
        },
        sex,
        entry_year,
    }
}

/// An age band drawn by the population shares of the table.
fn draw_band(rng: &mut ChaCha8Rng, band_weights: &[f64; 7]) -> usize {
    let total: f64 = band_weights.iter().sum();
    let mut u = rng.random::<f64>() * total;
    for (b, w) in band_weights.iter().enumerate() {
        if u < *w {
            return b;
        }
        u -= w;
    }
    6
}

/// The year's admissions: the onset of a chronic condition, follow-ups of one, or acute.
fn admissions(rng: &mut ChaCha8Rng, py: &PersonYear, history: &mut History, out: &mut Chunk) {
    let row = py.row;
    let cost = lognormal(row.mean_oop_cost_per_admission, row.cv_cost);
    for _ in 0..poisson(rng, row.annual_hospitalization_rate * py.share) {
        let date = rng.random_range(py.first_day..=py.last_day);
        let oop = (cost.sample(rng) * 100.0).round().max(1.0) as u64;
        let basic_share = rng.random_range(0.45..0.75);
        let total = (oop as f64 / (1.0 - basic_share)).round() as u64;
        let total = total.max(oop);
        let acute = ACUTE_CODES[rng.random_range(0..ACUTE_CODES.len())];
        let diagnoses = match history.chronic {
            Some(code) if py.preexisting => {
                history.mark(py.year);
                if rng.random::<f64>() < FOLLOW_UP_SHARE {
                    code.to_string()
                } else {
                    format!("{acute};{code}")
                }
            }
            _ if rng.random::<f64>() < ONSET_SHARE[py.band] => {
                let code = CHRONIC_CODES[rng.random_range(0..CHRONIC_CODES.len())];
                history.chronic = Some(code);
                history.mark(py.year);
                code.to_string()
            }
            _ => acute.to_string(),
        };
        let out_of_catalogue = (oop as f64 * rng.random_range(0.0..0.5)).round() as u64;
        out.encounters.push(EncounterRow {
            person: py.person,
            inpatient: true,
            date,
            diagnoses,
            total_fen: total,
            basic_fen: total - oop,
            out_of_catalogue_fen: out_of_catalogue,
            atc: "",
        });
    }
}

/// The year's targeted-drug need: its annual cost dispensed in up to twelve fills.
fn targeted_drug(rng: &mut ChaCha8Rng, py: &PersonYear, history: &mut History, out: &mut Chunk) {
    let row = py.row;
    let (atc, diagnosis) = TARGETED_DRUGS[rng.random_range(0..TARGETED_DRUGS.len())];
    let annual = (lognormal(row.mean_annual_drug_cost, DRUG_COST_CV).sample(rng) * 100.0)
        .round()
        .max(100.0) as u64;
    let fills = (1 + poisson(rng, 5.0)).min(12);
    let each = annual / fills;
    for k in 0..fills {
        let fen = if k + 1 == fills {
            annual - each * (fills - 1)
        } else {
            each
        };
        out.encounters.push(EncounterRow {
            person: py.person,
            inpatient: false,
            date: rng.random_range(py.first_day..=py.last_day),
            diagnoses: diagnosis.to_string(),
            total_fen: fen,
            basic_fen: 0,
            out_of_catalogue_fen: fen,
            atc,
        });
    }
    history.chronic.get_or_insert(diagnosis);
    history.mark(py.year);
}

/// The year's other (not targeted) dispensings.
fn other_dispensings(rng: &mut ChaCha8Rng, py: &PersonYear, out: &mut Chunk) {
    let other_cost = lognormal(300.0, 1.0);
    for _ in 0..poisson(rng, OTHER_DISPENSINGS * py.share) {
        let (atc, diagnosis) = OTHER_DRUGS[rng.random_range(0..OTHER_DRUGS.len())];
        let total = (other_cost.sample(rng) * 100.0).round().max(1.0) as u64;
        let basic = (total as f64 * 0.7).round() as u64;
        out.encounters.push(EncounterRow {
            person: py.person,
            inpatient: false,
            date: rng.random_range(py.first_day..=py.last_day),
            diagnoses: diagnosis.to_string(),
            total_fen: total,
            basic_fen: basic,
            out_of_catalogue_fen: 0,
            atc,
        });
    }
}
