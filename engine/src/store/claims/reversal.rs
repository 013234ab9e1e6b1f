//! Reversing a paid claim: the exact negatives of its ledger entries.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::audit;
use crate::db::{DbConn, write_transaction};
use crate::domain::ValidationErrors;
use crate::domain::adjudication::{ClaimDecision, LedgerDelta};
use crate::domain::canonical::canonical_json;
use crate::domain::claim::BenefitKind;
use crate::domain::money::Fen;
use crate::error::StoreError;
use crate::schema::{ledger_entries, reversals};
use crate::store::ledger::{NewLedgerEntry, check_balances_within_terms};
use crate::store::{Recorded, WriteContext, idempotency, products};

use super::reads::{claim_row, decision_rows, reversal_row, view};
use super::rows::{ClaimRow, insert_rows};
use super::view::ClaimView;

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReversalRequest {
    #[schema(schema_with = reason_schema)]
    pub reason: String,
}

/// Longest reason a reversal takes, once trimmed.
pub const MAX_REASON_CHARS: usize = 1_000;

fn reason_schema() -> utoipa::openapi::schema::Schema {
    crate::domain::request_schemas::reason(MAX_REASON_CHARS)
}

/// The reason of a reversal, trimmed, or why it is refused.
fn valid_reason(request: &ReversalRequest) -> Result<&str, StoreError> {
    let reason = request.reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(StoreError::Validation(ValidationErrors::single(
            "reason",
            "invalid_reason",
            "a reversal needs a reason of 1 to 1000 characters".to_owned(),
        )));
    }
    Ok(reason)
}

/// Reverses a claim that paid at least one item: posts the exact negatives of
/// all its ledger entries. Later claims are not re-decided.
pub fn reverse(
    conn: &mut DbConn,
    ctx: &WriteContext<'_>,
    idempotency_key: &str,
    claim_id: i64,
    request: &ReversalRequest,
) -> Result<Recorded<ClaimView>, StoreError> {
    let reason = valid_reason(request)?;
    let canonical = canonical_json(&serde_json::json!({ "claim_id": claim_id, "reason": reason }));
    write_transaction(conn, |conn| {
        idempotency::once(conn, ctx, idempotency_key, "reversal", &canonical, |conn| {
            let claim = reversible_claim(conn, claim_id)?;
            let reversal_id = insert_reversal(conn, ctx, claim_id, reason)?;
            let (entries, paid_reversed) = post_negated_entries(conn, ctx, &claim, reversal_id)?;
            let product = products::version(conn, claim.product_version_id)?;
            check_balances_within_terms(conn, claim.member_id, &product)?;
            audit::append(
                conn,
                &ctx.keys.audit,
                ctx.now,
                ctx.actor,
                "claim.reversed",
                &format!("claim:{claim_id}"),
                &serde_json::json!({
                    "claim_id": claim_id,
                    "member_id": claim.member_id,
                    "reversal_id": reversal_id,
                    "reason": reason,
                    "entries_reversed": entries,
                    "paid_reversed": paid_reversed,
                }),
            )?;
            view(conn, claim_id)
        })
    })
}

/// The claim, once it is known to be reversible: not reversed yet, and its
/// decision in force pays at least one item.
fn reversible_claim(conn: &mut DbConn, claim_id: i64) -> Result<ClaimRow, StoreError> {
    let claim = claim_row(conn, claim_id)?;
    if reversal_row(conn, claim_id)?.is_some() {
        return Err(StoreError::conflict(
            "already_reversed",
            format!("claim {claim_id} is already reversed"),
        ));
    }
    let current = decision_rows(conn, claim_id)?
        .pop()
        .ok_or_else(|| StoreError::integrity(format!("claim {claim_id} has no decision")))?;
    let decision: ClaimDecision = serde_json::from_str(&current.body)?;
    if !decision.has_paid_item() {
        return Err(StoreError::conflict(
            "not_reversible",
            format!("claim {claim_id} has no paid item to reverse"),
        ));
    }
    Ok(claim)
}

fn insert_reversal(
    conn: &mut DbConn,
    ctx: &WriteContext<'_>,
    claim_id: i64,
    reason: &str,
) -> Result<i64, StoreError> {
    Ok(diesel::insert_into(reversals::table)
        .values((
            reversals::claim_id.eq(claim_id),
            reversals::reason.eq(reason),
            reversals::reversed_by.eq(ctx.actor),
            reversals::created_at.eq(audit::truncate_to_micros(ctx.now.naive_utc())),
        ))
        .returning(reversals::id)
        .get_result(conn)?)
}

/// Posts the compensating entry of each of the claim's ledger entries, in
/// their order; returns how many and the paid amount reversed.
fn post_negated_entries(
    conn: &mut DbConn,
    ctx: &WriteContext<'_>,
    claim: &ClaimRow,
    reversal_id: i64,
) -> Result<(usize, Fen), StoreError> {
    let entries: Vec<(String, String, i32, i64, i64)> = ledger_entries::table
        .filter(ledger_entries::claim_id.eq(claim.id))
        .order(ledger_entries::id.asc())
        .select((
            ledger_entries::product_id,
            ledger_entries::benefit,
            ledger_entries::item_index,
            ledger_entries::deductible_fen,
            ledger_entries::paid_fen,
        ))
        .load(conn)?;
    let now = audit::truncate_to_micros(ctx.now.naive_utc());
    let mut reversed_paid = Fen(0);
    let mut rows = Vec::with_capacity(entries.len());
    for (product_id, benefit, index, deductible, paid) in entries {
        let entry = LedgerDelta {
            item_index: usize::try_from(index)
                .map_err(|_| StoreError::integrity("ledger item index is negative"))?,
            benefit: BenefitKind::parse(&benefit).ok_or_else(|| {
                StoreError::integrity(format!("ledger entry of unknown benefit {benefit:?}"))
            })?,
            deductible_met: Fen(deductible),
            paid: Fen(paid),
        };
        let negated = entry
            .negated()
            .map_err(|_| StoreError::integrity("ledger amount cannot be negated"))?;
        reversed_paid = reversed_paid
            .try_add(entry.paid)
            .map_err(|_| StoreError::integrity("reversed amount overflows"))?;
        rows.push(NewLedgerEntry {
            member_id: claim.member_id,
            product_id,
            benefit,
            claim_id: claim.id,
            decision_id: None,
            reversal_id: Some(reversal_id),
            item_index: index,
            deductible_fen: negated.deductible_met.0,
            paid_fen: negated.paid.0,
            created_at: now,
        });
    }
    let count = rows.len();
    insert_rows!(conn, ledger_entries::table, rows);
    Ok((count, reversed_paid))
}
