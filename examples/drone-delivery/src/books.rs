//! The drone services' books in PostgreSQL (`--db postgres://…`): the
//! fleet's assignments, the packages, the flights, the deliveries, the
//! requests and the notifications sent, so that a process that dies loses
//! none of them and a redelivered event finds the decision made for it.
//!
//! The connection, the table names of a deployment and the transactions
//! (retried through a short outage) are the examples' shared
//! [`Books`](example_support::books::Books); this module adds the drone
//! services' tables and what their decisions share: a lock on the fleet,
//! a sequence that orders what happened in every process, counters, and
//! the answers recorded per event.
//!
//! Every decision is made in one transaction with the state it changes
//! (the row it depends on locked with `SELECT … FOR UPDATE`, or the fleet
//! as a whole with `pg_advisory_xact_lock`), and recorded: asked again,
//! after a crash between the commit and the broker's ack, a handler gives
//! the same answer with the same ids.

use crate::drone_delivery::PackageSize;
pub use example_support::books::{Books, BooksError};
use example_support::books::{Row, Transaction};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The names of the drone services' tables in a deployment's books.
#[derive(Debug)]
pub(crate) struct Tables {
    /// The drones: who holds each, how many trips each made.
    pub fleet: String,
    /// Per delivery: the scheduler's answer, and when the drone was
    /// assigned and released (in the sequence's order).
    pub assignment: String,
    /// Per delivery: its package.
    pub package: String,
    /// Per delivery: its flight.
    pub flight: String,
    /// Per delivery: the delivery service's record.
    pub delivery: String,
    /// The answers given, per reaction and event.
    pub decision: String,
    /// Counters of what was done.
    pub counter: String,
    /// The deliveries requested.
    pub request: String,
    /// The notifications sent.
    pub notice: String,
    /// What happened before what.
    seq: String,
    /// The unique index that keeps a drone to one delivery at a time.
    held: String,
    /// The advisory locks of this deployment: its tables' prefix hashed.
    lock_base: u64,
}

/// The drone services' books: the shared [`Books`] and the drone tables in
/// them. Clones share both.
#[derive(Clone)]
pub struct DroneBooks {
    /// The connection pool and the deployment's table names.
    pub books: Books,
    pub(crate) tables: Arc<Tables>,
}

impl std::fmt::Debug for DroneBooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.books.description())
    }
}

impl DroneBooks {
    /// The rows of one query without parameters, read in a transaction of
    /// its own (so that an outage is waited out as for any other).
    pub(crate) async fn rows(&self, sql: String) -> Result<Vec<Row>, BooksError> {
        self.books
            .transaction(move |tx| {
                let sql = sql.clone();
                Box::pin(async move { Ok(tx.query(&sql, &[]).await?) })
            })
            .await
    }

    /// The JSON `column` of `delivery`'s row in `table`, decoded, if there
    /// is one (`what` names it in an error).
    pub(crate) async fn json_of<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
        column: &'static str,
        table: &str,
        delivery: String,
    ) -> Result<Option<T>, BooksError> {
        let sql = format!("SELECT {column} FROM {table} WHERE delivery = $1");
        let row = self
            .books
            .transaction(move |tx| {
                let (sql, delivery) = (sql.clone(), delivery.clone());
                Box::pin(async move { Ok(tx.query_opt(&sql, &[&delivery]).await?) })
            })
            .await?;
        row.map(|r| from_json(what, r.get(0))).transpose()
    }

    /// The drone services' tables in `books`, created if they are missing
    /// (several processes may start at once: they take turns).
    pub async fn open(books: Books) -> Result<DroneBooks, BooksError> {
        let tables = Arc::new(Tables {
            fleet: books.table("drone_fleet")?,
            assignment: books.table("drone_assignment")?,
            package: books.table("drone_package")?,
            flight: books.table("drone_flight")?,
            delivery: books.table("drone_delivery")?,
            decision: books.table("drone_decision")?,
            counter: books.table("drone_counter")?,
            request: books.table("drone_request")?,
            notice: books.table("drone_notice")?,
            seq: books.table("drone_seq")?,
            held: books.table("drone_held")?,
            lock_base: fnv(books.table_prefix().as_bytes(), 0xcbf2_9ce4_8422_2325),
        });
        let db = DroneBooks { books, tables };
        db.create_tables().await?;
        Ok(db)
    }

    /// Where the books are, without credentials.
    pub fn description(&self) -> String {
        self.books.description()
    }

    /// Drops the drone services' tables (tests clean up with it; the
    /// shared [`Books::drop_tables`] drops every table of the books).
    pub async fn drop_tables(&self) -> Result<(), BooksError> {
        self.books.drop_tables().await
    }

    async fn create_tables(&self) -> Result<(), BooksError> {
        let t = &self.tables;
        let ddl = vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {} (idx integer PRIMARY KEY, drone_id text NOT NULL UNIQUE, \
                 class smallint NOT NULL, capacity_kg double precision NOT NULL, holder text, \
                 trips bigint NOT NULL DEFAULT 0)",
                t.fleet
            ),
            // One row per delivery the scheduler answered or released:
            // `answer` is `assigned`, `unfit` (no drone of the fleet can
            // carry it), `busy` (no drone: the fleet stayed busy) or
            // `none` (released before it asked).
            format!(
                "CREATE TABLE IF NOT EXISTS {} (delivery text PRIMARY KEY, drone_id text, \
                 answer text NOT NULL, reason text, assigned_seq bigint, released_seq bigint)",
                t.assignment
            ),
            // The database itself refuses a drone held for two deliveries.
            format!(
                "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} (drone_id) \
                 WHERE drone_id IS NOT NULL AND released_seq IS NULL",
                t.held, t.assignment
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (delivery text PRIMARY KEY, package_id text, \
                 size smallint, weight_kg double precision, status text NOT NULL, reason text, \
                 deleted_seq bigint, deletes integer NOT NULL DEFAULT 0)",
                t.package
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (delivery text PRIMARY KEY, drone_id text, \
                 course text NOT NULL, took_off_seq bigint, landed_seq bigint, \
                 lands_at_ms bigint, landed boolean NOT NULL DEFAULT false)",
                t.flight
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (delivery text PRIMARY KEY, slot text NOT NULL, \
                 ended text)",
                t.delivery
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (scope text NOT NULL, id text NOT NULL, \
                 answer text NOT NULL, PRIMARY KEY (scope, id))",
                t.decision
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY, value bigint NOT NULL)",
                t.counter
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (delivery text PRIMARY KEY)",
                t.request
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (delivery text NOT NULL, kind text NOT NULL, \
                 event text NOT NULL, PRIMARY KEY (delivery, kind, event))",
                t.notice
            ),
            // Owned by a column, so that dropping the books' tables drops
            // it too.
            format!(
                "CREATE SEQUENCE IF NOT EXISTS {} OWNED BY {}.value",
                t.seq, t.counter
            ),
        ];
        let schema = self.lock_key("schema");
        self.books
            .transaction(move |tx| {
                let ddl = ddl.clone();
                Box::pin(async move {
                    // One process at a time: two creating the same table
                    // at once would have one of them fail on the catalogue.
                    lock(tx, schema).await?;
                    for stmt in &ddl {
                        tx.batch_execute(stmt).await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    /// What the books hold of the delivery `key`, one line per table that
    /// has a row of it (for a failing test, or an operator, to read).
    pub async fn of_delivery(&self, key: &str) -> Result<Vec<String>, BooksError> {
        let t = self.tables.clone();
        let key = key.to_string();
        self.books
            .transaction(move |tx| {
                let (t, key) = (t.clone(), key.clone());
                Box::pin(async move {
                    let mut lines = Vec::new();
                    for table in [
                        &t.request,
                        &t.package,
                        &t.assignment,
                        &t.delivery,
                        &t.flight,
                    ] {
                        let rows = tx
                            .query(
                                &format!(
                                    "SELECT row_to_json(x)::text FROM {table} x WHERE delivery = $1"
                                ),
                                &[&key],
                            )
                            .await?;
                        for r in rows {
                            lines.push(format!("{table}: {}", r.get::<_, String>(0)));
                        }
                    }
                    Ok(lines)
                })
            })
            .await
    }

    /// A key for `pg_advisory_xact_lock` naming `what` of this deployment.
    pub(crate) fn lock_key(&self, what: &str) -> i64 {
        i64::from_ne_bytes(fnv(what.as_bytes(), self.tables.lock_base).to_ne_bytes())
    }

    /// The counters whose names start with `prefix`, without it.
    pub(crate) async fn counters(&self, prefix: &str) -> Result<BTreeMap<String, i64>, BooksError> {
        let sql = format!(
            "SELECT name, value FROM {} WHERE starts_with(name, $1)",
            self.tables.counter
        );
        let prefix = prefix.to_string();
        self.books
            .transaction(move |tx| {
                let (sql, prefix) = (sql.clone(), prefix.clone());
                Box::pin(async move {
                    let rows = tx.query(&sql, &[&prefix]).await?;
                    Ok(rows
                        .iter()
                        .map(|r| {
                            let name: String = r.get(0);
                            (name[prefix.len()..].to_string(), r.get::<_, i64>(1))
                        })
                        .collect())
                })
            })
            .await
    }
}

/// FNV-1a of `bytes` from `h`: the same in every process, unlike the
/// standard library's hasher.
fn fnv(bytes: &[u8], mut h: u64) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Waits for the advisory lock `key` until the transaction ends.
pub(crate) async fn lock(tx: &Transaction<'_>, key: i64) -> Result<(), BooksError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&key])
        .await?;
    Ok(())
}

/// A number from the books' sequence: what happened before what, in every
/// process.
pub(crate) async fn next_seq(tx: &Transaction<'_>, t: &Tables) -> Result<i64, BooksError> {
    let row = tx
        .query_one(&format!("SELECT nextval('{}')", t.seq), &[])
        .await?;
    Ok(row.get(0))
}

/// Adds `by` to the counter `name`.
pub(crate) async fn count(
    tx: &Transaction<'_>,
    t: &Tables,
    name: &str,
    by: i64,
) -> Result<(), BooksError> {
    if by == 0 {
        return Ok(());
    }
    let c = &t.counter;
    let stmt = tx
        .prepare_cached(&format!(
            "INSERT INTO {c} (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = {c}.value + EXCLUDED.value"
        ))
        .await?;
    tx.execute(&stmt, &[&name, &by]).await?;
    Ok(())
}

/// The answer recorded for the event `id` in `scope`, if any.
pub(crate) async fn decision(
    tx: &Transaction<'_>,
    t: &Tables,
    scope: &str,
    id: &str,
) -> Result<Option<String>, BooksError> {
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT answer FROM {} WHERE scope = $1 AND id = $2",
            t.decision
        ))
        .await?;
    let row = tx.query_opt(&stmt, &[&scope, &id]).await?;
    Ok(row.map(|r| r.get(0)))
}

/// Records `answer` for the event `id` in `scope`.
pub(crate) async fn record(
    tx: &Transaction<'_>,
    t: &Tables,
    scope: &str,
    id: &str,
    answer: &str,
) -> Result<(), BooksError> {
    let stmt = tx
        .prepare_cached(&format!(
            "INSERT INTO {} (scope, id, answer) VALUES ($1, $2, $3) \
             ON CONFLICT (scope, id) DO UPDATE SET answer = EXCLUDED.answer",
            t.decision
        ))
        .await?;
    tx.execute(&stmt, &[&scope, &id, &answer]).await?;
    Ok(())
}

/// The database's clock, in milliseconds since the epoch: the one clock
/// every process of a deployment shares.
pub(crate) async fn now_ms(tx: &Transaction<'_>) -> Result<i64, BooksError> {
    let row = tx
        .query_one(
            "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

/// JSON text of `v`, for the books' text columns.
pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> String {
    // Plain data of this crate always serializes.
    serde_json::to_string(v).unwrap_or_default()
}

/// `v` read back from JSON text of the books.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    what: &str,
    text: &str,
) -> Result<T, BooksError> {
    serde_json::from_str(text)
        .map_err(|e| BooksError::Corrupt(format!("{what} does not decode: {e}")))
}

/// `size` as the books store it.
pub(crate) fn size_code(size: PackageSize) -> i16 {
    match size {
        PackageSize::Small => 0,
        PackageSize::Medium => 1,
        PackageSize::Large => 2,
    }
}

/// The size the books store as `code`.
pub(crate) fn size_of(code: i16) -> Result<PackageSize, BooksError> {
    match code {
        0 => Ok(PackageSize::Small),
        1 => Ok(PackageSize::Medium),
        2 => Ok(PackageSize::Large),
        other => Err(BooksError::Corrupt(format!(
            "no package size has the code {other}"
        ))),
    }
}
