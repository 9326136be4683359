//! The board's status filter when the SQL pre-filter lets through many releases that
//! the policy then turns down: `GET /releases?status=…&limit=n` reads candidates in
//! batches of `n + 1` (src/store/listing.rs), so with more turned-down rows than a
//! batch between the matching ones, a page takes several batches; it must still be
//! complete, in order, and its `next` must start right after its last release.

use serde_json::json;

use crate::helpers::{TestApp, board_ids, get_json, spawn_app};

/// Creates release `R{id}` of project Devx with `approvers`.
async fn create(app: &TestApp, id: u32, approvers: &[&str]) {
    let body = json!({"ReleaseName": format!("R{id}"), "ReleaseId": id.to_string(),
                      "TeamProject": "Devx", "Approvers": approvers});
    assert_eq!(app.post_release(&body).await.status(), 202);
}

/// Approves, as `to`, the release named `R{id}` (its email found by the subject).
async fn approve_as(app: &TestApp, to: &str, id: u32) {
    let mail = app.email_about(to, &format!("R{id}"));
    assert_eq!(
        app.decide(&mail.token(), "approve", None).await.status(),
        200
    );
}

/// Releases 1..=`pending` stay pending (two approvers, one approved: the SQL's
/// `approved` pre-filter lets them through), and the `approved` newer ones
/// after them are approved (the SQL's `pending` pre-filter lets them through).
async fn pending_then_approved(app: &TestApp, pending: u32, approved: u32) {
    let two = ["ana@example.com", "bo@example.com"];
    for id in 1..=pending {
        create(app, id, &two).await;
    }
    for id in pending + 1..=pending + approved {
        create(app, id, &["ana@example.com"]).await;
    }
    app.smtp
        .wait_for(usize::try_from(2 * pending + approved).unwrap())
        .await;
    for id in 1..=pending + approved {
        approve_as(app, "ana@example.com", id).await;
    }
}

#[tokio::test]
async fn a_pending_page_behind_more_approved_releases_than_a_batch_is_complete_with_its_next() {
    let app = spawn_app().await;
    // Seven approved releases (newest) are turned down before the first pending one:
    // more than two batches of three (limit 2 + 1).
    pending_then_approved(&app, 3, 7).await;

    let first = get_json(&app, "/releases?status=pending&limit=2").await;
    assert_eq!(board_ids(&first), ["3", "2"], "{first}");
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    assert_eq!(
        first["next"],
        format!("/releases?status=pending&limit=2&cursor={cursor}")
    );
    let second = get_json(&app, first["next"].as_str().unwrap()).await;
    assert_eq!(board_ids(&second), ["1"], "{second}");
    assert!(second.get("next").is_none(), "the last page: {second}");
}

#[tokio::test]
async fn a_filtered_page_that_ends_exactly_at_the_last_match_has_no_next() {
    let app = spawn_app().await;
    pending_then_approved(&app, 2, 7).await;

    let only = get_json(&app, "/releases?status=pending&limit=2").await;
    assert_eq!(board_ids(&only), ["2", "1"], "{only}");
    assert!(
        only.get("next").is_none() && only.get("next_cursor").is_none(),
        "no empty page after a full one: {only}"
    );
}

#[tokio::test]
async fn an_approved_page_skips_pending_releases_that_have_one_approval_across_batches() {
    let app = spawn_app().await;
    // Releases 3–8 are pending with one approval of two: the SQL's `approved`
    // pre-filter lets them through, the policy turns them down; 1, 2 and 9 are approved.
    let two = ["ana@example.com", "bo@example.com"];
    for id in 1..=2 {
        create(&app, id, &["ana@example.com"]).await;
    }
    for id in 3..=8 {
        create(&app, id, &two).await;
    }
    create(&app, 9, &["ana@example.com"]).await;
    app.smtp.wait_for(2 + 12 + 1).await;
    for id in 1..=9 {
        approve_as(&app, "ana@example.com", id).await;
    }

    let first = get_json(&app, "/releases?status=approved&limit=2").await;
    assert_eq!(board_ids(&first), ["9", "2"], "{first}");
    let second = get_json(&app, first["next"].as_str().expect("a next page")).await;
    assert_eq!(board_ids(&second), ["1"], "{second}");
    assert!(second.get("next").is_none(), "the last page: {second}");

    // The turned-down releases are all there under their own status.
    let pending = get_json(&app, "/releases?status=pending&limit=50").await;
    assert_eq!(board_ids(&pending), ["8", "7", "6", "5", "4", "3"]);
}
