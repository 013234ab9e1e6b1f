//! The calibration section of the text report and of the HTML page: one row per quantity, the
//! model beside each product, then each product's period, derivations and sources.

use std::fmt::Write;

use super::CalibrationResult;
use crate::html::escape;
use crate::report::money;

/// How a quantity reads to people, and whether it is a share (shown in percent).
fn label(quantity: &str) -> (&'static str, bool) {
    match quantity {
        "claimants_per_member" => ("claimants per member", true),
        "paid_per_claimant" => ("paid per claimant", false),
        "paid_per_member" => ("paid per member", false),
        "preexisting_share_of_claimants" => ("claimants pre-existing", true),
        "aged_65_plus_share_of_claimants" => ("claimants aged 65+", true),
        "loss_ratio" => ("loss ratio", true),
        "premium_per_member" => ("premium per member", false),
        _ => ("?", false),
    }
}

fn show(value: Option<f64>, share: bool) -> String {
    match value {
        None => "-".into(),
        Some(x) if share => format!("{:.2}%", 100.0 * x),
        Some(x) => money(x, 0),
    }
}

/// (label, model, one cell per product) for every quantity.
fn cells(c: &CalibrationResult) -> Vec<(&'static str, String, Vec<String>)> {
    c.rows
        .iter()
        .map(|row| {
            let (name, share) = label(&row.quantity);
            let published = c
                .products
                .iter()
                .map(|p| {
                    let v = row.published.iter().find(|v| v.product == p.id);
                    show(v.map(|v| v.value), share)
                })
                .collect();
            (name, show(row.model, share), published)
        })
        .collect()
}

/// The text report's section.
pub fn render_text(c: &CalibrationResult) -> String {
    let mut o = String::from("\nCalibration: the model beside published aggregates\n");
    let _ = write!(o, "{:<24} {:>12}", "", "model");
    for p in &c.products {
        let _ = write!(o, " {:>24}", p.id);
    }
    o.push('\n');
    for (name, model, published) in cells(c) {
        let _ = write!(o, "{name:<24} {model:>12}");
        for v in published {
            let _ = write!(o, " {v:>24}");
        }
        o.push('\n');
    }
    o.push_str(
        "The model: a claimant is a member-year with a payout above zero on any benefit; loss \
         ratio and premium at the premium this run prices.\n",
    );
    for p in &c.products {
        let _ = writeln!(o, "{}: {}, {}. {}", p.id, p.name, p.period, p.notes);
        for row in &c.rows {
            if let Some(v) = row.published.iter().find(|v| v.product == p.id)
                && v.basis != "as published"
            {
                let _ = writeln!(o, "  {}: {}", label(&row.quantity).0, v.basis);
            }
        }
        for s in &p.sources {
            let _ = writeln!(o, "  source: {s}");
        }
    }
    o
}

/// The HTML page's section (a table and the sources).
pub fn render_html(c: &CalibrationResult) -> String {
    let mut h = String::from("<table><tr><th>quantity</th><th>model</th>");
    for p in &c.products {
        let _ = write!(h, "<th>{}</th>", escape(&p.name));
    }
    h.push_str("</tr>");
    for (name, model, published) in cells(c) {
        let _ = write!(h, "<tr><td>{name}</td><td>{model}</td>");
        for v in published {
            let _ = write!(h, "<td>{v}</td>");
        }
        h.push_str("</tr>");
    }
    h.push_str("</table><ul class=\"defs\">");
    for p in &c.products {
        let _ = write!(
            h,
            "<li>{}: {}. {}<ul>",
            escape(&p.name),
            escape(&p.period),
            escape(&p.notes)
        );
        for s in &p.sources {
            let _ = write!(h, "<li>{}</li>", escape(s));
        }
        h.push_str("</ul></li>");
    }
    h.push_str("</ul>");
    h
}
