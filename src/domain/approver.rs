//! Approver email addresses: parsing lists and validating each address.

use std::fmt;

/// Longest accepted email address (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// A validated, lower-cased approver address.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApproverEmail(String);

/// Why an approver address was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{address}` is not a valid email address")]
pub struct InvalidEmail {
    /// The refused text, shortened to a safe length.
    pub address: String,
}

impl ApproverEmail {
    /// Validates an address: one `@`, a dotted domain, no quoted local part, no
    /// spaces, control or header-breaking characters, at most 254 bytes.
    pub fn parse(text: &str) -> Result<Self, InvalidEmail> {
        let trimmed = text.trim();
        let invalid = || InvalidEmail {
            address: trimmed.chars().take(80).collect(),
        };
        // A quoted local part (`"a b"@x.com`) is valid mail syntax, but it may hold
        // spaces, `@`, `,`, `;` or `<` that lists, headers and logs take apart.
        if trimmed.is_empty() || trimmed.len() > MAX_EMAIL_LEN || trimmed.contains('"') {
            return Err(invalid());
        }
        let address: lettre::Address = trimmed.parse().map_err(|_| invalid())?;
        if !address.domain().contains('.') && address.domain() != "localhost" {
            return Err(invalid());
        }
        Ok(Self(trimmed.to_lowercase()))
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A log-safe form: the first character of the local part and the domain.
    pub fn masked(&self) -> String {
        mask_email(&self.0)
    }
}

impl fmt::Display for ApproverEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `ana@example.com` → `a***@example.com`, for logs.
pub fn mask_email(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// Splits `a@x.com; b@y.com,c@z.com` into validated, de-duplicated addresses
/// in their first-seen order. Fails on the first invalid address.
pub fn parse_approver_list(text: &str) -> Result<Vec<ApproverEmail>, InvalidEmail> {
    let parsed = text
        .split([',', ';'])
        .filter(|part| !part.trim().is_empty())
        .map(ApproverEmail::parse)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(dedup(parsed))
}

/// Removes repeated addresses, keeping the first occurrence.
pub fn dedup(addresses: Vec<ApproverEmail>) -> Vec<ApproverEmail> {
    let mut seen = std::collections::HashSet::new();
    addresses
        .into_iter()
        .filter(|a| seen.insert(a.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_accepts_commas_semicolons_and_spaces_and_drops_repeats() {
        let list =
            parse_approver_list(" Ana@Example.com; bo@example.org,ana@example.com ,").unwrap();
        let texts: Vec<_> = list.iter().map(ApproverEmail::as_str).collect();
        assert_eq!(texts, ["ana@example.com", "bo@example.org"]);
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for bad in [
            "",
            "no-at",
            "a@b",
            "a b@c.com",
            "a@c.com\r\nBcc: x@y.z",
            "<a@b.com>",
        ] {
            assert!(ApproverEmail::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn a_quoted_local_part_is_refused_whatever_it_holds() {
        for quoted in [
            "\"a b\"@example.com",
            "\"a,b\"@example.com",
            "\"a;b\"@example.com",
            "\"a<b>\"@example.com",
            "\"a@b\"@example.com",
            "\"a\tb\"@example.com",
            "\"ab\"@example.com",
        ] {
            assert!(
                ApproverEmail::parse(quoted).is_err(),
                "{quoted:?} was accepted"
            );
        }
    }

    #[test]
    fn masking_keeps_only_the_first_letter_and_the_domain() {
        assert_eq!(mask_email("ana@example.com"), "a***@example.com");
        assert_eq!(mask_email("not an address"), "***");
        let address = ApproverEmail::parse("Ana@Example.com").unwrap();
        assert_eq!(address.masked(), "a***@example.com");
    }

    #[test]
    fn an_address_displays_as_its_canonical_text() {
        let address = ApproverEmail::parse(" Ana@Example.com ").unwrap();
        assert_eq!(address.to_string(), "ana@example.com");
    }
}
