//! Who may do what: the README's role table as one function. Every route
//! asks [`authorize`]; anything the table does not grant is refused.
//!
//! Some rows depend on the resource (an enrollee's own member, the provider
//! that submitted a claim). Their routes ask twice: first the role-level
//! action, before reading the body or looking the resource up (a caller who
//! may never do it learns nothing about what exists), then the targeted one.

use engine::store::claims::Ownership;
use engine::store::tokens::{Principal, Role};

/// An action on the API, named by the row of the role table it falls under.
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    /// `POST /v1/enrollments` with a token: enrolling someone on their behalf.
    EnrolOnBehalf,
    /// `GET /v1/members/{id}`, `.../coverage`, `.../claims`, any member...
    ReadMembers,
    /// ...and this member.
    ReadMember { member_id: i64 },
    /// `POST /v1/claims`, for anyone...
    SubmitClaims,
    /// ...and for this member under this provider id.
    SubmitClaim {
        member_id: i64,
        provider_id: &'a str,
    },
    /// `GET /v1/claims`: the claims the caller submitted.
    ListSubmittedClaims,
    /// `GET /v1/claims/{id}`.
    ReadClaim(&'a Ownership),
    /// `POST /v1/claims/{id}/appeal`, any claim...
    AppealClaims,
    /// ...and this claim.
    AppealClaim(&'a Ownership),
    /// `POST /v1/claims/{id}/reversal`.
    ReverseClaim,
    /// `POST /v1/pricing/runs`.
    StartPricingRun,
    /// `GET /v1/pricing/runs/{id}` and its `/report.html`.
    ReadPricingRun,
    /// `POST /v1/pricing/runs/{id}/cancel`.
    CancelPricingRun,
    /// `GET /v1/audit/events`, `/verify`, `/export`.
    ReadAuditLog,
    /// `GET /v1/products/{id}/experience`: the portfolio's claims experience and reserves.
    ReadExperience,
    /// `DELETE /v1/tokens/{id}`.
    RevokeToken,
    /// `POST /v1/authorizations`, for anyone...
    RequestAuthorizations,
    /// ...and for this member.
    RequestAuthorization { member_id: i64 },
    /// `GET /v1/authorizations/{id}`: the course of this member.
    ReadAuthorization { member_id: i64 },
    /// `POST /v1/authorizations/{id}/followups`.
    RecordFollowup,
    /// `POST /v1/authorizations/{id}/cancel`, any course...
    CancelAuthorizations,
    /// ...and the course of this member.
    CancelAuthorization { member_id: i64 },
}

/// Refused, with why (the 403's detail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forbidden(pub &'static str);

const NOT_THIS_ROLE: Forbidden = Forbidden("this token's role may not do this");

pub fn authorize(principal: &Principal, action: Action<'_>) -> Result<(), Forbidden> {
    use Action::*;
    use Role::*;
    match (action, &principal.role) {
        (EnrolOnBehalf, Insurer) => Ok(()),
        (ReadMembers, Enrollee { .. } | Insurer | Auditor) => Ok(()),
        (ReadMember { member_id }, Enrollee { .. } | Insurer | Auditor) => {
            own_member(principal, member_id)
        }
        (SubmitClaims, Enrollee { .. } | Provider { .. } | Insurer) => Ok(()),
        (SubmitClaim { member_id, .. }, Enrollee { .. }) => own_member(principal, member_id),
        (SubmitClaim { provider_id, .. }, Provider { provider_id: own }) => {
            if provider_id.trim() == own {
                Ok(())
            } else {
                Err(Forbidden("a provider token can only submit its own claims"))
            }
        }
        (SubmitClaim { .. }, Insurer) => Ok(()),
        (ListSubmittedClaims, Provider { .. } | Insurer) => Ok(()),
        (ReadClaim(claim), Enrollee { .. } | Provider { .. } | Insurer | Auditor) => {
            claim_access(principal, claim)
        }
        (AppealClaims, Enrollee { .. } | Provider { .. } | Insurer) => Ok(()),
        (AppealClaim(claim), Enrollee { .. } | Provider { .. } | Insurer) => {
            claim_access(principal, claim)
        }
        (ReverseClaim, Insurer) => Ok(()),
        (StartPricingRun, Insurer) => Ok(()),
        (ReadPricingRun, Insurer | Auditor) => Ok(()),
        (CancelPricingRun, Insurer) => Ok(()),
        (ReadAuditLog, Auditor | Insurer) => Ok(()),
        (ReadExperience, Insurer | Auditor) => Ok(()),
        (RevokeToken, Insurer) => Ok(()),
        (RequestAuthorizations, Enrollee { .. } | Provider { .. } | Insurer) => Ok(()),
        (RequestAuthorization { member_id }, Enrollee { .. } | Provider { .. } | Insurer) => {
            own_member(principal, member_id)
        }
        // The pharmacy checks the course it dispenses against.
        (
            ReadAuthorization { member_id },
            Enrollee { .. } | Provider { .. } | Insurer | Auditor,
        ) => own_member(principal, member_id),
        (RecordFollowup, Provider { .. } | Insurer) => Ok(()),
        (CancelAuthorizations, Enrollee { .. } | Insurer) => Ok(()),
        (CancelAuthorization { member_id }, Enrollee { .. } | Insurer) => {
            own_member(principal, member_id)
        }
        _ => Err(NOT_THIS_ROLE),
    }
}

/// An enrollee reaches only their own member.
fn own_member(principal: &Principal, member_id: i64) -> Result<(), Forbidden> {
    match principal.role {
        Role::Enrollee { member_id: own } if own != member_id => Err(Forbidden(
            "an enrollee token can only access its own member",
        )),
        _ => Ok(()),
    }
}

/// An enrollee reaches only their own claims, a provider only those it
/// submitted; insurers and auditors reach every claim.
fn claim_access(principal: &Principal, claim: &Ownership) -> Result<(), Forbidden> {
    match &principal.role {
        Role::Enrollee { member_id } if *member_id != claim.member_id => Err(Forbidden(
            "an enrollee token can only access its own claims",
        )),
        Role::Provider { .. } if claim.submitted_by != principal.actor() => Err(Forbidden(
            "a provider can only access the claims it submitted",
        )),
        Role::Enrollee { .. } | Role::Provider { .. } | Role::Insurer | Role::Auditor => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role) -> Principal {
        Principal { token_id: 9, role }
    }

    /// Allowed (`Y`) or refused (`.`) for enrollee 1, provider P1, insurer
    /// and auditor, in that order: the README's role table.
    #[test]
    fn the_policy_is_the_role_table() {
        let own_claim = Ownership {
            member_id: 1,
            submitted_by: "provider:P1".into(),
        };
        let other_claim = Ownership {
            member_id: 2,
            submitted_by: "provider:P2".into(),
        };
        let table: Vec<(Action<'_>, &str)> = vec![
            (Action::EnrolOnBehalf, "..Y."),
            (Action::ReadMembers, "Y.YY"),
            (Action::ReadMember { member_id: 1 }, "Y.YY"),
            (Action::ReadMember { member_id: 2 }, "..YY"),
            (Action::SubmitClaims, "YYY."),
            (
                Action::SubmitClaim {
                    member_id: 1,
                    provider_id: "P1",
                },
                "YYY.",
            ),
            (
                Action::SubmitClaim {
                    member_id: 2,
                    provider_id: " P1 ",
                },
                ".YY.",
            ),
            (
                Action::SubmitClaim {
                    member_id: 1,
                    provider_id: "P2",
                },
                "Y.Y.",
            ),
            (Action::ListSubmittedClaims, ".YY."),
            (Action::ReadClaim(&own_claim), "YYYY"),
            (Action::ReadClaim(&other_claim), "..YY"),
            (Action::AppealClaims, "YYY."),
            (Action::AppealClaim(&own_claim), "YYY."),
            (Action::AppealClaim(&other_claim), "..Y."),
            (Action::ReverseClaim, "..Y."),
            (Action::StartPricingRun, "..Y."),
            (Action::ReadPricingRun, "..YY"),
            (Action::CancelPricingRun, "..Y."),
            (Action::ReadAuditLog, "..YY"),
            (Action::ReadExperience, "..YY"),
            (Action::RevokeToken, "..Y."),
            (Action::RequestAuthorizations, "YYY."),
            (Action::RequestAuthorization { member_id: 1 }, "YYY."),
            (Action::RequestAuthorization { member_id: 2 }, ".YY."),
            (Action::ReadAuthorization { member_id: 1 }, "YYYY"),
            (Action::ReadAuthorization { member_id: 2 }, ".YYY"),
            (Action::RecordFollowup, ".YY."),
            (Action::CancelAuthorizations, "Y.Y."),
            (Action::CancelAuthorization { member_id: 1 }, "Y.Y."),
            (Action::CancelAuthorization { member_id: 2 }, "..Y."),
        ];
        let roles = [
            Role::Enrollee { member_id: 1 },
            Role::Provider {
                provider_id: "P1".into(),
            },
            Role::Insurer,
            Role::Auditor,
        ];
        for (action, expected) in table {
            let got: String = roles
                .iter()
                .map(|role| match authorize(&principal(role.clone()), action) {
                    Ok(()) => 'Y',
                    Err(_) => '.',
                })
                .collect();
            assert_eq!(got, expected, "{action:?}");
        }
    }

    #[test]
    fn refusals_say_why() {
        let enrollee = principal(Role::Enrollee { member_id: 1 });
        let provider = principal(Role::Provider {
            provider_id: "P1".into(),
        });
        let other = Ownership {
            member_id: 2,
            submitted_by: "provider:P2".into(),
        };
        let cases = [
            (
                &enrollee,
                Action::ReverseClaim,
                "this token's role may not do this",
            ),
            (
                &enrollee,
                Action::ReadMember { member_id: 2 },
                "an enrollee token can only access its own member",
            ),
            (
                &enrollee,
                Action::ReadClaim(&other),
                "an enrollee token can only access its own claims",
            ),
            (
                &provider,
                Action::AppealClaim(&other),
                "a provider can only access the claims it submitted",
            ),
            (
                &provider,
                Action::SubmitClaim {
                    member_id: 1,
                    provider_id: "P2",
                },
                "a provider token can only submit its own claims",
            ),
        ];
        for (who, action, why) in cases {
            assert_eq!(authorize(who, action), Err(Forbidden(why)), "{action:?}");
        }
    }
}
