//! Reloading what deploy-gate sends with, against the built binary: the SMTP
//! server (for the next email, and for one queued before the reload), the Azure
//! DevOps PAT (as the recording fake sees it), a policy's chat webhook URL and
//! the service-hook secret; an invalid new SMTP URL keeps the old server, and a
//! switch from the mail folder to SMTP waits for a restart.

use base64::Engine as _;
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, Request, ResponseTemplate,
    matchers::{method, path, path_regex},
};

use super::{
    Served,
    reload::{FAILED, RELOADED, send_sighup, wait_for_reload},
    smtp::TestSmtp,
    token_of,
};

/// `POST /release` of release `id` of project Devx; panics unless it is accepted.
async fn create_release(served: &Served, id: u32) {
    let created = reqwest::Client::new()
        .post(format!("{}/release", served.address))
        .json(&json!({"ReleaseName": format!("Shop {id}"), "ReleaseId": id, "TeamProject": "Devx"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 202);
}

/// Replaces the content of `file` at once (a new file renamed over it), so that
/// the service's check of secret files never reads it half-written.
fn replace(file: &std::path::Path, content: impl AsRef<[u8]>) {
    let new = file.with_extension("new");
    std::fs::write(&new, content).unwrap();
    std::fs::rename(&new, file).unwrap();
}

/// `smtp://127.0.0.1:<port>` of `smtp`.
fn smtp_url(smtp: &TestSmtp) -> String {
    format!("smtp://127.0.0.1:{}", smtp.port)
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn after_sighup_with_a_changed_smtp_url_file_the_next_email_goes_to_the_new_server() {
    let (old, new) = (TestSmtp::running(), TestSmtp::running());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("smtp-url");
    std::fs::write(&file, format!("{}\n", smtp_url(&old))).unwrap();
    let served = Served::start_with(
        dir.path(),
        &[("DEPLOY_GATE_SMTP_URL_FILE", file.to_str().unwrap())],
    );
    create_release(&served, 1).await;
    assert_eq!(
        old.wait_for(2).await.len(),
        2,
        "ana and bo, at the old server"
    );

    replace(&file, format!("{}\n", smtp_url(&new)));
    send_sighup(&served);
    let reloaded = wait_for_reload(&served);
    assert!(
        reloaded["changed"].as_str().unwrap().contains("smtp_url"),
        "{reloaded}"
    );
    create_release(&served, 2).await;
    let mails = new.wait_for(2).await;
    assert!(
        mails.iter().all(|m| m.subject().contains("Shop 2")),
        "{:?}",
        mails.iter().map(|m| m.subject()).collect::<Vec<_>>()
    );
    assert_eq!(old.received().len(), 2, "nothing more at the old server");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_email_queued_before_a_reload_and_sent_after_it_goes_to_the_new_server() {
    // The old server is down: the email job fails and waits for its retry.
    let (old, new) = (TestSmtp::reserve(), TestSmtp::running());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("smtp-url");
    std::fs::write(&file, smtp_url(&old)).unwrap();
    let served = Served::start_with(
        dir.path(),
        &[
            ("DEPLOY_GATE_SMTP_URL_FILE", file.to_str().unwrap()),
            ("DEPLOY_GATE_APPROVERS", "ana@example.com"),
            ("DEPLOY_GATE_RETRY_BASE", "200ms"),
            ("DEPLOY_GATE_RETRY_CAP", "400ms"),
        ],
    );
    create_release(&served, 1).await;
    served.wait_for_event("a failed email job", |event| {
        event["message"]
            .as_str()
            .is_some_and(|m| m.contains("job failed"))
    });

    replace(&file, smtp_url(&new));
    wait_for_reload(&served);
    let mails = new.wait_for(1).await;
    assert_eq!(mails[0].to, ["ana@example.com"]);
    assert!(old.received().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_new_smtp_url_keeps_the_old_server_and_the_log_says_why_without_the_password() {
    let old = TestSmtp::running();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("smtp-url");
    std::fs::write(&file, smtp_url(&old)).unwrap();
    let served = Served::start_with(
        dir.path(),
        &[("DEPLOY_GATE_SMTP_URL_FILE", file.to_str().unwrap())],
    );
    // A password in clear to a host that is not loopback: refused, as at start.
    replace(&file, "smtp://mailer:pw-9f3k2x@mail.example.com:587");
    let failed = served.wait_for_event("a failed reload", |event| {
        event["message"] == FAILED || event["message"] == RELOADED
    });
    assert_eq!(failed["message"], FAILED, "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("DEPLOY_GATE_SMTP_URL") && error.contains("tls=required"),
        "{failed}"
    );

    create_release(&served, 1).await;
    assert_eq!(old.wait_for(2).await.len(), 2, "still the old server");
    let logs = served.output.lock().unwrap().clone();
    assert!(!logs.contains("pw-9f3k2x"), "{logs}");
}

const PAT_A: &str = "pat-before-the-reload";
const PAT_B: &str = "pat-after-the-reload";
/// deploy-gate's identity in the fake Azure DevOps.
const IDENTITY: &str = "5f1c2d3e-7a8b-4c9d-8e0f-0a1b2c3d4e5f";

/// `Basic base64(":" + pat)`, as Azure DevOps takes a PAT.
fn basic(pat: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!(":{pat}"));
    format!("Basic {encoded}")
}

/// A recording Azure DevOps under `/contoso` where approvals 17 and 18 are
/// deploy-gate's, and which accepts their write-back.
async fn fake_azure_devops() -> MockServer {
    let azure = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/contoso/_apis/connectionData"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "authenticatedUser": {"id": IDENTITY, "providerDisplayName": "deploy-gate bot"},
            "authorizedUser": {"id": IDENTITY, "providerDisplayName": "deploy-gate bot"}
        })))
        .mount(&azure)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/contoso/Devx/_apis/release/approvals$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "count": 2,
            "value": [{"id": 17, "status": "pending"}, {"id": 18, "status": "pending"}]
        })))
        .mount(&azure)
        .await;
    Mock::given(method("PATCH"))
        .and(path_regex(r"^/contoso/Devx/_apis/release/approvals/1[78]$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "rejected"})))
        .mount(&azure)
        .await;
    azure
}

/// A `deployment-approval-pending` event for `approval` of `release`, as documented.
fn approval_pending_event(base: &str, approval: u32, release: u32) -> Value {
    json!({
        "id": format!("9e0c8a5b-2d8f-4f3b-8a1e-6c2d7e9f0a{approval}"),
        "eventType": "ms.vss-release.deployment-approval-pending-event",
        "publisherId": "rm",
        "resource": {
            "approval": {
                "id": approval, "approvalType": "preDeploy", "status": "pending",
                "approver": {"id": "4247a5b1-8b8a-4d6b-9f3d-2b6b1c0f3e21", "displayName": "Chuck Reinhart"},
                "attempt": 1,
                "release": {"id": release, "name": format!("Release-{release}")},
                "releaseDefinition": {"id": 1, "name": "Fabrikam.CD"},
                "releaseEnvironment": {"id": 5, "name": "Production"}
            },
            "release": {"id": release, "name": format!("Release-{release}"), "status": "active"},
            "project": {"id": "b0f1a2c3-1111-2222-3333-444455556666", "name": "Devx"}
        },
        "resourceVersion": "3.0-preview.1",
        "resourceContainers": {"collection": {"id": "c1", "baseUrl": format!("{base}/contoso/")}},
        "createdDate": "2026-11-22T10:00:01Z"
    })
}

/// Posts the approval-pending event and returns the approval link the log shows.
async fn start_round(served: &Served, azure: &MockServer, approval: u32, release: u32) -> String {
    let answer = reqwest::Client::new()
        .post(format!("{}/hooks/azure-devops", served.address))
        .json(&approval_pending_event(&azure.uri(), approval, release))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202, "{}", answer.text().await.unwrap());
    let link = served.wait_for_log("approval link (no SMTP server configured)");
    link["link"].as_str().unwrap().to_owned()
}

/// The `Authorization` of every request the fake received for which `wanted` holds.
async fn credentials(azure: &MockServer, wanted: impl Fn(&Request) -> bool) -> Vec<String> {
    let received = azure.received_requests().await.unwrap();
    received
        .iter()
        .filter(|r| wanted(r))
        .map(|r| r.headers["authorization"].to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_azure_pat_file_is_the_credential_of_the_next_write_back_and_look_up() {
    let azure = fake_azure_devops().await;
    let dir = tempfile::tempdir().unwrap();
    let pat = dir.path().join("azure-pat");
    std::fs::write(&pat, PAT_A).unwrap();
    let url = format!("{}/contoso", azure.uri());
    let served = Served::start_with(
        dir.path(),
        &[
            ("DEPLOY_GATE_AZURE_DEVOPS_URL", url.as_str()),
            ("DEPLOY_GATE_AZURE_DEVOPS_PAT_FILE", pat.to_str().unwrap()),
            ("DEPLOY_GATE_APPROVERS", "ana@example.com"),
        ],
    );
    let link = start_round(&served, &azure, 17, 386).await;
    let looked_up = credentials(&azure, |r| r.method.as_str() == "GET").await;
    assert_eq!(looked_up, [basic(PAT_A), basic(PAT_A)], "who, then whose");

    replace(&pat, PAT_B);
    wait_for_reload(&served);
    let decided = reqwest::Client::new()
        .post(format!("{}/approval", served.address))
        .json(&json!({"token": token_of(&link), "decision": "reject"}))
        .send()
        .await
        .unwrap();
    assert_eq!(decided.status(), 200);
    served.wait_for_log("decision written back to Azure DevOps");
    let written = credentials(&azure, |r| r.method.as_str() == "PATCH").await;
    assert_eq!(written, [basic(PAT_B)]);

    // The next look-up asks with the new PAT, who deploy-gate is included.
    start_round(&served, &azure, 18, 387).await;
    let looked_up = credentials(&azure, |r| r.method.as_str() == "GET").await;
    assert_eq!(
        looked_up[2..],
        [basic(PAT_B), basic(PAT_B)],
        "{looked_up:?}"
    );
    let logs = served.output.lock().unwrap().clone();
    assert!(!logs.contains(PAT_A) && !logs.contains(PAT_B), "{logs}");
}

/// A TOML file whose policy for Devx also posts each request to `webhook`.
fn policy_posting_to(webhook: &str) -> String {
    format!("[[policies]]\nteam_project = \"Devx\"\nwebhook = \"{webhook}\"\n")
}

/// The paths of the posts `chat` received.
async fn posted_paths(chat: &MockServer) -> Vec<String> {
    let received = chat.received_requests().await.unwrap();
    received.iter().map(|r| r.url.path().to_owned()).collect()
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn a_changed_chat_webhook_url_receives_the_next_notice() {
    let chat = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&chat)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gate.toml");
    std::fs::write(&config, policy_posting_to(&format!("{}/old", chat.uri()))).unwrap();
    let served = Served::start_with(
        dir.path(),
        &[
            ("DEPLOY_GATE_CONFIG", config.to_str().unwrap()),
            ("DEPLOY_GATE_APPROVERS", "ana@example.com"),
        ],
    );
    create_release(&served, 1).await;
    served.wait_for_log("approval request posted");
    assert_eq!(posted_paths(&chat).await, ["/old"]);

    replace(&config, policy_posting_to(&format!("{}/new", chat.uri())));
    send_sighup(&served);
    wait_for_reload(&served);
    create_release(&served, 2).await;
    served.wait_for_log("approval request posted");
    assert_eq!(posted_paths(&chat).await, ["/old", "/new"]);
    let posted: Value =
        serde_json::from_slice(&chat.received_requests().await.unwrap()[1].body).unwrap();
    assert_eq!(posted["release"]["ReleaseId"], "2", "{posted}");
}

/// The status of a `release-created` service hook for release `id`, sent with
/// `secret` in the header (`202`: the release is created).
async fn hook_with(served: &Served, secret: &str, id: u32) -> u16 {
    let event = json!({
        "id": "1f2e3d4c-0000-4000-8000-000000000001",
        "eventType": "ms.vss-release.release-created-event",
        "publisherId": "rm",
        "resource": {
            "release": {"id": id, "name": format!("Release-{id}"), "status": "active"},
            "project": {"id": "b0f1a2c3-1111-2222-3333-444455556666", "name": "Devx"}
        }
    });
    reqwest::Client::new()
        .post(format!("{}/hooks/azure-devops", served.address))
        .header("X-Deploy-Gate-Hook-Secret", secret)
        .json(&event)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_hook_secret_refuses_the_old_one_and_accepts_the_new() {
    const OLD: &str = "hook-secret-before";
    const NEW: &str = "hook-secret-after";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hook-secret");
    std::fs::write(&file, OLD).unwrap();
    let served = Served::start_with(
        dir.path(),
        &[("DEPLOY_GATE_HOOK_SECRET_FILE", file.to_str().unwrap())],
    );
    assert_eq!(hook_with(&served, OLD, 1).await, 202);
    assert_eq!(hook_with(&served, NEW, 2).await, 401);

    replace(&file, NEW);
    wait_for_reload(&served);
    assert_eq!(hook_with(&served, OLD, 3).await, 401);
    assert_eq!(hook_with(&served, NEW, 4).await, 202);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn switching_from_the_mail_folder_to_smtp_waits_for_a_restart_and_the_log_says_so() {
    let smtp = TestSmtp::running();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gate.toml");
    std::fs::write(&config, "mail_from = \"gate@example.com\"\n").unwrap();
    let served = Served::start_with(
        dir.path(),
        &[
            ("DEPLOY_GATE_CONFIG", config.to_str().unwrap()),
            ("DEPLOY_GATE_APPROVERS", "ana@example.com"),
        ],
    );
    let toml = format!(
        "mail_from = \"other@example.com\"\nsmtp_url = \"{}\"\n",
        smtp_url(&smtp)
    );
    replace(&config, toml);
    send_sighup(&served);
    let restart = served
        .wait_for_log("changed settings that only a restart applies; they keep their old values");
    let named = restart["settings"].as_str().unwrap();
    assert!(
        named.contains("smtp_url") && named.contains("mail_from"),
        "{restart}"
    );
    wait_for_reload(&served);

    create_release(&served, 1).await;
    served.wait_for_log("approval link (no SMTP server configured)");
    let written: Vec<_> = std::fs::read_dir(dir.path().join("mail"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "eml"))
        .collect();
    assert_eq!(written.len(), 1, "still written to the mail folder");
    let email = std::fs::read_to_string(&written[0]).unwrap();
    assert!(
        email.contains("From: gate@example.com") && !email.contains("other@example.com"),
        "the mail settings wait together: {email}"
    );
    assert!(smtp.received().is_empty());
}
