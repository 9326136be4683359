// HTTP as clients put it on the wire, over a raw TCP socket: what the request
// helpers (reqwest) would smooth over.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{HANG_GUARD, spawn_app};

/// Writes `request` the way a client that does not wait for `100 Continue` sends it over
/// a network: without reading, its tail still on the wire while the server has the head
/// (on loopback the whole of it would arrive before the server looks).
async fn send_without_reading(stream: &mut TcpStream, request: &[u8]) -> std::io::Result<()> {
    let (head, tail) = request.split_at(64 * 1024);
    stream.write_all(head).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stream.write_all(tail).await
}

/// Reads what the server sends until it closes the connection (or the hang guard).
async fn read_until_closed(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut answer = Vec::new();
    tokio::time::timeout(HANG_GUARD, stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test]
async fn a_client_that_sends_an_oversized_body_at_once_reads_the_413_problem_not_a_reset() {
    // Python's urllib and .NET's HttpClient send the whole body without waiting for
    // `100 Continue`, then read the answer.
    let app = spawn_app().await;
    let host = app.address.trim_start_matches("http://").to_owned();
    let body = format!(
        r#"{{"ReleaseName":"{}","ReleaseId":"1","TeamProject":"Devx"}}"#,
        "x".repeat(3 * 1024 * 1024)
    );
    let mut request = format!(
        "POST /release HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body.as_bytes());
    let mut stream = TcpStream::connect(&host).await.unwrap();
    send_without_reading(&mut stream, &request)
        .await
        .expect("the server reads the whole body");
    let answer = read_until_closed(&mut stream)
        .await
        .expect("an answer, not a reset");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("urn:deploy-gate:problem:body-too-large"),
        "{answer}"
    );
}

#[tokio::test]
async fn an_oversized_chunked_body_sent_at_once_also_reads_the_413() {
    let app = spawn_app().await;
    let host = app.address.trim_start_matches("http://").to_owned();
    let mut request = format!(
        "POST /release HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    let chunk = "y".repeat(64 * 1024);
    for _ in 0..48 {
        request.extend_from_slice(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes());
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let mut stream = TcpStream::connect(&host).await.unwrap();
    send_without_reading(&mut stream, &request)
        .await
        .expect("the server reads the whole body");
    let answer = read_until_closed(&mut stream)
        .await
        .expect("an answer, not a reset");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

#[tokio::test]
async fn a_client_that_waits_for_100_continue_gets_the_413_without_sending_its_body() {
    let app = spawn_app().await;
    let host = app.address.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&host).await.unwrap();
    stream
        .write_all(
            format!(
                "POST /release HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
                 Content-Length: 3145728\r\nExpect: 100-continue\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut head = vec![0; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut head))
        .await
        .expect("an answer before any body")
        .unwrap();
    let answer = String::from_utf8_lossy(&head[..read]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}
