//! The renewal as text, for `puhui renew`.

use std::fmt::Write as _;

use serde::Serialize;

use super::{Assumptions, Blend, Decomposition, GroupCredibility, StepPremiums};

/// Everything `puhui renew` reports (also its `--json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RenewalReport {
    pub product_id: String,
    pub as_of: String,
    pub basis: String,
    pub scenario: String,
    pub table: String,
    pub assumptions: Assumptions,
    pub credibility: Blend,
    pub steps: StepPremiums,
    pub decomposition: Decomposition,
}

/// The columns of the group table: (text heading, page heading).
const COLUMNS: [(&str, &str); 13] = [
    ("group", "group"),
    ("members", "members"),
    ("next", "next year"),
    ("mem-years", "member-years"),
    ("expected", "expected payout"),
    ("ultimate", "ultimate payout"),
    ("adm exp", "admissions expected"),
    ("adm ult", "admissions ultimate"),
    ("A/E", "A/E"),
    ("Z", "Z"),
    ("blended", "blended A/E"),
    ("SE", "SE"),
    ("drug A/E", "drug A/E (not blended)"),
];
const TEXT_WIDTHS: [usize; 13] = [22, 8, 8, 10, 12, 12, 9, 9, 7, 6, 8, 6, 8];

/// A group's row, formatted, for the text and the page alike.
fn group_cells(g: &GroupCredibility) -> [String; 13] {
    let ae = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.3}"));
    let a = &g.admissions;
    [
        g.group.clone(),
        g.members.to_string(),
        g.next_members.to_string(),
        format!("{:.1}", g.member_years),
        format!("{:.0}", g.expected),
        format!("{:.0}", g.ultimate),
        format!("{:.1}", a.expected),
        format!("{:.1}", a.ultimate),
        ae(a.observed_ae),
        format!("{:.3}", a.z),
        format!("{:.3}", a.blended_ae),
        format!("{:.3}", a.blended_ae_se),
        ae(g.drug.observed_ae),
    ]
}

pub fn render_renewal(r: &RenewalReport) -> String {
    let mut out = String::new();
    let d = &r.decomposition;
    let a = &r.assumptions;
    let _ = writeln!(
        out,
        "Renewal of {} from its experience as of {}",
        r.product_id, r.as_of
    );
    let _ = writeln!(out, "basis: {}", r.basis);
    let _ = writeln!(
        out,
        "assumptions: renewal rate {:.1}%  trend {:.1}%  margin {:.1}%",
        a.renewal_rate * 100.0,
        a.trend * 100.0,
        a.margin * 100.0
    );
    let c = &r.credibility;
    for (what, b) in [
        ("hospital admissions (claim count)", &c.admissions),
        ("specialty drugs (payout)", &c.drug),
    ] {
        if let Some(note) = &b.note {
            // Not estimated: the variances are not figures of the data.
            let _ = writeln!(out, "A/E of {what} by group and service month: {note}");
            continue;
        }
        let k = b.k.map_or(
            "- (no spread between groups: every Z is 0)".to_string(),
            |k| format!("{k:.1}"),
        );
        let _ = writeln!(
            out,
            "Bühlmann-Straub on the A/E of {what} by group and service month: within variance {:.4}  between variance {:.6}  k {k}",
            b.within_variance, b.between_variance
        );
    }
    let _ = writeln!(out);
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(TEXT_WIDTHS)
            .enumerate()
            .map(|(i, (cell, width))| {
                if i == 0 {
                    format!("{cell:<width$}")
                } else {
                    format!("{cell:>width$}")
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let _ = writeln!(out, "{}", line(&COLUMNS.map(|(text, _)| text.to_string())));
    for g in &c.groups {
        let _ = writeln!(out, "{}", line(&group_cells(g)));
    }
    let _ = writeln!(
        out,
        "(expected and ultimate: payout, CNY; adm: hospital admissions, with their A/E, Z, blended A/E and its SE; drug A/E: payout, not blended)"
    );
    let s = &r.steps;
    let _ = writeln!(out, "\nmodel premium per member");
    let _ = writeln!(out, "  basis, this year's pool          {:>10.2}", s.basis);
    let _ = writeln!(
        out,
        "  + credibility-weighted experience {:>9.2}",
        s.experience
    );
    let _ = writeln!(
        out,
        "  + next year's enrolment          {:>10.2}",
        s.next_pool
    );
    let _ = writeln!(
        out,
        "  + trend                          {:>10.2}",
        s.trended
    );
    let _ = writeln!(
        out,
        "  + parameter uncertainty          {:>10.2}  (Monte Carlo SE {:.2})",
        s.with_uncertainty, s.with_uncertainty_se
    );
    let _ = writeln!(
        out,
        "\nrecommended flat premium {:.2} (this year {:.2}; change {:+.2}, {:+.1}%)",
        d.recommended,
        d.premium_now,
        d.total_change,
        if d.premium_now > 0.0 {
            d.total_change / d.premium_now * 100.0
        } else {
            0.0
        }
    );
    let _ = writeln!(out, "  experience          {:+10.2}", d.experience);
    let _ = writeln!(out, "  mix and selection   {:+10.2}", d.mix_and_selection);
    let _ = writeln!(out, "  trend               {:+10.2}", d.trend);
    let _ = writeln!(
        out,
        "  margin              {:+10.2}  (this year's premium over the model {:+.2}; of next year's, parameter uncertainty {:+.2})",
        d.margin,
        d.premium_now - d.model_now,
        d.parameter_uncertainty
    );
    let _ = writeln!(out, "\nwritten: {} and {}", r.scenario, r.table);
    out
}

/// The renewal as a self-contained HTML page (`puhui renew --html`): the same figures as the
/// text, as tables.
pub fn renewal_html(r: &RenewalReport) -> String {
    use crate::html::escape;
    let d = &r.decomposition;
    let s = &r.steps;
    let c = &r.credibility;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Renewal of {id}</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}th:first-child,td:first-child{{text-align:left}}</style>\
         </head><body><h1>Renewal of {id} as of {as_of}</h1><p>Basis: {basis}. Renewal rate {rr:.1}%, trend {tr:.1}%, margin {mg:.1}%.</p>",
        id = escape(&r.product_id),
        as_of = escape(&r.as_of),
        basis = escape(&r.basis),
        rr = r.assumptions.renewal_rate * 100.0,
        tr = r.assumptions.trend * 100.0,
        mg = r.assumptions.margin * 100.0,
    );
    let _ = write!(
        out,
        "<h2>Recommended flat premium {:.2}</h2><table><tr><th>part</th><th>CNY per member</th></tr>\
         <tr><td>this year's premium</td><td>{:.2}</td></tr><tr><td>experience</td><td>{:+.2}</td></tr>\
         <tr><td>mix and selection</td><td>{:+.2}</td></tr><tr><td>trend</td><td>{:+.2}</td></tr>\
         <tr><td>margin (of which parameter uncertainty {:+.2})</td><td>{:+.2}</td></tr>\
         <tr><th>recommended</th><th>{:.2}</th></tr></table>",
        d.recommended,
        d.premium_now,
        d.experience,
        d.mix_and_selection,
        d.trend,
        d.parameter_uncertainty,
        d.margin,
        d.recommended
    );
    let _ = write!(
        out,
        "<h2>Model premium by step</h2><table><tr><th>step</th><th>premium</th></tr>\
         <tr><td>basis, this year's pool</td><td>{:.2}</td></tr><tr><td>with experience</td><td>{:.2}</td></tr>\
         <tr><td>next year's enrolment</td><td>{:.2}</td></tr><tr><td>trended</td><td>{:.2}</td></tr>\
         <tr><td>with parameter uncertainty (Monte Carlo SE {:.2})</td><td>{:.2}</td></tr></table>",
        s.basis, s.experience, s.next_pool, s.trended, s.with_uncertainty_se, s.with_uncertainty
    );
    let _ = write!(out, "<h2>Credibility</h2>");
    for (what, b) in [
        (
            "hospital admissions (the count of inpatient claims)",
            &c.admissions,
        ),
        ("specialty drugs (the payout)", &c.drug),
    ] {
        if let Some(note) = &b.note {
            let _ = write!(out, "<p>On the A/E of {what}: {}.</p>", escape(note));
            continue;
        }
        let k = b.k.map_or("-".to_string(), |k| format!("{k:.1}"));
        let _ = write!(
            out,
            "<p>On the A/E of {what}: within variance {:.4}, between variance {:.6}, k {k}.</p>",
            b.within_variance, b.between_variance
        );
    }
    let _ = write!(out, "<table><tr>");
    for (_, heading) in COLUMNS {
        let _ = write!(out, "<th>{heading}</th>");
    }
    let _ = write!(out, "</tr>");
    for g in &c.groups {
        let _ = write!(out, "<tr>");
        for cell in group_cells(g) {
            let _ = write!(out, "<td>{}</td>", escape(&cell));
        }
        let _ = write!(out, "</tr>");
    }
    let _ = write!(
        out,
        "</table><p>Written: {} and {}.</p></body></html>",
        escape(&r.scenario),
        escape(&r.table)
    );
    out
}
