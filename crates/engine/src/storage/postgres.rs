//! The PostgreSQL backend: the ledger in a database that several switch
//! nodes share, for more than one machine.
//!
//! **Layout.** One table, `ledger (t, k, v)`, keyed by `(t, k)` (table id,
//! key): so an RRN or a request key is unique because the database says
//! so. (A partition per table was tried: planning a query over 24
//! partitions took 3.5 ms, more than running it.) An account row
//! also carries its balance and held amount in columns, and a check keeps
//! every customer's available balance at zero or above whatever the code
//! does. Ids come from a sequence in blocks of [`ID_BLOCK`]: unique across
//! nodes, never reused, not in commit order. The schema is versioned
//! ([`MIGRATIONS`]) and brought up to date at start, one node at a time.
//!
//! **Transactions** are REPEATABLE READ (snapshot isolation), and every
//! record an invariant rests on is written by the transactions that rely
//! on it (a balance by whoever spends it, a card's daily spend, a rule's
//! budget, a request record by the request): so two transactions that
//! could together break one write the same row, and the second fails
//! (40001, or 23505 for a key both inserted) and runs again, seeing the
//! first. SERIALIZABLE was tried: its predicate locks escalate to whole
//! pages when a batch reads a hundred keys, and two nodes then fail each
//! other's batches that touch nothing in common.
//!
//! A body runs against what the transaction has read so far: a read of a
//! key not yet read answers
//! "absent" and is noted, and after the run every noted key is fetched in
//! one query and the body runs again; a run that read nothing new is the
//! one that counts, and its writes go out in one statement and commit. So
//! a batch of requests costs a few round trips (one per level of reads
//! that depend on earlier ones), not one per key. A serialization failure,
//! a deadlock or a duplicate key (40001, 40P01, 23505) runs the whole
//! transaction again.
//!
//! **Durability** is the database's: a COMMIT that returned is durable
//! (`synchronous_commit = on`, and with a synchronous standby, on it too),
//! so a flush has nothing left to do. A COMMIT whose outcome is unknown
//! (the connection broke) is an error: the switch answers 96 and a
//! retransmission finds the request record if the commit happened.
//!
//! **Several nodes.** Background jobs hold session advisory locks
//! ([`Backend::lease`]); a change to a terminal's record is announced with
//! `NOTIFY` in its own transaction and heard by every node's listener.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, IsolationLevel, NoTls, Statement};

use super::{
    Backend, Body, Entries, Range, RawTx, Snapshot, Table, TerminalListener, TxError, TxResult,
};
use crate::codec;
use crate::error::StorageError;
use crate::model::Account;

/// Ids a node takes from the sequence at a time.
const ID_BLOCK: i64 = 1000;
/// Rows a scan reads per query.
const PAGE: i64 = 512;
/// Connections kept open for reuse.
const POOL: usize = 8;
/// How long a transaction keeps being run again after serialization
/// failures before it gives up (a terminal waits longer for an answer).
const RETRY_FOR: Duration = Duration::from_secs(5);
/// Failed attempts after which a transaction runs alone on this node (see
/// `Postgres::turns`).
const ALONE_AFTER: u32 = 3;
/// The channel changes to terminals are announced on.
const TERMINALS: &str = "clubswitch_terminals";

/// The schema, version by version. Never edit one that was released: add
/// the next.
const MIGRATIONS: &[&str] = &[
    // 1: the ledger table and the id sequence.
    "CREATE TABLE ledger (
        t smallint NOT NULL,
        k bytea NOT NULL,
        v bytea NOT NULL,
        balance bigint,
        held bigint,
        PRIMARY KEY (t, k),
        CONSTRAINT customer_available_not_negative
            CHECK (balance IS NULL OR (held >= 0 AND balance >= held))
    );
    CREATE SEQUENCE ledger_ids MINVALUE 0 START 0 INCREMENT 1000;",
];

fn error(e: postgres::Error) -> StorageError {
    if e.is_closed() || e.as_db_error().is_none() && e.code().is_none() {
        StorageError::Unavailable(e.to_string())
    } else {
        StorageError::Io(e.to_string())
    }
}

/// Whether running the transaction again may succeed: another
/// transaction changed what this one read, deadlocked with it, or inserted
/// a key it inserts (a request record both nodes got: run again, it finds
/// the first's).
fn retryable(e: &postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(&SqlState::T_R_SERIALIZATION_FAILURE)
            | Some(&SqlState::T_R_DEADLOCK_DETECTED)
            | Some(&SqlState::UNIQUE_VIOLATION)
            | Some(&SqlState::LOCK_NOT_AVAILABLE)
    )
}

const FETCH: &str = "SELECT l.t, l.k, l.v FROM ledger l
     JOIN unnest($1::int2[], $2::bytea[]) AS q(t, k) ON l.t = q.t AND l.k = q.k";
/// Answers the rows it inserted rather than updated (`xmax = 0`): see
/// `commit`.
const UPSERT: &str = "WITH w AS (INSERT INTO ledger (t, k, v, balance, held)
     SELECT * FROM unnest($1::int2[], $2::bytea[], $3::bytea[], $4::int8[], $5::int8[])
     ON CONFLICT (t, k) DO UPDATE
     SET v = EXCLUDED.v, balance = EXCLUDED.balance, held = EXCLUDED.held
     RETURNING t, k, xmax = 0 AS fresh)
     SELECT t, k FROM w WHERE fresh";
const DELETE: &str = "DELETE FROM ledger l USING unnest($1::int2[], $2::bytea[]) AS d(t, k)
     WHERE l.t = d.t AND l.k = d.k";
const GET: &str = "SELECT v FROM ledger WHERE t = $1 AND k = $2";
const NEXTVAL: &str = "SELECT nextval('ledger_ids')";
const NOTIFY: &str = "SELECT pg_notify($1, $2)";

/// How the switch's sessions plan: every statement they run reads or
/// writes the ledger by its key (or a range of keys) and must stay an
/// index lookup, whatever the table's statistics say.
///
/// Why: PostgreSQL plans a prepared statement once for all after its
/// fifth run if that generic plan looks no dearer than the runs' own, and
/// keeps it until the table is next analyzed. On a young ledger (a new
/// database, before autovacuum's first `ANALYZE`) joining the batch's keys
/// against a scan of the whole table looks cheapest, and that plan then
/// stays as the table grows: every read and delete of a batch scans all
/// of it. On the 2-core development VM the first minute of soaks on new
/// databases gave 211-249 flows/s at p50 15-139 ms (250 or 1,500 asked),
/// the minutes after what was asked (1,500 at p50 10-14 ms); with these
/// settings, 1,450 at p50 19 ms in the first minute. With joins other than
/// a nested loop and full scans priced out, the only plan left is a
/// lookup of each key in the primary key's index, which is what a ledger
/// of any size wants.
///
/// And no statement waits more than 2 s for a row lock (`lock_timeout`):
/// a lock a dead node's session still holds (until the server notices the
/// session is gone) would otherwise hold up the waiting transaction, and
/// with it every transaction of this node once one waits for its turn
/// alone (`Postgres::turns`). The wait ends in an error that runs the
/// transaction again, within [`RETRY_FOR`].
const PLANNER: &str = "SET enable_seqscan = off; SET enable_hashjoin = off;
     SET enable_mergejoin = off; SET lock_timeout = '2s'";

/// The statements a connection prepares once (parsed and planned once,
/// not on every round trip).
#[derive(Clone)]
struct Statements {
    fetch: Statement,
    upsert: Statement,
    delete: Statement,
    get: Statement,
    nextval: Statement,
    notify: Statement,
}

/// A connection with its prepared statements.
struct Conn {
    client: Client,
    st: Statements,
}

impl Conn {
    fn open(config: &postgres::Config) -> Result<Conn, postgres::Error> {
        let mut client = config.connect(NoTls)?;
        client.batch_execute(PLANNER)?;
        let st = Statements {
            fetch: client.prepare(FETCH)?,
            upsert: client.prepare(UPSERT)?,
            delete: client.prepare(DELETE)?,
            get: client.prepare(GET)?,
            nextval: client.prepare(NEXTVAL)?,
            notify: client.prepare(NOTIFY)?,
        };
        Ok(Conn { client, st })
    }
}

/// A ledger in PostgreSQL.
pub(crate) struct Postgres {
    config: postgres::Config,
    pool: Mutex<Vec<Conn>>,
    ids: Mutex<IdBlock>,
    /// Who may run an attempt: every first try shares it; a transaction
    /// that lost [`ALONE_AFTER`] times takes it alone, so the other threads
    /// of this node finish what they started and start nothing new until it
    /// committed. Without it, threads that keep meeting on one hot row (a
    /// card spent from several terminals) can starve one of them past
    /// [`RETRY_FOR`]. `RwLock` on Linux prefers a waiting writer, so the
    /// transaction that waits alone is not itself starved by new readers.
    turns: RwLock<()>,
    /// The last statement succeeded (for `healthy` and `/ready`).
    up: AtomicBool,
    /// The session that holds this node's leases, and which it holds.
    leases: Mutex<Leases>,
}

#[derive(Default)]
struct IdBlock {
    next: i64,
    end: i64,
}

#[derive(Default)]
struct Leases {
    session: Option<Client>,
    held: HashSet<String>,
}

impl Postgres {
    /// Connects to `url` and brings the schema up to date.
    pub(crate) fn connect(url: &str) -> Result<Arc<Postgres>, StorageError> {
        let config = postgres::Config::from_str(url)
            .map_err(|e| StorageError::Io(format!("storage url: {e}")))?;
        let pg = Postgres {
            config,
            pool: Mutex::new(Vec::new()),
            ids: Mutex::new(IdBlock::default()),
            turns: RwLock::new(()),
            up: AtomicBool::new(true),
            leases: Mutex::new(Leases::default()),
        };
        pg.migrate()?;
        pg.check_durable()?;
        Ok(Arc::new(pg))
    }

    /// Refuses a database whose commits return before they are on disk
    /// (`synchronous_commit = off` for this role or database): the switch
    /// answers a terminal once its commit returns.
    fn check_durable(&self) -> Result<(), StorageError> {
        let mut c = self.open()?;
        let setting: String = c
            .query_one("SHOW synchronous_commit", &[])
            .map_err(error)?
            .get(0);
        if setting == "off" {
            return Err(StorageError::Io(
                "the database has synchronous_commit = off: a commit would be answered before \
                 it is durable; set it to on (or remote_apply) for the switch's role"
                    .into(),
            ));
        }
        Ok(())
    }

    /// A session of its own (leases, snapshots, migrations).
    fn open(&self) -> Result<Client, StorageError> {
        self.config.connect(NoTls).map_err(|e| self.unavailable(e))
    }

    fn unavailable(&self, e: postgres::Error) -> StorageError {
        self.up.store(false, Ordering::Release);
        StorageError::Unavailable(format!("no database answers: {e}"))
    }

    /// A connection from the pool, or a new one.
    fn conn(&self) -> Result<Conn, StorageError> {
        let pooled = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match pooled {
            Some(c) if !c.client.is_closed() => Ok(c),
            _ => Conn::open(&self.config).map_err(|e| self.unavailable(e)),
        }
    }

    /// Gives a connection back, unless it broke.
    fn put_back(&self, conn: Conn) {
        if conn.client.is_closed() {
            return;
        }
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < POOL {
            pool.push(conn);
        }
    }

    /// Runs `f` on a pooled connection, noting whether the database
    /// answered.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Client, &Statements) -> Result<T, postgres::Error>,
    ) -> Result<T, StorageError> {
        let mut conn = self.conn()?;
        let result = f(&mut conn.client, &conn.st);
        self.noted(&result);
        self.put_back(conn);
        result.map_err(error)
    }

    fn noted<T>(&self, result: &Result<T, postgres::Error>) {
        let broke = matches!(result, Err(e) if e.is_closed() || e.as_db_error().is_none());
        self.up.store(!broke, Ordering::Release);
    }

    /// Applies the migrations this database has not seen, under a lock so
    /// that nodes starting together do it once.
    fn migrate(&self) -> Result<(), StorageError> {
        let mut c = self.open()?;
        let migrated = (|| {
            // READ COMMITTED whatever the database's default: the schema's
            // version is read after the lock is taken, so a node that waited
            // for another's migration sees it done.
            let mut tx = c
                .build_transaction()
                .isolation_level(IsolationLevel::ReadCommitted)
                .start()?;
            tx.batch_execute("SET LOCAL client_min_messages = warning")?;
            tx.execute("SELECT pg_advisory_xact_lock(4242001)", &[])?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS clubswitch_schema (
                    version int PRIMARY KEY,
                    applied timestamptz NOT NULL DEFAULT now())",
            )?;
            let have: i32 = tx
                .query_one(
                    "SELECT coalesce(max(version), 0) FROM clubswitch_schema",
                    &[],
                )?
                .get(0);
            for (i, sql) in MIGRATIONS.iter().enumerate() {
                let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
                if version <= have {
                    continue;
                }
                tx.batch_execute(sql)?;
                tx.execute(
                    "INSERT INTO clubswitch_schema (version) VALUES ($1)",
                    &[&version],
                )?;
            }
            tx.commit()
        })();
        migrated.map_err(error)
    }

    /// The next id of this node's block, taking a new block when it is
    /// used up.
    fn take_id(
        &self,
        c: &mut impl postgres::GenericClient,
        st: &Statements,
    ) -> Result<u64, postgres::Error> {
        let mut ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        if ids.next >= ids.end {
            let base: i64 = c.query_one(&st.nextval, &[])?.get(0);
            *ids = IdBlock {
                next: base,
                end: base + ID_BLOCK,
            };
        }
        let id = ids.next;
        ids.next += 1;
        Ok(u64::try_from(id).unwrap_or(0))
    }
}

/// An account's balance and held amount, for the row's columns (and the
/// database's check).
fn account_columns(table: Table, v: &[u8]) -> (Option<i64>, Option<i64>) {
    if table != Table::Accounts {
        return (None, None);
    }
    match codec::from_slice::<Account>(v) {
        Ok(a) => (Some(a.balance), Some(a.held)),
        Err(_) => (None, None),
    }
}

/// Writes `rows` (upserts) and removes `gone`, in one statement each.
/// Returns the rows inserted rather than updated (table code, key).
fn write_rows(
    c: &mut impl postgres::GenericClient,
    st: &Statements,
    rows: &[(Table, Vec<u8>, Vec<u8>)],
    gone: &[(Table, Vec<u8>)],
) -> Result<Vec<(i16, Vec<u8>)>, postgres::Error> {
    let mut fresh = Vec::new();
    if !rows.is_empty() {
        let mut t = Vec::with_capacity(rows.len());
        let mut k = Vec::with_capacity(rows.len());
        let mut v = Vec::with_capacity(rows.len());
        let mut balance = Vec::with_capacity(rows.len());
        let mut held = Vec::with_capacity(rows.len());
        for (table, key, value) in rows {
            let (b, h) = account_columns(*table, value);
            t.push(table.index() as i16);
            k.push(key.as_slice());
            v.push(value.as_slice());
            balance.push(b);
            held.push(h);
        }
        fresh = c
            .query(&st.upsert, &[&t, &k, &v, &balance, &held])?
            .into_iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
    }
    if !gone.is_empty() {
        let t: Vec<i16> = gone.iter().map(|(t, _)| t.index() as i16).collect();
        let k: Vec<&[u8]> = gone.iter().map(|(_, k)| k.as_slice()).collect();
        c.execute(&st.delete, &[&t, &k])?;
    }
    Ok(fresh)
}

/// Rows by table and key: values read or written (`None`: absent or
/// removed).
type Rows = HashMap<(Table, Vec<u8>), Option<Vec<u8>>>;

/// One run of a transaction's body: what it read, wrote, and missed.
struct PgTx<'a, 'c> {
    pg: &'a Postgres,
    st: &'a Statements,
    tx: &'a RefCell<postgres::Transaction<'c>>,
    /// Values read in this transaction (`None`: absent).
    read: &'a Rows,
    /// This run's writes (`None`: removed).
    written: RefCell<Rows>,
    /// Keys this run read that were not read before.
    missed: RefCell<Vec<(Table, Vec<u8>)>>,
}

impl RawTx for PgTx<'_, '_> {
    fn read(&self, table: Table, key: &[u8], with: &mut dyn FnMut(&[u8])) -> TxResult<bool> {
        let k = (table, key.to_vec());
        let value = match self.written.borrow().get(&k) {
            Some(v) => v.clone(),
            None => match self.read.get(&k) {
                Some(v) => v.clone(),
                None => {
                    self.missed.borrow_mut().push(k);
                    None
                }
            },
        };
        match value {
            Some(v) => {
                with(&v);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn write(&self, table: Table, key: &[u8], value: Vec<u8>) -> TxResult<()> {
        self.written
            .borrow_mut()
            .insert((table, key.to_vec()), Some(value));
        Ok(())
    }

    fn remove(&self, table: Table, key: &[u8]) -> TxResult<()> {
        self.written
            .borrow_mut()
            .insert((table, key.to_vec()), None);
        Ok(())
    }

    fn next_id(&self) -> TxResult<u64> {
        let mut tx = self.tx.borrow_mut();
        self.pg
            .take_id(&mut *tx, self.st)
            .map_err(|e| TxError::Storage(error(e)))
    }
}

/// A transaction's turn: shared with the other threads, or alone. Held
/// only for what dropping it releases.
#[allow(dead_code)]
enum Turn<'a> {
    Shared(RwLockReadGuard<'a, ()>),
    Alone(RwLockWriteGuard<'a, ()>),
}

/// Why one attempt at a transaction stopped.
enum Attempt {
    Done(TxResult<()>),
    Retry,
    /// The session failed before the transaction began: run again on
    /// another.
    Stale,
}

impl Postgres {
    fn attempt(&self, conn: &mut Conn, body: Body<'_>) -> Result<Attempt, postgres::Error> {
        let st = conn.st.clone();
        let begun = conn
            .client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .start();
        let tx = match begun {
            Ok(tx) => tx,
            // A pooled session the server ended (a restart, a failover)
            // shows only when used: nothing was sent but BEGIN, so run
            // again on a new session (this one is not pooled again).
            Err(e) => {
                tracing::debug!("BEGIN failed, a new session: {e}");
                return Ok(Attempt::Stale);
            }
        };
        let tx = RefCell::new(tx);
        let mut read = Rows::new();
        loop {
            let run = PgTx {
                pg: self,
                st: &st,
                tx: &tx,
                read: &read,
                written: RefCell::new(HashMap::new()),
                missed: RefCell::new(Vec::new()),
            };
            let result = body(&run);
            let missed = run.missed.into_inner();
            if !missed.is_empty() {
                // What it decided on absent values does not count: read
                // them and run again.
                let fetched = fetch(&mut tx.borrow_mut(), &st, &missed)?;
                for k in missed {
                    let v = fetched.get(&k).cloned().flatten();
                    read.insert(k, v);
                }
                continue;
            }
            return match result {
                Ok(()) => {
                    let written = run.written.into_inner();
                    let mut tx = tx.into_inner();
                    if !commit(&mut tx, &st, &read, written)? {
                        // Rolled back as `tx` drops.
                        return Ok(Attempt::Retry);
                    }
                    tx.commit()?;
                    Ok(Attempt::Done(Ok(())))
                }
                Err(TxError::Conflict) => Ok(Attempt::Retry),
                Err(e) => Ok(Attempt::Done(Err(e))),
            };
        }
    }
}

/// Reads `keys` in one query.
fn fetch(
    tx: &mut postgres::Transaction<'_>,
    st: &Statements,
    keys: &[(Table, Vec<u8>)],
) -> Result<Rows, postgres::Error> {
    let t: Vec<i16> = keys.iter().map(|(t, _)| t.index() as i16).collect();
    let k: Vec<&[u8]> = keys.iter().map(|(_, k)| k.as_slice()).collect();
    let rows = tx.query(&st.fetch, &[&t, &k])?;
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        let t: i16 = row.get(0);
        if let Some(table) = Table::ALL.get(t as usize) {
            out.insert(
                (*table, row.get::<_, Vec<u8>>(1)),
                Some(row.get::<_, Vec<u8>>(2)),
            );
        }
    }
    Ok(out)
}

/// Writes a run's changes, and announces changed terminals to every node
/// (delivered when the transaction commits). `false`: a row this run read
/// was removed by a transaction that committed since, and this run's write
/// of it inserted it afresh; run the transaction again.
///
/// Why: under REPEATABLE READ an update or removal of a row another
/// transaction changed since fails (40001), but an `INSERT … ON CONFLICT`
/// of a row another removed meets no row and inserts: the removal is
/// lost, and what this run wrote was worked out from the removed value (a
/// card's daily allowance counted twice). The embedded ledger runs one
/// transaction at a time and never meets this.
///
/// Rows are written in key order (the upserts, then the removals), so two
/// transactions that upsert the same rows lock them in one order; one that
/// removes what the other upserts can still deadlock, and PostgreSQL's
/// detection (40P01) runs it again.
fn commit(
    tx: &mut postgres::Transaction<'_>,
    st: &Statements,
    read: &Rows,
    written: Rows,
) -> Result<bool, postgres::Error> {
    let mut rows = Vec::new();
    let mut gone = Vec::new();
    let mut terminals = Vec::new();
    for ((table, key), value) in written {
        if table == Table::Terminals {
            terminals.push(hex::encode(&key));
        }
        match value {
            Some(v) => rows.push((table, key, v)),
            None => gone.push((table, key)),
        }
    }
    rows.sort_unstable_by(|a, b| (a.0.index(), &a.1).cmp(&(b.0.index(), &b.1)));
    gone.sort_unstable_by(|a, b| (a.0.index(), &a.1).cmp(&(b.0.index(), &b.1)));
    let fresh = write_rows(tx, st, &rows, &gone)?;
    let removed_since = fresh.into_iter().any(|(t, k)| {
        Table::ALL
            .get(t as usize)
            .is_some_and(|table| matches!(read.get(&(*table, k)), Some(Some(_))))
    });
    if removed_since {
        return Ok(false);
    }
    if !terminals.is_empty() {
        tx.execute(&st.notify, &[&TERMINALS, &terminals.join(",")])?;
    }
    Ok(true)
}

/// A number below `n`, from the clock's low bits: a pause's jitter only.
fn rand_below(n: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    u64::from(nanos) % n.max(1)
}

/// The first key after every key that starts with `prefix`, if any.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

impl Backend for Postgres {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.with(|c, st| {
            let row = c.query_opt(&st.get, &[&(table.index() as i16), &key])?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn scan(&self, table: Table, range: Range<'_>) -> Entries<'_> {
        let (from, to): (Vec<u8>, Option<Vec<u8>>) = match range {
            Range::Prefix(p) => (p.to_vec(), prefix_end(p)),
            Range::From(f) => (f.to_vec(), None),
            Range::Between(f, t) => (f.to_vec(), Some(t.to_vec())),
        };
        // Pages by key, each its own query: nothing is held open between
        // them, and a long scan sees each key once, in order.
        let mut after: Option<Vec<u8>> = None;
        let mut page: std::vec::IntoIter<(Vec<u8>, Vec<u8>)> = Vec::new().into_iter();
        let mut done = false;
        Box::new(std::iter::from_fn(move || loop {
            if let Some(row) = page.next() {
                after = Some(row.0.clone());
                return Some(Ok(row));
            }
            if done {
                return None;
            }
            let rows = self.with(|c, _| {
                let t = table.index() as i16;
                match &after {
                    Some(a) => c.query(
                        "SELECT k, v FROM ledger WHERE t = $1 AND k > $2
                         AND ($3::bytea IS NULL OR k < $3) ORDER BY k LIMIT $4",
                        &[&t, a, &to, &PAGE],
                    ),
                    None => c.query(
                        "SELECT k, v FROM ledger WHERE t = $1 AND k >= $2
                         AND ($3::bytea IS NULL OR k < $3) ORDER BY k LIMIT $4",
                        &[&t, &from, &to, &PAGE],
                    ),
                }
            });
            match rows {
                Ok(rows) => {
                    done = (rows.len() as i64) < PAGE;
                    page = rows
                        .into_iter()
                        .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1)))
                        .collect::<Vec<_>>()
                        .into_iter();
                }
                Err(e) => {
                    done = true;
                    return Some(Err(e));
                }
            }
        }))
    }

    fn put(&self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        self.with(|c, st| write_rows(c, st, &[(table, key.to_vec(), value.to_vec())], &[]))
            .map(drop)
    }

    fn transact(&self, body: Body<'_>) -> TxResult<()> {
        let started = std::time::Instant::now();
        let mut attempt = 0u32;
        while started.elapsed() < RETRY_FOR {
            let turn = if attempt >= ALONE_AFTER {
                Turn::Alone(self.turns.write().unwrap_or_else(|p| p.into_inner()))
            } else {
                Turn::Shared(self.turns.read().unwrap_or_else(|p| p.into_inner()))
            };
            let mut conn = self.conn()?;
            let result = self.attempt(&mut conn, body);
            self.noted(&result);
            if !matches!(result, Ok(Attempt::Stale)) {
                self.put_back(conn);
            }
            drop(turn);
            match result {
                Ok(Attempt::Done(r)) => return r,
                Ok(Attempt::Retry | Attempt::Stale) => attempt += 1,
                Err(e) if retryable(&e) => {
                    // Another transaction got in the way: a pause, random
                    // so that the ones that met do not meet again, growing
                    // up to 10 ms, then the whole body again.
                    let cap = 200u64 << attempt.min(6);
                    std::thread::sleep(Duration::from_micros(rand_below(cap) + 50));
                    attempt += 1;
                }
                Err(e) => return Err(TxError::Storage(error(e))),
            }
        }
        Err(TxError::Storage(StorageError::Conflict))
    }

    fn next_id(&self) -> Result<u64, StorageError> {
        self.with(|c, st| self.take_id(c, st))
    }

    fn raise_id_base(&self, base: u64) -> Result<(), StorageError> {
        let base = i64::try_from(base).unwrap_or(i64::MAX);
        self.with(|c, _| {
            c.execute(
                "SELECT setval('ledger_ids', greatest($1, (SELECT last_value FROM ledger_ids)))",
                &[&base],
            )
        })?;
        *self.ids.lock().unwrap_or_else(|p| p.into_inner()) = IdBlock::default();
        Ok(())
    }

    fn flush(&self) -> Result<(), StorageError> {
        // A COMMIT that returned is durable: nothing is left to flush.
        Ok(())
    }

    fn len(&self, table: Table) -> usize {
        self.with(|c, _| {
            c.query_one(
                "SELECT count(*) FROM ledger WHERE t = $1",
                &[&(table.index() as i16)],
            )
            .map(|r| r.get::<_, i64>(0))
        })
        .map_or(0, |n| usize::try_from(n).unwrap_or(0))
    }

    fn snapshot(&self) -> Result<Box<dyn Snapshot>, StorageError> {
        let mut client = self.open()?;
        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .map_err(error)?;
        // Ids of every block handed out so far are below this one.
        let last: i64 = client
            .query_one("SELECT last_value FROM ledger_ids", &[])
            .map_err(error)?
            .get(0);
        Ok(Box::new(PgSnapshot {
            client: Mutex::new(client),
            next_id: u64::try_from(last + ID_BLOCK).unwrap_or(0),
        }))
    }

    fn import(&self, table: Table, records: &[(Vec<u8>, Vec<u8>)]) -> Result<(), StorageError> {
        let rows: Vec<_> = records
            .iter()
            .map(|(k, v)| (table, k.clone(), v.clone()))
            .collect();
        self.with(|c, st| write_rows(c, st, &rows, &[])).map(drop)
    }

    fn healthy(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Health is "the last statement found the database": this makes a
    /// statement when nothing else does, and counts a server in recovery
    /// (a standby, which takes no writes) as no primary.
    fn probe(&self) {
        let in_recovery = self.with(|c, _| {
            c.query_one("SELECT pg_is_in_recovery()", &[])
                .and_then(|row| row.try_get::<_, bool>(0))
        });
        if matches!(in_recovery, Ok(true)) {
            self.up.store(false, Ordering::Release);
        }
    }

    fn size_on_disk(&self) -> Result<u64, StorageError> {
        let bytes: i64 = self.with(|c, _| {
            c.query_one("SELECT pg_total_relation_size('ledger')", &[])
                .map(|r| r.get(0))
        })?;
        Ok(u64::try_from(bytes).unwrap_or(0))
    }

    fn lease(&self, name: &str) -> Result<bool, StorageError> {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        // The session must still be alive for its locks to be ours.
        let alive = match leases.session.as_mut() {
            Some(c) => c.simple_query("SELECT 1").is_ok(),
            None => false,
        };
        if !alive {
            leases.held.clear();
            leases.session = Some(self.open()?);
        }
        if leases.held.contains(name) {
            return Ok(true);
        }
        let Some(session) = leases.session.as_mut() else {
            return Ok(false);
        };
        let got: bool = session
            .query_one("SELECT pg_try_advisory_lock(hashtext($1))", &[&name])
            .map_err(error)?
            .get(0);
        if got {
            leases.held.insert(name.to_owned());
        }
        Ok(got)
    }

    fn exclusive(&self, name: &str, f: &mut dyn FnMut()) -> Result<(), StorageError> {
        let mut session = self.open()?;
        session
            .execute("SELECT pg_advisory_lock(hashtext($1))", &[&name])
            .map_err(error)?;
        f();
        // Ending the session releases the lock whatever happened in `f`.
        drop(session);
        Ok(())
    }

    fn watch(&self, table: Table, on: TerminalListener) {
        if table != Table::Terminals {
            return;
        }
        let config = self.config.clone();
        let spawned = std::thread::Builder::new()
            .name("clubswitch-listen".into())
            .spawn(move || listen(&config, &*on));
        if let Err(e) = spawned {
            tracing::error!("starting the change listener: {e}");
        }
    }

    fn shared(&self) -> bool {
        true
    }

    fn replication_lag(&self) -> Option<f64> {
        self.with(|c, _| {
            c.query_one(
                "SELECT extract(epoch FROM max(replay_lag))::float8 FROM pg_stat_replication",
                &[],
            )
            .map(|r| r.get::<_, Option<f64>>(0))
        })
        .ok()
        .flatten()
    }
}

/// Hears the terminals other nodes changed, for as long as the process
/// lives, reconnecting after a break. A break may lose a notice: the
/// caller's cache is cleared whenever the listener (re)connects.
fn listen(config: &postgres::Config, on: &(dyn Fn(&[u8]) + Send + Sync)) {
    loop {
        match config.connect(NoTls) {
            Ok(mut client) => {
                if client.batch_execute(&format!("LISTEN {TERMINALS}")).is_ok() {
                    // Changes missed while not listening: forget them all.
                    on(&[]);
                    let mut notices = client.notifications();
                    let mut heard = notices.blocking_iter();
                    while let Ok(Some(n)) = heard.next() {
                        for key in n.payload().split(',') {
                            if let Ok(k) = hex::decode(key) {
                                on(&k);
                            }
                        }
                    }
                }
            }
            Err(e) => tracing::debug!("change listener: {e}"),
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Every table as of the snapshot's instant: a REPEATABLE READ transaction
/// read through cursors, so a big table is never held in memory whole.
struct PgSnapshot {
    client: Mutex<Client>,
    next_id: u64,
}

impl Snapshot for PgSnapshot {
    fn records(&self, table: Table) -> Entries<'_> {
        let cursor = format!("snapshot_{}", table.name());
        let opened = self
            .client
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .batch_execute(&format!(
            "DECLARE {cursor} NO SCROLL CURSOR FOR SELECT k, v FROM ledger WHERE t = {} ORDER BY k",
            table.index()
        ));
        if let Err(e) = opened {
            return Box::new(std::iter::once(Err(error(e))));
        }
        let mut page: std::vec::IntoIter<(Vec<u8>, Vec<u8>)> = Vec::new().into_iter();
        let mut done = false;
        Box::new(std::iter::from_fn(move || loop {
            if let Some(row) = page.next() {
                return Some(Ok(row));
            }
            if done {
                return None;
            }
            let mut client = self.client.lock().unwrap_or_else(|p| p.into_inner());
            match client.query(&format!("FETCH {PAGE} FROM {cursor}"), &[]) {
                Ok(rows) => {
                    done = (rows.len() as i64) < PAGE;
                    if done {
                        let _ = client.batch_execute(&format!("CLOSE {cursor}"));
                    }
                    page = rows
                        .into_iter()
                        .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1)))
                        .collect::<Vec<_>>()
                        .into_iter();
                }
                Err(e) => {
                    done = true;
                    return Some(Err(error(e)));
                }
            }
        }))
    }

    fn next_id(&self) -> u64 {
        self.next_id
    }
}

/// The PostgreSQL clusters the integration tests use.
#[cfg(test)]
#[path = "../../../../tests/support/pg.rs"]
mod test_pg;

#[cfg(test)]
mod tests {
    use super::test_pg as pg;
    use super::*;

    #[test]
    fn a_prefix_ends_at_the_first_key_past_it() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xFF, 0xFF]), None);
        assert_eq!(prefix_end(b""), None);
    }

    /// A session of the switch's on a new database whose schema a node
    /// created, its ledger empty.
    fn young_ledger() -> Conn {
        let url = pg::fresh_url();
        drop(Postgres::connect(&url).unwrap());
        Conn::open(&postgres::Config::from_str(&url).unwrap()).unwrap()
    }

    /// The plan each statement gets once PostgreSQL keeps a generic one:
    /// after six runs on a ledger of 20 rows, none of them analyzed, and
    /// 50,000 rows later.
    fn plans_after_growth(conn: &mut Conn) -> Vec<String> {
        let c = &mut conn.client;
        let rows = |from: u32, to: u32| {
            format!(
                "INSERT INTO ledger (t, k, v)
                 SELECT 6, int8send(i), '\\x00' FROM generate_series({from}, {to}) i"
            )
        };
        // No ANALYZE but the test's: autovacuum's would replan mid-test.
        c.batch_execute("ALTER TABLE ledger SET (autovacuum_enabled = false)")
            .unwrap();
        c.batch_execute(&rows(1, 20)).unwrap();
        c.batch_execute(&format!(
            "PREPARE fetch_keys(int2[], bytea[]) AS {FETCH};
             PREPARE delete_keys(int2[], bytea[]) AS {DELETE}"
        ))
        .unwrap();
        let fetch = "fetch_keys('{6,6,6}', ARRAY[int8send(1), int8send(2), int8send(3)])";
        let delete = "delete_keys('{6}', ARRAY[int8send(0)])";
        for _ in 0..6 {
            c.batch_execute(&format!("EXECUTE {fetch}; EXECUTE {delete}"))
                .unwrap();
        }
        c.batch_execute(&rows(21, 50_000)).unwrap();
        [fetch, delete]
            .iter()
            .map(|stmt| {
                let rows = c.query(&format!("EXPLAIN EXECUTE {stmt}"), &[]).unwrap();
                rows.iter()
                    .map(|r| r.get::<_, String>(0))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .collect()
    }

    #[test]
    fn a_young_ledgers_reads_and_deletes_stay_index_lookups_as_it_grows() {
        for plan in plans_after_growth(&mut young_ledger()) {
            assert!(
                plan.contains("Index Scan using ledger_pkey") && !plan.contains("Seq Scan"),
                "{plan}"
            );
        }
    }

    /// Node B reads a row, node A removes it and commits, then B writes
    /// it from what it read: B's write must not bring the row back as if
    /// A's removal never happened. B runs again and works from the row's
    /// absence, as the embedded ledger (one transaction at a time) would.
    #[test]
    fn a_row_another_node_removed_since_it_was_read_runs_the_transaction_again() {
        use std::sync::atomic::AtomicUsize;
        let url = pg::fresh_url();
        let a = Postgres::connect(&url).unwrap();
        let b = Postgres::connect(&url).unwrap();
        a.put(Table::Allowance, b"card", &[1]).unwrap();
        let removed = AtomicBool::new(false);
        let attempts_seeing_it = AtomicUsize::new(0);
        b.transact(&|tx| {
            let mut seen = None;
            tx.read(Table::Allowance, b"card", &mut |v| seen = Some(v[0]))?;
            if seen.is_some() {
                attempts_seeing_it.fetch_add(1, Ordering::SeqCst);
                if !removed.swap(true, Ordering::SeqCst) {
                    // Inside B's snapshot, which has read the row.
                    a.transact(&|tx| tx.remove(Table::Allowance, b"card"))
                        .unwrap();
                }
            }
            tx.write(Table::Allowance, b"card", vec![seen.unwrap_or(0) + 1])
        })
        .unwrap();
        assert_eq!(attempts_seeing_it.load(Ordering::SeqCst), 1);
        assert_eq!(a.get(Table::Allowance, b"card").unwrap(), Some(vec![1]));
    }

    /// A pooled session the server ended since (a restart, a failover)
    /// costs no transaction: it runs again on a new session.
    #[test]
    fn a_pooled_session_the_server_ended_is_replaced_without_failing_a_transaction() {
        let url = pg::fresh_url();
        let a = Postgres::connect(&url).unwrap();
        let pid: i32 = a
            .with(|c, _| c.query_one("SELECT pg_backend_pid()", &[]))
            .unwrap()
            .get(0);
        let mut admin = postgres::Client::connect(&url, NoTls).unwrap();
        admin
            .execute("SELECT pg_terminate_backend($1)", &[&pid])
            .unwrap();
        a.transact(&|tx| tx.write(Table::Meta, b"after", vec![1]))
            .unwrap();
        assert_eq!(a.get(Table::Meta, b"after").unwrap(), Some(vec![1]));
    }

    /// A database whose commits return before they are durable is refused.
    #[test]
    fn a_database_with_synchronous_commit_off_is_refused() {
        // As the role's or the database's setting would be, for this
        // session only (the cluster is shared by tests running at once).
        let url = format!("{}%20-c%20synchronous_commit%3Doff", pg::fresh_url());
        match Postgres::connect(&url) {
            Err(StorageError::Io(why)) => assert!(why.contains("synchronous_commit"), "{why}"),
            other => panic!("{:?}", other.map(|_| ())),
        }
    }

    /// What [`PLANNER`] is for: without it, the same session keeps a plan
    /// that scans the whole table (if PostgreSQL stops doing so, the
    /// setting can go).
    #[test]
    fn without_the_planner_settings_a_young_ledger_is_scanned_whole() {
        let mut conn = young_ledger();
        conn.client.batch_execute("RESET ALL").unwrap();
        let plans = plans_after_growth(&mut conn);
        assert!(plans[0].contains("Seq Scan on ledger"), "{}", plans[0]);
    }
}
