//! PostgreSQL stores: what makes a restart lose nothing and repeat nothing.
//!
//! Three tables, created on first use under a prefix (default `choreo_`):
//! `<prefix>inbox` (handled and claimed event ids per reaction),
//! `<prefix>join` (join slots per instance) and `<prefix>fired` (`@bounded`
//! counters). Several services (and several replicas) may share them: every
//! row is scoped by choreography, participant and reaction.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use super::{
    check_slot, first_occurrences, Claim, Firings, InboxStore, Seen, StateStore, StoreError,
    StoreOptions, Stores,
};
use crate::envelope::{json, Envelope, EventId};

/// The default table prefix.
pub const DEFAULT_TABLE_PREFIX: &str = "choreo_";

/// The table prefix of a deployment whose topics have `prefix`:
/// `choreo_` after the prefix made of lower-case letters, digits and `_`;
/// where that changed the prefix or it is too long, a hash of it keeps
/// two deployments apart.
pub fn table_prefix(prefix: &str) -> String {
    let clean: String = prefix
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut out = if clean.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{clean}")
    } else {
        clean
    };
    if out.len() > 25 || (out != prefix && !prefix.is_empty()) {
        out.truncate(16);
        out.push_str(&format!(
            "{:08x}_",
            xxhash_rust::xxh3::xxh3_64(prefix.as_bytes()) as u32
        ));
    }
    out.push_str(DEFAULT_TABLE_PREFIX);
    out
}

/// The error with its causes: tokio-postgres says only "db error" at
/// the top, and the server's message underneath.
fn backend(e: impl std::error::Error) -> StoreError {
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
    StoreError::Backend(text)
}

struct Sql {
    claim: String,
    claim_state: String,
    look: String,
    complete: String,
    release: String,
    join_insert: String,
    join_select: String,
    join_clear: String,
    fired_select: String,
    fired_increment: String,
    sweep: String,
}

impl Sql {
    /// The statements on the tables under `p`; done-marks and counters
    /// older than `options.window` count as gone (and are swept), and so
    /// are joins whose latest arrival is older than `options.join_window`.
    fn new(p: &str, options: &StoreOptions) -> Self {
        // A number of seconds is all that goes into the text.
        let interval = |d: Duration| format!("make_interval(secs => {})", d.as_secs_f64());
        let w = interval(options.window);
        let mut sweep = format!(
            "DELETE FROM {p}inbox WHERE lease_until < now() - {w}; \
             DELETE FROM {p}fired WHERE updated_at < now() - {w}"
        );
        if let Some(joins) = options.join_window {
            let j = interval(joins);
            sweep.push_str(&format!(
                "; DELETE FROM {p}join j USING (SELECT scope, instance FROM {p}join \
                 GROUP BY scope, instance HAVING max(arrived_at) < now() - {j}) old \
                 WHERE j.scope = old.scope AND j.instance = old.instance"
            ));
        }
        Sql {
            // Inserts a claim, or takes over a lapsed one or an expired
            // done-mark, or finds its owner's own ($4, never 0); a row
            // back means ours. A done row's `lease_until` is when it was
            // done.
            claim: format!(
                "INSERT INTO {p}inbox (scope, id, done, lease_until, owner) \
                 SELECT $1, id, false, now() + make_interval(secs => $3), $4 FROM unnest($2::text[]) AS id \
                 ON CONFLICT (scope, id) DO UPDATE SET done = false, lease_until = EXCLUDED.lease_until, owner = EXCLUDED.owner \
                 WHERE ({p}inbox.done = false AND {p}inbox.lease_until < now()) \
                 OR ({p}inbox.done AND {p}inbox.lease_until < now() - {w}) \
                 OR ({p}inbox.done = false AND $4 <> 0 AND {p}inbox.owner = $4) \
                 RETURNING id"
            ),
            claim_state: format!("SELECT id, done FROM {p}inbox WHERE scope = $1 AND id = ANY($2)"),
            look: format!(
                "SELECT id, done FROM {p}inbox WHERE scope = $1 AND id = ANY($2) \
                 AND (done OR lease_until > now())"
            ),
            complete: format!(
                "INSERT INTO {p}inbox (scope, id, done, lease_until) \
                 SELECT $1, id, true, now() FROM unnest($2::text[]) AS id \
                 ON CONFLICT (scope, id) DO UPDATE SET done = true, lease_until = now()"
            ),
            release: format!("DELETE FROM {p}inbox WHERE scope = $1 AND id = ANY($2) AND done = false"),
            join_insert: format!(
                "INSERT INTO {p}join (scope, instance, slot, envelope) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (scope, instance, slot) DO NOTHING"
            ),
            join_select: format!(
                "SELECT slot, envelope FROM {p}join WHERE scope = $1 AND instance = $2 ORDER BY slot"
            ),
            join_clear: format!("DELETE FROM {p}join WHERE scope = $1 AND instance = $2"),
            fired_select: format!(
                "SELECT count, $3::text = ANY(firings) FROM {p}fired WHERE scope = $1 AND instance = $2 \
                 AND updated_at >= now() - {w}"
            ),
            // Counts the firing $3 once: a firing already in `firings`
            // (its delivery came again) leaves the count as it is.
            fired_increment: format!(
                "INSERT INTO {p}fired (scope, instance, count, updated_at, firings) \
                 VALUES ($1, $2, 1, now(), ARRAY[$3::text]) \
                 ON CONFLICT (scope, instance) DO UPDATE SET \
                 count = CASE WHEN {p}fired.updated_at < now() - {w} THEN 1 \
                 WHEN $3::text = ANY({p}fired.firings) THEN {p}fired.count \
                 ELSE {p}fired.count + 1 END, \
                 firings = CASE WHEN {p}fired.updated_at < now() - {w} THEN ARRAY[$3::text] \
                 WHEN $3::text = ANY({p}fired.firings) THEN {p}fired.firings \
                 ELSE {p}fired.firings || $3::text END, \
                 updated_at = now() \
                 RETURNING count"
            ),
            sweep,
        }
    }
}

struct Shared {
    pool: Pool,
    sql: Sql,
    /// How often expired rows are swept, and when they last were (in
    /// milliseconds since `created`).
    sweep_every: Duration,
    swept: std::sync::atomic::AtomicU64,
    created: std::time::Instant,
}

impl Shared {
    /// Runs one (cached, prepared) statement on a pooled connection.
    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let client = self.pool.get().await.map_err(backend)?;
        let stmt = client.prepare_cached(sql).await.map_err(backend)?;
        client.query(&stmt, params).await.map_err(backend)
    }

    /// Deletes expired done-marks, long-lapsed claims, counters and joins, at most
    /// once per `sweep_every`; called on writes, so a store nobody writes
    /// to costs nothing.
    async fn sweep_now_and_then(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        let now = u64::try_from(self.created.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.swept.load(Ordering::Relaxed);
        let due = now.saturating_sub(last)
            >= u64::try_from(self.sweep_every.as_millis()).unwrap_or(u64::MAX);
        if !due
            || self
                .swept
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return Ok(());
        }
        let client = self.pool.get().await.map_err(backend)?;
        client.batch_execute(&self.sql.sweep).await.map_err(backend)
    }
}

/// A connection pool and the stores on it.
#[derive(Clone)]
pub struct PgStores {
    shared: Arc<Shared>,
}

impl PgStores {
    /// Connects with a libpq-style string (`host=127.0.0.1 user=postgres
    /// dbname=test`) or URL (`postgres://postgres@127.0.0.1/test`; TLS with
    /// `sslmode=verify-full` and `sslrootcert=PATH`, see
    /// [`postgres_tls`](super::postgres_tls)) and
    /// creates the tables under `table_prefix` if they are missing;
    /// done-marks and counters are kept for [`super::DEFAULT_WINDOW`], joins that
    /// have not fired for ever.
    pub async fn connect(config: &str, table_prefix: &str) -> Result<Self, StoreError> {
        PgStores::connect_with(config, table_prefix, &StoreOptions::default()).await
    }

    /// [`PgStores::connect`], keeping done-marks and counters for
    /// `options.window` and joins that have not fired for
    /// `options.join_window` (`options.prefix` is not used: the tables go
    /// by `table_prefix`).
    pub async fn connect_with(
        config: &str,
        table_prefix: &str,
        options: &StoreOptions,
    ) -> Result<Self, StoreError> {
        check_prefix(table_prefix)?;
        let (pg, tls) = super::postgres_tls::config(config)?;
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match tls {
            Some(tls) => Manager::from_config(pg, tls, manager_config),
            None => Manager::from_config(pg, NoTls, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(16)
            .build()
            .map_err(backend)?;
        let stores = PgStores {
            shared: Arc::new(Shared {
                pool,
                sql: Sql::new(table_prefix, options),
                sweep_every: (options
                    .window
                    .min(options.join_window.unwrap_or(options.window))
                    / 2)
                .min(Duration::from_secs(60)),
                swept: std::sync::atomic::AtomicU64::new(0),
                created: std::time::Instant::now(),
            }),
        };
        stores.create_tables(table_prefix).await?;
        Ok(stores)
    }

    async fn create_tables(&self, p: &str) -> Result<(), StoreError> {
        let mut client = self.shared.pool.get().await.map_err(backend)?;
        let ddl = [
            format!(
                "CREATE TABLE IF NOT EXISTS {p}inbox (scope text NOT NULL, id text NOT NULL, \
                 done boolean NOT NULL, lease_until timestamptz NOT NULL, PRIMARY KEY (scope, id))"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {p}join (scope text NOT NULL, instance text NOT NULL, \
                 slot integer NOT NULL, envelope bytea NOT NULL, PRIMARY KEY (scope, instance, slot))"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {p}fired (scope text NOT NULL, instance text NOT NULL, \
                 count bigint NOT NULL, PRIMARY KEY (scope, instance))"
            ),
            // Counters expire by their last firing (tables made before
            // counters expired get the column).
            format!(
                "ALTER TABLE {p}fired ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now()"
            ),
            // Counters know the firings they counted, to count each once
            // (tables made before get the column).
            format!(
                "ALTER TABLE {p}fired ADD COLUMN IF NOT EXISTS firings text[] NOT NULL DEFAULT '{{}}'"
            ),
            // A join's arrivals know when they came, for the join window
            // (tables made before get the column).
            format!(
                "ALTER TABLE {p}join ADD COLUMN IF NOT EXISTS arrived_at timestamptz NOT NULL DEFAULT now()"
            ),
            // Claims know their owner (tables made before get the column).
            format!("ALTER TABLE {p}inbox ADD COLUMN IF NOT EXISTS owner bigint NOT NULL DEFAULT 0"),
        ];
        create_tables(&mut client, p, &ddl).await.map_err(backend)
    }

    /// Drops this prefix's tables (for tests and tear-down).
    pub async fn drop_tables(&self, table_prefix: &str) -> Result<(), StoreError> {
        check_prefix(table_prefix)?;
        let client = self.shared.pool.get().await.map_err(backend)?;
        let p = table_prefix;
        client
            .batch_execute(&format!(
                "DROP TABLE IF EXISTS {p}inbox; DROP TABLE IF EXISTS {p}join; DROP TABLE IF EXISTS {p}fired"
            ))
            .await
            .map_err(backend)
    }

    /// The inbox.
    pub fn inbox(&self) -> PgInbox {
        PgInbox {
            shared: self.shared.clone(),
        }
    }

    /// The state store.
    pub fn state(&self) -> PgStateStore {
        PgStateStore {
            shared: self.shared.clone(),
        }
    }

    /// Both, as a service takes them.
    pub fn stores(&self) -> Stores {
        Stores::new(Arc::new(self.inbox()), Arc::new(self.state()), "PostgreSQL")
    }
}

fn check_prefix(p: &str) -> Result<(), StoreError> {
    let ok = p.len() <= 40
        && p.chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && p.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Config(format!(
            "table prefix {p:?}: lower-case letters, digits and _, starting with a letter or _"
        )))
    }
}

/// The inbox in PostgreSQL.
pub struct PgInbox {
    shared: Arc<Shared>,
}

/// The ids as text, each once (one statement may not touch a row twice).
fn distinct_texts(ids: &[EventId]) -> Vec<String> {
    let mut seen = HashSet::new();
    ids.iter()
        .map(ToString::to_string)
        .filter(|t| seen.insert(t.clone()))
        .collect()
}

#[async_trait]
impl InboxStore for PgInbox {
    async fn claim_many(
        &self,
        scope: &str,
        ids: &[EventId],
        lease: Duration,
    ) -> Result<Vec<Claim>, StoreError> {
        self.claim_many_as(scope, ids, lease, 0).await
    }

    async fn claim_many_as(
        &self,
        scope: &str,
        ids: &[EventId],
        lease: Duration,
        owner: u64,
    ) -> Result<Vec<Claim>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sh = &self.shared;
        let texts = distinct_texts(ids);
        // A bigint holds the owner's bits.
        let owner = i64::from_ne_bytes(owner.to_ne_bytes());
        let rows = sh
            .query(
                &sh.sql.claim,
                &[&scope, &texts, &lease.as_secs_f64(), &owner],
            )
            .await?;
        let won: HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
        let mut done = HashSet::new();
        if won.len() < texts.len() {
            let lost: Vec<&String> = texts.iter().filter(|t| !won.contains(*t)).collect();
            for r in sh.query(&sh.sql.claim_state, &[&scope, &lost]).await? {
                if r.get::<_, bool>(1) {
                    done.insert(r.get::<_, String>(0));
                }
            }
        }
        // The first occurrence of an id gets its claim; a repeat is Busy.
        let mut answered = HashSet::new();
        Ok(ids
            .iter()
            .map(|id| {
                let t = id.to_string();
                if done.contains(&t) {
                    Claim::Done
                } else if won.contains(&t) && answered.insert(t) {
                    Claim::Acquired
                } else {
                    Claim::Busy
                }
            })
            .collect())
    }

    async fn look_many(&self, scope: &str, ids: &[EventId]) -> Result<Vec<Seen>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sh = &self.shared;
        let rows = sh
            .query(&sh.sql.look, &[&scope, &distinct_texts(ids)])
            .await?;
        // Done or under a live claim; an id not here is unseen.
        let held: std::collections::HashMap<String, bool> =
            rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        let first = first_occurrences(ids);
        Ok(ids
            .iter()
            .zip(first)
            .map(|(id, first)| match held.get(&id.to_string()) {
                _ if !first => Seen::Claimed,
                Some(true) => Seen::Done,
                Some(false) => Seen::Claimed,
                None => Seen::Unseen,
            })
            .collect())
    }

    async fn complete_many(&self, scope: &str, ids: &[EventId]) -> Result<(), StoreError> {
        self.update(&self.shared.sql.complete, scope, ids).await?;
        self.shared.sweep_now_and_then().await
    }

    async fn release_many(&self, scope: &str, ids: &[EventId]) -> Result<(), StoreError> {
        self.update(&self.shared.sql.release, scope, ids).await
    }
}

impl PgInbox {
    async fn update(&self, sql: &str, scope: &str, ids: &[EventId]) -> Result<(), StoreError> {
        if !ids.is_empty() {
            self.shared
                .query(sql, &[&scope, &distinct_texts(ids)])
                .await?;
        }
        Ok(())
    }
}

/// Join slots and counters in PostgreSQL.
pub struct PgStateStore {
    shared: Arc<Shared>,
}

#[async_trait]
impl StateStore for PgStateStore {
    async fn join_arrive(
        &self,
        scope: &str,
        instance: &str,
        slot: usize,
        slots: usize,
        envelope: &Envelope,
    ) -> Result<Option<Vec<Envelope>>, StoreError> {
        check_slot(slot, slots)?;
        let slot_i = i32::try_from(slot).map_err(|e| StoreError::Config(e.to_string()))?;
        let bytes = json::encode(envelope).map_err(backend)?;
        let sh = &self.shared;
        sh.query(&sh.sql.join_insert, &[&scope, &instance, &slot_i, &bytes])
            .await?;
        // Read after our own insert committed: whichever arrival commits
        // last sees every slot (READ COMMITTED), so the join cannot be missed.
        let rows = sh.query(&sh.sql.join_select, &[&scope, &instance]).await?;
        let mut filled: Vec<Option<Envelope>> = vec![None; slots];
        for row in rows {
            let s: i32 = row.get(0);
            let data: Vec<u8> = row.get(1);
            let env = json::decode(&Bytes::from(data)).map_err(|e| {
                StoreError::Corrupt(format!("join slot {s} of {scope}/{instance}: {e}"))
            })?;
            if let Some(place) = usize::try_from(s).ok().and_then(|s| filled.get_mut(s)) {
                *place = Some(env);
            }
        }
        Ok(filled.into_iter().collect())
    }

    async fn join_clear(&self, scope: &str, instance: &str) -> Result<(), StoreError> {
        let sh = &self.shared;
        sh.query(&sh.sql.join_clear, &[&scope, &instance]).await?;
        Ok(())
    }

    async fn firings(
        &self,
        scope: &str,
        instance: &str,
        firing: &str,
    ) -> Result<Firings, StoreError> {
        let sh = &self.shared;
        let rows = sh
            .query(&sh.sql.fired_select, &[&scope, &instance, &firing])
            .await?;
        Ok(Firings {
            count: first_count(&rows),
            counted: rows
                .first()
                .is_some_and(|r| r.try_get::<_, Option<bool>>(1).ok().flatten() == Some(true)),
        })
    }

    async fn record_firing(
        &self,
        scope: &str,
        instance: &str,
        firing: &str,
    ) -> Result<u64, StoreError> {
        let sh = &self.shared;
        Ok(first_count(
            &sh.query(&sh.sql.fired_increment, &[&scope, &instance, &firing])
                .await?,
        ))
    }
}

/// Runs `ddl` (`CREATE TABLE IF NOT EXISTS …`, `ALTER TABLE … ADD COLUMN
/// IF NOT EXISTS …`) in one transaction that holds an advisory lock named
/// for `prefix`, so that processes starting at once on new tables make
/// them one after the other: two such statements racing make the loser
/// fail on the catalogue's unique index (`type … already exists`), which
/// `IF NOT EXISTS` does not prevent.
pub async fn create_tables(
    client: &mut tokio_postgres::Client,
    prefix: &str,
    ddl: &[String],
) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let lock = format!("choreo tables {prefix}");
    tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&lock])
        .await?;
    for stmt in ddl {
        tx.batch_execute(stmt).await?;
    }
    tx.commit().await
}

/// The `count` of the first row (0 when there is none).
fn first_count(rows: &[Row]) -> u64 {
    rows.first()
        .map_or(0, |r| r.get::<_, i64>(0).max(0).unsigned_abs())
}
