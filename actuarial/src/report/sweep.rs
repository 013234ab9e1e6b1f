//! The sweep as CSV, each header cell naming its unit.

use std::fmt::Write;

use crate::results::SweepResult;

/// The unit of a swept value, by its key.
fn sweep_key_unit(key: &str, currency: &str) -> String {
    if key == "take_up_scale" {
        "x members".into()
    } else if key.ends_with("deductible") || key.ends_with("annual_limit") {
        currency.into()
    } else {
        "ratio".into()
    }
}

/// One row per sweep point: the swept values, then the results. Money to 2 decimals per member,
/// whole units for portfolio totals. Each header cell is the JSON name followed by its unit in
/// brackets.
pub fn sweep_csv(s: &SweepResult, currency: &str) -> String {
    let mut o = String::new();
    for k in &s.keys {
        let _ = write!(o, "{k} [{}],", sweep_key_unit(k, currency));
    }
    let c = currency;
    let columns = [
        "members [members]".to_string(),
        format!("expected_payout [{c} per year]"),
        format!("expected_payout_se [{c} per year]"),
        format!("flat_premium_per_member [{c} per member-year]"),
        format!("flat_premium_per_member_se [{c} per member-year]"),
        "expected_loss_ratio [ratio]".into(),
        format!("var [{c} per year]"),
        format!("var_se [{c} per year]"),
        format!("tvar [{c} per year]"),
        format!("tvar_se [{c} per year]"),
        "prob_loss_ratio_above_100 [probability]".into(),
        "enrolment_premium_ratio [x scenario premium]".into(),
    ];
    o.push_str(&columns.join(","));
    o.push('\n');
    for row in &s.rows {
        for v in &row.values {
            let _ = write!(o, "{v},");
        }
        let _ = writeln!(
            o,
            "{},{:.0},{:.0},{:.2},{:.2},{:.4},{:.0},{:.0},{:.0},{:.0},{:.4},{}",
            row.members,
            row.expected_payout,
            row.expected_payout_se,
            row.flat_premium_per_member,
            row.flat_premium_per_member_se,
            row.expected_loss_ratio,
            row.var,
            row.var_se,
            row.tvar,
            row.tvar_se,
            row.prob_loss_ratio_above_100,
            row.enrolment_premium_ratio
                .map_or(String::new(), |x| format!("{x:.4}"))
        );
    }
    o
}
