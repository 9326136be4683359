//! Whether a PostgreSQL database has changed, learnt from its notifications.
//!
//! PostgreSQL has no version that every replica's commit moves and that can be
//! read without a round trip, so one is kept here: migration 0012 makes every
//! insert, update or delete of the service's tables send a notification (on
//! the [`CHANNEL`], the payload naming the table's schema) when its
//! transaction commits, and one connection per process `LISTEN`s for them.
//! Jobs notify only while failing (migration 0017): no answer shows the others.
//! Each notification, each commit of this process, and each loss or return of
//! the listening connection moves the version on.
//!
//! While that connection is down notifications are lost, so the version is
//! unknown (`None`) from the moment the loss is noticed until the connection
//! listens again; it then comes back as a version never given before, so
//! nothing kept before the loss is served after it. A connection the server
//! ended (a restart, `pg_terminate_backend`) is noticed as soon as its socket
//! closes; one that dies without a word (a network cut) only when the socket
//! reports it, and until then a commit elsewhere is not seen here.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgListener, PgPoolOptions},
};
use tokio_util::sync::CancellationToken;

use super::DataVersion;

/// The channel migration 0012's triggers notify, with the table's schema as payload.
pub const CHANNEL: &str = "deploy_gate_changes";

/// Set in [`Changes`]' state while nobody listens: the version is unknown.
const NOT_LISTENING: u64 = 1 << 63;

/// The pause before listening again after the connection was lost, doubled
/// after each failed attempt up to [`LONGEST_PAUSE`]: a server that ended the
/// connection may be restarting.
const FIRST_PAUSE: Duration = Duration::from_millis(200);
const LONGEST_PAUSE: Duration = Duration::from_secs(5);

/// The version of a PostgreSQL database as this process knows it.
#[derive(Debug)]
pub struct Changes {
    /// A counter moved by every change, with [`NOT_LISTENING`] set while it
    /// cannot be trusted. Starts not listening.
    state: AtomicU64,
}

impl Default for Changes {
    fn default() -> Self {
        Self {
            state: AtomicU64::new(NOT_LISTENING),
        }
    }
}

impl Changes {
    /// The version as of now; `None` while nobody listens.
    pub fn version(&self) -> Option<DataVersion> {
        let state = self.state.load(Ordering::SeqCst);
        (state & NOT_LISTENING == 0).then(|| DataVersion::counted(state))
    }

    /// Something was committed: by this process, or by another (a notification).
    pub fn moved(&self) {
        self.update(|state| state + 1);
    }

    /// The listening connection was lost: notifications may be missed from now on.
    fn lost(&self) {
        self.update(|state| (state + 1) | NOT_LISTENING);
    }

    /// The connection listens again: notifications are received from now on.
    fn listening(&self) {
        self.update(|state| (state + 1) & !NOT_LISTENING);
    }

    fn update(&self, change: impl Fn(u64) -> u64) {
        // The closure never refuses, so the update always succeeds.
        let _ = self
            .state
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |state| {
                Some(change(state))
            });
    }
}

/// The pool of the listening connection: one connection, named `… changes`
/// after the configured application name, so operators can tell it apart.
pub fn listener_pool(options: &PgConnectOptions, connect_timeout: Duration) -> PgPool {
    let name = format!(
        "{} changes",
        options.get_application_name().unwrap_or("deploy-gate")
    );
    PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(connect_timeout)
        .connect_lazy_with(options.clone().application_name(&name))
}

/// Listens for the database's changes until `stop` is cancelled, moving
/// `changes` on with each, and listening again whenever the connection is lost.
pub async fn follow(changes: Arc<Changes>, pool: PgPool, stop: CancellationToken) {
    let mut pause = FIRST_PAUSE;
    loop {
        match listen(&pool).await {
            Ok((listener, schema)) => {
                changes.listening();
                pause = FIRST_PAUSE;
                let ended = tokio::select! {
                    () = stop.cancelled() => return,
                    ended = receive(listener, &schema, &changes) => ended,
                };
                changes.lost();
                tracing::warn!(error = %ended, "lost the connection that listens for other replicas' changes; answers are read from the database until it is back");
            }
            Err(err) => {
                tracing::warn!(error = %err, retry_in_ms = pause.as_millis(), "could not listen for other replicas' changes");
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

/// A connection that listens on the [`CHANNEL`], and the schema whose
/// changes concern this process (the first of its search path).
async fn listen(pool: &PgPool) -> Result<(PgListener, String), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    // A lost connection ends `try_recv` at once, without connecting again,
    // so the loss is known before anything else happens.
    listener.eager_reconnect(false);
    listener.ignore_pool_close_event(true);
    listener.listen(CHANNEL).await?;
    let schema: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(&mut listener)
        .await?;
    Ok((listener, schema))
}

/// Receives notifications until the connection is lost; why it ended.
async fn receive(mut listener: PgListener, schema: &str, changes: &Changes) -> String {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                if notification.payload() == schema {
                    changes.moved();
                }
            }
            Ok(None) => return "the connection closed".to_owned(),
            Err(err) => return err.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_unknown_until_listening_and_never_comes_back_after_a_loss() {
        let changes = Changes::default();
        assert_eq!(changes.version(), None);
        changes.moved();
        assert_eq!(changes.version(), None, "a commit while nobody listens");

        changes.listening();
        let first = changes.version().expect("listening");
        assert_eq!(changes.version(), Some(first.clone()));
        changes.moved();
        let second = changes.version().unwrap();
        assert_ne!(second, first);

        changes.lost();
        assert_eq!(changes.version(), None);
        changes.moved();
        changes.listening();
        let third = changes.version().unwrap();
        assert!(third != first && third != second);
    }
}
