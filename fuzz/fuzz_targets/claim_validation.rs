//! Claim validation on arbitrary JSON: a valid claim or field errors, never a
//! panic; a valid claim survives the round trip through its stored form
//! (appeals decide what was stored) with the same canonical form.
#![no_main]

use engine::domain::claim::{ClaimSubmission, ValidClaim, validate_claim};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(submission) = serde_json::from_slice::<ClaimSubmission>(data) else {
        return;
    };
    let Some(today) = chrono::NaiveDate::from_ymd_opt(2026, 6, 30) else {
        return;
    };
    match validate_claim(&submission, today) {
        Ok(valid) => {
            let stored = serde_json::to_string(&valid).expect("a valid claim serialises");
            let back: ValidClaim = serde_json::from_str(&stored).expect("stored claim decodes");
            assert_eq!(back.canonical_json(), valid.canonical_json());
            assert!(!valid.items.is_empty());
            assert!(valid.service_date <= today);
        }
        Err(errors) => assert!(!errors.0.is_empty(), "a refusal names at least one field"),
    }
});
