// Emails and pages link back to the release (issue 19, point 9): the release's or run's
// page in Azure DevOps (`ReleaseUrl`, or the service hook's `_links.web`), the requester,
// the stage and the release definition or pipeline name, in the approval email, the
// reminder, the escalation and on the approval page; a bad `ReleaseUrl` is refused.

use std::time::Duration;

use deploy_gate::settings::PolicySettings;
use serde_json::{Value, json};

use crate::{
    fakes::sample_event,
    helpers::{ReceivedMail, TestApp, TestSmtp, assert_problem, spawn_app, spawn_app_with},
};

/// A classic release's page, as `$(Release.ReleaseWebURL)` gives it.
const RELEASE_URL: &str = "https://dev.azure.com/contoso/Devx/_releaseProgress?_a=release-pipeline-progress&releaseId=386";

/// `url` as minijinja writes it into an HTML attribute.
fn html_escaped(url: &str) -> String {
    url.replace('&', "&amp;").replace('/', "&#x2f;")
}

fn linked_release() -> Value {
    json!({
        "ReleaseName": "Release-386", "ReleaseId": "386", "TeamProject": "Devx", "Stage": "prod",
        "ReleaseUrl": RELEASE_URL, "DefinitionName": "Fabrikam.CD",
        "RequestedFor": "cy@example.com", "Approvers": ["ana@example.com"]
    })
}

/// The text and HTML parts of `mail` both describe the linked release.
fn assert_describes_the_linked_release(mail: &ReceivedMail) {
    let (text, html) = (mail.text(), mail.html());
    assert!(text.contains(RELEASE_URL), "{text}");
    let href = format!(r#"href="{}""#, html_escaped(RELEASE_URL));
    assert!(html.contains(&href), "{html}");
    for part in [&text, &html] {
        for shown in ["Fabrikam.CD", "cy@example.com", "prod", "Release-386"] {
            assert!(part.contains(shown), "{shown} in {part}");
        }
    }
}

async fn approval_page(app: &TestApp, mail: &ReceivedMail) -> String {
    let page = app
        .client
        .get(mail.link())
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    page.text().await.unwrap()
}

#[tokio::test]
async fn the_approval_email_and_page_link_back_to_the_release_and_name_requester_stage_and_pipeline()
 {
    let app = spawn_app().await;
    let created = app.post_release(&linked_release()).await;
    assert_eq!(created.status(), 202);
    let status: Value = created.json().await.unwrap();
    assert_eq!(status["ReleaseUrl"], RELEASE_URL);
    assert_eq!(status["DefinitionName"], "Fabrikam.CD");
    assert_eq!(status["requested_for"], "cy@example.com");

    let mail = &app.smtp.wait_for(1).await[0];
    assert_describes_the_linked_release(mail);
    assert!(
        mail.link().contains("/approval?token="),
        "the approval link comes first: {}",
        mail.link()
    );

    let page = approval_page(&app, mail).await;
    let link = format!(
        r#"<a id="release-url" href="{}""#,
        html_escaped(RELEASE_URL)
    );
    assert!(page.contains(&link), "{page}");
    for shown in ["Fabrikam.CD", "cy@example.com", "prod"] {
        assert!(page.contains(shown), "{shown} on the page");
    }
}

#[tokio::test]
async fn a_release_without_a_link_shows_none() {
    let app = spawn_app().await;
    app.post_release(&json!({
        "ReleaseName": "R", "ReleaseId": "1", "TeamProject": "Devx", "Approvers": ["ana@example.com"]
    }))
    .await;
    let mail = &app.smtp.wait_for(1).await[0];
    assert!(!mail.html().contains("Azure DevOps"), "{}", mail.html());
    let status = app.release_status("Devx", "1").await;
    assert!(status.get("ReleaseUrl").is_none() && status.get("DefinitionName").is_none());
    assert!(!approval_page(&app, mail).await.contains("release-url"));
}

#[tokio::test]
async fn the_reminder_and_the_escalation_describe_the_release_with_its_link() {
    let app = spawn_app_with(TestSmtp::running(), |s| {
        let mut policy: PolicySettings = toml::from_str("team_project = \"*\"").unwrap();
        policy.reminders = vec!["1h".into()];
        policy.escalate_after = Some(Duration::from_secs(2 * 3600));
        policy.escalate_to = Some("lead@example.com".into());
        s.policies = vec![policy];
    })
    .await;
    app.post_release(&linked_release()).await;
    app.smtp.wait_for(1).await;

    app.advance_clock(Duration::from_secs(3600 + 60)).await;
    app.drain_jobs().await;
    let reminder = app.smtp.wait_for(2).await.remove(1);
    assert!(reminder.subject().starts_with("Reminder: "));
    assert_describes_the_linked_release(&reminder);

    app.advance_clock(Duration::from_secs(3600)).await;
    app.drain_jobs().await;
    let escalation = app.smtp.wait_for(3).await.remove(2);
    assert_eq!(escalation.to, ["lead@example.com"]);
    assert_describes_the_linked_release(&escalation);
}

#[tokio::test]
async fn a_release_url_that_is_not_a_plain_web_address_is_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    let too_long = format!("https://dev.azure.com/contoso/{}", "a".repeat(2048));
    for bad in [
        "javascript:alert(1)",
        "ftp://dev.azure.com/contoso",
        "data:text/html,<script>alert(1)</script>",
        "/Devx/_release?releaseId=386",
        "not a url",
        "https://",
        "https://dev.azure.com@evil.example/contoso",
        "https://user:secret@dev.azure.com/contoso",
        "https://dev.azure.com/contoso\n",
        too_long.as_str(),
    ] {
        let mut body = linked_release();
        body["ReleaseUrl"] = bad.into();
        let problem = assert_problem(app.post_release(&body).await, 400, "invalid-field").await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.starts_with("ReleaseUrl: "), "{bad:?}: {detail}");
    }
    let mut body = linked_release();
    body["DefinitionName"] = "Fabrikam\u{1b}[31m.CD".into();
    let problem = assert_problem(app.post_release(&body).await, 400, "invalid-field").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("DefinitionName: ")
    );
    body["DefinitionName"] = json!(7);
    assert_problem(app.post_release(&body).await, 400, "invalid-request").await;

    let mut body = linked_release();
    body["ReleaseUrl"] = "$(Release.ReleaseWebURL)".into();
    let problem = assert_problem(app.post_release(&body).await, 400, "unresolved-macro").await;
    assert!(problem["detail"].as_str().unwrap().contains("ReleaseUrl"));

    assert_problem(app.get_release("Devx", "386").await, 404, "not-found").await;
    app.wait_until_idle().await;
    assert!(
        app.smtp.received().is_empty(),
        "no email for a refused request"
    );
}

async fn post_hook(app: &TestApp, event: &Value) -> Value {
    let answer = app
        .client
        .post(format!("{}/hooks/azure-devops", app.address))
        .json(event)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);
    answer.json().await.unwrap()
}

async fn spawn_app_with_approver() -> TestApp {
    spawn_app_with(TestSmtp::running(), |s| {
        s.approvers = Some("ana@example.com".into())
    })
    .await
}

#[tokio::test]
async fn microsofts_approval_pending_sample_names_the_stage_and_the_release_definition() {
    let app = spawn_app_with_approver().await;
    let answer = post_hook(
        &app,
        &sample_event("ms.vss-release.deployment-approval-pending-event"),
    )
    .await;
    let release = &answer["release"];
    assert_eq!(release["Stage"], "Dev");
    assert_eq!(release["DefinitionName"], "Fabrikam.CD");
    assert!(
        release.get("ReleaseUrl").is_none(),
        "the sample's _links are empty: {release}"
    );
    let mail = &app.smtp.wait_for(1).await[0];
    for part in [mail.text(), mail.html()] {
        assert!(
            part.contains("Fabrikam.CD") && part.contains("Dev"),
            "{part}"
        );
    }
}

#[tokio::test]
async fn the_web_link_and_creator_azure_sends_with_an_approval_pending_event_reach_the_email() {
    // Azure's release carries `_links.web` and the creator's `uniqueName`, which the
    // documented sample leaves out; the link is the one the docs' deployment-started
    // sample gives its release.
    let web = "https://fabfiber.visualstudio.com/Fabrikam-Fiber-Git/_release?releaseId=1&_a=release-summary";
    let mut event = sample_event("ms.vss-release.deployment-approval-pending-event");
    event["resource"]["release"]["_links"] = json!({"web": {"href": web}});
    event["resource"]["release"]["createdBy"]["uniqueName"] = "chuck@fabrikam.example".into();
    let app = spawn_app_with_approver().await;

    let release = post_hook(&app, &event).await["release"].clone();
    assert_eq!(release["ReleaseUrl"], web);
    assert_eq!(release["requested_for"], "chuck@fabrikam.example");

    let mail = &app.smtp.wait_for(1).await[0];
    assert!(mail.text().contains(web), "{}", mail.text());
    let href = format!(r#"href="{}""#, html_escaped(web));
    assert!(mail.html().contains(&href), "{}", mail.html());
    assert!(mail.html().contains("chuck@fabrikam.example"));
    let page = approval_page(&app, mail).await;
    assert!(
        page.contains(&href) && page.contains("Fabrikam.CD"),
        "{page}"
    );
}

#[tokio::test]
async fn microsofts_release_created_sample_names_the_release_definition() {
    let app = spawn_app_with_approver().await;
    let answer = post_hook(&app, &sample_event("ms.vss-release.release-created-event")).await;
    assert_eq!(answer["release"]["DefinitionName"], "Fabrikam.CD");
    let mail = &app.smtp.wait_for(1).await[0];
    assert!(mail.text().contains("Fabrikam.CD"), "{}", mail.text());
}

#[tokio::test]
async fn microsofts_yaml_approval_sample_without_run_or_pipeline_invents_no_link() {
    let app = spawn_app_with_approver().await;
    let answer = post_hook(
        &app,
        &sample_event("ms.vss-pipelinechecks-events.approval-pending"),
    )
    .await;
    let release = &answer["release"];
    assert!(
        release.get("ReleaseUrl").is_none() && release.get("DefinitionName").is_none(),
        "{release}"
    );
}

#[tokio::test]
async fn a_service_hook_link_that_is_not_a_web_address_is_left_out_and_the_event_still_counts() {
    let mut event = sample_event("ms.vss-release.deployment-approval-pending-event");
    event["resource"]["release"]["_links"] = json!({"web": {"href": "javascript:alert(1)"}});
    let app = spawn_app_with_approver().await;
    let release = post_hook(&app, &event).await["release"].clone();
    assert!(release.get("ReleaseUrl").is_none(), "{release}");
    assert_eq!(release["DefinitionName"], "Fabrikam.CD");
    let mail = &app.smtp.wait_for(1).await[0];
    assert!(!mail.html().contains("javascript"), "{}", mail.html());
}
