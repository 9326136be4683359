//! The poll cache with many releases at once (src/api/shared/poll_cache.rs): it keeps one
//! answer per release at one version of the database and drops them all at the next
//! commit, so an answer kept for one release is never served for another, and none
//! is served after a commit changed its release, whatever was polled in between.
//!
//! Not covered here: the cache's size limit (20,000 answers, past which those polled least
//! lately go) would take 20,000 releases created over HTTP, too slow for this suite; the
//! unit tests of `src/store/kept.rs` and `poll_cache.rs` cover it.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::helpers::{ReceivedMail, TestApp, spawn_app};

const RELEASES: u32 = 24;

/// Release `R{id}` of Devx with its own approver `a{id}@example.com`.
fn release(id: u32) -> Value {
    json!({"ReleaseName": format!("R{id}"), "ReleaseId": id.to_string(), "TeamProject": "Devx",
           "Approvers": [format!("a{id}@example.com")]})
}

/// Creates the releases and returns each one's approval email, by release id.
async fn created(app: &TestApp) -> BTreeMap<u32, ReceivedMail> {
    for id in 1..=RELEASES {
        assert_eq!(app.post_release(&release(id)).await.status(), 202);
    }
    let mails = app.smtp.wait_for(RELEASES as usize).await;
    app.wait_until_idle().await;
    (1..=RELEASES)
        .map(|id| {
            let to = format!("a{id}@example.com");
            let mail = mails.iter().find(|m| m.to == [to.clone()]).unwrap();
            (id, mail.clone())
        })
        .collect()
}

/// Polls every release in `order`, by GET and by POST, and checks that each answer is
/// about the release asked for and has the status `expected` gives it.
async fn poll_all(app: &TestApp, order: &[u32], expected: impl Fn(u32) -> &'static str) {
    for &id in order {
        let got = app.get_release("Devx", &id.to_string()).await;
        assert_eq!(got.status(), 200);
        let posted = app.post_release(&release(id)).await;
        assert_eq!(posted.status(), 200);
        for (form, answer) in [("GET", got), ("POST", posted)] {
            let body: Value = answer.json().await.unwrap();
            assert_eq!(body["ReleaseId"], id.to_string(), "{form} R{id}: {body}");
            assert_eq!(
                body["ReleaseName"],
                format!("R{id}"),
                "{form} R{id}: {body}"
            );
            let approver = &body["approvers"][0]["email"];
            assert_eq!(
                *approver,
                format!("a{id}@example.com"),
                "{form} R{id}: {body}"
            );
            assert_eq!(body["status"], expected(id), "{form} R{id}: {body}");
        }
    }
}

#[tokio::test]
async fn many_releases_polled_in_any_order_each_get_their_own_answer() {
    let app = spawn_app().await;
    created(&app).await;
    let forward: Vec<u32> = (1..=RELEASES).collect();
    let backward: Vec<u32> = forward.iter().rev().copied().collect();
    let interleaved: Vec<u32> = forward
        .iter()
        .zip(&backward)
        .flat_map(|(a, b)| [*a, *b])
        .collect();
    for order in [&forward, &backward, &interleaved] {
        poll_all(&app, order, |_| "pending").await;
    }
}

#[tokio::test]
async fn after_decisions_among_many_kept_answers_each_poll_shows_its_own_release_decided() {
    let app = spawn_app().await;
    let mails = created(&app).await;
    let forward: Vec<u32> = (1..=RELEASES).collect();
    poll_all(&app, &forward, |_| "pending").await;

    // Decide a few, each right after polls that filled the cache.
    let expected = |id: u32| match id {
        _ if id.is_multiple_of(5) => "approved",
        7 => "rejected",
        _ => "pending",
    };
    for (id, mail) in &mails {
        let decision = match expected(*id) {
            "approved" => "approve",
            "rejected" => "reject",
            _ => continue,
        };
        assert_eq!(
            app.decide(&mail.token(), decision, None).await.status(),
            200
        );
        // The decided release first, then the others (kept before the decision or not).
        let mut order = vec![*id];
        order.extend(forward.iter().filter(|other| *other != id));
        // Releases up to this one are decided as planned; the later ones are still pending.
        let so_far = |other: u32| {
            if other <= *id {
                expected(other)
            } else {
                "pending"
            }
        };
        poll_all(&app, &order, so_far).await;
    }
    poll_all(&app, &forward, expected).await;
}
