//! Appeals: the evidence brought to one, and which claims can be appealed.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::{ClaimDecision, ItemOutcome};
use crate::domain::claim::{Biomarker, MAX_MARKER_CHARS};
use crate::domain::validation::ValidationErrors;

/// Biomarker results brought to an appeal, per item of the claim (the body
/// of an appeal: `{"items": [{"index": 0, "biomarkers": [{"marker": "EGFR",
/// "positive": true}]}]}`). They are added to the item's own results;
/// nothing submitted is replaced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppealEvidence {
    #[serde(default)]
    pub items: Vec<AppealItemEvidence>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppealItemEvidence {
    /// Position of the item in the claim, from 0.
    pub index: usize,
    #[schema(min_items = 1)]
    pub biomarkers: Vec<Biomarker>,
}

impl AppealEvidence {
    /// Checks the evidence on its own: each entry brings at least one
    /// biomarker with a name, and names an item at most once. Whether the
    /// items exist and were denied is checked against the decision by
    /// [`check_against`](Self::check_against).
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let mut seen = HashSet::new();
        for (position, entry) in self.items.iter().enumerate() {
            let path = format!("items[{position}]");
            if !seen.insert(entry.index) {
                errors.push(
                    format!("{path}.index"),
                    "duplicate_index",
                    format!("item {} is named twice", entry.index),
                );
            }
            if entry.biomarkers.is_empty() {
                errors.push(
                    format!("{path}.biomarkers"),
                    "invalid_biomarkers",
                    "evidence brings at least one biomarker result",
                );
            }
            for (marker_position, biomarker) in entry.biomarkers.iter().enumerate() {
                let name = biomarker.marker.trim();
                if name.is_empty() || name.chars().count() > MAX_MARKER_CHARS {
                    errors.push(
                        format!("{path}.biomarkers[{marker_position}].marker"),
                        "invalid_marker",
                        format!("marker is a name of 1 to {MAX_MARKER_CHARS} characters"),
                    );
                }
            }
        }
        errors.into_result(())
    }

    /// Checks that every entry names a denied item of `prior`, the decision
    /// being appealed.
    pub fn check_against(&self, prior: &ClaimDecision) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        for (position, entry) in self.items.iter().enumerate() {
            let field = format!("items[{position}].index");
            match prior.items.get(entry.index) {
                None => errors.push(
                    field,
                    "unknown_item",
                    format!("the claim has {} items", prior.items.len()),
                ),
                Some(item) if item.outcome != ItemOutcome::Denied => errors.push(
                    field,
                    "item_not_denied",
                    "only denied items are decided again",
                ),
                Some(_) => {}
            }
        }
        errors.into_result(())
    }

    /// The extra biomarker results for item `index`.
    pub fn biomarkers_for(&self, index: usize) -> impl Iterator<Item = &Biomarker> {
        self.items
            .iter()
            .filter(move |entry| entry.index == index)
            .flat_map(|entry| entry.biomarkers.iter())
    }
}

/// Why a claim cannot be appealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAppealable {
    /// A reversed claim is closed.
    Reversed,
    /// Only denied items are decided again, and there are none.
    NoDeniedItem,
}

/// The appeal rule: only a claim that is not reversed and whose decision in
/// force (`prior`) denies an item can be appealed.
pub fn check_appealable(prior: &ClaimDecision, reversed: bool) -> Result<(), NotAppealable> {
    if reversed {
        Err(NotAppealable::Reversed)
    } else if !prior.has_denied_item() {
        Err(NotAppealable::NoDeniedItem)
    } else {
        Ok(())
    }
}
