//! Idempotency keys: the same key with the same request returns the stored
//! response; with another request it is a conflict. The key row is written in
//! the same transaction as the effect, and a failed request rolls both back,
//! so a rejected submission does not use up its key.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::domain::canonical::sha256_hex;
use crate::error::StoreError;
use crate::schema::idempotency_keys;
use crate::store::{Recorded, WriteContext};

pub const MAX_KEY_LENGTH: usize = 255;

/// Checks the shape of a client-chosen key.
pub fn check_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("the Idempotency-Key header is empty");
    }
    if key.len() > MAX_KEY_LENGTH {
        return Err("the Idempotency-Key header is longer than 255 characters");
    }
    if !key.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err("the Idempotency-Key header must be printable ASCII without spaces");
    }
    Ok(())
}

#[derive(Insertable)]
#[diesel(table_name = idempotency_keys)]
struct NewKey<'a> {
    principal: &'a str,
    idempotency_key: &'a str,
    operation: &'a str,
    request_hash: &'a str,
    response_body: &'a str,
    created_at: NaiveDateTime,
}

/// What a key remembers of its request: the operation and the request in
/// canonical form, hashed.
pub(crate) fn request_hash(operation: &str, canonical_request: &str) -> String {
    sha256_hex(format!("{operation}\n{canonical_request}").as_bytes())
}

/// Runs `effect` once per (principal, key). Must be called inside a write
/// transaction. `canonical_request` is the request in canonical form (sorted
/// keys, amounts as fen), so that formatting differences are not conflicts.
pub fn once(
    conn: &mut DbConn,
    ctx: &WriteContext<'_>,
    key: &str,
    operation: &str,
    canonical_request: &str,
    effect: impl FnOnce(&mut DbConn) -> Result<serde_json::Value, StoreError>,
) -> Result<Recorded, StoreError> {
    let request_hash = request_hash(operation, canonical_request);
    let stored = idempotency_keys::table
        .find((ctx.actor, key))
        .select((
            idempotency_keys::request_hash,
            idempotency_keys::response_body,
        ))
        .first::<(String, String)>(conn)
        .optional()?;
    if let Some((stored_hash, body)) = stored {
        if stored_hash != request_hash {
            return Err(StoreError::IdempotencyKeyReused);
        }
        return Ok(Recorded {
            body: serde_json::from_str(&body)?,
            replayed: true,
        });
    }
    let body = effect(conn)?;
    let body_text = serde_json::to_string(&body)?;
    diesel::insert_into(idempotency_keys::table)
        .values(NewKey {
            principal: ctx.actor,
            idempotency_key: key,
            operation,
            request_hash: &request_hash,
            response_body: &body_text,
            created_at: crate::audit::truncate_to_micros(ctx.now.naive_utc()),
        })
        .execute(conn)?;
    Ok(Recorded {
        body,
        replayed: false,
    })
}
