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
use std::fmt;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::canonical::{canonical_json, sha256_hex};
use super::claim::BenefitKind;
use super::codes::{AtcCode, Icd10Code, IcdPattern};
use super::money::Fen;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// Conditions that, when declared by a member, put claims whose diagnosis
/// falls in the same group on the pre-existing coinsurance rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenefitTerms {
    pub deductible: Fen,
    pub coinsurance: Decimal,
    pub coinsurance_preexisting: Decimal,
    pub annual_limit: Fen,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrugBenefit {
    pub terms: BenefitTerms,
    pub formulary: Vec<FormularyDrug>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

// --- the TOML file layout -------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductFile {
    id: String,
    name: String,
    premium: Fen,
    period_start: toml::value::Datetime,
    period_end: toml::value::Datetime,
    enrollment_open: toml::value::Datetime,
    enrollment_close: toml::value::Datetime,
    waiting_days: u32,
    renews: Option<String>,
    #[serde(default)]
    preexisting_groups: Vec<GroupFile>,
    inpatient: Option<TermsFile>,
    specialty_drug: Option<DrugBenefitFile>,
    qualified_prescribers: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupFile {
    name: String,
    codes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TermsFile {
    deductible: Fen,
    coinsurance: RateInput,
    coinsurance_preexisting: RateInput,
    annual_limit: Fen,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DrugBenefitFile {
    deductible: Fen,
    coinsurance: RateInput,
    coinsurance_preexisting: RateInput,
    annual_limit: Fen,
    #[serde(default)]
    formulary: Vec<DrugFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DrugFile {
    atc: String,
    name: String,
    indications: Vec<String>,
    required_biomarker: Option<String>,
    designated_providers: Vec<String>,
    #[serde(default)]
    requires_authorization: bool,
    max_cycle_days: Option<u32>,
    max_course_cycles: Option<u32>,
    #[serde(default)]
    followup_every_cycles: u32,
}

/// A rate written as a string (`"0.70"`), a TOML float (`0.7`, read by its
/// shortest decimal form) or an integer (`0`, `1`).
struct RateInput(Decimal);

impl<'de> Deserialize<'de> for RateInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RateVisitor;
        impl Visitor<'_> for RateVisitor {
            type Value = RateInput;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a rate such as \"0.70\" or 0.7")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RateInput, E> {
                v.parse::<Decimal>()
                    .map(RateInput)
                    .map_err(|_| E::custom(format!("`{v}` is not a decimal rate")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RateInput, E> {
                Ok(RateInput(Decimal::from(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RateInput, E> {
                Ok(RateInput(Decimal::from(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RateInput, E> {
                if !v.is_finite() {
                    return Err(E::custom("a rate must be a finite number"));
                }
                self.visit_str(&format!("{v}"))
            }
        }
        deserializer.deserialize_any(RateVisitor)
    }
}

fn file_date(key: &str, value: &toml::value::Datetime) -> Result<NaiveDate, ProductError> {
    match (value.date, value.time, value.offset) {
        (Some(date), None, None) => NaiveDate::from_ymd_opt(
            i32::from(date.year),
            u32::from(date.month),
            u32::from(date.day),
        )
        .ok_or_else(|| ProductError::at(key, format!("{value} is not a calendar date"))),
        _ => Err(ProductError::at(
            key,
            format!("{value} must be a plain date such as 2026-07-01, without a time"),
        )),
    }
}

fn file_patterns(key: &str, codes: &[String]) -> Result<Vec<IcdPattern>, ProductError> {
    codes
        .iter()
        .enumerate()
        .map(|(index, code)| {
            code.parse().map_err(|error: super::codes::CodeError| {
                ProductError::at(format!("{key}[{index}]"), format!("`{code}`: {error}"))
            })
        })
        .collect()
}

impl ProductFile {
    fn into_product(self) -> Result<Product, ProductError> {
        let preexisting_groups = self
            .preexisting_groups
            .into_iter()
            .enumerate()
            .map(|(index, group)| {
                Ok(PreexistingGroup {
                    codes: file_patterns(
                        &format!("preexisting_groups[{index}].codes"),
                        &group.codes,
                    )?,
                    name: group.name,
                })
            })
            .collect::<Result<Vec<_>, ProductError>>()?;
        let specialty_drug = match self.specialty_drug {
            None => None,
            Some(file) => Some(DrugBenefit {
                terms: BenefitTerms {
                    deductible: file.deductible,
                    coinsurance: file.coinsurance.0,
                    coinsurance_preexisting: file.coinsurance_preexisting.0,
                    annual_limit: file.annual_limit,
                },
                formulary: file
                    .formulary
                    .into_iter()
                    .enumerate()
                    .map(|(index, drug)| drug.into_drug(index))
                    .collect::<Result<Vec<_>, ProductError>>()?,
            }),
        };
        Ok(Product {
            period_start: file_date("period_start", &self.period_start)?,
            period_end: file_date("period_end", &self.period_end)?,
            enrollment_open: file_date("enrollment_open", &self.enrollment_open)?,
            enrollment_close: file_date("enrollment_close", &self.enrollment_close)?,
            id: self.id,
            name: self.name,
            premium: self.premium,
            waiting_days: self.waiting_days,
            renews: self.renews,
            preexisting_groups,
            inpatient: self.inpatient.map(|terms| BenefitTerms {
                deductible: terms.deductible,
                coinsurance: terms.coinsurance.0,
                coinsurance_preexisting: terms.coinsurance_preexisting.0,
                annual_limit: terms.annual_limit,
            }),
            specialty_drug,
            qualified_prescribers: self.qualified_prescribers,
        })
    }
}

impl DrugFile {
    fn into_drug(self, index: usize) -> Result<FormularyDrug, ProductError> {
        let key = format!("specialty_drug.formulary[{index}]");
        let atc = self.atc.parse().map_err(|error: super::codes::CodeError| {
            ProductError::at(format!("{key}.atc"), format!("`{}`: {error}", self.atc))
        })?;
        Ok(FormularyDrug {
            atc,
            indications: file_patterns(&format!("{key}.indications"), &self.indications)?,
            name: self.name,
            required_biomarker: self.required_biomarker,
            designated_providers: self.designated_providers,
            requires_authorization: self.requires_authorization,
            max_cycle_days: self.max_cycle_days,
            max_course_cycles: self.max_course_cycles,
            followup_every_cycles: self.followup_every_cycles,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::str::FromStr;

    /// A small consistent product used across the domain tests.
    pub(crate) const SAMPLE: &str = r#"
        id = "sample-2026"
        name = "Sample plan 2026"
        premium = "129.00"
        period_start = 2026-07-01
        period_end = 2027-06-30
        enrollment_open = 2026-07-01
        enrollment_close = 2026-12-31
        waiting_days = 30
        renews = "sample-2025"

        [[preexisting_groups]]
        name = "malignant tumours"
        codes = ["C00-C97"]

        [[preexisting_groups]]
        name = "end-stage renal disease"
        codes = ["N18.5", "N18.6"]

        [inpatient]
        deductible = "20000.00"
        coinsurance = "0.70"
        coinsurance_preexisting = 0.5
        annual_limit = 1500000

        [specialty_drug]
        deductible = 0
        coinsurance = "0.70"
        coinsurance_preexisting = "0.30"
        annual_limit = "3000000.00"

        [[specialty_drug.formulary]]
        atc = "L01EB04"
        name = "osimertinib"
        indications = ["C34"]
        required_biomarker = "EGFR"
        designated_providers = ["XM-PH-001", "XM-PH-002"]

        [[specialty_drug.formulary]]
        atc = "L01FD01"
        name = "trastuzumab"
        indications = ["C50", "C16"]
        required_biomarker = "HER2"
        designated_providers = ["XM-PH-001"]
    "#;

    pub(crate) fn sample() -> Product {
        Product::from_toml_str(SAMPLE).unwrap()
    }

    fn refused(text: &str) -> ProductError {
        Product::from_toml_str(text).unwrap_err()
    }

    fn replaced(from: &str, to: &str) -> String {
        assert!(SAMPLE.contains(from), "fixture does not contain {from:?}");
        SAMPLE.replacen(from, to, 1)
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::from_str(s).unwrap()
    }

    #[test]
    fn loads_a_consistent_file() {
        let product = sample();
        assert_eq!(product.id, "sample-2026");
        assert_eq!(product.premium, Fen(12_900));
        assert_eq!(product.period_start, date("2026-07-01"));
        assert_eq!(product.waiting_days, 30);
        assert_eq!(product.renews.as_deref(), Some("sample-2025"));
        let inpatient = product.inpatient.as_ref().unwrap();
        assert_eq!(inpatient.deductible, Fen(2_000_000));
        assert_eq!(inpatient.coinsurance, Decimal::from_str("0.70").unwrap());
        assert_eq!(
            inpatient.coinsurance_preexisting,
            Decimal::from_str("0.5").unwrap()
        );
        assert_eq!(inpatient.annual_limit, Fen(150_000_000));
        let drugs = product.specialty_drug.as_ref().unwrap();
        assert_eq!(drugs.terms.deductible, Fen::ZERO);
        assert_eq!(drugs.formulary.len(), 2);
        let osimertinib = product.formulary_drug(&"L01EB04".parse().unwrap()).unwrap();
        assert_eq!(osimertinib.required_biomarker.as_deref(), Some("EGFR"));
        assert!(osimertinib.indicated_for(&"C34.1".parse().unwrap()));
        assert!(osimertinib.dispensed_by("XM-PH-002"));
        assert!(!osimertinib.dispensed_by("xm-ph-002"));
        assert!(
            product
                .formulary_drug(&"L01FF02".parse().unwrap())
                .is_none()
        );
    }

    #[test]
    fn round_trips_through_json_with_the_same_hash() {
        let product = sample();
        let json = product.canonical_json();
        let reloaded = Product::from_json_value(serde_json::from_str(&json).unwrap()).unwrap();
        assert_eq!(reloaded, product);
        assert_eq!(reloaded.content_hash(), product.content_hash());
        assert_eq!(product.content_hash().len(), 64);
        assert!(json.contains(r#""premium":"129.00""#), "{json}");
        assert!(json.contains(r#""coinsurance":"0.70""#), "{json}");
    }

    #[test]
    fn any_change_of_terms_changes_the_hash() {
        let product = sample();
        let mut changed = product.clone();
        changed.inpatient.as_mut().unwrap().coinsurance = Decimal::from_str("0.71").unwrap();
        assert_ne!(changed.content_hash(), product.content_hash());
        let mut changed = product.clone();
        changed.specialty_drug.as_mut().unwrap().formulary[0]
            .designated_providers
            .push("XM-PH-009".into());
        assert_ne!(changed.content_hash(), product.content_hash());
    }

    #[test]
    fn preexisting_rate_needs_a_declared_code_in_the_diagnosis_group() {
        let product = sample();
        let code = |s: &str| Icd10Code::from_str(s).unwrap();
        let lung = code("C34.1");
        assert!(product.preexisting_applies(&lung, &[code("C50.9")]));
        assert!(!product.preexisting_applies(&lung, &[code("N18.5")]));
        assert!(!product.preexisting_applies(&lung, &[]));
        assert!(!product.preexisting_applies(&code("J18.9"), &[code("C34")]));
        assert!(product.preexisting_applies(&code("N18.6"), &[code("n18.5")]));
    }

    #[test]
    fn dates_and_windows_are_inclusive() {
        let product = sample();
        assert!(product.period_contains(date("2026-07-01")));
        assert!(product.period_contains(date("2027-06-30")));
        assert!(!product.period_contains(date("2026-06-30")));
        assert!(!product.period_contains(date("2027-07-01")));
        assert!(product.enrollment_open_on(date("2026-12-31")));
        assert!(!product.enrollment_open_on(date("2027-01-01")));
    }

    #[test]
    fn refusals_name_the_key() {
        let cases: Vec<(String, &str)> = vec![
            (
                replaced("period_end = 2027-06-30", "period_end = 2026-06-30"),
                "period_end",
            ),
            (
                replaced(
                    "enrollment_open = 2026-07-01",
                    "enrollment_open = 2026-06-30",
                ),
                "enrollment_open",
            ),
            (
                replaced(
                    "enrollment_close = 2026-12-31",
                    "enrollment_close = 2027-07-01",
                ),
                "enrollment_close",
            ),
            (
                replaced(
                    "enrollment_close = 2026-12-31",
                    "enrollment_close = 2026-06-30",
                ),
                "enrollment_close",
            ),
            (
                replaced("premium = \"129.00\"", "premium = \"-1\""),
                "premium",
            ),
            (
                replaced("deductible = \"20000.00\"", "deductible = \"-20000.00\""),
                "inpatient.deductible",
            ),
            (
                replaced("annual_limit = \"3000000.00\"", "annual_limit = -5"),
                "specialty_drug.annual_limit",
            ),
            (
                replaced("coinsurance = \"0.70\"", "coinsurance = 1.2"),
                "inpatient.coinsurance",
            ),
            (
                replaced(
                    "coinsurance_preexisting = \"0.30\"",
                    "coinsurance_preexisting = \"-0.1\"",
                ),
                "specialty_drug.coinsurance_preexisting",
            ),
            (
                replaced("\"C00-C97\"", "\"C97-C00\""),
                "preexisting_groups[0].codes[0]",
            ),
            (
                replaced("\"N18.6\"", "\"N18-6x\""),
                "preexisting_groups[1].codes[1]",
            ),
            (
                replaced("atc = \"L01FD01\"", "atc = \"L01FD1\""),
                "specialty_drug.formulary[1].atc",
            ),
            (
                replaced("atc = \"L01FD01\"", "atc = \"l01eb04\""),
                "specialty_drug.formulary[1].atc",
            ),
            (
                replaced(
                    "indications = [\"C50\", \"C16\"]",
                    "indications = [\"C50\", \"breast\"]",
                ),
                "specialty_drug.formulary[1].indications[1]",
            ),
            (
                replaced("indications = [\"C34\"]", "indications = []"),
                "specialty_drug.formulary[0].indications",
            ),
            (
                replaced(
                    "designated_providers = [\"XM-PH-001\"]",
                    "designated_providers = []",
                ),
                "specialty_drug.formulary[1].designated_providers",
            ),
            (
                replaced(
                    "designated_providers = [\"XM-PH-001\"]",
                    "designated_providers = [\"XM-PH-001\", \"XM-PH-001\"]",
                ),
                "specialty_drug.formulary[1].designated_providers[1]",
            ),
            (
                replaced(
                    "designated_providers = [\"XM-PH-001\"]",
                    "designated_providers = [\"XM PH\"]",
                ),
                "specialty_drug.formulary[1].designated_providers[0]",
            ),
            (
                replaced("waiting_days = 30", "waiting_days = 365"),
                "waiting_days",
            ),
            (
                replaced("renews = \"sample-2025\"", "renews = \"sample-2026\""),
                "renews",
            ),
            (replaced("id = \"sample-2026\"", "id = \"\""), "id"),
            (
                replaced("name = \"Sample plan 2026\"", "name = \" \""),
                "name",
            ),
            (
                replaced(
                    "name = \"end-stage renal disease\"",
                    "name = \"malignant tumours\"",
                ),
                "preexisting_groups[1].name",
            ),
            (
                replaced("codes = [\"N18.5\", \"N18.6\"]", "codes = []"),
                "preexisting_groups[1].codes",
            ),
            (
                replaced(
                    "period_start = 2026-07-01",
                    "period_start = 2026-07-01T08:00:00",
                ),
                "period_start",
            ),
            (
                replaced("required_biomarker = \"HER2\"", "required_biomarker = \"\""),
                "specialty_drug.formulary[1].required_biomarker",
            ),
        ];
        for (text, key) in cases {
            let error = refused(&text);
            assert_eq!(error.key(), Some(key), "{error}");
            assert!(error.to_string().contains(key), "{error}");
        }
    }

    #[test]
    fn a_product_without_benefits_or_drugs_is_refused() {
        let no_drugs = SAMPLE
            .split("[[specialty_drug.formulary]]")
            .next()
            .unwrap()
            .to_owned();
        assert_eq!(refused(&no_drugs).key(), Some("specialty_drug.formulary"));
        let no_benefits = SAMPLE.split("[inpatient]").next().unwrap().to_owned();
        assert_eq!(refused(&no_benefits).key(), Some("inpatient"));
    }

    #[test]
    fn parse_errors_name_the_key_too() {
        for (text, key) in [
            (
                replaced("waiting_days = 30", "waiting_days = 30\nwaiting_months = 1"),
                "waiting_months",
            ),
            (
                replaced("coinsurance = \"0.70\"", "coinsurance = \"seventy\""),
                "coinsurance",
            ),
            (
                replaced("premium = \"129.00\"", "premium = \"129.001\""),
                "premium",
            ),
            (
                replaced("premium = \"129.00\"", "premium = \"a lot\""),
                "premium",
            ),
            (
                replaced("waiting_days = 30", "waiting_days = -1"),
                "waiting_days",
            ),
            (
                replaced(
                    "name = \"osimertinib\"",
                    "name = \"osimertinib\"\ndose = 80",
                ),
                "dose",
            ),
            (replaced("id = \"sample-2026\"\n", ""), "id"),
        ] {
            let error = refused(&text);
            assert!(matches!(error, ProductError::Parse(_)), "{error}");
            assert!(error.to_string().contains(key), "{key}: {error}");
        }
    }

    pub(crate) const DEMO_2025: &str = include_str!("../../../products/xiamen-2025.toml");
    pub(crate) const DEMO_2026: &str = include_str!("../../../products/xiamen-2026.toml");

    #[test]
    fn shipped_demo_products_load_and_chain() {
        let previous = Product::from_toml_str(DEMO_2025).unwrap();
        let current = Product::from_toml_str(DEMO_2026).unwrap();
        assert_eq!(current.id, "xiamen-2026");
        assert_eq!(current.renews.as_deref(), Some(previous.id.as_str()));
        assert_eq!(previous.renews, None);
        assert_eq!(previous.period_end.succ_opt(), Some(current.period_start));
        // Usable on 2026-11-28: enrolment open, and that day inside the period.
        let today = date("2026-11-28");
        assert!(current.enrollment_open_on(today));
        assert!(current.period_contains(today));
        assert!(!previous.enrollment_open_on(today));
        assert_eq!(current.premium, Fen(12_900));
        let drugs = current.specialty_drug.as_ref().unwrap();
        assert_eq!(drugs.terms.deductible, Fen::ZERO);
        assert_eq!(drugs.formulary.len(), 20);
        assert_eq!(
            current.inpatient.as_ref().unwrap().deductible,
            Fen(2_000_000)
        );
        // Same terms in both years: only identity, dates and `renews` differ.
        let mut aligned = previous.clone();
        aligned.id = current.id.clone();
        aligned.name = current.name.clone();
        aligned.period_start = current.period_start;
        aligned.period_end = current.period_end;
        aligned.enrollment_open = current.enrollment_open;
        aligned.enrollment_close = current.enrollment_close;
        aligned.renews = current.renews.clone();
        assert_eq!(aligned, current);
        assert_ne!(previous.content_hash(), current.content_hash());
    }

    #[test]
    fn course_terms_default_to_none_and_keep_the_hash() {
        let product = sample();
        let osimertinib = &product.specialty_drug.as_ref().unwrap().formulary[0];
        assert!(!osimertinib.requires_authorization);
        assert_eq!(osimertinib.max_cycle_days, None);
        assert_eq!(osimertinib.max_course_cycles, None);
        assert_eq!(osimertinib.followup_every_cycles, 0);
        assert_eq!(product.qualified_prescribers, None);
        assert!(product.prescriber_qualified("ANY-HOSPITAL"));
        let json = product.canonical_json();
        for key in [
            "requires_authorization",
            "max_cycle_days",
            "max_course_cycles",
            "followup_every_cycles",
            "qualified_prescribers",
        ] {
            assert!(!json.contains(key), "{key} in {json}");
        }
    }

    #[test]
    fn course_terms_are_read_and_hashed() {
        let text = replaced(
            "designated_providers = [\"XM-PH-001\", \"XM-PH-002\"]",
            "designated_providers = [\"XM-PH-001\", \"XM-PH-002\"]\n\
             requires_authorization = true\nmax_cycle_days = 30\n\
             max_course_cycles = 12\nfollowup_every_cycles = 3",
        )
        .replacen(
            "renews = \"sample-2025\"",
            "renews = \"sample-2025\"\nqualified_prescribers = [\"XM-H-001\"]",
            1,
        );
        let product = Product::from_toml_str(&text).unwrap();
        let drug = &product.specialty_drug.as_ref().unwrap().formulary[0];
        assert!(drug.requires_authorization);
        assert_eq!(drug.max_cycle_days, Some(30));
        assert_eq!(drug.max_course_cycles, Some(12));
        assert_eq!(drug.followup_every_cycles, 3);
        assert!(product.prescriber_qualified("XM-H-001"));
        assert!(!product.prescriber_qualified("XM-H-002"));
        assert_ne!(product.content_hash(), sample().content_hash());
        let reloaded =
            Product::from_json_value(serde_json::from_str(&product.canonical_json()).unwrap())
                .unwrap();
        assert_eq!(reloaded, product);
        let mut none = product.clone();
        none.qualified_prescribers = Some(Vec::new());
        assert!(!none.prescriber_qualified("XM-H-001"));
    }

    #[test]
    fn course_terms_refusals_name_the_key() {
        let osimertinib = "designated_providers = [\"XM-PH-001\", \"XM-PH-002\"]";
        let with = |extra: &str| replaced(osimertinib, &format!("{osimertinib}\n{extra}"));
        let cases = [
            (
                with("max_cycle_days = 0"),
                "specialty_drug.formulary[0].max_cycle_days",
            ),
            (
                with("max_cycle_days = 30\nmax_course_cycles = 0"),
                "specialty_drug.formulary[0].max_course_cycles",
            ),
            (
                with("requires_authorization = true\nmax_course_cycles = 12"),
                "specialty_drug.formulary[0].max_cycle_days",
            ),
            (
                with("requires_authorization = true\nmax_cycle_days = 30"),
                "specialty_drug.formulary[0].max_course_cycles",
            ),
            (
                replaced(
                    "renews = \"sample-2025\"",
                    "renews = \"sample-2025\"\nqualified_prescribers = [\"H1\", \"H1\"]",
                ),
                "qualified_prescribers[1]",
            ),
            (
                replaced(
                    "renews = \"sample-2025\"",
                    "renews = \"sample-2025\"\nqualified_prescribers = [\"H 1\"]",
                ),
                "qualified_prescribers[0]",
            ),
        ];
        for (text, key) in cases {
            let error = refused(&text);
            assert_eq!(error.key(), Some(key), "{error}");
        }
        let negative = with("followup_every_cycles = -1");
        assert!(matches!(refused(&negative), ProductError::Parse(_)));
    }

    #[test]
    fn waiting_period_may_be_zero_and_renews_optional() {
        let text = replaced("waiting_days = 30", "waiting_days = 0").replacen(
            "renews = \"sample-2025\"\n",
            "",
            1,
        );
        let product = Product::from_toml_str(&text).unwrap();
        assert_eq!(product.waiting_days, 0);
        assert_eq!(product.renews, None);
    }
}
