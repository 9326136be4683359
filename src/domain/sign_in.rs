//! Approvers who sign in: whether the person an identity provider vouched for is
//! the approval's approver, judged by the address mail reaches (as approvers are).

use serde::Deserialize;

use super::approver::ApproverEmail;

/// The identity recorded with a decision made after signing in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedIdentity {
    /// The provider (`iss` of the ID token).
    pub issuer: String,
    /// The person at that provider (`sub`).
    pub subject: String,
    /// The address that matched the approver, in canonical form.
    pub email: String,
}

/// The claims of a verified ID token that say who someone is.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct IdentityClaims {
    /// Issuer.
    pub iss: String,
    /// Subject.
    pub sub: String,
    /// Email address, if the scope `email` gave one.
    #[serde(default)]
    pub email: Option<String>,
    /// Whether the provider checked that address; some send `"true"` as a string.
    #[serde(default)]
    pub email_verified: Option<serde_json::Value>,
    /// Entra ID's sign-in name (usually the user principal name).
    #[serde(default)]
    pub preferred_username: Option<String>,
    /// Entra ID's tenant of the account.
    #[serde(default)]
    pub tid: Option<String>,
}

/// Why a signed-in identity does not count for an approval.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    /// The provider vouched for no address: no verified `email`, and no configured tenant.
    #[error("your account's address is not verified by the identity provider")]
    Unverified,
    /// Someone else signed in.
    #[error("you signed in as {signed_in}, but this approval is for another person")]
    OtherPerson {
        /// The address the provider vouched for.
        signed_in: String,
    },
}

impl IdentityClaims {
    fn verified(&self) -> bool {
        match &self.email_verified {
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::String(s)) => s.eq_ignore_ascii_case("true"),
            _ => false,
        }
    }

    /// The addresses the provider vouches for: a verified `email`; for an account of a
    /// tenant in `tenants` (Entra ID sends no `email_verified` for work accounts), its
    /// `email` and `preferred_username`.
    fn vouched_addresses(&self, tenants: &[String]) -> Vec<&str> {
        let mut addresses = Vec::new();
        if self.verified() {
            addresses.extend(self.email.as_deref());
        }
        let trusted_tenant = self
            .tid
            .as_deref()
            .is_some_and(|tid| tenants.iter().any(|t| t.eq_ignore_ascii_case(tid)));
        if trusted_tenant {
            addresses.extend(self.email.as_deref());
            addresses.extend(self.preferred_username.as_deref());
        }
        addresses
    }
}

/// The identity to record if the signed-in person is `approver` (compared in the
/// canonical form of [`ApproverEmail::parse`]), else why not.
pub fn identify(
    claims: &IdentityClaims,
    approver: &str,
    tenants: &[String],
) -> Result<SignedIdentity, Mismatch> {
    let wanted = ApproverEmail::parse(approver).ok();
    let vouched: Vec<ApproverEmail> = claims
        .vouched_addresses(tenants)
        .into_iter()
        .filter_map(|a| ApproverEmail::parse(a).ok())
        .collect();
    if let Some(found) = vouched.iter().find(|a| Some(*a) == wanted.as_ref()) {
        return Ok(SignedIdentity {
            issuer: claims.iss.clone(),
            subject: claims.sub.clone(),
            email: found.as_str().to_owned(),
        });
    }
    match vouched.first() {
        Some(other) => Err(Mismatch::OtherPerson {
            signed_in: other.as_str().to_owned(),
        }),
        None => Err(Mismatch::Unverified),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(value: serde_json::Value) -> IdentityClaims {
        let mut object = json!({"iss": "https://idp.example", "sub": "u1"});
        if let (Some(o), Some(extra)) = (object.as_object_mut(), value.as_object()) {
            o.extend(extra.clone());
        }
        serde_json::from_value(object).unwrap()
    }

    #[test]
    fn a_verified_email_in_another_spelling_is_the_approver() {
        let c = claims(json!({"email": "Ana+ops@Example.com", "email_verified": true}));
        let id = identify(&c, "ana@example.com", &[]).unwrap();
        assert_eq!(id.email, "ana@example.com");
        assert_eq!(
            (id.issuer.as_str(), id.subject.as_str()),
            ("https://idp.example", "u1")
        );
    }

    #[test]
    fn an_unverified_email_counts_for_nothing() {
        for verified in [json!(false), json!("false"), serde_json::Value::Null] {
            let c = claims(json!({"email": "ana@example.com", "email_verified": verified}));
            assert_eq!(
                identify(&c, "ana@example.com", &[]),
                Err(Mismatch::Unverified)
            );
        }
    }

    #[test]
    fn a_work_account_of_a_listed_tenant_is_trusted_by_its_username() {
        let c = claims(json!({"preferred_username": "ana@example.com", "tid": "T1"}));
        let tenants = ["t1".to_owned()];
        assert_eq!(
            identify(&c, "ana@example.com", &tenants).unwrap().email,
            "ana@example.com"
        );
        assert_eq!(
            identify(&c, "ana@example.com", &["t2".to_owned()]),
            Err(Mismatch::Unverified)
        );
    }

    #[test]
    fn someone_else_is_named_in_the_refusal() {
        let c = claims(json!({"email": "bob@example.com", "email_verified": "true"}));
        assert_eq!(
            identify(&c, "ana@example.com", &[]),
            Err(Mismatch::OtherPerson {
                signed_in: "bob@example.com".into()
            })
        );
    }
}
