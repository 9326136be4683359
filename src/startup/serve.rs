//! The HTTP server: the routes on hyper connections with the limits poem's `Server` does not
//! offer (it has an inactivity timeout only, which a head dripped a byte at a time never
//! trips): a request-head timeout, a keep-alive idle timeout and a cap on open connections,
//! past which a connection is answered `503` with `Connection: close` instead of hanging.

use std::{convert::Infallible, future::Future, sync::Arc, time::Duration};

use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use poem::{
    Endpoint, Response,
    endpoint::BoxEndpoint,
    http::uri::Scheme,
    listener::{Acceptor, TcpAcceptor},
    web::{LocalAddr, RemoteAddr},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::{OwnedSemaphorePermit, Semaphore},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::watch::{Activity, Watched};
use crate::{api::Problem, settings::ConnectionSettings};

/// Connections over the cap answered at once; more are closed without an answer.
const TURNED_AWAY_AT_ONCE: usize = 64;

/// Longest time spent answering a connection over the cap.
const TURN_AWAY_TIME: Duration = Duration::from_secs(2);

/// Pause after a failed `accept` (out of file descriptors), so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Serves `endpoint` on `acceptor` until `shutdown` resolves; then stops accepting and
/// lets requests in flight finish, for up to `grace`.
pub async fn serve(
    mut acceptor: TcpAcceptor,
    endpoint: BoxEndpoint<'static, Response>,
    limits: ConnectionSettings,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let endpoint = Arc::new(endpoint);
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let turning_away = Arc::new(Semaphore::new(TURNED_AWAY_AT_ONCE));
    let too_many = Arc::new(too_many_connections_answer());
    let stop = CancellationToken::new();
    let connections = TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        let (io, local, remote, scheme) = tokio::select! {
            () = &mut shutdown => break,
            accepted = acceptor.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(error = %err, "could not accept a connection");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        if let Ok(permit) = open.clone().try_acquire_owned() {
            let connection = Connection {
                endpoint: endpoint.clone(),
                local,
                remote,
                scheme,
                limits,
                _permit: permit,
            };
            connections.spawn(connection.serve(io, stop.clone()));
        } else if let Ok(permit) = turning_away.clone().try_acquire_owned() {
            tracing::debug!(remote = %remote, "connection cap reached; answering 503");
            tokio::spawn(turn_away(io, too_many.clone(), permit));
        }
    }
    drop(acceptor);
    stop.cancel();
    connections.close();
    if tokio::time::timeout(grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(grace = ?grace, "requests still in flight after the grace period; closing them");
    }
}

/// One accepted connection and what serving it needs.
struct Connection {
    endpoint: Arc<BoxEndpoint<'static, Response>>,
    local: LocalAddr,
    remote: RemoteAddr,
    scheme: Scheme,
    limits: ConnectionSettings,
    /// Its place under the connection cap, given back when it closes.
    _permit: OwnedSemaphorePermit,
}

impl Connection {
    /// Serves HTTP/1 or HTTP/2 requests until the client closes, a timeout passes with no
    /// request in flight (the connection is then dropped), or `stop` (then requests in
    /// flight finish first).
    async fn serve(self, io: TcpStream, stop: CancellationToken) {
        let activity = Activity::new();
        let Connection {
            endpoint,
            local,
            remote,
            scheme,
            limits,
            _permit,
        } = self;
        let service = hyper::service::service_fn({
            let activity = activity.clone();
            let remote = remote.clone();
            move |req: hyper::Request<hyper::body::Incoming>| {
                let busy = activity.busy();
                let endpoint = endpoint.clone();
                let req = poem::Request::from((req, local.clone(), remote.clone(), scheme.clone()));
                async move {
                    let response = endpoint.get_response(req).await;
                    drop(busy);
                    Ok::<_, Infallible>(hyper::Response::from(response))
                }
            }
        });
        let builder = auto::Builder::new(TokioExecutor::new());
        let io = TokioIo::new(Watched::new(io, activity.clone()));
        let connection = builder.serve_connection_with_upgrades(io, service);
        tokio::pin!(connection);
        tokio::select! {
            _ = &mut connection => return,
            () = activity.timed_out(&limits) => {
                tracing::debug!(remote = %remote, "closing a connection that sent no request in time");
                return;
            }
            () = stop.cancelled() => {}
        }
        connection.as_mut().graceful_shutdown();
        tokio::select! {
            _ = &mut connection => {}
            () = activity.timed_out(&limits) => {}
        }
    }
}

/// The raw HTTP/1.1 answer to a connection over the cap.
fn too_many_connections_answer() -> Vec<u8> {
    let body = serde_json::to_vec(&Problem::too_many_connections()).unwrap_or_default();
    let mut answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: {}\r\ncontent-length: {}\r\n\
         retry-after: 1\r\nconnection: close\r\n\r\n",
        crate::api::PROBLEM_JSON,
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    answer
}

/// Writes `answer` and closes the connection, reading (and dropping) what the client sent
/// meanwhile so that the close does not reset the answer away.
async fn turn_away(mut io: TcpStream, answer: Arc<Vec<u8>>, _permit: OwnedSemaphorePermit) {
    let _ = tokio::time::timeout(TURN_AWAY_TIME, async {
        io.write_all(&answer).await?;
        io.shutdown().await?;
        let mut sink = [0; 4096];
        while io.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}
