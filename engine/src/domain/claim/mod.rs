//! Claim submissions and their validation.
//!
//! The submission is deserialised into [`ClaimSubmission`], which is raw on
//! purpose: amounts, dates, codes and items stay JSON values or strings so
//! that every problem becomes a field-level error with a path such as
//! `items[0].total`, instead of one opaque deserialisation failure.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use utoipa::ToSchema;

use super::codes::{AtcCode, Icd10Code};
use super::money::{Fen, MoneyError};
use super::request_schemas;

/// The benefit a claim draws on; each has its own balance.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum BenefitKind {
    Inpatient,
    SpecialtyDrug,
}

impl BenefitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BenefitKind::Inpatient => "inpatient",
            BenefitKind::SpecialtyDrug => "specialty_drug",
        }
    }

    pub fn parse(text: &str) -> Option<BenefitKind> {
        match text {
            "inpatient" => Some(BenefitKind::Inpatient),
            "specialty_drug" => Some(BenefitKind::SpecialtyDrug),
            _ => None,
        }
    }
}

/// A claim as submitted. Missing fields default to empty values and are
/// then reported field by field, so every field is required; unknown
/// top-level fields are refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimSubmission {
    #[serde(default)]
    #[schema(required = true, minimum = 1)]
    pub member_id: i64,
    #[serde(default)]
    #[schema(required = true, value_type = BenefitKind)]
    pub kind: String,
    #[serde(default)]
    #[schema(required = true, schema_with = request_schemas::service_date)]
    pub service_date: String,
    #[serde(default)]
    #[schema(required = true, schema_with = request_schemas::provider_id)]
    pub provider_id: String,
    #[serde(default)]
    #[schema(required = true, schema_with = super::codes::icd10_input_schema)]
    pub diagnosis: String,
    /// Inpatient: one stay per item; specialty drug: one dispensed drug per item.
    #[serde(default)]
    #[schema(required = true, schema_with = request_schemas::claim_items)]
    pub items: Vec<Value>,
    /// The authorised course a dispensing is made in (a drug claim of one
    /// item only). Whether it exists is checked by storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_id: Option<i64>,
}

/// A biomarker result attached to a drug item (e.g. EGFR positive).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Biomarker {
    #[schema(schema_with = request_schemas::marker)]
    pub marker: String,
    pub positive: bool,
}

impl Biomarker {
    /// Marker names compare case-insensitively (`egfr` is `EGFR`).
    pub fn is_positive_for(&self, marker: &str) -> bool {
        self.positive && self.marker.trim().to_lowercase() == marker.trim().to_lowercase()
    }
}

/// One line of a validated claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClaimItem {
    /// A hospital stay: eligible = total - basic_paid - out_of_catalogue.
    Inpatient {
        total: Fen,
        basic_paid: Fen,
        out_of_catalogue: Fen,
    },
    /// A dispensed specialty drug: eligible = quantity x unit_price - basic_paid.
    Drug {
        drug: AtcCode,
        quantity: u32,
        unit_price: Fen,
        basic_paid: Fen,
        biomarkers: Vec<Biomarker>,
    },
}

impl ClaimItem {
    pub fn kind(&self) -> BenefitKind {
        match self {
            ClaimItem::Inpatient { .. } => BenefitKind::Inpatient,
            ClaimItem::Drug { .. } => BenefitKind::SpecialtyDrug,
        }
    }

    /// The gross amount billed: the stay's total, or quantity x unit price.
    pub fn submitted(&self) -> Result<Fen, MoneyError> {
        match self {
            ClaimItem::Inpatient { total, .. } => Ok(*total),
            ClaimItem::Drug {
                quantity,
                unit_price,
                ..
            } => unit_price
                .checked_mul(i64::from(*quantity))
                .ok_or(MoneyError::Overflow),
        }
    }

    pub fn basic_paid(&self) -> Fen {
        match self {
            ClaimItem::Inpatient { basic_paid, .. } | ClaimItem::Drug { basic_paid, .. } => {
                *basic_paid
            }
        }
    }

    /// What the product may consider, E. Validation guarantees it is neither
    /// negative nor overflowing; for items built by hand the error says which.
    pub fn eligible(&self) -> Result<Fen, MoneyError> {
        let not_basic = self.submitted()?.try_sub(self.basic_paid())?;
        let eligible = match self {
            ClaimItem::Inpatient {
                out_of_catalogue, ..
            } => not_basic.try_sub(*out_of_catalogue)?,
            ClaimItem::Drug { .. } => not_basic,
        };
        if eligible.is_negative() {
            return Err(MoneyError::Negative);
        }
        Ok(eligible)
    }

    fn canonical_json(&self) -> Value {
        let mut object = Map::new();
        match self {
            ClaimItem::Inpatient {
                total,
                basic_paid,
                out_of_catalogue,
            } => {
                object.insert("total_fen".into(), total.0.into());
                object.insert("basic_paid_fen".into(), basic_paid.0.into());
                object.insert("out_of_catalogue_fen".into(), out_of_catalogue.0.into());
            }
            ClaimItem::Drug {
                drug,
                quantity,
                unit_price,
                basic_paid,
                biomarkers,
            } => {
                object.insert("drug".into(), drug.as_str().into());
                object.insert("quantity".into(), (*quantity).into());
                object.insert("unit_price_fen".into(), unit_price.0.into());
                object.insert("basic_paid_fen".into(), basic_paid.0.into());
                let markers = biomarkers
                    .iter()
                    .map(|biomarker| {
                        let mut marker = Map::new();
                        marker.insert("marker".into(), biomarker.marker.clone().into());
                        marker.insert("positive".into(), biomarker.positive.into());
                        Value::Object(marker)
                    })
                    .collect();
                object.insert("biomarkers".into(), Value::Array(markers));
            }
        }
        Value::Object(object)
    }
}

/// A claim that passed validation. Whether the member exists is checked by
/// storage, which answers [`ValidationErrors::unknown_member`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidClaim {
    pub member_id: i64,
    pub kind: BenefitKind,
    pub service_date: NaiveDate,
    pub provider_id: String,
    pub diagnosis: Icd10Code,
    pub items: Vec<ClaimItem>,
    /// Absent from claims stored before courses existed, and from the
    /// canonical form when absent, so their idempotency hashes stay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_id: Option<i64>,
}

impl ValidClaim {
    /// The claim in the form compared for idempotency: amounts as integer fen,
    /// codes normalised, dates ISO. Serialise it with
    /// [`canonical_json`](super::canonical::canonical_json) (sorted keys) before hashing, so
    /// that `"total": 1234.5` and `"total": "1234.50"` hash alike.
    pub fn canonical_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("member_id".into(), self.member_id.into());
        object.insert("kind".into(), self.kind.as_str().into());
        object.insert("service_date".into(), self.service_date.to_string().into());
        object.insert("provider_id".into(), self.provider_id.clone().into());
        object.insert("diagnosis".into(), self.diagnosis.as_normalised().into());
        object.insert(
            "items".into(),
            Value::Array(self.items.iter().map(ClaimItem::canonical_json).collect()),
        );
        if let Some(id) = self.authorization_id {
            object.insert("authorization_id".into(), id.into());
        }
        Value::Object(object)
    }
}

/// Quantity bounds of a drug item.
pub const MIN_QUANTITY: u32 = 1;
pub const MAX_QUANTITY: u32 = 100_000;
/// More lines than this in one claim is a client error, and the bound keeps
/// claim totals far from overflow.
pub const MAX_ITEMS: usize = 1_000;
pub(crate) const MAX_PROVIDER_ID_CHARS: usize = 64;
pub(crate) const MAX_MARKER_CHARS: usize = 64;
/// Most biomarker results one item (or one appealed item) carries: far more
/// than any targeted-drug rule reads, few enough that a body cannot make
/// one item cost unbounded work.
pub const MAX_BIOMARKERS: usize = 32;

mod items;
#[cfg(test)]
mod tests;
mod validate;

pub(crate) use items::{DRUG_FIELDS, INPATIENT_FIELDS, biomarkers_field};
pub(crate) use validate::{DateProblem, check_hospital_id, parse_iso_date};
pub use validate::{iso_date, validate_claim};
