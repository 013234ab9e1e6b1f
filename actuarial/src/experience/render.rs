//! The study as text for people, one function per section.

use std::fmt::Write;

use super::Study;

fn pct(x: Option<f64>) -> String {
    x.map_or("-".to_string(), |v| format!("{:.1}%", 100.0 * v))
}

fn num(x: Option<f64>, d: usize) -> String {
    x.map_or("-".to_string(), |v| format!("{v:.d$}"))
}

/// The study as text for people.
pub fn render_study(s: &Study) -> String {
    let mut out = String::new();
    render_totals(&mut out, s);
    render_groups(&mut out, s);
    render_claims(&mut out, s);
    render_development(&mut out, s);
    render_actual_vs_expected(&mut out, s);
    out
}

/// Exposure, premium, paid and the reserves of the whole product.
fn render_totals(out: &mut String, s: &Study) {
    let _ = writeln!(
        out,
        "Experience study of {} as of {}",
        s.product_id, s.as_of
    );
    let _ = writeln!(out, "basis: {}", s.basis);
    let _ = writeln!(
        out,
        "members {}  member-years {:.1}  premium {:.2}  earned premium {:.0}  take-up {}",
        s.members,
        s.member_years,
        s.premium,
        s.earned_premium,
        pct(s.take_up)
    );
    let _ = writeln!(
        out,
        "paid {:.0}  paid loss ratio {}",
        s.paid,
        pct(s.paid_loss_ratio)
    );
    let _ = writeln!(
        out,
        "chain ladder: IBNR {} (Mack SE {})  ultimate {}  ultimate loss ratio {} (SE {})",
        num(s.ibnr, 0),
        num(s.ibnr_se, 0),
        num(s.ultimate, 0),
        pct(s.ultimate_loss_ratio),
        pct(s.ultimate_loss_ratio_se)
    );
    let _ = writeln!(
        out,
        "Bornhuetter-Ferguson (prior loss ratio {}): IBNR {}  ultimate loss ratio {}",
        pct(s.expected_loss_ratio),
        num(s.bf_ibnr, 0),
        pct(s.bf_ultimate_loss_ratio)
    );
    let _ = writeln!(
        out,
        "case reserve (specialty-drug courses, authorised cycles not dispensed) {:.0}  \
         outstanding (IBNR + case reserve) {}  ultimate with case reserve {}  loss ratio {}",
        s.case_reserve,
        num(s.outstanding, 0),
        num(s.ultimate_with_case_reserve, 0),
        pct(s.ultimate_with_case_reserve_loss_ratio)
    );
    for r in &s.case_reserves {
        let _ = writeln!(
            out,
            "  case reserve {}: {:.0} ({} courses of {} members)",
            r.group, r.case_reserve, r.authorizations, r.members
        );
    }
    if let Some(e) = &s.reserve_error {
        let _ = writeln!(out, "no reserve: {e}");
    }
}

fn render_groups(out: &mut String, s: &Study) {
    let _ = writeln!(out, "\nexposure by pricing group");
    let _ = writeln!(
        out,
        "{:<24} {:>10} {:>14} {:>8}",
        "group", "members", "member-years", "take-up"
    );
    for g in &s.groups {
        let _ = writeln!(
            out,
            "{:<24} {:>10} {:>14.1} {:>8}",
            g.group,
            g.members,
            g.member_years,
            pct(g.take_up)
        );
    }
}

fn render_claims(out: &mut String, s: &Study) {
    let _ = writeln!(out, "\nclaims by group and benefit (reversals netted)");
    let _ = writeln!(
        out,
        "{:<24} {:<15} {:>8} {:>8} {:>14} {:>10} {:>12}",
        "group", "benefit", "claims", "paid", "amount", "frequency", "severity"
    );
    for c in &s.claims {
        let _ = writeln!(
            out,
            "{:<24} {:<15} {:>8} {:>8} {:>14.0} {:>10.5} {:>12}",
            c.group,
            c.benefit,
            c.claims,
            c.paid_claims,
            c.paid,
            c.frequency,
            num(c.mean_severity, 0)
        );
    }
}

fn render_development(out: &mut String, s: &Study) {
    if let Some(r) = &s.chain_ladder {
        let _ = writeln!(out, "\npayment development by service month");
        let _ = write!(out, "{}", crate::reserve::render_reserve(r));
    }
}

fn render_actual_vs_expected(out: &mut String, s: &Study) {
    let _ = writeln!(out, "\nactual (completed) against expected, 95% interval");
    let _ = writeln!(
        out,
        "{:<24} {:<15} {:>14} {:>14} {:>7} {:>17}",
        "group", "benefit", "actual", "expected", "A/E", "interval"
    );
    for a in &s.actual_vs_expected {
        let _ = writeln!(
            out,
            "{:<24} {:<15} {:>14.0} {:>14.0} {:>7} {:>17}",
            a.group,
            a.benefit,
            a.actual_ultimate,
            a.expected,
            num(a.ae, 3),
            match (a.ae_low, a.ae_high) {
                (Some(l), Some(h)) => format!("{l:.3}-{h:.3}"),
                _ => "-".to_string(),
            }
        );
    }
}
