//! Query parameters the handlers share. A value out of range is refused
//! with a field-level 422, never silently moved into range: a client asking
//! for 10,000 events and getting 1,000 would think it had them all.

use engine::domain::ValidationErrors;

use crate::error::ApiError;

/// Page sizes of the claim lists.
pub const CLAIM_PAGE: PageSize = PageSize {
    default: 20,
    max: 100,
};
/// Page sizes of `/v1/audit/events`.
pub const AUDIT_PAGE: PageSize = PageSize {
    default: 100,
    max: 1_000,
};
/// Events one `/v1/audit/export` returns at most (and by default); export
/// again from the last sequence for more.
pub const EXPORT_PAGE: PageSize = PageSize {
    default: 100_000,
    max: 100_000,
};

#[derive(Debug, Clone, Copy)]
pub struct PageSize {
    pub default: i64,
    pub max: i64,
}

impl PageSize {
    /// The `limit` parameter: absent means the default; otherwise 1 to max.
    pub fn limit(self, asked: Option<i64>) -> Result<i64, ApiError> {
        match asked {
            None => Ok(self.default),
            Some(limit) if (1..=self.max).contains(&limit) => Ok(limit),
            Some(_) => Err(ApiError::Validation(ValidationErrors::single(
                "limit",
                "out_of_range",
                format!("limit must be between 1 and {}", self.max),
            ))),
        }
    }
}

/// A cursor names a row id: a positive integer.
pub fn cursor(asked: Option<i64>, name: &str) -> Result<Option<i64>, ApiError> {
    match asked {
        Some(c) if c < 0 => Err(ApiError::Validation(ValidationErrors::single(
            name.to_owned(),
            "out_of_range",
            format!("{name} must not be negative"),
        ))),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_outside_the_range_are_refused_not_clamped() {
        assert_eq!(CLAIM_PAGE.limit(None).unwrap(), 20);
        assert_eq!(CLAIM_PAGE.limit(Some(1)).unwrap(), 1);
        assert_eq!(CLAIM_PAGE.limit(Some(100)).unwrap(), 100);
        for bad in [0, -1, 101, i64::MAX] {
            let error = CLAIM_PAGE.limit(Some(bad)).unwrap_err();
            let problem = error.problem();
            assert_eq!(problem.status, 422, "{bad}");
            assert_eq!(problem.errors[0].field, "limit");
        }
        assert!(AUDIT_PAGE.limit(Some(1_001)).is_err());
        assert_eq!(cursor(Some(0), "cursor").unwrap(), Some(0));
        assert!(cursor(Some(-5), "cursor").is_err());
    }
}
