//! Idempotency keys: the same key with the same request returns the stored
//! response; with another request it is a conflict. The key row is written in
//! the same transaction as the effect, and a failed request rolls both back,
//! so a rejected submission does not use up its key.
//!
//! [`check`] is the one decision every write path makes (enrollment,
//! reversal, appeal, and each claim of a batch); [`once`] wraps it around a
//! single effect.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

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

/// A key row to insert beside the effect it remembers.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = idempotency_keys)]
pub(crate) struct NewKey {
    pub principal: String,
    pub idempotency_key: String,
    pub operation: String,
    pub request_hash: String,
    pub response_body: String,
    pub created_at: NaiveDateTime,
}

impl NewKey {
    /// The key of `ctx.actor`, remembering `response_body` (see
    /// [`response_text`]) for the request hashed as `request_hash`.
    pub fn new(
        ctx: &WriteContext<'_>,
        key: &str,
        operation: &str,
        request_hash: String,
        response_body: String,
    ) -> NewKey {
        NewKey {
            principal: ctx.actor.to_owned(),
            idempotency_key: key.to_owned(),
            operation: operation.to_owned(),
            request_hash,
            response_body,
            created_at: crate::audit::truncate_to_micros(ctx.now.naive_utc()),
        }
    }
}

/// What a used key remembers: its request's hash and the response given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredKey {
    pub request_hash: String,
    pub response_body: String,
}

/// Whether a request runs or gets an earlier response.
#[derive(Debug)]
pub(crate) enum KeyUse<'a> {
    /// The key was used before with the same request: this stored response.
    Replay(&'a str),
    /// The key is unused: run the effect and remember its response.
    Fresh,
}

/// The idempotency rule: an unused key runs; a key used with the same request
/// replays; a key used with another request is refused.
pub(crate) fn check<'a>(
    stored: Option<&'a StoredKey>,
    request_hash: &str,
) -> Result<KeyUse<'a>, StoreError> {
    match stored {
        None => Ok(KeyUse::Fresh),
        Some(used) if used.request_hash == request_hash => Ok(KeyUse::Replay(&used.response_body)),
        Some(_) => Err(StoreError::IdempotencyKeyReused),
    }
}

/// A stored response, given again.
pub(crate) fn replay<T: DeserializeOwned>(response_body: &str) -> Result<Recorded<T>, StoreError> {
    Ok(Recorded {
        body: serde_json::from_str(response_body)?,
        replayed: true,
    })
}

/// A response as a key stores it: JSON text with its object keys sorted,
/// which is also the order the HTTP edge writes them in, so that a replay is
/// byte for byte the first answer.
pub(crate) fn response_text(body: &impl Serialize) -> Result<String, StoreError> {
    Ok(serde_json::to_string(&serde_json::to_value(body)?)?)
}

/// What a key remembers of its request: the operation and the request in
/// canonical form, hashed.
pub(crate) fn request_hash(operation: &str, canonical_request: &str) -> String {
    sha256_hex(format!("{operation}\n{canonical_request}").as_bytes())
}

/// Runs `effect` once per (principal, key). Must be called inside a write
/// transaction. `canonical_request` is the request in canonical form (sorted
/// keys, amounts as fen), so that formatting differences are not conflicts.
pub fn once<T: Serialize + DeserializeOwned>(
    conn: &mut DbConn,
    ctx: &WriteContext<'_>,
    key: &str,
    operation: &str,
    canonical_request: &str,
    effect: impl FnOnce(&mut DbConn) -> Result<T, StoreError>,
) -> Result<Recorded<T>, StoreError> {
    let request_hash = request_hash(operation, canonical_request);
    let stored = idempotency_keys::table
        .find((ctx.actor, key))
        .select((
            idempotency_keys::request_hash,
            idempotency_keys::response_body,
        ))
        .first::<(String, String)>(conn)
        .optional()?
        .map(|(request_hash, response_body)| StoredKey {
            request_hash,
            response_body,
        });
    if let KeyUse::Replay(body) = check(stored.as_ref(), &request_hash)? {
        return replay(body);
    }
    let body = effect(conn)?;
    let row = NewKey::new(ctx, key, operation, request_hash, response_text(&body)?);
    diesel::insert_into(idempotency_keys::table)
        .values(&row)
        .execute(conn)?;
    Ok(Recorded {
        body,
        replayed: false,
    })
}
