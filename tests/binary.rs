//! The built `deploy-gate` binary, started the way a user starts it: commands, the
//! zero-configuration defaults, graceful shutdown on SIGTERM, and a restart.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Output, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use smtp::TestSmtp;

#[path = "support/smtp.rs"]
#[expect(
    dead_code,
    reason = "shared test support: this target reads mail but never refuses a recipient"
)]
mod smtp;

#[path = "binary/client.rs"]
mod client;
#[path = "binary/connections.rs"]
mod connections;
#[path = "binary/entra.rs"]
#[expect(
    dead_code,
    reason = "shared test support: this target never takes the token endpoint down nor answers in turn"
)]
mod entra;
#[path = "binary/reload.rs"]
mod reload;
#[path = "binary/reload_outbound.rs"]
mod reload_outbound;

const BINARY: &str = env!("CARGO_BIN_EXE_deploy-gate");

/// How long a test waits for an event before it calls the wait a hang: far
/// longer than anything takes on a loaded machine, so it never times a test.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// `GET url` as JSON.
async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

/// The binary run in `dir` with a clean `DEPLOY_GATE_*` environment.
fn deploy_gate(dir: &Path) -> Command {
    let mut command = Command::new(BINARY);
    command.current_dir(dir);
    for (name, _) in std::env::vars() {
        if name.starts_with("DEPLOY_GATE_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command
}

fn run(command: &mut Command) -> Output {
    command.output().expect("the binary runs")
}

#[test]
fn openapi_prints_the_generated_document() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(deploy_gate(dir.path()).arg("openapi"));
    assert!(output.status.success());
    let printed: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    let generated: Value = serde_json::from_str(&deploy_gate::api::openapi_json()).unwrap();
    assert_eq!(printed, generated);
}

#[test]
fn printing_into_a_reader_that_stops_early_is_no_error() {
    // `deploy-gate openapi | head -c 100`: the reader closes the pipe after
    // 100 bytes; the command ends quietly instead of panicking.
    let dir = tempfile::tempdir().unwrap();
    for args in [&["openapi"][..], &["config", "--reference"][..]] {
        let mut child = deploy_gate(dir.path())
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut head = [0_u8; 100];
        std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut head).unwrap();
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && !stderr.contains("panicked"),
            "{args:?}: {:?} {stderr}",
            output.status
        );
    }
}

#[test]
fn a_misspelt_setting_is_named_at_start_with_the_one_it_likely_meant() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(deploy_gate(dir.path())
        .arg("migrate")
        .env("DEPLOY_GATE_APROVAL_DEADLINE", "1h"));
    assert!(output.status.success());
    let logged = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        logged.contains("no setting has this name")
            && logged.contains("DEPLOY_GATE_APROVAL_DEADLINE")
            && logged.contains("DEPLOY_GATE_APPROVAL_DEADLINE"),
        "{logged}"
    );
}

#[test]
fn an_unreachable_postgres_is_named_by_host_port_and_database_never_by_password() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(deploy_gate(dir.path())
        .arg("migrate")
        .env(
            "DEPLOY_GATE_DATABASE_URL",
            "postgres://gate:pg-secret-42@127.0.0.1:1/gate",
        )
        .env("DEPLOY_GATE_DATABASE_CONNECT_TIMEOUT", "200ms"));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("127.0.0.1:1/gate"), "{stderr}");
    assert!(!stderr.contains("pg-secret-42"), "{stderr}");
}

#[test]
fn doctor_checks_each_dependency_and_fails_naming_the_fix_when_smtp_is_dead() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = TestSmtp::running();
    let live = format!("smtp://127.0.0.1:{}", smtp.port);
    let output = run(deploy_gate(dir.path())
        .arg("doctor")
        .env("DEPLOY_GATE_SMTP_URL", &live));
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{report}");
    for line in [
        "ok    database",
        "ok    mail",
        "ok    approvers",
        "ok    azure devops",
    ] {
        assert!(report.contains(line), "{line} in {report}");
    }
    assert!(smtp.received().is_empty(), "doctor sends nothing");

    let dead = run(deploy_gate(dir.path())
        .arg("doctor")
        .env("DEPLOY_GATE_SMTP_URL", "smtp://127.0.0.1:1"));
    let report = String::from_utf8_lossy(&dead.stdout);
    assert!(!dead.status.success(), "{report}");
    assert!(
        report.contains("FAIL  mail") && report.contains("fix: check DEPLOY_GATE_SMTP_URL"),
        "{report}"
    );
    assert!(report.contains("ok    database"), "{report}");
}

#[test]
fn migrate_creates_the_database_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(deploy_gate(dir.path())
        .arg("migrate")
        .env("DEPLOY_GATE_DATABASE_URL", "sqlite://gate.db"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(dir.path().join("gate.db").exists());
    // Migrating again is a no-op, not an error.
    let again = run(deploy_gate(dir.path())
        .arg("migrate")
        .env("DEPLOY_GATE_DATABASE_URL", "sqlite://gate.db"));
    assert!(again.status.success());
}

#[test]
fn forgetting_the_generated_token_secret_is_refused_until_a_token_secret_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let refused = run(deploy_gate(dir.path())
        .arg("forget-generated-token-secret")
        .env("DEPLOY_GATE_DATABASE_URL", "sqlite://gate.db"));
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("DEPLOY_GATE_TOKEN_SECRET is not set"),
        "{stderr}"
    );

    let secret = dir.path().join("token_secret");
    std::fs::write(&secret, "explicit-token-secret-0123\n").unwrap();
    let done = run(deploy_gate(dir.path())
        .arg("forget-generated-token-secret")
        .env("DEPLOY_GATE_DATABASE_URL", "sqlite://gate.db")
        .env("DEPLOY_GATE_TOKEN_SECRET_FILE", &secret));
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(String::from_utf8_lossy(&done.stdout).contains("no generated token secret was kept"));
}

#[test]
fn an_invalid_setting_stops_the_start_with_a_message_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(deploy_gate(dir.path()).env("DEPLOY_GATE_APPROVAL_DEADLINE", "banana"));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("DEPLOY_GATE_APPROVAL_DEADLINE") && stderr.contains("banana"),
        "the message names the variable and its value: {stderr}"
    );
    assert!(
        !stderr.contains("--approval-deadline"),
        "a value from the environment is not named by the flag: {stderr}"
    );
    assert!(
        !dir.path().join("deploy-gate.db").exists(),
        "nothing started"
    );
    // Given as a flag, it is named as the flag.
    let output = run(deploy_gate(dir.path()).args(["--approval-deadline", "banana"]));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--approval-deadline"), "{stderr}");
}

#[test]
fn an_sqlite_file_that_cannot_be_opened_is_named_by_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-folder").join("gate.db");
    let url = format!("sqlite://{}", missing.display());
    let output = run(deploy_gate(dir.path())
        .arg("migrate")
        .env("DEPLOY_GATE_DATABASE_URL", &url));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&missing.display().to_string()),
        "the message names the file: {stderr}"
    );
}

/// Starts the service with `env` and expects it to refuse: returns its stderr once it
/// has exited unsuccessfully; fails if it serves (is still running after [`HANG_GUARD`]).
fn refused_start(dir: &Path, env: &[(&str, &str)]) -> String {
    let mut command = deploy_gate(dir);
    command
        .env("DEPLOY_GATE_BIND", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("the binary starts");
    let deadline = Instant::now() + HANG_GUARD;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("started with {env:?} and kept serving");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success(), "{env:?}");
    assert!(
        !dir.join("deploy-gate.db").exists(),
        "nothing started with {env:?}"
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn an_api_key_shorter_than_24_characters_stops_the_start_with_a_message_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for keys in [
        "short-key-0123456789",
        "long-enough-key-0123456789,short-one",
    ] {
        let stderr = refused_start(dir.path(), &[("DEPLOY_GATE_API_KEY", keys)]);
        assert!(
            stderr.contains("DEPLOY_GATE_API_KEY") && stderr.contains("24 characters"),
            "{stderr}"
        );
        assert!(!stderr.contains("short-"), "the key is not shown: {stderr}");
    }
}

#[test]
fn smtp_credentials_without_tls_to_another_host_stop_the_start_unless_plaintext_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let plaintext = "smtp://mailer:smtp-pass-1@mail.example.com:587";
    for url in [
        plaintext,
        "smtp://mailer:smtp-pass-1@mail.example.com?tls=opportunistic",
    ] {
        let stderr = refused_start(dir.path(), &[("DEPLOY_GATE_SMTP_URL", url)]);
        for named in [
            "DEPLOY_GATE_SMTP_URL",
            "smtps://",
            "tls=required",
            "DEPLOY_GATE_SMTP_ALLOW_PLAINTEXT",
        ] {
            assert!(stderr.contains(named), "{named} missing: {stderr}");
        }
        assert!(!stderr.contains("smtp-pass-1"), "{stderr}");
    }
    // TLS, no credentials, a loopback host, or plaintext allowed explicitly: accepted.
    for env in [
        vec![(
            "DEPLOY_GATE_SMTP_URL",
            "smtp://mailer:pw@mail.example.com:587?tls=required",
        )],
        vec![("DEPLOY_GATE_SMTP_URL", "smtps://mailer:pw@mail.example.com")],
        vec![("DEPLOY_GATE_SMTP_URL", "smtp://mail.example.com:25")],
        vec![("DEPLOY_GATE_SMTP_URL", "smtp://mailer:pw@127.0.0.1:2525")],
        vec![("DEPLOY_GATE_SMTP_URL", "smtp://mailer:pw@[::1]:2525")],
        vec![("DEPLOY_GATE_SMTP_URL", "smtp://mailer:pw@localhost:2525")],
        vec![
            ("DEPLOY_GATE_SMTP_URL", plaintext),
            ("DEPLOY_GATE_SMTP_ALLOW_PLAINTEXT", "true"),
        ],
    ] {
        let mut command = deploy_gate(dir.path());
        command.arg("config").envs(env.iter().copied());
        let output = run(&mut command);
        assert!(
            output.status.success(),
            "{env:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn config_prints_the_effective_settings_with_the_environment_over_the_file_and_secrets_masked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gate.toml"),
        "workers = 2\nmail_from = \"gate@example.com\"\napi_key = \"file-key-0123456789abcdefgh\"\n",
    )
    .unwrap();
    let output = run(deploy_gate(dir.path())
        .args(["--config", "gate.toml", "config"])
        .env("DEPLOY_GATE_WORKERS", "7")
        .env(
            "DEPLOY_GATE_SMTP_URL",
            "smtp://user:smtp-pass-456@mail:587?tls=required",
        ));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(printed.contains("workers = 7"), "{printed}");
    assert!(
        printed.contains("mail_from = \"gate@example.com\""),
        "{printed}"
    );
    assert!(printed.contains("api_key = \"[redacted]\""), "{printed}");
    assert!(!printed.contains("file-key-0123456789abcdefgh") && !printed.contains("smtp-pass-456"));

    let unknown = run(deploy_gate(dir.path())
        .args(["--config", "gate.toml", "config"])
        .env("DEPLOY_GATE_MAIL_REPLY_TO", "not an address"));
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("DEPLOY_GATE_MAIL_REPLY_TO"));
}

#[test]
fn a_secret_file_that_cannot_be_read_stops_the_start_naming_its_path_and_variable() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("secrets").join("token_secret");
    let stderr = refused_start(
        dir.path(),
        &[("DEPLOY_GATE_TOKEN_SECRET_FILE", missing.to_str().unwrap())],
    );
    assert!(stderr.contains("DEPLOY_GATE_TOKEN_SECRET_FILE"), "{stderr}");
    assert!(stderr.contains(missing.to_str().unwrap()), "{stderr}");
}

#[test]
fn config_reads_secrets_from_files_and_says_where_each_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("api_key");
    std::fs::write(&key_file, "file-key-0123456789abcdefgh\n").unwrap();
    std::fs::write(dir.path().join("hook"), "hook-secret-from-toml-file\n").unwrap();
    std::fs::write(
        dir.path().join("gate.toml"),
        "hook_secret_file = \"hook\"\n",
    )
    .unwrap();
    let output = run(deploy_gate(dir.path())
        .args(["--config", "gate.toml", "config"])
        .env("DEPLOY_GATE_API_KEY_FILE", &key_file));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(
        printed.contains(&format!(
            "api_key = \"[redacted]\" # from: environment file {}",
            key_file.display()
        )),
        "{printed}"
    );
    assert!(
        printed.contains("hook_secret = \"[redacted]\" # from: config file's file "),
        "{printed}"
    );
    assert!(!printed.contains("file-key-0123") && !printed.contains("hook-secret-from"));

    let both = run(deploy_gate(dir.path())
        .arg("config")
        .env("DEPLOY_GATE_API_KEY_FILE", &key_file)
        .env("DEPLOY_GATE_API_KEY", "env-key-0123456789abcdefgh"));
    assert!(!both.status.success());
    let stderr = String::from_utf8_lossy(&both.stderr);
    assert!(
        stderr.contains("DEPLOY_GATE_API_KEY and DEPLOY_GATE_API_KEY_FILE"),
        "{stderr}"
    );
}

#[test]
fn config_masks_the_user_info_and_secret_query_parameters_of_every_url() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(deploy_gate(dir.path())
        .arg("config")
        .env(
            "DEPLOY_GATE_APPROVERS_URL",
            "https://approvers-user-0:approvers-pass-1@approvers.example.com/list?team=x&apikey=approvers-key-2",
        )
        .env(
            "DEPLOY_GATE_DATABASE_URL",
            "postgres://db.example.com/gate?user=gate&password=pg-pass-3&sslmode=require",
        )
        .env(
            "DEPLOY_GATE_SMTP_URL",
            "smtps://smtp-user-4:smtp-pass-5@mail.example.com:465?Auth_Token=smtp-token-6",
        )
        .env(
            "DEPLOY_GATE_AZURE_DEVOPS_URL",
            "https://azure-user-7:azure-pass-8@vsrm.dev.azure.com/contoso",
        )
        .env("DEPLOY_GATE_AZURE_DEVOPS_PAT", "azure-pat-9")
        .env(
            "DEPLOY_GATE_PUBLIC_URL",
            "https://gate.example.com/?client_secret=public-secret-10&x-sig=public-sig-11",
        ));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8(output.stdout).unwrap();
    for credential in [
        "approvers-user-0",
        "approvers-pass-1",
        "approvers-key-2",
        "pg-pass-3",
        "smtp-user-4",
        "smtp-pass-5",
        "smtp-token-6",
        "azure-user-7",
        "azure-pass-8",
        "azure-pat-9",
        "public-secret-10",
        "public-sig-11",
    ] {
        assert!(
            !printed.contains(credential),
            "{credential} shown:\n{printed}"
        );
    }
    // What is not a credential is still shown, so the output says where things are.
    for shown in [
        "approvers.example.com/list?team=x&apikey=",
        "sslmode=require",
        "user=gate",
        "mail.example.com:465",
        "vsrm.dev.azure.com/contoso",
        "gate.example.com",
    ] {
        assert!(printed.contains(shown), "{shown} missing:\n{printed}");
    }
}

/// A running `deploy-gate` process with its JSON log lines.
struct Served {
    child: Child,
    address: String,
    logs: mpsc::Receiver<Value>,
    /// Everything it wrote to stdout and stderr so far.
    output: Arc<Mutex<String>>,
}

impl Served {
    /// Starts `deploy-gate` (no subcommand: serve) on a free port in `dir`.
    fn start(dir: &Path) -> Served {
        Self::start_with(dir, &[])
    }

    /// Starts `deploy-gate` with extra environment variables.
    fn start_with(dir: &Path, env: &[(&str, &str)]) -> Served {
        let mut command = deploy_gate(dir);
        command
            .env("DEPLOY_GATE_BIND", "127.0.0.1:0")
            .env("DEPLOY_GATE_LOG_FORMAT", "json")
            .env("DEPLOY_GATE_APPROVERS", "ana@example.com,bo@example.com")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("the binary starts");
        let (send, logs) = mpsc::channel();
        let output = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().unwrap();
        let all = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                all.lock().unwrap().push_str(&line);
                if let Ok(event) = serde_json::from_str::<Value>(&line) {
                    let _ = send.send(event);
                }
            }
        });
        let stderr = child.stderr.take().unwrap();
        let all = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
                all.lock().unwrap().push_str(&line);
            }
        });
        let mut served = Served {
            child,
            address: String::new(),
            logs,
            output,
        };
        let listening = served.wait_for_log("deploy-gate listening");
        served.address = format!("http://{}", listening["address"].as_str().unwrap());
        served
    }

    /// The next log event whose message is `message`.
    fn wait_for_log(&self, message: &str) -> Value {
        self.wait_for_event(&format!("a log line {message:?}"), |event| {
            event["message"] == message
        })
    }

    /// The next log event for which `wanted` holds; panics after [`HANG_GUARD`]
    /// (however many other lines arrive meanwhile), naming `what` it waited for.
    fn wait_for_event(&self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = self
                .logs
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("waited {HANG_GUARD:?} for {what}"));
            if wanted(&event) {
                return event;
            }
        }
    }

    /// Kills the process with SIGKILL: no shutdown, no cleanup, as in a crash.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().unwrap();
    }

    /// Sends SIGTERM, as an orchestrator stopping the container does.
    fn send_sigterm(&self) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    /// Waits for the "stopped" log line and the exit status (a hang guard only).
    fn wait_for_exit(mut self) -> std::process::ExitStatus {
        self.wait_for_log("deploy-gate stopped");
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "waited {HANG_GUARD:?} for the process to exit after it logged that it stopped"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    fn terminate(self) -> std::process::ExitStatus {
        self.send_sigterm();
        self.wait_for_exit()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn token_of(link: &str) -> String {
    link.split_once("token=")
        .map(|(_, token)| token.to_owned())
        .expect("the link carries a token")
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_on_defaults_writes_eml_files_and_a_token_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();

    let served = Served::start(dir.path());
    // The start-up log says where to go next: the API, the board, the emails.
    let next = served.wait_for_log("open in a browser: home, docs (the API), board (releases)");
    assert_eq!(next["home"], format!("{}/", served.address).as_str());
    assert_eq!(next["docs"], format!("{}/docs", served.address).as_str());
    assert_eq!(
        next["board"],
        format!("{}/releases", served.address).as_str()
    );
    assert!(
        next["approval_emails"].as_str().unwrap().contains("mail"),
        "{next}"
    );
    let created = client
        .post(format!("{}/release", served.address))
        .json(&json!({"ReleaseName": "Desafio-CD", "ReleaseId": 386, "TeamProject": "Devx"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 202);

    // Without SMTP each email is an .eml file and its link is logged.
    let mut links = Vec::new();
    while links.len() < 2 {
        let event = served.wait_for_log("approval link (no SMTP server configured)");
        // Where its file went; the address masked, as everywhere.
        let to = event["to"].as_str().unwrap();
        assert!(
            ["a***@example.com", "b***@example.com"].contains(&to),
            "{event}"
        );
        assert!(
            event["folder"].as_str().unwrap().ends_with("mail"),
            "{event}"
        );
        // The file is named by the time and the approval, inside that folder.
        let file = Path::new(event["file"].as_str().unwrap());
        assert_eq!(
            file.parent(),
            Some(Path::new(event["folder"].as_str().unwrap()))
        );
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(
            name.ends_with(".eml") && name.as_bytes()[8] == b'T',
            "{event}"
        );
        assert!(dir.path().join(file).is_file(), "{event}");
        links.push(event["link"].as_str().unwrap().to_owned());
    }
    assert!(links.iter().all(|l| l.starts_with(&served.address)));
    let emails: Vec<String> = std::fs::read_dir(dir.path().join("mail"))
        .expect("./mail exists")
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .collect();
    assert_eq!(emails.len(), 2);
    for link in &links {
        // The link is in a quoted-printable or plain body; its token's start is enough.
        let start = &token_of(link)[..40];
        assert!(
            emails
                .iter()
                .any(|e| e.replace("=\r\n", "").contains(start)),
            "an .eml file carries each link"
        );
    }

    let status = served.terminate();
    assert!(status.success(), "SIGTERM is a clean exit: {status}");
    assert!(dir.path().join("deploy-gate.db").exists());

    // The generated token secret was kept in the database: the links still work.
    let served = Served::start(dir.path());
    for link in &links {
        let decided = client
            .post(format!("{}/approval", served.address))
            .json(&json!({"token": token_of(link), "decision": "approve"}))
            .send()
            .await
            .unwrap();
        assert_eq!(decided.status(), 200, "{}", decided.text().await.unwrap());
        let recorded = served.wait_for_log("decision recorded");
        assert_eq!(recorded["release.key"], "Devx/386", "{recorded}");
    }
    let release = get_json(&client, &format!("{}/release/Devx/386", served.address)).await;
    assert_eq!(release["status"], "approved");

    // A refusal leaves a trace in the log, with its route and status.
    let unknown = client
        .get(format!("{}/release/Devx/999", served.address))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let refused = served.wait_for_log("answered with a client error");
    assert_eq!(
        (
            refused["status"].as_u64(),
            refused["route"].as_str(),
            refused["span"]["problem"].as_str()
        ),
        (
            Some(404),
            Some("getRelease"),
            Some("urn:deploy-gate:problem:not-found")
        ),
        "{refused}"
    );

    // The container HEALTHCHECK command.
    let bind = served.address.trim_start_matches("http://").to_owned();
    let healthy = run(deploy_gate(dir.path())
        .arg("healthcheck")
        .env("DEPLOY_GATE_BIND", &bind));
    assert!(healthy.status.success(), "healthcheck of a running service");

    for page in ["/healthz", "/readyz", "/openapi.json", "/docs"] {
        let answer = client
            .get(format!("{}{page}", served.address))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{page}");
    }
    assert!(served.terminate().success());
    let unhealthy = run(deploy_gate(dir.path())
        .arg("healthcheck")
        .env("DEPLOY_GATE_BIND", &bind));
    assert!(
        !unhealthy.status.success(),
        "healthcheck of a stopped service"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_never_reach_logs_or_answers_and_rotated_keys_all_work() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = [
        (
            "DEPLOY_GATE_API_KEY",
            "old-key-aaaa1111aaaa1111aaaa,new-key-bbbb2222bbbb2222bbbb",
        ),
        ("DEPLOY_GATE_TOKEN_SECRET", "token-secret-cccc3333"),
        // A closed port: sending fails and is retried, with its error logged.
        (
            "DEPLOY_GATE_SMTP_URL",
            "smtp://mailer:smtp-pass-dddd4444@127.0.0.1:9",
        ),
        ("DEPLOY_GATE_AZURE_DEVOPS_URL", "http://127.0.0.1:9/org"),
        ("DEPLOY_GATE_AZURE_DEVOPS_PAT", "azure-pat-eeee5555"),
        ("DEPLOY_GATE_CALLBACK_HOSTS", "127.0.0.1"),
        ("DEPLOY_GATE_RETRY_BASE", "50ms"),
        ("RUST_LOG", "debug"),
    ];
    let served = Served::start_with(dir.path(), &secrets);
    let client = reqwest::Client::new();
    let release = json!({"ReleaseName": "R", "ReleaseId": 1, "TeamProject": "Devx"});
    let mut answers = String::new();
    for (key, expected) in [
        ("old-key-aaaa1111aaaa1111aaaa", 202),
        ("new-key-bbbb2222bbbb2222bbbb", 200),
        ("wrong-key-ffff6666", 401),
    ] {
        let answer = client
            .post(format!("{}/release?mode=callback", served.address))
            .bearer_auth(key)
            .header("PlanUrl", "http://127.0.0.1:9/")
            .header("ProjectId", "p")
            .header("HubName", "checks")
            .header("PlanId", "plan")
            .header("JobId", "job")
            .header("TaskInstanceId", "task")
            .header("AuthToken", "job-token-gggg7777")
            .json(&release)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), expected, "key {key}");
        answers.push_str(&format!("{:?}", answer.headers()));
        answers.push_str(&answer.text().await.unwrap());
    }
    let bad_token = client
        .get(format!(
            "{}/approval?token=token-secret-cccc3333",
            served.address
        ))
        .send()
        .await
        .unwrap();
    answers.push_str(&bad_token.text().await.unwrap());
    // The failing email job retries, logging its error, twice (no wall-clock pause).
    for attempt in 1..=2 {
        served.wait_for_event(&format!("failed email attempt {attempt}"), |event| {
            event["message"] == "job failed; will retry"
                && event["error"].as_str().is_some_and(|e| e.contains("SMTP"))
        });
    }

    let logs = served.output.lock().unwrap().clone();
    for leak in [
        "aaaa1111", "bbbb2222", "ffff6666", "cccc3333", "dddd4444", "eeee5555", "gggg7777",
    ] {
        assert!(!logs.contains(leak), "{leak} appears in the logs");
        assert!(!answers.contains(leak), "{leak} appears in an answer");
    }
    for key in [
        "old-key-aaaa1111aaaa1111aaaa",
        "new-key-bbbb2222bbbb2222bbbb",
        "wrong-key-ffff6666",
    ] {
        let fingerprint = deploy_gate::secret::Secret::new(key).fingerprint();
        assert!(
            logs.contains(&fingerprint),
            "the log names {key} by {fingerprint}"
        );
    }
    assert!(
        logs.contains("SMTP"),
        "the failing email was logged: {logs}"
    );
}

/// The release id in an approval email's subject ("… (Devx #12)").
fn release_of(mail: &smtp::ReceivedMail) -> String {
    let subject = mail.subject();
    let after = subject.rsplit_once('#').expect("a release id").1;
    after.trim_end_matches(')').to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_fan_out_again_and_again_loses_no_email_decision_or_callback() {
    const ROUNDS: u64 = 5;
    const RELEASES_PER_ROUND: u64 = 20;
    const APPROVERS: [&str; 3] = ["ana@example.com", "bo@example.com", "cy@example.com"];
    const WORKERS: usize = 4;

    let dir = tempfile::tempdir().unwrap();
    let smtp = TestSmtp::running();
    let azure = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(204))
        .mount(&azure)
        .await;
    let smtp_url = format!("smtp://127.0.0.1:{}", smtp.port);
    let workers = WORKERS.to_string();
    let env = [
        ("DEPLOY_GATE_SMTP_URL", smtp_url.as_str()),
        (
            "DEPLOY_GATE_APPROVERS",
            "ana@example.com,bo@example.com,cy@example.com",
        ),
        ("DEPLOY_GATE_WORKERS", workers.as_str()),
        ("DEPLOY_GATE_JOB_LEASE", "1s"),
        ("DEPLOY_GATE_RETRY_BASE", "50ms"),
        ("DEPLOY_GATE_RETRY_CAP", "500ms"),
        ("DEPLOY_GATE_POLL_INTERVAL", "100ms"),
        ("DEPLOY_GATE_CALLBACK_HOSTS", "127.0.0.1"),
    ];
    let client = reqwest::Client::new();
    let mut decided = Vec::new();

    for round in 0..ROUNDS {
        let served = Served::start_with(dir.path(), &env);
        let first = round * 100;
        for id in first..first + RELEASES_PER_ROUND {
            let answer = client
                .post(format!("{}/release?mode=callback", served.address))
                .header("PlanUrl", format!("{}/", azure.uri()))
                .header("ProjectId", "p")
                .header("HubName", "checks")
                .header("PlanId", format!("plan-{id}"))
                .header("JobId", "job")
                .header("TaskInstanceId", "task")
                .header("AuthToken", "job-token")
                .json(&json!({"ReleaseName": format!("R{id}"), "ReleaseId": id, "TeamProject": "Devx"}))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 202);
        }
        // Decide the round's first release as soon as its three emails are in, then crash
        // a moment later: the decisions and their callback must survive.
        let target = first.to_string();
        let deadline = Instant::now() + HANG_GUARD;
        let tokens = loop {
            let mails: Vec<_> = smtp
                .received()
                .into_iter()
                .filter(|m| release_of(m) == target)
                .collect();
            if mails.len() >= APPROVERS.len() {
                break mails.iter().map(|m| m.token()).collect::<Vec<_>>();
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: waited {HANG_GUARD:?} for the {} emails of release {target}, got {}",
                APPROVERS.len(),
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        for token in tokens.iter().take(APPROVERS.len()) {
            let answer = client
                .post(format!("{}/approval", served.address))
                .json(&json!({"token": token, "decision": "approve"}))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200);
        }
        decided.push(target);
        tokio::time::sleep(Duration::from_millis(20 + 40 * round)).await;
        served.kill();
        eprintln!(
            "round {round}: killed with {} of {} emails sent so far",
            smtp.received().len(),
            (round + 1) * RELEASES_PER_ROUND * APPROVERS.len() as u64
        );
    }

    // One last start: the leases of the killed processes run out and everything completes.
    let served = Served::start_with(dir.path(), &env);
    let pairs = (ROUNDS * RELEASES_PER_ROUND) as usize * APPROVERS.len();
    smtp.wait_for(pairs).await;
    let deadline = Instant::now() + HANG_GUARD;
    let mails = loop {
        let mails = smtp.received();
        let mut seen: Vec<(String, String)> = mails
            .iter()
            .map(|m| (release_of(m), m.to.join(",")))
            .collect();
        seen.sort();
        seen.dedup();
        if seen.len() == pairs {
            break mails;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {pairs} approver emails arrived",
            seen.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // At most the messages in flight at each crash (one per worker) were sent twice.
    let duplicates = mails.len() - pairs;
    eprintln!("{pairs} approver emails, {duplicates} sent twice");
    assert!(
        duplicates <= ROUNDS as usize * WORKERS,
        "{duplicates} duplicate emails after {ROUNDS} crashes"
    );
    for mail in &mails {
        assert!(mail.html().contains("Review and decide"));
    }

    for id in &decided {
        let release = get_json(&client, &format!("{}/release/Devx/{id}", served.address)).await;
        assert_eq!(release["status"], "approved", "release {id}: {release}");
    }
    // Every decided release's check is told, whatever moment the crash hit.
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        let requests = azure.received_requests().await.unwrap();
        // TaskStarted goes out at registration: only TaskCompleted tells the decision.
        let told: Vec<String> = requests
            .iter()
            .filter(|r| {
                r.body_json::<Value>()
                    .is_ok_and(|b| b["name"] == "TaskCompleted")
            })
            .map(|r| r.url.path().to_owned())
            .collect();
        let missing: Vec<&String> = decided
            .iter()
            .filter(|id| {
                !told
                    .iter()
                    .any(|p| p.contains(&format!("/plans/plan-{id}/")))
            })
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no TaskCompleted for releases {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    served.kill();
}

/// A TCP relay to an SMTP server that holds every connection, unanswered,
/// until opened: to the app, a mail server that delays its answer.
struct HeldSmtpRelay {
    port: u16,
    /// Connections accepted so far.
    connections: tokio::sync::watch::Receiver<usize>,
    open: tokio::sync::watch::Sender<bool>,
}

impl HeldSmtpRelay {
    /// Starts the relay, held, in front of the SMTP server on `upstream`.
    async fn start(upstream: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (count, connections) = tokio::sync::watch::channel(0);
        let (open, opened) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            while let Ok((mut app_side, _)) = listener.accept().await {
                count.send_modify(|n| *n += 1);
                let mut opened = opened.clone();
                tokio::spawn(async move {
                    let _ = opened.wait_for(|open| *open).await;
                    let mut server = tokio::net::TcpStream::connect(("127.0.0.1", upstream))
                        .await
                        .unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut app_side, &mut server).await;
                });
            }
        });
        Self {
            port,
            connections,
            open,
        }
    }

    /// Waits until the app connected (a hang guard only).
    async fn wait_for_a_connection(&mut self) {
        tokio::time::timeout(HANG_GUARD, self.connections.wait_for(|n| *n >= 1))
            .await
            .unwrap_or_else(|_| panic!("waited {HANG_GUARD:?} for the app to connect to SMTP"))
            .unwrap();
    }
}

/// A `POST` sent over its own connection up to its headers, with `Expect:
/// 100-continue`: once the service answered `100 Continue` its handler is
/// reading the body, so the request is in flight until the body is sent.
struct RequestInFlight {
    stream: tokio::net::TcpStream,
    body: Vec<u8>,
}

impl RequestInFlight {
    /// Sends the headers of `POST {path}` with a JSON `body` and waits for `100 Continue`.
    async fn start(address: &str, path: &str, body: &Value) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let body = body.to_string().into_bytes();
        let host = address.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut interim = Vec::new();
        let read_interim = async {
            while !interim.ends_with(b"\r\n\r\n") {
                let mut byte = [0];
                assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "{interim:?}");
                interim.push(byte[0]);
            }
        };
        tokio::time::timeout(HANG_GUARD, read_interim)
            .await
            .unwrap_or_else(|_| panic!("waited {HANG_GUARD:?} for 100 Continue"));
        let interim = String::from_utf8_lossy(&interim);
        assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
        Self { stream, body }
    }

    /// Sends the body and returns the status and the whole answer.
    async fn finish(mut self) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        self.stream.write_all(&self.body).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(HANG_GUARD, self.stream.read_to_end(&mut answer))
            .await
            .unwrap_or_else(|_| panic!("waited {HANG_GUARD:?} for the answer"))
            .unwrap();
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let status = answer
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {answer:?}"));
        (status, answer)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_the_request_and_the_email_in_flight_then_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = TestSmtp::running();
    let mut relay = HeldSmtpRelay::start(smtp.port).await;
    let smtp_url = format!("smtp://127.0.0.1:{}", relay.port);
    let env = [
        ("DEPLOY_GATE_SMTP_URL", smtp_url.as_str()),
        ("DEPLOY_GATE_APPROVERS", "ana@example.com"),
    ];
    let served = Served::start_with(dir.path(), &env);
    let release = json!({"ReleaseName": "R", "ReleaseId": 1, "TeamProject": "Devx"});
    let created = reqwest::Client::new()
        .post(format!("{}/release", served.address))
        .json(&release)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 202);

    // A job in flight: the email job is connected to a mail server that has not answered.
    relay.wait_for_a_connection().await;
    // A request in flight: the pipeline's next poll, its body not sent yet.
    let poll = RequestInFlight::start(&served.address, "/release", &release).await;
    served.send_sigterm();
    served.wait_for_log("shutdown signal received; finishing requests and jobs in flight");

    let (status, answer) = poll.finish().await;
    assert_eq!(status, 200, "the poll in flight is answered: {answer}");
    assert!(answer.contains(r#""status":"pending""#), "{answer}");
    relay.open.send(true).unwrap();
    let exit = served.wait_for_exit();
    assert_eq!(exit.code(), Some(0), "SIGTERM is a clean exit: {exit}");
    // The email in flight was finished before the exit, once.
    let mails = smtp.received();
    assert_eq!(mails.len(), 1, "the email in flight was delivered once");
    assert_eq!(mails[0].to, ["ana@example.com"]);

    // And recorded as sent: started again, the service shows it notified.
    let served = Served::start_with(dir.path(), &env);
    let status = get_json(
        &reqwest::Client::new(),
        &format!("{}/release/Devx/1", served.address),
    )
    .await;
    assert_eq!(status["approvers"][0]["notified"], true, "{status}");
    assert_eq!(served.terminate().code(), Some(0));
    assert_eq!(smtp.received().len(), 1, "not sent again after the restart");
}

/// Where `DEPLOY_GATE_TEST_POSTGRES_URL` names a PostgreSQL server, a fresh
/// schema on it for one test: its URL and a guard that drops it.
async fn postgres_schema() -> Option<(String, PostgresSchema)> {
    use sqlx::Connection;

    let Ok(server) = std::env::var("DEPLOY_GATE_TEST_POSTGRES_URL") else {
        eprintln!(
            "SKIPPED: DEPLOY_GATE_TEST_POSTGRES_URL not set; set it, e.g. to \
             postgres://postgres@127.0.0.1:5432/test, to run this test on PostgreSQL"
        );
        return None;
    };
    let schema = format!("dg_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&server).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let mut url = url::Url::parse(&server).unwrap();
    url.query_pairs_mut()
        .append_pair("options", &format!("-c search_path={schema}"));
    Some((url.into(), PostgresSchema { server, schema }))
}

/// A test's schema, dropped with the guard.
struct PostgresSchema {
    server: String,
    schema: String,
}

impl Drop for PostgresSchema {
    fn drop(&mut self) {
        let (server, schema) = (self.server.clone(), self.schema.clone());
        // Drop may run on the test's runtime thread; the cleanup needs a runtime of its own.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    use sqlx::Connection;
                    let mut admin = sqlx::PgConnection::connect(&server).await?;
                    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                        .execute(&mut admin)
                        .await
                })
        })
        .join();
    }
}

/// Starts the service on `database` with its mail server holding every
/// connection, kills it with SIGKILL while its email job waits for the
/// greeting, starts it again with the mail server answering, and expects the
/// email within 10 s of the restart, once.
async fn an_email_held_at_a_sigkill_arrives_within_10_seconds_of_a_restart(database: &str) {
    let dir = tempfile::tempdir().unwrap();
    let smtp = TestSmtp::running();
    let mut relay = HeldSmtpRelay::start(smtp.port).await;
    let held = format!("smtp://127.0.0.1:{}", relay.port);
    let answering = format!("smtp://127.0.0.1:{}", smtp.port);
    // The default lease and poll interval: what an operator runs.
    let env = |smtp_url| {
        [
            ("DEPLOY_GATE_DATABASE_URL", database),
            ("DEPLOY_GATE_SMTP_URL", smtp_url),
            ("DEPLOY_GATE_APPROVERS", "ana@example.com"),
        ]
    };
    let served = Served::start_with(dir.path(), &env(held.as_str()));
    let release = json!({"ReleaseName": "R", "ReleaseId": 1, "TeamProject": "Devx"});
    let created = reqwest::Client::new()
        .post(format!("{}/release", served.address))
        .json(&release)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 202);
    // The email job is claimed and in hand: connected, waiting for the greeting.
    relay.wait_for_a_connection().await;
    served.kill();

    let served = Served::start_with(dir.path(), &env(answering.as_str()));
    let restarted = Instant::now();
    while smtp.received().is_empty() {
        assert!(
            restarted.elapsed() < Duration::from_secs(10),
            "no email 10 s after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("the email came {:?} after the restart", restarted.elapsed());
    let mails = smtp.received();
    assert_eq!(mails.len(), 1, "sent once");
    assert_eq!(mails[0].to, ["ana@example.com"]);
    assert_eq!(served.terminate().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_held_by_a_killed_process_resumes_within_10_seconds_of_the_restart_on_sqlite() {
    an_email_held_at_a_sigkill_arrives_within_10_seconds_of_a_restart("sqlite://gate.db").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_held_by_a_killed_process_resumes_within_10_seconds_of_the_restart_on_postgres() {
    let Some((url, _schema)) = postgres_schema().await else {
        return;
    };
    an_email_held_at_a_sigkill_arrives_within_10_seconds_of_a_restart(&url).await;
}
