// The pages as people see them, in headless Chromium at a laptop's width (1280 px) and a
// phone's (390 px): nothing wider than the window, no word split across two lines in
// badges, headings and buttons, the navigation on screen, and stuck releases that say why.
// The same runs take the screenshots the README shows (`docs/screenshots/`, written only
// with DEPLOY_GATE_UPDATE_SCREENSHOTS=1; see `chromium.rs`), so their data reads like a
// real team's releases.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

use crate::{
    chromium::Browser,
    fakes::{approvers_api, wait_for_problem},
    helpers::{ReceivedMail, TestApp, TestSmtp, spawn_app_stopped_at, spawn_app_with},
};

/// A laptop's window, and the width of the pictures in the README.
const LAPTOP: (u32, u32) = (1280, 800);
/// A phone's window (an iPhone 12 to 15 in CSS pixels).
const PHONE: (u32, u32) = (390, 844);

/// Where the approval emails' links point: the service as its users know it.
const PUBLIC_URL: &str = "https://deploy-gate.example.com";

/// Text that must stay whole on one line per word: status badges, headings, table
/// headers, navigation and buttons.
const UNBREAKABLE: &str = ".status, h1, h2, thead th, nav a, button, dt, label";

/// The checks of every page at the current width: nothing wider than the window and no
/// word split across lines.
async fn reads_well(browser: &Browser, page: &str) {
    let width = browser.script("return window.innerWidth").await;
    assert_eq!(
        browser.horizontal_overflow().await,
        0,
        "{page} at {width} px is wider than the window"
    );
    let broken = browser.words_broken_in(UNBREAKABLE).await;
    assert!(
        broken.is_empty(),
        "{page} at {width} px splits words: {broken:?}"
    );
}

/// `POST /release` with `body`, which must be accepted.
async fn create(app: &TestApp, body: Value) {
    assert_eq!(app.post_release(&body).await.status(), 202, "{body}");
}

/// A production release of `name` in `project` with these approvers.
fn release(name: &str, id: u32, project: &str, approvers: &[&str]) -> Value {
    json!({"ReleaseName": name, "ReleaseId": id, "TeamProject": project, "Stage": "production",
           "RequestedFor": "dev.lead@example.com", "Approvers": approvers})
}

/// Decides the approval emailed to `to` about `name`.
async fn decide(app: &TestApp, to: &str, name: &str, decision: &str, comment: Option<&str>) {
    let mail = app.email_about(to, name);
    assert_eq!(
        app.decide(&mail.token(), decision, comment).await.status(),
        200
    );
}

/// Moves the app's clock on by `minutes`, so that the board shows ages as a team's would.
fn later(app: &TestApp, minutes: u64) {
    app.clock.advance(Duration::from_secs(minutes * 60));
}

/// A board with a release in each state a team meets: approved, rejected, pending, and
/// two stuck ones, whose approvers lookup keeps failing or finds nobody.
async fn a_teams_board() -> TestApp {
    let lookup = approvers_api(&[
        (
            "2031",
            ResponseTemplate::new(503).set_body_string("upstream timed out"),
        ),
        (
            "877",
            ResponseTemplate::new(200).set_body_json(json!({"approvers": []})),
        ),
    ])
    .await;
    let morning: DateTime<Utc> = "2026-12-06T08:10:00Z".parse().unwrap();
    let app = spawn_app_stopped_at(morning, |s| {
        s.approvers_url = Some(format!("{}/approvers", lookup.uri()));
        // The failing lookup is still being retried while the board is looked at.
        s.retry_base = Some(Duration::from_secs(3600));
        s.retry_cap = Some(Duration::from_secs(3600));
    })
    .await;
    let (ana, bruno, chen) = ("ana@example.com", "bruno@example.com", "chen@example.com");
    create(&app, release("Shop 2026.12.4", 405, "Shop", &[ana, bruno])).await;
    app.smtp.wait_for(2).await;
    decide(&app, ana, "Shop 2026.12.4", "approve", None).await;
    decide(
        &app,
        bruno,
        "Shop 2026.12.4",
        "approve",
        Some("Smoke tests green"),
    )
    .await;
    later(&app, 95);
    create(
        &app,
        release("Payments 2026.12.2", 311, "Payments", &[ana, chen]),
    )
    .await;
    app.smtp.wait_for(4).await;
    decide(
        &app,
        chen,
        "Payments 2026.12.2",
        "reject",
        Some("Error rate up on the canary"),
    )
    .await;
    later(&app, 40);
    create(
        &app,
        json!({"ReleaseName": "Search 2026.12.1", "ReleaseId": 2031,
                        "TeamProject": "Search", "Stage": "staging"}),
    )
    .await;
    wait_for_problem(&app, "Search", "2031", "staging", "approvers_failing").await;
    later(&app, 12);
    create(
        &app,
        json!({"ReleaseName": "Billing 2026.12.3", "ReleaseId": 877,
                        "TeamProject": "Billing", "Stage": "production"}),
    )
    .await;
    wait_for_problem(&app, "Billing", "877", "production", "no_approvers").await;
    later(&app, 9);
    create(&app, release("Shop 2026.12.6", 412, "Shop", &[ana, bruno])).await;
    app.smtp.wait_for(6).await;
    decide(
        &app,
        ana,
        "Shop 2026.12.6",
        "approve",
        Some("Checked the canary"),
    )
    .await;
    later(&app, 3);
    app
}

/// The board's rows, each as its text.
async fn board_rows(browser: &Browser) -> Vec<String> {
    let mut rows = Vec::new();
    for row in browser.elements("#releases tbody tr").await {
        rows.push(row.text().await.unwrap());
    }
    rows
}

#[tokio::test]
async fn the_board_reads_well_on_a_laptop_and_a_phone_and_says_why_releases_are_stuck() {
    let Some(browser) = Browser::start_at("browser board widths", LAPTOP.0, LAPTOP.1).await else {
        return;
    };
    let app = a_teams_board().await;
    browser
        .client
        .goto(&format!("{}/releases", app.address))
        .await
        .unwrap();
    for (width, height) in [LAPTOP, PHONE] {
        browser.resize_to(width, height).await;
        browser.screenshot(&format!("board-{width}")).await;
        reads_well(&browser, "the board").await;
        assert!(
            browser.all_on_screen("nav a").await,
            "the navigation is on screen at {width} px"
        );
        let rows = board_rows(&browser).await;
        assert_eq!(rows.len(), 5, "{rows:?}");
        let row = |name: &str| {
            rows.iter()
                .find(|r| r.contains(name))
                .unwrap_or_else(|| panic!("{name} on the board: {rows:?}"))
        };
        let failing = row("Search 2026.12.1");
        assert!(
            failing.contains("resolving approvers") && failing.contains("503"),
            "the failing lookup is named: {failing}"
        );
        let nobody_found = row("Billing 2026.12.3");
        assert!(
            nobody_found.contains("approver"),
            "the missing approvers are named: {nobody_found}"
        );
        assert!(row("Shop 2026.12.6").contains("bruno@example.com"));
        for text in &rows {
            assert!(!text.contains("nobody"), "{text}");
        }
    }
    browser.resize_to(LAPTOP.0, LAPTOP.1).await;
    browser.screenshot_for_docs("board", "body").await;
    browser.resize_to(PHONE.0, PHONE.1).await;
    browser.screenshot_for_docs("board-phone", "body").await;
    browser.close().await;
}

#[tokio::test]
async fn the_approval_and_result_pages_and_the_email_read_well_on_a_phone() {
    let Some(browser) = Browser::start_at("browser approval widths", LAPTOP.0, LAPTOP.1).await
    else {
        return;
    };
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.public_url = Some(PUBLIC_URL.into());
    })
    .await;
    let mut body = release(
        "Shop 2026.12.6",
        412,
        "Shop",
        &["ana@example.com", "bruno@example.com"],
    );
    body["DefinitionName"] = json!("Shop.CD");
    body["ReleaseUrl"] = json!(
        "https://dev.azure.com/contoso/Shop/_releaseProgress?_a=release-pipeline-progress&releaseId=412"
    );
    create(&app, body).await;
    let mails = app.smtp.wait_for(2).await;
    let ana = mails.iter().find(|m| m.to == ["ana@example.com"]).unwrap();
    assert!(ana.link().starts_with(PUBLIC_URL), "{}", ana.link());

    let page = format!("{}/approval?token={}", app.address, ana.token());
    browser.client.goto(&page).await.unwrap();
    reads_well(&browser, "the approval page").await;
    browser.screenshot_for_docs("approval", "body").await;
    browser.resize_to(PHONE.0, PHONE.1).await;
    reads_well(&browser, "the approval page").await;
    assert!(browser.all_on_screen("button.approve, button.reject").await);
    browser.screenshot("approval-phone").await;

    browser
        .element("#comment")
        .await
        .send_keys("Checked the canary, ship it")
        .await
        .unwrap();
    browser
        .click_and_wait_for("button.approve", "#result")
        .await;
    reads_well(&browser, "the result page").await;
    assert!(
        browser
            .text_of("#result")
            .await
            .contains("Checked the canary")
    );
    browser.screenshot("result-phone").await;
    browser.resize_to(LAPTOP.0, LAPTOP.1).await;
    reads_well(&browser, "the result page").await;
    browser.screenshot_for_docs("result", "body").await;

    the_email_reads_well(&browser, ana).await;
    browser.close().await;
}

/// The HTML part of `mail`, as the SMTP server received it, opened in the browser as a
/// mail client shows it: at both widths nothing runs off the right edge.
async fn the_email_reads_well(browser: &Browser, mail: &ReceivedMail) {
    let mailbox = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/message"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(mail.html(), "text/html"))
        .mount(&mailbox)
        .await;
    browser
        .client
        .goto(&format!("{}/message", mailbox.uri()))
        .await
        .unwrap();
    assert!(browser.text_of("h1").await.contains("Approval needed"));
    browser.screenshot_for_docs("email", "body").await;
    browser.resize_to(PHONE.0, PHONE.1).await;
    assert_eq!(
        browser.horizontal_overflow().await,
        0,
        "the email runs off a phone's screen"
    );
    browser.screenshot("email-phone").await;
}
