//! Identity keys (migration 012) for the accounts written without them:
//! before the migration, by a server that predates it, or under older
//! rules ([`IDENTITY_KEYS_VERSION`]). SQL cannot compute them (Unicode case
//! folding whatever the locale, TR39 skeletons), so the server does, at
//! boot, before it serves: from then on every registration and rename is
//! compared with every account.

use std::collections::HashSet;

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::users::IdentityKeys;
use super::{Db, DbError};
use crate::domain::identity::IDENTITY_KEYS_VERSION;
use crate::schema::users;

/// An account's id and the keys to give it (`None`: an earlier account
/// of its batch has that one).
type KeyRow = (i64, Option<String>, Option<String>, Option<String>);

/// The migration that adds the keys' columns.
pub const SINCE_MIGRATION: &str = "012";

/// Accounts keyed per transaction.
const BATCH: i64 = 500;
/// Attempts at one batch that a concurrent write made collide.
const ATTEMPTS: usize = 5;

/// An account left without a key that another account already holds
/// (older rules let both in): it keeps working, and the other account's
/// key keeps new look-alikes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collision {
    pub id: i64,
    pub field: &'static str,
}

/// What [`key_every_account`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KeyingReport {
    pub keyed: usize,
    pub collisions: Vec<Collision>,
}

/// Keys every account whose keys are missing or older than these rules,
/// oldest account first, so that of two accounts older rules let share a
/// key, the first one registered gets it. Idempotent: replicas booting at
/// once only repeat each other's work.
pub async fn key_every_account(db: &Db) -> Result<KeyingReport, DbError> {
    let mut report = KeyingReport::default();
    let mut after = 0;
    loop {
        let batch = db
            .run(async |conn| Ok::<_, DbError>(unkeyed_after(conn, after).await?))
            .await?;
        let Some(&(last, _, _)) = batch.last() else {
            return Ok(report);
        };
        // Two accounts of one batch cannot see each other's key in the
        // database (earlier batches' keys are there, committed).
        let mut given = Given::default();
        let rows: Vec<KeyRow> = batch
            .iter()
            .map(|(id, username, email)| {
                let keys = IdentityKeys::of(username, email);
                (
                    *id,
                    given.claim(0, keys.username_folded),
                    given.claim(1, keys.username_skeleton),
                    given.claim(2, keys.email_folded),
                )
            })
            .collect();
        let mut attempt = 0;
        let written = loop {
            attempt += 1;
            match db
                .run(async |conn| Ok::<_, DbError>(write_keys(conn, &rows).await?))
                .await
            {
                // Another server registered or renamed an account with one
                // of these keys meanwhile: the next attempt sees it.
                Err(DbError::Query(error))
                    if attempt < ATTEMPTS
                        && super::violated_unique_constraint(&error).is_some() => {}
                outcome => break outcome?,
            }
        };
        report.keyed += written.len();
        report.collisions.extend(collisions(&written));
        after = last;
    }
}

/// Keys already given in this batch, per kind of key.
#[derive(Default)]
struct Given([HashSet<String>; 3]);

impl Given {
    /// `key`, unless an earlier account of this batch took it.
    fn claim(&mut self, kind: usize, key: String) -> Option<String> {
        self.0[kind].insert(key.clone()).then_some(key)
    }
}

/// Whether some account's keys are missing or were computed by older
/// rules.
pub async fn any_unkeyed(conn: &mut AsyncPgConnection) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        users::table.filter(users::identity_keys_version.lt(IDENTITY_KEYS_VERSION)),
    ))
    .get_result(conn)
    .await
}

/// The next accounts to key, by id.
async fn unkeyed_after(
    conn: &mut AsyncPgConnection,
    after: i64,
) -> QueryResult<Vec<(i64, String, String)>> {
    users::table
        .filter(users::identity_keys_version.lt(IDENTITY_KEYS_VERSION))
        .filter(users::id.gt(after))
        .order(users::id)
        .limit(BATCH)
        .select((users::id, users::username, users::email))
        .load(conn)
        .await
}

#[derive(QueryableByName)]
struct Written {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Bool)]
    username_folded: bool,
    #[diesel(sql_type = Bool)]
    username_skeleton: bool,
    #[diesel(sql_type = Bool)]
    email_folded: bool,
}

/// Writes the keys of `rows` in one statement: each key unless another
/// account holds it already (then NULL). Returns which keys each row got.
async fn write_keys(conn: &mut AsyncPgConnection, rows: &[KeyRow]) -> QueryResult<Vec<Written>> {
    let ids: Vec<i64> = rows.iter().map(|row| row.0).collect();
    let folded: Vec<Option<String>> = rows.iter().map(|row| row.1.clone()).collect();
    let skeletons: Vec<Option<String>> = rows.iter().map(|row| row.2.clone()).collect();
    let emails: Vec<Option<String>> = rows.iter().map(|row| row.3.clone()).collect();
    diesel::sql_query(include_str!("identity_keys/write_keys.sql"))
        .bind::<Array<BigInt>, _>(ids)
        .bind::<Array<Nullable<Text>>, _>(folded)
        .bind::<Array<Nullable<Text>>, _>(skeletons)
        .bind::<Array<Nullable<Text>>, _>(emails)
        .bind::<BigInt, _>(IDENTITY_KEYS_VERSION)
        .load(conn)
        .await
}

/// The keys the written accounts did not get: each was computed, so a
/// NULL is a key another account holds.
fn collisions(written: &[Written]) -> Vec<Collision> {
    written
        .iter()
        .flat_map(|row| {
            [
                ("username", row.username_folded),
                ("username (look-alike)", row.username_skeleton),
                ("email", row.email_folded),
            ]
            .into_iter()
            .filter(|(_, got)| !got)
            .map(|(field, _)| Collision { id: row.id, field })
        })
        .collect()
}

/// Keys the accounts that have no keys (or older ones) and says which
/// ones older rules let collide. Run at boot, by `conduit migrate run` and
/// `redo` once this migration is applied, and again every purge round, for
/// accounts a server that predates the keys wrote meanwhile. A failure is
/// logged, not fatal: the unique indexes stay the rule for every write,
/// and an unkeyed account is still found by its exact name.
pub async fn key_unkeyed_accounts(db: &Db) {
    match key_every_account(db).await {
        Ok(KeyingReport { keyed, collisions }) => {
            if keyed > 0 {
                tracing::info!(keyed, "keyed accounts for name and email uniqueness");
            }
            if !collisions.is_empty() {
                let listed: Vec<String> = collisions
                    .iter()
                    .map(|c| format!("id {} ({})", c.id, c.field))
                    .collect();
                tracing::warn!(
                    "accounts that older rules let take a name or email another account has: {}; they keep working; a new name or email gives them their keys",
                    listed.join(", ")
                );
            }
        }
        Err(error) => {
            tracing::warn!(error = %crate::error_chain::Chain(&error), "could not key accounts")
        }
    }
}
