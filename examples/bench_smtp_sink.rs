//! Bench-only: a local SMTP server that accepts every message and prints one
//! line per message as soon as it is accepted: the time in microseconds since
//! the Unix epoch, a space, and the approval token found in the plain-text part
//! (`-` if there is none). `bench/run` times the fan-out and collects tokens
//! for the approval benchmarks from these lines.
//!
//! `cargo run --release --example bench_smtp_sink -- 127.0.0.1:2525 > mails.log`

use std::{
    io::{LineWriter, Stdout, Write},
    net::TcpListener,
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use mailin_embedded::{Handler, Response, Server, response};

#[derive(Clone)]
struct Sink {
    out: Arc<Mutex<LineWriter<Stdout>>>,
    current: Vec<u8>,
}

impl Handler for Sink {
    fn data_start(&mut self, _: &str, _: &str, _: bool, _: &[String]) -> Response {
        self.current.clear();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        let token = token_in(&self.current).unwrap_or_else(|| "-".to_owned());
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        match writeln!(out, "{micros} {token}") {
            Ok(()) => response::OK,
            Err(_) => response::INTERNAL_ERROR,
        }
    }
}

/// The `token=` value of the first approval link in the message's text part.
fn token_in(raw: &[u8]) -> Option<String> {
    let message = mail_parser::MessageParser::default().parse(raw)?;
    let text = message.body_text(0)?;
    let start = text.find("token=")? + "token=".len();
    let token = text[start..].split_whitespace().next()?;
    Some(token.to_owned())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bind = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:2525".to_owned());
    let sink = Sink {
        out: Arc::new(Mutex::new(LineWriter::new(std::io::stdout()))),
        current: Vec::new(),
    };
    let mut server = Server::new(sink);
    server
        .with_name("bench-smtp-sink")
        // One thread per open connection; lettre's pool keeps a few open.
        .with_num_threads(32)
        .with_tcp_listener(TcpListener::bind(bind)?);
    server.serve()?;
    Ok(())
}
