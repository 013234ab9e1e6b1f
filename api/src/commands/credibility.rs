//! `puhui credibility FILE.csv`: Bühlmann-Straub credibility on any table of ratios.

use std::path::PathBuf;
use std::process::ExitCode;

use actuarial::credibility::{buhlmann_straub, parse_observations};

#[derive(Debug, clap::Args)]
#[command(long_about = ABOUT)]
pub struct CredibilityArgs {
    /// CSV with the columns group, period, value, weight (others are ignored).
    pub file: PathBuf,
    /// Print the results as JSON (collective, within_variance, between_variance, k, groups[])
    /// instead of a table.
    #[arg(long)]
    pub json: bool,
}

const ABOUT: &str = "\
Bühlmann-Straub credibility on any table with the columns group, period, value and weight, \
where value is a ratio per unit of weight (claims per person-year, cost per claim) and weight \
its volume (person-years, claims).

The structural parameters are estimated by the unbiased estimators of Bühlmann and Gisler \
(2005): the within-group variance pooled over the groups, the between-group variance by the \
weighted formula (set to 0, and then every Z to 0, when negative), k = within / between, \
Z = weight / (weight + k) for each group, and the collective mean weighted by Z. Rows of \
weight 0 are ignored; a group left without weight takes the collective mean.

Example (R actuar's Hachemeister data in this layout reproduces cm(~state, ...)):
  puhui credibility claims_by_state.csv --json";

pub fn run(args: &CredibilityArgs) -> Result<ExitCode, String> {
    let name = args.file.display().to_string();
    let text = std::fs::read_to_string(&args.file).map_err(|e| format!("{name}: {e}"))?;
    let observations = parse_observations(&name, &text).map_err(|e| e.to_string())?;
    let report = buhlmann_straub(&observations).map_err(|e| format!("{name}: {e}"))?;
    if args.json {
        let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        println!("{json}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("collective mean     {:.6}", report.collective);
    println!("within variance     {:.6}", report.within_variance);
    println!("between variance    {:.6}", report.between_variance);
    match report.k {
        Some(k) => println!("k                   {k:.6}"),
        None => println!("k                   infinite (no variance between groups: every Z = 0)"),
    }
    println!();
    println!(
        "{:<20} {:>14} {:>14} {:>8} {:>14}",
        "group", "weight", "mean", "Z", "estimate"
    );
    for g in &report.groups {
        println!(
            "{:<20} {:>14.4} {:>14} {:>8.4} {:>14.6}",
            g.group,
            g.weight,
            g.mean.map_or("-".to_string(), |m| format!("{m:.6}")),
            g.z,
            g.estimate
        );
    }
    Ok(ExitCode::SUCCESS)
}
