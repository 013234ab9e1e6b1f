//! The adverse-selection part of the text report.

use std::fmt::Write;

use crate::results::AdverseSelectionResult;

use super::{money, pct};

pub(super) fn adverse_selection(o: &mut String, a: &AdverseSelectionResult) {
    let _ = writeln!(
        o,
        "\nAdverse selection (take-up at a premium P = take-up observed at P0 x (P0 / P)^elasticity, \
         capped at 1; P0 = {} per member, the {} premium)",
        money(a.observed_premium_per_member, 2),
        if a.observed_premium_stated {
            "stated"
        } else {
            "recommended"
        }
    );
    match (a.premium_per_member, a.members) {
        (Some(p), Some(m)) => {
            let _ = writeln!(
                o,
                "  the enrolled pool pays for itself at {} per member with {} members (expected payout {} per member)",
                money(p, 2),
                money(m, 0),
                money(a.expected_payout_per_member.unwrap_or(0.0), 2)
            );
        }
        _ => {
            let _ = writeln!(
                o,
                "  no premium up to {} per member at which the enrolled pool pays for itself",
                money(a.max_premium, 2)
            );
        }
    }
    let repricing = match a.repricing.as_str() {
        "exact" => "each pool re-priced with its own exact distribution",
        "scaled" => {
            "each pool's risk margin scaled from the priced pool's by its standard deviation"
        }
        _ => "",
    };
    if !repricing.is_empty() {
        let residual = a
            .equilibrium_residual_per_member
            .map_or(String::new(), |r| {
                format!(
                    "; at the equilibrium |P - R(P)| = {} per member",
                    money(r, 4)
                )
            });
        let _ = writeln!(o, "  ({repricing}{residual})");
    }
    let _ = writeln!(
        o,
        "  renewal path from P0 (each year the pool that enrols at the premium sets the next \
         year's premium; year 0 is the pool priced above):"
    );
    let _ = writeln!(
        o,
        "  {:>4} {:>12} {:>14} {:>14} {:>10}",
        "year", "premium", "members", "exp. payout", "loss r."
    );
    for y in &a.renewal {
        let _ = writeln!(
            o,
            "  {:>4} {:>12} {:>14} {:>14} {:>10}",
            y.year,
            money(y.premium_per_member, 2),
            money(y.members, 0),
            money(y.expected_payout_per_member, 2),
            pct(y.expected_loss_ratio, 1)
        );
    }
    let _ = writeln!(
        o,
        "  premium: flat premium per member that year; members: expected enrolment; exp. payout: \
         expected payout per member; loss r.: exp. payout / premium."
    );
}
