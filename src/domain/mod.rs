//! Domain types and rules, free of I/O.

pub mod approver;
pub mod policy;
pub mod release;
