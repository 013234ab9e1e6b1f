//! The pure domain of the claims engine: money, codes, products, enrollment,
//! claim validation and adjudication. Nothing here does I/O or reads a
//! clock; storage passes in the current date and the state it has loaded.

pub mod adjudication;
pub mod authorization;
pub mod authorization_request;
pub mod canonical;
pub mod claim;
pub mod codes;
pub mod course_rules;
pub mod enrollment;
pub mod money;
pub mod pricing_group;
pub mod product;
pub mod request_schemas;
pub mod resident_id;
pub mod validation;
pub mod wire;

pub use adjudication::{
    AdjudicationError, AppealEvidence, AppealItemEvidence, Balance, Balances, ClaimDecision,
    ClaimStatus, ClaimTotals, ItemDecision, ItemFingerprint, ItemOutcome, LedgerDelta, MemberCover,
    Reason, adjudicate, adjudicate_appeal,
};
pub use canonical::{canonical_json, sha256_hex};
pub use claim::{BenefitKind, Biomarker, ClaimItem, ClaimSubmission, ValidClaim, validate_claim};
pub use codes::{AtcCode, CodeError, Icd10Code, IcdPattern};
pub use enrollment::{
    EnrollmentRequest, InsuranceType, ValidEnrollment, first_covered_day, validate_enrollment,
};
pub use money::{AmountError, Fen, MoneyError, parse_amount, round_to_fen};
pub use product::{
    BenefitTerms, DrugBenefit, FormularyDrug, PreexistingGroup, Product, ProductError,
};
pub use resident_id::{ResidentId, ResidentIdError, Sex};
pub use validation::{FieldError, ValidationErrors};

#[cfg(test)]
mod adjudication_tests;
#[cfg(test)]
mod authorization_tests;
#[cfg(test)]
mod course_request_schema_tests;
