//! The seed flow, end to end, as a pipeline and approvers use it.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_release_is_approved_once_every_approver_clicks_their_emailed_link() {
    let app = spawn_app().await;

    let created = app
        .post_release(&json!({
            "ReleaseName": "Desafio-CD", "ReleaseId": "386", "TeamProject": "Devx",
            "Approvers": ["ana@example.com", "bo@example.com"]
        }))
        .await;
    assert_eq!(created.status(), 202);
    assert_eq!(created.headers()["location"], "/release/Devx/386");
    let body: serde_json::Value = created.json().await.unwrap();
    assert_eq!(body["status"], "pending");
    assert_eq!(body["approved"], false);

    let mails = app.smtp.wait_for(2).await;
    let mut recipients: Vec<_> = mails.iter().flat_map(|m| m.to.clone()).collect();
    recipients.sort();
    assert_eq!(recipients, ["ana@example.com", "bo@example.com"]);

    for (i, mail) in mails.iter().enumerate() {
        assert!(mail.text().contains("Desafio-CD") && mail.html().contains("Desafio-CD"));
        let link = mail.link();
        assert!(
            link.starts_with(&format!("{}/approval?token=", app.address)),
            "{link}"
        );

        let page = app
            .client
            .get(&link)
            .header("Accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("Desafio-CD") && html.contains("Approve") && html.contains("Reject"));

        let decided = app
            .client
            .post(format!("{}/approval", app.address))
            .form(&[
                ("token", mail.token().as_str()),
                ("decision", "approve"),
                ("comment", "ship it"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(decided.status(), 200);
        let status = app.release_status("Devx", "386").await;
        let expected = if i == 0 { "pending" } else { "approved" };
        assert_eq!(status["status"], expected, "after {} approval(s)", i + 1);
    }

    let repeat = app
        .post_release(
            &json!({"ReleaseName": "Desafio-CD", "ReleaseId": 386, "TeamProject": "Devx"}),
        )
        .await;
    assert_eq!(repeat.status(), 200);
    let status: serde_json::Value = repeat.json().await.unwrap();
    assert_eq!(status["status"], "approved");
    assert_eq!(status["approved"], true);
    assert_eq!(
        status["approvals"],
        json!({"required": 2, "approved": 2, "rejected": 0, "pending": 0})
    );
    assert!(
        status["approvers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["comment"] == "ship it" && a["decision"] == "approved")
    );
    assert_eq!(app.smtp.received().len(), 2, "no email is sent twice");
}
