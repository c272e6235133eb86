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

use diesel::dsl::now;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::functions::least_timestamp;

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

/// Whether an attempt was counted.
#[derive(QueryableByName)]
struct Counted {
    #[diesel(sql_type = Bool)]
    admitted: bool,
}

/// Whether a login was counted, and whether its address counted it.
#[derive(QueryableByName)]
struct LoginCounted {
    #[diesel(sql_type = Bool)]
    admitted: bool,
    #[diesel(sql_type = Bool)]
    address_admitted: bool,
}

/// How long a refused attempt waits, read in a statement of its own after
/// the refusal: the refusing statement's snapshot can predate the
/// concurrent attempt that moved the wait.
#[derive(QueryableByName)]
struct RetryAfter {
    #[diesel(sql_type = Nullable<BigInt>)]
    retry_after_ms: Option<i64>,
}

impl RetryAfter {
    /// At least a second, whatever it says.
    fn refusal(&self) -> Admission {
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
const BEGIN_LOGIN: &str = include_str!("throttle/begin_login.sql");

/// See [`BEGIN_LOGIN`].
pub async fn begin_login(
    conn: &mut AsyncPgConnection,
    keys: &LoginKeys,
    budgets: &LoginBudgets,
) -> QueryResult<Admission> {
    let login: LoginCounted = diesel::sql_query(BEGIN_LOGIN)
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
    if login.admitted {
        return Ok(Admission::Admitted);
    }
    if login.address_admitted {
        give_back(conn, &keys.address).await?;
    }
    let wait: RetryAfter = diesel::sql_query(include_str!("throttle/login_retry_after.sql"))
        .bind::<Text, _>(&keys.pair)
        .bind::<Text, _>(&keys.address)
        .bind::<BigInt, _>(count(budgets.pair))
        .get_result(conn)
        .await?;
    Ok(wait.refusal())
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
    diesel::sql_query(include_str!("throttle/login_succeeded.sql"))
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
const BEGIN_WITH_BACKOFF: &str = include_str!("throttle/begin_with_backoff.sql");

/// See [`BEGIN_WITH_BACKOFF`].
pub async fn begin_with_backoff(
    conn: &mut AsyncPgConnection,
    key: &str,
    window: Duration,
    budget: u32,
    max_backoff: Duration,
) -> QueryResult<Admission> {
    let outcome: Counted = diesel::sql_query(BEGIN_WITH_BACKOFF)
        .bind::<Text, _>(key)
        .bind::<BigInt, _>(millis(window))
        .bind::<BigInt, _>(count(budget))
        .bind::<BigInt, _>(millis(max_backoff))
        .get_result(conn)
        .await?;
    if outcome.admitted {
        return Ok(Admission::Admitted);
    }
    let wait: RetryAfter = diesel::sql_query(include_str!("throttle/backoff_retry_after.sql"))
        .bind::<Text, _>(key)
        .get_result(conn)
        .await?;
    Ok(wait.refusal())
}

/// A login attempt that could not be carried out (the server was too busy
/// to hash): its keys take its count back, in [`login_succeeded`]'s lock
/// order.
pub async fn give_back_login(conn: &mut AsyncPgConnection, keys: &LoginKeys) -> QueryResult<()> {
    diesel::sql_query(include_str!("throttle/give_back_login.sql"))
        .bind::<Text, _>(&keys.pair)
        .bind::<Text, _>(&keys.account)
        .bind::<Text, _>(&keys.address)
        .execute(conn)
        .await?;
    Ok(())
}

/// An attempt counted under `key` alone (a registration) that could not
/// be carried out: it takes its count back, and the wait it set (it was
/// admitted, so the wait before it had passed): a refusal it did not earn
/// must not keep the next attempt waiting.
pub async fn give_back(conn: &mut AsyncPgConnection, key: &str) -> QueryResult<()> {
    use crate::schema::throttle_counters::dsl as t;
    diesel::update(
        t::throttle_counters
            .filter(t::key.eq(key))
            .filter(t::attempts.gt(0))
            .filter(t::window_ends_at.gt(now)),
    )
    .set((
        t::attempts.eq(t::attempts - 1),
        t::next_at.eq(least_timestamp(t::next_at, now)),
    ))
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes up to `batch` rows whose window has ended; returns how many.
/// `SKIP LOCKED`: replicas purging at once, or an attempt counting on a
/// row, never wait on each other.
pub async fn purge_expired(conn: &mut AsyncPgConnection, batch: i64) -> QueryResult<usize> {
    use crate::schema::throttle_counters::dsl as t;
    let rows = diesel::alias!(crate::schema::throttle_counters as expired_rows);
    let expired = rows
        .filter(rows.field(t::window_ends_at).le(now))
        .select(rows.field(t::key))
        .limit(batch)
        .for_update()
        .skip_locked();
    diesel::delete(t::throttle_counters.filter(t::key.eq_any(expired)))
        .execute(conn)
        .await
}
