//! The integration suite of `tests/api`, run on PostgreSQL: every module that
//! `tests/api/main.rs` lists, unchanged, each app on a fresh schema of the
//! database named by `DEPLOY_GATE_TEST_POSTGRES_URL` (see `helpers.rs`), plus
//! outages that only a database server can have. Without that variable the
//! run says SKIPPED and ends.

include!("../api/main.rs");

mod board_plan;
mod changes;
mod job_queue;
mod locks;
mod outage;
mod plans;
mod restart;
