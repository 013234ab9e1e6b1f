//! Claim submissions and their validation.
//!
//! The submission is deserialised into [`ClaimSubmission`], which is raw on
//! purpose: amounts, dates, codes and items stay JSON values or strings so
//! that every problem becomes a field-level error with a path such as
//! `items[0].total`, instead of one opaque deserialisation failure.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::codes::{AtcCode, Icd10Code};
use super::money::{Fen, MoneyError, parse_amount};
use super::validation::ValidationErrors;

/// The benefit a claim draws on; each has its own balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
/// then reported field by field; unknown top-level fields are refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimSubmission {
    #[serde(default)]
    pub member_id: i64,
    #[serde(default)]
    pub kind: String,
    /// `YYYY-MM-DD`; for a hospital stay, the admission date.
    #[serde(default)]
    pub service_date: String,
    #[serde(default)]
    pub provider_id: String,
    #[serde(default)]
    pub diagnosis: String,
    #[serde(default)]
    pub items: Vec<Value>,
    /// The authorised course a dispensing is made in (a drug claim of one
    /// item only). Whether it exists is checked by storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_id: Option<i64>,
}

/// A biomarker result attached to a drug item (e.g. EGFR positive).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Biomarker {
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
const MAX_PROVIDER_ID_CHARS: usize = 64;
const MAX_MARKER_CHARS: usize = 64;
/// Most biomarker results one item (or one appealed item) carries: far more
/// than any targeted-drug rule reads, few enough that a body cannot make
/// one item cost unbounded work.
pub const MAX_BIOMARKERS: usize = 32;

/// Validates a submission completely and returns every problem found.
/// `today_china` is the current date in China (service dates after it are in
/// the future).
pub fn validate_claim(
    submission: &ClaimSubmission,
    today_china: NaiveDate,
) -> Result<ValidClaim, ValidationErrors> {
    let mut errors = ValidationErrors::new();

    if submission.member_id <= 0 {
        errors.push(
            "member_id",
            "invalid_member_id",
            "member_id must be a positive member number",
        );
    }

    let kind = BenefitKind::parse(&submission.kind);
    if kind.is_none() {
        errors.push(
            "kind",
            "invalid_kind",
            "kind must be `inpatient` or `specialty_drug`",
        );
    }

    let service_date = valid_service_date(&submission.service_date, today_china, &mut errors);

    let provider_id = submission.provider_id.as_str();
    check_provider_id(provider_id, &mut errors);

    let diagnosis = match submission.diagnosis.parse::<Icd10Code>() {
        Ok(code) => Some(code),
        Err(error) => {
            errors.push("diagnosis", error.code(), error.to_string());
            None
        }
    };

    let items = valid_items(&submission.items, kind, &mut errors);
    check_authorization_id(submission, kind, &mut errors);

    match (kind, service_date, diagnosis) {
        (Some(kind), Some(service_date), Some(diagnosis)) if errors.is_empty() => Ok(ValidClaim {
            member_id: submission.member_id,
            kind,
            service_date,
            provider_id: provider_id.to_owned(),
            diagnosis,
            items,
            authorization_id: submission.authorization_id,
        }),
        _ => Err(errors),
    }
}

/// A course is named only on a drug claim of one item (one dispensing).
fn check_authorization_id(
    submission: &ClaimSubmission,
    kind: Option<BenefitKind>,
    errors: &mut ValidationErrors,
) {
    let Some(id) = submission.authorization_id else {
        return;
    };
    let problem = if id <= 0 {
        Some((
            "invalid_authorization_id",
            "authorization_id must be a positive number",
        ))
    } else if kind == Some(BenefitKind::Inpatient) {
        Some((
            "authorization_not_allowed",
            "authorization_id is for specialty_drug claims, not inpatient ones",
        ))
    } else if submission.items.len() > 1 {
        Some((
            "authorization_not_allowed",
            "a claim against an authorisation is one dispensing: exactly one item",
        ))
    } else {
        None
    };
    if let Some((code, detail)) = problem {
        errors.push("authorization_id", code, detail);
    }
}

/// The service date, if it is a real day not after today in China.
fn valid_service_date(
    text: &str,
    today_china: NaiveDate,
    errors: &mut ValidationErrors,
) -> Option<NaiveDate> {
    match parse_iso_date(text) {
        Err(DateProblem::Malformed) => {
            errors.push(
                "service_date",
                "invalid_date",
                "service_date must be a calendar date in the form YYYY-MM-DD",
            );
            None
        }
        Err(DateProblem::NoSuchDay) => {
            errors.push(
                "service_date",
                "invalid_date",
                "service_date is not a day of the calendar",
            );
            None
        }
        Ok(date) if date > today_china => {
            errors.push(
                "service_date",
                "future_date",
                format!("service_date is after today ({today_china})"),
            );
            None
        }
        Ok(date) => Some(date),
    }
}

fn check_provider_id(provider_id: &str, errors: &mut ValidationErrors) {
    check_hospital_id("provider_id", provider_id, errors);
}

/// A provider or hospital id: 1 to 64 characters without whitespace.
pub(crate) fn check_hospital_id(field: &str, provider_id: &str, errors: &mut ValidationErrors) {
    if provider_id.is_empty()
        || provider_id.chars().count() > MAX_PROVIDER_ID_CHARS
        || provider_id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        errors.push(
            field,
            if field == "provider_id" {
                "invalid_provider_id"
            } else {
                "invalid_hospital_id"
            },
            format!("{field} must be 1 to {MAX_PROVIDER_ID_CHARS} characters without whitespace"),
        );
    }
}

/// The items that validate, each read as `kind` (or, when the kind is
/// unknown, by its own shape); every item's problems go into `errors`.
fn valid_items(
    raw_items: &[Value],
    kind: Option<BenefitKind>,
    errors: &mut ValidationErrors,
) -> Vec<ClaimItem> {
    let mut items = Vec::with_capacity(raw_items.len());
    if raw_items.is_empty() {
        errors.push("items", "empty_items", "a claim has at least one item");
    } else if raw_items.len() > MAX_ITEMS {
        errors.push(
            "items",
            "too_many_items",
            format!("a claim has at most {MAX_ITEMS} items"),
        );
    } else {
        for (index, raw) in raw_items.iter().enumerate() {
            // With an unknown kind, read each item by its shape so that its
            // own mistakes are still reported.
            let item_kind = kind.unwrap_or(if raw.get("drug").is_some() {
                BenefitKind::SpecialtyDrug
            } else {
                BenefitKind::Inpatient
            });
            if let Some(item) = validate_item(raw, item_kind, index, errors) {
                items.push(item);
            }
        }
    }
    items
}

pub(crate) enum DateProblem {
    Malformed,
    NoSuchDay,
}

/// Strict `YYYY-MM-DD` (chrono alone also accepts `2023-2-3`).
pub(crate) fn parse_iso_date(text: &str) -> Result<NaiveDate, DateProblem> {
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(position, b)| position == 4 || position == 7 || b.is_ascii_digit());
    if !shape_ok {
        return Err(DateProblem::Malformed);
    }
    let field = |range: std::ops::Range<usize>| text[range].parse::<u32>().ok();
    let (Some(year), Some(month), Some(day)) = (field(0..4), field(5..7), field(8..10)) else {
        return Err(DateProblem::Malformed);
    };
    let year = i32::try_from(year).map_err(|_| DateProblem::Malformed)?;
    NaiveDate::from_ymd_opt(year, month, day).ok_or(DateProblem::NoSuchDay)
}

const INPATIENT_FIELDS: &[&str] = &["total", "basic_paid", "out_of_catalogue"];
const DRUG_FIELDS: &[&str] = &["drug", "quantity", "unit_price", "basic_paid", "biomarkers"];

fn validate_item(
    raw: &Value,
    kind: BenefitKind,
    index: usize,
    errors: &mut ValidationErrors,
) -> Option<ClaimItem> {
    let path = format!("items[{index}]");
    let Some(object) = raw.as_object() else {
        errors.push(path, "invalid_item", "an item is a JSON object");
        return None;
    };
    let known = match kind {
        BenefitKind::Inpatient => INPATIENT_FIELDS,
        BenefitKind::SpecialtyDrug => DRUG_FIELDS,
    };
    let mut unknown: BTreeSet<&str> = BTreeSet::new();
    for key in object.keys() {
        if !known.contains(&key.as_str()) {
            unknown.insert(key);
        }
    }
    for key in unknown {
        errors.push(
            format!("{path}.{key}"),
            "unknown_field",
            format!(
                "`{key}` is not a field of a {} item (expected {})",
                kind.as_str(),
                known.join(", ")
            ),
        );
    }
    let errors_before = errors.0.len();
    let item = match kind {
        BenefitKind::Inpatient => inpatient_item(object, &path, errors),
        BenefitKind::SpecialtyDrug => drug_item(object, &path, errors),
    };
    match item {
        Some(item) if errors.0.len() == errors_before => Some(item),
        Some(_) => None,
        None => {
            // Every refusal above names its field; this keeps a missing item
            // from ever passing as a shorter valid claim.
            if errors.0.len() == errors_before {
                errors.push(path, "invalid_item", "the item could not be read");
            }
            None
        }
    }
}

fn amount_field(
    object: &Map<String, Value>,
    path: &str,
    key: &str,
    errors: &mut ValidationErrors,
) -> Option<Fen> {
    let field = format!("{path}.{key}");
    match object.get(key) {
        None => {
            errors.push(field, "missing_field", format!("`{key}` is required"));
            None
        }
        Some(value) => match parse_amount(value) {
            Ok(amount) => Some(amount),
            Err(error) => {
                errors.push(field, error.code(), error.to_string());
                None
            }
        },
    }
}

fn inpatient_item(
    object: &Map<String, Value>,
    path: &str,
    errors: &mut ValidationErrors,
) -> Option<ClaimItem> {
    let total = amount_field(object, path, "total", errors);
    let basic_paid = amount_field(object, path, "basic_paid", errors);
    let out_of_catalogue = amount_field(object, path, "out_of_catalogue", errors);
    let (total, basic_paid, out_of_catalogue) = (total?, basic_paid?, out_of_catalogue?);
    // Each amount is at most 100,000,000.00, so the sum cannot overflow;
    // should it ever, the item is refused rather than silently dropped.
    let Some(covered_elsewhere) = basic_paid.checked_add(out_of_catalogue) else {
        errors.push(
            path,
            "amount_too_large",
            "basic_paid + out_of_catalogue overflows",
        );
        return None;
    };
    if covered_elsewhere > total {
        errors.push(
            path,
            "exceeds_total",
            "basic_paid + out_of_catalogue exceeds total",
        );
        return None;
    }
    Some(ClaimItem::Inpatient {
        total,
        basic_paid,
        out_of_catalogue,
    })
}

fn drug_item(
    object: &Map<String, Value>,
    path: &str,
    errors: &mut ValidationErrors,
) -> Option<ClaimItem> {
    let drug = match object.get("drug") {
        None => {
            errors.push(
                format!("{path}.drug"),
                "missing_field",
                "`drug` is required",
            );
            None
        }
        Some(Value::String(text)) => match text.parse::<AtcCode>() {
            Ok(code) => Some(code),
            Err(error) => {
                errors.push(format!("{path}.drug"), error.code(), error.to_string());
                None
            }
        },
        Some(_) => {
            errors.push(
                format!("{path}.drug"),
                "malformed_atc",
                "`drug` is an ATC code string such as \"L01EB04\"",
            );
            None
        }
    };
    let quantity = quantity_field(object, path, errors);
    let unit_price = amount_field(object, path, "unit_price", errors);
    let basic_paid = amount_field(object, path, "basic_paid", errors);
    let biomarkers = biomarkers_field(
        object.get("biomarkers"),
        &format!("{path}.biomarkers"),
        errors,
    );
    let (drug, quantity, unit_price, basic_paid, biomarkers) =
        (drug?, quantity?, unit_price?, basic_paid?, biomarkers?);
    // quantity <= 100,000 and unit_price <= 10^10 fen: the product fits i64.
    let Some(gross) = unit_price.checked_mul(i64::from(quantity)) else {
        errors.push(path, "amount_too_large", "quantity x unit_price overflows");
        return None;
    };
    if basic_paid > gross {
        errors.push(
            path,
            "exceeds_total",
            "basic_paid exceeds quantity x unit_price",
        );
        return None;
    }
    Some(ClaimItem::Drug {
        drug,
        quantity,
        unit_price,
        basic_paid,
        biomarkers,
    })
}

fn quantity_field(
    object: &Map<String, Value>,
    path: &str,
    errors: &mut ValidationErrors,
) -> Option<u32> {
    let field = format!("{path}.quantity");
    let out_of_range = |errors: &mut ValidationErrors| {
        errors.push(
            field.clone(),
            "quantity_out_of_range",
            format!("quantity must be between {MIN_QUANTITY} and {MAX_QUANTITY}"),
        );
        None
    };
    let whole: i128 = match object.get("quantity") {
        None => {
            errors.push(field, "missing_field", "`quantity` is required");
            return None;
        }
        Some(Value::Number(number)) => {
            if let Some(whole) = number.as_i64() {
                i128::from(whole)
            } else if let Some(whole) = number.as_u64() {
                i128::from(whole)
            } else {
                match number.as_f64() {
                    // 3.0 is a whole number written as a float.
                    Some(float) if float.is_finite() && float.fract() == 0.0 => {
                        if float.abs() > 1e12 {
                            return out_of_range(errors);
                        }
                        // Bounded above, so the conversion is exact.
                        float as i128
                    }
                    _ => {
                        errors.push(field, "not_a_whole_number", "quantity is a whole number");
                        return None;
                    }
                }
            }
        }
        Some(Value::String(text))
            if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) =>
        {
            match text.parse::<i128>() {
                Ok(whole) => whole,
                Err(_) => return out_of_range(errors),
            }
        }
        Some(_) => {
            errors.push(field, "not_a_whole_number", "quantity is a whole number");
            return None;
        }
    };
    match u32::try_from(whole) {
        Ok(quantity) if (MIN_QUANTITY..=MAX_QUANTITY).contains(&quantity) => Some(quantity),
        _ => out_of_range(errors),
    }
}

pub(crate) fn biomarkers_field(
    value: Option<&Value>,
    path: &str,
    errors: &mut ValidationErrors,
) -> Option<Vec<Biomarker>> {
    let entries = match value {
        None | Some(Value::Null) => return Some(Vec::new()),
        Some(Value::Array(entries)) => entries,
        Some(_) => {
            errors.push(path, "invalid_biomarkers", "biomarkers is a list");
            return None;
        }
    };
    parse_biomarker_list(entries, path, errors)
}

/// Parses `[{"marker": "EGFR", "positive": true}, ...]`, reporting problems
/// under `path[i].marker` / `path[i].positive`.
fn parse_biomarker_list(
    entries: &[Value],
    path: &str,
    errors: &mut ValidationErrors,
) -> Option<Vec<Biomarker>> {
    if entries.len() > MAX_BIOMARKERS {
        errors.push(
            path,
            "too_many_biomarkers",
            format!("an item carries at most {MAX_BIOMARKERS} biomarker results"),
        );
        return None;
    }
    let errors_before = errors.0.len();
    let mut biomarkers = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let entry_path = format!("{path}[{index}]");
        let Some(object) = entry.as_object() else {
            errors.push(
                entry_path,
                "invalid_biomarker",
                "a biomarker is an object with `marker` and `positive`",
            );
            continue;
        };
        for key in object.keys() {
            if key != "marker" && key != "positive" {
                errors.push(
                    format!("{entry_path}.{key}"),
                    "unknown_field",
                    "a biomarker has only `marker` and `positive`",
                );
            }
        }
        let marker = match object.get("marker") {
            Some(Value::String(text))
                if !text.trim().is_empty() && text.trim().chars().count() <= MAX_MARKER_CHARS =>
            {
                Some(text.trim().to_owned())
            }
            _ => {
                errors.push(
                    format!("{entry_path}.marker"),
                    "invalid_marker",
                    format!("marker is a name of 1 to {MAX_MARKER_CHARS} characters"),
                );
                None
            }
        };
        let positive = match object.get("positive") {
            Some(Value::Bool(flag)) => Some(*flag),
            _ => {
                errors.push(
                    format!("{entry_path}.positive"),
                    "invalid_positive",
                    "positive is true or false",
                );
                None
            }
        };
        if let (Some(marker), Some(positive)) = (marker, positive) {
            biomarkers.push(Biomarker { marker, positive });
        }
    }
    if errors.0.len() > errors_before {
        None
    } else {
        Some(biomarkers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()
    }

    fn drug_submission(items: Vec<Value>) -> ClaimSubmission {
        ClaimSubmission {
            member_id: 7,
            kind: "specialty_drug".into(),
            service_date: "2026-08-01".into(),
            provider_id: "XM-PH-001".into(),
            diagnosis: "C34.1".into(),
            items,
            authorization_id: None,
        }
    }

    fn inpatient_submission(items: Vec<Value>) -> ClaimSubmission {
        ClaimSubmission {
            member_id: 7,
            kind: "inpatient".into(),
            service_date: "2026-08-01".into(),
            provider_id: "XM-HOSP-001".into(),
            diagnosis: "I21.0".into(),
            items,
            authorization_id: None,
        }
    }

    fn osimertinib() -> Value {
        json!({"drug": "L01EB04", "quantity": 30, "unit_price": "510.00", "basic_paid": 0,
               "biomarkers": [{"marker": "EGFR", "positive": true}]})
    }

    fn stay() -> Value {
        json!({"total": "80000.00", "basic_paid": 35000, "out_of_catalogue": "5000.50"})
    }

    /// The (field, code) pairs of a refused submission.
    fn refusal(submission: &ClaimSubmission) -> Vec<(String, &'static str)> {
        validate_claim(submission, today())
            .unwrap_err()
            .0
            .into_iter()
            .map(|error| (error.field, error.code))
            .collect()
    }

    fn pairs(expected: &[(&str, &'static str)]) -> Vec<(String, &'static str)> {
        expected
            .iter()
            .map(|(f, c)| ((*f).to_owned(), *c))
            .collect()
    }

    #[test]
    fn a_valid_drug_claim_is_parsed() {
        let claim = validate_claim(&drug_submission(vec![osimertinib()]), today()).unwrap();
        assert_eq!(claim.kind, BenefitKind::SpecialtyDrug);
        assert_eq!(claim.diagnosis.as_normalised(), "C341");
        let item = &claim.items[0];
        assert_eq!(item.submitted(), Ok(Fen(1_530_000)));
        assert_eq!(item.eligible(), Ok(Fen(1_530_000)));
        match item {
            ClaimItem::Drug {
                drug, biomarkers, ..
            } => {
                assert_eq!(drug.as_str(), "L01EB04");
                assert!(biomarkers[0].is_positive_for("egfr"));
            }
            ClaimItem::Inpatient { .. } => panic!("expected a drug item"),
        }
    }

    #[test]
    fn a_valid_inpatient_claim_computes_eligible() {
        let claim = validate_claim(&inpatient_submission(vec![stay()]), today()).unwrap();
        assert_eq!(claim.items[0].submitted(), Ok(Fen(8_000_000)));
        assert_eq!(claim.items[0].eligible(), Ok(Fen(3_999_950)));
        assert_eq!(claim.items[0].basic_paid(), Fen(3_500_000));
    }

    #[test]
    fn today_is_not_in_the_future() {
        let mut submission = inpatient_submission(vec![stay()]);
        submission.service_date = "2026-11-28".into();
        assert!(validate_claim(&submission, today()).is_ok());
        submission.service_date = "2026-11-29".into();
        assert_eq!(
            refusal(&submission),
            pairs(&[("service_date", "future_date")])
        );
    }

    #[test]
    fn impossible_and_malformed_dates_are_refused() {
        for bad in [
            "2023-02-30",
            "2026-13-01",
            "2026-00-10",
            "2026-2-3",
            "01.08.2026",
            "",
            "2026-08-01T00:00",
        ] {
            let mut submission = inpatient_submission(vec![stay()]);
            submission.service_date = bad.into();
            assert_eq!(
                refusal(&submission),
                pairs(&[("service_date", "invalid_date")]),
                "{bad}"
            );
        }
        let mut leap = inpatient_submission(vec![stay()]);
        leap.service_date = "2024-02-29".into();
        assert!(validate_claim(&leap, today()).is_ok());
    }

    #[test]
    fn amount_problems_are_reported_per_field() {
        let submission = inpatient_submission(vec![
            json!({"total": -1, "basic_paid": "1.234", "out_of_catalogue": "100000000.01"}),
            json!({"total": "NaN", "basic_paid": true, "out_of_catalogue": {"a": 1}}),
        ]);
        assert_eq!(
            refusal(&submission),
            pairs(&[
                ("items[0].total", "negative_amount"),
                ("items[0].basic_paid", "too_many_decimals"),
                ("items[0].out_of_catalogue", "amount_too_large"),
                ("items[1].total", "not_a_number"),
                ("items[1].basic_paid", "not_a_number"),
                ("items[1].out_of_catalogue", "not_a_number"),
            ])
        );
    }

    #[test]
    fn basic_paid_and_out_of_catalogue_may_not_exceed_total() {
        let exact = inpatient_submission(vec![
            json!({"total": "100.00", "basic_paid": "60.00", "out_of_catalogue": "40.00"}),
        ]);
        let claim = validate_claim(&exact, today()).unwrap();
        assert_eq!(claim.items[0].eligible(), Ok(Fen::ZERO));
        let over = inpatient_submission(vec![
            json!({"total": "100.00", "basic_paid": "60.00", "out_of_catalogue": "40.01"}),
        ]);
        assert_eq!(refusal(&over), pairs(&[("items[0]", "exceeds_total")]));
        let drug_over = drug_submission(vec![
            json!({"drug": "L01EB04", "quantity": 2, "unit_price": "10.00", "basic_paid": "20.01"}),
        ]);
        assert_eq!(refusal(&drug_over), pairs(&[("items[0]", "exceeds_total")]));
    }

    #[test]
    fn quantity_must_be_a_whole_number_in_range() {
        for (quantity, code) in [
            (json!(0), "quantity_out_of_range"),
            (json!(100_001), "quantity_out_of_range"),
            (json!(-3), "quantity_out_of_range"),
            (json!(1e20), "quantity_out_of_range"),
            (
                json!("99999999999999999999999999999999999999999"),
                "quantity_out_of_range",
            ),
            (json!(1.5), "not_a_whole_number"),
            (json!("1.5"), "not_a_whole_number"),
            (json!("two"), "not_a_whole_number"),
            (json!(null), "not_a_whole_number"),
            (json!(true), "not_a_whole_number"),
        ] {
            let submission = drug_submission(vec![
                json!({"drug": "L01EB04", "quantity": quantity, "unit_price": 1, "basic_paid": 0}),
            ]);
            assert_eq!(
                refusal(&submission),
                pairs(&[("items[0].quantity", code)]),
                "{quantity}"
            );
        }
        for (quantity, expected) in [
            (json!(1), 1),
            (json!(100_000), 100_000),
            (json!(3.0), 3),
            (json!("12"), 12),
        ] {
            let submission = drug_submission(vec![
                json!({"drug": "L01EB04", "quantity": quantity, "unit_price": 1, "basic_paid": 0}),
            ]);
            let claim = validate_claim(&submission, today()).unwrap();
            assert!(matches!(claim.items[0], ClaimItem::Drug { quantity: q, .. } if q == expected));
        }
    }

    #[test]
    fn an_authorization_is_named_on_one_drug_dispensing_only() {
        let named = |mut submission: ClaimSubmission, id: i64| {
            submission.authorization_id = Some(id);
            submission
        };
        let claim =
            validate_claim(&named(drug_submission(vec![osimertinib()]), 3), today()).unwrap();
        assert_eq!(claim.authorization_id, Some(3));
        assert_eq!(claim.canonical_json()["authorization_id"], json!(3));
        let plain = validate_claim(&drug_submission(vec![osimertinib()]), today()).unwrap();
        assert!(plain.canonical_json().get("authorization_id").is_none());
        for submission in [
            named(drug_submission(vec![osimertinib(), osimertinib()]), 3),
            named(inpatient_submission(vec![stay()]), 3),
            named(drug_submission(vec![osimertinib()]), 0),
        ] {
            let errors = validate_claim(&submission, today()).unwrap_err();
            assert_eq!(errors.errors().len(), 1, "{errors}");
            assert!(errors.for_field("authorization_id").is_some(), "{errors}");
        }
    }

    #[test]
    fn malformed_codes_and_header_fields_are_refused_together() {
        let submission = ClaimSubmission {
            member_id: 0,
            kind: "outpatient".into(),
            service_date: "2026-08-01".into(),
            provider_id: "XM PH".into(),
            diagnosis: "lung cancer".into(),
            items: vec![json!({"drug": "L01EB4", "quantity": 1, "unit_price": 1, "basic_paid": 0})],
            authorization_id: None,
        };
        assert_eq!(
            refusal(&submission),
            pairs(&[
                ("member_id", "invalid_member_id"),
                ("kind", "invalid_kind"),
                ("provider_id", "invalid_provider_id"),
                ("diagnosis", "malformed_icd10"),
                ("items[0].drug", "malformed_atc"),
            ])
        );
    }

    #[test]
    fn items_must_be_present_objects_with_known_fields() {
        assert_eq!(
            refusal(&drug_submission(vec![])),
            pairs(&[("items", "empty_items")])
        );
        assert_eq!(
            refusal(&drug_submission(vec![json!([1, 2])])),
            pairs(&[("items[0]", "invalid_item")])
        );
        let mut extra = osimertinib();
        extra["dose_mg"] = json!(80);
        assert_eq!(
            refusal(&drug_submission(vec![extra])),
            pairs(&[("items[0].dose_mg", "unknown_field")])
        );
        // An inpatient-shaped item in a drug claim names what is missing and what is extra.
        let errors = refusal(&drug_submission(vec![stay()]));
        assert!(errors.contains(&("items[0].drug".into(), "missing_field")));
        assert!(errors.contains(&("items[0].total".into(), "unknown_field")));
        let missing = inpatient_submission(vec![json!({"total": 1})]);
        assert_eq!(
            refusal(&missing),
            pairs(&[
                ("items[0].basic_paid", "missing_field"),
                ("items[0].out_of_catalogue", "missing_field"),
            ])
        );
        let too_many = inpatient_submission(vec![stay(); MAX_ITEMS + 1]);
        assert_eq!(refusal(&too_many), pairs(&[("items", "too_many_items")]));
    }

    #[test]
    fn an_item_carries_a_bounded_number_of_biomarkers() {
        let markers = |n: usize| -> Vec<Value> {
            (0..n)
                .map(|i| json!({"marker": format!("M{i}"), "positive": true}))
                .collect()
        };
        let mut errors = ValidationErrors::default();
        let parsed =
            parse_biomarker_list(&markers(MAX_BIOMARKERS), "items[0].biomarkers", &mut errors);
        assert_eq!(parsed.map(|b| b.len()), Some(MAX_BIOMARKERS));
        assert!(errors.0.is_empty());
        let parsed = parse_biomarker_list(
            &markers(MAX_BIOMARKERS + 1),
            "items[0].biomarkers",
            &mut errors,
        );
        assert_eq!(parsed, None);
        assert_eq!(errors.0.len(), 1);
        assert_eq!(errors.0[0].field, "items[0].biomarkers");
        assert_eq!(errors.0[0].code, "too_many_biomarkers");
    }

    #[test]
    fn biomarkers_are_checked_entry_by_entry() {
        let item = json!({"drug": "L01EB04", "quantity": 1, "unit_price": 1, "basic_paid": 0,
                          "biomarkers": [{"marker": "", "positive": true}, {"marker": "EGFR", "positive": "yes"}, 3]});
        assert_eq!(
            refusal(&drug_submission(vec![item])),
            pairs(&[
                ("items[0].biomarkers[0].marker", "invalid_marker"),
                ("items[0].biomarkers[1].positive", "invalid_positive"),
                ("items[0].biomarkers[2]", "invalid_biomarker"),
            ])
        );
        let no_markers =
            json!({"drug": "L01EB04", "quantity": 1, "unit_price": 1, "basic_paid": 0});
        let claim = validate_claim(&drug_submission(vec![no_markers]), today()).unwrap();
        assert!(
            matches!(&claim.items[0], ClaimItem::Drug { biomarkers, .. } if biomarkers.is_empty())
        );
    }

    #[test]
    fn unknown_top_level_fields_and_missing_fields() {
        let unknown = serde_json::from_value::<ClaimSubmission>(json!({
            "member_id": 1, "kind": "inpatient", "service_date": "2026-08-01",
            "provider_id": "X", "diagnosis": "C34", "items": [], "priority": "high"
        }));
        assert!(unknown.unwrap_err().to_string().contains("priority"));
        let sparse: ClaimSubmission = serde_json::from_value(json!({"member_id": 3})).unwrap();
        let fields: Vec<String> = refusal(&sparse).into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            ["kind", "service_date", "provider_id", "diagnosis", "items"]
        );
    }

    #[test]
    fn canonical_form_ignores_how_amounts_and_codes_were_written() {
        let one = drug_submission(vec![json!({
            "drug": "l01eb04", "quantity": 30, "unit_price": 510.5, "basic_paid": "0",
            "biomarkers": [{"marker": "EGFR", "positive": true}]
        })]);
        let mut two = drug_submission(vec![json!({
            "basic_paid": 0.00, "unit_price": "510.50", "quantity": "30", "drug": "L01EB04",
            "biomarkers": [{"positive": true, "marker": "EGFR"}]
        })]);
        two.diagnosis = "c341".into();
        let one = validate_claim(&one, today()).unwrap().canonical_json();
        let two = validate_claim(&two, today()).unwrap().canonical_json();
        assert_eq!(
            super::super::canonical::canonical_json(&one),
            super::super::canonical::canonical_json(&two)
        );
        assert_eq!(one["items"][0]["unit_price_fen"], json!(51_050));
        let mut three = drug_submission(vec![osimertinib()]);
        three.provider_id = "XM-PH-002".into();
        let three = validate_claim(&three, today()).unwrap().canonical_json();
        assert_ne!(one, three);
    }
}
