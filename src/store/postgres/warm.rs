//! [`Connections`]: sqlx's pool, with connections handed from one statement to
//! the next without going back to it.
//!
//! sqlx pings every connection it gets back, a round trip each: about ten of
//! the 23 round trips of a release in a fan-out (BENCHMARKS.md, change 41).
//! A connection whose statement ended with the server's answer is therefore
//! kept warm here, out of the pool (sqlx counts it in use), for the next
//! statement to take. It goes back to the pool once it has been out of it for
//! [`OUT_OF_POOL`], at the next take or hand-on: sqlx then still tests it,
//! closes it past its lifetime and reaps it when idle, and a connection left
//! warm while the service was quiet is tested before it is used again. It goes
//! back at once while someone waits for the pool, which would not see it
//! here; and so does a connection dropped mid-statement, or whose statement
//! did not reach the server: the ping tells whether it can be used again.

use std::{
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use sqlx::{PgPool, pool::PoolConnection};

use crate::store::StoreError;

/// How long a connection is handed on before it goes back to sqlx's pool.
const OUT_OF_POOL: Duration = Duration::from_secs(1);

/// A connection out of sqlx's pool, and since when.
pub struct Out {
    /// The connection.
    pub conn: PoolConnection<sqlx::Postgres>,
    since: Instant,
}

/// sqlx's pool and the connections kept warm beside it; cheap to clone.
#[derive(Clone)]
pub struct Connections {
    pool: PgPool,
    beside: Arc<Mutex<Beside>>,
}

/// What is beside the pool.
#[derive(Default)]
struct Beside {
    /// Connections handed on, the last one last.
    warm: Vec<Out>,
    /// Takers waiting for the pool, none warm when they came.
    waiting: usize,
}

impl Connections {
    /// Connections from `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            beside: Arc::default(),
        }
    }

    /// sqlx's pool, for what takes its connections itself (the migrator).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The connection handed on last, or one from the pool.
    pub async fn take(&self) -> Result<Out, StoreError> {
        {
            let mut beside = self.beside();
            beside.send_back_stale();
            if let Some(out) = beside.warm.pop() {
                return Ok(out);
            }
            beside.waiting += 1;
        }
        let waited = Waited(self);
        let conn = self.pool.acquire().await;
        drop(waited);
        Ok(Out {
            conn: conn?,
            since: Instant::now(),
        })
    }

    /// Hands a connection whose statement ended with the server's answer on
    /// to the next taker; back to the pool while someone waits for it or once
    /// it has been out of it too long, with any other kept warm as long.
    pub fn hand_on(&self, out: Out) {
        let mut beside = self.beside();
        beside.send_back_stale();
        if beside.waiting == 0 && out.fresh() {
            beside.warm.push(out);
        }
    }

    /// As many connections as the pool may hold.
    pub fn max(&self) -> u32 {
        self.pool.options().get_max_connections()
    }

    fn beside(&self) -> MutexGuard<'_, Beside> {
        // Nothing panics while holding the lock; were it to, the lists stay valid.
        self.beside.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Out {
    /// Whether it has been out of the pool for less than [`OUT_OF_POOL`].
    fn fresh(&self) -> bool {
        self.since.elapsed() < OUT_OF_POOL
    }
}

impl Beside {
    /// Drops the connections out of the pool too long, back into it.
    fn send_back_stale(&mut self) {
        self.warm.retain(Out::fresh);
    }
}

/// A taker's wait for the pool, counted until it ends, cancelled or not.
struct Waited<'a>(&'a Connections);

impl Drop for Waited<'_> {
    fn drop(&mut self) {
        self.0.beside().waiting -= 1;
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use sqlx::{Row as _, postgres::PgPoolOptions};

    use super::*;

    /// The test server's URL, as for the integration suite; `None` says the
    /// test was skipped.
    fn postgres_url(test: &str) -> Option<String> {
        let url = std::env::var("DEPLOY_GATE_TEST_POSTGRES_URL").ok();
        if url.is_none() {
            // Written past the test harness's output capture, which would swallow it.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: store::postgres::warm::{test}: DEPLOY_GATE_TEST_POSTGRES_URL not set"
            );
        }
        url
    }

    async fn connections(url: &str, max: u32) -> Connections {
        let pool = PgPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await
            .unwrap();
        Connections::new(pool)
    }

    async fn backend(out: &mut Out) -> i32 {
        sqlx::query("SELECT pg_backend_pid() AS pid")
            .fetch_one(&mut *out.conn)
            .await
            .unwrap()
            .get("pid")
    }

    #[tokio::test]
    async fn a_connection_handed_on_is_the_next_taken_and_stays_out_of_the_pool() {
        let Some(url) = postgres_url("a_connection_handed_on_…") else {
            return;
        };
        let connections = connections(&url, 4).await;
        let mut first = connections.take().await.unwrap();
        let pid = backend(&mut first).await;
        connections.hand_on(first);
        assert_eq!(connections.beside().warm.len(), 1);
        let mut next = connections.take().await.unwrap();
        assert_eq!(backend(&mut next).await, pid);
        assert!(connections.beside().warm.is_empty());
    }

    #[tokio::test]
    async fn a_connection_out_of_the_pool_too_long_goes_back() {
        let Some(url) = postgres_url("a_connection_out_of_the_pool_too_long_goes_back") else {
            return;
        };
        let connections = connections(&url, 4).await;
        let mut out = connections.take().await.unwrap();
        out.since -= OUT_OF_POOL;
        connections.hand_on(out);
        assert!(connections.beside().warm.is_empty());
        // sqlx pings it on its way back, in a task of its own.
        while connections.pool.num_idle() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_connection_left_warm_too_long_is_not_taken_but_goes_back() {
        let Some(url) = postgres_url("a_connection_left_warm_too_long_…") else {
            return;
        };
        let connections = connections(&url, 4).await;
        let out = connections.take().await.unwrap();
        connections.hand_on(out);
        // Nothing took it or was handed on for a second, as on a quiet service.
        connections.beside().warm[0].since -= OUT_OF_POOL;
        let taken = connections.take().await.unwrap();
        assert!(taken.fresh(), "one from the pool");
        assert!(connections.beside().warm.is_empty());
    }

    #[tokio::test]
    async fn a_taker_waiting_for_the_pool_gets_the_connection_handed_on() {
        let Some(url) = postgres_url("a_taker_waiting_for_the_pool_…") else {
            return;
        };
        let connections = connections(&url, 1).await;
        let only = connections.take().await.unwrap();
        let waiter = tokio::spawn({
            let connections = connections.clone();
            async move { connections.take().await.map(|_| ()) }
        });
        while connections.beside().waiting == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Kept warm, it would wait there until it had been out for a second.
        connections.hand_on(only);
        assert!(connections.beside().warm.is_empty());
        waiter.await.unwrap().unwrap();
        assert_eq!(connections.beside().waiting, 0);
    }
}
