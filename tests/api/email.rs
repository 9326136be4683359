// The approval email as a mail client sees it: MIME parts, headers, overridable templates.

use mail_parser::MessageParser;
use serde_json::json;

use crate::helpers::{TestSmtp, spawn_app_with};

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
    }
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
