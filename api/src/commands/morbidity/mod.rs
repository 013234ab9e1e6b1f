//! `puhui morbidity build | merge | synth`: the morbidity study from record-level data.
//!
//! The product file is read here, through the claims engine's product parser and ICD-10 / ATC
//! matching, and handed to the (pure) study as a code book: the study's pre-existing groups and
//! formulary are then the very ones the claims engine applies, and `actuarial` keeps no second
//! copy of the code rules.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use actuarial::morbidity::study::{PartialStudy, StudyOptions};
use actuarial::morbidity::synth::{SynthFormat, SynthOptions, generate};
use actuarial::morbidity::{
    CodeBook, FinishOptions, MalformedCode, Partition, StudyReport, finish, render_html, table_csv,
};
use engine::domain::product::Product;
use engine::domain::{AtcCode, Icd10Code};

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
fn parse_years(text: &str) -> Result<(i32, i32), String> {
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
    fn options(&self, last_year: i32) -> FinishOptions {
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

/// The product's pre-existing groups and formulary, matched by the claims engine's rules.
pub struct ProductCodeBook {
    product: Product,
}

impl ProductCodeBook {
    pub fn from_path(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let product =
            Product::from_toml_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Self { product })
    }

    /// Names the product and its content, so that partial statistics of different products
    /// are not merged.
    pub fn name(&self) -> String {
        let hash = self.product.content_hash();
        format!("{}@{}", self.product.id, &hash[..hash.len().min(12)])
    }
}

impl CodeBook for ProductCodeBook {
    fn preexisting(&self, icd10: &str) -> Result<bool, MalformedCode> {
        let code: Icd10Code = icd10.parse().map_err(|_| MalformedCode)?;
        Ok(self
            .product
            .preexisting_groups
            .iter()
            .any(|group| group.contains(&code)))
    }

    fn targeted_drug(&self, atc: &str) -> Result<bool, MalformedCode> {
        let code: AtcCode = atc.parse().map_err(|_| MalformedCode)?;
        Ok(self.product.formulary_drug(&code).is_some())
    }
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn with_threads<T: Send>(threads: Option<u16>, f: impl FnOnce() -> T + Send) -> Result<T, String> {
    match threads {
        None => Ok(f()),
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(usize::from(n))
            .build()
            .map(|pool| pool.install(f))
            .map_err(|e| format!("cannot start {n} threads: {e}")),
    }
}

pub fn run(command: &MorbidityCommand) -> Result<ExitCode, String> {
    match command {
        MorbidityCommand::Build(args) => build(args),
        MorbidityCommand::Merge(args) => merge(args),
        MorbidityCommand::Synth(args) => synth(args),
    }
}

fn build(args: &BuildArgs) -> Result<ExitCode, String> {
    if args.partition.is_some() && (args.json.is_some() || args.html.is_some()) {
        return Err(
            "--partition writes partial statistics to --out; --json and --html belong to \
             `puhui morbidity merge`"
                .into(),
        );
    }
    let codes = ProductCodeBook::from_path(&args.product)?;
    let options = StudyOptions {
        first_year: args.years.0,
        last_year: args.years.1,
        lookback: args.lookback,
        partition: args.partition.unwrap_or(Partition::WHOLE),
        strict: args.strict,
        code_book: codes.name(),
    };
    let partial = with_threads(args.threads, || {
        actuarial::morbidity::run(&args.persons, &args.encounters, &codes, &options)
    })?
    .map_err(|e| e.to_string())?;
    if args.partition.is_some() {
        let json = serde_json::to_string(&partial).map_err(|e| e.to_string())?;
        write_file(&args.out, &(json + "\n"))?;
        print_bad_rows(&partial);
        println!(
            "partition {}/{}: {} persons, {} encounters used; partial statistics in {}",
            options.partition.index,
            options.partition.count,
            partial.persons,
            partial.encounters_used,
            args.out.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let report = finish(&partial, &args.costs.options(args.years.1)).map_err(|e| e.to_string())?;
    write_outputs(
        &report,
        &partial,
        &args.out,
        args.json.as_deref(),
        args.html.as_deref(),
    )
}

fn merge(args: &MergeArgs) -> Result<ExitCode, String> {
    let mut merged: Option<PartialStudy> = None;
    for path in &args.parts {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
        let part: PartialStudy = serde_json::from_str(&text)
            .map_err(|e| format!("{name}: not partial statistics of a morbidity study: {e}"))?;
        match &mut merged {
            None => {
                if part.format != actuarial::morbidity::study::PARTIAL_FORMAT {
                    return Err(format!("{name}: unknown format `{}`", part.format));
                }
                merged = Some(part);
            }
            Some(m) => m.merge(&part, &name).map_err(|e| e.to_string())?,
        }
    }
    let merged = merged.ok_or("no partial statistics given")?;
    let report =
        finish(&merged, &args.costs.options(merged.last_year)).map_err(|e| e.to_string())?;
    write_outputs(
        &report,
        &merged,
        &args.out,
        args.json.as_deref(),
        args.html.as_deref(),
    )
}

fn print_bad_rows(study: &PartialStudy) {
    for (table, reasons) in [
        ("persons", &study.bad_rows.persons),
        ("encounters", &study.bad_rows.encounters),
    ] {
        for (reason, bad) in reasons {
            let lines: Vec<String> = bad.first_lines.iter().map(u64::to_string).collect();
            println!(
                "bad {table} rows, {reason}: {} (first lines {})",
                bad.count,
                lines.join(", ")
            );
        }
    }
}

fn write_outputs(
    report: &StudyReport,
    study: &PartialStudy,
    out: &Path,
    json: Option<&Path>,
    html: Option<&Path>,
) -> Result<ExitCode, String> {
    write_file(out, &table_csv(report))?;
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
        write_file(path, &(text + "\n"))?;
    }
    if let Some(path) = html {
        write_file(path, &render_html(report))?;
    }
    print_bad_rows(study);
    println!(
        "{} persons, {} encounters used, {:.0} person-years in {}-{}; table written to {}",
        report.persons,
        report.encounters_used,
        report.exposure_person_years,
        report.first_year,
        report.last_year,
        out.display()
    );
    println!(
        "{:<22} {:>10} {:>9} {:>7} {:>9} {:>10} {:>6} {:>10}",
        "cell", "pers-years", "rate obs", "Z", "rate", "cost obs", "Z", "cost"
    );
    for c in &report.cells {
        let f = &c.hospitalization_rate;
        let s = &c.oop_cost_per_admission;
        let opt = |v: Option<f64>, d: usize| v.map_or("-".to_string(), |v| format!("{v:.d$}"));
        println!(
            "{:<22} {:>10.0} {:>9} {:>7.3} {:>9.4} {:>10} {:>6.3} {:>10.0}",
            format!("{}/{}/{}", c.age_band, c.sex, c.condition_group),
            c.exposure_person_years,
            opt(f.observed, 4),
            f.z,
            f.value,
            opt(s.observed, 0),
            s.z,
            s.value
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn synth(args: &SynthArgs) -> Result<ExitCode, String> {
    let format = match args.format {
        FormatArg::Csv => SynthFormat::Csv,
        FormatArg::CsvGz => SynthFormat::CsvGz,
        FormatArg::Parquet => SynthFormat::Parquet,
    };
    let summary = generate(
        &args.out,
        &SynthOptions {
            persons: args.persons,
            first_year: args.years.0,
            last_year: args.years.1,
            seed: args.seed,
            format,
        },
    )?;
    println!(
        "{} persons ({:.0} person-years), {} inpatient and {} pharmacy encounters",
        summary.persons,
        summary.person_years,
        summary.inpatient_encounters,
        summary.pharmacy_encounters
    );
    for path in [
        &summary.persons_file,
        &summary.encounters_file,
        &summary.truth_table,
        &summary.truth_json,
    ] {
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actuarial::morbidity::synth::{
        ACUTE_CODES, CHRONIC_CODES, OTHER_DRUGS, SynthCodes, TARGETED_DRUGS,
    };

    /// The generator's codes mean to the demo product what the generator says they mean, so a
    /// study with the product's code book measures the generator's model.
    #[test]
    fn the_demo_product_reads_the_synthetic_codes_as_the_model_does() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for file in ["products/xiamen-2026.toml", "products/xiamen-2025.toml"] {
            let product = ProductCodeBook::from_path(&root.join(file)).unwrap();
            let diagnoses = CHRONIC_CODES
                .iter()
                .chain(&ACUTE_CODES)
                .chain(TARGETED_DRUGS.iter().map(|(_, d)| d))
                .chain(OTHER_DRUGS.iter().map(|(_, d)| d));
            for code in diagnoses {
                assert_eq!(
                    product.preexisting(code),
                    SynthCodes.preexisting(code),
                    "{file} {code}"
                );
            }
            for (atc, _) in TARGETED_DRUGS.iter().chain(&OTHER_DRUGS) {
                assert_eq!(
                    product.targeted_drug(atc),
                    SynthCodes.targeted_drug(atc),
                    "{file} {atc}"
                );
            }
            assert_eq!(product.preexisting("C3X"), Err(MalformedCode));
            assert_eq!(product.targeted_drug("L01"), Err(MalformedCode));
        }
    }

    #[test]
    fn years_parse_as_a_range() {
        assert_eq!(parse_years("2019-2023"), Ok((2019, 2023)));
        assert_eq!(parse_years("2020"), Ok((2020, 2020)));
        assert!(parse_years("2023-2019").is_err());
        assert!(parse_years("19-23").is_err());
    }
}
