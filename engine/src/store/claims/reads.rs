//! Reading claims: one claim's view, who owns it, and pages of claims.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;

use crate::db::DbConn;
use crate::domain::money::Fen;
use crate::error::StoreError;
use crate::schema::{claims, decisions, ledger_entries, reversals};
use crate::store::enrollment::member_row;
use crate::store::products;

use super::rows::{ClaimRow, DecisionRow, ReversalRow};
use super::view::{
    ClaimFacts, ClaimPage, ClaimSummary, ClaimView, ClaimViewStatus, DecisionView, ReversalView,
    parse_kind,
};

pub(crate) fn claim_row(conn: &mut DbConn, claim_id: i64) -> Result<ClaimRow, StoreError> {
    claims::table
        .find(claim_id)
        .select(ClaimRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| StoreError::not_found("claim", claim_id))
}

/// A claim's decisions, first to last (the last is in force).
pub(crate) fn decision_rows(
    conn: &mut DbConn,
    claim_id: i64,
) -> Result<Vec<DecisionRow>, StoreError> {
    Ok(decisions::table
        .filter(decisions::claim_id.eq(claim_id))
        .order(decisions::sequence.asc())
        .select(DecisionRow::as_select())
        .load(conn)?)
}

pub(crate) fn reversal_row(
    conn: &mut DbConn,
    claim_id: i64,
) -> Result<Option<ReversalRow>, StoreError> {
    Ok(reversals::table
        .filter(reversals::claim_id.eq(claim_id))
        .select(ReversalRow::as_select())
        .first(conn)
        .optional()?)
}

/// A reversal with the amounts its compensating ledger entries posted.
fn reversal_view(conn: &mut DbConn, row: ReversalRow) -> Result<ReversalView, StoreError> {
    let entries: Vec<(String, i64, i64)> = ledger_entries::table
        .filter(ledger_entries::reversal_id.eq(row.id))
        .order(ledger_entries::id.asc())
        .select((
            ledger_entries::benefit,
            ledger_entries::deductible_fen,
            ledger_entries::paid_fen,
        ))
        .load(conn)?;
    ReversalView::build(row, &entries)
}

/// Who a claim is for and who submitted it: what authorisation at the edge
/// decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    pub member_id: i64,
    pub submitted_by: String,
}

pub fn ownership(conn: &mut DbConn, claim_id: i64) -> Result<Ownership, StoreError> {
    let row = claim_row(conn, claim_id)?;
    Ok(Ownership {
        member_id: row.member_id,
        submitted_by: row.submitted_by,
    })
}

pub fn view(conn: &mut DbConn, claim_id: i64) -> Result<ClaimView, StoreError> {
    let row = claim_row(conn, claim_id)?;
    let decisions = decision_rows(conn, claim_id)?
        .into_iter()
        .map(DecisionView::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let reversal = match reversal_row(conn, claim_id)? {
        Some(row) => Some(reversal_view(conn, row)?),
        None => None,
    };
    let product = products::version(conn, row.product_version_id)?;
    let facts = ClaimFacts {
        id: row.id,
        member_id: row.member_id,
        product_id: product.product.id,
        kind: parse_kind(&row.kind)?,
        service_date: row.service_date,
        provider_id: row.provider_id,
        submitted_by: row.submitted_by,
        submitted_at: row.created_at,
        submission: row.submission,
    };
    ClaimView::build(facts, decisions, reversal)
}

/// A member's claims, newest first, `limit` at a time; `cursor` is the
/// `next_cursor` of the previous page.
pub fn list_for_member(
    conn: &mut DbConn,
    member_id: i64,
    cursor: Option<i64>,
    limit: i64,
) -> Result<ClaimPage, StoreError> {
    member_row(conn, member_id)?;
    list_page(conn, ClaimFilter::Member(member_id), cursor, limit)
}

/// Whose claims a page lists.
pub enum ClaimFilter<'a> {
    /// The claims for a member.
    Member(i64),
    /// The claims a principal submitted.
    SubmittedBy(&'a str),
}

/// A page of claims, newest first; `limit` is clamped to 1..=100.
pub fn list_page(
    conn: &mut DbConn,
    filter: ClaimFilter<'_>,
    cursor: Option<i64>,
    limit: i64,
) -> Result<ClaimPage, StoreError> {
    let limit = limit.clamp(1, 100);
    let mut query = claims::table
        .select(ClaimRow::as_select())
        .order(claims::id.desc())
        .limit(limit + 1)
        .into_boxed();
    query = match filter {
        ClaimFilter::Member(member_id) => query.filter(claims::member_id.eq(member_id)),
        ClaimFilter::SubmittedBy(actor) => query.filter(claims::submitted_by.eq(actor.to_owned())),
    };
    if let Some(cursor) = cursor {
        query = query.filter(claims::id.lt(cursor));
    }
    let mut rows: Vec<ClaimRow> = query.load(conn)?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let claims = summaries(conn, &rows)?;
    let next_cursor = if has_more {
        rows.last().map(|r| r.id)
    } else {
        None
    };
    Ok(ClaimPage {
        claims,
        next_cursor,
    })
}

/// The summary of each claim of a page: the decision in force and any
/// reversal of the whole page, in two queries rather than two per claim.
fn summaries(conn: &mut DbConn, rows: &[ClaimRow]) -> Result<Vec<ClaimSummary>, StoreError> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    // Ordered by sequence, so the last decision of a claim (the one in
    // force) is the one the map keeps.
    let mut current: HashMap<i64, (String, i64)> = decisions::table
        .filter(decisions::claim_id.eq_any(&ids))
        .order((decisions::claim_id.asc(), decisions::sequence.asc()))
        .select((
            decisions::claim_id,
            decisions::status,
            decisions::payable_fen,
        ))
        .load::<(i64, String, i64)>(conn)?
        .into_iter()
        .map(|(id, status, payable)| (id, (status, payable)))
        .collect();
    let reversed: HashSet<i64> = reversals::table
        .filter(reversals::claim_id.eq_any(&ids))
        .select(reversals::claim_id)
        .load::<i64>(conn)?
        .into_iter()
        .collect();
    rows.iter()
        .map(|row| {
            let (status, payable) = current.remove(&row.id).ok_or_else(|| {
                StoreError::integrity(format!("claim {} has no decision", row.id))
            })?;
            Ok(ClaimSummary {
                id: row.id,
                kind: parse_kind(&row.kind)?,
                service_date: row.service_date,
                provider_id: row.provider_id.clone(),
                status: ClaimViewStatus::parse_stored(&status, reversed.contains(&row.id))?,
                payable: Fen(payable),
                submitted_at: row.created_at,
            })
        })
        .collect()
}
