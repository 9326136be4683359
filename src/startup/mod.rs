//! Building and running the application.

mod app;
mod serve;
mod watch;

pub use app::{App, shutdown_signal};
