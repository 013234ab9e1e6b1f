//! The rules a scenario's values obey, in one place: the parser applies them key by key as it
//! reads, and [`Scenario::new`](super::Scenario::new) applies them again to whatever it is given
//! (a sweep point, for one). Each returns the problem in words; the caller names the key.

use super::TermOverrides;
use super::{
    Benefits, Group, MAX_MEMBERS_PER_GROUP, MAX_SIMULATIONS, MIN_TAIL_YEARS, REPORT_LEVELS,
};
use crate::factors::{FactorTarget, RiskFactor};

/// `{x}` when it is in range, else "must be {bound}, got {x}".
pub(super) fn in_range(x: f64, ok: bool, bound: &str) -> Result<f64, String> {
    if ok {
        Ok(x)
    } else {
        Err(format!("must be {bound}, got {x}"))
    }
}

/// Enough portfolio-years that the tail beyond the highest reported level holds
/// [`MIN_TAIL_YEARS`], and not more than [`MAX_SIMULATIONS`].
pub(super) fn simulations(n: u64) -> Result<(), String> {
    let highest = REPORT_LEVELS.iter().copied().fold(0.0, f64::max);
    let min = (MIN_TAIL_YEARS / (1.0 - highest)).ceil() as u64;
    if n < min {
        return Err(format!(
            "must be at least {min} so that the tail beyond {highest} holds {MIN_TAIL_YEARS} portfolio-years, got {n}"
        ));
    }
    if n > MAX_SIMULATIONS {
        return Err(format!("must be at most {MAX_SIMULATIONS}, got {n}"));
    }
    Ok(())
}

/// The pricing level leaves at least [`MIN_TAIL_YEARS`] portfolio-years in the tail.
pub(super) fn tail(simulations: u64, level: f64) -> Result<(), String> {
    let tail = simulations as f64 * (1.0 - level);
    if tail < MIN_TAIL_YEARS {
        return Err(format!(
            "leaves {tail:.1} portfolio-years in the tail with {simulations} simulations; at least {MIN_TAIL_YEARS} are needed"
        ));
    }
    Ok(())
}

/// Benefit terms: deductible >= 0, coinsurance rates in [0, 1], limit > 0. Returns the term's
/// key with the problem.
pub(super) fn terms(t: &TermOverrides) -> Result<(), (&'static str, String)> {
    if let Some(d) = t.deductible {
        in_range(d, d >= 0.0, ">= 0").map_err(|m| ("deductible", m))?;
    }
    for (key, c) in [
        ("coinsurance", t.coinsurance),
        ("coinsurance_preexisting", t.coinsurance_preexisting),
    ] {
        if let Some(c) = c {
            in_range(c, (0.0..=1.0).contains(&c), "between 0 and 1").map_err(|m| (key, m))?;
        }
    }
    if let Some(l) = t.annual_limit {
        in_range(l, l > 0.0, "> 0").map_err(|m| ("annual_limit", m))?;
    }
    Ok(())
}

/// A group: members within bounds, its term overrides valid, and a risk for every priced
/// benefit. Returns the key below the group with the problem.
pub(super) fn group(g: &Group, benefits: &Benefits) -> Result<(), (String, String)> {
    if g.members > MAX_MEMBERS_PER_GROUP {
        return Err((
            "members".into(),
            format!("must be at most {MAX_MEMBERS_PER_GROUP}"),
        ));
    }
    if g.members as f64 > g.eligible.ceil() {
        return Err((
            "members".into(),
            format!("{} is more than the {} eligible", g.members, g.eligible),
        ));
    }
    if let Some(r) = &g.inpatient {
        terms(&r.overrides).map_err(|(k, m)| (format!("inpatient.{k}"), m))?;
    }
    if let Some(r) = &g.specialty_drug {
        terms(&r.overrides).map_err(|(k, m)| (format!("specialty_drug.{k}"), m))?;
    }
    if benefits.inpatient.is_some() && g.inpatient.is_none() {
        return Err((
            "inpatient".into(),
            "missing: the scenario prices the inpatient benefit".into(),
        ));
    }
    if benefits.specialty_drug.is_some() && g.specialty_drug.is_none() {
        return Err((
            "specialty_drug".into(),
            "missing: the scenario prices the specialty_drug benefit".into(),
        ));
    }
    Ok(())
}

/// Risk factors: unique ids, known targets of priced benefits, groups in range, mean and cv
/// positive and finite. Returns the key with the problem.
pub(super) fn factors(
    factors: &[RiskFactor],
    groups: usize,
    benefits: &Benefits,
) -> Result<(), (String, String)> {
    for (i, f) in factors.iter().enumerate() {
        let key = |k: &str| format!("risk_factors[{i}] ({}).{k}", f.id);
        if f.id.trim().is_empty() || f.id.len() > 200 {
            return Err((key("id"), "must be 1 to 200 characters".into()));
        }
        if factors[..i].iter().any(|o| o.id == f.id) {
            return Err((key("id"), format!("duplicate risk factor id `{}`", f.id)));
        }
        if f.applies_to.is_empty() {
            return Err((key("applies_to"), "is empty".into()));
        }
        for t in &f.applies_to {
            let priced = match t {
                FactorTarget::InpatientFrequency | FactorTarget::InpatientSeverity => {
                    benefits.inpatient.is_some()
                }
                FactorTarget::DrugNeedRate | FactorTarget::DrugCost => {
                    benefits.specialty_drug.is_some()
                }
            };
            if !priced {
                return Err((
                    key("applies_to"),
                    format!("`{}` is a benefit the scenario does not price", t.key()),
                ));
            }
        }
        if f.groups.is_empty() || f.groups.iter().any(|&g| g >= groups) {
            return Err((key("groups"), "matches no group".into()));
        }
        in_range(f.mean, f.mean.is_finite() && f.mean > 0.0, "> 0")
            .map_err(|m| (key("distribution.mean"), m))?;
        in_range(
            f.cv,
            f.cv.is_finite() && f.cv > 0.0 && f.cv <= 2.0,
            "in (0, 2]",
        )
        .map_err(|m| (key("distribution.cv"), m))?;
    }
    Ok(())
}
