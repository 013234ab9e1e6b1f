//! A bulk loader that fills a database with a synthetic portfolio for tests and benchmarks.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::db::{DbConn, write_transaction};
use crate::domain::pricing_group::age_band_on;
use crate::error::StoreError;
use crate::schema::{claims, enrollments, ledger_entries, members};
use crate::store::products;

/// One synthetic member for [`bulk_load`].
#[derive(Debug, Clone)]
pub struct SyntheticMember {
    pub birth_date: NaiveDate,
    /// `male` or `female`, as stored from resident IDs.
    pub sex: &'static str,
    pub declared_conditions: &'static str,
    pub coverage_start: NaiveDate,
}

/// One synthetic claim for [`bulk_load`]: whose (index into the members), which benefit, when,
/// and its ledger payments (UTC time, fen; a reversal is a negative payment).
#[derive(Debug, Clone)]
pub struct SyntheticClaim {
    pub member: usize,
    pub benefit: &'static str,
    pub service_date: NaiveDate,
    pub payments: Vec<(NaiveDateTime, i64)>,
}

/// Rows per multi-row INSERT: at most 11 columns, far below both backends' bound-parameter
/// limits.
const BULK_ROWS: usize = 2_000;

/// Fills the database with a synthetic portfolio of `product_id` in bulk (multi-row INSERTs in
/// one transaction per chunk), without adjudicating: members, enrollments, claims and the
/// ledger entries the study reads. For tests and the experience benchmark, never for real data
/// (no audit events, no decisions). `serial` makes resident-ID hashes unique across calls.
pub fn bulk_load(
    conn: &mut DbConn,
    product_id: &str,
    serial: &str,
    synthetic_members: &[SyntheticMember],
    synthetic_claims: &[SyntheticClaim],
    now: NaiveDateTime,
) -> Result<(), StoreError> {
    let product = products::current(conn, product_id)?;
    let target = Target {
        product_id,
        version_id: product.version_id,
        period_start: product.product.period_start,
        now,
    };
    let mut member_ids: Vec<i64> = Vec::with_capacity(synthetic_members.len());
    let mut enrollment_ids: Vec<i64> = Vec::with_capacity(synthetic_members.len());
    for (chunk_index, chunk) in synthetic_members.chunks(BULK_ROWS).enumerate() {
        let (ids, eids) = write_transaction(conn, |conn| {
            let base = chunk_index * BULK_ROWS;
            let hashes: Vec<String> = (0..chunk.len())
                .map(|i| format!("synthetic:{serial}:{}", base + i))
                .collect();
            let ids = insert_members(conn, chunk, &hashes, now)?;
            let eids = insert_enrollments(conn, &target, chunk, &ids)?;
            Ok::<_, StoreError>((ids, eids))
        })?;
        member_ids.extend(ids);
        enrollment_ids.extend(eids);
    }
    let enrolled = Enrolled {
        member_ids,
        enrollment_ids,
    };
    for chunk in synthetic_claims.chunks(BULK_ROWS) {
        write_transaction(conn, |conn| {
            for c in chunk {
                if c.member >= enrolled.member_ids.len() {
                    return Err(StoreError::integrity(format!(
                        "synthetic claim names member {} of {}",
                        c.member,
                        enrolled.member_ids.len()
                    )));
                }
            }
            let ids = insert_claims(conn, &target, &enrolled, chunk)?;
            insert_ledger(conn, &target, &enrolled, chunk, &ids)
        })?;
    }
    Ok(())
}

/// The product version the portfolio is loaded into, and the time the rows are created at.
struct Target<'a> {
    product_id: &'a str,
    version_id: i64,
    /// The start of the version's period, on which the pricing group's age band is reached.
    period_start: NaiveDate,
    now: NaiveDateTime,
}

/// The ids of the loaded members and of their enrollments, by member index.
struct Enrolled {
    member_ids: Vec<i64>,
    enrollment_ids: Vec<i64>,
}

fn insert_members(
    conn: &mut DbConn,
    chunk: &[SyntheticMember],
    hashes: &[String],
    now: NaiveDateTime,
) -> Result<Vec<i64>, StoreError> {
    let rows: Vec<_> = chunk
        .iter()
        .zip(hashes)
        .map(|(m, hash)| {
            (
                members::resident_id_hash.eq(hash.as_str()),
                members::resident_id_masked.eq("synthetic"),
                members::name.eq("synthetic"),
                members::phone.eq(""),
                members::birth_date.eq(m.birth_date),
                members::sex.eq(m.sex),
                members::created_at.eq(now),
            )
        })
        .collect();
    Ok(match conn {
        DbConn::Postgres(c) => diesel::insert_into(members::table)
            .values(&rows)
            .returning(members::id)
            .get_results(c)?,
        DbConn::Sqlite(c) => diesel::insert_into(members::table)
            .values(&rows)
            .returning(members::id)
            .get_results(c)?,
    })
}

fn insert_enrollments(
    conn: &mut DbConn,
    target: &Target,
    chunk: &[SyntheticMember],
    member_ids: &[i64],
) -> Result<Vec<i64>, StoreError> {
    let rows: Vec<_> = chunk
        .iter()
        .zip(member_ids)
        .map(|(m, &id)| {
            (
                enrollments::member_id.eq(id),
                enrollments::product_id.eq(target.product_id),
                enrollments::product_version_id.eq(target.version_id),
                enrollments::insurance_type.eq("urban_employee"),
                enrollments::declared_conditions.eq(m.declared_conditions),
                enrollments::enrolled_on.eq(m.coverage_start),
                enrollments::coverage_start.eq(m.coverage_start),
                enrollments::waiting_waived.eq(false),
                enrollments::enrolled_by.eq("synthetic"),
                enrollments::created_at.eq(target.now),
                enrollments::age_band.eq(age_band_on(m.birth_date, target.period_start)),
                enrollments::sex.eq(m.sex),
                enrollments::preexisting.eq(m.declared_conditions != "[]"),
            )
        })
        .collect();
    Ok(match conn {
        DbConn::Postgres(c) => diesel::insert_into(enrollments::table)
            .values(&rows)
            .returning(enrollments::id)
            .get_results(c)?,
        DbConn::Sqlite(c) => diesel::insert_into(enrollments::table)
            .values(&rows)
            .returning(enrollments::id)
            .get_results(c)?,
    })
}

fn insert_claims(
    conn: &mut DbConn,
    target: &Target,
    enrolled: &Enrolled,
    chunk: &[SyntheticClaim],
) -> Result<Vec<i64>, StoreError> {
    let rows: Vec<_> = chunk
        .iter()
        .map(|c| {
            (
                claims::member_id.eq(enrolled.member_ids[c.member]),
                claims::enrollment_id.eq(enrolled.enrollment_ids[c.member]),
                claims::product_version_id.eq(target.version_id),
                claims::kind.eq(c.benefit),
                claims::service_date.eq(c.service_date),
                claims::provider_id.eq("synthetic"),
                claims::submission.eq("{}"),
                claims::submitted_by.eq("synthetic"),
                claims::created_at.eq(target.now),
            )
        })
        .collect();
    Ok(match conn {
        DbConn::Postgres(c) => diesel::insert_into(claims::table)
            .values(&rows)
            .returning(claims::id)
            .get_results(c)?,
        DbConn::Sqlite(c) => diesel::insert_into(claims::table)
            .values(&rows)
            .returning(claims::id)
            .get_results(c)?,
    })
}

/// The ledger entries of the claims `claim_ids` (in the order of `chunk`).
fn insert_ledger(
    conn: &mut DbConn,
    target: &Target,
    enrolled: &Enrolled,
    chunk: &[SyntheticClaim],
    claim_ids: &[i64],
) -> Result<(), StoreError> {
    let ledger: Vec<_> = chunk
        .iter()
        .zip(claim_ids)
        .flat_map(|(c, &claim_id)| {
            let member_id = enrolled.member_ids[c.member];
            c.payments.iter().map(move |&(at, paid)| {
                (
                    ledger_entries::member_id.eq(member_id),
                    ledger_entries::product_id.eq(target.product_id),
                    ledger_entries::benefit.eq(c.benefit),
                    ledger_entries::claim_id.eq(claim_id),
                    ledger_entries::item_index.eq(0),
                    ledger_entries::deductible_fen.eq(0_i64),
                    ledger_entries::paid_fen.eq(paid),
                    ledger_entries::created_at.eq(at),
                )
            })
        })
        .collect();
    for part in ledger.chunks(BULK_ROWS) {
        match conn {
            DbConn::Postgres(c) => diesel::insert_into(ledger_entries::table)
                .values(part)
                .execute(c)?,
            DbConn::Sqlite(c) => diesel::insert_into(ledger_entries::table)
                .values(part)
                .execute(c)?,
        };
    }
    Ok(())
}
