//! The built binary calling Azure DevOps with an Entra ID identity, as
//! `deploy-gate doctor` checks it: a service principal whose token comes from an
//! HTTPS token endpoint signed by a private CA, and a managed identity whose
//! token comes from the host's identity endpoint.

use std::process::Output;

use serde_json::json;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

use super::deploy_gate;

#[path = "../support/entra.rs"]
mod token_endpoint;

use token_endpoint::{CLIENT_ID, CLIENT_SECRET, TENANT, TokenEndpoint, token_answer};

/// A fake Azure DevOps answering `connectionData` for `contoso` as deploy-gate's identity.
async fn azure_devops() -> MockServer {
    let azure = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/contoso/_apis/connectionData"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "authenticatedUser": {"id": "5f1c2d3e-7a8b-4c9d-8e0f-0a1b2c3d4e5f", "providerDisplayName": "deploy-gate bot"},
        })))
        .mount(&azure)
        .await;
    azure
}

/// Runs `deploy-gate doctor` with `env`, off the runtime that serves the fakes.
async fn doctor(azure: &MockServer, env: Vec<(&'static str, String)>) -> (Output, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut command = deploy_gate(dir.path());
    command
        .arg("doctor")
        .env(
            "DEPLOY_GATE_AZURE_DEVOPS_URL",
            format!("{}/contoso", azure.uri()),
        )
        .envs(env);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    (output, report)
}

/// The `Authorization` of every request Azure DevOps received.
async fn authorizations(azure: &MockServer) -> Vec<String> {
    let received = azure.received_requests().await.unwrap();
    received
        .iter()
        .map(|r| r.headers["authorization"].to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_signs_in_as_the_service_principal_at_an_authority_its_ca_file_vouches_for() {
    let entra = TokenEndpoint::start().await;
    entra.answering(token_answer("binary-token", 3600)).await;
    let azure = azure_devops().await;
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("client-secret");
    std::fs::write(&secret_file, format!("{CLIENT_SECRET}\n")).unwrap();
    let env = |ca: bool| {
        let mut env = vec![
            ("DEPLOY_GATE_AZURE_TENANT_ID", TENANT.to_owned()),
            ("DEPLOY_GATE_AZURE_CLIENT_ID", CLIENT_ID.to_owned()),
            (
                "DEPLOY_GATE_AZURE_CLIENT_SECRET_FILE",
                secret_file.display().to_string(),
            ),
            ("DEPLOY_GATE_AZURE_AUTHORITY_HOST", entra.authority.clone()),
        ];
        if ca {
            env.push((
                "DEPLOY_GATE_AZURE_CA_FILE",
                entra.ca_file.display().to_string(),
            ));
        }
        env
    };

    let (output, report) = doctor(&azure, env(true)).await;
    assert!(output.status.success(), "{report}");
    assert!(
        report.contains(
            "ok    azure devops  deploy-gate's Entra ID identity is deploy-gate bot in Azure DevOps"
        ),
        "{report}"
    );
    assert_eq!(authorizations(&azure).await, ["Bearer binary-token"]);
    let asked = entra.requests().await;
    assert_eq!(asked.len(), 1);
    let body = String::from_utf8_lossy(&asked[0].body);
    assert!(
        body.contains(&format!("client_secret={CLIENT_SECRET}&")),
        "the secret as its file holds it, without the newline: {body}"
    );

    // Without the CA file the authority's certificate is not trusted: no token, no call.
    let (output, report) = doctor(&azure, env(false)).await;
    assert!(!output.status.success(), "{report}");
    assert!(
        report.contains("FAIL  azure devops")
            && report.contains("its token endpoint could not be reached"),
        "{report}"
    );
    assert!(!report.contains(CLIENT_SECRET), "{report}");
    assert_eq!(
        authorizations(&azure).await.len(),
        1,
        "nothing sent without a token"
    );
    assert_eq!(entra.requests().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_as_a_managed_identity_asks_the_hosts_identity_endpoint_for_azure_devops() {
    let identity = MockServer::start().await;
    let expires_on = chrono::Utc::now().timestamp() + 3600;
    Mock::given(method("GET"))
        .and(path("/msi/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "managed-token",
            "expires_on": expires_on.to_string(),
            "resource": "499b84ac-1321-427f-aa17-267ca6975798",
            "token_type": "Bearer",
            "client_id": "user-assigned-client-id",
        })))
        .mount(&identity)
        .await;
    let azure = azure_devops().await;

    let (output, report) = doctor(
        &azure,
        vec![
            ("DEPLOY_GATE_AZURE_MANAGED_IDENTITY", "true".to_owned()),
            (
                "DEPLOY_GATE_AZURE_CLIENT_ID",
                "user-assigned-client-id".to_owned(),
            ),
            ("IDENTITY_ENDPOINT", format!("{}/msi/token", identity.uri())),
            ("IDENTITY_HEADER", "host-secret".to_owned()),
        ],
    )
    .await;
    assert!(output.status.success(), "{report}");
    assert!(
        report.contains("deploy-gate's Entra ID identity is deploy-gate bot"),
        "{report}"
    );
    assert_eq!(authorizations(&azure).await, ["Bearer managed-token"]);

    let asked = identity.received_requests().await.unwrap();
    assert_eq!(asked.len(), 1);
    let query: Vec<(String, String)> = asked[0].url.query_pairs().into_owned().collect();
    let param = |name: &str| {
        query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    assert_eq!(
        param("resource"),
        Some("499b84ac-1321-427f-aa17-267ca6975798")
    );
    assert_eq!(param("client_id"), Some("user-assigned-client-id"));
    assert_eq!(param("api-version"), Some("2019-08-01"));
    assert_eq!(asked[0].headers["x-identity-header"], "host-secret");
}
