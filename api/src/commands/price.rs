//! `puhui price`: price a scenario file by Monte Carlo and print the report.
//!
//! The report goes to stdout, a progress bar to stderr (only for runs that last more than a
//! moment, and only on a terminal), the JSON results to `--json FILE`. A scenario with a
//! `[sweep]` prints its rows as CSV inside the report, or writes them to `--sweep-csv FILE`.
//! `--html FILE` writes the report's charts as one self-contained page; the file is opened
//! before the pricing runs, so a path that cannot be written fails at once.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actuarial::calibration::{self, PublishedError, PublishedProduct};
use actuarial::{PricingError, RunOptions, Scenario, ScenarioError, render_report, sweep_csv};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(clap::Args, Debug)]
pub struct PriceArgs {
    /// Scenario file: TOML, or JSON when the extension is .json. Tables are resolved relative
    /// to it. The format, key by key, is in scenarios/README.md; scenarios/city-default.toml
    /// is a complete example.
    pub scenario: PathBuf,
    /// Also write the results as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Do not show the progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Worker threads (default: all cores). The results do not depend on it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub threads: Option<u16>,
    /// Write the sweep rows as CSV to FILE instead of printing them in the report.
    #[arg(long, value_name = "FILE")]
    pub sweep_csv: Option<PathBuf>,
    /// Also write the report with its charts as one self-contained HTML page to FILE (inline
    /// SVG, no scripts; it opens offline).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Set the model's claimants per member, paid per claimant, shares of claimants
    /// pre-existing and aged 65+ and loss ratio beside what real products published (the
    /// shipped docs/domain/published-aggregates.toml, or --published FILE), in the report, the
    /// JSON (`calibration`) and the page.
    #[arg(long)]
    pub calibration: bool,
    /// Published aggregates to calibrate against, in the form of
    /// docs/domain/published-aggregates.toml (implies --calibration).
    #[arg(long, value_name = "FILE")]
    pub published: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum PriceCommandError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("pricing failed: {0}")]
    Pricing(#[from] PricingError),
    #[error("--sweep-csv: the scenario defines no [sweep]")]
    NoSweep,
    #[error(transparent)]
    Published(#[from] PublishedError),
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("cannot write {path}: {message}")]
    Write { path: String, message: String },
}

/// Show nothing for runs shorter than this.
const PROGRESS_DELAY: Duration = Duration::from_millis(400);
const PROGRESS_TICK: Duration = Duration::from_millis(100);

pub fn run(args: &PriceArgs) -> Result<ExitCode, PriceCommandError> {
    let scenario = Scenario::from_path(&args.scenario)?;
    if args.sweep_csv.is_some() && scenario.sweep().is_none() {
        return Err(PriceCommandError::NoSweep);
    }
    let published = published_aggregates(args)?;
    let mut html = args.html.as_deref().map(HtmlFile::open).transpose()?;
    let progress = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let options = RunOptions {
        threads: args.threads.map(usize::from),
        progress: Some(&progress),
        ..RunOptions::default()
    };
    let total = scenario.progress_total();
    let results = std::thread::scope(|scope| {
        if !args.quiet {
            scope.spawn(|| show_progress(&progress, total, &done));
        }
        let r = actuarial::price(&scenario, &options);
        done.store(true, Ordering::Release);
        r
    });
    let mut results = match results {
        Ok(r) => r,
        Err(e) => {
            if let Some(file) = html.take() {
                file.abandon();
            }
            return Err(e.into());
        }
    };
    if let Some(products) = &published {
        results.calibration = Some(calibration::compare(&results, products));
    }
    if let Some(file) = html {
        file.write(&actuarial::html::pricing_report(&results))?;
    }

    if let Some(path) = &args.json {
        let json = results.to_json_pretty().map_err(|e| write_error(path, e))?;
        std::fs::write(path, json + "\n").map_err(|e| write_error(path, e))?;
    }
    let mut printed = results.clone();
    if let (Some(path), Some(sweep)) = (&args.sweep_csv, &results.sweep) {
        std::fs::write(path, sweep_csv(sweep, &results.currency))
            .map_err(|e| write_error(path, e))?;
        // Written to the file: keep the report short.
        printed.sweep = None;
    }
    print!("{}", render_report(&printed));
    Ok(ExitCode::SUCCESS)
}

/// The published aggregates to compare with, read before the run so a bad file fails at once.
fn published_aggregates(
    args: &PriceArgs,
) -> Result<Option<Vec<PublishedProduct>>, PriceCommandError> {
    match &args.published {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| PriceCommandError::Read {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            Ok(Some(calibration::published::parse(
                &text,
                &path.display().to_string(),
            )?))
        }
        None if args.calibration => Ok(Some(calibration::published::shipped()?)),
        None => Ok(None),
    }
}

/// The page's file, opened for writing before the run. Created here unless it existed.
struct HtmlFile {
    path: PathBuf,
    file: std::fs::File,
    created: bool,
}

impl HtmlFile {
    fn open(path: &Path) -> Result<Self, PriceCommandError> {
        if path.is_dir() {
            return Err(write_error(path, "it is a directory"));
        }
        let created = !path.exists();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| write_error(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            created,
        })
    }

    fn write(mut self, page: &str) -> Result<(), PriceCommandError> {
        use std::io::Write;
        self.file
            .set_len(0)
            .and_then(|()| self.file.write_all(page.as_bytes()))
            .map_err(|e| write_error(&self.path, e))
    }

    /// The run failed: leave no empty page behind.
    fn abandon(self) {
        if self.created {
            drop(self.file);
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn write_error(path: &Path, e: impl std::fmt::Display) -> PriceCommandError {
    PriceCommandError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn show_progress(progress: &AtomicU64, total: u64, done: &AtomicBool) {
    let start = Instant::now();
    while start.elapsed() < PROGRESS_DELAY {
        if done.load(Ordering::Acquire) {
            return;
        }
        std::thread::sleep(PROGRESS_TICK);
    }
    // indicatif draws nothing when stderr is not a terminal.
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "pricing [{bar:40}] {human_pos}/{human_len} portfolio-years, {elapsed} elapsed, eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    while !done.load(Ordering::Acquire) {
        bar.set_position(progress.load(Ordering::Relaxed));
        std::thread::sleep(PROGRESS_TICK);
    }
    bar.finish_and_clear();
}
