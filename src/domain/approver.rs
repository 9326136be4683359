//! Approver email addresses: parsing lists and validating each address.

use std::fmt;

/// Longest accepted email address (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// A validated approver address in its canonical form: the mailbox mail reaches,
/// so that two spellings of one mailbox are one approver (see [`ApproverEmail::parse`]).
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
    /// Validates an address and reduces it to the mailbox it reaches: one `@`, a
    /// dotted domain, no spaces, control or header-breaking characters, at most 254
    /// bytes. `"ana"@x.com`, `Ana@X.com` and `ana+deploy@x.com` are all `ana@x.com`:
    /// the address is lower-cased, a quoted local part unquoted (one that needs its
    /// quotes, holding spaces, `@`, `,` or the like, is refused), a `+tag`
    /// sub-address dropped and the domain written in ASCII (IDNA). Comments
    /// (`ana(x)@x.com`) and IP-literal or numeric domains (`a@[1.2.3.4]`) are refused.
    pub fn parse(text: &str) -> Result<Self, InvalidEmail> {
        let trimmed = text.trim();
        let invalid = || InvalidEmail {
            address: trimmed.chars().take(80).collect(),
        };
        if trimmed.is_empty() || trimmed.len() > MAX_EMAIL_LEN || trimmed.contains(['(', ')']) {
            return Err(invalid());
        }
        let unquoted = unquote(trimmed).ok_or_else(invalid)?;
        let address: lettre::Address = unquoted.parse().map_err(|_| invalid())?;
        let domain = address.domain();
        if domain.starts_with('[') || (!domain.contains('.') && domain != "localhost") {
            return Err(invalid());
        }
        let Ok(url::Host::Domain(domain)) = url::Host::parse(domain) else {
            return Err(invalid());
        };
        let user = address.user().to_lowercase();
        let mailbox = user.split('+').next().unwrap_or_default();
        let canonical = format!("{mailbox}@{domain}");
        if mailbox.is_empty() || canonical.len() > MAX_EMAIL_LEN {
            return Err(invalid());
        }
        Ok(Self(canonical))
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

/// `"ana"@x.com` → `ana@x.com`; an unquoted address as it is. `None` for a stray
/// quote or a quoted local part that needs its quotes (anything but a dot-atom).
fn unquote(text: &str) -> Option<std::borrow::Cow<'_, str>> {
    let Some(rest) = text.strip_prefix('"') else {
        return (!text.contains('"')).then_some(std::borrow::Cow::Borrowed(text));
    };
    let (local, domain) = rest.split_once('"')?;
    let domain = domain.strip_prefix('@')?;
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
    let dot_atom = local
        .split('.')
        .all(|atom| !atom.is_empty() && atom.chars().all(atext));
    (dot_atom && !domain.contains('"')).then(|| format!("{local}@{domain}").into())
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
    fn a_quoted_local_part_that_needs_its_quotes_is_refused() {
        for quoted in [
            "\"a b\"@example.com",
            "\"a,b\"@example.com",
            "\"a;b\"@example.com",
            "\"a<b>\"@example.com",
            "\"a@b\"@example.com",
            "\"a\tb\"@example.com",
            "\"a\\\"b\"@example.com",
            "\"a..b\"@example.com",
            "\"\"@example.com",
            "\"ab@example.com",
            "a\"b@example.com",
        ] {
            assert!(
                ApproverEmail::parse(quoted).is_err(),
                "{quoted:?} was accepted"
            );
        }
    }

    #[test]
    fn spellings_of_one_mailbox_are_one_address() {
        for spelling in [
            "ana@example.com",
            " Ana@EXAMPLE.com",
            "\"ana\"@example.com",
            "\"Ana+x\"@example.com",
            "ana+deploy@example.com",
            "ana+@example.com",
            "ana@Example.COM",
        ] {
            assert_eq!(
                ApproverEmail::parse(spelling).map(|a| a.to_string()),
                Ok("ana@example.com".to_owned()),
                "{spelling:?}"
            );
        }
        let idn = ApproverEmail::parse("ana@Bücher.example").unwrap();
        assert_eq!(idn.as_str(), "ana@xn--bcher-kva.example");
        assert_eq!(ApproverEmail::parse("ana@xn--bcher-kva.example"), Ok(idn));
    }

    #[test]
    fn comments_ip_literals_and_empty_mailboxes_are_refused() {
        for bad in [
            "ana(comment)@example.com",
            "ana@example.com(comment)",
            "(c)ana@example.com",
            "a@[1.2.3.4]",
            "a@[IPv6:::1]",
            "a@1.2.3.4",
            "+tag@example.com",
        ] {
            assert!(ApproverEmail::parse(bad).is_err(), "{bad:?} was accepted");
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
