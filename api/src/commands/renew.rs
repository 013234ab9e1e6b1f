//! `puhui renew`: next year's price of a product from its own experience.

use std::path::PathBuf;
use std::process::ExitCode;

use actuarial::renewal::{
    Assumptions, DEFAULT_RENEWAL_RATE, DEFAULT_TREND, render_renewal, renewal_html,
};
use chrono::NaiveDate;

use crate::config::DatabaseArgs;

#[derive(clap::Args, Debug)]
#[command(after_long_help = "\
Reads the experience study of the product as of the date (from the database, as `puhui \
experience`), against the pricing scenario the product names. Per pricing group, each \
service month's IBNR-completed count of inpatient claims over the admissions the basis expected \
of its member-years is blended with the basis by Bühlmann-Straub credibility (structural \
parameters estimated from these ratios, reported); the admission rate moves by the blended A/E, \
costs by the trend, and next year's members per group are this year's times the renewal rate. \
The drugs' A/E (payout) is reported but not blended: a user's dispensings recur month after \
month, so a group's months are not independent observations. The renewal scenario is \
written to --out with its morbidity table next to it (NAME-morbidity.csv); the \
standard errors of the groups' credibility estimates become a risk factor on every group's \
frequencies that gives next year's expected payout the variance of the independent group \
estimates, folded into the basis's frequency factor when it has one. The \
scenario is priced, and the change from this year's premium is decomposed into experience, \
mix and selection, trend and margin (the parts sum to the change).

Defaults: renewal rate 0.88 (Huhuibao kept 6.53 M of 7.39 M members from 2021 to 2022; \
docs/domain), trend 0.05 a year (an assumption: no cost series in docs/domain), margin 0.

Example:
  puhui renew --product xiamen-2026 --as-of 2027-03-31 --out scenarios/xiamen-2027.toml")]
pub struct RenewArgs {
    /// Product id.
    #[arg(long, value_name = "ID")]
    pub product: String,
    /// Study date (China time, inclusive), YYYY-MM-DD.
    #[arg(long, value_name = "DATE")]
    pub as_of: NaiveDate,
    /// The renewal scenario to write (its table is written next to it).
    #[arg(long, value_name = "SCENARIO.toml")]
    pub out: PathBuf,
    /// Share of this year's members who renew, in [0, 1].
    #[arg(long, default_value_t = DEFAULT_RENEWAL_RATE, value_parser = unit_interval)]
    pub renewal_rate: f64,
    /// Cost trend to next year (0.05 = 5%), in [-0.5, 1].
    #[arg(long, default_value_t = DEFAULT_TREND, value_parser = trend)]
    pub trend: f64,
    /// Loading on the model premium (0.02 = 2%), in [0, 1].
    #[arg(long, default_value_t = 0.0, value_parser = unit_interval)]
    pub margin: f64,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also write the report as an HTML page to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    #[command(flatten)]
    pub db: DatabaseArgs,
}

fn bounded(s: &str, low: f64, high: f64) -> Result<f64, String> {
    let x: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if x.is_finite() && (low..=high).contains(&x) {
        Ok(x)
    } else {
        Err(format!("{x} is not between {low} and {high}"))
    }
}

fn unit_interval(s: &str) -> Result<f64, String> {
    bounded(s, 0.0, 1.0)
}

fn trend(s: &str) -> Result<f64, String> {
    bounded(s, -0.5, 1.0)
}

pub fn run(args: &RenewArgs) -> Result<ExitCode, String> {
    if args.out.extension().and_then(|e| e.to_str()) != Some("toml") {
        return Err(format!(
            "--out {}: must be a .toml file",
            args.out.display()
        ));
    }
    let (db, _) = args.db.open().map_err(|e| e.to_string())?;
    let mut conn = db.get().map_err(|e| e.to_string())?;
    let assumptions = Assumptions {
        renewal_rate: args.renewal_rate,
        trend: args.trend,
        margin: args.margin,
    };
    let report = crate::renew::run(
        &mut conn,
        &args.product,
        args.as_of,
        &assumptions,
        &crate::renew::Output {
            scenario: &args.out,
        },
    )?;
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(path) = &args.html {
        std::fs::write(path, renewal_html(&report))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    print!("{}", render_renewal(&report));
    Ok(ExitCode::SUCCESS)
}
