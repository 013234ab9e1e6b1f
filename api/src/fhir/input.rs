//! The fields of the native views that the FHIR resources are made of,
//! parsed from the JSON the API serves for them: the FHIR mapping depends
//! on the public shape of a claim or a member, not on how the store builds
//! it.

use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Parses a native view (anything the API serialises) into its FHIR input.
pub fn from_view<T: DeserializeOwned>(view: &impl serde::Serialize) -> Result<T, String> {
    let value = serde_json::to_value(view).map_err(|e| e.to_string())?;
    serde_json::from_value(value).map_err(|e| e.to_string())
}

#[derive(Debug, Clone, Deserialize)]
pub struct ClaimIn {
    pub id: i64,
    pub member_id: i64,
    pub product_id: String,
    pub kind: String,
    pub service_date: String,
    pub provider_id: String,
    pub submitted_at: String,
    pub status: String,
    pub submission: SubmissionIn,
    pub decision: DecisionIn,
    pub decisions: Vec<DecisionIn>,
    pub reversal: Option<ReversalIn>,
}

impl ClaimIn {
    /// The sum of the items' amounts as submitted, when every item has one.
    pub fn submitted_total(&self) -> Option<Decimal> {
        self.submission
            .items
            .iter()
            .map(super::item_net)
            .try_fold(Decimal::ZERO, |sum, net| net.map(|n| sum + n))
    }

    /// What the claim pays now: nothing once it is reversed.
    pub fn paid_now(&self) -> Decimal {
        if self.reversal.is_some() {
            Decimal::ZERO
        } else {
            self.decision.totals.payable
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct SubmissionIn {
    pub diagnosis: String,
    pub items: Vec<ItemIn>,
}

/// One submitted item: a stay (`total`) or a drug (`drug`, `quantity`,
/// `unit_price`).
#[derive(Debug, Clone, Deserialize)]
pub struct ItemIn {
    pub drug: Option<String>,
    pub quantity: Option<u32>,
    pub unit_price: Option<Decimal>,
    pub total: Option<Decimal>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DecisionIn {
    pub id: i64,
    pub sequence: i64,
    pub parent_decision_id: Option<i64>,
    pub decided_at: String,
    pub status: String,
    pub benefit: String,
    pub items: Vec<DecidedItemIn>,
    pub totals: TotalsIn,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DecidedItemIn {
    pub index: usize,
    pub reasons: Vec<String>,
    pub submitted: Decimal,
    pub eligible: Decimal,
    pub deductible_applied: Decimal,
    /// None (or absent) for a denied item: no rate was applied.
    #[serde(default)]
    pub coinsurance_rate: Option<Decimal>,
    pub payable: Decimal,
    pub member_responsibility: Decimal,
    pub balance_after: BalanceIn,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BalanceIn {
    pub deductible_met: Decimal,
    pub paid: Decimal,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TotalsIn {
    pub submitted: Decimal,
    pub eligible: Decimal,
    pub deductible_applied: Decimal,
    pub member_responsibility: Decimal,
    pub payable: Decimal,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReversalIn {
    pub reason: String,
    pub reversed_at: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CoverageIn {
    pub products: Vec<ProductCoverIn>,
}

impl CoverageIn {
    pub fn benefit(&self, product_id: &str, benefit: &str) -> Option<&BenefitCoverIn> {
        self.products
            .iter()
            .filter(|p| p.product_id == product_id)
            .flat_map(|p| &p.benefits)
            .find(|b| b.benefit == benefit)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ProductCoverIn {
    pub product_id: String,
    pub product_name: String,
    pub benefits: Vec<BenefitCoverIn>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BenefitCoverIn {
    pub benefit: String,
    pub deductible: Decimal,
    pub deductible_met: Decimal,
    pub annual_limit: Decimal,
    pub limit_used: Decimal,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MemberIn {
    pub id: i64,
    pub enrollments: Vec<EnrollmentIn>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EnrollmentIn {
    pub product_id: String,
    pub insurance_type: String,
    pub coverage_start: String,
    pub coverage_end: String,
}
