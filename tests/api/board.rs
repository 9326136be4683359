//! The release board: `GET /releases` (newest first, filters, pages) and one release's
//! timeline at `GET /releases/{TeamProject}/{ReleaseId}`, as JSON and as pages.

use std::time::Duration;

use deploy_gate::secret::Secret;
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_partial_json, method, path},
};

use crate::{
    fakes::accept_progress,
    helpers::{TestApp, TestSmtp, board_ids, get_json, spawn_app, spawn_app_with},
};

async fn create(app: &TestApp, project: &str, id: &str, approvers: &[&str]) {
    let body = json!({"ReleaseName": format!("R{id}"), "ReleaseId": id, "TeamProject": project,
                      "Approvers": approvers});
    assert_eq!(app.post_release(&body).await.status(), 202);
}

/// Decides the approval emailed to `to` for the release named `R{id}`.
async fn decide_as(app: &TestApp, to: &str, id: &str, decision: &str, comment: Option<&str>) {
    let mail = app.email_about(to, &format!("R{id}"));
    let answer = app.decide(&mail.token(), decision, comment).await;
    assert_eq!(answer.status(), 200);
}

async fn problem(app: &TestApp, path: &str, status: u16) -> Value {
    let response = app
        .client
        .get(format!("{}{path}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), status, "GET {path}");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "GET {path}"
    );
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_board_lists_releases_newest_first_with_status_pending_approvers_age_and_links() {
    let app = spawn_app().await;
    create(&app, "Devx", "1", &["ana@example.com"]).await;
    create(&app, "Devx", "2", &["ana@example.com", "bo@example.com"]).await;
    let stage = json!({"ReleaseName": "R3", "ReleaseId": "3", "TeamProject": "Ops team",
                       "Stage": "prod eu", "Approvers": ["cy@example.com"]});
    assert_eq!(app.post_release(&stage).await.status(), 202);
    app.smtp.wait_for(4).await;
    decide_as(&app, "ana@example.com", "2", "approve", None).await;

    let board = get_json(&app, "/releases").await;
    assert_eq!(board_ids(&board), ["3", "2", "1"]);
    assert_eq!(board["status"], "any");
    assert_eq!(board["limit"], 50);
    assert!(board.get("next").is_none() && board.get("next_cursor").is_none());
    let second = &board["releases"][1];
    assert_eq!(second["status"], "pending");
    assert_eq!(second["pending_approvers"], json!(["bo@example.com"]));
    assert_eq!(
        second["approvals"],
        json!({"required": 2, "approved": 1, "rejected": 0, "pending": 1})
    );
    assert!(second["age_seconds"].as_u64().unwrap() < 60);
    assert!(second["created_at"].is_string() && second["deadline"].is_string());
    let third = &board["releases"][0];
    assert_eq!(third["status_url"], "/release/Ops%20team/3?Stage=prod%20eu");
    assert_eq!(
        third["timeline_url"],
        "/releases/Ops%20team/3?Stage=prod%20eu"
    );
    let status = get_json(&app, third["status_url"].as_str().unwrap()).await;
    assert_eq!(status["Stage"], "prod eu");
    let timeline = get_json(&app, third["timeline_url"].as_str().unwrap()).await;
    assert_eq!(timeline["release"]["ReleaseId"], "3");

    decide_as(&app, "ana@example.com", "1", "approve", None).await;
    let board = get_json(&app, "/releases").await;
    let first = &board["releases"][2];
    assert_eq!(first["status"], "approved");
    assert_eq!(
        first["pending_approvers"],
        json!([]),
        "nobody waits once decided"
    );
    assert!(first["decided_at"].is_string());
}

#[tokio::test]
async fn the_board_filters_by_exact_project_and_by_status() {
    let app = spawn_app().await;
    for (project, id) in [
        ("Devx", "1"),
        ("Devx", "2"),
        ("Devx", "3"),
        ("Devxy", "4"),
        ("Ops", "5"),
    ] {
        create(&app, project, id, &["ana@example.com"]).await;
    }
    app.smtp.wait_for(5).await;
    decide_as(&app, "ana@example.com", "1", "approve", None).await;
    decide_as(&app, "ana@example.com", "2", "reject", Some("no")).await;
    decide_as(&app, "ana@example.com", "4", "reject", None).await;

    let cases = [
        ("?TeamProject=Devx", vec!["3", "2", "1"]),
        ("?TeamProject=Dev", vec![]),
        ("?TeamProject=Devx&status=pending", vec!["3"]),
        ("?TeamProject=Devx&status=rejected", vec!["2"]),
        ("?status=rejected", vec!["4", "2"]),
        ("?status=approved", vec!["1"]),
        ("?status=pending", vec!["5", "3"]),
        ("?status=expired", vec![]),
        ("?status=any&TeamProject=", vec!["5", "4", "3", "2", "1"]),
    ];
    for (query, expected) in cases {
        let board = get_json(&app, &format!("/releases{query}")).await;
        assert_eq!(board_ids(&board), expected, "{query}");
    }
    let board = get_json(&app, "/releases?TeamProject=Devx&status=rejected").await;
    assert_eq!(board["TeamProject"], "Devx");
    assert_eq!(board["status"], "rejected");
}

#[tokio::test]
async fn a_release_past_its_deadline_is_listed_as_expired() {
    let app = spawn_app_with(TestSmtp::running(), |s| {
        s.approval_deadline = Some(Duration::from_secs(1));
    })
    .await;
    create(&app, "Devx", "1", &["ana@example.com"]).await;
    app.wait_for_release("Devx", "1", |s| s["status"] == "expired")
        .await;
    let board = get_json(&app, "/releases?status=expired").await;
    assert_eq!(board_ids(&board), ["1"]);
    assert_eq!(board["releases"][0]["pending_approvers"], json!([]));
    let board = get_json(&app, "/releases?status=pending").await;
    assert_eq!(board_ids(&board), Vec::<&str>::new());
}

#[tokio::test]
async fn pages_follow_each_other_through_next_keeping_filters_and_ignoring_newer_releases() {
    let app = spawn_app().await;
    for id in 1..=5 {
        create(&app, "Devx", &id.to_string(), &["ana@example.com"]).await;
    }
    create(&app, "Ops", "99", &["ana@example.com"]).await;

    let first = get_json(&app, "/releases?TeamProject=Devx&status=pending&limit=2").await;
    assert_eq!(board_ids(&first), ["5", "4"]);
    let next = first["next"].as_str().unwrap().to_owned();
    assert!(
        next.starts_with("/releases?TeamProject=Devx&status=pending&limit=2&cursor="),
        "{next}"
    );
    assert_eq!(
        next,
        format!(
            "/releases?TeamProject=Devx&status=pending&limit=2&cursor={}",
            first["next_cursor"].as_str().unwrap()
        )
    );
    create(&app, "Devx", "6", &["ana@example.com"]).await;

    let second = get_json(&app, &next).await;
    assert_eq!(
        board_ids(&second),
        ["3", "2"],
        "a newer release does not shift the pages"
    );
    let third = get_json(&app, second["next"].as_str().unwrap()).await;
    assert_eq!(board_ids(&third), ["1"]);
    assert!(third.get("next").is_none(), "the last page has no next");

    let all = get_json(&app, "/releases?limit=100").await;
    assert_eq!(board_ids(&all), ["6", "99", "5", "4", "3", "2", "1"]);
    let exact = get_json(&app, "/releases?limit=7").await;
    assert!(
        exact.get("next").is_none(),
        "no empty page after a full one"
    );
}

#[tokio::test]
async fn bad_board_parameters_are_refused_with_400_and_an_unknown_release_with_404() {
    let app = spawn_app().await;
    let long = "p".repeat(257);
    for query in [
        "?limit=0".to_owned(),
        "?limit=101".to_owned(),
        "?limit=ten".to_owned(),
        "?status=approve".to_owned(),
        "?cursor=".to_owned(),
        "?cursor=yesterday".to_owned(),
        "?cursor=-1.5".to_owned(),
        "?TeamProject=De%01vx".to_owned(),
        format!("?TeamProject={long}"),
    ] {
        let body = problem(&app, &format!("/releases{query}"), 400).await;
        assert_eq!(body["status"], 400, "{query}");
    }
    let body = problem(&app, "/releases?cursor=nonsense", 400).await;
    assert!(
        body["detail"].as_str().unwrap().contains("cursor"),
        "{body}"
    );
    problem(&app, "/releases/Devx/1?Stage=a%0Ab", 400).await;
    problem(&app, "/releases/Devx/404", 404).await;
}

#[tokio::test]
async fn with_an_api_key_the_board_and_timelines_require_it_and_browsers_are_asked_to_sign_in() {
    const KEY: &str = "board-key-0123456789abcd";
    let app = spawn_app_with(TestSmtp::running(), |s| s.api_key = Some(Secret::new(KEY))).await;
    let created = app
        .client
        .post(format!("{}/release", app.address))
        .bearer_auth(KEY)
        .json(&json!({"ReleaseName": "R1", "ReleaseId": "1", "TeamProject": "Devx"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 202);

    for path in ["/releases", "/releases/Devx/1"] {
        let url = format!("{}{path}", app.address);
        let refused = problem(&app, path, 401).await;
        assert_eq!(refused["type"], "urn:deploy-gate:problem:unauthorized");
        let wrong = app
            .client
            .get(&url)
            .bearer_auth("nope")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "{path}");
        let bearer = app.client.get(&url).bearer_auth(KEY).send().await.unwrap();
        assert_eq!(bearer.status(), 200, "{path}");
        let basic = app
            .client
            .get(&url)
            .basic_auth("operator", Some(KEY))
            .send()
            .await
            .unwrap();
        assert_eq!(basic.status(), 200, "{path}");

        let page = app
            .client
            .get(&url)
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 401, "{path}");
        assert_eq!(
            page.headers()["www-authenticate"],
            r#"Basic realm="deploy-gate", charset="UTF-8""#,
            "a browser prompts only for a challenge that starts with Basic"
        );
        assert!(
            page.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(page.text().await.unwrap().contains("API key"));
    }
}

/// Azure DevOps accepting one TaskCompleted event (and the task's progress).
async fn azure_accepting_task_completed() -> MockServer {
    let azure = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(
            "/proj/_apis/distributedtask/hubs/checks/plans/plan-1/events",
        ))
        .and(body_partial_json(json!({"name": "TaskCompleted"})))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&azure)
        .await;
    accept_progress(&azure).await;
    azure
}

#[tokio::test]
async fn the_timeline_shows_creation_emails_each_decision_the_outcome_and_the_callback_in_order() {
    let azure = azure_accepting_task_completed().await;
    let app = spawn_app().await;
    let mut request = app
        .client
        .post(format!("{}/release?mode=callback", app.address))
        .json(&json!({
        "ReleaseName": "Desafio-CD", "ReleaseId": "386", "TeamProject": "Devx", "Stage": "prod",
        "Approvers": ["ana@example.com", "bo@example.com"]}));
    for (name, value) in [
        ("PlanUrl", format!("{}/", azure.uri())),
        ("ProjectId", "proj".into()),
        ("HubName", "checks".into()),
        ("PlanId", "plan-1".into()),
        ("JobId", "job-1".into()),
        ("TaskInstanceId", "task-1".into()),
        ("AuthToken", "job-token".into()),
    ] {
        request = request.header(name, value);
    }
    assert_eq!(request.send().await.unwrap().status(), 202);
    let mails = app.smtp.wait_for(2).await;
    for (to, comment) in [
        ("ana@example.com", "canary is green"),
        ("bo@example.com", "ok"),
    ] {
        let mail = mails.iter().find(|m| m.to == [to]).unwrap();
        let decided = app.decide(&mail.token(), "approve", Some(comment)).await;
        assert_eq!(decided.status(), 200);
    }
    app.wait_until_idle().await;

    let timeline = get_json(&app, "/releases/Devx/386?Stage=prod").await;
    assert_eq!(timeline["release"]["status"], "approved");
    let events = timeline["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    let mut sorted_kinds = kinds.clone();
    sorted_kinds.sort_unstable();
    assert_eq!(
        sorted_kinds,
        [
            "approvers_resolved",
            "callback_delivered",
            "callback_registered",
            "created",
            "decided",
            "decision",
            "decision",
            "email_sent",
            "email_sent"
        ]
    );
    assert_eq!(kinds[0], "created");
    let times: Vec<&str> = events.iter().map(|e| e["at"].as_str().unwrap()).collect();
    let position = |kind: &str| kinds.iter().position(|k| *k == kind).unwrap();
    assert!(
        times
            .windows(2)
            .all(|w| parse_time(w[0]) <= parse_time(w[1])),
        "oldest first: {times:?}"
    );
    assert!(position("decision") < position("decided"));
    assert!(position("decided") < position("callback_delivered"));
    let ana = events
        .iter()
        .find(|e| e["kind"] == "decision" && e["approver"] == "ana@example.com")
        .unwrap();
    assert_eq!(ana["decision"], "approved");
    assert_eq!(ana["comment"], "canary is green");
    let decided = &events[position("decided")];
    assert_eq!(decided["status"], "approved");
    assert_eq!(decided["at"], timeline["release"]["decided_at"]);
    assert_eq!(
        events[position("callback_delivered")]["result"],
        "succeeded"
    );
    assert!(
        !timeline.to_string().contains("job-token"),
        "the job token is never shown"
    );

    let page = app
        .client
        .get(format!("{}/releases/Devx/386?Stage=prod", app.address))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("canary is green") && html.contains("Desafio-CD"));
}

fn parse_time(text: &str) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(text).unwrap()
}

#[tokio::test]
async fn a_release_without_approvers_says_why_on_the_board() {
    let app = spawn_app().await;
    let created = app
        .post_release(&json!({"ReleaseName": "R-77", "ReleaseId": "77", "TeamProject": "Devx"}))
        .await;
    assert_eq!(created.status(), 202);
    app.wait_until_idle().await;
    let board = get_json(&app, "/releases").await;
    let entry = &board["releases"][0];
    assert_eq!(entry["ReleaseId"], "77");
    let problem = entry["problem"].as_str().unwrap_or_default();
    assert!(problem.contains("approver"), "the board says why: {board}");
}

#[tokio::test]
async fn the_board_page_refreshes_itself_and_links_home_and_the_api_docs() {
    let app = spawn_app().await;
    let page = app
        .client
        .get(format!("{}/releases", app.address))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains(r#"<meta http-equiv="refresh" content="30">"#),
        "{html}"
    );
    for link in [r#"href="./""#, r#"href="docs""#] {
        assert!(html.contains(link), "{link} in {html}");
    }
}
