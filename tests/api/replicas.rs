//! Two instances on one database, as replicas behind a load balancer: the work
//! is shared, nothing is done twice, and each sees what the other stored.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::helpers::{ReceivedMail, TestApp, spawn_app, wait_until};

/// The two approvers of release number `n`.
fn approvers_of(n: usize) -> [String; 2] {
    [
        format!("ana.{n}@example.com"),
        format!("bo.{n}@example.com"),
    ]
}

fn release(n: usize) -> Value {
    json!({"ReleaseName": format!("R{n}"), "ReleaseId": n.to_string(), "TeamProject": "Devx",
           "Approvers": approvers_of(n)})
}

/// Waits for `count` emails and for an idle queue (nothing due, nothing to
/// retry: no email can follow), and checks no more came.
async fn exactly(app: &TestApp, replica: &TestApp, count: usize) -> Vec<ReceivedMail> {
    app.smtp.wait_for(count).await;
    app.wait_until_idle().await;
    replica.wait_until_idle().await;
    let mails = app.smtp.received();
    assert_eq!(mails.len(), count, "no email is sent twice");
    mails
}

#[tokio::test]
async fn two_replicas_share_fifty_releases_email_each_approver_once_and_see_each_others_decisions()
{
    let a = spawn_app().await;
    let b = a.spawn_replica().await;
    let replicas = [&a, &b];

    let created = futures_util::future::join_all(
        (0..50).map(|n| async move { replicas[n % 2].post_release(&release(n)).await }),
    )
    .await;
    assert!(created.iter().all(|answer| answer.status() == 202));

    let mails = exactly(&a, &b, 100).await;
    let mut tokens = BTreeMap::new();
    for mail in &mails {
        assert_eq!(mail.to.len(), 1);
        let previous = tokens.insert(mail.to[0].clone(), mail.token());
        assert!(previous.is_none(), "{} got two emails", mail.to[0]);
    }
    let expected: Vec<String> = (0..50).flat_map(approvers_of).collect();
    assert!(expected.iter().all(|to| tokens.contains_key(to)));

    for n in 0..50 {
        let [ana, bo] = approvers_of(n);
        let (first, second) = (replicas[n % 2], replicas[(n + 1) % 2]);
        assert_eq!(
            first.decide(&tokens[&ana], "approve", None).await.status(),
            200
        );
        let seen = second.release_status("Devx", &n.to_string()).await;
        assert_eq!(seen["approvals"]["approved"], 1, "{seen}");
        assert_eq!(
            second.decide(&tokens[&bo], "approve", None).await.status(),
            200
        );
        let seen = first.release_status("Devx", &n.to_string()).await;
        assert_eq!(seen["status"], "approved", "{seen}");
    }
}

#[tokio::test]
async fn the_same_release_created_at_once_on_two_replicas_is_stored_once_and_mailed_once() {
    let a = spawn_app().await;
    let b = a.spawn_replica().await;
    let replicas = [&a, &b];

    let answers = futures_util::future::join_all(
        (0..40).map(|n| async move { replicas[n % 2].post_release(&release(7)).await }),
    )
    .await;
    let created = answers.iter().filter(|r| r.status() == 202).count();
    let known = answers.iter().filter(|r| r.status() == 200).count();
    assert_eq!((created, known), (1, 39));

    let mut to: Vec<String> = exactly(&a, &b, 2)
        .await
        .iter()
        .flat_map(|mail| mail.to.clone())
        .collect();
    to.sort();
    assert_eq!(to, approvers_of(7));
    for replica in replicas {
        let status = replica.release_status("Devx", "7").await;
        assert_eq!(status["approvals"]["required"], 2, "{status}");
    }
}

/// Release `n`'s status and its approval view for `token`, as `replica` answers
/// them: `GET /release/…`, a `POST /release` poll and `GET /approval?token`.
async fn seen_by(replica: &TestApp, n: usize, token: &str) -> (Value, Value, Value) {
    let got = replica.release_status("Devx", &n.to_string()).await;
    let polled = replica.post_release(&release(n)).await;
    assert_eq!(polled.status(), 200);
    let viewed = replica
        .client
        .get(format!("{}/approval", replica.address))
        .query(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(viewed.status(), 200);
    (
        got,
        polled.json().await.unwrap(),
        viewed.json().await.unwrap(),
    )
}

#[tokio::test]
async fn a_decision_on_one_replica_reaches_the_polls_and_views_the_other_had_answered_before() {
    let a = spawn_app().await;
    let b = a.spawn_replica().await;
    assert_eq!(a.post_release(&release(3)).await.status(), 202);
    let mails = exactly(&a, &b, 2).await;
    let token_of = |to: &str| {
        mails
            .iter()
            .find(|mail| mail.to[0] == to)
            .map(|mail| mail.token())
            .unwrap()
    };
    let [ana, bo] = approvers_of(3).map(|to| token_of(&to));

    // Asked twice, so that the second answers come from what b kept.
    for _ in 0..2 {
        let (got, polled, viewed) = seen_by(&b, 3, &bo).await;
        assert_eq!(got["status"], "pending", "{got}");
        assert_eq!(polled["status"], "pending", "{polled}");
        assert_eq!(viewed["release"]["approvals"]["approved"], 0, "{viewed}");
    }

    assert_eq!(a.decide(&ana, "approve", None).await.status(), 200);
    wait_until("b to see the first approval taken on a", || async {
        let (got, polled, viewed) = seen_by(&b, 3, &bo).await;
        let approved = |answer: &Value| answer["approvals"]["approved"] == 1;
        (approved(&got) && approved(&polled) && approved(&viewed["release"])).then_some(())
    })
    .await;

    assert_eq!(a.decide(&bo, "approve", None).await.status(), 200);
    wait_until("b to see the release approved on a", || async {
        let (got, polled, viewed) = seen_by(&b, 3, &bo).await;
        let approved = got["status"] == "approved"
            && polled["status"] == "approved"
            && viewed["decision"] == "approved";
        approved.then_some(())
    })
    .await;
    let (.., viewed) = seen_by(&b, 3, &bo).await;
    assert_eq!(viewed["can_decide"], false, "{viewed}");
}
