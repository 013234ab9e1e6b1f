//! The validated parts of a scenario: benefits and their terms, groups and their risks,
//! pricing, adverse selection, the sweep and the method.

use serde::{Deserialize, Serialize};

use crate::dist::{Frequency, Severity};
use crate::member::PayoutTerms;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Benefit {
    Inpatient,
    SpecialtyDrug,
}

impl Benefit {
    pub const ALL: [Benefit; 2] = [Benefit::Inpatient, Benefit::SpecialtyDrug];

    pub fn key(self) -> &'static str {
        match self {
            Self::Inpatient => "inpatient",
            Self::SpecialtyDrug => "specialty_drug",
        }
    }
}

/// Terms of a benefit at scenario level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BenefitTerms {
    pub deductible: f64,
    pub coinsurance: f64,
    pub coinsurance_preexisting: f64,
    pub annual_limit: f64,
}

impl BenefitTerms {
    /// The terms as a complete set of overrides (for checks shared with group overrides).
    pub fn as_overrides(&self) -> TermOverrides {
        TermOverrides {
            deductible: Some(self.deductible),
            coinsurance: Some(self.coinsurance),
            coinsurance_preexisting: Some(self.coinsurance_preexisting),
            annual_limit: Some(self.annual_limit),
        }
    }

    pub fn apply(&self, overrides: &TermOverrides, preexisting: bool) -> PayoutTerms {
        let coinsurance = if preexisting {
            overrides
                .coinsurance_preexisting
                .unwrap_or(self.coinsurance_preexisting)
        } else {
            overrides.coinsurance.unwrap_or(self.coinsurance)
        };
        PayoutTerms {
            deductible: overrides.deductible.unwrap_or(self.deductible),
            coinsurance,
            annual_limit: overrides.annual_limit.unwrap_or(self.annual_limit),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct TermOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deductible: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coinsurance: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coinsurance_preexisting: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annual_limit: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Benefits {
    pub inpatient: Option<BenefitTerms>,
    pub specialty_drug: Option<BenefitTerms>,
}

impl Benefits {
    pub fn get(&self, benefit: Benefit) -> Option<&BenefitTerms> {
        match benefit {
            Benefit::Inpatient => self.inpatient.as_ref(),
            Benefit::SpecialtyDrug => self.specialty_drug.as_ref(),
        }
    }

    pub fn get_mut(&mut self, benefit: Benefit) -> Option<&mut BenefitTerms> {
        match benefit {
            Benefit::Inpatient => self.inpatient.as_mut(),
            Benefit::SpecialtyDrug => self.specialty_drug.as_mut(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct InpatientRisk {
    pub frequency: Frequency,
    pub severity: Severity,
    pub overrides: TermOverrides,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DrugRisk {
    pub need_rate: f64,
    pub cost: Severity,
    pub overrides: TermOverrides,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub id: String,
    /// Enrolled members at the base take-up.
    pub members: u64,
    pub preexisting: bool,
    /// Eligible population; members = eligible x base take-up.
    pub eligible: f64,
    pub base_take_up: f64,
    /// Take-up elasticity to (expected benefit / premium); 0 means enrolment does not respond.
    pub elasticity: f64,
    pub inpatient: Option<InpatientRisk>,
    pub specialty_drug: Option<DrugRisk>,
}

impl Group {
    /// The member-level frequency, severity and terms of a benefit for this group, or None when
    /// the scenario does not price it.
    pub fn benefit_model(
        &self,
        benefit: Benefit,
        benefits: &Benefits,
    ) -> Option<(Frequency, Severity, PayoutTerms)> {
        let terms = benefits.get(benefit)?;
        match benefit {
            Benefit::Inpatient => self.inpatient.as_ref().map(|r| {
                (
                    r.frequency,
                    r.severity,
                    terms.apply(&r.overrides, self.preexisting),
                )
            }),
            Benefit::SpecialtyDrug => self.specialty_drug.as_ref().map(|r| {
                // The need rate is a probability, so this cannot fail for a validated group;
                // the fallback only keeps the function total.
                let freq =
                    Frequency::bernoulli(r.need_rate).unwrap_or(Frequency::Bernoulli { p: 0.0 });
                (freq, r.cost, terms.apply(&r.overrides, self.preexisting))
            }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RiskMeasure {
    Tvar,
    Var,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Pricing {
    pub expense_ratio: f64,
    pub cost_of_capital: f64,
    pub risk_measure: RiskMeasure,
    pub level: f64,
    pub target_loss_ratio: Option<f64>,
    /// The flat premium per member the product is (or will be) sold at, judged beside the one
    /// the model recommends; when given, it is also the premium at which `take_up` is observed.
    /// Left out of the hash when absent, so scenarios without it keep their hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub premium: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AdverseSelectionSpec {
    /// Highest flat premium per member considered; above it the product is taken not to sell.
    pub max_premium: Option<f64>,
    /// Renewal years to project from the base premium.
    pub renewal_years: u32,
}

/// A swept quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum SweepKey {
    Term(Benefit, TermKind),
    TakeUpScale,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TermKind {
    Deductible,
    Coinsurance,
    CoinsurancePreexisting,
    AnnualLimit,
}

impl TermKind {
    pub const ALL: [TermKind; 4] = [
        TermKind::Deductible,
        TermKind::Coinsurance,
        TermKind::CoinsurancePreexisting,
        TermKind::AnnualLimit,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Self::Deductible => "deductible",
            Self::Coinsurance => "coinsurance",
            Self::CoinsurancePreexisting => "coinsurance_preexisting",
            Self::AnnualLimit => "annual_limit",
        }
    }
}

impl SweepKey {
    pub fn name(&self) -> String {
        match self {
            Self::Term(b, t) => format!("{}.{}", b.key(), t.key()),
            Self::TakeUpScale => "take_up_scale".to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepAxis {
    pub key: SweepKey,
    pub values: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepSpec {
    pub simulations: u64,
    pub axes: Vec<SweepAxis>,
}

impl SweepSpec {
    pub fn rows(&self) -> usize {
        self.axes.iter().map(|a| a.values.len()).product()
    }
}

/// How the portfolio distribution is computed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Exact when it applies (at most [`MAX_EXACT_FACTORS`] risk factors), else Monte Carlo.
    #[default]
    Auto,
    Exact,
    MonteCarlo,
}

impl Method {
    pub fn is_auto(&self) -> bool {
        *self == Self::Auto
    }
}

/// The exact method mixes over the nodes of at most this many factors.
pub const MAX_EXACT_FACTORS: usize = 2;
