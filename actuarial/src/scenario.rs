//! Scenario files: parsing (TOML or JSON), validation into domain types, and the canonical hash.
//!
//! Both formats are read into one value tree and walked by hand, so that every error names the
//! file, the full key path and what is wrong, unknown keys are rejected (a typo in a term must
//! not silently price the default), and no input can panic.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::factors::RiskFactor;
use crate::table::{DirResolver, TableResolver};

mod check;
mod model;
mod parse;

pub use model::*;

/// Bounds that keep a single run's memory and time finite; the HTTP API applies tighter ones
/// through [`Scenario::work_units`].
pub const MAX_SIMULATIONS: u64 = 50_000_000;
pub const MAX_GROUPS: usize = 10_000;
pub const MAX_MEMBERS_PER_GROUP: u64 = 10_000_000_000;
pub const MAX_SWEEP_ROWS: usize = 10_000;
/// The tail beyond the highest reported level (0.995) must hold at least this many
/// portfolio-years, or VaR and TVaR there are not estimates at all.
pub const MIN_TAIL_YEARS: f64 = 5.0;
/// The work of building one group's member-level models (both benefits' payout distributions)
/// and, under the exact method, combining them into the portfolio's, in simulated
/// member-years. A sweep row rebuilds them all, so a sweep of many rows over many groups is
/// long even when it simulates little. Measured by `cargo run --release -p actuarial --example
/// admission_weights`: about 6e-2 s per group and row against 4e-9 s per simulated member-year
/// (1.5e7 to 1.8e7 member-years, by method, on a 2-core build machine).
pub const MODEL_BUILD_MEMBER_YEARS: f64 = 1.5e7;

/// The work of a run in simulated member-years, for admission control.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorkEstimate {
    /// The main run: its portfolio-years and one build of every group's models.
    pub main: f64,
    /// The sweep: every row's portfolio-years and its own build of every group's models.
    pub sweep: f64,
}

impl WorkEstimate {
    pub fn total(&self) -> f64 {
        self.main + self.sweep
    }
}

/// Levels at which VaR and TVaR are always reported.
pub const REPORT_LEVELS: [f64; 3] = [0.95, 0.99, 0.995];

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{source_name}: cannot read: {message}")]
    Io {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: {message}")]
    Syntax {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: `{key}`: {message}")]
    Invalid {
        source_name: String,
        key: String,
        message: String,
    },
}

impl ScenarioError {
    /// The key path the error is about, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// A validated scenario. Serialising it gives the canonical form that is hashed. Built only
/// through [`Scenario::new`] (which the parser and the sweep both use), so every scenario that
/// exists has passed the same checks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    name: String,
    seed: u64,
    simulations: u64,
    currency: String,
    benefits: Benefits,
    groups: Vec<Group>,
    pricing: Pricing,
    adverse_selection: Option<AdverseSelectionSpec>,
    sweep: Option<SweepSpec>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    risk_factors: Vec<RiskFactor>,
    #[serde(skip_serializing_if = "Method::is_auto")]
    method: Method,
}

/// The parts of a scenario before validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioParts {
    pub name: String,
    pub seed: u64,
    pub simulations: u64,
    pub currency: String,
    pub benefits: Benefits,
    pub groups: Vec<Group>,
    pub pricing: Pricing,
    pub adverse_selection: Option<AdverseSelectionSpec>,
    pub sweep: Option<SweepSpec>,
    pub risk_factors: Vec<RiskFactor>,
    pub method: Method,
}

impl Scenario {
    /// Validates the parts into a scenario; errors name `source_name` and the key. These are the
    /// invariants every run relies on (the parser checks the same and more, key by key, first).
    pub fn new(parts: ScenarioParts, source_name: &str) -> Result<Self, ScenarioError> {
        let invalid = |key: &str, message: String| ScenarioError::Invalid {
            source_name: source_name.to_string(),
            key: key.to_string(),
            message,
        };
        check::simulations(parts.simulations).map_err(|m| invalid("simulations", m))?;
        check::tail(parts.simulations, parts.pricing.level)
            .map_err(|m| invalid("pricing.level", m))?;
        if parts.benefits.inpatient.is_none() && parts.benefits.specialty_drug.is_none() {
            return Err(invalid("benefits", "no benefit to price".into()));
        }
        for b in Benefit::ALL {
            if let Some(t) = parts.benefits.get(b) {
                check::terms(&t.as_overrides())
                    .map_err(|(k, m)| invalid(&format!("benefits.{}.{k}", b.key()), m))?;
            }
        }
        if parts.groups.is_empty() || parts.groups.len() > MAX_GROUPS {
            return Err(invalid(
                "groups",
                format!("must hold 1 to {MAX_GROUPS} groups"),
            ));
        }
        for (i, g) in parts.groups.iter().enumerate() {
            check::group(g, &parts.benefits)
                .map_err(|(k, m)| invalid(&format!("groups[{i}] ({}).{k}", g.id), m))?;
        }
        check::factors(&parts.risk_factors, parts.groups.len(), &parts.benefits)
            .map_err(|(k, m)| invalid(&k, m))?;
        if parts.method == Method::Exact && parts.risk_factors.len() > MAX_EXACT_FACTORS {
            return Err(invalid(
                "method",
                format!(
                    "`exact` mixes over at most {MAX_EXACT_FACTORS} risk factors and this scenario has {} (use \"monte_carlo\" or \"auto\")",
                    parts.risk_factors.len()
                ),
            ));
        }
        if parts.groups.iter().map(|g| g.members).sum::<u64>() == 0 {
            return Err(invalid("groups", "no members enrolled in any group".into()));
        }
        let ScenarioParts {
            name,
            seed,
            simulations,
            currency,
            benefits,
            groups,
            pricing,
            adverse_selection,
            sweep,
            risk_factors,
            method,
        } = parts;
        Ok(Self {
            name,
            seed,
            simulations,
            currency,
            benefits,
            groups,
            pricing,
            adverse_selection,
            sweep,
            risk_factors,
            method,
        })
    }

    /// The parts, to derive another scenario through [`Scenario::new`].
    pub fn to_parts(&self) -> ScenarioParts {
        ScenarioParts {
            name: self.name.clone(),
            seed: self.seed,
            simulations: self.simulations,
            currency: self.currency.clone(),
            benefits: self.benefits,
            groups: self.groups.clone(),
            pricing: self.pricing,
            adverse_selection: self.adverse_selection,
            sweep: self.sweep.clone(),
            risk_factors: self.risk_factors.clone(),
            method: self.method,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Portfolio-years of the main run.
    pub fn simulations(&self) -> u64 {
        self.simulations
    }

    pub fn currency(&self) -> &str {
        &self.currency
    }

    pub fn benefits(&self) -> &Benefits {
        &self.benefits
    }

    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    pub fn pricing(&self) -> &Pricing {
        &self.pricing
    }

    pub fn adverse_selection(&self) -> Option<&AdverseSelectionSpec> {
        self.adverse_selection.as_ref()
    }

    pub fn sweep(&self) -> Option<&SweepSpec> {
        self.sweep.as_ref()
    }

    pub fn risk_factors(&self) -> &[RiskFactor] {
        &self.risk_factors
    }

    /// The method asked for.
    pub fn method(&self) -> Method {
        self.method
    }

    /// Whether the exact method runs: asked for, or `auto` with at most [`MAX_EXACT_FACTORS`]
    /// factors.
    pub fn runs_exact(&self) -> bool {
        match self.method {
            Method::Exact => true,
            Method::MonteCarlo => false,
            Method::Auto => self.risk_factors.len() <= MAX_EXACT_FACTORS,
        }
    }

    /// Parses a TOML scenario. `source_name` is used in messages; tables are resolved by
    /// `resolver`.
    pub fn from_toml_str(
        text: &str,
        source_name: &str,
        resolver: &dyn TableResolver,
    ) -> Result<Self, ScenarioError> {
        let value: toml::Value = toml::from_str(text).map_err(|e| ScenarioError::Syntax {
            source_name: source_name.to_string(),
            message: format!("TOML syntax: {}", e.to_string().trim_end()),
        })?;
        let tree = serde_json::to_value(value).map_err(|e| ScenarioError::Syntax {
            source_name: source_name.to_string(),
            message: format!("unsupported TOML value: {e}"),
        })?;
        Self::from_value(&tree, source_name, resolver)
    }

    /// Parses a JSON scenario with the same structure as the TOML form.
    pub fn from_json_str(
        text: &str,
        source_name: &str,
        resolver: &dyn TableResolver,
    ) -> Result<Self, ScenarioError> {
        let tree: Value = serde_json::from_str(text).map_err(|e| ScenarioError::Syntax {
            source_name: source_name.to_string(),
            message: format!("JSON syntax: {e}"),
        })?;
        Self::from_value(&tree, source_name, resolver)
    }

    /// Reads a scenario file (JSON when the extension is `.json`, TOML otherwise), resolving
    /// tables relative to the file's directory.
    pub fn from_path(path: &Path) -> Result<Self, ScenarioError> {
        let source_name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError::Io {
            source_name: source_name.clone(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        let resolver = DirResolver::new(base);
        let is_json = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        if is_json {
            Self::from_json_str(&text, &source_name, &resolver)
        } else {
            Self::from_toml_str(&text, &source_name, &resolver)
        }
    }

    /// Validates an already parsed value tree.
    pub fn from_value(
        tree: &Value,
        source_name: &str,
        resolver: &dyn TableResolver,
    ) -> Result<Self, ScenarioError> {
        parse::Parser { source_name }.scenario(tree, resolver)
    }

    /// SHA-256 of the canonical (validated, table-resolved) scenario, hex encoded.
    pub fn hash(&self) -> String {
        // Serialising plain structs of numbers, strings and enums cannot fail; an empty string
        // would still hash deterministically.
        let canonical = serde_json::to_string(self).unwrap_or_default();
        hex::encode(Sha256::digest(canonical.as_bytes()))
    }

    pub fn total_members(&self) -> u64 {
        self.groups.iter().map(|g| g.members).sum()
    }

    /// Upper bound on the work of a run, for admission control, in simulated member-years:
    /// [`WorkEstimate::main`] plus [`WorkEstimate::sweep`].
    pub fn work_units(&self) -> f64 {
        self.work_estimate().total()
    }

    /// The work of the main run and of the sweep, each counting its simulation (per
    /// portfolio-year, one unit per group plus one per expected claim or drug need: payouts are
    /// sampled only for members with a payout, of which there are at most that many) and its
    /// model building: every group's member-level models are built once for the main run and
    /// again for every sweep row, each build weighing [`MODEL_BUILD_MEMBER_YEARS`]. The main
    /// run's part also counts the exact re-pricings of adverse selection.
    pub fn work_estimate(&self) -> WorkEstimate {
        let per_year: f64 = self
            .groups
            .iter()
            .map(|g| {
                let mut events = 0.0;
                if let (Some(_), Some(r)) = (&self.benefits.inpatient, &g.inpatient) {
                    events += r.frequency.mean().min(1.0);
                }
                if let (Some(_), Some(r)) = (&self.benefits.specialty_drug, &g.specialty_drug) {
                    events += r.need_rate;
                }
                1.0 + g.members as f64 * events
            })
            .sum();
        let builds = self.groups.len() as f64 * MODEL_BUILD_MEMBER_YEARS;
        let (sweep_years, sweep_rows) = self.sweep.as_ref().map_or((0, 0), |s| {
            (s.simulations.saturating_mul(s.rows() as u64), s.rows())
        });
        // Adverse selection run exactly re-prices each renewal year's pool and refines the
        // equilibrium: each such pricing transforms every group's member distribution on the
        // lattice once, weighed here like one build of every group's models (an assumption of
        // the same order, not measured separately).
        let repricings = match (&self.adverse_selection, self.runs_exact()) {
            (Some(a), true) => f64::from(a.renewal_years + crate::adverse::EXACT_SOLVE_STEPS),
            _ => 0.0,
        };
        WorkEstimate {
            main: per_year * self.simulations as f64 + builds * (1.0 + repricings),
            sweep: per_year * sweep_years as f64 + builds * sweep_rows as f64,
        }
    }

    /// Portfolio-years simulated by a full run, the unit of progress reporting.
    pub fn progress_total(&self) -> u64 {
        let sweep = self
            .sweep
            .as_ref()
            .map_or(0, |s| s.simulations.saturating_mul(s.rows() as u64));
        self.simulations.saturating_add(sweep)
    }
}
