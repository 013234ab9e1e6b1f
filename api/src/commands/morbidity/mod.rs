//! `puhui morbidity build | merge | synth`: the morbidity study from record-level data.
//!
//! The product file is read in `code_book`, through the claims engine's product parser and
//! ICD-10 / ATC matching, and handed to the (pure) study as a code book: the study's pre-existing
//! groups and formulary are then the very ones the claims engine applies, and `actuarial` keeps
//! no second copy of the code rules.

use std::path::Path;
use std::process::ExitCode;

use actuarial::morbidity::study::{PartialStudy, StudyOptions};
use actuarial::morbidity::synth::{SynthFormat, SynthOptions, generate};
use actuarial::morbidity::{Partition, StudyReport, finish, render_html, table_csv};

mod args;
mod code_book;

pub use args::*;
pub use code_book::ProductCodeBook;

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
    use actuarial::morbidity::{CodeBook, MalformedCode};

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
