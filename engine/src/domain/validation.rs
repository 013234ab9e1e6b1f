//! Field-level validation errors shared by enrollment, claims and appeals.

use std::fmt;

use serde::Serialize;

/// One problem with one field of a request. `field` is a path into the
/// request body (`items[0].total`, `declared_conditions[2]`); `code` is a
/// stable snake_case code for clients; `detail` is for people and never
/// repeats personal data from the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub code: &'static str,
    pub detail: String,
}

/// All problems found in a request, in the order of its fields. A request is
/// checked completely, so a client sees every mistake at once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    pub fn new() -> Self {
        Self::default()
    }

    /// A single error.
    pub fn single(field: impl Into<String>, code: &'static str, detail: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.push(field, code, detail);
        errors
    }

    /// The error for a claim whose `member_id` names no enrollment (decided by
    /// storage, which knows the members).
    pub fn unknown_member(member_id: i64) -> Self {
        Self::single(
            "member_id",
            "unknown_member",
            format!("no member with id {member_id}"),
        )
    }

    /// The error for a product id that storage does not know.
    pub fn unknown_product(field: impl Into<String>, product_id: &str) -> Self {
        Self::single(
            field,
            "unknown_product",
            format!("no product with id `{product_id}`"),
        )
    }

    pub fn push(
        &mut self,
        field: impl Into<String>,
        code: &'static str,
        detail: impl Into<String>,
    ) {
        self.0.push(FieldError {
            field: field.into(),
            code,
            detail: detail.into(),
        });
    }

    pub fn extend(&mut self, other: ValidationErrors) {
        self.0.extend(other.0);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }

    /// Whether some error has this code (convenient in tests and handlers).
    pub fn has_code(&self, code: &str) -> bool {
        self.0.iter().any(|error| error.code == code)
    }

    /// The error for one field, if any.
    pub fn for_field(&self, field: &str) -> Option<&FieldError> {
        self.0.iter().find(|error| error.field == field)
    }

    /// `Ok(value)` when nothing was found, else `Err(self)`.
    pub fn into_result<T>(self, value: T) -> Result<T, ValidationErrors> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, error) in self.0.iter().enumerate() {
            if position > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {} ({})", error.field, error.code, error.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_member_is_a_field_error_on_member_id() {
        let errors = ValidationErrors::unknown_member(42);
        assert_eq!(errors.errors().len(), 1);
        let error = errors.for_field("member_id").unwrap();
        assert_eq!(error.code, "unknown_member");
        assert_eq!(
            serde_json::to_value(&errors).unwrap(),
            serde_json::json!([{"field": "member_id", "code": "unknown_member", "detail": "no member with id 42"}])
        );
    }

    #[test]
    fn into_result_is_ok_only_without_errors() {
        assert_eq!(ValidationErrors::new().into_result(7), Ok(7));
        let errors = ValidationErrors::single("x", "bad", "why");
        assert!(errors.clone().into_result(7).is_err());
        assert_eq!(errors.to_string(), "x: bad (why)");
    }
}
