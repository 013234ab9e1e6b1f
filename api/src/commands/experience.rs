//! `puhui experience`: the experience study of a product from the database.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use actuarial::Scenario;
use actuarial::experience::{Basis, render_study};
use chrono::NaiveDate;

use crate::config::DatabaseArgs;
use crate::experience;

#[derive(clap::Args, Debug)]
#[command(after_long_help = "\
Exposure (member-years in force to the as-of date) by pricing group (age band at the period \
start, sex, declared pre-existing condition), claims by group and benefit with reversals \
netted, the payment triangle by service month and payment month, chain ladder IBNR with \
Mack's standard error and Bornhuetter-Ferguson with the basis's target loss ratio as the \
prior, the ultimate loss ratio, and actual against expected per group and benefit with 95% \
intervals. The aggregation runs in the database.

The basis is the pricing scenario the product names (`pricing_scenario` in the product file, \
checked against the SHA-256 stored when the product was loaded; the study refuses a file that \
has changed since), or the built-in scenarios/city-default.toml for a product that names none; \
--basis FILE compares with another scenario instead.

Example:
  puhui experience --product xiamen-2026 --as-of 2027-03-31")]
pub struct ExperienceArgs {
    /// Product id.
    #[arg(long, value_name = "ID")]
    pub product: String,
    /// Study date (China time, inclusive), YYYY-MM-DD.
    #[arg(long, value_name = "DATE")]
    pub as_of: NaiveDate,
    /// Print the study as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also write the payment triangle as a `puhui reserve` input (CSV origin, development,
    /// cumulative) to this file.
    #[arg(long, value_name = "FILE")]
    pub triangle_csv: Option<PathBuf>,
    /// Another pricing scenario to compare with (default: the one the product names).
    #[arg(long, value_name = "SCENARIO.toml")]
    pub basis: Option<PathBuf>,
    #[command(flatten)]
    pub db: DatabaseArgs,
}

pub fn run(args: &ExperienceArgs) -> Result<ExitCode, String> {
    let (db, _) = args.db.open().map_err(|e| e.to_string())?;
    let mut conn = db.get().map_err(|e| e.to_string())?;
    let basis: Arc<Basis> = match &args.basis {
        Some(path) => {
            let scenario = Scenario::from_path(path).map_err(|e| e.to_string())?;
            Arc::new(
                Basis::from_scenario(&scenario).map_err(|e| format!("{}: {e}", path.display()))?,
            )
        }
        None => experience::product_basis(&mut conn, &args.product).map_err(|e| e.to_string())?,
    };
    let study =
        experience::run(&mut conn, &args.product, args.as_of, &basis).map_err(|e| e.to_string())?;
    if let Some(path) = &args.triangle_csv {
        let mut csv = String::from("origin,development,cumulative\n");
        for cell in &study.triangle {
            csv.push_str(&format!(
                "{},{},{}\n",
                cell.service_month, cell.development, cell.cumulative
            ));
        }
        std::fs::write(path, csv).map_err(|e| format!("--triangle-csv {}: {e}", path.display()))?;
    }
    if args.json {
        let text = serde_json::to_string_pretty(&study).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        print!("{}", render_study(&study));
    }
    Ok(ExitCode::SUCCESS)
}
