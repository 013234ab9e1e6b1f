//! One item of a claim: its amounts, quantity, drug and biomarkers, read
//! field by field from the raw JSON.

use crate::domain::codes::AtcCode;
use crate::domain::money::{Fen, parse_amount};
use crate::domain::validation::ValidationErrors;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

use super::{
    BenefitKind, Biomarker, ClaimItem, MAX_BIOMARKERS, MAX_MARKER_CHARS, MAX_QUANTITY, MIN_QUANTITY,
};

pub(crate) const INPATIENT_FIELDS: &[&str] = &["total", "basic_paid", "out_of_catalogue"];
pub(crate) const DRUG_FIELDS: &[&str] =
    &["drug", "quantity", "unit_price", "basic_paid", "biomarkers"];

pub(super) fn validate_item(
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
pub(super) fn parse_biomarker_list(
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
