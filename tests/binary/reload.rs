//! Reloading secrets without a restart, against the built binary: a rewritten
//! API key file, a Kubernetes-style `..data` symlink swap, `SIGHUP` after a change
//! to the TOML file, an invalid new key that leaves the old one in force, and
//! token keys rotated while a link is pending.

use std::process::Command;

use serde_json::{Value, json};

use super::{Served, token_of};

const KEY_A: &str = "key-a-0123456789abcdef0123";
const KEY_B: &str = "key-b-0123456789abcdef0123";

pub(super) const RELOADED: &str = "configuration reloaded";
pub(super) const FAILED: &str = "configuration reload failed: keeping the settings in force";

/// The status of `GET /releases` with `key` as a Bearer token.
async fn releases_with(served: &Served, key: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{}/releases", served.address))
        .bearer_auth(key)
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Asserts that `accepted` is served and `refused` answers 401.
async fn assert_keys(served: &Served, accepted: &str, refused: &str) {
    assert_eq!(releases_with(served, accepted).await, 200, "{accepted}");
    assert_eq!(releases_with(served, refused).await, 401, "{refused}");
}

pub(super) fn send_sighup(served: &Served) {
    let pid = served.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
}

/// The next "reloaded" event; panics (naming it) if a reload fails first.
pub(super) fn wait_for_reload(served: &Served) -> Value {
    let event = served.wait_for_event("a reload", |event| {
        event["message"] == RELOADED || event["message"] == FAILED
    });
    assert_eq!(event["message"], RELOADED, "{event}");
    event
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rewritten_api_key_file_replaces_the_key_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("api-key");
    std::fs::write(&file, format!("{KEY_A}\n")).unwrap();
    let served = Served::start_with(
        dir.path(),
        &[("DEPLOY_GATE_API_KEY_FILE", file.to_str().unwrap())],
    );
    assert_keys(&served, KEY_A, KEY_B).await;

    std::fs::write(&file, format!("{KEY_B}\n")).unwrap();
    let reloaded = wait_for_reload(&served);
    assert_eq!(reloaded["cause"], "a secret file changed", "{reloaded}");
    assert_keys(&served, KEY_B, KEY_A).await;
    // The reload names the keys in force by fingerprint, never by value.
    let logs = served.output.lock().unwrap().clone();
    let fingerprint = deploy_gate::secret::Secret::new(KEY_B).fingerprint();
    assert!(logs.contains(&fingerprint), "{logs}");
    assert!(!logs.contains(KEY_B) && !logs.contains(KEY_A), "{logs}");
}

/// A mounted Kubernetes Secret: `api-key` → `..data/api-key`, `..data` → a
/// timestamped folder; an update writes a new folder and renames a new `..data`
/// link over the old one.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn a_kubernetes_style_symlink_swap_replaces_the_key() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("secrets");
    let first = mount.join("..2026_12_06_07_00_00.1");
    std::fs::create_dir_all(&first).unwrap();
    std::fs::write(first.join("api-key"), KEY_A).unwrap();
    symlink("..2026_12_06_07_00_00.1", mount.join("..data")).unwrap();
    symlink("..data/api-key", mount.join("api-key")).unwrap();
    let served = Served::start_with(
        dir.path(),
        &[(
            "DEPLOY_GATE_API_KEY_FILE",
            mount.join("api-key").to_str().unwrap(),
        )],
    );
    assert_keys(&served, KEY_A, KEY_B).await;

    let second = mount.join("..2026_12_06_07_05_00.2");
    std::fs::create_dir_all(&second).unwrap();
    std::fs::write(second.join("api-key"), KEY_B).unwrap();
    symlink("..2026_12_06_07_05_00.2", mount.join("..data_tmp")).unwrap();
    std::fs::rename(mount.join("..data_tmp"), mount.join("..data")).unwrap();
    std::fs::remove_dir_all(&first).unwrap();
    wait_for_reload(&served);
    assert_keys(&served, KEY_B, KEY_A).await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn sighup_rereads_the_toml_file_and_names_settings_that_need_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gate.toml");
    std::fs::write(&config, format!("api_key = \"{KEY_A}\"\nworkers = 4\n")).unwrap();
    let served = Served::start_with(
        dir.path(),
        &[("DEPLOY_GATE_CONFIG", config.to_str().unwrap())],
    );
    assert_keys(&served, KEY_A, KEY_B).await;

    std::fs::write(&config, format!("api_key = \"{KEY_B}\"\nworkers = 2\n")).unwrap();
    send_sighup(&served);
    let restart = served
        .wait_for_log("changed settings that only a restart applies; they keep their old values");
    assert!(
        restart["settings"].as_str().unwrap().contains("workers"),
        "{restart}"
    );
    let reloaded = wait_for_reload(&served);
    assert_eq!(reloaded["cause"], "SIGHUP", "{reloaded}");
    assert_keys(&served, KEY_B, KEY_A).await;
    // Still serving after the signal, and stops cleanly.
    assert!(served.terminate().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_new_key_keeps_the_old_one_and_logs_why_without_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("api-key");
    std::fs::write(&file, KEY_A).unwrap();
    let served = Served::start_with(
        dir.path(),
        &[("DEPLOY_GATE_API_KEY_FILE", file.to_str().unwrap())],
    );
    std::fs::write(&file, "qzxwv").unwrap();
    let failed = served.wait_for_event("a failed reload", |event| {
        event["message"] == FAILED || event["message"] == RELOADED
    });
    assert_eq!(failed["message"], FAILED, "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("DEPLOY_GATE_API_KEY"), "{failed}");
    assert_keys(&served, KEY_A, "qzxwv").await;
    let logs = served.output.lock().unwrap().clone();
    assert!(!logs.contains("qzxwv"), "{logs}");

    // Fixing the file applies it.
    std::fs::write(&file, KEY_B).unwrap();
    wait_for_reload(&served);
    assert_keys(&served, KEY_B, KEY_A).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_link_minted_before_a_new_first_token_key_still_decides() {
    const OLD: &str = "token-old-0123456789";
    const NEW: &str = "token-new-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token-secret");
    std::fs::write(&file, OLD).unwrap();
    let served = Served::start_with(
        dir.path(),
        &[("DEPLOY_GATE_TOKEN_SECRET_FILE", file.to_str().unwrap())],
    );
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{}/release", served.address))
        .json(&json!({"ReleaseName": "Shop", "ReleaseId": 7, "TeamProject": "Devx"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 202);
    let mut links = Vec::new();
    while links.len() < 2 {
        let event = served.wait_for_log("approval link (no SMTP server configured)");
        links.push(event["link"].as_str().unwrap().to_owned());
    }

    std::fs::write(&file, format!("{NEW},{OLD}")).unwrap();
    wait_for_reload(&served);
    let decided = client
        .post(format!("{}/approval", served.address))
        .json(&json!({"token": token_of(&links[0]), "decision": "approve"}))
        .send()
        .await
        .unwrap();
    assert_eq!(decided.status(), 200, "{}", decided.text().await.unwrap());

    // Once the old key is removed, the other link it signed is refused.
    std::fs::write(&file, NEW).unwrap();
    wait_for_reload(&served);
    let refused = client
        .post(format!("{}/approval", served.address))
        .json(&json!({"token": token_of(&links[1]), "decision": "approve"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
}
