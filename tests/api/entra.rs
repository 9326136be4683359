// deploy-gate calling Azure DevOps as an Entra ID service principal: the token
// comes from an HTTPS stand-in for Entra ID's token endpoint (a test CA that
// DEPLOY_GATE_AZURE_CA_FILE names), and the recording fake Azure DevOps shows
// which Authorization each call carried.

use deploy_gate::{azure::auth::AZURE_DEVOPS_SCOPE, secret::Secret};
use serde_json::Value;
use wiremock::MockServer;

#[path = "../support/entra.rs"]
mod token_endpoint;

use token_endpoint::{
    CLIENT_ID, CLIENT_SECRET, InTurn, TENANT, TOKEN_PATH, TokenEndpoint, invalid_client,
    token_answer,
};

use crate::{
    fakes::{settle, wait_for_no_problem, wait_for_problem, wait_for_requests, writes},
    helpers::{TestApp, TestSmtp, spawn_app_with},
    write_back::{approvals_api, start_round, updated_approval},
};

/// An app whose approver is ana, writing decisions back to `azure` as the
/// service principal whose tokens `entra` gives.
async fn app_as_service_principal(azure: &MockServer, entra: &TokenEndpoint) -> TestApp {
    let url = format!("{}/contoso", azure.uri());
    spawn_app_with(TestSmtp::running(), |s| {
        s.approvers = Some("ana@example.com".into());
        s.azure_devops_url = Some(url);
        s.azure_tenant_id = Some(TENANT.into());
        s.azure_client_id = Some(CLIENT_ID.into());
        s.azure_client_secret = Some(Secret::new(CLIENT_SECRET));
        s.azure_authority_host = Some(entra.authority.clone());
        s.azure_ca_file = Some(entra.ca_file.clone());
    })
    .await
}

/// The `Authorization` of every request Azure DevOps received, in order.
async fn authorizations(azure: &MockServer) -> Vec<String> {
    let received = azure.received_requests().await.unwrap();
    received
        .iter()
        .map(|r| r.headers["authorization"].to_str().unwrap().to_owned())
        .collect()
}

/// A service-hook round of ana's, approved by her, written back once.
async fn approve_and_write_back(app: &TestApp, azure: &MockServer) {
    let mail = start_round(app, &azure.uri()).await;
    assert_eq!(
        app.decide(&mail.token(), "approve", None).await.status(),
        200
    );
    wait_for_requests(azure, 1).await;
    settle(app).await;
}

#[tokio::test]
async fn the_service_principals_token_reaches_azure_devops_on_every_look_up_and_the_write_back_asked_for_once()
 {
    let entra = TokenEndpoint::start().await;
    entra.answering(token_answer("entra-token-1", 3600)).await;
    let azure = approvals_api(updated_approval("approved")).await;
    let app = app_as_service_principal(&azure, &entra).await;

    approve_and_write_back(&app, &azure).await;

    let calls = authorizations(&azure).await;
    assert!(
        calls.len() >= 3,
        "connectionData, Approvals - List, the PATCH: {calls:?}"
    );
    assert!(
        calls.iter().all(|a| a == "Bearer entra-token-1"),
        "{calls:?}"
    );
    assert_eq!(writes(&azure).await.len(), 1);

    let asked = entra.requests().await;
    assert_eq!(asked.len(), 1, "one token for every call while it is fresh");
    let request = &asked[0];
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(request.url.path(), TOKEN_PATH);
    assert_eq!(
        request.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect();
    let field = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    assert_eq!(field("grant_type"), Some("client_credentials"));
    assert_eq!(field("client_id"), Some(CLIENT_ID));
    assert_eq!(field("client_secret"), Some(CLIENT_SECRET));
    assert_eq!(field("scope"), Some(AZURE_DEVOPS_SCOPE));
    assert_eq!(
        AZURE_DEVOPS_SCOPE,
        "499b84ac-1321-427f-aa17-267ca6975798/.default"
    );
}

#[tokio::test]
async fn a_token_near_its_expiry_is_replaced_before_the_next_call() {
    let entra = TokenEndpoint::start().await;
    // Four minutes left is near expiry: azure_identity renews within five.
    entra
        .answering(InTurn::new(vec![
            token_answer("short-lived", 240),
            token_answer("renewed", 3600),
        ]))
        .await;
    let azure = approvals_api(updated_approval("approved")).await;
    let app = app_as_service_principal(&azure, &entra).await;

    approve_and_write_back(&app, &azure).await;

    let calls = authorizations(&azure).await;
    assert_eq!(calls[0], "Bearer short-lived", "{calls:?}");
    assert!(calls.len() >= 3, "{calls:?}");
    assert!(
        calls[1..].iter().all(|a| a == "Bearer renewed"),
        "every later call carries the renewed token: {calls:?}"
    );
    assert_eq!(entra.requests().await.len(), 2);
}

/// How the token endpoint fails in [`a_token_endpoint_failing_fails_the_write_back_like_an_azure_outage_until_it_recovers`].
#[derive(Clone, Copy, Debug)]
enum Outage {
    Refusing,
    Unreachable,
}

#[tokio::test]
async fn a_token_endpoint_failing_fails_the_write_back_like_an_azure_outage_until_it_recovers() {
    for outage in [Outage::Refusing, Outage::Unreachable] {
        let entra = TokenEndpoint::start().await;
        // Each token is near expiry, so that each call asks for one.
        entra.answering(token_answer("short-lived", 240)).await;
        let azure = approvals_api(updated_approval("approved")).await;
        let app = app_as_service_principal(&azure, &entra).await;
        let mail = start_round(&app, &azure.uri()).await;
        settle(&app).await;

        match outage {
            Outage::Refusing => entra.answering(invalid_client()).await,
            Outage::Unreachable => entra.set_reachable(false),
        }
        assert_eq!(
            app.decide(&mail.token(), "approve", None).await.status(),
            200
        );
        let problem =
            wait_for_problem(&app, "Devx", "386", "Production", "write_back_failing").await;
        let detail = problem["detail"].as_str().unwrap();
        let expected = match outage {
            Outage::Refusing => {
                "Entra ID refused deploy-gate's credential for Azure DevOps (HTTP 401)"
            }
            Outage::Unreachable => "its token endpoint could not be reached",
        };
        assert!(
            detail.starts_with("writing the decision back to the Azure DevOps approval failed ")
                && detail.contains(expected),
            "{outage:?}: {detail}"
        );
        assert!(!detail.contains(CLIENT_SECRET), "{detail}");
        assert!(
            writes(&azure).await.is_empty(),
            "nothing reached Azure DevOps without a token"
        );

        entra
            .answering(token_answer("after-the-outage", 3600))
            .await;
        entra.set_reachable(true);
        wait_for_no_problem(&app, "Devx", "386", "Production").await;
        settle(&app).await;
        let written = writes(&azure).await;
        assert_eq!(written.len(), 1, "{outage:?}: written back once");
        assert_eq!(
            written[0].headers["authorization"],
            "Bearer after-the-outage"
        );
        let update: Value = serde_json::from_slice(&written[0].body).unwrap();
        assert_eq!(update["status"], "approved");
    }
}
