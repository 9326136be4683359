// A stand-in for Entra ID's token endpoint over HTTPS, as azure_identity insists
// on: a test CA made with rcgen (its certificate written to a PEM file that
// DEPLOY_GATE_AZURE_CA_FILE names), a TLS listener on loopback with a server
// certificate that CA signed, relaying each connection to a wiremock server
// that answers and records the token requests.

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use serde_json::json;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        self,
        pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    },
};
use wiremock::{
    Mock, MockServer, Request, Respond, ResponseTemplate,
    matchers::{method, path},
};

/// The tenant the tests' service principal lives in.
pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
/// The service principal's application (client) id.
pub const CLIENT_ID: &str = "0d5c3a1e-8f43-4b0c-9b1e-6a7c2f3e4d5b";
/// The service principal's client secret.
pub const CLIENT_SECRET: &str = "client-secret-never-shown";
/// The path of the tenant's token endpoint (OAuth 2.0 v2).
pub const TOKEN_PATH: &str = "/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token";

/// The HTTPS token endpoint and the CA that signed its certificate.
pub struct TokenEndpoint {
    /// Records and answers what reached the endpoint (over plain HTTP behind the TLS relay).
    pub recorder: MockServer,
    /// `https://127.0.0.1:<port>`, the authority host to configure.
    pub authority: String,
    /// While false, connections are closed, open ones and new ones, as a host down would.
    reachable: watch::Sender<bool>,
    /// The test CA's certificate, PEM.
    pub ca_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl TokenEndpoint {
    /// Starts the recorder and the TLS relay in front of it, with a fresh CA.
    pub async fn start() -> Self {
        let recorder = MockServer::start().await;
        let (ca_pem, acceptor) = test_tls();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("test-ca.pem");
        std::fs::write(&ca_file, ca_pem).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority = format!("https://{}", listener.local_addr().unwrap());
        let upstream = *recorder.address();
        let (reachable, open) = watch::channel(true);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !*open.borrow() {
                    continue;
                }
                let acceptor = acceptor.clone();
                let mut open = open.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(client).await else {
                        return;
                    };
                    let Ok(mut plain) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    // A kept-alive connection is cut too, or the client would go on using it.
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut tls, &mut plain) => {}
                        _ = open.wait_for(|open| !*open) => {}
                    }
                });
            }
        });
        Self {
            recorder,
            authority,
            reachable,
            ca_file,
            _dir: dir,
        }
    }

    /// Closes every connection from now on (`false`), or serves again (`true`).
    pub fn set_reachable(&self, reachable: bool) {
        self.reachable.send_replace(reachable);
    }

    /// Answers the tenant's token requests with `responder` (from now on, in place
    /// of what answered before; what was received is forgotten).
    pub async fn answering(&self, responder: impl Respond + 'static) {
        self.recorder.reset().await;
        Mock::given(method("POST"))
            .and(path(TOKEN_PATH))
            .respond_with(responder)
            .mount(&self.recorder)
            .await;
    }

    /// The token requests received so far.
    pub async fn requests(&self) -> Vec<Request> {
        self.recorder.received_requests().await.unwrap_or_default()
    }
}

/// The test CA's certificate (PEM) and an acceptor presenting a certificate it
/// signed for `127.0.0.1` and `localhost`.
fn test_tls() -> (String, TlsAcceptor) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "deploy-gate test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_certificate = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let mut server =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    server
        .distinguished_name
        .push(DnType::CommonName, "token endpoint");
    let server_certificate = server.signed_by(&server_key, &issuer).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(server_certificate.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .unwrap();
    (ca_certificate.pem(), TlsAcceptor::from(Arc::new(config)))
}

/// An Entra ID token answer: `access_token` valid for `expires_in` seconds.
pub fn token_answer(access_token: &str, expires_in: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "token_type": "Bearer",
        "expires_in": expires_in,
        "ext_expires_in": expires_in,
        "access_token": access_token,
    }))
}

/// Entra ID refusing the client credentials, as it answers a wrong secret.
pub fn invalid_client() -> ResponseTemplate {
    ResponseTemplate::new(401).set_body_json(json!({
        "error": "invalid_client",
        "error_description": "AADSTS7000215: Invalid client secret provided.",
        "error_codes": [7000215],
    }))
}

/// Answers the token requests in turn with `answers`, the last one for good.
pub struct InTurn {
    answers: Vec<ResponseTemplate>,
    next: AtomicUsize,
}

impl InTurn {
    /// The answers, in order.
    pub fn new(answers: Vec<ResponseTemplate>) -> Self {
        Self {
            answers,
            next: AtomicUsize::new(0),
        }
    }
}

impl Respond for InTurn {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let at = self.next.fetch_add(1, Ordering::SeqCst);
        self.answers[at.min(self.answers.len() - 1)].clone()
    }
}
