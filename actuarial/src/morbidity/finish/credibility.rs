//! Two-level Bühlmann-Straub credibility of one quantity: the parents (age band and condition
//! group) towards their condition group, then the cells towards their parent.

use crate::credibility::{GroupSummary, Structure, blend, estimate_structure};
use crate::morbidity::{AGE_BANDS, CELLS, CONDITION_GROUPS, SEXES, StudyError, cell_index};

use super::cells::QuantityInput;
use super::*;

pub(super) fn credibility_for(
    input: &QuantityInput,
) -> Result<(QuantityCredibility, Vec<(f64, f64)>), StudyError> {
    let cells: Vec<GroupSummary> = input
        .pairs
        .iter()
        .map(|p| GroupSummary::from_pairs(p.iter().copied()))
        .collect();
    let parents = parent_level(input);
    let (cell_structure, out) = cell_level(&cells, &parents.estimate);
    Ok((
        QuantityCredibility {
            cell_level: cell_structure.into(),
            parent_level: parents.structure.into(),
            collective: parents.collective,
            parents: parents.reports,
        },
        out,
    ))
}

const NO_STRUCTURE: Structure = Structure {
    within_variance: 0.0,
    between_variance: 0.0,
};

/// The parent level: each age band and condition group (both sexes) blended towards its
/// condition group's collective mean.
pub(super) struct ParentLevel {
    structure: Structure,
    /// `(condition group, collective mean)`.
    collective: Vec<(String, f64)>,
    reports: Vec<ParentReport>,
    /// `[band][condition group]`.
    estimate: Vec<[f64; 2]>,
}

pub(super) fn parent_level(input: &QuantityInput) -> ParentLevel {
    let years = input.pairs[0].len();
    // Parents: the two sexes pooled, year by year.
    let parent_of = |band: usize, pre: bool| -> GroupSummary {
        let pairs: Vec<(f64, f64)> = (0..years)
            .map(|y| {
                let (mut w, mut wv) = (0.0, 0.0);
                for sex in 0..SEXES.len() {
                    let (v, wt) = input.pairs[cell_index(band, sex, pre)][y];
                    w += wt;
                    wv += wt * v;
                }
                (if w > 0.0 { wv / w } else { 0.0 }, w)
            })
            .collect();
        GroupSummary::from_pairs(pairs.iter().copied())
    };
    let mut parents: Vec<Vec<GroupSummary>> = Vec::new();
    for pre in [false, true] {
        parents.push((0..AGE_BANDS.len()).map(|b| parent_of(b, pre)).collect());
    }
    let structure = estimate_structure(&parents).unwrap_or(NO_STRUCTURE);
    let mut collective = Vec::new();
    let mut reports = Vec::new();
    let mut estimate = vec![[0.0; 2]; AGE_BANDS.len()];
    for (ci, group) in parents.iter().enumerate() {
        let (mean, blended) = blend(group, &structure, None);
        collective.push((CONDITION_GROUPS[ci].to_string(), mean));
        for (band, (g, b)) in group.iter().zip(&blended).enumerate() {
            estimate[band][ci] = b.estimate;
            reports.push(ParentReport {
                age_band: AGE_BANDS[band].to_string(),
                condition_group: CONDITION_GROUPS[ci].to_string(),
                weight: g.weight,
                mean: g.has_data().then_some(g.mean),
                z: b.z,
                estimate: b.estimate,
            });
        }
    }
    ParentLevel {
        structure,
        collective,
        reports,
        estimate,
    }
}

/// The cell level: each cell blended towards its parent's estimate; the cells within parents
/// share one structure. Returns it with `(z, estimate)` per cell.
pub(super) fn cell_level(
    cells: &[GroupSummary],
    parent_estimate: &[[f64; 2]],
) -> (Structure, Vec<(f64, f64)>) {
    let cell_collectives: Vec<Vec<GroupSummary>> = (0..AGE_BANDS.len())
        .flat_map(|band| {
            [false, true].map(move |pre| {
                (0..SEXES.len())
                    .map(|sex| cells[cell_index(band, sex, pre)])
                    .collect()
            })
        })
        .collect();
    let cell_structure = estimate_structure(&cell_collectives).unwrap_or(NO_STRUCTURE);
    let mut out = vec![(0.0, 0.0); CELLS];
    for band in 0..AGE_BANDS.len() {
        for (ci, pre) in [false, true].into_iter().enumerate() {
            let group: Vec<GroupSummary> = (0..SEXES.len())
                .map(|sex| cells[cell_index(band, sex, pre)])
                .collect();
            let (_, blended) = blend(&group, &cell_structure, Some(parent_estimate[band][ci]));
            for (sex, b) in blended.iter().enumerate() {
                out[cell_index(band, sex, pre)] = (b.z, b.estimate);
            }
        }
    }
    (cell_structure, out)
}
