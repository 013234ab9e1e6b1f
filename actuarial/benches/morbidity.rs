//! Morbidity study benchmark: synthetic persons over ten years, the whole study from CSV and
//! from Parquet, rows per second per core and peak resident memory.
//!
//! ```sh
//! cargo bench -p actuarial --bench morbidity                # 1,000,000 persons, 2015-2024
//! cargo bench -p actuarial --bench morbidity -- 200000      # another population size
//! ```
//!
//! The data are generated once into `target/morbidity-bench/` (and reused while the size is
//! unchanged). Each study runs in a child process so that its peak resident memory (`VmHWM`)
//! is its own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use actuarial::morbidity::study::{StudyOptions, run};
use actuarial::morbidity::synth::{SynthCodes, SynthFormat, SynthOptions, generate};
use actuarial::morbidity::{FinishOptions, Partition, finish, table_csv};

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn rows(path: &Path) -> u64 {
    // Rows are counted by the generator; re-reading them would time the wrong thing.
    let text = std::fs::read_to_string(path.with_file_name("counts.txt")).unwrap_or_default();
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Child: one study, printed as `seconds rows peak_mib`.
fn study(persons: &Path, encounters: &Path) {
    let start = Instant::now();
    let options = StudyOptions {
        first_year: 2019,
        last_year: 2023,
        lookback: 5,
        partition: Partition::WHOLE,
        strict: false,
        code_book: "synthetic".into(),
    };
    let partial = run(persons, encounters, &SynthCodes, &options).expect("study");
    let report = finish(
        &partial,
        &FinishOptions {
            trend: 0.0,
            pricing_year: 2024,
        },
    )
    .expect("finish");
    let table = table_csv(&report);
    let seconds = start.elapsed().as_secs_f64();
    assert_eq!(table.lines().count(), 29);
    println!(
        "{seconds:.3} {} {:.1}",
        rows(persons) + rows(encounters),
        peak_rss_mib()
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("--study") {
        study(Path::new(&args[1]), Path::new(&args[2]));
        return;
    }
    let persons: u64 = args
        .first()
        .and_then(|a| a.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/morbidity-bench")
        .join(persons.to_string());
    let threads = rayon::current_num_threads();
    let mut inputs = Vec::new();
    for format in [SynthFormat::Csv, SynthFormat::Parquet] {
        let ext = format.extension();
        let p = dir.join(format!("persons.{ext}"));
        let e = dir.join(format!("encounters.{ext}"));
        if !(p.exists() && e.exists() && dir.join("counts.txt").exists()) {
            let start = Instant::now();
            let s = generate(
                &dir,
                &SynthOptions {
                    persons,
                    first_year: 2015,
                    last_year: 2024,
                    seed: 1,
                    format,
                },
            )
            .expect("generate");
            let counts = format!(
                "persons.csv {0}\npersons.parquet {0}\nencounters.csv {1}\nencounters.parquet {1}\n\
                 inpatient {2}\npharmacy {3}\n",
                s.persons,
                s.inpatient_encounters + s.pharmacy_encounters,
                s.inpatient_encounters,
                s.pharmacy_encounters
            );
            std::fs::write(dir.join("counts.txt"), counts).expect("counts");
            println!(
                "generated {ext}: {} persons, {} inpatient and {} pharmacy encounters in {:.1} s",
                s.persons,
                s.inpatient_encounters,
                s.pharmacy_encounters,
                start.elapsed().as_secs_f64()
            );
        }
        inputs.push((ext, p, e));
    }
    let exe = std::env::current_exe().expect("own path");
    println!("study 2019-2023 on {threads} threads:");
    for (ext, p, e) in inputs {
        let size: u64 = [&p, &e]
            .iter()
            .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
            .sum();
        let out = Command::new(&exe)
            .args(["--study", &p.to_string_lossy(), &e.to_string_lossy()])
            .output()
            .expect("child");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let v: Vec<f64> = text
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        let (seconds, rows, peak) = (v[0], v[1], v[2]);
        println!(
            "  {ext:<8} {:>7.0} MB  {seconds:>6.2} s  {:>10.0} input rows/s per core  \
             peak RSS {peak:.0} MiB",
            size as f64 / 1e6,
            rows / seconds / threads as f64
        );
    }
}
