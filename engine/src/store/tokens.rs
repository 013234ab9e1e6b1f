//! API bearer tokens, stored only as SHA-256 hashes. Tokens are long random
//! strings, so an unsalted hash is enough to make a stolen table useless.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::audit;
use crate::db::DbConn;
use crate::domain::canonical::sha256_hex;
use crate::error::StoreError;
use crate::schema::{api_tokens, members};
use crate::store::WriteContext;

/// What a token lets its holder do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Role {
    /// Bound to one member: their own member record, cover and claims.
    Enrollee {
        member_id: i64,
    },
    /// A designated hospital or pharmacy.
    Provider {
        provider_id: String,
    },
    Insurer,
    /// Read-only everything; their reads are audited.
    Auditor,
}

impl Role {
    pub fn name(&self) -> &'static str {
        match self {
            Role::Enrollee { .. } => "enrollee",
            Role::Provider { .. } => "provider",
            Role::Insurer => "insurer",
            Role::Auditor => "auditor",
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_tokens)]
struct TokenRow {
    id: i64,
    role: String,
    member_id: Option<i64>,
    provider_id: Option<String>,
}

/// A token found by its hash: its id (for the principal name) and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub token_id: i64,
    pub role: Role,
}

impl Principal {
    /// The stable name used as actor in the audit log and as the scope of
    /// idempotency keys.
    pub fn actor(&self) -> String {
        match &self.role {
            Role::Enrollee { member_id } => format!("enrollee:{member_id}"),
            Role::Provider { provider_id } => format!("provider:{provider_id}"),
            Role::Insurer => format!("insurer:{}", self.token_id),
            Role::Auditor => format!("auditor:{}", self.token_id),
        }
    }
}

pub fn hash_token(plaintext: &str) -> String {
    sha256_hex(plaintext.as_bytes())
}

#[derive(Insertable)]
#[diesel(table_name = api_tokens)]
struct NewToken<'a> {
    token_hash: &'a str,
    role: &'a str,
    member_id: Option<i64>,
    provider_id: Option<&'a str>,
    label: &'a str,
    created_at: NaiveDateTime,
    signup_hash: Option<&'a str>,
}

/// Stores a token (given in plaintext, kept only as its hash). Call inside a
/// write transaction; the creation is audited without the secret.
pub fn create(
    conn: &mut DbConn,
    ctx: &WriteContext<'_>,
    plaintext: &str,
    role: &Role,
    label: &str,
) -> Result<Principal, StoreError> {
    insert(conn, ctx, plaintext, role, label, None)
}

/// The sign-up a token was issued for: who signed up (the caller, as
/// scoped for idempotency) and with which key.
pub fn signup_hash(actor: &str, idempotency_key: &str) -> String {
    sha256_hex(format!("signup\n{actor}\n{idempotency_key}").as_bytes())
}

/// What issuing a sign-up's token did: the new token, and the tokens the
/// same sign-up had issued before, now revoked (so that a replayed sign-up
/// never leaves two live credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignupToken {
    pub principal: Principal,
    pub replaced: Vec<i64>,
}

/// Issues the enrollee token of a sign-up, revoking any token the same
/// sign-up issued before. Call inside a write transaction.
pub fn issue_for_signup(
    conn: &mut DbConn,
    ctx: &WriteContext<'_>,
    plaintext: &str,
    member_id: i64,
    signup: &str,
) -> Result<SignupToken, StoreError> {
    let live: Vec<i64> = api_tokens::table
        .filter(api_tokens::signup_hash.eq(signup))
        .filter(api_tokens::revoked_at.is_null())
        .select(api_tokens::id)
        .order(api_tokens::id.asc())
        .load(conn)?;
    for token_id in &live {
        mark_revoked(conn, ctx, *token_id, "replaced by a replayed sign-up")?;
    }
    let principal = insert(
        conn,
        ctx,
        plaintext,
        &Role::Enrollee { member_id },
        "enrollee sign-up",
        Some(signup),
    )?;
    Ok(SignupToken {
        principal,
        replaced: live,
    })
}

/// Whether a revocation changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    Revoked,
    AlreadyRevoked,
}

/// Revokes a token: from now on it authenticates nobody. The row stays (the
/// audit log names it). Revoking a revoked token changes nothing; an
/// unknown id is not found. Call inside a write transaction.
pub fn revoke(
    conn: &mut DbConn,
    ctx: &WriteContext<'_>,
    token_id: i64,
) -> Result<Revocation, StoreError> {
    let revoked_at = api_tokens::table
        .find(token_id)
        .select(api_tokens::revoked_at)
        .first::<Option<NaiveDateTime>>(conn)
        .optional()?
        .ok_or_else(|| StoreError::not_found("token", token_id))?;
    if revoked_at.is_some() {
        return Ok(Revocation::AlreadyRevoked);
    }
    mark_revoked(conn, ctx, token_id, "revoked")?;
    Ok(Revocation::Revoked)
}

fn mark_revoked(
    conn: &mut DbConn,
    ctx: &WriteContext<'_>,
    token_id: i64,
    why: &str,
) -> Result<(), StoreError> {
    diesel::update(api_tokens::table.find(token_id))
        .set(api_tokens::revoked_at.eq(Some(audit::truncate_to_micros(ctx.now.naive_utc()))))
        .execute(conn)?;
    audit::append(
        conn,
        &ctx.keys.audit,
        ctx.now,
        ctx.actor,
        "token.revoked",
        &format!("token:{token_id}"),
        &serde_json::json!({ "token_id": token_id, "reason": why }),
    )?;
    Ok(())
}

fn insert(
    conn: &mut DbConn,
    ctx: &WriteContext<'_>,
    plaintext: &str,
    role: &Role,
    label: &str,
    signup_hash: Option<&str>,
) -> Result<Principal, StoreError> {
    let (member_id, provider_id) = match role {
        Role::Enrollee { member_id } => {
            let exists = members::table
                .find(*member_id)
                .select(members::id)
                .first::<i64>(conn)
                .optional()?;
            if exists.is_none() {
                return Err(StoreError::not_found("member", member_id));
            }
            (Some(*member_id), None)
        }
        Role::Provider { provider_id } => (None, Some(provider_id.as_str())),
        Role::Insurer | Role::Auditor => (None, None),
    };
    let token_id: i64 = diesel::insert_into(api_tokens::table)
        .values(NewToken {
            token_hash: &hash_token(plaintext),
            role: role.name(),
            member_id,
            provider_id,
            label,
            created_at: audit::truncate_to_micros(ctx.now.naive_utc()),
            signup_hash,
        })
        .returning(api_tokens::id)
        .get_result(conn)?;
    let principal = Principal {
        token_id,
        role: role.clone(),
    };
    audit::append(
        conn,
        &ctx.keys.audit,
        ctx.now,
        ctx.actor,
        "token.created",
        &format!("token:{token_id}"),
        &serde_json::json!({ "token_id": token_id, "role": role, "label": label }),
    )?;
    Ok(principal)
}

/// Looks a presented token up by its hash; a revoked token is no one.
pub fn authenticate(conn: &mut DbConn, plaintext: &str) -> Result<Option<Principal>, StoreError> {
    let row = api_tokens::table
        .filter(api_tokens::token_hash.eq(hash_token(plaintext)))
        .filter(api_tokens::revoked_at.is_null())
        .select(TokenRow::as_select())
        .first(conn)
        .optional()?;
    let Some(row) = row else { return Ok(None) };
    let role = match (row.role.as_str(), row.member_id, row.provider_id) {
        ("enrollee", Some(member_id), _) => Role::Enrollee { member_id },
        ("provider", _, Some(provider_id)) => Role::Provider { provider_id },
        ("insurer", _, _) => Role::Insurer,
        ("auditor", _, _) => Role::Auditor,
        (other, _, _) => {
            return Err(StoreError::integrity(format!(
                "token {} has an unknown role {other:?}",
                row.id
            )));
        }
    };
    Ok(Some(Principal {
        token_id: row.id,
        role,
    }))
}

/// Whether any token of this role exists, revoked or not (the server
/// issues the first insurer and auditor tokens only on a database that
/// never had one).
pub fn any_with_role(conn: &mut DbConn, role: &str) -> Result<bool, StoreError> {
    let found = api_tokens::table
        .filter(api_tokens::role.eq(role))
        .select(api_tokens::id)
        .first::<i64>(conn)
        .optional()?;
    Ok(found.is_some())
}
