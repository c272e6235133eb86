//! Throttling counters shared by every replica (migration 006): one row of
//! `throttle_counters` per key, each changed by single statements that
//! take no lock of their own and keep no session state, so that they work
//! through PgBouncer in transaction pooling. The policy (which keys, which
//! budgets) is `auth::throttle`'s; this module only counts.
//!
//! Two kinds of key:
//! - a **budget with backoff** (an address's logins, an address's
//!   registrations): `budget` attempts per window at once, then one attempt
//!   per delay, the delay doubling from 1 s up to `max_backoff`;
//! - a **strict budget** (an account from one address): `budget` attempts
//!   per window, then none until the window ends; and its attempts are
//!   spaced by the account's own backoff once the account (all addresses
//!   together) has used its budget.
//!
//! A row whose window has ended counts as absent: the next attempt starts
//! a new window. [`purge_expired`] deletes such rows.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// The keys one login attempt counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginKeys {
    /// The account from this address: strict.
    pub pair: String,
    /// The account from every address: spaces the pairs' attempts.
    pub account: String,
    /// The address for every account: budget with backoff.
    pub address: String,
}

/// The budgets a login attempt is checked against.
#[derive(Debug, Clone, Copy)]
pub struct LoginBudgets {
    pub window: Duration,
    /// Attempts per window for an account from one address.
    pub pair: u32,
    /// Attempts per window for an account before its backoff starts.
    pub account: u32,
    /// Attempts per window for an address before its backoff starts.
    pub address: u32,
    pub max_backoff: Duration,
}

/// Whether an attempt may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Counted; go ahead.
    Admitted,
    /// Not counted; try again after this long.
    Refused { retry_after: Duration },
}

#[derive(QueryableByName)]
struct Outcome {
    #[diesel(sql_type = Bool)]
    admitted: bool,
    #[diesel(sql_type = Nullable<BigInt>)]
    retry_after_ms: Option<i64>,
}

/// A login's [`Outcome`], and whether its address counted it.
#[derive(QueryableByName)]
struct LoginOutcome {
    #[diesel(embed)]
    outcome: Outcome,
    #[diesel(sql_type = Bool)]
    address_admitted: bool,
}

impl Outcome {
    fn admission(&self) -> Admission {
        if self.admitted {
            return Admission::Admitted;
        }
        // Read from the snapshot before the statement: a concurrent attempt
        // may have moved it since. At least a second, whatever it says.
        let millis = self.retry_after_ms.unwrap_or(0).max(1_000);
        Admission::Refused {
            retry_after: Duration::from_millis(millis.unsigned_abs()),
        }
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn count(budget: u32) -> i64 {
    i64::from(budget)
}

/// Counts a login attempt against its address, its (account, address) pair
/// and its account, in one statement, or refuses it without counting it
/// for the pair and the account.
///
/// In order: the address admits the attempt when it is within its budget
/// or its backoff has run out; then the pair, when it is under its strict
/// budget and past the spacing the account's backoff set after its last
/// attempt; then the account counts it. Each row is decided on its latest
/// version under its row lock (ON CONFLICT DO UPDATE ... WHERE), so
/// attempts in flight count, across every replica. An attempt the pair
/// refuses checks no password, and its address takes it back at once: an
/// account's own retries (its owner's app, logins in flight) must not move
/// everyone who shares the address towards its backoff.
///
/// `$1` pair, `$2` account, `$3` address, `$4` window (ms), `$5` pair
/// budget, `$6` account budget, `$7` address budget, `$8` longest backoff (ms).
const BEGIN_LOGIN: &str = "\
WITH address AS (
    INSERT INTO throttle_counters AS t (key, attempts, window_ends_at, next_at)
    VALUES ($3, 1, now() + $4 * interval '1 millisecond',
            CASE WHEN 1 < $7 THEN '-infinity'::timestamptz
                 ELSE now() + least(1000, $8) * interval '1 millisecond' END)
    ON CONFLICT (key) DO UPDATE SET
        attempts = CASE WHEN t.window_ends_at <= now() THEN 1 ELSE t.attempts + 1 END,
        window_ends_at = CASE WHEN t.window_ends_at <= now() THEN excluded.window_ends_at
                              ELSE t.window_ends_at END,
        next_at = CASE WHEN t.window_ends_at <= now() THEN excluded.next_at
                       WHEN t.attempts + 1 < $7 THEN '-infinity'::timestamptz
                       ELSE now() + least(power(2::float8, least(t.attempts + 1 - $7, 40)) * 1000, $8)
                                    * interval '1 millisecond' END
    WHERE t.window_ends_at <= now() OR t.next_at <= now()
    RETURNING t.key
),
spacing AS (
    SELECT coalesce((
        SELECT CASE WHEN a.attempts + 1 < $6 THEN interval '0'
                    ELSE least(power(2::float8, least(a.attempts + 1 - $6, 40)) * 1000, $8)
                         * interval '1 millisecond' END
        FROM throttle_counters a
        WHERE a.key = $2 AND a.window_ends_at > now()
    ), interval '0') AS delay
),
pair AS (
    INSERT INTO throttle_counters AS t (key, attempts, window_ends_at, next_at)
    SELECT $1, 1, now() + $4 * interval '1 millisecond',
           CASE WHEN spacing.delay > interval '0' THEN now() + spacing.delay
                ELSE '-infinity'::timestamptz END
    FROM address, spacing
    ON CONFLICT (key) DO UPDATE SET
        attempts = CASE WHEN t.window_ends_at <= now() THEN 1 ELSE t.attempts + 1 END,
        window_ends_at = CASE WHEN t.window_ends_at <= now() THEN excluded.window_ends_at
                              ELSE t.window_ends_at END,
        next_at = excluded.next_at
    WHERE t.window_ends_at <= now() OR (t.attempts < $5 AND t.next_at <= now())
    RETURNING t.key
),
account AS (
    INSERT INTO throttle_counters AS t (key, attempts, window_ends_at, next_at)
    SELECT $2, 1, now() + $4 * interval '1 millisecond', '-infinity'::timestamptz
    FROM pair
    ON CONFLICT (key) DO UPDATE SET
        attempts = CASE WHEN t.window_ends_at <= now() THEN 1 ELSE t.attempts + 1 END,
        window_ends_at = CASE WHEN t.window_ends_at <= now() THEN excluded.window_ends_at
                              ELSE t.window_ends_at END
    RETURNING t.key
)
SELECT
    EXISTS (SELECT 1 FROM account) AS admitted,
    EXISTS (SELECT 1 FROM address) AS address_admitted,
    (SELECT ceil(extract(epoch FROM max(
                CASE WHEN r.key = $1 AND r.attempts >= $5 THEN r.window_ends_at
                     ELSE greatest(r.next_at, now()) END
            ) - now()) * 1000)::bigint
     FROM throttle_counters r
     WHERE r.key IN ($1, $3) AND r.window_ends_at > now()) AS retry_after_ms";

/// See [`BEGIN_LOGIN`].
pub async fn begin_login(
    conn: &mut AsyncPgConnection,
    keys: &LoginKeys,
    budgets: &LoginBudgets,
) -> QueryResult<Admission> {
    let login: LoginOutcome = diesel::sql_query(BEGIN_LOGIN)
        .bind::<Text, _>(&keys.pair)
        .bind::<Text, _>(&keys.account)
        .bind::<Text, _>(&keys.address)
        .bind::<BigInt, _>(millis(budgets.window))
        .bind::<BigInt, _>(count(budgets.pair))
        .bind::<BigInt, _>(count(budgets.account))
        .bind::<BigInt, _>(count(budgets.address))
        .bind::<BigInt, _>(millis(budgets.max_backoff))
        .get_result(conn)
        .await?;
    if login.address_admitted && !login.outcome.admitted {
        give_back(conn, &keys.address).await?;
    }
    Ok(login.outcome.admission())
}

/// Rows are locked in [`BEGIN_LOGIN`]'s order, address, pair, account, by
/// every statement that touches more than one of a login's rows: in
/// another order, a success and a new attempt each hold the row the other
/// waits for (a deadlock, which PostgreSQL breaks by failing one). Each
/// step reads the previous one's result (`count(*) >= 0`, always true) so
/// that PostgreSQL runs them in that order.
///
/// The attempt had the right password: the address and the account take
/// its count back (their other attempts stay counted), and the pair's row
/// goes (its owner proved themselves from there).
pub async fn login_succeeded(conn: &mut AsyncPgConnection, keys: &LoginKeys) -> QueryResult<()> {
    diesel::sql_query(
        "WITH address AS (UPDATE throttle_counters SET attempts = attempts - 1 \
             WHERE key = $3 AND attempts > 0 AND window_ends_at > now() RETURNING key), \
         pair AS (DELETE FROM throttle_counters \
             WHERE key = $1 AND (SELECT count(*) FROM address) >= 0 RETURNING key) \
         UPDATE throttle_counters SET attempts = attempts - 1 \
         WHERE key = $2 AND attempts > 0 AND window_ends_at > now() \
           AND (SELECT count(*) FROM pair) >= 0",
    )
    .bind::<Text, _>(&keys.pair)
    .bind::<Text, _>(&keys.account)
    .bind::<Text, _>(&keys.address)
    .execute(conn)
    .await?;
    Ok(())
}

/// Counts an attempt against one budget with backoff (an address's
/// registrations), or refuses it without counting it: as the address of
/// [`BEGIN_LOGIN`]. `$1` key, `$2` window (ms), `$3` budget, `$4` longest
/// backoff (ms).
const BEGIN_WITH_BACKOFF: &str = "\
WITH counted AS (
    INSERT INTO throttle_counters AS t (key, attempts, window_ends_at, next_at)
    VALUES ($1, 1, now() + $2 * interval '1 millisecond',
            CASE WHEN 1 < $3 THEN '-infinity'::timestamptz
                 ELSE now() + least(1000, $4) * interval '1 millisecond' END)
    ON CONFLICT (key) DO UPDATE SET
        attempts = CASE WHEN t.window_ends_at <= now() THEN 1 ELSE t.attempts + 1 END,
        window_ends_at = CASE WHEN t.window_ends_at <= now() THEN excluded.window_ends_at
                              ELSE t.window_ends_at END,
        next_at = CASE WHEN t.window_ends_at <= now() THEN excluded.next_at
                       WHEN t.attempts + 1 < $3 THEN '-infinity'::timestamptz
                       ELSE now() + least(power(2::float8, least(t.attempts + 1 - $3, 40)) * 1000, $4)
                                    * interval '1 millisecond' END
    WHERE t.window_ends_at <= now() OR t.next_at <= now()
    RETURNING t.key
)
SELECT
    EXISTS (SELECT 1 FROM counted) AS admitted,
    (SELECT ceil(extract(epoch FROM greatest(r.next_at, now()) - now()) * 1000)::bigint
     FROM throttle_counters r
     WHERE r.key = $1 AND r.window_ends_at > now()) AS retry_after_ms";

/// See [`BEGIN_WITH_BACKOFF`].
pub async fn begin_with_backoff(
    conn: &mut AsyncPgConnection,
    key: &str,
    window: Duration,
    budget: u32,
    max_backoff: Duration,
) -> QueryResult<Admission> {
    let outcome: Outcome = diesel::sql_query(BEGIN_WITH_BACKOFF)
        .bind::<Text, _>(key)
        .bind::<BigInt, _>(millis(window))
        .bind::<BigInt, _>(count(budget))
        .bind::<BigInt, _>(millis(max_backoff))
        .get_result(conn)
        .await?;
    Ok(outcome.admission())
}

/// A login attempt that could not be carried out (the server was too busy
/// to hash): its keys take its count back, in [`login_succeeded`]'s lock
/// order.
pub async fn give_back_login(conn: &mut AsyncPgConnection, keys: &LoginKeys) -> QueryResult<()> {
    diesel::sql_query(
        "WITH address AS (UPDATE throttle_counters SET attempts = attempts - 1 \
             WHERE key = $3 AND attempts > 0 AND window_ends_at > now() RETURNING key), \
         pair AS (UPDATE throttle_counters SET attempts = attempts - 1 \
             WHERE key = $1 AND attempts > 0 AND window_ends_at > now() \
               AND (SELECT count(*) FROM address) >= 0 RETURNING key) \
         UPDATE throttle_counters SET attempts = attempts - 1 \
         WHERE key = $2 AND attempts > 0 AND window_ends_at > now() \
           AND (SELECT count(*) FROM pair) >= 0",
    )
    .bind::<Text, _>(&keys.pair)
    .bind::<Text, _>(&keys.account)
    .bind::<Text, _>(&keys.address)
    .execute(conn)
    .await?;
    Ok(())
}

/// An attempt counted under `key` alone (a registration) that could not
/// be carried out: it takes its count back.
pub async fn give_back(conn: &mut AsyncPgConnection, key: &str) -> QueryResult<()> {
    diesel::sql_query(
        "UPDATE throttle_counters SET attempts = attempts - 1 \
         WHERE key = $1 AND attempts > 0 AND window_ends_at > now()",
    )
    .bind::<Text, _>(key)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes up to `batch` rows whose window has ended; returns how many.
/// `SKIP LOCKED`: replicas purging at once, or an attempt counting on a
/// row, never wait on each other.
pub async fn purge_expired(conn: &mut AsyncPgConnection, batch: i64) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM throttle_counters WHERE key IN (\
           SELECT key FROM throttle_counters \
           WHERE window_ends_at <= now() \
           LIMIT $1 FOR UPDATE SKIP LOCKED)",
    )
    .bind::<BigInt, _>(batch)
    .execute(conn)
    .await
}
