//! What a connection is doing, for its timeouts: waiting for a request head (since the
//! connection or the head's first byte), idle between requests, or serving requests.

use std::{
    io,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::Notify,
    time::Instant,
};

use crate::settings::ConnectionSettings;

/// A connection's state, shared by its socket, its requests and its timer.
#[derive(Clone)]
pub struct Activity(Arc<Shared>);

struct Shared {
    state: Mutex<State>,
    /// Woken when the last request in flight finishes.
    idle: Notify,
}

#[derive(Clone, Copy)]
enum State {
    /// Waiting for a request head whose time started then (the connection, or its first byte).
    Head(Instant),
    /// Kept alive between requests since then.
    Idle(Instant),
    /// Serving this many requests.
    Busy(usize),
}

impl Activity {
    /// A new connection, waiting for its first request head.
    pub fn new() -> Self {
        Self(Arc::new(Shared {
            state: Mutex::new(State::Head(Instant::now())),
            idle: Notify::new(),
        }))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes arrived: on an idle connection, the next request's head has begun.
    fn received(&self) {
        let mut state = self.state();
        if let State::Idle(_) = *state {
            *state = State::Head(Instant::now());
        }
    }

    /// A request is being served until the returned guard is dropped.
    pub fn busy(&self) -> Busy {
        let mut state = self.state();
        *state = match *state {
            State::Busy(n) => State::Busy(n + 1),
            State::Head(_) | State::Idle(_) => State::Busy(1),
        };
        Busy(self.clone())
    }

    /// Resolves once the connection has waited too long for a request head, or idled too
    /// long between requests; never while a request is in flight.
    pub async fn timed_out(&self, limits: &ConnectionSettings) {
        loop {
            let deadline = match *self.state() {
                State::Head(since) => Some(since + limits.header_timeout),
                State::Idle(since) => Some(since + limits.idle_timeout),
                State::Busy(_) => None,
            };
            match deadline {
                Some(deadline) if deadline <= Instant::now() => return,
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => self.0.idle.notified().await,
            }
        }
    }
}

/// A request in flight; dropping it ends it.
pub struct Busy(Activity);

impl Drop for Busy {
    fn drop(&mut self) {
        let mut state = self.0.state();
        *state = match *state {
            State::Busy(n) if n > 1 => State::Busy(n - 1),
            _ => State::Idle(Instant::now()),
        };
        if let State::Idle(_) = *state {
            self.0.0.idle.notify_one();
        }
    }
}

/// A socket that reports the bytes it receives to its connection's [`Activity`].
pub struct Watched<T> {
    inner: T,
    activity: Activity,
}

impl<T> Watched<T> {
    /// Watches `inner` for `activity`.
    pub fn new(inner: T, activity: Activity) -> Self {
        Self { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.received();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
