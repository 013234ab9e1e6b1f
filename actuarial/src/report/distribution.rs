//! The parts of the text report about the distribution of the portfolio total: its split by
//! benefit, the percentile table of the total and the loss ratio, and the loss ratio at a stated
//! premium.

use std::fmt::Write;

use crate::engine::PERCENTILE_LEVELS;
use crate::results::{LossRatioAtPremium, PricingResults};

use super::{level_key, money, pct};

/// The mean (and std) of the total split by benefit.
pub(super) fn benefit_split(o: &mut String, r: &PricingResults) {
    let Some(b) = &r.portfolio.by_benefit else {
        return;
    };
    let parts = [
        ("inpatient", b.inpatient.as_ref()),
        ("specialty drug", b.specialty_drug.as_ref()),
    ];
    for (name, part) in parts {
        if let Some(t) = part {
            let _ = writeln!(
                o,
                "  {name:<15} mean {:>16} ({} of the mean)  std {:>14}",
                money(t.mean, 0),
                pct(t.share_of_mean, 1),
                money(t.std, 0)
            );
        }
    }
}

/// Percentiles of the annual total and of the loss ratio at the recommended premium and, when
/// the scenario states one, at that premium.
pub(super) fn percentile_table(o: &mut String, r: &PricingResults) {
    let p = &r.portfolio;
    if p.percentiles.is_empty() {
        return;
    }
    let columns: Vec<(String, &LossRatioAtPremium)> = [
        r.premium
            .loss_ratio
            .as_ref()
            .map(|l| (format!("LR at {}", money(l.premium_per_member, 2)), l)),
        r.premium.at_premium.as_ref().map(|l| {
            (
                format!("LR at {} (stated)", money(l.premium_per_member, 2)),
                l,
            )
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
    let _ = writeln!(
        o,
        "\nPercentiles of the annual payout (the total not exceeded in that share of years) and of \
         the loss ratio (LR: total payout / flat premium x members)"
    );
    let mut head = format!("  {:>10} {:>18}", "percentile", "total payout");
    for (name, _) in &columns {
        let _ = write!(head, " {name:>24}");
    }
    let _ = writeln!(o, "{head}");
    for level in PERCENTILE_LEVELS {
        let k = level_key(level);
        let Some(total) = p.percentiles.get(&k) else {
            continue;
        };
        let mut line = format!("  {:>10} {:>18}", pct(level, 1), money(*total, 0));
        for (_, l) in &columns {
            let ratio = l.loss_ratio_percentiles.get(&k).copied().unwrap_or(0.0);
            let _ = write!(line, " {:>24}", pct(ratio, 1));
        }
        let _ = writeln!(o, "{line}");
    }
}

/// The loss ratio at the premium the scenario states, beside the recommended one.
pub(super) fn at_stated_premium(o: &mut String, l: &LossRatioAtPremium) {
    let _ = writeln!(
        o,
        "  at the stated premium                {:>12}   ({} of the recommended)",
        money(l.premium_per_member, 2),
        pct(l.to_recommended, 1)
    );
    let _ = writeln!(
        o,
        "    expected loss ratio                {:>12} +- {}  (std {})",
        pct(l.expected_loss_ratio, 1),
        pct(l.expected_loss_ratio_se, 2),
        pct(l.loss_ratio_std, 1)
    );
    let _ = writeln!(
        o,
        "    P(loss ratio > 100%)               {:>12} +- {}",
        pct(l.prob_loss_ratio_above_100, 2),
        pct(l.prob_loss_ratio_above_100_se, 2)
    );
    let _ = writeln!(
        o,
        "    margin after expenses and payout   {:>12}   per member and year",
        money(l.margin_per_member, 2)
    );
}
