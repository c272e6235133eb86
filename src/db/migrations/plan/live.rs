//! The live database's side of a plan, read without taking a lock (a
//! size function would queue behind the very sessions it should report):
//! sizes from `pg_class`, and the sessions holding conflicting locks.

use std::collections::BTreeMap;

use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel::{OptionalExtension, QueryResult, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::{locks, LiveHolder, LiveTable, LockTaken};

#[derive(QueryableByName)]
struct Size {
    #[diesel(sql_type = BigInt)]
    size_bytes: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    estimated_rows: Option<i64>,
}

#[derive(QueryableByName)]
struct Holder {
    #[diesel(sql_type = Integer)]
    pid: i32,
    #[diesel(sql_type = Text)]
    mode: String,
    #[diesel(sql_type = Text)]
    application_name: String,
    #[diesel(sql_type = Text)]
    since: String,
}

/// Each relation `locks` names, as the live database has it now.
pub(super) async fn tables(
    live: &mut AsyncPgConnection,
    locks: &[LockTaken],
) -> QueryResult<Vec<LiveTable>> {
    let mut wanted: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for lock in locks {
        wanted.entry(&lock.relation).or_default().push(&lock.mode);
    }
    let mut tables = Vec::with_capacity(wanted.len());
    for (relation, modes) in wanted {
        let size = diesel::sql_query(
            "SELECT ((c.relpages::int8 + coalesce(t.relpages, 0) \
                      + coalesce((SELECT sum(i.relpages) FROM pg_index x \
                                  JOIN pg_class i ON i.oid = x.indexrelid \
                                  WHERE x.indrelid = c.oid), 0)) \
                     * current_setting('block_size')::int8)::int8 AS size_bytes, \
                    CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::int8 END AS estimated_rows \
             FROM pg_class c LEFT JOIN pg_class t ON t.oid = c.reltoastrelid \
             WHERE c.oid = to_regclass($1)",
        )
        .bind::<Text, _>(relation)
        .get_result::<Size>(live)
        .await
        .optional()?;
        let conflicts = match size {
            Some(_) => holders(live, relation)
                .await?
                .into_iter()
                .filter(|h| modes.iter().any(|m| locks::conflict(m, &h.mode)))
                .map(|h| LiveHolder {
                    pid: h.pid,
                    application_name: h.application_name,
                    mode: h.mode,
                    since: h.since,
                })
                .collect(),
            None => Vec::new(),
        };
        tables.push(LiveTable {
            relation: relation.to_owned(),
            exists: size.is_some(),
            size_bytes: size.as_ref().map(|s| s.size_bytes),
            estimated_rows: size.and_then(|s| s.estimated_rows),
            conflicts,
        });
    }
    Ok(tables)
}

/// Other sessions' granted locks on `relation` in this database.
async fn holders(live: &mut AsyncPgConnection, relation: &str) -> QueryResult<Vec<Holder>> {
    diesel::sql_query(
        "SELECT l.pid, l.mode::text AS mode, coalesce(a.application_name, '') AS application_name, \
                coalesce(to_char(a.xact_start AT TIME ZONE 'UTC', \
                                 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '') AS since \
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_backend_pid() \
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND l.relation = to_regclass($1) \
         ORDER BY l.pid, l.mode",
    )
    .bind::<Text, _>(relation)
    .load(live)
    .await
}
