//! The pricing report as one self-contained HTML page: the headline figures as a table and the
//! charts as inline SVG drawn with plotters. No scripts, and nothing fetched: the page opens
//! offline. Pure: results in, a `String` out; the command line and the API write or serve it.
//!
//! One function per section; a section the run has no data for says so in one line.

use std::fmt::Write;

use crate::results::PricingResults;

pub(crate) mod bars;
mod distribution;
pub(crate) mod plot;
mod renewal;
mod sweep;

/// The sections of the page, in order: (element id, title). Every page has all of them.
pub const SECTIONS: [(&str, &str); 7] = [
    ("density", "Distribution of the annual total"),
    ("exceedance", "Exceedance curve in return periods"),
    ("loss-ratio", "Loss ratio at the premium"),
    ("cross-subsidy", "Cross-subsidy by group"),
    ("risk-factors", "Variance explained by the risk factors"),
    ("sweep", "Sweep"),
    ("adverse-selection", "Adverse selection over renewal years"),
];

pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em auto;max-width:960px;color:#222}\
table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #bbb;padding:3px 8px;\
text-align:right}th{background:#eee}td:first-child,th:first-child,td:last-child,th:last-child{text-align:left}\
.wide{overflow-x:auto;font-size:0.85em}.defs{font-size:0.9em;color:#444}.na{color:#666;font-style:italic}svg{display:block}";

/// The whole page.
pub fn pricing_report(r: &PricingResults) -> String {
    let mut page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Pricing report: {name}</title><style>{STYLE}</style></head><body>\
         <h1>Pricing report: {name}</h1>",
        name = escape(&r.name)
    );
    page += &headline(r);
    page += &figures_tables(r);
    if let Some(c) = &r.calibration {
        page += "<section id=\"calibration\"><h2>Calibration against published aggregates</h2>";
        page += &crate::calibration::render_html(c);
        page += "</section>";
    }
    let bodies = [
        density_section(r),
        exceedance_section(r),
        loss_ratio_section(r),
        cross_subsidy_section(r),
        risk_factor_section(r),
        sweep_section(r),
        adverse_selection_section(r),
    ];
    for ((id, title), body) in SECTIONS.iter().zip(bodies) {
        let _ = write!(
            page,
            "<section id=\"{id}\"><h2>{title}</h2>{body}</section>"
        );
    }
    page += "</body></html>\n";
    page
}

/// The tables under the headline: the loss ratio at the premium the scenario states, the split
/// of the total by benefit, and the percentiles of the total and of the loss ratio (the text
/// report's tables, as HTML).
fn figures_tables(r: &PricingResults) -> String {
    use crate::engine::{PERCENTILE_LEVELS, level_key};
    let c = escape(&r.currency);
    let pct = |x: f64| format!("{:.1}%", 100.0 * x);
    let mut html = String::new();
    if let Some(l) = &r.premium.at_premium {
        let _ = write!(
            html,
            "<h2 id=\"stated-premium\">At the stated premium</h2><table><tbody>\
             <tr><td>stated flat premium per member</td><td>{:.2} {c}</td><td>{} of the recommended</td></tr>\
             <tr><td>expected loss ratio</td><td>{}</td><td>+- {:.2}%, std {}</td></tr>\
             <tr><td>P(loss ratio &gt; 100%)</td><td>{:.2}%</td><td>+- {:.2}%</td></tr>\
             </tbody></table>",
            l.premium_per_member,
            pct(l.to_recommended),
            pct(l.expected_loss_ratio),
            100.0 * l.expected_loss_ratio_se,
            pct(l.loss_ratio_std),
            100.0 * l.prob_loss_ratio_above_100,
            100.0 * l.prob_loss_ratio_above_100_se,
        );
    }
    if let Some(b) = &r.portfolio.by_benefit {
        html += "<h2 id=\"benefit-split\">The total by benefit</h2><table><thead><tr>\
                 <th>benefit</th><th>mean</th><th>share of the mean</th><th>std</th></tr></thead><tbody>";
        for (name, part) in [
            ("inpatient", b.inpatient.as_ref()),
            ("specialty drug", b.specialty_drug.as_ref()),
        ] {
            if let Some(t) = part {
                let _ = write!(
                    html,
                    "<tr><td>{name}</td><td>{:.0}</td><td>{}</td><td>{:.0}</td></tr>",
                    t.mean,
                    pct(t.share_of_mean),
                    t.std
                );
            }
        }
        let _ = write!(
            html,
            "</tbody></table><p class=\"defs\">Annual payout of each benefit in {c}; the std of \
             each benefit's total on its own (the two are not additive).</p>"
        );
    }
    let p = &r.portfolio;
    if !p.percentiles.is_empty() {
        let columns: Vec<(String, &crate::results::LossRatioAtPremium)> = [
            r.premium
                .loss_ratio
                .as_ref()
                .map(|l| (format!("LR at {:.2}", l.premium_per_member), l)),
            r.premium
                .at_premium
                .as_ref()
                .map(|l| (format!("LR at {:.2} (stated)", l.premium_per_member), l)),
        ]
        .into_iter()
        .flatten()
        .collect();
        html += "<h2 id=\"percentiles\">Percentiles</h2><table><thead><tr><th>percentile</th>\
                 <th>total payout</th>";
        for (name, _) in &columns {
            let _ = write!(html, "<th>{}</th>", escape(name));
        }
        html += "</tr></thead><tbody>";
        for level in PERCENTILE_LEVELS {
            let k = level_key(level);
            let Some(total) = p.percentiles.get(&k) else {
                continue;
            };
            let _ = write!(html, "<tr><td>{}</td><td>{total:.0}</td>", pct(level));
            for (_, l) in &columns {
                let ratio = l.loss_ratio_percentiles.get(&k).copied().unwrap_or(0.0);
                let _ = write!(html, "<td>{}</td>", pct(ratio));
            }
            html += "</tr>";
        }
        let _ = write!(
            html,
            "</tbody></table><p class=\"defs\">The annual total ({c}) not exceeded in that share \
             of years, and the loss ratio (LR: total payout / (flat premium x members)) at the \
             recommended premium and, when the scenario states one, at that premium.</p>"
        );
    }
    html
}

/// The one line of a section that does not apply to this run.
fn not_applicable(why: &str) -> String {
    format!("<p class=\"na\">{}</p>", escape(why))
}

const NO_DISTRIBUTION: &str =
    "Not available: these results were stored without the distribution of the total.";

fn density_section(r: &PricingResults) -> String {
    let Some(d) = &r.distribution else {
        return not_applicable(NO_DISTRIBUTION);
    };
    let mut html = distribution::density_chart(r, d);
    if r.method.name == "exact" && r.risk_factors.is_some() {
        html += "<p class=\"defs\">With risk factors the exact total is a mixture over the \
                 factors' nodes (each factor's distribution cut into strata, one value per \
                 stratum): the peaks of the density are nodes of the factors.</p>";
    }
    html
}

fn exceedance_section(r: &PricingResults) -> String {
    match &r.distribution {
        Some(d) => distribution::exceedance_chart(r, d),
        None => not_applicable(NO_DISTRIBUTION),
    }
}

fn loss_ratio_section(r: &PricingResults) -> String {
    match &r.distribution {
        Some(d) if r.premium.gross_premium > 0.0 => distribution::loss_ratio_chart(r, d),
        Some(_) => not_applicable("Not applicable: the gross premium is zero."),
        None => not_applicable(NO_DISTRIBUTION),
    }
}

fn cross_subsidy_section(r: &PricingResults) -> String {
    if r.premium
        .cross_subsidy
        .iter()
        .filter(|g| g.members > 0)
        .count()
        < 2
    {
        return not_applicable("Not applicable: fewer than two groups with members.");
    }
    bars::cross_subsidy_chart(r)
}

fn risk_factor_section(r: &PricingResults) -> String {
    match &r.risk_factors {
        Some(f) if !f.factors.is_empty() => bars::variance_chart(f),
        _ => not_applicable("Not applicable: the scenario has no risk factors."),
    }
}

fn sweep_section(r: &PricingResults) -> String {
    match &r.sweep {
        Some(s) if !s.rows.is_empty() => {
            sweep::sweep_table(s, &r.currency) + &sweep::sweep_heat_map(s)
        }
        _ => not_applicable("Not applicable: the scenario has no sweep."),
    }
}

fn adverse_selection_section(r: &PricingResults) -> String {
    match &r.adverse_selection {
        Some(a) if !a.renewal.is_empty() => renewal::renewal_chart(&a.renewal, &r.currency),
        Some(_) => not_applicable(
            "Not applicable: the renewal path is empty (no pool forms at the premium).",
        ),
        None => not_applicable("Not applicable: the scenario does not analyse adverse selection."),
    }
}

/// The headline figures, with their Monte Carlo standard errors or the exact method's bounds.
fn headline(r: &PricingResults) -> String {
    let p = &r.premium;
    let exact = r.method.name == "exact";
    let c = escape(&r.currency);
    let pct = |x: f64| format!("{:.2}%", 100.0 * x);
    let money = |x: f64| format!("{x:.2}");
    let rows = [
        (
            "members",
            r.members.to_string(),
            String::new(),
            "members priced",
        ),
        (
            "expected annual payout",
            money(p.expected_payout),
            money(p.expected_payout_se),
            "expected total payout of the portfolio in a year",
        ),
        (
            "gross premium",
            money(p.gross_premium),
            money(p.gross_premium_se),
            "expected payout + risk margin + expenses, for the portfolio",
        ),
        (
            "flat premium per member",
            money(p.flat_premium_per_member),
            money(p.flat_premium_per_member_se),
            "the gross premium divided by the members, the same for every member",
        ),
        (
            "expected loss ratio",
            pct(p.expected_loss_ratio),
            pct(p.expected_loss_ratio_se),
            "expected payout / gross premium",
        ),
        (
            "P(loss ratio > 100%)",
            pct(p.prob_loss_ratio_above_100),
            pct(p.prob_loss_ratio_above_100_se),
            "probability that a year's payout exceeds the gross premium",
        ),
    ];
    let error_name = if exact {
        "numerical error"
    } else {
        "Monte Carlo standard error"
    };
    let mut html = format!(
        "<p>Method: <b>{}</b>. {}</p><table><thead><tr><th>figure</th><th>value</th>\
         <th>{error_name}</th><th>meaning</th></tr></thead><tbody>",
        escape(&r.method.name),
        escape(&r.method.description)
    );
    for (figure, value, error, meaning) in rows {
        let _ = write!(
            html,
            "<tr><td>{figure}</td><td>{value}</td><td>{error}</td><td>{meaning}</td></tr>"
        );
    }
    html += "</tbody></table>";
    let _ = write!(
        html,
        "<p class=\"defs\"><b>figure</b>: what is reported. <b>value</b>: its value (money in \
         {c}, a year). <b>{error_name}</b>: {}. <b>meaning</b>: how the figure is defined.</p>",
        if exact {
            "a bound on the error of the exact lattice computation (lattice span, wrapped-around \
             mass, discretisation), in the value's unit"
        } else {
            "the standard error of the Monte Carlo estimate, in the value's unit"
        }
    );
    if let Some(e) = &r.method.exact_error {
        let _ = write!(
            html,
            "<p class=\"defs\">Lattice: {} points of span {:.2} {c}; wrapped-around mass at most \
             {:.1e}; rounding adds at most {:.1e} of the variance.</p>",
            e.lattice_points, e.lattice_span, e.aliasing_mass, e.rounding_variance
        );
    } else {
        let _ = write!(
            html,
            "<p class=\"defs\">{} simulated portfolio-years, seed {}.</p>",
            r.simulations, r.seed
        );
    }
    html
}
