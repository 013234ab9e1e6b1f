//! The tamper-evident audit log.
//!
//! Every change appends one event. Its `payload` is the canonical JSON of the
//! whole event (sequence, time, actor, action, entity and data), and
//! `hash = HMAC-SHA-256(key, prev_hash || payload)` in hex, so rewriting any
//! event, or re-chaining after a rewrite, needs the server key. Deleting the
//! newest events leaves a valid shorter chain; that is caught by comparing
//! against a head (sequence + hash) exported earlier and kept elsewhere.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::db::DbConn;
use crate::domain::canonical::canonical_json;
use crate::error::StoreError;
use crate::schema::audit_events;

/// The previous hash of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Events read per query while verifying or exporting, so memory stays
/// bounded however long the chain is.
const VERIFY_BATCH: i64 = 2_000;

/// The HMAC key of the chain. Debug never prints it.
#[derive(Clone)]
pub struct AuditKey(Vec<u8>);

impl AuditKey {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        AuditKey(bytes.into())
    }

    fn mac(&self, prev_hash: &str, payload: &str) -> String {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(prev_hash.as_bytes());
        mac.update(payload.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(..)")
    }
}

#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    Queryable,
    Selectable,
    Insertable,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    pub seq: i64,
    #[serde(with = "crate::store::utc")]
    #[schema(value_type = String, format = DateTime)]
    pub at: NaiveDateTime,
    pub actor: String,
    pub action: String,
    pub entity: String,
    pub payload: String,
    pub prev_hash: String,
    pub hash: String,
}

/// What an auditor keeps off-box to detect truncation later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: String,
}

fn event_payload(
    seq: i64,
    at: NaiveDateTime,
    actor: &str,
    action: &str,
    entity: &str,
    data: &serde_json::Value,
) -> String {
    canonical_json(&serde_json::json!({
        "seq": seq,
        "at": at.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "actor": actor,
        "action": action,
        "entity": entity,
        "data": data,
    }))
}

/// Appends one event. Must run inside a write transaction (see
/// `db::write_transaction`): writers are serialised, so reading the head and
/// inserting the next sequence number cannot race.
pub fn append(
    conn: &mut DbConn,
    key: &AuditKey,
    now: DateTime<Utc>,
    actor: &str,
    action: &str,
    entity: &str,
    data: &serde_json::Value,
) -> Result<AuditEvent, StoreError> {
    let previous = head(conn)?;
    let event = next_event(key, previous.as_ref(), now, actor, action, entity, data);
    diesel::insert_into(audit_events::table)
        .values(&event)
        .execute(conn)?;
    Ok(event)
}

/// The event that follows `previous` (or starts the chain), not yet stored.
/// A batch of writes chains its events in memory from one read of the head
/// and inserts them together, inside the same write transaction.
pub fn next_event(
    key: &AuditKey,
    previous: Option<&ChainHead>,
    now: DateTime<Utc>,
    actor: &str,
    action: &str,
    entity: &str,
    data: &serde_json::Value,
) -> AuditEvent {
    let (seq, prev_hash) = match previous {
        Some(h) => (h.seq + 1, h.hash.clone()),
        None => (1, GENESIS_HASH.to_owned()),
    };
    // Microsecond precision: what both backends store exactly.
    let at = truncate_to_micros(now.naive_utc());
    let payload = event_payload(seq, at, actor, action, entity, data);
    let hash = key.mac(&prev_hash, &payload);
    AuditEvent {
        seq,
        at,
        actor: actor.to_owned(),
        action: action.to_owned(),
        entity: entity.to_owned(),
        payload,
        prev_hash,
        hash,
    }
}

impl AuditEvent {
    /// This event as the head of the chain.
    pub fn as_head(&self) -> ChainHead {
        ChainHead {
            seq: self.seq,
            hash: self.hash.clone(),
        }
    }
}

pub(crate) fn truncate_to_micros(t: NaiveDateTime) -> NaiveDateTime {
    use chrono::Timelike;
    let micros = t.nanosecond() / 1_000 * 1_000;
    t.with_nanosecond(micros).unwrap_or(t)
}

/// The newest event's sequence and hash, if any.
pub fn head(conn: &mut DbConn) -> Result<Option<ChainHead>, StoreError> {
    let row = audit_events::table
        .select((audit_events::seq, audit_events::hash))
        .order(audit_events::seq.desc())
        .first::<(i64, String)>(conn)
        .optional()?;
    Ok(row.map(|(seq, hash)| ChainHead { seq, hash }))
}

/// A page of events: sequence numbers in `after_seq < seq <= until_seq`,
/// optionally limited to a time range, oldest first.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub after_seq: Option<i64>,
    pub until_seq: Option<i64>,
    pub from: Option<NaiveDateTime>,
    pub to: Option<NaiveDateTime>,
    pub limit: i64,
}

pub fn list(conn: &mut DbConn, query: &EventQuery) -> Result<Vec<AuditEvent>, StoreError> {
    let mut q = audit_events::table
        .select(AuditEvent::as_select())
        .order(audit_events::seq.asc())
        .limit(query.limit.clamp(1, 10_000))
        .into_boxed();
    if let Some(after) = query.after_seq {
        q = q.filter(audit_events::seq.gt(after));
    }
    if let Some(until) = query.until_seq {
        q = q.filter(audit_events::seq.le(until));
    }
    if let Some(from) = query.from {
        q = q.filter(audit_events::at.ge(from));
    }
    if let Some(to) = query.to {
        q = q.filter(audit_events::at.lt(to));
    }
    Ok(q.load(conn)?)
}

/// Walks all events with `f`, in sequence order, a batch at a time.
pub fn for_each_event(
    conn: &mut DbConn,
    mut query: EventQuery,
    mut f: impl FnMut(&AuditEvent) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    query.limit = VERIFY_BATCH;
    loop {
        let batch = list(conn, &query)?;
        let Some(last) = batch.last() else {
            return Ok(());
        };
        query.after_seq = Some(last.seq);
        for event in &batch {
            f(event)?;
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BrokenEvent {
    pub seq: i64,
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VerifyReport {
    /// True when every event verifies and the expected head (if given) is there.
    pub valid: bool,
    pub events_checked: u64,
    pub head: Option<ChainHead>,
    /// The first event that does not verify, with what is wrong with it.
    pub first_broken: Option<BrokenEvent>,
}

/// Verifies the whole chain, and that `expected_head`, exported earlier, is
/// still part of it (deleting the newest events is otherwise invisible).
pub fn verify(
    conn: &mut DbConn,
    key: &AuditKey,
    expected_head: Option<&ChainHead>,
) -> Result<VerifyReport, StoreError> {
    let mut expected_seq = 1_i64;
    let mut prev_hash = GENESIS_HASH.to_owned();
    let mut checked = 0_u64;
    let mut first_broken: Option<BrokenEvent> = None;
    let mut head_seen = false;
    for_each_event(conn, EventQuery::default(), |event| {
        if first_broken.is_some() {
            return Ok(());
        }
        checked += 1;
        let problem = check_event(key, event, expected_seq, &prev_hash);
        if let Some(problem) = problem {
            first_broken = Some(BrokenEvent {
                seq: event.seq,
                problem,
            });
            return Ok(());
        }
        if let Some(h) = expected_head
            && h.seq == event.seq
        {
            if h.hash != event.hash {
                first_broken = Some(BrokenEvent {
                    seq: event.seq,
                    problem: "hash differs from the exported head".into(),
                });
                return Ok(());
            }
            head_seen = true;
        }
        expected_seq = event.seq + 1;
        prev_hash = event.hash.clone();
        Ok(())
    })?;
    if first_broken.is_none()
        && let Some(h) = expected_head
        && !head_seen
    {
        first_broken = Some(BrokenEvent {
            seq: h.seq,
            problem: format!(
                "the exported head (sequence {}) is missing: events after sequence {} were deleted",
                h.seq,
                expected_seq - 1
            ),
        });
    }
    let current_head = head(conn)?;
    Ok(VerifyReport {
        valid: first_broken.is_none(),
        events_checked: checked,
        head: current_head,
        first_broken,
    })
}

fn check_event(
    key: &AuditKey,
    event: &AuditEvent,
    expected_seq: i64,
    prev_hash: &str,
) -> Option<String> {
    if event.seq != expected_seq {
        return Some(format!(
            "sequence {} follows {}: events are missing",
            event.seq,
            expected_seq - 1
        ));
    }
    if event.prev_hash != prev_hash {
        return Some("previous hash does not match the preceding event".into());
    }
    let recomputed = key.mac(&event.prev_hash, &event.payload);
    if recomputed != event.hash {
        return Some("hash does not match the payload (altered payload or wrong key)".into());
    }
    // The indexed columns must say what the signed payload says.
    let expected_payload = match serde_json::from_str::<serde_json::Value>(&event.payload) {
        Ok(v) => v,
        Err(_) => return Some("payload is not JSON".into()),
    };
    let data = expected_payload
        .get("data")
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    let rebuilt = event_payload(
        event.seq,
        event.at,
        &event.actor,
        &event.action,
        &event.entity,
        &data,
    );
    if rebuilt != event.payload {
        return Some(
            "columns (time, actor, action or entity) differ from the signed payload".into(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_depends_on_key_previous_hash_and_payload() {
        let a = AuditKey::new(b"key-a".to_vec());
        let b = AuditKey::new(b"key-b".to_vec());
        let base = a.mac(GENESIS_HASH, "{}");
        assert_ne!(base, b.mac(GENESIS_HASH, "{}"));
        assert_ne!(base, a.mac(&"1".repeat(64), "{}"));
        assert_ne!(base, a.mac(GENESIS_HASH, "{ }"));
        assert_eq!(base.len(), 64);
    }
}
