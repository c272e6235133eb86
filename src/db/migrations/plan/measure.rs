//! Runs pending statements on the scratch database inside transactions
//! that are rolled back, reading what each one did: the locks it took
//! (`pg_locks`), the tables it rewrote (`relfilenode` changed) and the
//! tables it scanned (`pg_stat_xact_user_tables`).

use std::collections::{BTreeSet, HashMap};

use diesel::sql_types::{BigInt, Text};
use diesel::{QueryResult, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

use super::{locks, split, LockTaken, PlanError, StatementPlan};
use crate::db::migrations::MigrationText;

/// Relations of the schemas a migration writes to: not the catalogs.
const USER_SCHEMAS: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'";

#[derive(QueryableByName, PartialEq, Eq, PartialOrd, Ord, Clone)]
struct HeldLock {
    #[diesel(sql_type = Text)]
    relation: String,
    #[diesel(sql_type = Text)]
    mode: String,
}

#[derive(QueryableByName)]
struct Relation {
    #[diesel(sql_type = Text)]
    relation: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = BigInt)]
    node: i64,
}

#[derive(QueryableByName)]
struct Scans {
    #[diesel(sql_type = Text)]
    relation: String,
    #[diesel(sql_type = BigInt)]
    scans: i64,
}

/// Applies `text` for real on the scratch database, as the runner would:
/// in one transaction, or statement by statement when it cannot be.
pub(super) async fn apply(conn: &mut AsyncPgConnection, text: &MigrationText) -> QueryResult<()> {
    if text.run_in_transaction {
        conn.batch_execute("BEGIN").await?;
        if let Err(error) = conn.batch_execute(&text.up_sql).await {
            conn.batch_execute("ROLLBACK").await?;
            return Err(error);
        }
        conn.batch_execute("COMMIT").await
    } else {
        for statement in split::statements(&text.up_sql) {
            conn.batch_execute(&statement).await?;
        }
        Ok(())
    }
}

/// Measures every statement of a pending migration, each in a
/// transaction of its own that is rolled back (so each shows every lock it
/// takes, even one an earlier statement of a transactional migration
/// already holds), then runs it for real on the scratch database so the
/// next statement finds what it leaves.
pub(super) async fn migration(
    conn: &mut AsyncPgConnection,
    text: &MigrationText,
) -> Result<Vec<StatementPlan>, PlanError> {
    let statements = split::statements(&text.up_sql);
    let mut plans = Vec::with_capacity(statements.len());
    for (i, sql) in statements.iter().enumerate() {
        let failed = |source| PlanError::Statement {
            name: text.name.clone(),
            index: i + 1,
            source,
        };
        let plan = match locks::documented(&split::words(sql)) {
            Some((relation, mode)) => StatementPlan {
                measured: false,
                locks: vec![LockTaken {
                    relation,
                    mode: mode.to_owned(),
                }],
                ..empty(i + 1, sql)
            },
            None => {
                conn.batch_execute("BEGIN").await.map_err(failed)?;
                let measured = one(conn, i + 1, sql).await;
                // Rolled back whatever happened: an error leaves the
                // transaction aborted.
                conn.batch_execute("ROLLBACK").await.map_err(failed)?;
                measured.map_err(failed)?
            }
        };
        conn.batch_execute(sql).await.map_err(failed)?;
        plans.push(plan);
    }
    Ok(plans)
}

fn empty(index: usize, sql: &str) -> StatementPlan {
    StatementPlan {
        index,
        sql: sql.to_owned(),
        measured: true,
        locks: Vec::new(),
        rewrites: Vec::new(),
        scans: Vec::new(),
        tables: Vec::new(),
        risks: Vec::new(),
    }
}

/// Runs `sql` inside the open transaction and reads what it did.
async fn one(conn: &mut AsyncPgConnection, index: usize, sql: &str) -> QueryResult<StatementPlan> {
    let locks_before: BTreeSet<HeldLock> = held_locks(conn).await?.into_iter().collect();
    let before = relations(conn).await?;
    let scans_before = scans(conn).await?;
    conn.batch_execute(sql).await?;
    let locks_after = held_locks(conn).await?;
    let after = relations(conn).await?;
    let scans_after = scans(conn).await?;

    let existed: HashMap<&str, &Relation> =
        before.iter().map(|r| (r.relation.as_str(), r)).collect();
    let mut plan = empty(index, sql);
    let mut seen = BTreeSet::new();
    for lock in &locks_after {
        if existed.contains_key(lock.relation.as_str())
            && !locks_before.contains(lock)
            && seen.insert(lock.clone())
        {
            plan.locks.push(LockTaken {
                relation: lock.relation.clone(),
                mode: lock.mode.clone(),
            });
        }
    }
    plan.rewrites = after
        .iter()
        .filter(|r| matches!(r.kind.as_str(), "r" | "m"))
        .filter(|r| {
            existed
                .get(r.relation.as_str())
                .is_some_and(|b| b.node != r.node)
        })
        .map(|r| r.relation.clone())
        .collect();
    for (relation, count) in &scans_after {
        let scanned = *count > scans_before.get(relation).copied().unwrap_or(0);
        if scanned && existed.contains_key(relation.as_str()) && !plan.rewrites.contains(relation) {
            let modes = locks_after
                .iter()
                .filter(|l| &l.relation == relation)
                .map(|l| l.mode.as_str());
            plan.scans.push(LockTaken {
                relation: relation.clone(),
                mode: locks::strongest(modes).unwrap_or("none").to_owned(),
            });
        }
    }
    Ok(plan)
}

async fn held_locks(conn: &mut AsyncPgConnection) -> QueryResult<Vec<HeldLock>> {
    diesel::sql_query(format!(
        "SELECT l.relation::regclass::text AS relation, l.mode::text AS mode \
         FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND {USER_SCHEMAS} \
         ORDER BY 1, 2"
    ))
    .load(conn)
    .await
}

async fn relations(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Relation>> {
    diesel::sql_query(format!(
        "SELECT c.oid::regclass::text AS relation, c.relkind::text AS kind, \
                c.relfilenode::int8 AS node \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {USER_SCHEMAS}"
    ))
    .load(conn)
    .await
}

/// Sequential scans so far in this session, by table (the counters of
/// `pg_stat_xact_user_tables` include the open transaction's).
async fn scans(conn: &mut AsyncPgConnection) -> QueryResult<HashMap<String, i64>> {
    let rows: Vec<Scans> = diesel::sql_query(
        "SELECT relid::regclass::text AS relation, seq_scan::int8 AS scans \
         FROM pg_stat_xact_user_tables",
    )
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.relation, r.scans)).collect())
}
