//! Where approvers come from: request (only when allowed), approvers API (both shapes), static list, none.

use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path, query_param},
};

use crate::helpers::{TestApp, TestSmtp, assert_problem, spawn_app, spawn_app_with};

async fn approvers_api(body: serde_json::Value, expected_calls: u64) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/approvers"))
        .and(query_param("TeamProject", "Devx"))
        .and(query_param("ReleaseId", "386"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .expect(expected_calls)
        .mount(&server)
        .await;
    server
}

/// An app that asks `api` for each release's approvers and mails a running
/// SMTP server.
async fn app_asking(api: &MockServer) -> TestApp {
    let url = format!("{}/approvers", api.uri());
    spawn_app_with(TestSmtp::running(), |s| s.approvers_url = Some(url)).await
}

fn recipients(mails: &[crate::helpers::ReceivedMail]) -> Vec<String> {
    let mut to: Vec<String> = mails.iter().flat_map(|m| m.to.clone()).collect();
    to.sort();
    to
}

#[tokio::test]
async fn the_approvers_api_is_asked_with_the_release_and_its_wrapped_list_is_used() {
    let api = approvers_api(
        json!({"approvers": ["ana@example.com", "bo@example.com"]}),
        1,
    )
    .await;
    let app = app_asking(&api).await;

    let created = app
        .post_release(&json!({"ReleaseName": "R", "ReleaseId": 386, "TeamProject": "Devx"}))
        .await;
    assert_eq!(created.status(), 202);
    let mails = app.smtp.wait_for(2).await;
    assert_eq!(recipients(&mails), ["ana@example.com", "bo@example.com"]);
    app.wait_until_idle().await;
    assert_eq!(
        app.release_status("Devx", "386").await["approvers_source"],
        "approvers_url"
    );
}

#[tokio::test]
async fn a_list_of_objects_with_email_fields_is_understood_and_invalid_entries_are_reported() {
    let api = approvers_api(
        json!([{"email": "ana@example.com", "name": "Ana"}, {"email": "not an address"}]),
        1,
    )
    .await;
    let app = app_asking(&api).await;

    app.post_release(&json!({"ReleaseName": "R", "ReleaseId": "386", "TeamProject": "Devx"}))
        .await;
    let mails = app.smtp.wait_for(1).await;
    assert_eq!(recipients(&mails), ["ana@example.com"]);
    app.wait_until_idle().await;
    let status = app.release_status("Devx", "386").await;
    assert_eq!(status["problems"][0]["code"], "invalid_approvers");
    assert!(
        status["problems"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("not an address")
    );
    assert_eq!(
        app.smtp.received().len(),
        1,
        "the invalid address is not sent to"
    );
}

#[tokio::test]
async fn approvers_in_the_request_win_over_the_api_and_the_static_list() {
    let api = approvers_api(json!({"approvers": ["api@example.com"]}), 0).await;
    let url = format!("{}/approvers", api.uri());
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.request_approvers = Some(true);
        s.approvers_url = Some(url);
        s.approvers = Some("static@example.com".into());
    })
    .await;

    app.post_release(&json!({"ReleaseName": "R", "ReleaseId": "386", "TeamProject": "Devx", "Approvers": "req@example.com"}))
        .await;
    let mails = app.smtp.wait_for(1).await;
    app.wait_until_idle().await;
    assert_eq!(recipients(&mails), ["req@example.com"]);
    assert_eq!(app.smtp.received().len(), 1);
}

#[tokio::test]
async fn by_default_a_request_naming_approvers_is_refused_and_stores_nothing() {
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.request_approvers = None;
        s.approvers = Some("static@example.com".into());
    })
    .await;
    for approvers in [json!("me@example.com"), json!(["me@example.com"])] {
        let refused = app
            .post_release(&json!({"ReleaseName": "R", "ReleaseId": "386", "TeamProject": "Devx", "Approvers": approvers}))
            .await;
        let problem = assert_problem(refused, 400, "request-approvers-disabled").await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("DEPLOY_GATE_REQUEST_APPROVERS=true"),
            "{problem}"
        );
    }
    assert_eq!(app.get_release("Devx", "386").await.status(), 404);
    // Without `Approvers` the same pipeline gets the configured approvers.
    let created = app
        .post_release(&json!({"ReleaseName": "R", "ReleaseId": "386", "TeamProject": "Devx"}))
        .await;
    assert_eq!(created.status(), 202);
    assert_eq!(
        recipients(&app.smtp.wait_for(1).await),
        ["static@example.com"]
    );
}

#[tokio::test]
async fn the_static_list_is_used_when_there_is_no_approvers_api() {
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.approvers = Some("ana@example.com, bo@example.com".into())
    })
    .await;
    app.post_release(&json!({"ReleaseName": "R", "ReleaseId": "386", "TeamProject": "Devx"}))
        .await;
    let mails = app.smtp.wait_for(2).await;
    assert_eq!(recipients(&mails), ["ana@example.com", "bo@example.com"]);
}

#[tokio::test]
async fn the_static_list_is_used_when_the_approvers_api_names_nobody() {
    let api = approvers_api(json!({"approvers": []}), 1).await;
    let url = format!("{}/approvers", api.uri());
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.approvers_url = Some(url);
        s.approvers = Some("static@example.com".into());
    })
    .await;
    app.post_release(&json!({"ReleaseName": "R", "ReleaseId": "386", "TeamProject": "Devx"}))
        .await;
    assert_eq!(
        recipients(&app.smtp.wait_for(1).await),
        ["static@example.com"]
    );
}

#[tokio::test]
async fn a_release_without_any_approver_says_so_plainly() {
    let app = spawn_app_with(TestSmtp::running(), |_| {}).await;
    app.post_release(&json!({"ReleaseName": "R", "ReleaseId": "386", "TeamProject": "Devx"}))
        .await;
    app.wait_until_idle().await;

    let status = app.release_status("Devx", "386").await;
    assert_eq!(status["status"], "pending");
    assert_eq!(status["approvers_source"], "none");
    assert_eq!(status["approvers"], json!([]));
    assert_eq!(status["problems"][0]["code"], "no_approvers");
    assert!(
        status["problems"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("no approvers found")
    );
    assert!(app.smtp.received().is_empty());
}

/// Approves with the token of `mail`, answering the decision's JSON.
async fn approve(app: &crate::helpers::TestApp, mail: &crate::helpers::ReceivedMail) -> Value {
    let answer = app.decide(&mail.token(), "approve", None).await;
    assert_eq!(answer.status(), 200);
    answer.json().await.unwrap()
}

#[tokio::test]
async fn one_mailbox_under_several_spellings_is_one_approver_and_one_vote() {
    let app = spawn_app_with(TestSmtp::running(), |s| s.required_approvals = Some(2)).await;
    let created = app
        .post_release(&json!({
            "ReleaseName": "R", "ReleaseId": "386", "TeamProject": "Devx",
            "Approvers": [
                "ana@example.com", "\"ana\"@example.com", "Ana+deploy@EXAMPLE.com",
                "bo@example.com"
            ]
        }))
        .await;
    assert_eq!(created.status(), 202);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["approvals"]["required"], 2, "{created}");
    let mails = app.smtp.wait_for(2).await;
    app.wait_until_idle().await;
    assert_eq!(
        recipients(&app.smtp.received()),
        ["ana@example.com", "bo@example.com"],
        "each mailbox is written to once"
    );
    let ana = mails.iter().find(|m| m.to == ["ana@example.com"]).unwrap();
    let after = approve(&app, ana).await;
    assert_eq!(after["release"]["status"], "pending", "{after}");
    assert_eq!(after["release"]["approvals"]["approved"], 1);
}

#[tokio::test]
async fn the_requester_is_recognised_under_any_spelling_of_their_mailbox() {
    let app = spawn_app().await;
    for (id, requested_for) in [("1", "\"ana\"@example.com"), ("2", "ANA+ci@Example.COM")] {
        let name = format!("R{id}");
        let created = app
            .post_release(&json!({
                "ReleaseName": name, "ReleaseId": id, "TeamProject": "Devx",
                "Approvers": ["ana@example.com", "bo@example.com"],
                "RequestedFor": requested_for
            }))
            .await;
        assert_eq!(created.status(), 202, "{requested_for}");
        app.smtp.wait_for(2 * id.parse::<usize>().unwrap()).await;
        let ana = app.email_about("ana@example.com", &name);
        let after = approve(&app, &ana).await;
        let release = &after["release"];
        assert_eq!(release["requested_for"], "ana@example.com", "{release}");
        assert_eq!(release["approvers"][0]["counts"], false, "{release}");
        assert_eq!(release["status"], "pending", "{release}");
    }
}

#[tokio::test]
async fn a_release_whose_approvers_are_not_known_yet_never_waits_for_nobody() {
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/approvers"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&api)
        .await;
    let app = app_asking(&api).await;

    let created = app
        .post_release(&json!({"ReleaseName": "R", "ReleaseId": 386, "TeamProject": "Devx"}))
        .await;
    assert_eq!(created.status(), 202);
    let body: Value = created.json().await.unwrap();
    assert_eq!(
        body["waiting_for"],
        json!(["the approvers, not known yet"]),
        "{body}"
    );

    app.wait_until_idle().await;
    let status = app.release_status("Devx", "386").await;
    let waiting = status["waiting_for"].to_string();
    assert!(
        waiting.contains("the approvers, not known yet") && !waiting.contains("nobody"),
        "{status}"
    );
    assert!(
        status["problems"][0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("approvers API answered HTTP 503")),
        "{status}"
    );
}

#[tokio::test]
async fn a_long_list_of_approvers_is_stored_whole_in_its_order_and_each_is_written_to() {
    // More approvers than one insert statement holds (16): stored in chunks.
    let emails: Vec<String> = (1..=21)
        .map(|n| format!("approver{n:02}@example.com"))
        .collect();
    let api = approvers_api(json!({ "approvers": emails }), 1).await;
    let app = app_asking(&api).await;

    let created = app
        .post_release(&json!({"ReleaseName": "R", "ReleaseId": 386, "TeamProject": "Devx"}))
        .await;
    assert_eq!(created.status(), 202);
    let mails = app.smtp.wait_for(emails.len()).await;
    app.wait_until_idle().await;
    assert_eq!(recipients(&app.smtp.received()), emails, "one email each");
    let status = app.release_status("Devx", "386").await;
    let stored: Vec<&str> = (status["approvers"].as_array().unwrap().iter())
        .map(|a| a["email"].as_str().unwrap())
        .collect();
    assert_eq!(stored, emails, "every approver, in the order given");
    let last = mails.iter().find(|m| m.to == [emails[20].clone()]).unwrap();
    let after = approve(&app, last).await;
    assert_eq!(after["release"]["approvals"]["approved"], 1, "{after}");
}

/// A round's approvers are stored as one write (one statement on
/// PostgreSQL): an approver the round has is skipped and gets no job, each
/// new one gets every job asked for, in order, and the job that found them
/// is deleted with it.
#[tokio::test]
async fn approvers_added_to_a_round_skip_those_it_has_and_queue_jobs_only_for_the_new() {
    use chrono::{Duration, Utc};
    use deploy_gate::domain::{
        approver::ApproverEmail,
        channel::ChannelKind,
        job::{ApprovalJob, JobKind, NewJob, Subject},
        policy::{NewApprovers, ResolvedApprovers, Rule},
        release::{NewRelease, ReleaseKey},
    };

    let app = spawn_app().await;
    // Everything due tomorrow, so the app's worker leaves it alone.
    let later = Utc::now() + Duration::days(1);
    let key = ReleaseKey::parse("Devx", "901", "").unwrap();
    let release = NewRelease::parse(key, "R", None).unwrap();
    let first = ApproverEmail::parse("first@example.com").unwrap();
    let second = ApproverEmail::parse("second@example.com").unwrap();
    let resolved = ResolvedApprovers {
        approvers: Vec::new(),
        source: "static".to_owned(),
        problem: None,
        rule: Rule::from_required(None),
        channels: Vec::new(),
    };

    let mut tx = app.store.begin().await.unwrap();
    let deadline = later + Duration::days(1);
    let inserted = tx.insert_release(&release, None, deadline, later).await;
    let release_id = inserted.unwrap().expect("a new release").id;
    let finding = NewJob {
        kind: JobKind::ResolveApprovers,
        release_id,
        subject: Subject::Release,
        run_at: later,
    };
    tx.enqueue(&[finding]).await.unwrap();
    let only_first = [(&first, later)];
    let new = NewApprovers {
        release_id,
        approvers: &only_first,
        jobs: &[],
        resolved: &resolved,
        now: later,
    };
    let added = tx.add_approvers(&new, None).await.unwrap();
    assert!(added.ids[0].is_some() && !added.queued_jobs && !added.open_callbacks);
    tx.commit().await.unwrap();

    let lease = later + Duration::minutes(1);
    let claimed = app.store.claim_job(later, lease).await.unwrap();
    let finding = claimed.expect("the job finding the approvers");
    let jobs = [
        ApprovalJob {
            kind: JobKind::SendApprovalEmail,
            channel: None,
        },
        ApprovalJob {
            kind: JobKind::NotifyChannel,
            channel: Some(ChannelKind::Teams),
        },
    ];
    let both = [
        (&first, later),
        (&second, later + Duration::milliseconds(1)),
    ];
    let new = NewApprovers {
        release_id,
        approvers: &both,
        jobs: &jobs,
        resolved: &resolved,
        now: later,
    };
    let mut tx = app.store.begin().await.unwrap();
    let added = tx.add_approvers(&new, Some(finding.id)).await.unwrap();
    tx.commit().await.unwrap();

    assert_eq!(added.ids[0], None, "the approver the round has is skipped");
    let second_id = added.ids[1].expect("the new approver is stored");
    assert!(added.queued_jobs && !added.open_callbacks);
    assert_eq!(app.rows_in("approval").await, 2);
    assert_eq!(
        app.rows_in("job").await,
        2,
        "the new approver's two jobs, no other"
    );
    let mut claimed = Vec::new();
    while let Some(job) = app.store.claim_job(later, lease).await.unwrap() {
        claimed.push((job.kind, job.approval_id, job.channel));
    }
    claimed.sort_by_key(|(kind, ..)| kind.as_str());
    assert_eq!(
        claimed,
        [
            (
                JobKind::NotifyChannel,
                Some(second_id),
                Some(ChannelKind::Teams)
            ),
            (JobKind::SendApprovalEmail, Some(second_id), None),
        ]
    );
    let round = app.store.release_by_id(release_id).await.unwrap().unwrap();
    let emails: Vec<_> = round.approvals.iter().map(|a| a.email.as_str()).collect();
    assert_eq!(emails, ["first@example.com", "second@example.com"]);
    assert_eq!(round.release.approvers_source.as_deref(), Some("static"));
}
