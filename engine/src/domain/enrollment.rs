//! Enrollment requests and the waiting-period rule.

use std::fmt;

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::codes::Icd10Code;
use super::product::Product;
use super::request_schemas;
use super::resident_id::ResidentId;
use super::validation::ValidationErrors;

/// An enrollment as submitted: every field but `declared_conditions` is
/// required (a missing one is refused field by field). Holds personal data:
/// its `Debug` hides the ID number, name and phone.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentRequest {
    /// e.g. `xiamen-2026`
    #[serde(default)]
    #[schema(required = true)]
    pub product_id: String,
    #[serde(default)]
    #[schema(required = true, schema_with = request_schemas::resident_id)]
    pub resident_id: String,
    #[serde(default)]
    #[schema(required = true, schema_with = request_schemas::person_name)]
    pub name: String,
    #[serde(default)]
    #[schema(required = true, schema_with = request_schemas::phone)]
    pub phone: String,
    /// `urban_employee` | `urban_rural_resident`.
    #[serde(default)]
    #[schema(required = true, value_type = InsuranceType)]
    pub insurance_type: String,
    /// ICD-10 codes of declared pre-existing conditions.
    #[serde(default)]
    #[schema(schema_with = request_schemas::declared_conditions)]
    pub declared_conditions: Vec<String>,
}

impl fmt::Debug for EnrollmentRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnrollmentRequest")
            .field("product_id", &self.product_id)
            .field("resident_id", &"<redacted>")
            .field("name", &"<redacted>")
            .field("phone", &"<redacted>")
            .field("insurance_type", &self.insurance_type)
            .field("declared_conditions", &self.declared_conditions.len())
            .finish()
    }
}

/// The member's basic medical insurance scheme (基本医疗保险).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InsuranceType {
    /// 城镇职工基本医疗保险
    UrbanEmployee,
    /// 城乡居民基本医疗保险
    UrbanRuralResident,
}

impl InsuranceType {
    pub fn as_str(self) -> &'static str {
        match self {
            InsuranceType::UrbanEmployee => "urban_employee",
            InsuranceType::UrbanRuralResident => "urban_rural_resident",
        }
    }

    pub fn parse(text: &str) -> Option<InsuranceType> {
        match text {
            "urban_employee" => Some(InsuranceType::UrbanEmployee),
            "urban_rural_resident" => Some(InsuranceType::UrbanRuralResident),
            _ => None,
        }
    }
}

/// A validated enrollment, ready for storage (which decides uniqueness and
/// the renewal waiver, since it knows earlier enrollments).
#[derive(Clone, PartialEq, Eq)]
pub struct ValidEnrollment {
    pub product_id: String,
    pub resident_id: ResidentId,
    pub name: String,
    /// Digits only, without a country prefix (`13812345678`).
    pub phone: String,
    pub insurance_type: InsuranceType,
    /// Declared conditions, normalised, sorted and without repeats.
    pub declared: Vec<Icd10Code>,
    /// The later of the product start and the enrollment date.
    pub coverage_start: NaiveDate,
}

impl ValidEnrollment {
    /// The request in the form compared for idempotency. The ID number
    /// appears only as its keyed hash, so the stored request hash cannot be
    /// reversed by enumerating ID numbers.
    pub fn canonical_json(&self, id_key: &[u8]) -> Value {
        let mut object = Map::new();
        object.insert("product_id".into(), self.product_id.clone().into());
        object.insert(
            "resident_id_hash".into(),
            self.resident_id.keyed_hash(id_key).into(),
        );
        object.insert("name".into(), self.name.clone().into());
        object.insert("phone".into(), self.phone.clone().into());
        object.insert("insurance_type".into(), self.insurance_type.as_str().into());
        object.insert(
            "declared_conditions".into(),
            Value::Array(
                self.declared
                    .iter()
                    .map(|code| Value::from(code.as_normalised()))
                    .collect(),
            ),
        );
        Value::Object(object)
    }
}

impl fmt::Debug for ValidEnrollment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidEnrollment")
            .field("product_id", &self.product_id)
            .field("resident_id", &self.resident_id)
            .field("name", &"<redacted>")
            .field("phone", &"<redacted>")
            .field("insurance_type", &self.insurance_type)
            .field("declared", &self.declared.len())
            .field("coverage_start", &self.coverage_start)
            .finish()
    }
}

pub(crate) const MAX_NAME_CHARS: usize = 100;
pub(crate) const MAX_DECLARED_CONDITIONS: usize = 50;

/// Validates an enrollment for `product` on `today_china` (the enrollment
/// date, China time). Every problem is reported; enrolling outside the
/// window is `outside_enrollment_window` on `product_id`.
pub fn validate_enrollment(
    request: &EnrollmentRequest,
    product: &Product,
    today_china: NaiveDate,
) -> Result<ValidEnrollment, ValidationErrors> {
    let window = if request.product_id == product.id {
        check_enrollment_window(product, today_china)
    } else {
        Ok(())
    };
    match (
        window,
        validate_enrollment_details(request, product, today_china),
    ) {
        (Ok(()), details) => details,
        (Err(mut errors), details) => {
            if let Err(more) = details {
                errors.extend(more);
            }
            Err(errors)
        }
    }
}

/// `outside_enrollment_window` on `product_id` unless `today_china` falls in
/// the product's enrollment window.
pub fn check_enrollment_window(
    product: &Product,
    today_china: NaiveDate,
) -> Result<(), ValidationErrors> {
    if product.enrollment_open_on(today_china) {
        return Ok(());
    }
    Err(ValidationErrors::single(
        "product_id",
        "outside_enrollment_window",
        format!(
            "enrollment in `{}` is open from {} to {}",
            product.id, product.enrollment_open, product.enrollment_close
        ),
    ))
}

/// [`validate_enrollment`] without the window: what the request says, as of
/// `today_china`. Storage checks the window separately, after the
/// idempotency key, so that a retry of an enrollment made while the window
/// was open gets its stored response after the window has closed.
pub fn validate_enrollment_details(
    request: &EnrollmentRequest,
    product: &Product,
    today_china: NaiveDate,
) -> Result<ValidEnrollment, ValidationErrors> {
    let mut errors = ValidationErrors::new();

    if request.product_id != product.id {
        errors.push(
            "product_id",
            "product_mismatch",
            format!(
                "this request is for `{}`, not `{}`",
                request.product_id, product.id
            ),
        );
    }

    let resident_id = match ResidentId::parse(&request.resident_id, today_china) {
        Ok(id) => Some(id),
        Err(error) => {
            errors.push("resident_id", error.code(), error.to_string());
            None
        }
    };

    let name = request.name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        errors.push(
            "name",
            "invalid_name",
            format!("name is 1 to {MAX_NAME_CHARS} characters without control characters"),
        );
    }

    let phone = normalise_mobile_phone(&request.phone);
    if phone.is_none() {
        errors.push(
            "phone",
            "invalid_phone",
            "phone is a mainland mobile number: 11 digits starting with 13-19, optionally +86",
        );
    }

    let insurance_type = InsuranceType::parse(&request.insurance_type);
    if insurance_type.is_none() {
        errors.push(
            "insurance_type",
            "invalid_insurance_type",
            "insurance_type must be `urban_employee` or `urban_rural_resident`",
        );
    }

    let declared = valid_declared_conditions(&request.declared_conditions, &mut errors);

    match (resident_id, phone, insurance_type) {
        (Some(resident_id), Some(phone), Some(insurance_type)) if errors.is_empty() => {
            Ok(ValidEnrollment {
                product_id: product.id.clone(),
                resident_id,
                name: name.to_owned(),
                phone,
                insurance_type,
                declared,
                coverage_start: product.period_start.max(today_china),
            })
        }
        _ => Err(errors),
    }
}

/// The declared conditions as codes, sorted and without repeats; each
/// problem goes into `errors` under its index.
fn valid_declared_conditions(texts: &[String], errors: &mut ValidationErrors) -> Vec<Icd10Code> {
    let mut declared = Vec::with_capacity(texts.len());
    if texts.len() > MAX_DECLARED_CONDITIONS {
        errors.push(
            "declared_conditions",
            "too_many_conditions",
            format!("at most {MAX_DECLARED_CONDITIONS} conditions can be declared"),
        );
    } else {
        for (index, text) in texts.iter().enumerate() {
            match text.parse::<Icd10Code>() {
                Ok(code) => declared.push(code),
                Err(error) => errors.push(
                    format!("declared_conditions[{index}]"),
                    error.code(),
                    error.to_string(),
                ),
            }
        }
    }
    declared.sort();
    declared.dedup();
    declared
}

/// `+86 138-1234-5678` -> `13812345678`; `None` unless a mainland mobile
/// number. Enrollment runs through mobile channels (WeChat, Alipay) that
/// verify a mobile number, so landlines are not accepted.
fn normalise_mobile_phone(text: &str) -> Option<String> {
    let compact: String = text.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let digits = compact
        .strip_prefix("+86")
        .or_else(|| compact.strip_prefix("0086"))
        .unwrap_or(&compact);
    let bytes = digits.as_bytes();
    let mobile = bytes.len() == 11
        && bytes.iter().all(u8::is_ascii_digit)
        && bytes[0] == b'1'
        && (b'3'..=b'9').contains(&bytes[1]);
    mobile.then(|| digits.to_owned())
}

/// The first day on which claims are covered (rule 2). The day of coverage
/// start counts as day 1, so with 30 waiting days and a 2023-01-01 start the
/// waiting period is 2023-01-01..=2023-01-30 and 2023-01-31 is covered.
/// Renewing members (`waived`) and products without a waiting period are
/// covered from the coverage start.
pub fn first_covered_day(coverage_start: NaiveDate, waiting_days: u32, waived: bool) -> NaiveDate {
    if waived {
        return coverage_start;
    }
    coverage_start
        .checked_add_days(Days::new(u64::from(waiting_days)))
        // Beyond year 262,143: nothing can ever be covered.
        .unwrap_or(NaiveDate::MAX)
}

/// The renewal waiver (rule 2): a member already enrolled in the product
/// that this one renews (last year's edition) skips the waiting period.
/// `enrolled_in` names the products the member is enrolled in.
pub fn waiting_waived<'a>(
    product: &Product,
    mut enrolled_in: impl Iterator<Item = &'a str>,
) -> bool {
    match &product.renews {
        Some(previous) => enrolled_in.any(|id| id == previous),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::product::tests::sample;
    use crate::domain::resident_id::tests::valid_id;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_waiting_period_is_waived_only_for_members_of_the_renewed_product() {
        let mut product = sample();
        product.renews = Some("xiamen-2025".to_owned());
        assert!(waiting_waived(
            &product,
            ["other", "xiamen-2025"].into_iter()
        ));
        assert!(!waiting_waived(&product, ["other"].into_iter()));
        assert!(!waiting_waived(&product, std::iter::empty()));
        product.renews = None;
        assert!(!waiting_waived(&product, ["xiamen-2025"].into_iter()));
    }

    fn request() -> EnrollmentRequest {
        EnrollmentRequest {
            product_id: "sample-2026".into(),
            resident_id: valid_id("350203", "19650412", "123"),
            name: "陈美玲".into(),
            phone: "+86 138-1234-5678".into(),
            insurance_type: "urban_employee".into(),
            declared_conditions: vec!["c34.1".into(), "N18.5".into(), "C34.1".into()],
        }
    }

    fn codes(result: Result<ValidEnrollment, ValidationErrors>) -> Vec<(String, &'static str)> {
        result
            .unwrap_err()
            .0
            .into_iter()
            .map(|error| (error.field, error.code))
            .collect()
    }

    #[test]
    fn waiting_period_counts_the_start_as_day_one() {
        let start = date("2023-01-01");
        assert_eq!(first_covered_day(start, 30, false), date("2023-01-31"));
        assert_eq!(first_covered_day(start, 30, true), start);
        assert_eq!(first_covered_day(start, 0, false), start);
        assert_eq!(first_covered_day(start, 1, false), date("2023-01-02"));
        assert_eq!(
            first_covered_day(date("2024-02-15"), 15, false),
            date("2024-03-01")
        );
        assert_eq!(first_covered_day(NaiveDate::MAX, 1, false), NaiveDate::MAX);
    }

    #[test]
    fn a_valid_request_is_normalised() {
        let product = sample();
        let valid = validate_enrollment(&request(), &product, date("2026-09-10")).unwrap();
        assert_eq!(valid.phone, "13812345678");
        assert_eq!(valid.insurance_type, InsuranceType::UrbanEmployee);
        let declared: Vec<&str> = valid
            .declared
            .iter()
            .map(Icd10Code::as_normalised)
            .collect();
        assert_eq!(declared, ["C341", "N185"]);
        assert_eq!(valid.coverage_start, date("2026-09-10"));
        assert_eq!(valid.resident_id.birth_date(), date("1965-04-12"));
        let shown = format!("{valid:?}");
        assert!(!shown.contains("陈美玲") && !shown.contains("13812345678"));
        assert!(!shown.contains(&request().resident_id));
        let shown = format!("{:?}", request());
        assert!(!shown.contains("陈美玲") && !shown.contains(&request().resident_id));
    }

    #[test]
    fn coverage_starts_at_the_later_of_product_start_and_enrollment() {
        let product = sample();
        let first_day = validate_enrollment(&request(), &product, date("2026-07-01")).unwrap();
        assert_eq!(first_day.coverage_start, date("2026-07-01"));
        let later = validate_enrollment(&request(), &product, date("2026-12-31")).unwrap();
        assert_eq!(later.coverage_start, date("2026-12-31"));
        // A window before the period (as Xiamen sells, 25 Apr - 30 Jun) is
        // refused by the product loader, but the rule itself still holds:
        // enrolling in May starts cover on the period start.
        let mut sold_ahead = product.clone();
        sold_ahead.enrollment_open = date("2026-04-25");
        let ahead = validate_enrollment(&request(), &sold_ahead, date("2026-05-10")).unwrap();
        assert_eq!(ahead.coverage_start, date("2026-07-01"));
    }

    #[test]
    fn the_window_is_inclusive_and_checked() {
        let product = sample();
        assert!(validate_enrollment(&request(), &product, date("2026-07-01")).is_ok());
        assert!(validate_enrollment(&request(), &product, date("2026-12-31")).is_ok());
        assert_eq!(
            codes(validate_enrollment(
                &request(),
                &product,
                date("2027-01-01")
            )),
            [("product_id".to_owned(), "outside_enrollment_window")]
        );
        assert_eq!(
            codes(validate_enrollment(
                &request(),
                &product,
                date("2026-06-30")
            )),
            [("product_id".to_owned(), "outside_enrollment_window")]
        );
    }

    #[test]
    fn the_window_can_be_checked_apart_from_the_request() {
        let product = sample();
        let closed = date("2027-01-01");
        // Storage checks the window after the idempotency key, so that a
        // retry after the window has closed still gets its stored response.
        assert!(validate_enrollment_details(&request(), &product, closed).is_ok());
        assert!(check_enrollment_window(&product, date("2026-12-31")).is_ok());
        assert!(
            check_enrollment_window(&product, closed)
                .unwrap_err()
                .has_code("outside_enrollment_window")
        );
        // Together, every problem is still reported at once.
        let mut bad = request();
        bad.phone = "12".into();
        assert_eq!(
            codes(validate_enrollment(&bad, &product, closed)),
            [
                ("product_id".to_owned(), "outside_enrollment_window"),
                ("phone".to_owned(), "invalid_phone"),
            ]
        );
    }

    #[test]
    fn every_bad_field_is_reported() {
        let product = sample();
        let bad = EnrollmentRequest {
            product_id: "other".into(),
            resident_id: "11010519491231002Y".into(),
            name: "  ".into(),
            phone: "0592-1234567".into(),
            insurance_type: "commercial".into(),
            declared_conditions: vec!["C34".into(), "heart".into()],
        };
        assert_eq!(
            codes(validate_enrollment(&bad, &product, date("2026-09-10"))),
            [
                ("product_id".to_owned(), "product_mismatch"),
                ("resident_id".to_owned(), "invalid_resident_id"),
                ("name".to_owned(), "invalid_name"),
                ("phone".to_owned(), "invalid_phone"),
                ("insurance_type".to_owned(), "invalid_insurance_type"),
                ("declared_conditions[1]".to_owned(), "malformed_icd10"),
            ]
        );
    }

    #[test]
    fn insurance_type_is_required() {
        let mut missing = request();
        missing.insurance_type = String::new();
        assert_eq!(
            codes(validate_enrollment(&missing, &sample(), date("2026-09-10"))),
            [("insurance_type".to_owned(), "invalid_insurance_type")]
        );
        let mut resident = request();
        resident.insurance_type = "urban_rural_resident".into();
        let valid = validate_enrollment(&resident, &sample(), date("2026-09-10")).unwrap();
        assert_eq!(valid.insurance_type, InsuranceType::UrbanRuralResident);
    }

    #[test]
    fn phone_numbers() {
        assert_eq!(
            normalise_mobile_phone("13812345678").as_deref(),
            Some("13812345678")
        );
        assert_eq!(
            normalise_mobile_phone("0086 199 1234 5678").as_deref(),
            Some("19912345678")
        );
        for bad in [
            "12812345678",
            "1381234567",
            "138123456789",
            "1381234567a",
            "",
            "+1 13812345678",
        ] {
            assert_eq!(normalise_mobile_phone(bad), None, "{bad}");
        }
    }

    #[test]
    fn canonical_form_hides_the_id_and_ignores_spelling() {
        let product = sample();
        let one = validate_enrollment(&request(), &product, date("2026-09-10")).unwrap();
        let mut other = request();
        other.phone = "13812345678".into();
        other.declared_conditions = vec!["N18.5".into(), "C34.1".into()];
        let two = validate_enrollment(&other, &product, date("2026-09-10")).unwrap();
        assert_eq!(one.canonical_json(b"k"), two.canonical_json(b"k"));
        let text = one.canonical_json(b"k").to_string();
        assert!(!text.contains(&request().resident_id));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let result = serde_json::from_value::<EnrollmentRequest>(serde_json::json!({
            "product_id": "p", "resident_id": "x", "name": "n", "phone": "1",
            "insurance_type": "urban_employee", "declared_conditions": [], "email": "a@b"
        }));
        assert!(result.unwrap_err().to_string().contains("email"));
    }
}
