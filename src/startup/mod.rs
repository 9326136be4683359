//! Building and running the application.

mod app;

pub use app::{App, shutdown_signal};
