//! A value that must never be printed: tokens, keys, passwords, webhook URLs.

use std::fmt;

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// A value that must never be printed: `Debug` shows `[redacted]`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// A new random key for `DEPLOY_GATE_API_KEY` or `DEPLOY_GATE_TOKEN_SECRET`: 32 bytes
    /// from rand's thread generator (a CSPRNG seeded by the operating system) in URL-safe
    /// base64 without padding, 43 characters.
    pub fn generate() -> Self {
        use base64::Engine as _;
        use rand::RngCore as _;
        let mut bytes = [0_u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The secret itself; call only where it is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A short, non-reversible fingerprint (`sha256:` and 8 hex digits) to name the
    /// secret in logs without showing it.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(text))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_names_a_secret_without_showing_it() {
        let secret = Secret::new("hunter2-hunter2");
        let fingerprint = secret.fingerprint();
        assert!(fingerprint.starts_with("sha256:") && fingerprint.len() == 15);
        assert_eq!(fingerprint, Secret::new("hunter2-hunter2").fingerprint());
        assert_ne!(fingerprint, Secret::new("hunter3-hunter3").fingerprint());
    }

    #[test]
    fn a_generated_key_is_43_url_safe_characters_and_new_each_time() {
        let (one, two) = (Secret::generate(), Secret::generate());
        assert_ne!(one, two);
        for key in [one.expose(), two.expose()] {
            assert_eq!(key.len(), 43, "{key}");
            assert!(
                key.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{key}"
            );
        }
    }

    #[test]
    fn debug_output_shows_no_secret() {
        assert_eq!(
            format!("{:?}", Secret::new("hunter2-hunter2")),
            "[redacted]"
        );
    }
}
