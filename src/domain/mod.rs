//! The model and its rules, free of I/O: releases and their approvals, the
//! decision rule, callback registrations, channels and the kinds of jobs.

pub mod approver;
pub mod bidi;
pub mod callback;
pub mod channel;
pub mod job;
pub mod link;
pub mod macros;
pub mod policy;
pub mod progress;
pub mod release;
pub mod settlement;
pub mod sign_in;
pub mod snapshot;
