//! The arguments of `puhui morbidity build | merge | synth`, with their long help.

use std::path::PathBuf;

use actuarial::morbidity::{FinishOptions, Partition};

#[derive(Debug, clap::Subcommand)]
pub enum MorbidityCommand {
    /// Build the morbidity table (the shipped CSV format) from persons and encounters.
    #[command(long_about = BUILD_ABOUT)]
    Build(BuildArgs),
    /// Combine the partial statistics of `build --partition i/N` runs into the table.
    #[command(long_about = MERGE_ABOUT)]
    Merge(MergeArgs),
    /// Write synthetic persons and encounters from a known model, with the true table.
    #[command(long_about = SYNTH_ABOUT)]
    Synth(SynthArgs),
}

const BUILD_ABOUT: &str = "\
Build the morbidity table from record-level population data.

Inputs: a persons table (person_key, birth_year, sex M|F, insurance_type urban_employee|\
urban_rural_resident, observed_from, observed_to) and an encounters table (person_key, kind \
inpatient|pharmacy, start_date, diagnoses as ICD-10 codes separated by ';', total_cost, \
basic_paid, out_of_catalogue, atc on pharmacy rows), each CSV, gzip-compressed CSV (.csv.gz) \
or Parquet (.parquet). Encounters are streamed: memory grows with the persons, not the rows.

Per cell (age band x sex x condition group) and year of --years: person-years, admissions per \
person-year, mean and cv of the out-of-pocket cost per admission (total_cost - basic_paid), \
the share of person-years with a dispensing of a drug on the product's formulary and their \
mean annual drug cost, each with its standard error. A person-year is pre-existing when a \
diagnosis in one of the product's pre-existing condition groups fell in the --lookback years \
before it. Rates and costs are blended by Buhlmann-Straub credibility over the calendar \
years: the age band (both sexes) towards its condition group, then each cell towards its age \
band; the structural parameters and every Z are in the --json report.

Bad rows (unknown person, malformed code, date or amount, negative amounts, basic_paid above \
total_cost, an encounter outside the person's observed period) are counted by reason with \
their first line numbers; --strict makes the first one an error naming the file, line and \
column.

With --partition i/N only the persons whose key hashes to part i are read and --out receives \
their partial statistics (JSON); `puhui morbidity merge` combines the N parts into exactly the \
table of a single run.

Example:
  puhui morbidity build --persons persons.csv.gz --encounters encounters.csv.gz \\
    --product products/xiamen-2026.toml --years 2019-2023 --out table.csv \\
    --json study.json --html study.html";

const MERGE_ABOUT: &str = "\
Combine partial statistics written by `puhui morbidity build --partition i/N` (one file per \
part, in any order) and write the table, as a single `build` would. Every part must come from \
the same --years, --lookback and product, and each of the N parts must be given once.

Example:
  puhui morbidity merge part1.json part2.json part3.json --out table.csv --json study.json";

const SYNTH_ABOUT: &str = "\
Write synthetic test data from a known model into DIR: persons.<ext> and encounters.<ext> \
(the input contract of `morbidity build`), truth.csv (the true morbidity table: the rates of \
the shipped morbidity_default.csv, with the population shares of the simulated exposure) and \
truth.json (the model). Admissions are Poisson with the cell's rate, out-of-pocket costs \
lognormal with its mean and cv; chronic conditions start at a share of admissions and make \
the following person-years pre-existing; people enter and leave the population. The output \
depends only on the options and the seed. The diagnoses and drugs are those of the demo \
products, so `build --product products/xiamen-2026.toml` reads them as the model means.

Example:
  puhui morbidity synth --persons 100000 --years 2015-2024 --seed 1 --out data/synth";

/// A year or a range `YYYY-YYYY`.
pub(super) fn parse_years(text: &str) -> Result<(i32, i32), String> {
    let year = |s: &str| -> Result<i32, String> {
        s.trim()
            .parse::<i32>()
            .ok()
            .filter(|y| (1900..=2200).contains(y))
            .ok_or_else(|| format!("`{s}` is not a year"))
    };
    match text.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (year(a)?, year(b)?);
            if a > b {
                return Err(format!("`{text}`: the first year is after the last"));
            }
            Ok((a, b))
        }
        None => year(text).map(|y| (y, y)),
    }
}

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Persons table: CSV, .csv.gz or .parquet.
    #[arg(long, value_name = "FILE")]
    pub persons: PathBuf,
    /// Encounters table: CSV, .csv.gz or .parquet.
    #[arg(long, value_name = "FILE")]
    pub encounters: PathBuf,
    /// Product TOML: its pre-existing condition groups and its specialty-drug formulary.
    #[arg(long, value_name = "FILE")]
    pub product: PathBuf,
    /// Calendar years of exposure, e.g. 2019-2023 (at least two years).
    #[arg(long, value_name = "FIRST-LAST", value_parser = parse_years)]
    pub years: (i32, i32),
    /// The morbidity table (CSV); with --partition, the partial statistics (JSON).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Also write the study report as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also write the study as an HTML page.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Years before a person-year in which a pre-existing diagnosis counts.
    #[arg(long, value_name = "YEARS", default_value_t = 5)]
    pub lookback: u32,
    #[command(flatten)]
    pub costs: CostArgs,
    /// Make any bad row an error (file, line and column) instead of counting it.
    #[arg(long)]
    pub strict: bool,
    /// Read only part i of N of the persons (split by a hash of person_key) and write partial
    /// statistics to --out.
    #[arg(long, value_name = "i/N", value_parser = Partition::parse)]
    pub partition: Option<Partition>,
    /// Worker threads (default: all cores). The result does not depend on it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub threads: Option<u16>,
}

#[derive(Debug, clap::Args)]
pub struct CostArgs {
    /// Yearly cost trend: costs of year y are multiplied by (1 + trend)^(pricing year - y).
    #[arg(
        long,
        value_name = "RATE",
        default_value_t = 0.0,
        allow_negative_numbers = true
    )]
    pub trend: f64,
    /// The year costs are brought to (default: the year after the last of --years).
    #[arg(long, value_name = "YEAR")]
    pub pricing_year: Option<i32>,
}

impl CostArgs {
    pub(super) fn options(&self, last_year: i32) -> FinishOptions {
        FinishOptions {
            trend: self.trend,
            pricing_year: self.pricing_year.unwrap_or(last_year + 1),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// Partial statistics files written by `build --partition`.
    #[arg(required = true, value_name = "PART")]
    pub parts: Vec<PathBuf>,
    /// The morbidity table (CSV).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Also write the study report as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also write the study as an HTML page.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    #[command(flatten)]
    pub costs: CostArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FormatArg {
    Csv,
    #[value(name = "csv.gz")]
    CsvGz,
    Parquet,
}

#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// Number of persons.
    #[arg(long, value_name = "N")]
    pub persons: u64,
    /// Calendar years simulated, e.g. 2015-2024.
    #[arg(long, value_name = "FIRST-LAST", value_parser = parse_years)]
    pub years: (i32, i32),
    /// Random seed.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,
    /// Output directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// File format of the two tables.
    #[arg(long, value_enum, default_value = "csv")]
    pub format: FormatArg,
}
