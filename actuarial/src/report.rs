//! The text report and the sweep CSV.

use std::fmt::Write;

use crate::engine::level_key;
use crate::results::{FactorSummary, PricingResults};
use crate::scenario::RiskMeasure;

mod adverse;
mod distribution;
mod sweep;

pub use sweep::sweep_csv;

/// Thousands-separated amount with `decimals` places.
pub fn money(x: f64, decimals: usize) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    let s = format!("{:.*}", decimals, x.abs());
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i.to_string(), Some(f.to_string())),
        None => (s.clone(), None),
    };
    let mut grouped = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    let sign = if x < 0.0 && s.chars().any(|c| c.is_ascii_digit() && c != '0') {
        "-"
    } else {
        ""
    };
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

pub(crate) fn pct(x: f64, decimals: usize) -> String {
    format!("{:.*}%", decimals, 100.0 * x)
}

/// "1 group", "2 groups".
fn count(n: usize, noun: &str) -> String {
    format!(
        "{} {noun}{}",
        money(n as f64, 0),
        if n == 1 { "" } else { "s" }
    )
}

/// Ids of the groups with no members: left out of the per-group tables and named once.
fn empty_groups(r: &PricingResults) -> Vec<&str> {
    r.groups
        .iter()
        .filter(|g| g.members == 0)
        .map(|g| g.id.as_str())
        .collect()
}

fn measure_name(m: RiskMeasure) -> &'static str {
    match m {
        RiskMeasure::Tvar => "TVaR",
        RiskMeasure::Var => "VaR",
    }
}

/// Human-readable report: per-group and portfolio tables, the premium build-up, the
/// cross-subsidy table, and adverse selection and sweep results when present. Amounts per member
/// are in currency units to 2 decimals; portfolio amounts to whole units.
pub fn render_report(r: &PricingResults) -> String {
    let mut o = String::new();
    header(&mut o, r);
    groups_table(&mut o, r);
    portfolio(&mut o, r);
    distribution::percentile_table(&mut o, r);
    if let Some(f) = &r.risk_factors {
        risk_factors(&mut o, r, f);
    }
    premium_build_up(&mut o, r);
    cross_subsidy(&mut o, r);
    if let Some(a) = &r.adverse_selection {
        adverse::adverse_selection(&mut o, a);
    }
    if let Some(s) = &r.sweep {
        let _ = writeln!(
            o,
            "\nSweep ({} portfolio-years per row; VaR/TVaR at {})",
            money(s.simulations as f64, 0),
            pct(s.level, 1)
        );
        o.push_str(&sweep_csv(s, &r.currency));
    }
    if let Some(c) = &r.calibration {
        o.push_str(&crate::calibration::render_text(c));
    }
    method(&mut o, r);
    o
}

/// Width of the group-id column.
fn id_width(r: &PricingResults) -> usize {
    r.groups
        .iter()
        .map(|g| g.id.len())
        .max()
        .unwrap_or(2)
        .clamp(5, 40)
}

fn header(o: &mut String, r: &PricingResults) {
    let cur = &r.currency;
    let _ = writeln!(o, "Pricing report: {}", r.name);
    let runs = if r.method.name == "exact" {
        "exact distribution (no simulation)".to_string()
    } else {
        format!(
            "seed {}  simulations {} portfolio-years",
            r.seed,
            money(r.simulations as f64, 0)
        )
    };
    let _ = writeln!(
        o,
        "{runs}  scenario sha256 {}  version {}  commit {}",
        r.scenario_hash, r.version, r.git_commit
    );
    let plus_minus = if r.method.name == "exact" {
        "method: exact (FFT); +- is the numerical error: the lattice span, the wrapped-around mass and, for VaR, TVaR and probabilities, twice the normal estimate of what the lattice's rounding moves them"
    } else {
        "method: Monte Carlo; +- is one standard error of the estimate"
    };
    let empty = empty_groups(r);
    let left_out = if empty.is_empty() {
        String::new()
    } else {
        format!(
            " ({} with no members left out of the tables: {})",
            empty.len(),
            empty.join(", ")
        )
    };
    let _ = writeln!(
        o,
        "{} members in {}{left_out}; amounts in {cur}; {plus_minus}\n",
        money(r.members as f64, 0),
        count(r.groups.len(), "group"),
    );
}

fn groups_table(o: &mut String, r: &PricingResults) {
    let id_w = id_width(r);
    let _ = writeln!(o, "Expected payout per member-year, by group");
    let _ = writeln!(
        o,
        "{:<id_w$} {:>11} {:>3} {:>17} {:>10} {:>13} {:>10} {:>10}",
        "group", "members", "pre", "mean (+-)", "std", "P(any pay)", "inpatient", "drug"
    );
    for g in r.groups.iter().filter(|g| g.members > 0) {
        let _ = writeln!(
            o,
            "{:<id_w$} {:>11} {:>3} {:>17} {:>10} {:>13} {:>10} {:>10}",
            g.id,
            money(g.members as f64, 0),
            if g.preexisting { "yes" } else { "" },
            format!(
                "{} +- {}",
                money(g.stats.mean_payout_per_member, 2),
                money(g.stats.mean_payout_per_member_se, 2)
            ),
            money(g.stats.std_payout_per_member, 0),
            pct(g.stats.prob_any_payout, 3),
            g.by_benefit
                .inpatient
                .map_or("-".into(), |s| money(s.mean_payout_per_member, 2)),
            g.by_benefit
                .specialty_drug
                .map_or("-".into(), |s| money(s.mean_payout_per_member, 2)),
        );
    }
    let _ = writeln!(
        o,
        "  members: enrolled; pre: members with a pre-existing condition; mean: expected payout \
         per member and year (+- as in the line above); std: standard deviation of one member's annual payout; P(any pay): \
         share of members paid anything in a year; inpatient, drug: the mean by benefit \
         (- where the benefit is not priced)."
    );
}

fn portfolio(o: &mut String, r: &PricingResults) {
    let p = &r.portfolio;
    let _ = writeln!(
        o,
        "\nPortfolio annual payout ({} members)",
        money(p.members as f64, 0)
    );
    let _ = writeln!(
        o,
        "  mean  {:>18} +- {}",
        money(p.mean, 0),
        money(p.mean_se, 0)
    );
    let _ = writeln!(
        o,
        "  std   {:>18} +- {}",
        money(p.std, 0),
        money(p.std_se, 0)
    );
    for (level, var) in &p.var {
        let l: f64 = level.parse().unwrap_or(0.0);
        let _ = writeln!(
            o,
            "  {:<6} VaR {:>18} +- {:<12} TVaR {:>18} +- {}",
            pct(l, 1),
            money(*var, 0),
            money(p.var_se.get(level).copied().unwrap_or(0.0), 0),
            money(p.tvar.get(level).copied().unwrap_or(0.0), 0),
            money(p.tvar_se.get(level).copied().unwrap_or(0.0), 0),
        );
    }
    distribution::benefit_split(o, r);
    let _ = writeln!(
        o,
        "  VaR at p: the total not exceeded in a share p of years (1 in 1 / (1 - p) years is \
         worse); TVaR: the mean total in the years beyond the VaR."
    );
}

fn risk_factors(o: &mut String, r: &PricingResults, f: &FactorSummary) {
    let share = |v: f64| {
        if f.total_variance > 0.0 {
            pct(v / f.total_variance, 1)
        } else {
            "-".into()
        }
    };
    let _ = writeln!(
        o,
        "\nRisk factors (one value per factor and year, common to the members they apply to)"
    );
    let _ = writeln!(
        o,
        "  {:<20} {:>10} {:>6} {:>9}  applies to",
        "factor", "family", "cv", "variance"
    );
    for x in &f.factors {
        let _ = writeln!(
            o,
            "  {:<20} {:>10} {:>6} {:>9}  {} ({})",
            x.id,
            x.distribution,
            pct(x.cv, 1),
            pct(x.variance_explained, 1),
            x.applies_to.join(", "),
            count(x.groups, "group")
        );
    }
    let _ = writeln!(
        o,
        "  family: the factor's distribution (mean 1 unless stated); cv: its coefficient of \
         variation; variance: the share of the variance of the portfolio total it explains."
    );
    let _ = writeln!(
        o,
        "  member-level (process) risk explains {} of the variance of the total",
        share(f.process_variance)
    );
    let p = &f.process_risk;
    let _ = writeln!(
        o,
        "  without the factors: mean {}  std {} ({} of the mean)  VaR 99.5% {}  TVaR 99.5% {}",
        money(p.mean, 0),
        money(p.std, 0),
        pct(if p.mean > 0.0 { p.std / p.mean } else { 0.0 }, 2),
        money(p.var.get("0.995").copied().unwrap_or(0.0), 0),
        money(p.tvar.get("0.995").copied().unwrap_or(0.0), 0),
    );
    let _ = writeln!(
        o,
        "  with the factors:    mean {}  std {} ({} of the mean)",
        money(r.portfolio.mean, 0),
        money(r.portfolio.std, 0),
        pct(
            if r.portfolio.mean > 0.0 {
                r.portfolio.std / r.portfolio.mean
            } else {
                0.0
            },
            2
        ),
    );
}

fn premium_build_up(o: &mut String, r: &PricingResults) {
    let pr = &r.premium;
    let n = r.members.max(1) as f64;
    let _ = writeln!(o, "\nPremium build-up (flat premium, per member)");
    let _ = writeln!(
        o,
        "  expected payout                     {:>12} +- {}",
        money(pr.expected_payout / n, 2),
        money(pr.expected_payout_se / n, 2)
    );
    let _ = writeln!(
        o,
        "  risk margin                         {:>12}   ({} x ({} {} - mean) = {} x {})",
        money(pr.risk_margin / n, 2),
        pct(pr.cost_of_capital, 1),
        measure_name(pr.risk_measure),
        pct(pr.level, 1),
        pct(pr.cost_of_capital, 1),
        money(pr.risk_measure_value - pr.expected_payout, 0)
    );
    let _ = writeln!(
        o,
        "  expenses                            {:>12}   ({} of gross premium)",
        money(pr.expenses / n, 2),
        pct(pr.expense_ratio, 1)
    );
    let _ = writeln!(
        o,
        "  gross flat premium                  {:>12} +- {}",
        money(pr.flat_premium_per_member, 2),
        money(pr.flat_premium_per_member_se, 2)
    );
    let _ = writeln!(
        o,
        "  portfolio gross premium             {:>12}",
        money(pr.gross_premium, 0)
    );
    let _ = writeln!(
        o,
        "  expected loss ratio                 {:>12}",
        pct(pr.expected_loss_ratio, 1)
    );
    let _ = writeln!(
        o,
        "  P(loss ratio > 100%)                {:>12} +- {}",
        pct(pr.prob_loss_ratio_above_100, 2),
        pct(pr.prob_loss_ratio_above_100_se, 2)
    );
    if let Some(t) = &pr.target {
        let _ = writeln!(
            o,
            "  at target loss ratio {:<6}         {:>12} +- {}  (margin after expenses {} per member, {:.2}x the risk margin; P(loss ratio > 100%) {})",
            pct(t.target_loss_ratio, 1),
            money(t.premium_per_member, 2),
            money(t.premium_per_member_se, 2),
            money(t.margin_per_member, 2),
            t.margin_to_risk_margin,
            pct(t.prob_loss_ratio_above_100, 2)
        );
    }
    if let Some(l) = &pr.at_premium {
        distribution::at_stated_premium(o, l);
    }
}

fn cross_subsidy(o: &mut String, r: &PricingResults) {
    let id_w = id_width(r);
    let pr = &r.premium;
    let _ = writeln!(
        o,
        "\nCross-subsidy under the flat premium (subsidy > 0: the group pays for others)"
    );
    let _ = writeln!(
        o,
        "{:<id_w$} {:>11} {:>12} {:>12} {:>10} {:>9} {:>16}",
        "group", "members", "pure prem.", "risk-rated", "flat", "loss r.", "subsidy/year"
    );
    for c in pr.cross_subsidy.iter().filter(|c| c.members > 0) {
        let _ = writeln!(
            o,
            "{:<id_w$} {:>11} {:>12} {:>12} {:>10} {:>9} {:>16}",
            c.id,
            money(c.members as f64, 0),
            money(c.pure_premium_per_member, 2),
            money(c.risk_rated_premium_per_member, 2),
            money(c.flat_premium_per_member, 2),
            pct(c.loss_ratio, 1),
            money(c.subsidy, 0)
        );
    }
    let _ = writeln!(
        o,
        "  pure prem.: the group's expected payout per member; risk-rated: the premium the group \
         would pay if priced on its own with the same loadings (flat x pure prem. / portfolio \
         pure prem.); flat: the premium every member pays; loss r.: pure prem. / flat; \
         subsidy/year: (flat - risk-rated) x members, > 0 when the group pays for others."
    );
}

fn method(o: &mut String, r: &PricingResults) {
    let m = &r.method;
    let _ = writeln!(o, "\nMethod: {}", m.description);
    if m.name == "monte_carlo" {
        let _ = writeln!(
            o,
            "Random numbers: {}, {} portfolio-years per block.",
            m.rng, m.block_years
        );
    }
    let _ = writeln!(
        o,
        "The grid of amounts per member moves expected payouts by at most {:.2}% and the chance \
         of any payout by at most {:.1e} (bounded by their difference from a grid of twice the step).",
        100.0 * m.max_relative_discretisation_error,
        m.max_prob_discretisation_error
    );
}

#[cfg(test)]
mod tests {
    use super::money;

    #[test]
    fn money_groups_thousands() {
        assert_eq!(money(1_234_567.891, 2), "1,234,567.89");
        assert_eq!(money(999.0, 0), "999");
        assert_eq!(money(-1000.0, 0), "-1,000");
        assert_eq!(money(-0.001, 2), "0.00");
        assert_eq!(money(0.5, 2), "0.50");
    }
}
