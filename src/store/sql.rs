//! Statements written once for both databases.
//!
//! Statements use the `$1` parameter style, which SQLite and PostgreSQL both
//! accept, so the same text runs on either. Each database binds the
//! parameters in its own encoding (SQLite keeps times as epoch milliseconds and
//! ids as text; PostgreSQL has `timestamptz` and `uuid`), and [`Columns`] reads
//! rows back into the same Rust types. The two statements whose text differs
//! are each database's [`Dialect`].

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
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
#[derive(Clone, Debug)]
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

/// An `INSERT` of several rows in one statement (one round trip for all of
/// them): its text for each number of rows up to [`Rows::MOST`], written once.
/// Each row's parameters follow the previous row's: row 2 of a 4-column
/// statement binds `$5` to `$8`.
pub struct Rows {
    /// Parameters before the `VALUES` list's, bound first.
    before: usize,
    /// The statement up to its `VALUES` list.
    head: &'static str,
    /// Parameters per row.
    columns: usize,
    /// What follows the `VALUES` list (`ON CONFLICT …`, `RETURNING …`), or "".
    tail: &'static str,
    /// The text for `n` rows at index `n - 1`, written when first needed.
    texts: [OnceLock<String>; Rows::MOST],
}

impl Rows {
    /// The most rows in one statement; callers insert more in chunks of it.
    pub const MOST: usize = 16;

    /// A statement inserting rows of `columns` parameters each.
    pub const fn new(head: &'static str, columns: usize, tail: &'static str) -> Self {
        Self::after(0, head, columns, tail)
    }

    /// The same, in a statement whose own parameters `$1` to `$before` come
    /// first: the rows' parameters are numbered after them.
    pub const fn after(
        before: usize,
        head: &'static str,
        columns: usize,
        tail: &'static str,
    ) -> Self {
        Self {
            before,
            head,
            columns,
            tail,
            texts: [const { OnceLock::new() }; Rows::MOST],
        }
    }

    /// The statement inserting `rows` rows (1 to [`Rows::MOST`]).
    pub fn sql(&'static self, rows: usize) -> Sql {
        let rows = rows.clamp(1, Self::MOST);
        let text = self.texts[rows - 1].get_or_init(|| {
            let values: Vec<String> = (0..rows)
                .map(|row| {
                    let first = self.before + row * self.columns + 1;
                    let params: Vec<String> = (first..first + self.columns)
                        .map(|number| format!("${number}"))
                        .collect();
                    format!("({})", params.join(", "))
                })
                .collect();
            format!("{} VALUES {}{}", self.head, values.join(", "), self.tail)
        });
        Sql::new(text)
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

/// The statements whose text differs between the databases.
pub struct Dialect {
    /// Locks release `$1` until the transaction ends, so that writes to one
    /// release (decisions, approvers, callbacks) happen one after the other.
    pub lock_release: &'static str,
    /// Locks the next due job (`$2` is now) until `$1`, returning its columns;
    /// no two connections ever claim the same job.
    pub claim_job: &'static str,
    /// Locks release `$3`'s first `$5` due jobs of kind `$4` (`$2` is now)
    /// until `$1`, returning their columns (with the release's snapshot as
    /// [`Dialect::claim_job`] does, one job's rows after the other's); jobs
    /// locked elsewhere are left there.
    pub claim_release_jobs: &'static str,
    /// Where the database stores a round's approvers and claims their jobs
    /// in one statement (PostgreSQL's function of migration 0018), that
    /// statement: as [`Store::approvers_found`](super::Store::approvers_found),
    /// its rows as [`Dialect::claim_release_jobs`]'s, or one row with a null
    /// `claimed_job_id` when it claimed none, or no row when it wrote nothing.
    pub approvers_found: Option<&'static str>,
    /// Whether a statement can write in a `WITH` and answer rows in the same
    /// statement (PostgreSQL; SQLite writes nothing in a `WITH`): one round trip
    /// where there would be several. Where it can, [`Dialect::claim_job`]
    /// returns the job's columns named `claimed_…` joined with its release's
    /// snapshot (`releases::snapshot_columns!`), as every job reads its
    /// release first, and a round's approvers are stored in one statement.
    pub writes_in_with: bool,
    /// Rounds concluded before `$1`, at most `$2`, none of them with a live job;
    /// locked on PostgreSQL, where rounds locked elsewhere are skipped.
    pub concluded_before: &'static str,
    /// Rounds expired before `$1`, at most `$2`, likewise.
    pub expired_before: &'static str,
    /// The board's candidates for `status=pending` (`listing::pending_candidates!`).
    pub pending_candidates: &'static str,
    /// The same, of project `$5`.
    pub pending_candidates_of_project: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    static PAIRS: Rows = Rows::new("INSERT INTO t (a, b)", 2, " RETURNING a");

    #[test]
    fn each_row_binds_the_parameters_after_the_previous_rows() {
        assert_eq!(
            PAIRS.sql(1).text,
            "INSERT INTO t (a, b) VALUES ($1, $2) RETURNING a"
        );
        assert_eq!(
            PAIRS.sql(3).text,
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4), ($5, $6) RETURNING a"
        );
    }

    #[test]
    fn the_rows_parameters_follow_the_statements_own() {
        static AFTER_TWO: Rows = Rows::after(2, "WITH v (a, b) AS (", 2, ") SELECT $1, $2");
        assert_eq!(
            AFTER_TWO.sql(2).text,
            "WITH v (a, b) AS ( VALUES ($3, $4), ($5, $6)) SELECT $1, $2"
        );
    }

    #[test]
    fn a_row_count_past_either_end_gets_the_statement_at_that_end() {
        assert_eq!(PAIRS.sql(Rows::MOST + 1).text, PAIRS.sql(Rows::MOST).text);
        assert_eq!(PAIRS.sql(0).text, PAIRS.sql(1).text);
    }
}
