//! The client commands of the built binary against a running service: `releases`,
//! `status`, `cancel` and `resend` in words and in JSON, their exit codes for a refused
//! key, an unknown release and a service that is down, a closed pipe, and `generate-key`.

use std::{
    path::Path,
    process::{Output, Stdio},
};

use serde_json::{Value, json};

use super::{Served, deploy_gate, run};

const KEY: &str = "client-key-0123456789abcdef";
const APPROVERS: &str = "ana@example.com,bo+ops@example.com";

/// Exit codes of docs/client.md.
const NOT_FOUND: i32 = 3;
const REFUSED: i32 = 4;
const UNREACHABLE: i32 = 6;

/// The service with [`KEY`] and [`APPROVERS`], and the two emails of each release in
/// `releases` (project, id, stage) sent, so that its approvers are known.
async fn served_with(dir: &Path, releases: &[(&str, &str, &str)]) -> Served {
    let served = Served::start_with(
        dir,
        &[
            ("DEPLOY_GATE_API_KEY", KEY),
            ("DEPLOY_GATE_APPROVERS", APPROVERS),
        ],
    );
    let http = reqwest::Client::new();
    for (project, id, stage) in releases {
        let created = http
            .post(format!("{}/release", served.address))
            .bearer_auth(KEY)
            .json(&json!({"ReleaseName": "Shop", "ReleaseId": id, "TeamProject": project, "Stage": stage}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 202);
        for _ in 0..2 {
            served.wait_for_log("approval link (no SMTP server configured)");
        }
    }
    served
}

/// A client command run in `dir` against `served` with `key` (none: no key).
fn client(dir: &Path, served: &Served, key: Option<&str>, args: &[&str]) -> Output {
    let mut command = deploy_gate(dir);
    command.env("DEPLOY_GATE_URL", &served.address).args(args);
    if let Some(key) = key {
        command.env("DEPLOY_GATE_API_KEY", key);
    }
    run(&mut command)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts a successful run and returns its standard output.
fn succeeded(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{:?}\nstdout: {}\nstderr: {}",
        output.status,
        stdout(output),
        stderr(output)
    );
    stdout(output)
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: not JSON on stdout: {}", stdout(output)))
}

#[tokio::test(flavor = "multi_thread")]
async fn releases_status_cancel_and_resend_answer_in_words_and_as_the_services_json() {
    let dir = tempfile::tempdir().unwrap();
    let served = served_with(
        dir.path(),
        &[("Devx", "386", ""), ("Shop Front", "388", "production")],
    )
    .await;
    let here = tempfile::tempdir().unwrap();
    let ask = |args: &[&str]| client(here.path(), &served, Some(KEY), args);

    let table = succeeded(&ask(&["releases"]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    for heading in [
        "PROJECT",
        "RELEASE",
        "STAGE",
        "STATUS",
        "VOTES",
        "WAITING FOR",
    ] {
        assert!(lines[0].contains(heading), "{table}");
    }
    for cell in ["Shop Front", "388", "production", "pending", "0/2"] {
        assert!(lines[1].contains(cell), "{cell} in {table}");
    }
    assert!(
        // The service counts a mailbox once: `+ops` is dropped.
        lines[1].ends_with("ana@example.com, bo@example.com"),
        "{table}"
    );
    assert!(
        lines[2].contains("Devx") && lines[2].contains("386"),
        "{table}"
    );
    let board = json_of(&ask(&["releases", "--json"]));
    assert_eq!(board["releases"].as_array().unwrap().len(), 2, "{board}");
    let one = json_of(&ask(&["releases", "--json", "--limit", "1"]));
    assert_eq!(one["releases"][0]["TeamProject"], "Shop Front", "{one}");
    assert_eq!(
        succeeded(&ask(&["releases", "--status", "approved"])),
        "no approved releases\n"
    );

    let release = ["Shop Front", "388", "--stage", "production"];
    let block = succeeded(&ask(&[&["status"][..], &release].concat()));
    for shown in [
        "release      Shop Front 388 Shop",
        "stage        production, attempt 1, pre",
        "status       pending: 0 of 2 approvals",
        "waiting for  2 more approvals from the approvers",
        "approver     bo@example.com  pending (emailed)",
        "/releases/Shop%20Front/388?Stage=production",
    ] {
        assert!(block.contains(shown), "{shown} in\n{block}");
    }
    let status = json_of(&ask(&[&["status", "--json"][..], &release].concat()));
    assert_eq!(status["status"], "pending");
    assert_eq!(status["TeamProject"], "Shop Front");

    // The `+` of the address reaches the service as a `+` (a space would name nobody):
    // a new email goes to bo.
    let resent = ask(&[&["resend"][..], &release, &["bo+ops@example.com"]].concat());
    assert!(
        succeeded(&resent).contains("queued a new approval email to bo+ops@example.com"),
        "{}",
        stdout(&resent)
    );
    let link = served.wait_for_log("approval link (no SMTP server configured)");
    assert_eq!(link["to"], "b***@example.com", "{link}");

    let cancelled = ask(&[&["cancel"][..], &release, &["--reason", "wrong build"]].concat());
    assert!(
        succeeded(&cancelled).contains("it is now rejected"),
        "{}",
        stdout(&cancelled)
    );
    let block = succeeded(&ask(&[&["status"][..], &release].concat()));
    assert!(
        block.contains("status       rejected") && block.contains(": wrong build"),
        "{block}"
    );
    // Cancelling a decided release is refused, with the service's reason.
    let again = ask(&[&["cancel", "--json"][..], &release].concat());
    assert_eq!(again.status.code(), Some(REFUSED), "{}", stderr(&again));
    assert!(stderr(&again).contains("already"), "{}", stderr(&again));
    assert_eq!(
        json_of(&again)["type"],
        "urn:deploy-gate:problem:release-final"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_key_and_an_unknown_release_exit_with_their_own_codes_and_say_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let served = served_with(dir.path(), &[("Devx", "386", "production")]).await;
    let here = tempfile::tempdir().unwrap();

    let missing = client(here.path(), &served, None, &["releases"]);
    assert_eq!(missing.status.code(), Some(REFUSED), "{}", stderr(&missing));
    assert!(
        stderr(&missing).contains("Credentials are missing or wrong")
            && stderr(&missing).contains("set DEPLOY_GATE_API_KEY"),
        "{}",
        stderr(&missing)
    );
    assert_eq!(stdout(&missing), "");
    let wrong = client(
        here.path(),
        &served,
        Some("wrong-key-0123456789abcdef"),
        &["status", "Devx", "386"],
    );
    assert_eq!(wrong.status.code(), Some(REFUSED), "{}", stderr(&wrong));
    assert!(stderr(&wrong).contains("DEPLOY_GATE_API_KEY"));
    // Of several keys, the first is sent.
    let several = format!("{KEY},other-key-0123456789abcdef");
    succeeded(&client(here.path(), &served, Some(&several), &["releases"]));

    let unknown = client(here.path(), &served, Some(KEY), &["status", "Devx", "999"]);
    assert_eq!(
        unknown.status.code(),
        Some(NOT_FOUND),
        "{}",
        stderr(&unknown)
    );
    assert!(
        stderr(&unknown).contains("Not found"),
        "{}",
        stderr(&unknown)
    );
    // The service's hint names the stage the release exists in.
    let other_stage = client(here.path(), &served, Some(KEY), &["status", "Devx", "386"]);
    assert_eq!(other_stage.status.code(), Some(NOT_FOUND));
    assert!(
        stderr(&other_stage).contains("production"),
        "{}",
        stderr(&other_stage)
    );
    let as_json = client(
        here.path(),
        &served,
        Some(KEY),
        &["status", "--json", "Devx", "999"],
    );
    assert_eq!(as_json.status.code(), Some(NOT_FOUND));
    assert_eq!(
        json_of(&as_json)["type"],
        "urn:deploy-gate:problem:not-found"
    );
    let no_approver = client(
        here.path(),
        &served,
        Some(KEY),
        &[
            "resend",
            "Devx",
            "386",
            "eve@example.com",
            "--stage",
            "production",
        ],
    );
    assert_eq!(
        no_approver.status.code(),
        Some(NOT_FOUND),
        "{}",
        stderr(&no_approver)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_url_the_client_asks_the_bound_address_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let served = served_with(dir.path(), &[]).await;
    let port = served.address.rsplit(':').next().unwrap().to_owned();
    let here = tempfile::tempdir().unwrap();
    let output = run(deploy_gate(here.path())
        .args(["releases"])
        .env("DEPLOY_GATE_BIND", format!("0.0.0.0:{port}"))
        .env("DEPLOY_GATE_API_KEY", KEY));
    assert_eq!(succeeded(&output), "no releases\n");
}

#[test]
fn a_service_that_is_down_is_named_with_what_to_check() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let here = tempfile::tempdir().unwrap();
    for args in [&["releases"][..], &["cancel", "Devx", "386", "--json"]] {
        let output = run(deploy_gate(here.path())
            .args(args)
            .env("DEPLOY_GATE_URL", format!("http://127.0.0.1:{port}")));
        assert_eq!(output.status.code(), Some(UNREACHABLE), "{args:?}");
        let said = stderr(&output);
        assert!(
            said.contains(&format!("http://127.0.0.1:{port}/"))
                && said.contains("DEPLOY_GATE_URL")
                && !said.contains("panicked"),
            "{said}"
        );
        assert_eq!(stdout(&output), "");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reader_that_closes_the_pipe_early_ends_no_client_command_with_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let served = served_with(dir.path(), &[("Devx", "386", "")]).await;
    let here = tempfile::tempdir().unwrap();
    for args in [
        &["releases"][..],
        &["releases", "--json"],
        &["status", "Devx", "386"],
        &["generate-key"],
    ] {
        let mut child = deploy_gate(here.path())
            .args(args)
            .env("DEPLOY_GATE_URL", &served.address)
            .env("DEPLOY_GATE_API_KEY", KEY)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // `| head -c 0`: the reader is gone before the command writes.
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let said = stderr(&output);
        assert!(
            output.status.success() && !said.contains("panicked"),
            "{args:?}: {:?} {said}",
            output.status
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn generate_key_prints_a_new_key_each_time_that_the_service_takes_as_api_key() {
    let here = tempfile::tempdir().unwrap();
    let generate = || succeeded(&run(deploy_gate(here.path()).arg("generate-key")));
    let (first, second) = (generate(), generate());
    assert_ne!(first, second);
    for printed in [&first, &second] {
        let key = printed.strip_suffix('\n').expect("one line");
        assert!(key.len() >= 24, "{key}");
        assert!(
            key.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{key}"
        );
    }
    let (key, secret) = (first.trim(), second.trim());
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start_with(
        dir.path(),
        &[
            ("DEPLOY_GATE_API_KEY", key),
            ("DEPLOY_GATE_TOKEN_SECRET", secret),
        ],
    );
    let created = reqwest::Client::new()
        .post(format!("{}/release", served.address))
        .bearer_auth(key)
        .json(&json!({"ReleaseName": "Shop", "ReleaseId": "1", "TeamProject": "Devx"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 202);
    let listed = client(here.path(), &served, Some(key), &["releases"]);
    assert!(succeeded(&listed).contains("Devx"), "{}", stdout(&listed));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_without_approvers_is_listed_as_stuck_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start_with(
        dir.path(),
        &[("DEPLOY_GATE_API_KEY", KEY), ("DEPLOY_GATE_APPROVERS", ",")],
    );
    let created = reqwest::Client::new()
        .post(format!("{}/release", served.address))
        .bearer_auth(KEY)
        .json(&json!({"ReleaseName": "Shop", "ReleaseId": "7", "TeamProject": "Devx"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 202);
    let here = tempfile::tempdir().unwrap();
    // The worker finds no approvers shortly after the 202.
    let deadline = std::time::Instant::now() + super::HANG_GUARD;
    let table = loop {
        let table = succeeded(&client(here.path(), &served, Some(KEY), &["releases"]));
        if table.contains("stuck: ") || std::time::Instant::now() > deadline {
            break table;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let row = table.lines().nth(1).unwrap_or_default();
    assert!(
        row.contains("pending") && row.contains("stuck: ") && !row.contains("nobody"),
        "{table}"
    );
    let block = succeeded(&client(
        here.path(),
        &served,
        Some(KEY),
        &["status", "Devx", "7"],
    ));
    assert!(block.contains("problem      no_approvers: "), "{block}");
}
