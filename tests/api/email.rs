// The approval email as a mail client sees it: MIME parts, headers, overridable
// templates; and as the database records it once sent.

use mail_parser::MessageParser;
use serde_json::json;

use crate::{
    fakes::release_with_email_jobs,
    helpers::{TestSmtp, spawn_app_with},
};

#[tokio::test]
async fn the_email_is_multipart_with_both_parts_the_link_and_proper_headers() {
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.mail_from = Some("Deploy Gate <gate@deploy.example>".into());
        s.mail_reply_to = Some("platform@example.com".into());
    })
    .await;
    app.post_release(&json!({
        "ReleaseName": "Desafio-CD", "ReleaseId": "386", "TeamProject": "Devx", "Stage": "prod",
        "Approvers": ["ana@example.com"]
    }))
    .await;
    let mail = app.smtp.wait_for(1).await.remove(0);
    let parsed = MessageParser::default().parse(&mail.raw).expect("MIME");

    assert_eq!(
        parsed.subject(),
        Some("Approval needed: Desafio-CD (Devx #386, prod)")
    );
    let from = parsed.from().and_then(|a| a.first()).expect("From");
    assert_eq!(from.address(), Some("gate@deploy.example"));
    assert_eq!(from.name(), Some("Deploy Gate"));
    let reply_to = parsed.reply_to().and_then(|a| a.first()).expect("Reply-To");
    assert_eq!(reply_to.address(), Some("platform@example.com"));
    let to = parsed.to().and_then(|a| a.first()).expect("To");
    assert_eq!(to.address(), Some("ana@example.com"));
    assert!(parsed.date().is_some(), "a Date header");
    let message_id = parsed.message_id().expect("a Message-ID");
    assert!(
        message_id.starts_with("approval.") && message_id.ends_with("@deploy.example"),
        "{message_id}"
    );

    assert_eq!(parsed.text_body_count(), 1);
    assert_eq!(parsed.html_body_count(), 1);
    let (text, html) = (mail.text(), mail.html());
    let link = mail.link();
    assert!(text.contains(&link));
    assert!(html.contains(&link.replace('/', "&#x2f;")), "{html}");
    for part in [&text, &html] {
        assert!(part.contains("Desafio-CD") && part.contains("Devx") && part.contains("prod"));
        assert!(part.contains("Decide by"), "the deadline is stated");
        // A person gets the link, not a raw token to paste into an API call.
        assert!(!part.contains("API clients"), "{part}");
    }
    assert!(
        html.contains(&format!(
            "<span style=\"word-break: break-all;\">{}",
            link.replace('/', "&#x2f;")
        )),
        "the fallback address wraps instead of running off the edge: {html}"
    );
}

#[tokio::test]
async fn templates_from_the_configured_folder_replace_the_built_in_ones() {
    let templates = tempfile::tempdir().unwrap();
    std::fs::write(
        templates.path().join("approval_email_subject.txt"),
        "[deploy] {{ release_name }} needs you",
    )
    .unwrap();
    std::fs::write(
        templates.path().join("approval_email.txt"),
        "Hi {{ approver }}, decide on {{ release_name }} by {{ deadline }}: {{ link }}\n",
    )
    .unwrap();
    let folder = templates.path().to_owned();
    let app = spawn_app_with(TestSmtp::running(), move |s| {
        s.mail_template_dir = Some(folder);
    })
    .await;
    app.post_release(&json!({
        "ReleaseName": "R9", "ReleaseId": 9, "TeamProject": "Devx", "Approvers": "bo@example.com"
    }))
    .await;
    let mail = app.smtp.wait_for(1).await.remove(0);
    let parsed = MessageParser::default().parse(&mail.raw).unwrap();
    assert_eq!(parsed.subject(), Some("[deploy] R9 needs you"));
    assert!(
        mail.text()
            .starts_with("Hi bo@example.com, decide on R9 by ")
    );
    assert!(
        mail.html().contains("Review and decide"),
        "HTML stays built in"
    );
    // The link in the custom template still works.
    let view = app.client.get(mail.link()).send().await.unwrap();
    assert_eq!(view.status(), 200);
}

/// Right-to-left overrides and other bidi controls (`invoice\u{202E}fdp.exe` shows as
/// `invoiceexe.pdf`) turn up in emails and pages as a visible `[U+202E]`.
#[tokio::test]
async fn bidi_controls_in_names_are_shown_neutralised_in_emails_and_pages() {
    let has_bidi = |text: &str| {
        text.chars().any(|c| {
            matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
    };
    let app = spawn_app_with(TestSmtp::running(), |_| {}).await;
    let created = app
        .post_release(&json!({
            "ReleaseName": "invoice\u{202E}fdp.exe", "ReleaseId": "1", "TeamProject": "Devx",
            "Approvers": ["ana@example.com"]
        }))
        .await;
    assert_eq!(created.status(), 202);
    let mail = &app.smtp.wait_for(1).await[0];
    for (part, text) in [
        ("subject", mail.subject()),
        ("text", mail.text()),
        ("html", mail.html()),
    ] {
        assert!(!has_bidi(&text), "{part}: {text:?}");
        assert!(text.contains("invoice[U+202E]fdp.exe"), "{part}: {text:?}");
    }
    let page = |path: String| {
        let request = app.client.get(path).header("Accept", "text/html");
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let approval_page = page(mail.link()).await;
    assert!(!has_bidi(&approval_page) && approval_page.contains("invoice[U+202E]fdp.exe"));

    let decided = app
        .decide(&mail.token(), "approve", Some("fine\u{2067}by me"))
        .await;
    assert_eq!(decided.status(), 200);
    for path in ["/releases", "/releases/Devx/1"] {
        let shown = page(format!("{}{path}", app.address)).await;
        assert!(!has_bidi(&shown), "{path}: {shown}");
        assert!(shown.contains("invoice[U+202E]fdp.exe"), "{path}: {shown}");
    }
    let timeline = page(format!("{}/releases/Devx/1", app.address)).await;
    assert!(timeline.contains("fine[U+2067]by me"), "{timeline}");
}

/// Emails accepted at the same time are recorded at once (on PostgreSQL in
/// groups, one statement each): each approval gets its own time, an email
/// whose link was superseded meanwhile is not recorded as sent, and every
/// job is done.
#[tokio::test]
async fn emails_recorded_at_the_same_time_each_mark_their_own_approval_and_finish_their_job() {
    use chrono::{Duration, DurationRound as _, Utc};
    use deploy_gate::domain::job::JobKind;

    let app = spawn_app_with(TestSmtp::running(), |_| {}).await;
    // Everything due tomorrow, so the app's worker leaves it alone; in
    // milliseconds, as times are stored.
    let later = Utc::now() + Duration::days(1);
    let later = later.duration_trunc(Duration::milliseconds(1)).unwrap();
    let release_id = release_with_email_jobs(&app, "902", 5, later).await;
    let lease = later + Duration::minutes(1);
    let emails = JobKind::SendApprovalEmail;
    let claim = app
        .store
        .claim_release_jobs(release_id, emails, 16, later, lease);
    let jobs = claim.await.unwrap();
    assert_eq!(jobs.len(), 5);
    let round = app.store.release_by_id(release_id).await.unwrap().unwrap();
    let generation = round.approvals[0].link_generation;
    // The last approver's link is superseded while its email is on its way.
    let superseded = round.approvals[4].id;
    let mut tx = app.store.begin().await.unwrap();
    tx.supersede_links(superseded).await.unwrap();
    tx.commit().await.unwrap();

    let sent_at = |n: i64| later + Duration::seconds(n);
    let records = (0..).zip(&jobs).map(|(n, job)| {
        let approval = job.approval_id.unwrap();
        app.store
            .record_email_sent(job.id, approval, generation, sent_at(n))
    });
    for recorded in futures_util::future::join_all(records).await {
        recorded.unwrap();
    }

    let round = app.store.release_by_id(release_id).await.unwrap().unwrap();
    for (n, job) in (0..).zip(&jobs) {
        let approval = round.approval(job.approval_id.unwrap()).unwrap();
        let expected = (approval.id != superseded).then(|| sent_at(n));
        assert_eq!(approval.email_sent_at, expected, "{}", approval.email);
    }
    assert_eq!(
        app.rows_in("job").await,
        1,
        "every email's job is done, the deadline's left"
    );
}
