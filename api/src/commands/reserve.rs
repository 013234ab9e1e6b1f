//! `puhui reserve`: claim reserves from a development triangle, by the chain ladder with Mack's
//! standard errors or by Bornhuetter-Ferguson.
//!
//! The table goes to stdout, the JSON result to `--json FILE`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use actuarial::reserve::{Reserve, ReserveError, Triangle, parse_premiums, render_reserve};

#[derive(clap::Args, Debug)]
#[command(after_long_help = "\
The triangle is a long-form CSV, one row per cell: `origin` (e.g. accident year or service \
month), `development` (1 = the origin period itself, 2 = the next, ...) and either `cumulative` \
(paid to date) or `incremental` (paid in the period), as the header says. Every origin needs \
developments 1, 2, ... up to its latest with no hole, each once.

Examples:
  puhui reserve docs/examples/raa.csv
  puhui reserve docs/examples/raa.csv --json raa.json
  puhui reserve docs/examples/raa.csv --method bf --expected-loss-ratio 0.85 \\
      --premium docs/examples/raa-premium.csv")]
pub struct ReserveArgs {
    /// Development triangle, long-form CSV (columns origin, development, cumulative or
    /// incremental).
    pub triangle: PathBuf,
    /// Also write the result as JSON to FILE (ldf, origins[] with origin, latest, ultimate,
    /// ibnr, mack_se; ibnr_total, ultimate_total, mack_se_total).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// chain-ladder: volume-weighted chain ladder with Mack (1993) standard errors. bf:
    /// Bornhuetter-Ferguson on the chain ladder's pattern, with a prior of premium x expected
    /// loss ratio (needs --expected-loss-ratio and --premium).
    #[arg(long, value_enum, default_value = "chain-ladder")]
    pub method: ReserveMethod,
    /// Bornhuetter-Ferguson: the expected (prior) loss ratio, e.g. 0.85.
    #[arg(long, value_name = "RATIO")]
    pub expected_loss_ratio: Option<f64>,
    /// Bornhuetter-Ferguson: CSV of the premium per origin (columns origin, premium).
    #[arg(long, value_name = "FILE")]
    pub premium: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReserveMethod {
    ChainLadder,
    Bf,
}

#[derive(Debug, thiserror::Error)]
pub enum ReserveCommandError {
    #[error(transparent)]
    Reserve(#[from] ReserveError),
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("cannot write {path}: {message}")]
    Write { path: String, message: String },
    #[error("--method bf needs --{0}")]
    MissingBfInput(&'static str),
    #[error("--{0} is only for --method bf")]
    BfInputWithoutBf(&'static str),
}

pub fn run(args: &ReserveArgs) -> Result<ExitCode, ReserveCommandError> {
    let text = read(&args.triangle)?;
    let name = args.triangle.display().to_string();
    let (triangle, _) = Triangle::from_csv(&name, &text).map_err(ReserveError::from)?;
    let reserve = match args.method {
        ReserveMethod::ChainLadder => {
            if args.expected_loss_ratio.is_some() {
                return Err(ReserveCommandError::BfInputWithoutBf("expected-loss-ratio"));
            }
            if args.premium.is_some() {
                return Err(ReserveCommandError::BfInputWithoutBf("premium"));
            }
            Reserve::chain_ladder(&triangle)?
        }
        ReserveMethod::Bf => {
            let elr = args
                .expected_loss_ratio
                .ok_or(ReserveCommandError::MissingBfInput("expected-loss-ratio"))?;
            let path = args
                .premium
                .as_ref()
                .ok_or(ReserveCommandError::MissingBfInput("premium"))?;
            let premiums = parse_premiums(&path.display().to_string(), &read(path)?)
                .map_err(ReserveError::from)?;
            Reserve::bornhuetter_ferguson(&triangle, &premiums, elr)?
        }
    };
    if let Some(path) = &args.json {
        let json = reserve.to_json_pretty().map_err(|e| write_error(path, e))?;
        std::fs::write(path, json + "\n").map_err(|e| write_error(path, e))?;
    }
    print!("{}", render_reserve(&reserve));
    Ok(ExitCode::SUCCESS)
}

fn read(path: &Path) -> Result<String, ReserveCommandError> {
    std::fs::read_to_string(path).map_err(|e| ReserveCommandError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

fn write_error(path: &Path, e: impl std::fmt::Display) -> ReserveCommandError {
    ReserveCommandError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}
