// Approvers who must sign in (a policy's `require_sign_in`), against a real OpenID
// Connect provider on loopback (PyPI `oidc-provider-mock`, which `.ci/run` installs):
// the whole flow in headless Chromium (the right approver, someone else, a tampered
// `state`, an ID token for another `nonce`, a policy without sign-in), and as an API
// client sees it (`403` problems, a replayed callback). The provider's sign-in page
// takes the subject to sign in as; each subject's claims are set through its
// `PUT /users/{sub}`. Without the provider (or chromedriver) the tests say SKIPPED.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use deploy_gate::{secret::Secret, settings::PolicySettings};
use fantoccini::Locator;
use serde_json::{Value, json};

use crate::{
    chromium::{Browser, find_on_path},
    helpers::{HANG_GUARD, TestApp, TestSmtp, spawn_app_with},
};

/// deploy-gate's client id at the provider (which accepts any client).
const CLIENT_ID: &str = "deploy-gate-test";

/// A running `oidc-provider-mock`.
struct Provider {
    url: String,
    process: Child,
}

impl Provider {
    /// Starts the provider on a free port, or `None` (with a SKIPPED note) without it.
    async fn start(test: &str) -> Option<Provider> {
        let Some(program) = find_on_path("oidc-provider-mock") else {
            eprintln!(
                "SKIPPED: {test}: oidc-provider-mock is not installed (pip install oidc-provider-mock)"
            );
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let process = Command::new(program)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("oidc-provider-mock starts");
        let provider = Provider {
            url: format!("http://127.0.0.1:{port}"),
            process,
        };
        let discovery = format!("{}/.well-known/openid-configuration", provider.url);
        let deadline = tokio::time::Instant::now() + HANG_GUARD;
        while tokio::time::Instant::now() < deadline {
            if reqwest::get(&discovery)
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return Some(provider);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "waited {HANG_GUARD:?} for oidc-provider-mock on {}",
            provider.url
        );
    }

    /// Sets the claims the provider gives `sub`'s ID tokens.
    async fn user(&self, sub: &str, claims: Value) {
        let answer = reqwest::Client::new()
            .put(format!("{}/users/{sub}", self.url))
            .json(&claims)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 204, "the provider stored {sub}");
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// `require_sign_in` for project `Devx`; project `Open` has a policy without it.
fn policies() -> Vec<PolicySettings> {
    vec![
        toml::from_str("team_project = \"Devx\"\nrequire_sign_in = true").unwrap(),
        toml::from_str("team_project = \"Open\"").unwrap(),
    ]
}

/// The app signing approvers in at `provider`, with Ana (`ana-sub`, verified) and Bob
/// (`bob-sub`, verified) known there.
async fn app_with(provider: &Provider) -> TestApp {
    app_trusting(provider, None).await
}

/// [`app_with`], trusting the work accounts of `tenants` (`DEPLOY_GATE_OIDC_TENANTS`).
async fn app_trusting(provider: &Provider, tenants: Option<&str>) -> TestApp {
    provider
        .user(
            "ana-sub",
            json!({"email": "Ana@Example.com", "email_verified": true}),
        )
        .await;
    provider
        .user(
            "bob-sub",
            json!({"email": "bob@example.com", "email_verified": true}),
        )
        .await;
    let issuer = provider.url.clone();
    spawn_app_with(TestSmtp::running(), move |s| {
        s.oidc_issuer = Some(issuer);
        s.oidc_client_id = Some(CLIENT_ID.into());
        s.oidc_client_secret = Some(Secret::new("client-secret-0123456789"));
        s.oidc_tenants = tenants.map(str::to_owned);
        s.policies = policies();
    })
    .await
}

/// Creates a release in `project` for Ana and returns her approval link.
async fn ana_link(app: &TestApp, project: &str) -> String {
    let created = app
        .post_release(&json!({
            "ReleaseName": "R1", "ReleaseId": "1", "TeamProject": project,
            "Approvers": ["ana@example.com"]
        }))
        .await;
    assert_eq!(created.status(), 202);
    app.smtp.wait_for(1).await[0].link()
}

/// The approval as an API client sees it.
async fn approval_json(app: &TestApp, link: &str) -> Value {
    app.client
        .get(link)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// On the approval page, follows "Sign in" to the provider's page and returns its URL
/// (the authorization request deploy-gate made).
async fn go_to_provider(browser: &Browser, link: &str) -> url::Url {
    browser.client.goto(link).await.unwrap();
    browser
        .click_and_wait_for("#sign-in", "input[name=sub]")
        .await;
    browser.client.current_url().await.unwrap()
}

/// On the provider's page, signs in as `sub` and waits until the browser is back on
/// `app`'s pages.
async fn sign_in_as(browser: &Browser, app: &TestApp, sub: &str) {
    browser
        .element("input[name=sub]")
        .await
        .send_keys(sub)
        .await
        .unwrap();
    browser
        .element("form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + HANG_GUARD;
    while !browser
        .client
        .current_url()
        .await
        .unwrap()
        .as_str()
        .starts_with(&app.address)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "back from the provider"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    browser
        .client
        .wait()
        .for_element(Locator::Css("main h1"))
        .await
        .unwrap();
}

/// The authorization request with its parameter `name` set to `value`.
fn with_param(url: &url::Url, name: &str, value: &str) -> String {
    let mut changed = url.clone();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == name {
                value.to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    changed.query_pairs_mut().clear().extend_pairs(pairs);
    changed.into()
}

fn param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn the_approver_signs_in_decides_and_the_decision_records_who_signed_in() {
    let test = "sign-in as the approver";
    let Some(provider) = Provider::start(test).await else {
        return;
    };
    let Some(browser) = Browser::start(test).await else {
        return;
    };
    let app = app_with(&provider).await;
    let link = ana_link(&app, "Devx").await;

    browser.client.goto(&link).await.unwrap();
    assert!(
        browser
            .text_of("#sign-in-required")
            .await
            .contains("sign in")
    );
    assert!(
        browser.elements("button.approve").await.is_empty(),
        "no decision before signing in"
    );
    let request = go_to_provider(&browser, &link).await;
    assert_eq!(
        param(&request, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(param(&request, "client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(
        param(&request, "redirect_uri"),
        Some(format!("{}/approval/signed-in", app.address))
    );
    for name in ["code_challenge", "state", "nonce"] {
        assert!(
            param(&request, name).is_some_and(|v| v.len() >= 43),
            "{name}"
        );
    }
    sign_in_as(&browser, &app, "ana-sub").await;
    assert_eq!(
        browser.text_of("#signed-in-as").await,
        "Signed in as ana@example.com."
    );
    browser
        .click_and_wait_for("button.approve", "#result")
        .await;

    let approval = approval_json(&app, &link).await;
    assert_eq!(approval["decision"], "approved");
    assert_eq!(approval["status"], "approved");
    assert_eq!(approval["sign_in_required"], true);
    assert_eq!(
        approval["signed_in"],
        json!({"issuer": provider.url, "subject": "ana-sub", "email": "ana@example.com"})
    );
    browser.close().await;
}

#[tokio::test]
async fn someone_else_who_signs_in_gets_a_clear_page_and_their_decision_does_not_count() {
    let test = "sign-in as someone else";
    let Some(provider) = Provider::start(test).await else {
        return;
    };
    let Some(browser) = Browser::start(test).await else {
        return;
    };
    let app = app_with(&provider).await;
    let link = ana_link(&app, "Devx").await;

    go_to_provider(&browser, &link).await;
    sign_in_as(&browser, &app, "bob-sub").await;
    assert_eq!(
        browser.text_of("main h1").await,
        "You signed in as someone else"
    );
    let page = browser.text_of("main").await;
    assert!(
        page.contains("you signed in as bob@example.com")
            && page.contains("sign in as ana@example.com"),
        "{page}"
    );
    // Back on the approval page, Bob is not signed in as Ana: no buttons.
    assert_still_undecided(browser, &app, &link).await;
}

#[tokio::test]
async fn a_tampered_state_is_refused() {
    let test = "sign-in with a tampered state";
    let Some(provider) = Provider::start(test).await else {
        return;
    };
    let Some(browser) = Browser::start(test).await else {
        return;
    };
    let app = app_with(&provider).await;
    let link = ana_link(&app, "Devx").await;

    let request = go_to_provider(&browser, &link).await;
    let state = param(&request, "state").unwrap();
    let tampered = with_param(&request, "state", &format!("{state}x"));
    browser.client.goto(&tampered).await.unwrap();
    sign_in_as(&browser, &app, "ana-sub").await;
    assert_refused(&browser, "state does not match").await;
    assert_still_undecided(browser, &app, &link).await;
}

#[tokio::test]
async fn an_id_token_issued_for_another_nonce_is_refused() {
    let test = "sign-in with another nonce";
    let Some(provider) = Provider::start(test).await else {
        return;
    };
    let Some(browser) = Browser::start(test).await else {
        return;
    };
    let app = app_with(&provider).await;
    let link = ana_link(&app, "Devx").await;

    // The browser's state, but an authorization request naming another nonce: the
    // provider then issues Ana a real, signed ID token for that other nonce.
    let request = go_to_provider(&browser, &link).await;
    let other = with_param(
        &request,
        "nonce",
        "another-sign-in-nonce-0123456789abcdefghijk",
    );
    browser.client.goto(&other).await.unwrap();
    sign_in_as(&browser, &app, "ana-sub").await;
    assert_refused(&browser, "another sign-in").await;
    assert_still_undecided(browser, &app, &link).await;
}

#[tokio::test]
async fn a_policy_without_sign_in_keeps_the_link_alone_enough() {
    let test = "link-only policy";
    let Some(provider) = Provider::start(test).await else {
        return;
    };
    let Some(browser) = Browser::start(test).await else {
        return;
    };
    let app = app_with(&provider).await;
    let link = ana_link(&app, "Open").await;

    browser.client.goto(&link).await.unwrap();
    assert!(browser.elements("#sign-in").await.is_empty());
    browser
        .click_and_wait_for("button.approve", "#result")
        .await;
    let approval = approval_json(&app, &link).await;
    assert_eq!(approval["decision"], "approved");
    assert_eq!(approval["sign_in_required"], false);
    assert!(approval.get("signed_in").is_none(), "{approval}");
    let sign_in = app
        .client
        .get(link.replace("/approval?", "/approval/sign-in?"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        sign_in.status(),
        404,
        "no sign-in where the policy asks none"
    );
    browser.close().await;
}

/// What an API client gets: the link alone is refused `403`; the sign-in's callback for
/// someone else is a `403` problem; a callback replayed with its cookie is refused.
#[tokio::test]
async fn api_clients_get_403_problems_and_a_replayed_callback_is_refused() {
    let Some(provider) = Provider::start("sign-in as an API client").await else {
        return;
    };
    let app = app_with(&provider).await;
    let link = ana_link(&app, "Devx").await;
    let token = link.split("token=").nth(1).unwrap().to_owned();

    let decided = app
        .client
        .post(format!("{}/approval", app.address))
        .json(&json!({"token": token, "decision": "approve"}))
        .send()
        .await
        .unwrap();
    assert_eq!(decided.status(), 403);
    let problem: Value = decided.json().await.unwrap();
    assert_eq!(problem["type"], "urn:deploy-gate:problem:sign-in-required");

    let (callback, cookie) = callback_for(&app, &provider, &token, "bob-sub").await;
    let refused = get_with_cookie(&app, &callback, &cookie).await;
    assert_eq!(refused.status(), 403);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["type"], "urn:deploy-gate:problem:wrong-approver");

    let (callback, cookie) = callback_for(&app, &provider, &token, "ana-sub").await;
    let signed_in = get_with_cookie(&app, &callback, &cookie).await;
    assert_eq!(signed_in.status(), 303);
    let replayed = get_with_cookie(&app, &callback, &cookie).await;
    assert_eq!(replayed.status(), 403, "the code was used once already");
    let problem: Value = replayed.json().await.unwrap();
    assert_eq!(problem["type"], "urn:deploy-gate:problem:sign-in-refused");
    assert_eq!(approval_json(&app, &link).await["decision"], "pending");
}

/// An Entra ID work account has no `email_verified`: its `preferred_username` counts only
/// where its tenant (`tid`) is listed.
#[tokio::test]
async fn an_entra_work_account_counts_by_its_username_only_from_a_listed_tenant() {
    let Some(provider) = Provider::start("sign-in with a work account").await else {
        return;
    };
    let claims = json!({"preferred_username": "ANA@example.com", "tid": "tenant-1"});
    for (tenants, expected) in [(None, 403), (Some("tenant-2,Tenant-1"), 303)] {
        let app = app_trusting(&provider, tenants).await;
        provider.user("ana-work", claims.clone()).await;
        let link = ana_link(&app, "Devx").await;
        let token = link.split("token=").nth(1).unwrap().to_owned();
        let (callback, cookie) = callback_for(&app, &provider, &token, "ana-work").await;
        let answer = get_with_cookie(&app, &callback, &cookie).await;
        assert_eq!(answer.status(), expected, "tenants {tenants:?}");
    }
}

/// Starts a sign-in for `token` and signs in at the provider as `sub` without a browser:
/// the callback URL the provider redirects to, and the sign-in cookie.
async fn callback_for(
    app: &TestApp,
    provider: &Provider,
    token: &str,
    sub: &str,
) -> (String, String) {
    let started = app
        .client
        .get(format!("{}/approval/sign-in?token={token}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 303);
    let cookie = started.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let authorize = started.headers()["location"].to_str().unwrap().to_owned();
    assert!(authorize.starts_with(&provider.url));
    let answered = app
        .client
        .post(&authorize)
        .form(&[("sub", sub)])
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), 302, "the provider redirects back");
    let callback = answered.headers()["location"].to_str().unwrap().to_owned();
    (callback, cookie)
}

async fn get_with_cookie(app: &TestApp, url: &str, cookie: &str) -> reqwest::Response {
    app.client
        .get(url)
        .header("cookie", cookie)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
}

/// The browser shows the refusal page, naming `reason`.
async fn assert_refused(browser: &Browser, reason: &str) {
    assert_eq!(browser.text_of("main h1").await, "The sign-in was refused");
    let page = browser.text_of("main").await;
    assert!(page.contains(reason), "{page}");
}

/// Back on the approval page the browser is offered no decision, and the
/// approval is still undecided; closes the browser.
async fn assert_still_undecided(browser: Browser, app: &TestApp, link: &str) {
    browser.client.goto(link).await.unwrap();
    assert!(browser.elements("button.approve").await.is_empty());
    assert_eq!(approval_json(app, link).await["decision"], "pending");
    browser.close().await;
}
