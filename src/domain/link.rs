//! The link back to a release or run in Azure DevOps (`ReleaseUrl`), shown to approvers.

use super::release::FieldError;

/// Longest accepted `ReleaseUrl`, in characters.
pub const MAX_URL_CHARS: usize = 2048;

/// An absolute `http` or `https` address without credentials, in its normalised (ASCII)
/// form: safe to show as a link, and nothing a name could hide behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseUrl(String);

impl ReleaseUrl {
    /// Validates `text` as sent (length, control characters), then as a web address;
    /// empty means none. `field` names it in the error.
    pub fn parse(field: &'static str, text: &str) -> Result<Option<Self>, FieldError> {
        let refuse = |reason: &str| Err(FieldError::new(field, reason));
        if text.chars().any(char::is_control) {
            return refuse("must not contain control characters");
        }
        if text.chars().count() > MAX_URL_CHARS {
            return refuse(&format!("must be at most {MAX_URL_CHARS} characters"));
        }
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let Ok(url) = url::Url::parse(text) else {
            return refuse("must be an absolute http or https address");
        };
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return refuse("must be an absolute http or https address");
        }
        if !url.username().is_empty() || url.password().is_some() {
            // `https://dev.azure.com@evil.example/` reads as Azure but goes elsewhere.
            return refuse("must not contain a user name or password");
        }
        Ok(Some(Self(url.into())))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<String>, String> {
        ReleaseUrl::parse("ReleaseUrl", text)
            .map(|url| url.map(|u| u.as_str().to_owned()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn web_addresses_are_kept_in_their_ascii_form_and_empty_means_none() {
        let azure = "https://dev.azure.com/contoso/Devx/_release?releaseId=1&_a=release-summary";
        assert_eq!(parse(azure).unwrap().as_deref(), Some(azure));
        assert_eq!(
            parse(" http://tfs.example:8080/a b\u{202e}c ")
                .unwrap()
                .as_deref(),
            Some("http://tfs.example:8080/a%20b%E2%80%AEc")
        );
        assert_eq!(
            parse("https://bücher.example/").unwrap().as_deref(),
            Some("https://xn--bcher-kva.example/")
        );
        assert_eq!(parse("  ").unwrap(), None);
    }

    #[test]
    fn anything_but_a_plain_web_address_is_refused_by_field() {
        for bad in [
            "javascript:alert(1)",
            "mailto:a@example.com",
            "file:///etc/passwd",
            "/relative",
            "https://",
            "https://user@dev.azure.com/",
            "https://dev.azure.com/\u{7}",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.starts_with("ReleaseUrl: "), "{bad:?}: {err}");
        }
        let at_limit = format!("https://x.example/{}", "a".repeat(MAX_URL_CHARS - 18));
        assert!(parse(&at_limit).is_ok());
        assert!(parse(&format!("{at_limit}a")).is_err());
    }
}
