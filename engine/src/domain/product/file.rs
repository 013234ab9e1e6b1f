//! The TOML file layout of a product, read into a [`Product`]: dates,
//! rates and code patterns checked where they are read, with the key named.

use std::fmt;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

use crate::domain::codes::IcdPattern;
use crate::domain::money::Fen;

use super::{BenefitTerms, DrugBenefit, FormularyDrug, PreexistingGroup, Product, ProductError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProductFile {
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
    pricing_scenario: Option<String>,
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
            code.parse()
                .map_err(|error: crate::domain::codes::CodeError| {
                    ProductError::at(format!("{key}[{index}]"), format!("`{code}`: {error}"))
                })
        })
        .collect()
}

impl ProductFile {
    pub(super) fn into_product(self) -> Result<Product, ProductError> {
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
            pricing_scenario: self.pricing_scenario,
        })
    }
}

impl DrugFile {
    fn into_drug(self, index: usize) -> Result<FormularyDrug, ProductError> {
        let key = format!("specialty_drug.formulary[{index}]");
        let atc = self
            .atc
            .parse()
            .map_err(|error: crate::domain::codes::CodeError| {
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
