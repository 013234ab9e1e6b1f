//! The reserve as text for people (`puhui reserve`); the JSON form is for machines.

use std::fmt::Write;

use super::{Method, Reserve};

/// Renders the factors, the per-origin table and the totals.
pub fn render_reserve(r: &Reserve) -> String {
    let mut out = String::new();
    let title = match r.method {
        Method::ChainLadder => "Chain ladder (volume-weighted), Mack (1993) standard errors",
        Method::Bf => "Bornhuetter-Ferguson on the chain ladder's development pattern",
    };
    let _ = writeln!(out, "{title}");
    let _ = writeln!(
        out,
        "{} origins, {} development periods",
        r.origins.len(),
        r.developments
    );
    if let Some(elr) = r.expected_loss_ratio {
        let _ = writeln!(out, "expected loss ratio {elr}");
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "age-to-age factors (development k to k+1)");
    let _ = writeln!(out, "{:>6} {:>10} {:>12}", "k", "ldf", "sigma");
    for (k, (f, s)) in r.ldf.iter().zip(&r.sigma).enumerate() {
        let _ = writeln!(out, "{:>6} {:>10.4} {:>12.4}", k + 1, f, s);
    }
    let _ = writeln!(out);
    let bf = r.method == Method::Bf;
    let _ = write!(
        out,
        "{:<10} {:>4} {:>14} {:>9} {:>14} {:>14} {:>12} {:>7}",
        "origin", "dev", "latest", "cdf", "ultimate", "ibnr", "mack_se", "cv"
    );
    if bf {
        let _ = write!(out, " {:>14}", "prior");
    }
    let _ = writeln!(out);
    for o in &r.origins {
        let _ = write!(
            out,
            "{:<10} {:>4} {:>14} {:>9.4} {:>14} {:>14} {:>12} {:>7}",
            o.origin,
            o.development,
            grouped(o.latest),
            o.cdf,
            grouped(o.ultimate),
            grouped(o.ibnr),
            grouped(o.mack_se),
            cv(o.mack_se, o.ibnr)
        );
        if let Some(prior) = o.prior_ultimate {
            let _ = write!(out, " {:>14}", grouped(prior));
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(
        out,
        "{:<10} {:>4} {:>14} {:>9} {:>14} {:>14} {:>12} {:>7}",
        "total",
        "",
        grouped(r.latest_total),
        "",
        grouped(r.ultimate_total),
        grouped(r.ibnr_total),
        grouped(r.mack_se_total),
        cv(r.mack_se_total, r.ibnr_total)
    );
    if bf {
        let _ = writeln!(
            out,
            "\nmack_se is the chain ladder reserve's standard error (Mack), a measure of how \
             uncertain the development pattern is."
        );
    }
    out
}

fn cv(se: f64, ibnr: f64) -> String {
    if ibnr.abs() > 0.0 {
        format!("{:.3}", se / ibnr)
    } else {
        "-".to_string()
    }
}

/// Rounds to a whole unit and groups thousands: 26909.01 -> "26,909".
pub(crate) fn grouped(x: f64) -> String {
    let rounded = x.round();
    let digits = format!("{:.0}", rounded.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if rounded < 0.0 {
        out.insert(0, '-');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping() {
        assert_eq!(grouped(26909.01), "26,909");
        assert_eq!(grouped(0.2), "0");
        assert_eq!(grouped(-1234567.6), "-1,234,568");
        assert_eq!(grouped(999.0), "999");
    }
}
