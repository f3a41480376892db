//! Books in PostgreSQL: where an example participant keeps what it must
//! not forget across a crash (stock, credit, the fleet) together with its
//! decision per instance, in one transaction.
//!
//! The runtime's stores make a redelivered event find its join halves and
//! its done-mark; they cannot make a participant's own state durable. With
//! `--db postgres://…` an example keeps that state here instead of in
//! memory, so that a participant killed between its write and its
//! acknowledgement finds, on redelivery, the decision it made (and repeats
//! it, with the same ids) rather than making a second one, and a restarted
//! process goes on from the state as stored.
//!
//! [`Books::connect`] opens a connection pool (it reconnects by itself: a
//! connection the server dropped is replaced on the next use) and names
//! tables after the deployment's `--prefix`, so that deployments and
//! parallel tests sharing one database never see each other's rows.
//! [`Books::transaction`] runs a piece of work in one transaction and
//! waits out a short outage; what it cannot wait out is a
//! [`BooksError`], which turns into a retryable
//! [`HandlerError`](choreo_runtime::service::HandlerError) with `?` in a
//! handler.
//!
//! ```no_run
//! # async fn demo() -> Result<(), example_support::books::BooksError> {
//! use example_support::books::Books;
//! let books = Books::connect("postgres://postgres@127.0.0.1/test", "demo1.").await?;
//! let stock = books.table("stock")?;
//! books
//!     .create_tables(&[format!(
//!         "CREATE TABLE IF NOT EXISTS {stock} (id bigint PRIMARY KEY, units bigint NOT NULL)"
//!     )])
//!     .await?;
//! let left: i64 = books
//!     .transaction(|tx| {
//!         let stock = stock.clone();
//!         Box::pin(async move {
//!             let row = tx
//!                 .query_one(&format!("SELECT units FROM {stock} WHERE id = $1 FOR UPDATE"), &[&7i64])
//!                 .await?;
//!             Ok(row.get(0))
//!         })
//!     })
//!     .await?;
//! # let _ = left;
//! # Ok(())
//! # }
//! ```

use choreo_runtime::service::HandlerError;
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

pub use deadpool_postgres::{Object as Client, Transaction};
pub use tokio_postgres;
pub use tokio_postgres::Row;

/// What a piece of work given to [`Books::transaction`] returns: a boxed
/// future borrowing the transaction.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How long [`Books::transaction`] waits out an outage by default: short
/// enough to stay well inside a handler's `@timeout` (the ecommerce
/// Payment's is 10 s), so that the runtime, not a timeout, decides what
/// happens next.
pub const DEFAULT_PATIENCE: Duration = Duration::from_secs(5);

/// The longest a table name given to [`Books::table`] may be: with the
/// longest prefix, PostgreSQL's 63-byte identifiers still hold it.
pub const MAX_TABLE_NAME: usize = 24;

/// What went wrong with the books.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BooksError {
    /// The URL, a table name or another setting is not usable.
    #[error("books: {0}")]
    Config(String),
    /// The server cannot be reached, dropped the connection, is restarting,
    /// or the transaction lost a race (serialization failure, deadlock):
    /// trying again later may work.
    #[error("the books do not answer: {0}")]
    Unavailable(String),
    /// The server refused a statement (a bug, or a table changed by hand).
    #[error("books: {0}")]
    Backend(String),
    /// A row holds something the example cannot read back.
    #[error("the books hold unreadable data: {0}")]
    Corrupt(String),
}

impl BooksError {
    /// Whether trying again may work ([`BooksError::Unavailable`]).
    pub fn is_transient(&self) -> bool {
        matches!(self, BooksError::Unavailable(_))
    }
}

/// The error with its causes (tokio-postgres says only "db error" at the
/// top, and the server's message underneath).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

impl From<tokio_postgres::Error> for BooksError {
    fn from(e: tokio_postgres::Error) -> Self {
        let text = chain(&e);
        let transient = match e.code() {
            Some(code) => {
                // Class 08 is "connection exception"; the others are a lost
                // race, or a server shutting down, starting or full.
                code.code().starts_with("08")
                    || [
                        SqlState::T_R_SERIALIZATION_FAILURE,
                        SqlState::T_R_DEADLOCK_DETECTED,
                        SqlState::ADMIN_SHUTDOWN,
                        SqlState::CRASH_SHUTDOWN,
                        SqlState::CANNOT_CONNECT_NOW,
                        SqlState::TOO_MANY_CONNECTIONS,
                    ]
                    .contains(code)
            }
            // Not the server's answer: the connection itself failed (I/O,
            // closed, timed out) — or a value did not convert, which no
            // retry mends.
            None => {
                e.is_closed()
                    || std::error::Error::source(&e)
                        .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some())
                    || text.starts_with("timeout")
            }
        };
        if transient {
            BooksError::Unavailable(text)
        } else {
            BooksError::Backend(text)
        }
    }
}

impl From<PoolError> for BooksError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Backend(e) => BooksError::Unavailable(chain(&e)),
            PoolError::NoRuntimeSpecified => BooksError::Config(e.to_string()),
            other => BooksError::Unavailable(chain(&other)),
        }
    }
}

/// In a handler, `?` on the books: an outage (or anything else the
/// database says) may pass, so the runtime retries the delivery; data that
/// cannot be read back will not, so it is dead-lettered.
impl From<BooksError> for HandlerError {
    fn from(e: BooksError) -> Self {
        match e {
            BooksError::Corrupt(_) | BooksError::Config(_) => HandlerError::rejected(e),
            BooksError::Unavailable(_) | BooksError::Backend(_) => HandlerError::failed(e),
        }
    }
}

/// A PostgreSQL database holding a deployment's books: a connection pool,
/// the table names of the deployment, and how long to wait out an outage.
/// Cheap to clone (the clones share the pool).
#[derive(Clone)]
pub struct Books {
    inner: Arc<Inner>,
    patience: Duration,
}

struct Inner {
    pool: Pool,
    /// Every table of these books starts with it.
    prefix: String,
    /// The URL without credentials.
    shown: String,
}

impl std::fmt::Debug for Books {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Books")
            .field("at", &self.inner.shown)
            .field("tables", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

impl Books {
    /// Connects to the database at `url` (`postgres://user@host:port/db`,
    /// or a libpq-style `host=… user=… dbname=…`) for the deployment whose
    /// topics have `deployment_prefix`: its tables are named
    /// `<table prefix>books_<name>`, the table prefix being the runtime's
    /// own for that deployment
    /// ([`table_prefix`](choreo_runtime::store::postgres::table_prefix)),
    /// so two deployments never share a table. Checks that the server
    /// answers; an error names it without credentials.
    pub async fn connect(url: &str, deployment_prefix: &str) -> Result<Books, BooksError> {
        let shown = choreo_runtime::secret::redact(url);
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e: tokio_postgres::Error| {
                let e = choreo_runtime::secret::scrub(&e.to_string(), url);
                BooksError::Config(format!("the database URL `{shown}`: {e}"))
            })?;
        if config.get_connect_timeout().is_none() {
            // A server that does not answer is an outage like any other,
            // not a handler stuck for the operating system's TCP timeout.
            config.connect_timeout(Duration::from_secs(3));
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                // A connection the server closed is replaced when next
                // taken; one that broke unnoticed fails its statement,
                // which is retried on a fresh one.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(8)
            .build()
            .map_err(|e| BooksError::Config(e.to_string()))?;
        let prefix = format!(
            "{}books_",
            choreo_runtime::store::postgres::table_prefix(deployment_prefix)
        );
        let books = Books {
            inner: Arc::new(Inner {
                pool,
                prefix,
                shown,
            }),
            patience: DEFAULT_PATIENCE,
        };
        // Fail at start, with the server's name, rather than at the first
        // event.
        match books.client().await {
            Ok(client) => drop(client),
            Err(BooksError::Unavailable(reason)) => {
                // The driver's errors may quote the URL's secrets.
                return Err(BooksError::Unavailable(format!(
                    "{}: {}",
                    books.inner.shown,
                    choreo_runtime::secret::scrub(&reason, url)
                )));
            }
            Err(e) => return Err(e),
        }
        Ok(books)
    }

    /// These books, waiting out an outage for up to `patience` in
    /// [`Books::transaction`] (zero: not at all).
    pub fn with_patience(mut self, patience: Duration) -> Books {
        self.patience = patience;
        self
    }

    /// What they are, for the line a process prints at start:
    /// `PostgreSQL postgres://***@127.0.0.1:5432/test (tables demo1_…_books_*)`.
    pub fn description(&self) -> String {
        format!(
            "PostgreSQL {} (tables {}*)",
            self.inner.shown, self.inner.prefix
        )
    }

    /// The URL, without credentials.
    pub fn url(&self) -> &str {
        &self.inner.shown
    }

    /// The prefix of every table of these books.
    pub fn table_prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The full name of table `name` of these books; `name` is lower-case
    /// letters, digits and `_`, at most [`MAX_TABLE_NAME`] long (the
    /// result goes into SQL text as it is).
    pub fn table(&self, name: &str) -> Result<String, BooksError> {
        let ok = !name.is_empty()
            && name.len() <= MAX_TABLE_NAME
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            return Err(BooksError::Config(format!(
                "`{name}` is not a table name (lower-case letters, digits and `_`, at most {MAX_TABLE_NAME})"
            )));
        }
        Ok(format!("{}{name}", self.inner.prefix))
    }

    /// A pooled connection, for statements outside a transaction (each
    /// then commits by itself).
    pub async fn client(&self) -> Result<Client, BooksError> {
        Ok(self.inner.pool.get().await?)
    }

    /// Runs the statements (`CREATE TABLE IF NOT EXISTS …`) in one
    /// transaction. Several processes may do it at once: they take turns
    /// ([`choreo_runtime::store::postgres::create_tables`]).
    pub async fn create_tables(&self, ddl: &[String]) -> Result<(), BooksError> {
        let mut client = self.client().await?;
        choreo_runtime::store::postgres::create_tables(&mut client, &self.inner.prefix, ddl)
            .await?;
        Ok(())
    }

    /// Drops every table of these books (tests and tear-down).
    pub async fn drop_tables(&self) -> Result<(), BooksError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT tablename FROM pg_tables \
                 WHERE schemaname = current_schema() AND left(tablename, length($1)) = $1",
                &[&self.inner.prefix],
            )
            .await?;
        for row in rows {
            let name: String = row.try_get(0)?;
            // Quoted: the name comes from the catalogue, not from us.
            client
                .batch_execute(&format!(
                    "DROP TABLE IF EXISTS \"{}\"",
                    name.replace('"', "\"\"")
                ))
                .await?;
        }
        Ok(())
    }

    /// Runs `work` in one transaction (read committed) on a pooled
    /// connection: committed if it returns `Ok`, rolled back if it returns
    /// `Err`. A transient failure ([`BooksError::is_transient`]: the server
    /// gone, restarting, a deadlock) is retried from the start, with
    /// back-off, for up to the patience ([`DEFAULT_PATIENCE`]); then it is
    /// returned.
    ///
    /// `work` may therefore run more than once, and a failure to commit
    /// may hide a commit that happened: it must look up what an earlier
    /// attempt decided before deciding again (a decision row per instance,
    /// `INSERT … ON CONFLICT DO NOTHING` and read back).
    pub async fn transaction<T, F>(&self, mut work: F) -> Result<T, BooksError>
    where
        F: for<'t> FnMut(&'t Transaction<'_>) -> BoxFuture<'t, Result<T, BooksError>>,
    {
        let deadline = Instant::now() + self.patience;
        let mut pause = Duration::from_millis(50);
        loop {
            match self.attempt(&mut work).await {
                Err(e) if e.is_transient() && Instant::now() + pause < deadline => {
                    tracing::warn!(books = %self.inner.shown, error = %e, "the books do not answer; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                done => return done,
            }
        }
    }

    async fn attempt<T, F>(&self, work: &mut F) -> Result<T, BooksError>
    where
        F: for<'t> FnMut(&'t Transaction<'_>) -> BoxFuture<'t, Result<T, BooksError>>,
    {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // An error drops `tx`, which rolls it back.
        let out = work(&tx).await?;
        tx.commit().await?;
        Ok(out)
    }
}

/// A column read back as a value of `T` (stored as text, e.g. a decimal
/// or a UUID, for lack of the driver's conversions), or
/// [`BooksError::Corrupt`] naming the table and column.
pub fn parse_column<T>(row: &Row, column: &str, table: &str) -> Result<T, BooksError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let text: String = row
        .try_get(column)
        .map_err(|e| BooksError::Corrupt(format!("{table}.{column}: {e}")))?;
    text.parse()
        .map_err(|e| BooksError::Corrupt(format!("{table}.{column} `{text}`: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn errors_say_whether_to_retry_and_become_handler_errors() {
        let down = BooksError::Unavailable("connection refused".into());
        assert!(down.is_transient());
        assert!(HandlerError::from(down).is_retryable());
        let bug = BooksError::Backend("syntax error".into());
        assert!(!bug.is_transient());
        assert!(HandlerError::from(bug).is_retryable());
        let bad = BooksError::Corrupt("x".into());
        assert!(!HandlerError::from(bad).is_retryable());
    }

    #[tokio::test]
    async fn a_bad_url_or_an_absent_server_is_an_error_without_the_password() {
        let e = Books::connect("postgres://app:s3cret@127.0.0.1:1/x", "p.")
            .await
            .unwrap_err();
        assert!(e.is_transient(), "{e}");
        let text = e.to_string();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("127.0.0.1:1"), "{text}");
        let e = Books::connect("postgres://app:s3cret@h:notaport/x", "p.")
            .await
            .unwrap_err();
        assert!(matches!(e, BooksError::Config(_)), "{e}");
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }
}
