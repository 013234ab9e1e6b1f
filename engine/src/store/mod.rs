//! Persistence around the pure domain. Every function takes `&mut DbConn`;
//! the ones that change state run their whole effect (idempotency key,
//! decision, ledger entries, audit event) in one serialised write
//! transaction of their own, so a crash leaves either all of it or none.

pub mod authorizations;
pub mod claims;
pub mod enrollment;
pub mod experience;
pub mod idempotency;
pub(crate) mod ledger;
pub mod pricing_runs;
pub mod products;
pub mod tokens;
pub mod utc;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::audit::AuditKey;

/// Secrets derived from the server's master key: one for the audit chain,
/// one for the keyed hash of resident ID numbers. Debug prints neither.
#[derive(Clone)]
pub struct Keys {
    pub audit: AuditKey,
    pub resident_id: Vec<u8>,
}

impl Keys {
    /// Derives independent sub-keys, so that knowing one purpose's key says
    /// nothing about the other's.
    pub fn derive(master: &[u8]) -> Self {
        let sub = |label: &str| {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(master)
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
            mac.update(label.as_bytes());
            mac.finalize().into_bytes().to_vec()
        };
        Keys {
            audit: AuditKey::new(sub("puhui/audit-chain/v1")),
            resident_id: sub("puhui/resident-id/v1"),
        }
    }
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

/// Who is acting and when: passed to every write so that the audit log and
/// the idempotency scope name the same principal, and so that the clock is
/// the caller's (tests pin it).
#[derive(Debug, Clone)]
pub struct WriteContext<'a> {
    pub keys: &'a Keys,
    /// Stable principal id, e.g. `insurer:3`, `enrollee:12`, `anonymous:127.0.0.1`.
    pub actor: &'a str,
    pub now: DateTime<Utc>,
}

impl WriteContext<'_> {
    /// Dates in the products and claims are China time (UTC+8, no DST).
    pub fn today_china(&self) -> NaiveDate {
        china_date(self.now)
    }
}

pub fn china_date(now: DateTime<Utc>) -> NaiveDate {
    let offset =
        FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| unreachable!("+08:00 is a valid offset"));
    now.with_timezone(&offset).date_naive()
}

/// A mutating call's result: the response body, and whether it was replayed
/// from an earlier call with the same idempotency key.
#[derive(Debug, Clone)]
pub struct Recorded<T> {
    pub body: T,
    pub replayed: bool,
}
