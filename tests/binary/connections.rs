//! The HTTP edge of the built binary: half-sent requests (a head never finished, or
//! dripped a byte at a time) are closed after the head timeout, a kept-alive connection
//! after the idle timeout, and past the connection cap a client is answered `503` with
//! `Connection: close` instead of left hanging; none of it blocks a normal request.

use std::time::{Duration, Instant};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::{HANG_GUARD, Served};

/// The start of a request head, never finished.
const HALF_A_HEAD: &[u8] =
    b"POST /release HTTP/1.1\r\nHost: gate\r\nContent-Type: application/json\r\n";

fn host_of(served: &Served) -> String {
    served.address.trim_start_matches("http://").to_owned()
}

/// Waits until the server closes `stream` (end of file or a reset), reading and
/// returning what it sent; panics after [`HANG_GUARD`].
async fn closed_by_the_server(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buffer = [0; 4096];
    let deadline = tokio::time::Instant::now() + HANG_GUARD;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => panic!("the server kept the connection open for {HANG_GUARD:?}"),
            Ok(Ok(0) | Err(_)) => return String::from_utf8_lossy(&received).into_owned(),
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
        }
    }
}

/// Opens `count` connections that each send [`HALF_A_HEAD`] and nothing more.
async fn half_sent_requests(host: &str, count: usize) -> Vec<TcpStream> {
    let mut streams = Vec::with_capacity(count);
    for _ in 0..count {
        let mut stream = TcpStream::connect(host).await.unwrap();
        stream.write_all(HALF_A_HEAD).await.unwrap();
        streams.push(stream);
    }
    streams
}

#[tokio::test(flavor = "multi_thread")]
async fn hundreds_of_half_sent_requests_neither_block_a_request_nor_stay_open() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start_with(
        dir.path(),
        &[
            ("DEPLOY_GATE_HTTP_HEADER_TIMEOUT", "2s"),
            ("DEPLOY_GATE_API_KEY", "edge-key-0123456789abcdef"),
        ],
    );
    let host = host_of(&served);
    let opened = Instant::now();
    let mut half_sent = half_sent_requests(&host, 300).await;
    // One more drips its head a byte at a time: busy, but never finishing.
    let mut dripping = TcpStream::connect(&host).await.unwrap();
    let drip = tokio::spawn(async move {
        for byte in HALF_A_HEAD.iter().cycle() {
            if dripping.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });

    let client = reqwest::Client::new();
    let health = client
        .get(format!("{}/healthz", served.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let created = client
        .post(format!("{}/release", served.address))
        .bearer_auth("edge-key-0123456789abcdef")
        .json(&serde_json::json!({"ReleaseName": "R1", "ReleaseId": "1", "TeamProject": "Devx"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 202);

    for stream in &mut half_sent {
        closed_by_the_server(stream).await;
    }
    tokio::time::timeout(HANG_GUARD, drip)
        .await
        .expect("the dripping connection is closed too")
        .unwrap();
    assert!(
        opened.elapsed() >= Duration::from_secs(2),
        "not closed before the head timeout"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start_with(dir.path(), &[("DEPLOY_GATE_HTTP_IDLE_TIMEOUT", "2s")]);
    let host = host_of(&served);
    let mut stream = TcpStream::connect(&host).await.unwrap();
    for _ in 0..2 {
        stream
            .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut answer = [0; 4096];
        let read = stream.read(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer[..read]);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    assert_eq!(closed_by_the_server(&mut stream).await, "");
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_connection_cap_a_client_is_answered_503_and_served_again_once_below() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start_with(dir.path(), &[("DEPLOY_GATE_HTTP_MAX_CONNECTIONS", "20")]);
    let host = host_of(&served);
    let half_sent = half_sent_requests(&host, 20).await;

    let mut one_too_many = TcpStream::connect(&host).await.unwrap();
    one_too_many
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let answer = closed_by_the_server(&mut one_too_many).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let lower = answer.to_ascii_lowercase();
    assert!(lower.contains("connection: close"), "{answer}");
    assert!(lower.contains("retry-after:"), "{answer}");
    assert!(
        answer.contains("urn:deploy-gate:problem:too-many-connections"),
        "{answer}"
    );

    drop(half_sent);
    let client = reqwest::Client::new();
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        let answer = client
            .get(format!("{}/healthz", served.address))
            .send()
            .await;
        if answer.is_ok_and(|a| a.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "never served again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_stops_arriving_is_answered_408_and_closed() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start_with(dir.path(), &[("DEPLOY_GATE_HTTP_BODY_TIMEOUT", "2s")]);
    let host = host_of(&served);
    let mut stream = TcpStream::connect(&host).await.unwrap();
    stream
        .write_all(
            format!(
                "POST /release HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
                 Content-Length: 100\r\n\r\n{{\"ReleaseName\":"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let answer = closed_by_the_server(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("urn:deploy-gate:problem:request-timeout"),
        "{answer}"
    );
}
