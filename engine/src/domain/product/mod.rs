//! Products: one policy year of a city plan, loaded from a TOML file.
//!
//! # File format
//!
//! ```toml
//! id = "xiamen-2026"
//! name = "..."
//! premium = "129.00"            # CNY: a string with at most 2 decimals, or a whole number
//! period_start = 2026-07-01     # TOML local dates, both ends inclusive
//! period_end = 2027-06-30
//! enrollment_open = 2026-07-01  # inside the period, both ends inclusive
//! enrollment_close = 2026-12-31
//! waiting_days = 0
//! renews = "xiamen-2025"        # optional: last year's product id
//!
//! [[preexisting_groups]]
//! name = "malignant tumours"
//! codes = ["C00-C97"]
//!
//! [inpatient]                   # optional benefit
//! deductible = "20000.00"
//! coinsurance = "0.70"          # a fraction in [0, 1]: string or TOML float
//! coinsurance_preexisting = "0.50"
//! annual_limit = "1500000.00"
//!
//! [specialty_drug]              # optional benefit: the same four terms, plus
//! deductible = "0"
//! # ...
//! [[specialty_drug.formulary]]
//! atc = "L01EB04"
//! name = "osimertinib"
//! indications = ["C34"]
//! required_biomarker = "EGFR"   # optional
//! designated_providers = ["XM-PH-001"]
//! requires_authorization = true # optional, default false: paid only in a course
//! max_cycle_days = 30           # the longest supply of one dispensing
//! max_course_cycles = 12        # the most cycles one authorisation grants
//! followup_every_cycles = 3     # optional, default 0 (no assessment needed)
//! ```
//!
//! A product may name the scenario it was priced on, `pricing_scenario =
//! "scenarios/xiamen-2026.toml"` (top level; a path relative to the working
//! directory of `puhui products load`, `experience` and `renew`, the
//! repository root in the demo). Its SHA-256 is stored with the product
//! version when the product is loaded.
//!
//! A product may also list `qualified_prescribers = ["XM-H-001"]` (top
//! level): the hospitals whose prescriptions an authorisation accepts.
//! Absent, any prescriber; an empty list, none. `max_cycle_days` and
//! `max_course_cycles` are at least 1 when given; absent, the drug sets no
//! bound of its own (the policy period still does), which only a drug that
//! does not require authorisation may leave out.
//!
//! Amounts are CNY, written as decimal strings (`"20000.00"`) or whole
//! numbers (`20000`); a TOML float is read by its shortest decimal form, and
//! anything finer than a fen is refused. Unknown keys are refused. A file that
//! parses but is inconsistent is refused by [`Product::validate`] with the
//! key at fault.

use std::collections::HashSet;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use serde::{Deserialize, Serialize};

use super::canonical::{canonical_json, sha256_hex};
use super::claim::BenefitKind;
use super::codes::{AtcCode, Icd10Code, IcdPattern};
use super::money::Fen;

mod file;
#[cfg(test)]
pub(crate) mod tests;

use file::ProductFile;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Product {
    pub id: String,
    pub name: String,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub premium: Fen,
    pub enrollment_open: NaiveDate,
    pub enrollment_close: NaiveDate,
    pub waiting_days: u32,
    pub renews: Option<String>,
    pub preexisting_groups: Vec<PreexistingGroup>,
    pub inpatient: Option<BenefitTerms>,
    pub specialty_drug: Option<DrugBenefit>,
    /// Hospital ids that may prescribe a specialty drug for an authorised
    /// course: absent, any prescriber; empty, none. Left out of the stored
    /// form when absent, so products without it keep their content hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qualified_prescribers: Option<Vec<String>>,
    /// The pricing scenario the product was priced on, a path relative to the working
    /// directory of the command that loads the product (the repository root in the demo).
    /// Absent from the stored form when absent, like `qualified_prescribers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing_scenario: Option<String>,
}

/// Conditions that, when declared by a member, put claims whose diagnosis
/// falls in the same group on the pre-existing coinsurance rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreexistingGroup {
    pub name: String,
    pub codes: Vec<IcdPattern>,
}

impl PreexistingGroup {
    pub fn contains(&self, code: &Icd10Code) -> bool {
        self.codes.iter().any(|pattern| pattern.matches(code))
    }
}

/// The money terms of one benefit. `coinsurance` is the share the product
/// pays (0.70 = 70 %), applied after the deductible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BenefitTerms {
    pub deductible: Fen,
    /// The share the product pays, a decimal string in [0, 1].
    #[schema(value_type = String, pattern = r"^(0(\.[0-9]+)?|1(\.0+)?)$")]
    pub coinsurance: Decimal,
    #[schema(value_type = String, pattern = r"^(0(\.[0-9]+)?|1(\.0+)?)$")]
    pub coinsurance_preexisting: Decimal,
    pub annual_limit: Fen,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DrugBenefit {
    pub terms: BenefitTerms,
    pub formulary: Vec<FormularyDrug>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FormularyDrug {
    pub atc: AtcCode,
    pub name: String,
    pub indications: Vec<IcdPattern>,
    pub required_biomarker: Option<String>,
    pub designated_providers: Vec<String>,
    /// A dispensing is paid only against an authorised treatment course.
    /// The course terms below are left out of the stored form when unset,
    /// so products that do not use them keep their content hash.
    #[serde(default, skip_serializing_if = "is_false")]
    pub requires_authorization: bool,
    /// The longest supply, in days, one dispensing (one cycle) may cover;
    /// absent: no bound of its own (a drug that requires authorisation must
    /// give one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cycle_days: Option<u32>,
    /// The most cycles one authorisation may grant; absent: no bound of its
    /// own (a drug that requires authorisation must give one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_course_cycles: Option<u32>,
    /// An efficacy assessment is needed every this many cycles to go on; 0:
    /// never.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub followup_every_cycles: u32,
}

fn is_false(flag: &bool) -> bool {
    !*flag
}

fn is_zero(count: &u32) -> bool {
    *count == 0
}

impl FormularyDrug {
    pub fn indicated_for(&self, diagnosis: &Icd10Code) -> bool {
        self.indications
            .iter()
            .any(|pattern| pattern.matches(diagnosis))
    }

    pub fn dispensed_by(&self, provider_id: &str) -> bool {
        self.designated_providers.iter().any(|p| p == provider_id)
    }
}

/// A refused product file. Every variant names the key at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductError {
    #[error("product file is not valid: {0}")]
    Parse(String),
    #[error("`{key}`: {problem}")]
    Inconsistent { key: String, problem: String },
}

impl ProductError {
    fn at(key: impl Into<String>, problem: impl Into<String>) -> Self {
        ProductError::Inconsistent {
            key: key.into(),
            problem: problem.into(),
        }
    }

    /// The key at fault, for inconsistencies found after parsing.
    pub fn key(&self) -> Option<&str> {
        match self {
            ProductError::Parse(_) => None,
            ProductError::Inconsistent { key, .. } => Some(key),
        }
    }
}

impl Product {
    /// Parses a product file and checks it for consistency.
    pub fn from_toml_str(text: &str) -> Result<Product, ProductError> {
        let file: ProductFile =
            toml::from_str(text).map_err(|error| ProductError::Parse(error.to_string()))?;
        let product = file.into_product()?;
        product.validate()?;
        Ok(product)
    }

    /// Parses the stored JSON form and checks it again, so that a product
    /// reloaded from the database obeys the same rules as one from a file.
    pub fn from_json_value(value: serde_json::Value) -> Result<Product, ProductError> {
        let product: Product = serde_json::from_value(value)
            .map_err(|error| ProductError::Parse(error.to_string()))?;
        product.validate()?;
        Ok(product)
    }

    /// The canonical JSON form that storage keeps and hashes.
    pub fn canonical_json(&self) -> String {
        match serde_json::to_value(self) {
            Ok(value) => canonical_json(&value),
            // Only maps with non-string keys or failing `Serialize` impls make
            // serde_json fail; a product has neither.
            Err(error) => unreachable!("a product always serialises to JSON: {error}"),
        }
    }

    /// SHA-256 of the canonical JSON: the product version recorded with each
    /// decision. Any change to any term changes it.
    pub fn content_hash(&self) -> String {
        sha256_hex(self.canonical_json().as_bytes())
    }

    /// Whether `date` lies in the policy period (both ends inclusive).
    pub fn period_contains(&self, date: NaiveDate) -> bool {
        self.period_start <= date && date <= self.period_end
    }

    /// Whether enrollment is open on `date` (both ends inclusive).
    pub fn enrollment_open_on(&self, date: NaiveDate) -> bool {
        self.enrollment_open <= date && date <= self.enrollment_close
    }

    /// The terms of a benefit, if the product offers it.
    pub fn terms(&self, kind: BenefitKind) -> Option<&BenefitTerms> {
        match kind {
            BenefitKind::Inpatient => self.inpatient.as_ref(),
            BenefitKind::SpecialtyDrug => self.specialty_drug.as_ref().map(|drugs| &drugs.terms),
        }
    }

    /// The formulary entry for a drug, if listed.
    pub fn formulary_drug(&self, atc: &AtcCode) -> Option<&FormularyDrug> {
        self.specialty_drug
            .as_ref()
            .and_then(|drugs| drugs.formulary.iter().find(|drug| &drug.atc == atc))
    }

    /// Whether a claim with `diagnosis` is paid at the pre-existing rate for a
    /// member who declared `declared`: the diagnosis must fall in a group in
    /// which the member declared a code. A declared condition in another group
    /// leaves an unrelated claim on the standard rate.
    pub fn preexisting_applies(&self, diagnosis: &Icd10Code, declared: &[Icd10Code]) -> bool {
        self.preexisting_groups.iter().any(|group| {
            group.contains(diagnosis) && declared.iter().any(|code| group.contains(code))
        })
    }

    /// Checks the rules a product must obey; the error names the key.
    pub fn validate(&self) -> Result<(), ProductError> {
        check_identifier("id", &self.id)?;
        check_text("name", &self.name)?;
        if self.period_start > self.period_end {
            return Err(ProductError::at(
                "period_end",
                format!(
                    "the period ends ({}) before it starts ({})",
                    self.period_end, self.period_start
                ),
            ));
        }
        check_not_negative("premium", self.premium)?;
        if self.enrollment_open > self.enrollment_close {
            return Err(ProductError::at(
                "enrollment_close",
                format!(
                    "the enrollment window closes ({}) before it opens ({})",
                    self.enrollment_close, self.enrollment_open
                ),
            ));
        }
        for (key, date) in [
            ("enrollment_open", self.enrollment_open),
            ("enrollment_close", self.enrollment_close),
        ] {
            if !self.period_contains(date) {
                return Err(ProductError::at(
                    key,
                    format!(
                        "{date} lies outside the period {} to {}",
                        self.period_start, self.period_end
                    ),
                ));
            }
        }
        // A waiting period that outlasts the whole period would sell cover
        // that can never pay, even to someone enrolling on the first day.
        let period_days = (self.period_end - self.period_start).num_days() + 1;
        if i64::from(self.waiting_days) >= period_days {
            return Err(ProductError::at(
                "waiting_days",
                format!(
                    "{} days of waiting leave no covered day in a {period_days}-day period",
                    self.waiting_days
                ),
            ));
        }
        if let Some(path) = &self.pricing_scenario {
            check_scenario_path(path)?;
        }
        if let Some(renews) = &self.renews {
            check_identifier("renews", renews)?;
            if renews == &self.id {
                return Err(ProductError::at("renews", "a product cannot renew itself"));
            }
        }
        self.validate_preexisting_groups()?;
        if self.inpatient.is_none() && self.specialty_drug.is_none() {
            return Err(ProductError::at(
                "inpatient",
                "a product offers at least one benefit (`inpatient` or `specialty_drug`)",
            ));
        }
        if let Some(terms) = &self.inpatient {
            terms.validate("inpatient")?;
        }
        if let Some(drugs) = &self.specialty_drug {
            drugs.terms.validate("specialty_drug")?;
            validate_formulary(&drugs.formulary)?;
        }
        if let Some(prescribers) = &self.qualified_prescribers {
            check_unique_ids("qualified_prescribers", prescribers, "prescriber")?;
        }
        Ok(())
    }

    /// Whether `hospital_id` may prescribe a specialty drug for a course.
    pub fn prescriber_qualified(&self, hospital_id: &str) -> bool {
        self.qualified_prescribers
            .as_ref()
            .is_none_or(|ids| ids.iter().any(|id| id == hospital_id))
    }

    /// Each group of pre-existing conditions has a unique name and at
    /// least one code.
    fn validate_preexisting_groups(&self) -> Result<(), ProductError> {
        let mut group_names = HashSet::new();
        for (index, group) in self.preexisting_groups.iter().enumerate() {
            let key = format!("preexisting_groups[{index}]");
            check_text(&format!("{key}.name"), &group.name)?;
            if !group_names.insert(group.name.as_str()) {
                return Err(ProductError::at(
                    format!("{key}.name"),
                    format!("group `{}` is named twice", group.name),
                ));
            }
            if group.codes.is_empty() {
                return Err(ProductError::at(
                    format!("{key}.codes"),
                    "a group needs at least one ICD-10 prefix or range",
                ));
            }
        }
        Ok(())
    }
}

impl BenefitTerms {
    fn validate(&self, benefit: &str) -> Result<(), ProductError> {
        check_not_negative(&format!("{benefit}.deductible"), self.deductible)?;
        check_not_negative(&format!("{benefit}.annual_limit"), self.annual_limit)?;
        check_rate(&format!("{benefit}.coinsurance"), self.coinsurance)?;
        check_rate(
            &format!("{benefit}.coinsurance_preexisting"),
            self.coinsurance_preexisting,
        )?;
        Ok(())
    }
}

fn validate_formulary(formulary: &[FormularyDrug]) -> Result<(), ProductError> {
    if formulary.is_empty() {
        return Err(ProductError::at(
            "specialty_drug.formulary",
            "a specialty-drug benefit lists at least one drug",
        ));
    }
    let mut seen = HashSet::new();
    for (index, drug) in formulary.iter().enumerate() {
        let key = format!("specialty_drug.formulary[{index}]");
        if !seen.insert(&drug.atc) {
            return Err(ProductError::at(
                format!("{key}.atc"),
                format!("{} is listed twice", drug.atc),
            ));
        }
        check_text(&format!("{key}.name"), &drug.name)?;
        if drug.indications.is_empty() {
            return Err(ProductError::at(
                format!("{key}.indications"),
                "a drug needs at least one approved indication",
            ));
        }
        if let Some(marker) = &drug.required_biomarker {
            check_text(&format!("{key}.required_biomarker"), marker)?;
        }
        if drug.designated_providers.is_empty() {
            return Err(ProductError::at(
                format!("{key}.designated_providers"),
                "a drug needs at least one designated provider, or it could never be paid",
            ));
        }
        check_unique_ids(
            &format!("{key}.designated_providers"),
            &drug.designated_providers,
            "provider",
        )?;
        validate_course_terms(&key, drug)?;
    }
    Ok(())
}

/// Each id is a valid identifier, listed once.
fn check_unique_ids(key: &str, ids: &[String], what: &str) -> Result<(), ProductError> {
    let mut seen = HashSet::new();
    for (index, id) in ids.iter().enumerate() {
        let id_key = format!("{key}[{index}]");
        check_identifier(&id_key, id)?;
        if !seen.insert(id) {
            return Err(ProductError::at(
                id_key,
                format!("{what} `{id}` is listed twice"),
            ));
        }
    }
    Ok(())
}

/// The course terms: bounds are at least 1 when given, and a drug that is
/// paid only against an authorisation states both, so that no course is
/// granted without a limit on its supply.
fn validate_course_terms(key: &str, drug: &FormularyDrug) -> Result<(), ProductError> {
    for (name, bound) in [
        ("max_cycle_days", drug.max_cycle_days),
        ("max_course_cycles", drug.max_course_cycles),
    ] {
        match bound {
            Some(0) => {
                return Err(ProductError::at(
                    format!("{key}.{name}"),
                    "must be at least 1",
                ));
            }
            None if drug.requires_authorization => {
                return Err(ProductError::at(
                    format!("{key}.{name}"),
                    "a drug with `requires_authorization = true` needs this bound",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_text(key: &str, value: &str) -> Result<(), ProductError> {
    if value.trim().is_empty() {
        return Err(ProductError::at(key, "must not be empty"));
    }
    Ok(())
}

/// Ids (product, provider) are compared byte for byte, so they may not carry
/// whitespace that a reader cannot see.
fn check_identifier(key: &str, value: &str) -> Result<(), ProductError> {
    if value.is_empty() {
        return Err(ProductError::at(key, "must not be empty"));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ProductError::at(
            key,
            format!("`{value}` contains whitespace or control characters"),
        ));
    }
    Ok(())
}

fn check_not_negative(key: &str, amount: Fen) -> Result<(), ProductError> {
    if amount.is_negative() {
        return Err(ProductError::at(key, format!("{amount} is negative")));
    }
    Ok(())
}

fn check_rate(key: &str, rate: Decimal) -> Result<(), ProductError> {
    if rate < Decimal::ZERO || rate > Decimal::ONE {
        return Err(ProductError::at(key, format!("{rate} is outside [0, 1]")));
    }
    Ok(())
}

/// The pricing scenario's path: a relative path to a TOML or JSON file. An absolute path would
/// tie the stored product to one machine.
fn check_scenario_path(path: &str) -> Result<(), ProductError> {
    check_identifier("pricing_scenario", path)?;
    if path.starts_with('/') || path.contains('\\') || path.contains(':') {
        return Err(ProductError::at(
            "pricing_scenario",
            format!("`{path}` must be a relative path with `/` separators"),
        ));
    }
    if !(path.ends_with(".toml") || path.ends_with(".json")) {
        return Err(ProductError::at(
            "pricing_scenario",
            format!("`{path}` must name a .toml or .json scenario file"),
        ));
    }
    Ok(())
}
