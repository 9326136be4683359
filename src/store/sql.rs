//! The seam between the store's logic, written once, and the two databases.
//!
//! Statements use the `$1` parameter style, which SQLite and PostgreSQL both
//! accept, so the same text runs on either. A [`Backend`] binds the parameters
//! in its own encoding (SQLite keeps times as epoch milliseconds and ids as
//! text; PostgreSQL has `timestamptz` and `uuid`), and [`Columns`] reads rows
//! back into the same Rust types. The module is private to the store; its items
//! are `pub` only so that the bounds of the public `SqlStore` can name them.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::migrate::{Migrate, Migrator};
use uuid::Uuid;

use super::StoreError;

/// A statement parameter; `None` is SQL `NULL` of that type.
#[derive(Clone, Debug)]
pub enum Value {
    /// A 64-bit integer.
    Int(Option<i64>),
    /// Text.
    Text(Option<String>),
    /// A point in time.
    Time(Option<DateTime<Utc>>),
    /// An id.
    Uuid(Option<Uuid>),
}

/// A Rust value that can be bound as a statement parameter.
pub trait Param {
    /// The value to bind.
    fn into_value(self) -> Value;
    /// `NULL` of this parameter's type.
    fn null() -> Value;
}

impl Param for i64 {
    fn into_value(self) -> Value {
        Value::Int(Some(self))
    }
    fn null() -> Value {
        Value::Int(None)
    }
}

impl Param for &str {
    fn into_value(self) -> Value {
        Value::Text(Some(self.to_owned()))
    }
    fn null() -> Value {
        Value::Text(None)
    }
}

impl Param for DateTime<Utc> {
    fn into_value(self) -> Value {
        Value::Time(Some(self))
    }
    fn null() -> Value {
        Value::Time(None)
    }
}

impl Param for Uuid {
    fn into_value(self) -> Value {
        Value::Uuid(Some(self))
    }
    fn null() -> Value {
        Value::Uuid(None)
    }
}

impl<T: Param> Param for Option<T> {
    fn into_value(self) -> Value {
        self.map_or_else(T::null, T::into_value)
    }
    fn null() -> Value {
        T::null()
    }
}

/// One statement and its parameters, in order (`$1`, `$2`, …).
#[derive(Debug)]
pub struct Sql {
    /// The statement.
    pub text: &'static str,
    /// Its parameters.
    pub params: Vec<Value>,
}

impl Sql {
    /// A statement without parameters yet.
    pub fn new(text: &'static str) -> Self {
        Self {
            text,
            params: Vec::new(),
        }
    }

    /// Adds the next parameter.
    pub fn bind(mut self, value: impl Param) -> Self {
        self.params.push(value.into_value());
        self
    }
}

/// Reads the columns of a result row as the store's Rust types.
pub trait Columns {
    /// An integer column.
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError>;
    /// A text column.
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    /// A time column.
    fn opt_time(&self, column: &str) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// An id column.
    fn opt_uuid(&self, column: &str) -> Result<Option<Uuid>, StoreError>;

    /// An integer column that is never `NULL`.
    fn int(&self, column: &str) -> Result<i64, StoreError> {
        not_null(column, self.opt_int(column)?)
    }
    /// A text column that is never `NULL`.
    fn text(&self, column: &str) -> Result<String, StoreError> {
        not_null(column, self.opt_text(column)?)
    }
    /// A time column that is never `NULL`.
    fn time(&self, column: &str) -> Result<DateTime<Utc>, StoreError> {
        not_null(column, self.opt_time(column)?)
    }
    /// An id column that is never `NULL`.
    fn uuid(&self, column: &str) -> Result<Uuid, StoreError> {
        not_null(column, self.opt_uuid(column)?)
    }
}

fn not_null<T>(column: &str, value: Option<T>) -> Result<T, StoreError> {
    value.ok_or_else(|| StoreError::Corrupt(format!("{column} is NULL")))
}

/// Something that runs statements: a connection of either database, or a
/// connection kept out of the pool ([`Backend::Kept`]).
#[async_trait]
pub trait Queries: Send {
    /// A result row.
    type Row: Columns + Send;

    /// Runs a statement; returns the number of rows it changed.
    async fn execute(&mut self, sql: Sql) -> Result<u64, StoreError>;
    /// Runs a query returning at most one row.
    async fn fetch_optional(&mut self, sql: Sql) -> Result<Option<Self::Row>, StoreError>;
    /// Runs a query returning any number of rows.
    async fn fetch_all(&mut self, sql: Sql) -> Result<Vec<Self::Row>, StoreError>;

    /// Whether a query finds a row.
    async fn exists(&mut self, sql: Sql) -> Result<bool, StoreError> {
        Ok(self.fetch_optional(sql).await?.is_some())
    }
}

/// Runs the statements of writes: the shared ones, and the two whose text
/// differs between the databases.
pub trait Writes: Queries {
    /// Locks release `$1` until the transaction ends, so that writes to one
    /// release (decisions, approvers, callbacks) happen one after the other.
    const LOCK_RELEASE: &'static str;
    /// Locks the next due job (`$2` is now) until `$1`, returning its columns;
    /// no two connections ever claim the same job.
    const CLAIM_JOB: &'static str;
}

/// A connection of one database, on which the shared store logic runs its
/// statements. Implemented by `SqliteConnection` and `PgConnection`.
pub trait Backend: Writes + Migrate {
    /// A connection kept out of the pool (`SqlStore::keep_connections`).
    type Kept: Kept;

    /// Whether the database takes one writer at a time (SQLite).
    const ONE_WRITER: bool;
    /// Starts a transaction that writes.
    const BEGIN_WRITE: &'static str;
    /// The embedded migrations.
    const MIGRATOR: Migrator;
}

/// A connection kept out of the pool, whose statements complete without
/// waiting (SQLite's, `sqlite_inline`).
pub trait Kept: Writes {
    /// Ends the open transaction without its changes; for a transaction
    /// dropped before its commit.
    fn roll_back(&mut self);
}

/// No connection: PostgreSQL keeps none out of its pool, because a socket can
/// break and the pool's checks replace broken ones.
pub enum NoneKept {}

#[async_trait]
impl Queries for NoneKept {
    type Row = NoneKept;

    async fn execute(&mut self, _: Sql) -> Result<u64, StoreError> {
        match *self {}
    }
    async fn fetch_optional(&mut self, _: Sql) -> Result<Option<NoneKept>, StoreError> {
        match *self {}
    }
    async fn fetch_all(&mut self, _: Sql) -> Result<Vec<NoneKept>, StoreError> {
        match *self {}
    }
}

impl Writes for NoneKept {
    const LOCK_RELEASE: &'static str = "";
    const CLAIM_JOB: &'static str = "";
}

impl Kept for NoneKept {
    fn roll_back(&mut self) {
        match *self {}
    }
}

impl Columns for NoneKept {
    fn opt_int(&self, _: &str) -> Result<Option<i64>, StoreError> {
        match *self {}
    }
    fn opt_text(&self, _: &str) -> Result<Option<String>, StoreError> {
        match *self {}
    }
    fn opt_time(&self, _: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        match *self {}
    }
    fn opt_uuid(&self, _: &str) -> Result<Option<Uuid>, StoreError> {
        match *self {}
    }
}
