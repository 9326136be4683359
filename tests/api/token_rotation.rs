//! Rotating the token secret keeps pending links: every listed key verifies, the
//! first signs, and a key removed from the list stops its links like a foreign one.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use deploy_gate::{secret::Secret, settings::Config, startup::forget_generated_token_secret};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::TestSmtp;
use crate::helpers::{TEST_SECRET, TestApp, assert_problem, spawn_app, spawn_app_with};

/// The key a rotation adds.
const NEW_KEY: &str = "new-key-0123456789abcdef";

/// Creates release `Devx/{id}` for one approver and returns the token of its link.
async fn pending_link(app: &TestApp, id: &str) -> String {
    let before = app.smtp.received().len();
    let created = app
        .post_release(&json!({
            "ReleaseName": format!("Release {id}"), "ReleaseId": id, "TeamProject": "Devx",
            "Approvers": ["ana@example.com"],
        }))
        .await;
    assert_eq!(created.status(), 202);
    app.smtp.wait_for(before + 1).await[before].token()
}

/// `GET /approval` of `token` as JSON.
async fn view(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .get(format!("{}/approval", app.address))
        .query(&[("token", token)])
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
}

/// Approves with `token`.
async fn approve(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/approval", app.address))
        .header("accept", "application/json")
        .form(&[("token", token), ("decision", "approve")])
        .send()
        .await
        .unwrap()
}

fn header_of(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The token's claims signed again by `secret` without a `kid`, as this service
/// signed links before its keys had ids.
fn without_kid(token: &str, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims_of(token),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn restart_with_token_secret(mut app: TestApp, secret: Option<&str>) -> TestApp {
    app.settings.token_secret = secret.map(Secret::new);
    app.restart().await
}

#[tokio::test]
async fn a_link_minted_before_a_rotation_still_decides_after_a_new_first_key() {
    let app = spawn_app().await;
    let before = pending_link(&app, "1").await;
    let app = restart_with_token_secret(app, Some(&format!("{NEW_KEY},{TEST_SECRET}"))).await;

    let after = pending_link(&app, "2").await;
    assert_ne!(
        header_of(&after)["kid"],
        header_of(&before)["kid"],
        "the new first key signs"
    );
    assert_eq!(view(&app, &after).await.status(), 200);
    assert_eq!(approve(&app, &before).await.status(), 200);
    assert_eq!(app.release_status("Devx", "1").await["status"], "approved");
}

#[tokio::test]
async fn a_link_signed_by_a_removed_key_is_refused_as_a_foreign_one() {
    let app = spawn_app().await;
    let old = pending_link(&app, "1").await;
    let app = restart_with_token_secret(app, Some(NEW_KEY)).await;

    let removed = assert_problem(view(&app, &old).await, 401, "token-invalid").await;
    let foreign = assert_problem(
        view(&app, &without_kid(&old, "a-foreign-key-0123456789")).await,
        401,
        "token-invalid",
    )
    .await;
    assert_eq!(removed, foreign);
    assert_problem(approve(&app, &old).await, 401, "token-invalid").await;
    assert_eq!(app.release_status("Devx", "1").await["status"], "pending");
}

#[tokio::test]
async fn a_link_minted_before_keys_had_ids_decides_with_any_listed_key() {
    let app = spawn_app_with(TestSmtp::running(), |settings| {
        settings.token_secret = Some(Secret::new(format!("{NEW_KEY},{TEST_SECRET}")));
    })
    .await;
    let minted = pending_link(&app, "1").await;
    let legacy = without_kid(&minted, TEST_SECRET);
    assert!(header_of(&legacy).get("kid").is_none());
    assert_eq!(approve(&app, &legacy).await.status(), 200);
    assert_eq!(app.release_status("Devx", "1").await["status"], "approved");
}

#[tokio::test]
async fn the_generated_key_keeps_verifying_after_the_secret_is_set_until_it_is_forgotten() {
    let app = spawn_app_with(TestSmtp::running(), |settings| settings.token_secret = None).await;
    let generated = pending_link(&app, "1").await;
    let unset = Config::from_settings(app.settings.clone()).unwrap();
    assert!(
        forget_generated_token_secret(&unset).await.is_err(),
        "refused while the generated key is the one in use"
    );

    let app = restart_with_token_secret(app, Some(NEW_KEY)).await;
    assert_eq!(view(&app, &generated).await.status(), 200);
    let set = Config::from_settings(app.settings.clone()).unwrap();
    assert!(forget_generated_token_secret(&set).await.unwrap());
    assert!(!forget_generated_token_secret(&set).await.unwrap());

    let app = app.restart().await;
    assert_problem(view(&app, &generated).await, 401, "token-invalid").await;
    let fresh = pending_link(&app, "2").await;
    assert_eq!(view(&app, &fresh).await.status(), 200);
}
