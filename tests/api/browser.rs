// The approver's and the operator's pages in a real headless Chromium (through
// chromedriver): open the link from a real email, approve with a comment, see the result,
// then sign in to the release board with the API key and find the decision there and on
// the release's timeline. One screenshot per page is saved under target/screenshots/ as a
// test artifact. The browser itself is driven by `chromium.rs`.

use deploy_gate::secret::Secret;
use fantoccini::Locator;
use serde_json::json;

use crate::{
    chromium::Browser,
    helpers::{HANG_GUARD, TestApp, TestSmtp, spawn_app, spawn_app_with},
};

/// The API key of the app whose board the browser opens.
const API_KEY: &str = "operator-key-0123456789abc";

#[tokio::test]
async fn an_approver_opens_the_emailed_link_approves_with_a_comment_and_sees_the_result() {
    let Some(browser) = Browser::start("browser approval").await else {
        return;
    };
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.api_key = Some(Secret::new(API_KEY));
    })
    .await;
    let created = app
        .client
        .post(format!("{}/release", app.address))
        .bearer_auth(API_KEY)
        .json(&json!({
            "ReleaseName": "Desafio-CD <b>bold</b>", "ReleaseId": "386", "TeamProject": "Devx",
            "Stage": "prod", "Approvers": ["ana@example.com", "bo@example.com"]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 202);
    let mails = app.smtp.wait_for(2).await;
    let ana = mails
        .iter()
        .find(|m| m.to == ["ana@example.com"])
        .expect("ana's email");

    browser.client.goto(&ana.link()).await.unwrap();
    browser.screenshot("approval-page").await;
    assert_eq!(browser.text_of("h1").await, "Desafio-CD <b>bold</b>");
    assert_eq!(browser.text_of("#status").await, "pending");
    let page = browser.client.source().await.unwrap();
    assert!(page.contains("ana@example.com") && page.contains("bo@example.com"));

    browser
        .element("#comment")
        .await
        .send_keys("Checked the canary, ship it")
        .await
        .unwrap();
    browser.click_and_wait_for("button.approve", "main").await;
    browser.screenshot("result-page").await;
    let result = browser.client.source().await.unwrap();
    assert!(
        result.contains("Checked the canary, ship it"),
        "the result page shows the comment"
    );

    let release: serde_json::Value = app
        .client
        .get(format!("{}/release/Devx/386?Stage=prod", app.address))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let decision = release["approvers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["email"] == "ana@example.com")
        .unwrap();
    assert_eq!(decision["decision"], "approved");
    assert_eq!(decision["comment"], "Checked the canary, ship it");
    assert_eq!(release["status"], "pending", "bo has not decided yet");

    // Reopening the link shows the decision and no buttons.
    browser.client.goto(&ana.link()).await.unwrap();
    browser.screenshot("decided-page").await;
    assert!(
        browser
            .client
            .find(Locator::Css("button.approve"))
            .await
            .is_err()
    );

    let bo = mails.iter().find(|m| m.to == ["bo@example.com"]).unwrap();
    assert_eq!(app.decide(&bo.token(), "approve", None).await.status(), 200);
    the_board_and_the_timeline_show_the_decision(&browser, &app).await;
    browser.close().await;
}

/// Signs in to the board with the API key (Basic, as a browser asks), finds the release
/// approved there, and follows its link to the timeline with ana's decision and comment.
async fn the_board_and_the_timeline_show_the_decision(browser: &Browser, app: &TestApp) {
    let board = app
        .address
        .replacen("http://", &format!("http://operator:{API_KEY}@"), 1);
    browser
        .client
        .goto(&format!("{board}/releases"))
        .await
        .unwrap();
    browser.screenshot("board-page").await;
    let row = browser.text_of("#releases tbody tr").await;
    assert!(
        row.contains("Desafio-CD <b>bold</b>") && row.contains("approved"),
        "{row}"
    );
    assert!(row.contains("2 of 2"), "{row}");

    browser
        .click_and_wait_for("#releases tbody tr a", "#timeline")
        .await;
    browser.screenshot("timeline-page").await;
    assert_eq!(browser.text_of("#status").await, "approved");
    let timeline = browser.text_of("#timeline").await;
    assert!(
        timeline.contains("ana@example.com approved")
            && timeline.contains("Checked the canary, ship it")
            && timeline.contains("Release approved"),
        "{timeline}"
    );
}

#[tokio::test]
async fn a_broken_link_shows_a_helpful_page() {
    let Some(browser) = Browser::start("browser broken link").await else {
        return;
    };
    let app = spawn_app().await;
    browser
        .client
        .goto(&format!("{}/approval?token=not-a-token", app.address))
        .await
        .unwrap();
    browser.screenshot("invalid-link-page").await;
    let heading = browser.text_of("h1").await;
    assert!(!heading.is_empty());
    let page = browser.client.source().await.unwrap();
    assert!(
        !page.contains("\"status\""),
        "a page for people, not a JSON document"
    );
    browser.close().await;
}

/// The headers of `/docs` pages: the same framing and sniffing refusals as every page,
/// and a CSP that lets only Swagger UI's own inline script run.
#[tokio::test]
async fn the_api_docs_carry_the_security_headers_of_every_page() {
    let app = spawn_app().await;
    for path in ["/docs", "/docs/oauth-receiver.html"] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        let csp = headers
            .get("content-security-policy")
            .unwrap_or_else(|| panic!("{path} has no CSP"))
            .to_str()
            .unwrap()
            .to_owned();
        for part in [
            "default-src 'none'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(part), "{path}: {csp}");
        }
        let script_src = csp
            .split(';')
            .map(str::trim)
            .find(|d| d.starts_with("script-src "))
            .unwrap_or_else(|| panic!("{path}: no script-src in {csp}"));
        assert!(
            !script_src.contains("unsafe"),
            "{path}: scripts by hash only: {script_src}"
        );
    }
}

#[tokio::test]
async fn swagger_ui_runs_under_its_content_security_policy() {
    let Some(browser) = Browser::start("browser swagger ui").await else {
        return;
    };
    let app = spawn_app().await;
    browser
        .client
        .goto(&format!("{}/docs", app.address))
        .await
        .unwrap();
    // Swagger UI draws the operations only when its bundle and the inline start-up
    // script both ran; a CSP that blocked either leaves an empty page.
    browser
        .client
        .wait()
        .at_most(HANG_GUARD)
        .for_element(Locator::Css(".opblock-summary-path"))
        .await
        .expect("Swagger UI lists the operations");
    browser.screenshot("swagger-ui").await;
    assert!(
        browser
            .text_of(".info .title")
            .await
            .contains("deploy-gate")
    );
    browser.close().await;
}

/// The approval page names the pipeline, the stage and the requester, and its link to the
/// release in Azure DevOps (here a local page standing in for it) takes the approver there.
#[tokio::test]
async fn the_approval_page_links_to_the_release_in_azure_devops() {
    let Some(browser) = Browser::start("browser release link").await else {
        return;
    };
    let azure = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::path("/contoso/Devx/_releaseProgress"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_raw(
            "<!doctype html><title>Release-386</title><h1 id=azure>Release-386 in Azure DevOps</h1>",
            "text/html",
        ))
        .mount(&azure)
        .await;
    let release_url = format!(
        "{}/contoso/Devx/_releaseProgress?_a=release-pipeline-progress&releaseId=386",
        azure.uri()
    );
    let app = spawn_app().await;
    let created = app
        .post_release(&json!({
            "ReleaseName": "Release-386", "ReleaseId": "386", "TeamProject": "Devx",
            "Stage": "prod", "ReleaseUrl": release_url, "DefinitionName": "Fabrikam.CD",
            "RequestedFor": "cy@example.com", "Approvers": ["ana@example.com"]
        }))
        .await;
    assert_eq!(created.status(), 202);
    let mail = &app.smtp.wait_for(1).await[0];

    browser.client.goto(&mail.link()).await.unwrap();
    browser.screenshot("approval-page-linked").await;
    let details = browser.text_of("dl").await;
    for shown in ["Fabrikam.CD", "prod", "cy@example.com"] {
        assert!(details.contains(shown), "{shown} in {details}");
    }
    let link = browser.element("#release-url").await;
    assert_eq!(
        link.attr("href").await.unwrap().as_deref(),
        Some(release_url.as_str())
    );
    browser.click_and_wait_for("#release-url", "#azure").await;
    assert_eq!(
        browser.client.current_url().await.unwrap().as_str(),
        release_url
    );
    browser.close().await;
}

/// A page of another site posts a form to cancel a release while the browser is signed in
/// to the board (Basic credentials it replays on its own): refused, nothing changes. The
/// board itself, on this service's origin, still re-sends an approver's email.
#[tokio::test]
async fn another_sites_page_cannot_cancel_a_release_but_the_board_still_acts() {
    let Some(browser) = Browser::start("browser cross-site").await else {
        return;
    };
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.api_key = Some(Secret::new(API_KEY));
    })
    .await;
    let created = app
        .client
        .post(format!("{}/release", app.address))
        .bearer_auth(API_KEY)
        .json(
            &json!({"ReleaseName": "R9", "ReleaseId": "9", "TeamProject": "Devx",
                      "Approvers": ["ana@example.com"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 202);
    app.smtp.wait_for(1).await;
    let board = app
        .address
        .replacen("http://", &format!("http://operator:{API_KEY}@"), 1);
    browser
        .client
        .goto(&format!("{board}/releases"))
        .await
        .unwrap();
    assert!(browser.text_of("#releases tbody tr").await.contains("R9"));

    // `localhost` is another site than `127.0.0.1`: the attacker's page.
    let attacker = wiremock::MockServer::start().await;
    let page = format!(
        r#"<!doctype html><form method="post" action="{}/release/Devx/9/cancel?reason=pwned"></form>
           <script>document.forms[0].submit()</script>"#,
        app.address
    );
    wiremock::Mock::given(wiremock::matchers::path("/win-a-prize"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_raw(page, "text/html"))
        .mount(&attacker)
        .await;
    let attack = format!("http://localhost:{}/win-a-prize", attacker.address().port());
    browser.client.goto(&attack).await.unwrap();
    let refused = browser
        .client
        .wait()
        .for_url(
            &url::Url::parse(&format!(
                "{}/release/Devx/9/cancel?reason=pwned",
                app.address
            ))
            .unwrap(),
        )
        .await;
    assert!(refused.is_ok(), "the form was posted");
    browser.screenshot("cross-site-refused").await;
    let answer = browser.client.source().await.unwrap();
    assert!(answer.contains("cross-site-request"), "{answer}");
    let release: serde_json::Value = app
        .client
        .get(format!("{}/release/Devx/9", app.address))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(release["status"], "pending", "not cancelled: {release}");

    browser
        .client
        .goto(&format!("{}/releases", app.address))
        .await
        .unwrap();
    browser
        .client
        .execute(
            r#"const form = document.createElement("form");
               form.method = "post";
               form.action = "/release/Devx/9/approvers/ana@example.com/resend";
               document.body.appendChild(form);
               form.submit();"#,
            vec![],
        )
        .await
        .unwrap();
    let resent = browser
        .client
        .wait()
        .for_url(
            &url::Url::parse(&format!(
                "{}/release/Devx/9/approvers/ana@example.com/resend",
                app.address
            ))
            .unwrap(),
        )
        .await;
    assert!(resent.is_ok(), "the board's form was posted");
    let answer = browser.client.source().await.unwrap();
    assert!(answer.contains("pending"), "{answer}");
    assert_eq!(app.smtp.wait_for(2).await.len(), 2, "ana got a new link");
    browser.close().await;
}

#[tokio::test]
async fn the_mail_preview_shows_the_newest_email_with_its_approval_link() {
    let Some(browser) = Browser::start("browser mail preview").await else {
        return;
    };
    let mail = tempfile::tempdir().unwrap();
    let folder = mail.path().to_owned();
    let app = spawn_app_with(TestSmtp::running(), move |s| {
        s.smtp_url = None;
        s.mail_dir = Some(folder);
        s.api_key = Some(Secret::new(API_KEY));
    })
    .await;
    let created = app
        .client
        .post(format!("{}/release", app.address))
        .bearer_auth(API_KEY)
        .json(&json!({
            "ReleaseName": "Desafio-CD", "ReleaseId": "386", "TeamProject": "Devx",
            "Stage": "prod", "Approvers": ["ana@example.com"]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 202);
    app.drain_jobs().await;

    let signed_in = app
        .address
        .replacen("http://", &format!("http://operator:{API_KEY}@"), 1);
    browser
        .client
        .goto(&format!("{signed_in}/mail"))
        .await
        .unwrap();
    let newest = browser.text_of("#messages tbody tr").await;
    assert!(newest.contains("Approval needed: Desafio-CD"), "{newest}");
    assert!(newest.contains("ana@example.com"), "{newest}");

    browser
        .click_and_wait_for("#messages tbody tr a", "#html-part")
        .await;
    browser.screenshot("mail-preview").await;
    let link = browser
        .element("#text-part a")
        .await
        .attr("href")
        .await
        .unwrap()
        .expect("the text part links its address");
    assert!(
        link.starts_with(&format!("{}/approval?token=", app.address)),
        "{link}"
    );
    // The HTML part, rendered in its sandboxed frame, has the same link on its button.
    browser.client.enter_frame(0).await.unwrap();
    let button = browser.element("a").await;
    assert_eq!(button.text().await.unwrap(), "Review and decide");
    assert_eq!(
        button.attr("href").await.unwrap().as_deref(),
        Some(link.as_str())
    );
    browser.client.enter_parent_frame().await.unwrap();
    browser.close().await;
}
