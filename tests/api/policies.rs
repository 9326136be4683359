//! Approval policies (self-approval, groups and quorum per project and stage),
//! reminders and escalation on a clock moved forward, channels, and the
//! operator's cancel and re-send.

use std::{collections::BTreeMap, time::Duration};

use deploy_gate::{secret::Secret, settings::PolicySettings};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

use crate::{
    fakes::wait_for_requests,
    helpers::{ReceivedMail, TestApp, TestSmtp, assert_problem, spawn_app, spawn_app_with},
};

/// A policy for `project` with nothing set but the project.
fn policy(project: &str) -> PolicySettings {
    toml::from_str(&format!("team_project = {project:?}")).unwrap()
}

fn groups(entries: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    entries
        .iter()
        .map(|(name, members)| {
            let members = members.iter().map(|m| (*m).to_owned()).collect();
            ((*name).to_owned(), members)
        })
        .collect()
}

fn mail_to<'a>(mails: &'a [ReceivedMail], to: &str) -> &'a ReceivedMail {
    mails
        .iter()
        .rev()
        .find(|m| m.to.iter().any(|t| t == to))
        .unwrap_or_else(|| panic!("no email to {to}"))
}

async fn approve(app: &TestApp, mail: &ReceivedMail) -> Value {
    let answer = app.decide(&mail.token(), "approve", None).await;
    assert_eq!(answer.status(), 200);
    answer.json().await.unwrap()
}

#[tokio::test]
async fn the_requesters_own_approval_does_not_count() {
    let app = spawn_app().await;
    let created = app
        .post_release(&json!({
            "ReleaseName": "R1", "ReleaseId": "1", "TeamProject": "Devx",
            "Approvers": ["ana@example.com", "bo@example.com"],
            "RequestedFor": "Ana@Example.com"
        }))
        .await;
    assert_eq!(created.status(), 202);
    let mails = app.smtp.wait_for(2).await;
    let page_of = |to: &str| {
        let link = mail_to(&mails, to).link();
        let request = app.client.get(link).header("Accept", "text/html");
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let note = "your approval does not count";
    assert!(
        page_of("ana@example.com").await.contains(note),
        "told on her page"
    );
    assert!(!page_of("bo@example.com").await.contains(note));

    let after_ana = approve(&app, mail_to(&mails, "ana@example.com")).await;
    let release = &after_ana["release"];
    assert_eq!(release["status"], "pending");
    assert_eq!(release["requested_for"], "ana@example.com");
    assert_eq!(release["approvers"][0]["counts"], false);
    assert_eq!(
        release["approvals"],
        json!({"required": 1, "approved": 0, "rejected": 0, "pending": 1})
    );
    assert_eq!(
        release["waiting_for"],
        json!(["1 more approval from the approvers"])
    );

    let after_bo = approve(&app, mail_to(&mails, "bo@example.com")).await;
    assert_eq!(after_bo["release"]["status"], "approved");
}

#[tokio::test]
async fn a_policy_may_let_the_requester_approve_and_a_bad_requested_for_is_refused() {
    let app = spawn_app_with(TestSmtp::running(), |s| {
        let mut p = policy("Devx");
        p.allow_self_approval = true;
        s.policies = vec![p];
    })
    .await;
    app.post_release(&json!({
        "ReleaseName": "R1", "ReleaseId": "1", "TeamProject": "Devx",
        "Approvers": "ana@example.com", "RequestedFor": "ana@example.com"
    }))
    .await;
    let mails = app.smtp.wait_for(1).await;
    assert_eq!(
        approve(&app, &mails[0]).await["release"]["status"],
        "approved"
    );

    for (requested_for, kind) in [
        ("$(Release.RequestedForEmail)", "unresolved-macro"),
        ("Ana Silva", "invalid-field"),
    ] {
        let refused = app
            .post_release(&json!({
                "ReleaseName": "R2", "ReleaseId": "2", "TeamProject": "Devx",
                "RequestedFor": requested_for
            }))
            .await;
        let problem = assert_problem(refused, 400, kind).await;
        assert!(problem["detail"].as_str().unwrap().contains("RequestedFor"));
    }
    assert_eq!(
        app.get_release("Devx", "2").await.status(),
        404,
        "nothing stored"
    );
}

#[tokio::test]
async fn any_n_of_one_group_and_all_of_another_are_both_needed() {
    let app = spawn_app_with(TestSmtp::running(), |s| {
        let mut p = policy("Devx");
        p.require = toml::from_str::<PolicySettings>(
            "team_project = \"x\"\nrequire = [{ group = \"sre\", count = 2 }, { group = \"owners\", all = true }]",
        )
        .unwrap()
        .require;
        s.policies = vec![p];
        s.groups = groups(&[
            ("sre", &["a@example.com", "b@example.com", "c@example.com"]),
            ("owners", &["d@example.com"]),
        ]);
    })
    .await;
    // No approvers named: the policy's groups are asked.
    app.post_release(&json!({"ReleaseName": "R1", "ReleaseId": "1", "TeamProject": "Devx"}))
        .await;
    let mails = app.smtp.wait_for(4).await;

    approve(&app, mail_to(&mails, "a@example.com")).await;
    let status = approve(&app, mail_to(&mails, "b@example.com")).await;
    let release = &status["release"];
    assert_eq!(release["status"], "pending");
    assert_eq!(
        release["requirements"],
        json!([
            {"group": "sre", "needed": 2, "approved": 2, "met": true},
            {"group": "owners", "needed": 1, "approved": 0, "met": false}
        ])
    );
    assert_eq!(
        release["waiting_for"],
        json!(["1 more approval from group owners"])
    );
    let status = approve(&app, mail_to(&mails, "d@example.com")).await;
    assert_eq!(status["release"]["status"], "approved");
    assert!(
        status["release"]["waiting_for"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_stage_policy_applies_to_its_stage_only_and_groups_may_come_from_the_approvers_api() {
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/approvers"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "approvers": ["dev@example.com"],
            "groups": {"sre": ["sre1@example.com", "sre2@example.com"]}
        })))
        .mount(&api)
        .await;
    let url = format!("{}/approvers", api.uri());
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.approvers_url = Some(url);
        let mut prod = policy("Devx");
        prod.stage = Some("prod".into());
        prod.require = toml::from_str::<PolicySettings>(
            "team_project = \"x\"\nrequire = [{ group = \"sre\", count = 1 }]",
        )
        .unwrap()
        .require;
        s.policies = vec![prod];
        // The approvers API's group wins over this one.
        s.groups = groups(&[("sre", &["old@example.com"])]);
    })
    .await;

    app.post_release(
        &json!({"ReleaseName": "R", "ReleaseId": "1", "TeamProject": "Devx", "Stage": "prod"}),
    )
    .await;
    app.post_release(
        &json!({"ReleaseName": "R", "ReleaseId": "1", "TeamProject": "Devx", "Stage": "qa"}),
    )
    .await;
    let mails = app.smtp.wait_for(3).await;
    let mut to: Vec<String> = mails.iter().flat_map(|m| m.to.clone()).collect();
    to.sort();
    assert_eq!(
        to,
        ["dev@example.com", "sre1@example.com", "sre2@example.com"]
    );

    // One approval from the group is enough on prod.
    let status = approve(&app, mail_to(&mails, "sre2@example.com")).await;
    assert_eq!(status["release"]["Stage"], "prod");
    assert_eq!(status["release"]["status"], "approved");
}

#[tokio::test]
async fn reminders_go_to_undecided_approvers_and_the_escalation_contact_is_told_once() {
    let app = spawn_app_with(TestSmtp::running(), |s| {
        let mut p = policy("*");
        p.reminders = vec!["1h".into()];
        p.escalate_after = Some(Duration::from_secs(2 * 3600));
        p.escalate_to = Some("lead@example.com".into());
        s.policies = vec![p];
    })
    .await;
    app.post_release(&json!({
        "ReleaseName": "Pending", "ReleaseId": "1", "TeamProject": "Devx",
        "Approvers": ["ana@example.com", "bo@example.com"]
    }))
    .await;
    app.post_release(&json!({
        "ReleaseName": "Decided", "ReleaseId": "2", "TeamProject": "Devx",
        "Approvers": ["cy@example.com"]
    }))
    .await;
    let mails = app.smtp.wait_for(3).await;
    approve(&app, mail_to(&mails, "ana@example.com")).await;
    approve(&app, mail_to(&mails, "cy@example.com")).await;
    app.drain_jobs().await;
    assert_eq!(
        app.smtp.received().len(),
        3,
        "nothing is due before the hour"
    );

    app.advance_clock(Duration::from_secs(3600 + 60)).await;
    app.drain_jobs().await;
    let mails = app.smtp.wait_for(4).await;
    let reminder = &mails[3];
    assert_eq!(
        reminder.to,
        ["bo@example.com"],
        "only the undecided approver of the pending release"
    );
    assert!(
        reminder
            .subject()
            .starts_with("Reminder: Approval needed: Pending")
    );
    // The reminder's fresh link works.
    let status = app.decide(&reminder.token(), "approve", None).await;
    assert_eq!(status.status(), 200);
    assert_eq!(app.release_status("Devx", "1").await["status"], "approved");

    app.post_release(&json!({
        "ReleaseName": "Slow", "ReleaseId": "3", "TeamProject": "Devx",
        "Approvers": ["dee@example.com"]
    }))
    .await;
    app.smtp.wait_for(5).await;
    app.advance_clock(Duration::from_secs(2 * 3600 + 60)).await;
    app.drain_jobs().await;
    let mails = app.smtp.wait_for(7).await;
    let escalation = mail_to(&mails, "lead@example.com");
    assert!(escalation.subject().starts_with("Still undecided: Slow"));
    assert!(escalation.text().contains("dee@example.com"));
    // The email is accepted before the job records the escalation.
    app.wait_for_release("Devx", "3", |status| status["escalated_at"].is_string())
        .await;
    app.advance_clock(Duration::from_secs(3600)).await;
    app.drain_jobs().await;
    let all = app.smtp.received();
    let seen: Vec<(Vec<String>, String)> =
        all.iter().map(|m| (m.to.clone(), m.subject())).collect();
    assert_eq!(
        all.len(),
        7,
        "one reminder and one escalation for release 3, none for decided ones: {seen:#?}"
    );
    assert_eq!(
        all.iter().filter(|m| m.to == ["lead@example.com"]).count(),
        1
    );
}

#[tokio::test]
async fn approval_requests_are_posted_to_teams_slack_and_a_webhook() {
    let hooks = MockServer::start().await;
    for route in ["/teams", "/slack", "/hook"] {
        Mock::given(method("POST"))
            .and(path(route))
            .respond_with(ResponseTemplate::new(200))
            .mount(&hooks)
            .await;
    }
    let base = hooks.uri();
    let app = spawn_app_with(TestSmtp::running(), |s| {
        let mut p = policy("Devx");
        p.teams_webhook = Some(Secret::new(format!("{base}/teams")));
        p.slack_webhook = Some(Secret::new(format!("{base}/slack")));
        p.webhook = Some(Secret::new(format!("{base}/hook")));
        s.policies = vec![p];
    })
    .await;
    app.post_release(&json!({
        "ReleaseName": "R <1>", "ReleaseId": "1", "TeamProject": "Devx", "Stage": "prod",
        "Approvers": ["ana@example.com", "bo@example.com"]
    }))
    .await;
    app.smtp.wait_for(2).await;
    app.wait_until_idle().await;

    let requests = hooks.received_requests().await.unwrap();
    let bodies = |route: &str| -> Vec<Value> {
        requests
            .iter()
            .filter(|r| r.url.path() == route)
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect()
    };
    let teams = bodies("/teams");
    assert_eq!(teams.len(), 2, "one card per approver");
    for card in &teams {
        assert_eq!(card["type"], "message");
        let attachment = &card["attachments"][0];
        assert_eq!(
            attachment["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(attachment["content"]["type"], "AdaptiveCard");
        let url = attachment["content"]["actions"][0]["url"].as_str().unwrap();
        assert!(url.starts_with(&format!("{}/approval?token=", app.address)));
    }
    let slack = bodies("/slack");
    assert_eq!(slack.len(), 2);
    for message in &slack {
        assert!(message["text"].as_str().unwrap().contains("R &lt;1&gt;"));
        assert_eq!(message["blocks"][1]["elements"][0]["type"], "button");
    }
    let webhook = bodies("/hook");
    let mut approvers: Vec<&str> = webhook
        .iter()
        .map(|b| b["approver"].as_str().unwrap())
        .collect();
    approvers.sort();
    assert_eq!(approvers, ["ana@example.com", "bo@example.com"]);
    let body = &webhook[0];
    assert_eq!(body["event"], "approval.requested");
    assert_eq!(body["release"]["Stage"], "prod");
    // The posted link decides like the emailed one.
    let answer = app
        .decide(body["token"].as_str().unwrap(), "approve", None)
        .await;
    assert_eq!(answer.status(), 200);
}

#[tokio::test]
async fn a_channel_that_fails_is_retried_and_shown_on_the_release() {
    let hooks = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&hooks)
        .await;
    let url = format!("{}/hook", hooks.uri());
    let app = spawn_app_with(TestSmtp::running(), |s| {
        let mut p = policy("Devx");
        p.webhook = Some(Secret::new(url));
        s.policies = vec![p];
    })
    .await;
    app.post_release(&json!({
        "ReleaseName": "R", "ReleaseId": "1", "TeamProject": "Devx", "Approvers": "ana@example.com"
    }))
    .await;
    let status = app
        .wait_for_release("Devx", "1", |s| {
            s["problems"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["code"] == "channel_failing"))
        })
        .await;
    let detail = status["problems"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("503") && !detail.contains("/hook"),
        "{detail}"
    );
    // The failing channel is tried 3 times.
    wait_for_requests(&hooks, 3).await;
}

#[tokio::test]
async fn an_operator_can_cancel_a_release_and_its_links_stop_working() {
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.api_key = Some(Secret::new("ops-key-0123456789abcdef"));
    })
    .await;
    let created = app
        .client
        .post(format!("{}/release", app.address))
        .bearer_auth("ops-key-0123456789abcdef")
        .json(
            &json!({"ReleaseName": "R", "ReleaseId": "1", "TeamProject": "Devx",
                      "Approvers": ["ana@example.com", "bo@example.com"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 202);
    let mails = app.smtp.wait_for(2).await;
    approve(&app, &mails[0]).await;

    let cancel_url = format!("{}/release/Devx/1/cancel", app.address);
    let unauthorized = app.client.post(&cancel_url).send().await.unwrap();
    assert_eq!(unauthorized.status(), 401);
    assert_eq!(app.smtp.received().len(), 2);

    let cancelled = app
        .client
        .post(&cancel_url)
        .bearer_auth("ops-key-0123456789abcdef")
        .query(&[("reason", "wrong build")])
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    let body: Value = cancelled.json().await.unwrap();
    assert_eq!(body["status"], "rejected");
    assert_eq!(body["cancelled"]["reason"], "wrong build");

    for mail in &mails {
        let view = app.client.get(mail.link()).send().await.unwrap();
        assert_eq!(view.status(), 410);
        let problem: Value = view.json().await.unwrap();
        assert!(
            problem["type"]
                .as_str()
                .unwrap()
                .ends_with("approval-cancelled")
        );
        assert!(problem["detail"].as_str().unwrap().contains("wrong build"));
        assert_problem(
            app.decide(&mail.token(), "approve", None).await,
            410,
            "approval-cancelled",
        )
        .await;
    }
    let page = app
        .client
        .get(mails[1].link())
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 410);
    assert!(page.text().await.unwrap().contains("cancelled"));

    let board: Value = app
        .client
        .get(format!("{}/releases?status=rejected", app.address))
        .bearer_auth("ops-key-0123456789abcdef")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(board["releases"][0]["ReleaseId"], "1", "{board}");
    let timeline: Value = app
        .client
        .get(format!("{}/releases/Devx/1", app.address))
        .bearer_auth("ops-key-0123456789abcdef")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        timeline["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "cancelled"
                && e["summary"].as_str().unwrap().contains("wrong build")),
        "{timeline}"
    );

    let again = app
        .client
        .post(&cancel_url)
        .bearer_auth("ops-key-0123456789abcdef")
        .send()
        .await
        .unwrap();
    // The release is already final.
    assert_problem(again, 409, "release-final").await;
    let unknown = app
        .client
        .post(format!("{}/release/Devx/404/cancel", app.address))
        .bearer_auth("ops-key-0123456789abcdef")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn a_resent_email_carries_a_new_link_and_retires_the_old_one() {
    let app = spawn_app().await;
    app.post_release(
        &json!({"ReleaseName": "R", "ReleaseId": "1", "TeamProject": "Devx",
                             "Approvers": ["ana@example.com", "bo@example.com"]}),
    )
    .await;
    let mails = app.smtp.wait_for(2).await;
    let old = mail_to(&mails, "bo@example.com").clone();
    approve(&app, mail_to(&mails, "ana@example.com")).await;

    let resend = |who: &str| {
        let url = format!("{}/release/Devx/1/approvers/{who}/resend", app.address);
        let client = app.client.clone();
        async move { client.post(url).send().await.unwrap() }
    };
    let queued = resend("bo@example.com").await;
    assert_eq!(queued.status(), 202);
    let mails = app.smtp.wait_for(3).await;
    let new = &mails[2];
    assert_eq!(new.to, ["bo@example.com"]);
    assert_ne!(new.token(), old.token());

    let stale = app.decide(&old.token(), "approve", None).await;
    assert_eq!(stale.status(), 401);
    let problem: Value = stale.json().await.unwrap();
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .ends_with("token-superseded")
    );
    assert_eq!(approve(&app, new).await["release"]["status"], "approved");

    assert_problem(resend("ana@example.com").await, 409, "release-final").await;
    assert_problem(resend("nobody@example.com").await, 404, "not-found").await;
    assert_problem(resend("not-an-address").await, 404, "not-found").await;
}
