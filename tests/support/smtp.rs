//! A real SMTP server (mailin-embedded) on a loopback port that records every
//! message, for the test targets that need to read the mail deploy-gate sends.

use std::{
    collections::BTreeSet,
    net::TcpListener as StdListener,
    sync::{Arc, Mutex},
    time::Duration,
};

use mailin_embedded::{Handler, Response as SmtpResponse, Server, response};

/// A message received by the test SMTP server.
#[derive(Clone, Debug)]
pub struct ReceivedMail {
    /// Envelope recipients.
    pub to: Vec<String>,
    /// The raw message.
    pub raw: Vec<u8>,
}

impl ReceivedMail {
    /// The decoded plain-text part.
    pub fn text(&self) -> String {
        let parsed = mail_parser::MessageParser::default()
            .parse(&self.raw)
            .expect("a parseable email");
        parsed.body_text(0).expect("a text part").into_owned()
    }

    /// The decoded subject.
    pub fn subject(&self) -> String {
        let parsed = mail_parser::MessageParser::default()
            .parse(&self.raw)
            .expect("a parseable email");
        parsed.subject().unwrap_or_default().to_owned()
    }

    /// The decoded HTML part.
    pub fn html(&self) -> String {
        let parsed = mail_parser::MessageParser::default()
            .parse(&self.raw)
            .expect("a parseable email");
        parsed.body_html(0).expect("an HTML part").into_owned()
    }

    /// The approval link in the plain-text part.
    pub fn link(&self) -> String {
        let text = self.text();
        let start = text.find("http").expect("a link in the email");
        text[start..].split_whitespace().next().unwrap().to_owned()
    }

    /// The token of the approval link.
    pub fn token(&self) -> String {
        let link = self.link();
        link.split("token=")
            .nth(1)
            .expect("a token in the link")
            .to_owned()
    }
}

#[derive(Clone, Default)]
struct Recorder {
    inbox: Arc<Mutex<Vec<ReceivedMail>>>,
    refused: Arc<Mutex<Vec<String>>>,
    current_to: Vec<String>,
    current: Vec<u8>,
}

impl Handler for Recorder {
    fn rcpt(&mut self, to: &str) -> SmtpResponse {
        let to = to.trim_matches(['<', '>']);
        if self.refused.lock().unwrap().iter().any(|r| r == to) {
            response::NO_MAILBOX
        } else {
            response::OK
        }
    }

    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        to: &[String],
    ) -> SmtpResponse {
        self.current_to = to.to_vec();
        self.current.clear();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> SmtpResponse {
        let mail = ReceivedMail {
            to: std::mem::take(&mut self.current_to),
            raw: std::mem::take(&mut self.current),
        };
        self.inbox.lock().unwrap().push(mail);
        response::OK
    }
}

/// A real SMTP server (mailin-embedded) on a loopback port, which can be
/// started late to simulate an outage.
pub struct TestSmtp {
    /// The port, reserved even while the server is not running.
    pub port: u16,
    inbox: Arc<Mutex<Vec<ReceivedMail>>>,
    refused: Arc<Mutex<Vec<String>>>,
    started: bool,
}

impl TestSmtp {
    /// Reserves a port without serving on it yet: connections are refused.
    ///
    /// The port is below the kernel's ephemeral range (32768 and up on Linux),
    /// where no outgoing connection and no listener on port 0 can take it while
    /// the server is down; ports handed out before are never handed out again.
    pub fn reserve() -> Self {
        static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
        const PORTS: std::ops::Range<u16> = 20_000..32_000;
        let mut handed_out = HANDED_OUT.lock().unwrap();
        let start = rand::random_range(PORTS);
        let port = (start..PORTS.end)
            .chain(PORTS.start..start)
            .find(|port| {
                !handed_out.contains(port) && StdListener::bind(("127.0.0.1", *port)).is_ok()
            })
            .expect("a free port below the ephemeral range");
        handed_out.insert(port);
        Self {
            port,
            inbox: Arc::default(),
            refused: Arc::default(),
            started: false,
        }
    }

    /// A running server.
    pub fn running() -> Self {
        let mut smtp = Self::reserve();
        smtp.start();
        smtp
    }

    /// Starts serving on the reserved port.
    pub fn start(&mut self) {
        assert!(!self.started, "the SMTP server is already running");
        let listener = StdListener::bind(("127.0.0.1", self.port)).expect("the reserved SMTP port");
        let recorder = Recorder {
            inbox: self.inbox.clone(),
            refused: self.refused.clone(),
            ..Recorder::default()
        };
        let mut server = Server::new(recorder);
        server
            .with_name("test-smtp")
            // One thread per open connection, and lettre's pool opens more
            // connections than a replica's workers use at once (each goes back
            // to the pool from a spawned task, and up to 10 stay open): two
            // replicas with fast commits held more than 8 and one email waited.
            .with_num_threads(32)
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        self.started = true;
    }

    /// From now on answers `550 Mailbox unavailable` to `RCPT TO` this address;
    /// `accept` takes it back.
    pub fn refuse(&self, address: &str) {
        self.refused.lock().unwrap().push(address.to_owned());
    }

    /// Accepts mail to `address` again.
    pub fn accept(&self, address: &str) {
        self.refused.lock().unwrap().retain(|r| r != address);
    }

    /// Every message received so far.
    pub fn received(&self) -> Vec<ReceivedMail> {
        self.inbox.lock().unwrap().clone()
    }

    /// Waits until at least `count` messages arrived and returns all; panics
    /// after the including crate's `HANG_GUARD`, which only a lost email (or a hang) reaches.
    pub async fn wait_for(&self, count: usize) -> Vec<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + super::HANG_GUARD;
        while tokio::time::Instant::now() < deadline {
            let mails = self.received();
            if mails.len() >= count {
                return mails;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "waited {:?} for {count} emails at the SMTP server, got {}",
            super::HANG_GUARD,
            self.received().len()
        );
    }
}
