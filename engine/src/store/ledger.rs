//! The benefit ledger: balances, the conservation check and the paid-items
//! query, each in one place, so that claims, reversals, appeals, the batch
//! writer and the "my cover" screen all read the ledger the same way.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::domain::adjudication::{Balance, Balances, ItemFingerprint};
use crate::domain::claim::BenefitKind;
use crate::domain::money::Fen;
use crate::domain::product::BenefitTerms;
use crate::error::StoreError;
use crate::schema::{ledger_entries, paid_items, reversals};
use crate::store::products::StoredProduct;

/// Bound parameters per query that filters on a list of paid items: far
/// below the limits of both backends (32,766 on SQLite, 65,535 on
/// PostgreSQL), however many items a batch carries.
pub(crate) const ITEMS_PER_QUERY: usize = 1_000;

#[derive(Insertable)]
#[diesel(table_name = ledger_entries, treat_none_as_null = true)]
pub(crate) struct NewLedgerEntry {
    pub member_id: i64,
    pub product_id: String,
    pub benefit: String,
    pub claim_id: i64,
    pub decision_id: Option<i64>,
    pub reversal_id: Option<i64>,
    pub item_index: i32,
    pub deductible_fen: i64,
    pub paid_fen: i64,
    pub created_at: NaiveDateTime,
}

/// Adds one ledger entry (or a sum of entries) to the balance of its benefit,
/// with checked arithmetic. Every balance is summed here: SQL SUM over money
/// would come back as a float on SQLite.
pub(crate) fn add_entry(
    balances: &mut Balances,
    benefit: &str,
    deductible: i64,
    paid: i64,
) -> Result<(), StoreError> {
    let kind = BenefitKind::parse(benefit).ok_or_else(|| {
        StoreError::integrity(format!("ledger entry of unknown benefit {benefit:?}"))
    })?;
    let balance = balances.of_mut(kind);
    balance.deductible_met = balance
        .deductible_met
        .try_add(Fen(deductible))
        .map_err(|_| StoreError::integrity("deductible balance overflows"))?;
    balance.paid = balance
        .paid
        .try_add(Fen(paid))
        .map_err(|_| StoreError::integrity("paid balance overflows"))?;
    Ok(())
}

/// Both benefit balances of a member under a product: the sums of their
/// ledger entries, in one query.
pub(crate) fn member_balances(
    conn: &mut DbConn,
    member_id: i64,
    product_id: &str,
) -> Result<Balances, StoreError> {
    let entries: Vec<(String, i64, i64)> = ledger_entries::table
        .filter(ledger_entries::member_id.eq(member_id))
        .filter(ledger_entries::product_id.eq(product_id))
        .select((
            ledger_entries::benefit,
            ledger_entries::deductible_fen,
            ledger_entries::paid_fen,
        ))
        .load(conn)?;
    let mut balances = Balances::default();
    for (benefit, deductible, paid) in entries {
        add_entry(&mut balances, &benefit, deductible, paid)?;
    }
    Ok(balances)
}

/// The terms a product gives a benefit, if it offers it.
pub(crate) fn terms_of(product: &StoredProduct, kind: BenefitKind) -> Option<&BenefitTerms> {
    match kind {
        BenefitKind::Inpatient => product.product.inpatient.as_ref(),
        BenefitKind::SpecialtyDrug => product.product.specialty_drug.as_ref().map(|d| &d.terms),
    }
}

/// What is left of a benefit: deductible still to meet and limit still to
/// pay, in fen. Negative when a balance exceeds its terms, which the
/// conservation check refuses to commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Remaining {
    pub deductible: i64,
    pub limit: i64,
}

/// What is left of a benefit under its terms; a product that does not offer
/// the benefit leaves nothing of it.
pub(crate) fn remaining(terms: Option<&BenefitTerms>, balance: Balance) -> Remaining {
    let (deductible, limit) = terms.map_or((0, 0), |t| (t.deductible.0, t.annual_limit.0));
    Remaining {
        deductible: deductible.saturating_sub(balance.deductible_met.0),
        limit: limit.saturating_sub(balance.paid.0),
    }
}

/// The ledger's conservation rule, on balances already computed: no balance
/// is negative, and none exceeds its benefit's deductible or limit. A
/// violation is a bug; the transaction is rolled back rather than committed.
pub(crate) fn balances_within_terms(
    member_id: i64,
    balances: &Balances,
    product: &StoredProduct,
) -> Result<(), StoreError> {
    for kind in [BenefitKind::Inpatient, BenefitKind::SpecialtyDrug] {
        let balance = balances.of(kind);
        let left = remaining(terms_of(product, kind), balance);
        if balance.deductible_met.0 < 0
            || balance.paid.0 < 0
            || left.deductible < 0
            || left.limit < 0
        {
            return Err(StoreError::integrity(format!(
                "ledger for member {member_id} {} would leave balances outside the terms",
                kind.as_str()
            )));
        }
    }
    Ok(())
}

/// The conservation rule on the balances as stored, checked after a write.
pub(crate) fn check_balances_within_terms(
    conn: &mut DbConn,
    member_id: i64,
    product: &StoredProduct,
) -> Result<(), StoreError> {
    let balances = member_balances(conn, member_id, &product.product.id)?;
    balances_within_terms(member_id, &balances, product)
}

/// Which paid items to look for.
pub(crate) struct PaidItemsQuery<'a> {
    pub members: &'a [i64],
    /// Only these fingerprint keys, when given.
    pub fingerprints: Option<&'a [&'a str]>,
    /// Leave out this claim's own items (an appeal decides them again).
    pub except_claim: Option<i64>,
}

/// (member, fingerprint key) of the items paid on non-reversed claims: the
/// set the duplicate rule looks items up in. The one query of it; the
/// PostgreSQL batch read asks the same inside its single statement.
pub(crate) fn paid_items(
    conn: &mut DbConn,
    query: &PaidItemsQuery<'_>,
) -> Result<Vec<(i64, String)>, StoreError> {
    let reversed = reversals::table.select(reversals::claim_id);
    let mut select = paid_items::table
        .filter(paid_items::member_id.eq_any(query.members))
        .filter(paid_items::claim_id.ne_all(reversed))
        .select((paid_items::member_id, paid_items::fingerprint))
        .distinct()
        .into_boxed();
    if let Some(fingerprints) = query.fingerprints {
        select = select.filter(paid_items::fingerprint.eq_any(fingerprints));
    }
    if let Some(claim_id) = query.except_claim {
        select = select.filter(paid_items::claim_id.ne(claim_id));
    }
    Ok(select.load(conn)?)
}

/// Decodes a stored fingerprint key.
pub(crate) fn fingerprint(key: &str) -> Result<ItemFingerprint, StoreError> {
    ItemFingerprint::from_key(key).map_err(StoreError::integrity)
}
