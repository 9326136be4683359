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

/// A release stored without approvers, with its job that resolves them due
/// at `at`: the release's id and the job's.
async fn release_awaiting_approvers(
    app: &TestApp,
    id: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> (i64, i64) {
    use deploy_gate::domain::{
        job::{JobKind, NewJob, Subject},
        release::{NewRelease, ReleaseKey},
    };

    let key = ReleaseKey::parse("Devx", id, "").unwrap();
    let release = NewRelease::parse(key, "R", None).unwrap();
    let mut tx = app.store.begin().await.unwrap();
    let deadline = at + chrono::Duration::days(1);
    let inserted = tx.insert_release(&release, None, deadline, at);
    let release_id = inserted.await.unwrap().expect("a new release").id;
    let resolve = NewJob {
        kind: JobKind::ResolveApprovers,
        release_id,
        subject: Subject::Release,
        run_at: at,
    };
    tx.enqueue(&[resolve]).await.unwrap();
    tx.commit().await.unwrap();
    let job = app.store.claim_job(at, at + chrono::Duration::minutes(1));
    let job = job.await.unwrap().expect("the resolving job");
    assert_eq!(
        (job.release_id, job.kind),
        (release_id, JobKind::ResolveApprovers)
    );
    (release_id, job.id)
}

/// A release's approvers found by its job are stored with the job completed,
/// and the first of their emails claimed for that job's worker, in one write:
/// each with the round as it is after it; the emails past the lease's number
/// are left to any worker. With a callback registration not yet delivered
/// nothing is written (its feed needs a line in the same transaction), also
/// when the registration was committed while the write waited for the
/// release's lock.
#[tokio::test]
async fn approvers_found_are_stored_and_their_first_emails_claimed_in_one_write() {
    use chrono::{Duration, Utc};
    use deploy_gate::domain::{
        approver::ApproverEmail,
        callback::PlanCallback,
        job::{ApprovalJob, JobKind, Lease},
        policy::{NewApprovers, ResolvedApprovers, Rule},
    };

    let app = spawn_app_with(TestSmtp::running(), |_| {}).await;
    // Everything due tomorrow, so the app's worker leaves it alone.
    let later = Utc::now() + Duration::days(1);
    let lease = Lease {
        most: 2,
        until: later + Duration::minutes(1),
    };
    let emails: Vec<_> = (1..=3)
        .map(|n| ApproverEmail::parse(&format!("a{n}@example.com")).unwrap())
        .collect();
    let approvers: Vec<_> = (0..)
        .zip(&emails)
        .map(|(n, e)| (e, later + Duration::milliseconds(n)))
        .collect();
    let resolved = ResolvedApprovers {
        approvers: emails.clone(),
        source: "approvers_url".to_owned(),
        problem: None,
        rule: Rule::from_required(None),
        channels: Vec::new(),
    };
    let jobs = [ApprovalJob {
        kind: JobKind::SendApprovalEmail,
        channel: None,
    }];
    let found = |release_id| NewApprovers {
        release_id,
        approvers: &approvers,
        jobs: &jobs,
        resolved: &resolved,
        now: later,
    };
    let email_kind = JobKind::SendApprovalEmail;

    let (release_id, job_id) = release_awaiting_approvers(&app, "1", later).await;
    let claimed = app
        .store
        .approvers_found(&found(release_id), job_id, email_kind, lease)
        .await
        .unwrap()
        .expect("stored: no callback registration");
    assert_eq!(claimed.len(), 2, "as many as the lease holds");
    assert!(claimed[0].id < claimed[1].id, "oldest first");
    for job in &claimed {
        assert_eq!((job.release_id, job.kind), (release_id, email_kind));
        let round = job
            .release
            .as_ref()
            .expect("the round, read with the claim");
        assert_eq!(
            round.release.approvers_source.as_deref(),
            Some("approvers_url")
        );
        let stored: Vec<&str> = round.approvals.iter().map(|a| a.email.as_str()).collect();
        assert_eq!(
            stored,
            ["a1@example.com", "a2@example.com", "a3@example.com"]
        );
        assert!(round.approval(job.approval_id.unwrap()).is_some());
    }
    // The resolving job is done, and the third email is any worker's.
    let next = app
        .store
        .claim_job(later, lease.until)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((next.release_id, next.kind), (release_id, email_kind));
    assert!(next.id > claimed[1].id);
    assert!(
        app.store
            .claim_job(later, lease.until)
            .await
            .unwrap()
            .is_none()
    );

    // A callback registration not yet delivered: nothing written.
    let callback = PlanCallback {
        plan_url: "https://dev.azure.com/contoso/".into(),
        project_id: "p1".into(),
        hub_name: "checks".into(),
        plan_id: "plan".into(),
        job_id: "job".into(),
        timeline_id: None,
        task_instance_id: "task".into(),
        auth_token: Secret::new("t"),
    };
    let (release_id, job_id) = release_awaiting_approvers(&app, "2", later).await;
    let mut tx = app.store.begin_holding(release_id).await.unwrap();
    tx.save_callback(release_id, &callback, later)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let written = app
        .store
        .approvers_found(&found(release_id), job_id, email_kind, lease)
        .await;
    assert!(written.unwrap().is_none());
    let round = app.store.release_by_id(release_id).await.unwrap().unwrap();
    assert!(round.approvals.is_empty() && round.release.approvers_source.is_none());

    // The same, registered while the write waits for the release's lock.
    let (release_id, job_id) = release_awaiting_approvers(&app, "3", later).await;
    let mut tx = app.store.begin_holding(release_id).await.unwrap();
    tx.save_callback(release_id, &callback, later)
        .await
        .unwrap();
    let store = app.store.clone();
    let (emails, resolved) = (emails.clone(), resolved.clone());
    let waiting = tokio::spawn(async move {
        let approvers: Vec<_> = emails.iter().map(|e| (e, later)).collect();
        let new = NewApprovers {
            release_id,
            approvers: &approvers,
            jobs: &jobs,
            resolved: &resolved,
            now: later,
        };
        store.approvers_found(&new, job_id, email_kind, lease).await
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "it waits for the release's lock");
    tx.commit().await.unwrap();
    assert!(waiting.await.unwrap().unwrap().is_none());
    let round = app.store.release_by_id(release_id).await.unwrap().unwrap();
    assert!(round.approvals.is_empty());
    // Both resolving jobs left to run again once their leases end.
    let after_their_leases = later + Duration::minutes(2);
    let mut left = Vec::new();
    let held = after_their_leases + Duration::minutes(1);
    while let Some(job) = app.store.claim_job(after_their_leases, held).await.unwrap() {
        left.push(job.id);
    }
    assert!(left.contains(&job_id), "{left:?}");
}
