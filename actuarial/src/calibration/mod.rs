//! Calibration: the model's aggregates beside what real products have published about a year
//! of claims (claimants per member, paid per claimant and per member, the shares of claimants
//! pre-existing and aged 65+, the loss ratio).
//!
//! The model's figures come from the exact member payout laws of a pricing run (each group's
//! `exact` statistics, already mixed over the risk factors): a claimant is a member-year with a
//! payout above zero on any benefit, so claimants per member is P(payout > 0) averaged over the
//! members, and paid per claimant is E[payout] / P(payout > 0) over the same members. Pure:
//! results and published figures in, a comparison out.

use serde::{Deserialize, Serialize};

use crate::results::PricingResults;

pub mod published;
mod render;

pub use published::{PublishedError, PublishedProduct};
pub use render::{render_html, render_text};

/// The model's aggregates over all enrolled members of a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelAggregates {
    pub members: u64,
    /// Expected members with a payout above zero, per member.
    pub claimants_per_member: f64,
    pub paid_per_claimant: f64,
    pub paid_per_member: f64,
    pub preexisting_share_of_claimants: f64,
    /// Absent when some group's id does not start with an age band (groups not from a table).
    pub aged_65_plus_share_of_claimants: Option<f64>,
    /// Expected payout / gross premium at the premium the run prices.
    pub expected_loss_ratio: f64,
    pub premium_per_member: f64,
}

/// One published figure, derived from a product's published counts, with how it was derived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublishedValue {
    pub product: String,
    pub value: f64,
    pub basis: String,
}

/// One quantity: the model's value and each product's that publishes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CalibrationRow {
    pub quantity: String,
    pub model: Option<f64>,
    pub published: Vec<PublishedValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CalibrationResult {
    pub model: ModelAggregates,
    pub rows: Vec<CalibrationRow>,
    pub products: Vec<PublishedProduct>,
}

/// The quantities, in the order they are reported.
pub const QUANTITIES: [&str; 7] = [
    "claimants_per_member",
    "paid_per_claimant",
    "paid_per_member",
    "preexisting_share_of_claimants",
    "aged_65_plus_share_of_claimants",
    "loss_ratio",
    "premium_per_member",
];

/// The model's aggregates of a run (from the groups' exact figures).
pub fn model_aggregates(r: &PricingResults) -> ModelAggregates {
    let (mut members, mut claimants, mut paid, mut pre, mut old) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let mut all_aged = true;
    for g in &r.groups {
        let n = g.members as f64;
        let c = n * g.exact.prob_any_payout;
        members += n;
        claimants += c;
        paid += n * g.exact.mean_payout_per_member;
        if g.preexisting {
            pre += c;
        }
        match age_band_start(&g.id) {
            Some(age) if age >= 65 => old += c,
            Some(_) => {}
            None => all_aged = false,
        }
    }
    let per = |x: f64, by: f64| if by > 0.0 { x / by } else { 0.0 };
    ModelAggregates {
        members: r.members,
        claimants_per_member: per(claimants, members),
        paid_per_claimant: per(paid, claimants),
        paid_per_member: per(paid, members),
        preexisting_share_of_claimants: per(pre, claimants),
        aged_65_plus_share_of_claimants: all_aged.then(|| per(old, claimants)),
        expected_loss_ratio: r.premium.expected_loss_ratio,
        premium_per_member: r.premium.flat_premium_per_member,
    }
}

/// The first age of a group id of the form `age_band/sex/condition` (`65-74/...`, `85+/...`).
fn age_band_start(id: &str) -> Option<u32> {
    let band = id.split('/').next()?;
    let start = band.split(['-', '+']).next()?;
    if band.len() == start.len() {
        return None;
    }
    start.parse().ok()
}

/// The comparison of a run with the published products.
pub fn compare(r: &PricingResults, products: &[PublishedProduct]) -> CalibrationResult {
    let model = model_aggregates(r);
    let rows = QUANTITIES
        .iter()
        .map(|&q| CalibrationRow {
            quantity: q.to_string(),
            model: model_value(&model, q),
            published: products
                .iter()
                .filter_map(|p| {
                    let (value, basis) = published_value(p, q)?;
                    Some(PublishedValue {
                        product: p.id.clone(),
                        value,
                        basis: basis.to_string(),
                    })
                })
                .collect(),
        })
        .collect();
    CalibrationResult {
        model,
        rows,
        products: products.to_vec(),
    }
}

fn model_value(m: &ModelAggregates, quantity: &str) -> Option<f64> {
    Some(match quantity {
        "claimants_per_member" => m.claimants_per_member,
        "paid_per_claimant" => m.paid_per_claimant,
        "paid_per_member" => m.paid_per_member,
        "preexisting_share_of_claimants" => m.preexisting_share_of_claimants,
        "aged_65_plus_share_of_claimants" => return m.aged_65_plus_share_of_claimants,
        "loss_ratio" => m.expected_loss_ratio,
        "premium_per_member" => m.premium_per_member,
        _ => return None,
    })
}

/// A product's figure for a quantity, derived from its published counts, and the derivation.
fn published_value(p: &PublishedProduct, quantity: &str) -> Option<(f64, &'static str)> {
    let premium = p
        .premium_cny
        .or(p.premium_per_member_cny.map(|x| x * p.insured));
    match quantity {
        "claimants_per_member" => match (p.claimants, p.claims) {
            (Some(c), _) => Some((c / p.insured, "claimants / insured")),
            (None, Some(c)) => Some((
                c / p.insured,
                "claims / insured (a member may claim more than once: bounds claimants per member from above)",
            )),
            (None, None) => None,
        },
        "paid_per_claimant" => match (p.claimants, p.closed_claims) {
            (Some(c), _) => Some((p.paid_cny / c, "paid / claimants")),
            (None, Some(c)) => Some((
                p.paid_cny / c,
                "paid / closed claims (bounds paid per claimant from below)",
            )),
            (None, None) => None,
        },
        "paid_per_member" => Some((p.paid_cny / p.insured, "paid / insured")),
        "preexisting_share_of_claimants" => p
            .preexisting_share_of_claimants
            .map(|x| (x, "as published")),
        "aged_65_plus_share_of_claimants" => p
            .aged_65_plus_share_of_claimants
            .map(|x| (x, "as published")),
        "loss_ratio" => premium.map(|x| (p.paid_cny / x, "paid to the report date / premium")),
        "premium_per_member" => premium.map(|x| (x / p.insured, "premium / insured")),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
