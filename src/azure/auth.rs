//! Who deploy-gate is in Azure DevOps: the credential its own calls carry
//! (write-back, approvals, `connectionData`; never the job callbacks, which carry
//! the job's token). Chosen in one place from the settings, so that it can be
//! replaced whole.

use std::sync::Arc;

use azure_core::{
    cloud::{CloudConfiguration, CustomConfiguration},
    credentials::TokenCredential,
};
use azure_identity::{
    ClientSecretCredential, ClientSecretCredentialOptions, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId,
};

use super::AzureClient;
use crate::secret::Secret;
use crate::settings::{AzureCredential, AzureDevOps};

/// The Entra ID scope of Azure DevOps (its resource id), asked for in every token.
pub const AZURE_DEVOPS_SCOPE: &str = "499b84ac-1321-427f-aa17-267ca6975798/.default";

/// deploy-gate's credential for Azure DevOps; clones share one token cache.
#[derive(Clone)]
pub enum AzureAuth {
    /// A personal access token, sent as `Basic base64(":" + PAT)`.
    Pat(Secret),
    /// An Entra ID credential (service principal or managed identity). It keeps
    /// its token and asks for a new one when the token has 5 minutes or less to
    /// live (azure_identity's cache).
    Entra(Arc<dyn TokenCredential>),
}

impl AzureAuth {
    /// The credential `settings` configure; an Entra ID one asks for tokens over
    /// `client`'s connections (timeout, trusted CAs, retries).
    pub fn new(settings: &AzureCredential, client: &AzureClient) -> anyhow::Result<Self> {
        let credential: Arc<dyn TokenCredential> = match settings {
            AzureCredential::Pat(pat) => return Ok(Self::Pat(pat.clone())),
            AzureCredential::ServicePrincipal {
                tenant_id,
                client_id,
                secret,
                authority_host,
            } => {
                let mut cloud = CustomConfiguration::default();
                cloud.authority_host = authority_host.as_str().to_owned();
                let mut client_options = client.options();
                client_options.cloud = Some(Arc::new(CloudConfiguration::from(cloud)));
                ClientSecretCredential::new(
                    tenant_id,
                    client_id.clone(),
                    secret.expose().to_owned().into(),
                    Some(ClientSecretCredentialOptions { client_options }),
                )?
            }
            AzureCredential::ManagedIdentity { client_id } => {
                ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                    user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
                    client_options: client.options(),
                }))?
            }
        };
        Ok(Self::Entra(credential))
    }

    /// The `Authorization` header value of a call to Azure DevOps; fails with
    /// [`NoToken`] when Entra ID gives no token (the cause goes to the log).
    pub async fn authorization(&self) -> anyhow::Result<String> {
        use base64::Engine;
        match self {
            Self::Pat(pat) => Ok(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!(":{}", pat.expose()))
            )),
            Self::Entra(credential) => {
                match credential.get_token(&[AZURE_DEVOPS_SCOPE], None).await {
                    Ok(token) => Ok(format!("Bearer {}", token.token.secret())),
                    Err(error) => {
                        tracing::warn!(error = %error, "Entra ID gave no token for Azure DevOps");
                        Err(NoToken {
                            status: http_status(&error),
                        }
                        .into())
                    }
                }
            }
        }
    }
}

/// Entra ID (or the managed identity endpoint) gave no token: it refused the
/// credential, failed or could not be reached. The cause is in the log.
#[derive(Debug, thiserror::Error)]
#[error("{}", describe(*status))]
pub struct NoToken {
    /// The token endpoint's HTTP status, when it answered.
    pub status: Option<u16>,
}

fn describe(status: Option<u16>) -> String {
    match status {
        Some(status @ (400 | 401 | 403)) => format!(
            "Entra ID refused deploy-gate's credential for Azure DevOps (HTTP {status}): check \
             DEPLOY_GATE_AZURE_TENANT_ID, _CLIENT_ID and _CLIENT_SECRET (expired?), or the \
             managed identity"
        ),
        Some(status) => format!("Entra ID gave no token for Azure DevOps (HTTP {status})"),
        None => "Entra ID gave no token for Azure DevOps: its token endpoint could not be reached \
                 (network, proxy, or a certificate not trusted: see DEPLOY_GATE_AZURE_CA_FILE)"
            .to_owned(),
    }
}

/// The HTTP status of the token endpoint's answer, found among the error's causes.
fn http_status(error: &azure_core::Error) -> Option<u16> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(azure_core::error::ErrorKind::HttpResponse { status, .. }) = current
            .downcast_ref::<azure_core::Error>()
            .map(azure_core::Error::kind)
        {
            return Some(u16::from(*status));
        }
        cause = current.source();
    }
    None
}

/// An Azure DevOps organization deploy-gate acts in: where, with which
/// `api-version`, and as whom. Clones share the credential.
#[derive(Clone)]
pub struct Organization {
    /// URLs and `api-version`, as configured.
    pub settings: AzureDevOps,
    /// deploy-gate's credential there.
    pub auth: AzureAuth,
}

impl Organization {
    /// The organization `settings` configure, its credential asking over `client`.
    pub fn new(settings: &AzureDevOps, client: &AzureClient) -> anyhow::Result<Self> {
        Ok(Self {
            auth: AzureAuth::new(&settings.credential, client)?,
            settings: settings.clone(),
        })
    }
}
