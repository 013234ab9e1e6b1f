//! Duplicate detection's key (rule 4): what makes two paid items the same,
//! and its stored text form.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::domain::claim::{BenefitKind, ClaimItem, ValidClaim};
use crate::domain::codes::AtcCode;
use crate::domain::money::Fen;

/// What makes two paid items the same for duplicate detection (rule 4):
/// kind, provider, service date and amounts. Diagnosis and biomarkers are
/// deliberately left out, so a re-submission with another diagnosis is still
/// a duplicate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ItemFingerprint {
    provider_id: String,
    service_date: NaiveDate,
    amounts: FingerprintAmounts,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum FingerprintAmounts {
    Inpatient {
        total: Fen,
        basic_paid: Fen,
        out_of_catalogue: Fen,
    },
    Drug {
        drug: AtcCode,
        quantity: u32,
        unit_price: Fen,
        basic_paid: Fen,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an item fingerprint key: {0}")]
pub struct FingerprintKeyError(String);

impl ItemFingerprint {
    /// The fingerprint of an item of a claim by `provider_id` on `service_date`.
    pub fn new(provider_id: &str, service_date: NaiveDate, item: &ClaimItem) -> Self {
        let amounts = match item {
            ClaimItem::Inpatient {
                total,
                basic_paid,
                out_of_catalogue,
            } => FingerprintAmounts::Inpatient {
                total: *total,
                basic_paid: *basic_paid,
                out_of_catalogue: *out_of_catalogue,
            },
            ClaimItem::Drug {
                drug,
                quantity,
                unit_price,
                basic_paid,
                ..
            } => FingerprintAmounts::Drug {
                drug: drug.clone(),
                quantity: *quantity,
                unit_price: *unit_price,
                basic_paid: *basic_paid,
            },
        };
        ItemFingerprint {
            provider_id: provider_id.to_owned(),
            service_date,
            amounts,
        }
    }

    /// The fingerprint of `claim.items[index]`, if there is such an item.
    pub fn of_claim_item(claim: &ValidClaim, index: usize) -> Option<Self> {
        claim
            .items
            .get(index)
            .map(|item| Self::new(&claim.provider_id, claim.service_date, item))
    }

    pub fn kind(&self) -> BenefitKind {
        match self.amounts {
            FingerprintAmounts::Inpatient { .. } => BenefitKind::Inpatient,
            FingerprintAmounts::Drug { .. } => BenefitKind::SpecialtyDrug,
        }
    }

    /// Stable text form for storage and indexes: a compact JSON array with
    /// amounts in fen, e.g.
    /// `["specialty_drug","XM-PH-001","2026-08-01","L01EB04",30,51000,0]`.
    pub fn key(&self) -> String {
        let mut parts: Vec<Value> = vec![
            self.kind().as_str().into(),
            self.provider_id.clone().into(),
            self.service_date.to_string().into(),
        ];
        match &self.amounts {
            FingerprintAmounts::Inpatient {
                total,
                basic_paid,
                out_of_catalogue,
            } => parts.extend([
                total.0.into(),
                basic_paid.0.into(),
                out_of_catalogue.0.into(),
            ]),
            FingerprintAmounts::Drug {
                drug,
                quantity,
                unit_price,
                basic_paid,
            } => parts.extend([
                drug.as_str().into(),
                (*quantity).into(),
                unit_price.0.into(),
                basic_paid.0.into(),
            ]),
        }
        Value::Array(parts).to_string()
    }

    /// Reads a [`key`](Self::key) back.
    pub fn from_key(key: &str) -> Result<Self, FingerprintKeyError> {
        let bad = || FingerprintKeyError(key.to_owned());
        let parts: Vec<Value> = serde_json::from_str(key).map_err(|_| bad())?;
        let text = |index: usize| parts.get(index).and_then(Value::as_str).ok_or_else(bad);
        let fen = |index: usize| {
            parts
                .get(index)
                .and_then(Value::as_i64)
                .map(Fen)
                .ok_or_else(bad)
        };
        let provider_id = text(1)?.to_owned();
        let service_date = text(2)?.parse::<NaiveDate>().map_err(|_| bad())?;
        let amounts = match (text(0)?, parts.len()) {
            ("inpatient", 6) => FingerprintAmounts::Inpatient {
                total: fen(3)?,
                basic_paid: fen(4)?,
                out_of_catalogue: fen(5)?,
            },
            ("specialty_drug", 7) => FingerprintAmounts::Drug {
                drug: text(3)?.parse().map_err(|_| bad())?,
                quantity: parts
                    .get(4)
                    .and_then(Value::as_u64)
                    .and_then(|q| u32::try_from(q).ok())
                    .ok_or_else(bad)?,
                unit_price: fen(5)?,
                basic_paid: fen(6)?,
            },
            _ => return Err(bad()),
        };
        Ok(ItemFingerprint {
            provider_id,
            service_date,
            amounts,
        })
    }
}

impl fmt::Display for ItemFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

impl utoipa::PartialSchema for ItemFingerprint {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::domain::wire::text(
            r#"^\["(inpatient|specialty_drug)",.*\]$"#,
            "What makes two paid items the same for duplicate detection: kind, provider, \
             service date and amounts in fen, as a compact JSON array",
        )
        .into()
    }
}

impl utoipa::ToSchema for ItemFingerprint {}

impl Serialize for ItemFingerprint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.key())
    }
}

impl<'de> Deserialize<'de> for ItemFingerprint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let key = String::deserialize(deserializer)?;
        ItemFingerprint::from_key(&key).map_err(serde::de::Error::custom)
    }
}
