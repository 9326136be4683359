//! Posting JSON to a channel's incoming-webhook URL.

use anyhow::{Context, bail};

use crate::secret::Secret;

/// A webhook URL (a secret: whoever has it can post) and the client to post with.
pub(super) struct Target {
    client: reqwest::Client,
    url: Secret,
}

impl Target {
    pub(super) fn new(client: reqwest::Client, url: Secret) -> Self {
        Self { client, url }
    }

    /// Posts `body`; fails unless the answer is 2xx. Errors never show the URL.
    pub(super) async fn post(&self, body: &serde_json::Value) -> anyhow::Result<()> {
        let response = self
            .client
            .post(self.url.expose())
            .json(body)
            .send()
            .await
            .map_err(reqwest::Error::without_url)
            .with_context(|| format!("webhook {} unreachable", self.url.fingerprint()))?;
        let status = response.status();
        if !status.is_success() {
            bail!("webhook {} answered HTTP {status}", self.url.fingerprint());
        }
        Ok(())
    }
}
