// The job queue as operators see it: a job that keeps failing is given up after the
// configured attempts, shown on its release and counted; a job that runs longer
// than its lease keeps it, so no replica runs it a second time.

use std::time::Duration;

use deploy_gate::secret::Secret;
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

use crate::{
    fakes::{
        SlowRelay, problems, release_with_email_jobs, sample, scrape, settle, wait_for_problem,
    },
    helpers::{TestApp, TestSmtp, spawn_app_with},
};

fn release(id: &str) -> Value {
    json!({"ReleaseName": "R", "ReleaseId": id, "TeamProject": "Devx", "Approvers": "ana@example.com"})
}

/// The job-attempt counter of `kind` with `outcome`, as `GET /metrics` shows it.
async fn job_attempts(app: &TestApp, kind: &str, outcome: &str) -> f64 {
    let series = format!(r#"deploy_gate_jobs_total{{kind="{kind}",outcome="{outcome}"}}"#);
    sample(&scrape(app).await, &series)
}

#[tokio::test]
async fn an_email_the_smtp_server_keeps_refusing_is_given_up_after_the_configured_attempts() {
    let smtp = TestSmtp::running();
    smtp.refuse("ana@example.com");
    let app = spawn_app_with(smtp, |s| s.job_max_attempts = Some(3)).await;
    assert_eq!(app.post_release(&release("1")).await.status(), 202);

    let dead = wait_for_problem(&app, "Devx", "1", "", "job_dead").await;
    let detail = dead["detail"].as_str().unwrap();
    assert!(
        detail.contains(
            "sending the approval email to ana@example.com failed 3 times and was given up"
        ),
        "{detail}"
    );
    let status = app.release_status("Devx", "1").await;
    assert_eq!(status["problems"].as_array().unwrap().len(), 1, "{status}");
    assert_eq!(status["status"], "pending");
    assert_eq!(status["approvers"][0]["notified"], false);
    let kind = "send_approval_email";
    assert_eq!(job_attempts(&app, kind, "retried").await, 2.0);
    assert_eq!(job_attempts(&app, kind, "dead").await, 1.0);
    assert_eq!(job_attempts(&app, kind, "succeeded").await, 0.0);
    let metrics = scrape(&app).await;
    assert_eq!(
        sample(&metrics, r#"deploy_gate_emails_total{outcome="failed"}"#),
        3.0
    );

    // Given up is final: the mailbox coming back and time passing send nothing.
    app.smtp.accept("ana@example.com");
    app.advance_clock(Duration::from_secs(3600)).await;
    app.drain_jobs().await;
    assert!(app.smtp.received().is_empty());
    assert_eq!(job_attempts(&app, kind, "dead").await, 1.0);
    assert_eq!(problems(&app, "Devx", "1", "").await, [dead]);
}

#[tokio::test]
async fn an_approvers_api_answering_500_every_time_is_given_up_after_the_configured_attempts() {
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/approvers"))
        .respond_with(ResponseTemplate::new(500).set_body_string("directory backend down"))
        .mount(&api)
        .await;
    let url = format!("{}/approvers", api.uri());
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.approvers_url = Some(url);
        s.job_max_attempts = Some(2);
    })
    .await;
    let body = json!({"ReleaseName": "R", "ReleaseId": "2", "TeamProject": "Devx"});
    assert_eq!(app.post_release(&body).await.status(), 202);

    let dead = wait_for_problem(&app, "Devx", "2", "", "job_dead").await;
    let detail = dead["detail"].as_str().unwrap();
    assert!(
        detail.contains("resolving approvers failed 2 times and was given up")
            && detail.contains("500"),
        "{detail}"
    );
    assert_eq!(api.received_requests().await.unwrap().len(), 2);
    assert_eq!(
        job_attempts(&app, "resolve_approvers", "retried").await,
        1.0
    );
    assert_eq!(job_attempts(&app, "resolve_approvers", "dead").await, 1.0);

    app.advance_clock(Duration::from_secs(3600)).await;
    app.drain_jobs().await;
    assert_eq!(
        api.received_requests().await.unwrap().len(),
        2,
        "a dead job is not attempted again"
    );
    assert!(app.smtp.received().is_empty());
}

#[tokio::test]
async fn an_email_whose_sending_outlives_the_job_lease_is_sent_once_beside_a_replica() {
    // Renewed every third of a lease, a 4 s lease survives a renewal up to 2.6 s
    // late on a loaded machine; the delay (10 s) stays under the client's timeout.
    let lease = Duration::from_secs(4);
    let smtp = TestSmtp::running();
    // The SMTP greeting comes two and a half leases late.
    let relay = SlowRelay::start(smtp.port, lease * 5 / 2).await;
    let smtp_url = format!("smtp://127.0.0.1:{}", relay.port);
    let app = spawn_app_with(smtp, |s| {
        s.job_lease = Some(lease);
        s.smtp_url = Some(Secret::new(smtp_url));
    })
    .await;
    let replica = app.spawn_replica().await;

    assert_eq!(app.post_release(&release("3")).await.status(), 202);
    let mails = app.smtp.wait_for(1).await;
    assert_eq!(mails[0].to, ["ana@example.com"]);
    settle(&app).await;
    assert_eq!(
        relay.connections(),
        1,
        "no worker of either replica started the send again"
    );
    assert_eq!(app.smtp.received().len(), 1);
    let status = replica.release_status("Devx", "3").await;
    assert_eq!(status["approvers"][0]["notified"], true);
    assert_eq!(status["problems"], json!([]));
}

#[tokio::test]
async fn an_approvers_api_answering_after_the_lease_is_asked_once_beside_a_replica() {
    // Renewed every third of a lease, a 4 s lease survives a renewal up to 2.6 s
    // late on a loaded machine; the delay (10 s) stays under the client's timeout.
    let lease = Duration::from_secs(4);
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/approvers"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"approvers": ["ana@example.com"]}))
                .set_delay(lease * 5 / 2),
        )
        .mount(&api)
        .await;
    let url = format!("{}/approvers", api.uri());
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.job_lease = Some(lease);
        s.approvers_url = Some(url);
    })
    .await;
    let replica = app.spawn_replica().await;

    let body = json!({"ReleaseName": "R", "ReleaseId": "4", "TeamProject": "Devx"});
    assert_eq!(replica.post_release(&body).await.status(), 202);
    app.smtp.wait_for(1).await;
    settle(&app).await;
    assert_eq!(
        api.received_requests().await.unwrap().len(),
        1,
        "no worker of either replica asked the approvers API again"
    );
    assert_eq!(app.smtp.received().len(), 1);
    assert_eq!(app.release_status("Devx", "4").await["problems"], json!([]));
}

/// The worker that found a release's approvers claims their emails together:
/// only that release's jobs of that kind, only those due and not held by
/// another worker, at most as many as asked, oldest first, each with the
/// release.
#[tokio::test]
async fn a_releases_due_jobs_of_one_kind_are_claimed_together_and_no_others() {
    use chrono::{Duration, Utc};
    use deploy_gate::domain::job::JobKind;

    let app = spawn_app_with(TestSmtp::running(), |_| {}).await;
    // Everything due tomorrow, so the app's worker leaves it alone.
    let later = Utc::now() + Duration::days(1);
    let lease = later + Duration::minutes(1);
    let first = release_with_email_jobs(&app, "1", 5, later).await;
    let other = release_with_email_jobs(&app, "2", 2, later).await;
    let emails = JobKind::SendApprovalEmail;

    // Another worker holds the first release's first email.
    let held = app.store.claim_job(later, lease).await.unwrap().unwrap();
    assert_eq!((held.release_id, held.kind), (first, emails));
    // Not yet due: nothing.
    let now = Utc::now();
    let early = app
        .store
        .claim_release_jobs(first, emails, 16, now, lease)
        .await;
    assert!(early.unwrap().is_empty());

    let claimed = app
        .store
        .claim_release_jobs(first, emails, 3, later, lease)
        .await;
    let claimed = claimed.unwrap();
    let ids: Vec<i64> = claimed.iter().map(|job| job.id).collect();
    assert_eq!(
        ids,
        [held.id + 1, held.id + 2, held.id + 3],
        "oldest first, the held one left"
    );
    for job in &claimed {
        assert_eq!((job.release_id, job.kind), (first, emails));
        let release = job
            .release
            .as_ref()
            .expect("the release read with the claim");
        assert_eq!(release.release.id, first);
        assert_eq!(release.approvals.len(), 5);
        assert!(release.approval(job.approval_id.unwrap()).is_some());
    }
    let rest = app
        .store
        .claim_release_jobs(first, emails, 16, later, lease)
        .await;
    let rest: Vec<i64> = rest.unwrap().iter().map(|job| job.id).collect();
    assert_eq!(rest, [held.id + 4]);
    let none = app
        .store
        .claim_release_jobs(first, emails, 16, later, lease)
        .await;
    assert!(none.unwrap().is_empty(), "every email is held");

    // The first release's deadline and the other release's emails are left to any worker.
    let theirs = app
        .store
        .claim_release_jobs(other, emails, 16, later, lease)
        .await;
    assert_eq!(theirs.unwrap().len(), 2);
    let next = app.store.claim_job(later, lease).await.unwrap().unwrap();
    assert_eq!(
        (next.release_id, next.kind),
        (first, JobKind::ExpireRelease)
    );
}
