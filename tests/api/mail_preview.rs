// The mail preview without SMTP: emails written to the mail folder under names of
// the time and the approval, the log naming each file, and `/mail` listing and showing
// them (JSON and HTML) only in that mode, behind the API key, serving nothing else.

use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, OnceLock},
};

use deploy_gate::secret::Secret;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tracing_subscriber::{filter::Targets, layer::SubscriberExt};

use crate::helpers::{TestApp, TestSmtp, assert_problem, get_json, spawn_app, spawn_app_with};

const API_KEY: &str = "mail-preview-key-0123456789";

/// An app writing its emails to `mail` (no SMTP server), with `api_key` if given.
async fn spawn_file_mail_app(mail: &Path, api_key: Option<&str>) -> TestApp {
    let mail = mail.to_owned();
    spawn_app_with(TestSmtp::running(), move |s| {
        s.smtp_url = None;
        s.mail_dir = Some(mail);
        s.api_key = api_key.map(Secret::new);
    })
    .await
}

/// Posts a release for ana and bo and runs its jobs, so both emails are written.
async fn release_for_ana_and_bo(app: &TestApp, key: Option<&str>) {
    let mut request = app.client.post(format!("{}/release", app.address));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let created = request
        .json(&json!({
            "ReleaseName": "Desafio-CD", "ReleaseId": "386", "TeamProject": "Devx",
            "Approvers": ["ana@example.com", "bo@example.com"]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 202);
    app.drain_jobs().await;
    // The running worker may have taken one of the emails; wait for it too.
    app.wait_until_idle().await;
}

/// The names of the files in `dir`, sorted.
fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// `GET {path}` with `accept`, as the preview's operator (Bearer key when given).
async fn get(app: &TestApp, path: &str, accept: &str, key: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .get(format!("{}{path}", app.address))
        .header("accept", accept);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap()
}

/// What the jobs of every app in this test process logged (their thread is not the
/// test's, so a subscriber of the test's own would not see them).
static JOB_LOG: OnceLock<Option<Captured>> = OnceLock::new();

/// A writer into a shared buffer, to read what the app logged.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The job log of this process, captured from now on; `None` when another
/// subscriber (`TEST_LOG`) was installed first.
fn job_log() -> Option<&'static Captured> {
    JOB_LOG
        .get_or_init(|| {
            let captured = Captured::default();
            let writer = captured.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .finish()
                .with(Targets::new().with_target("deploy_gate::jobs", tracing::Level::INFO));
            tracing::subscriber::set_global_default(subscriber)
                .ok()
                .map(|()| captured)
        })
        .as_ref()
}

#[tokio::test]
async fn the_log_line_of_a_written_email_names_its_file_with_the_address_masked() {
    let Some(captured) = job_log() else {
        eprintln!("SKIPPED: the log line test: TEST_LOG installed its own subscriber");
        return;
    };
    let mail = tempfile::tempdir().unwrap();
    let app = spawn_file_mail_app(mail.path(), None).await;
    release_for_ana_and_bo(&app, None).await;

    let log = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    for name in file_names(mail.path()) {
        let line = log
            .lines()
            .find(|l| l.contains("approval email written to") && l.contains(&name))
            .unwrap_or_else(|| panic!("a line naming {name}: {log}"));
        assert!(
            line.contains("to=a***@example.com") || line.contains("to=b***@example.com"),
            "{line}"
        );
        assert!(
            !line.contains("ana@example.com") && !line.contains("bo@example.com"),
            "no whole address: {line}"
        );
    }
}

/// The approval link in a message's text part.
fn link_in(text: &str) -> String {
    let start = text.find("http://").expect("a link in the text part");
    text[start..].split_whitespace().next().unwrap().to_owned()
}

#[tokio::test]
async fn the_preview_lists_and_shows_each_email_decoded_as_json_and_html() {
    let mail = tempfile::tempdir().unwrap();
    let app = spawn_file_mail_app(mail.path(), None).await;
    release_for_ana_and_bo(&app, None).await;

    let list = get_json(&app, "/mail").await;
    let messages = list["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{list}");
    let files: Vec<&str> = messages
        .iter()
        .map(|m| m["file"].as_str().unwrap())
        .collect();
    let mut newest_first = file_names(mail.path());
    newest_first.reverse();
    assert_eq!(files, newest_first, "newest first");
    let mut recipients: Vec<&str> = messages
        .iter()
        .map(|m| m["to"][0].as_str().unwrap())
        .collect();
    recipients.sort();
    assert_eq!(recipients, ["ana@example.com", "bo@example.com"]);
    for m in messages {
        assert_eq!(
            m["subject"], "Approval needed: Desafio-CD (Devx #386)",
            "{m}"
        );
        assert!(m["time"].as_str().unwrap().starts_with("20"), "{m}");
        assert_eq!(m["url"], format!("/mail/{}", m["file"].as_str().unwrap()));
    }

    let one = get_json(&app, messages[0]["url"].as_str().unwrap()).await;
    let text = one["text"].as_str().unwrap();
    let link = link_in(text);
    assert!(
        link.contains("/approval?token=ey"),
        "decoded, no `=3D`: {link}"
    );
    assert!(!text.contains("=3D") && !text.contains("=\r\n"), "{text}");
    let html = one["html"].as_str().unwrap();
    assert!(
        html.contains("Review and decide") && html.contains("href="),
        "{html}"
    );
    assert!(
        one["headers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["name"] == "Subject"),
        "{one}"
    );

    let page = get(&app, "/mail", "text/html", None).await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("Approval needed: Desafio-CD"), "{page}");
    assert!(
        page.contains(&format!("href=\"mail&#x2f;{}\"", files[0])),
        "{page}"
    );

    let shown = get(&app, &format!("/mail/{}", files[0]), "text/html", None).await;
    assert_eq!(shown.status(), 200);
    let csp = shown.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let shown = shown.text().await.unwrap();
    assert!(
        shown.contains(r#"sandbox="allow-popups allow-popups-to-escape-sandbox" srcdoc=""#),
        "the HTML part in a sandboxed frame: {shown}"
    );
    assert!(shown.contains("Review and decide"), "{shown}");
    assert!(shown.contains("id=\"text-part\""), "the text part: {shown}");
}

#[tokio::test]
async fn the_approval_link_found_in_the_preview_decides_the_release() {
    let mail = tempfile::tempdir().unwrap();
    let app = spawn_file_mail_app(mail.path(), None).await;
    release_for_ana_and_bo(&app, None).await;

    let list = get_json(&app, "/mail").await;
    for message in list["messages"].as_array().unwrap() {
        let shown = get_json(&app, message["url"].as_str().unwrap()).await;
        let link = link_in(shown["text"].as_str().unwrap());
        let page = get(
            &app,
            link.trim_start_matches(&app.address),
            "text/html",
            None,
        )
        .await;
        assert_eq!(page.status(), 200, "the approval page opens: {link}");
        let token = link.split_once("token=").unwrap().1;
        let decided = app.decide(token, "approve", None).await;
        assert_eq!(decided.status(), 200, "{}", decided.text().await.unwrap());
    }
    assert_eq!(
        app.release_status("Devx", "386").await["status"],
        "approved"
    );
}

#[tokio::test]
async fn the_preview_asks_for_the_api_key_when_one_is_set() {
    let mail = tempfile::tempdir().unwrap();
    let app = spawn_file_mail_app(mail.path(), Some(API_KEY)).await;
    release_for_ana_and_bo(&app, Some(API_KEY)).await;

    assert_problem(
        get(&app, "/mail", "application/json", None).await,
        401,
        "unauthorized",
    )
    .await;
    let wrong = get(
        &app,
        "/mail",
        "application/json",
        Some("not-the-key-0123456789abcd"),
    )
    .await;
    assert_problem(wrong, 401, "unauthorized").await;
    let page = get(&app, "/mail", "text/html", None).await;
    assert_eq!(page.status(), 401);
    assert!(
        page.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic"),
        "a browser is asked to sign in"
    );

    let list: Value = get(&app, "/mail", "application/json", Some(API_KEY))
        .await
        .json()
        .await
        .unwrap();
    let url = list["messages"][0]["url"].as_str().unwrap();
    assert_problem(
        get(&app, url, "application/json", None).await,
        401,
        "unauthorized",
    )
    .await;
    let signed_in = app
        .client
        .get(format!("{}{url}", app.address))
        .basic_auth("anyone", Some(API_KEY))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 200, "Basic with the key as password");
}

#[tokio::test]
async fn with_an_smtp_server_there_is_no_preview_and_home_does_not_offer_one() {
    let app = spawn_app().await;
    let unknown: Value = get(&app, "/no-such-page", "application/json", None)
        .await
        .json()
        .await
        .unwrap();
    for path in ["/mail", "/mail/20261206T061502Z-42.eml"] {
        let problem = assert_problem(
            get(&app, path, "application/json", None).await,
            404,
            "not-found",
        )
        .await;
        assert_eq!(
            problem, unknown,
            "{path} answers as a path that does not exist"
        );
    }
    let home = get(&app, "/", "text/html", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !home.contains("&#x2f;mail\"") && !home.contains("/mail\""),
        "{home}"
    );

    let mail = tempfile::tempdir().unwrap();
    let files = spawn_file_mail_app(mail.path(), None).await;
    let home = get(&files, "/", "text/html", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(home.contains("href=\"/mail\""), "{home}");
    let index: Value = get(&files, "/", "application/json", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(index["links"]["mail"], "/mail", "{index}");
}

/// The status line and body of `GET {target}`, sent as written (no client normalises it).
async fn raw_get(app: &TestApp, target: &str) -> (u16, String) {
    let host = app.address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).await.unwrap();
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{target}: {answer}"));
    (status, answer)
}

#[cfg(unix)]
#[tokio::test]
async fn the_preview_serves_no_file_but_the_emails_it_wrote() {
    let root = tempfile::tempdir().unwrap();
    let mail = root.path().join("mail");
    let app = spawn_file_mail_app(&mail, None).await;
    release_for_ana_and_bo(&app, None).await;
    // A message outside the folder, and a link to it inside under a generated-looking name.
    let secret = "Subject: outside-secret\r\nTo: eve@example.com\r\n\r\nouter-body\r\n";
    let outside: PathBuf = root.path().join("20261206T061502Z-42.eml");
    std::fs::write(&outside, secret).unwrap();
    std::fs::write(root.path().join("secret.txt"), secret).unwrap();
    let linked = "20990101T000000Z-43.eml";
    std::os::unix::fs::symlink(&outside, mail.join(linked)).unwrap();
    // A file in the folder whose name was not generated.
    std::fs::write(mail.join("notes.eml"), secret).unwrap();

    let list = get_json(&app, "/mail").await;
    assert_eq!(list["messages"].as_array().unwrap().len(), 2, "{list}");
    assert!(!list.to_string().contains("outside-secret"), "{list}");

    for target in [
        format!("/mail/{linked}"),
        "/mail/notes.eml".to_owned(),
        "/mail/../secret.txt".to_owned(),
        "/mail/..%2fsecret.txt".to_owned(),
        "/mail/%2e%2e%2fsecret.txt".to_owned(),
        "/mail/%2e%2e/20261206T061502Z-42.eml".to_owned(),
        "/mail/..%2F20261206T061502Z-42.eml".to_owned(),
        format!("/mail/{}", outside.display()),
        format!(
            "/mail/{}",
            outside.display().to_string().replace('/', "%2F")
        ),
        "/mail/%2e%2e".to_owned(),
        "/mail/..".to_owned(),
        "/mail/.".to_owned(),
    ] {
        let (status, answer) = raw_get(&app, &target).await;
        assert!(
            status == 404 || status == 400,
            "{target} refused: {status} {answer}"
        );
        assert!(
            !answer.contains("outside-secret") && !answer.contains("outer-body"),
            "{target}: {answer}"
        );
    }
}
