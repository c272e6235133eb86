//! `conduit migrate plan`: what each pending migration would lock,
//! rewrite and scan, measured on a scratch database beside the live one
//! (built with the migrations the live one has), then set against the live
//! database's table sizes and the sessions holding conflicting locks there.
//! The live database is only read.

mod live;
mod locks;
mod measure;
mod risk;
pub mod split;

use serde::Serialize;

use super::{schema_state, MigrationError, MigrationSet};
use diesel_async::AsyncPgConnection;

/// Why a plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("migrate plan: {0}")]
    Scratch(#[from] super::scratch::ScratchError),
    #[error("could not connect to the scratch database")]
    ConnectScratch(#[source] crate::db::ConnectError),
    #[error("could not build the live schema on the scratch database: migration {name} failed")]
    Replay {
        name: String,
        #[source]
        source: diesel::result::Error,
    },
    #[error("migration {name}, statement {index}, failed on the scratch database")]
    Statement {
        name: String,
        index: usize,
        #[source]
        source: diesel::result::Error,
    },
    #[error("could not read the live database")]
    Live(#[source] diesel::result::Error),
    #[error("interrupted; the scratch database was dropped")]
    Interrupted,
    #[error(transparent)]
    Migration(#[from] MigrationError),
}

/// The plan of every pending migration.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The live database's schema version.
    pub schema_version: Option<String>,
    pub migrations: Vec<MigrationPlan>,
    /// Whether any statement carries a risk.
    pub risky: bool,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MigrationPlan {
    pub name: String,
    pub version: String,
    /// False for `run_in_transaction = false` migrations.
    pub transactional: bool,
    /// Marked `-- conduit:contract`: waits for older releases to disconnect.
    pub contract: bool,
    pub statements: Vec<StatementPlan>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatementPlan {
    /// 1-based, in the order of the up.sql.
    pub index: usize,
    pub sql: String,
    /// False when the statement cannot run in a transaction block: its
    /// locks are the documented ones, not read from `pg_locks`.
    pub measured: bool,
    /// The locks it takes on relations that existed before it.
    pub locks: Vec<LockTaken>,
    /// Tables whose `relfilenode` it changed.
    pub rewrites: Vec<String>,
    /// Tables it read in full (a sequential scan), with the lock it held.
    pub scans: Vec<LockTaken>,
    /// The live database's view of each relation it locks.
    pub tables: Vec<LiveTable>,
    pub risks: Vec<Risk>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockTaken {
    pub relation: String,
    pub mode: String,
}

/// A relation as the live database has it right now.
#[derive(Debug, Clone, Serialize)]
pub struct LiveTable {
    pub relation: String,
    /// False when the live database has no such relation yet (an earlier
    /// pending migration creates it).
    pub exists: bool,
    /// Heap, TOAST and indexes, in bytes, from `pg_class.relpages` (as of
    /// the last VACUUM or ANALYZE; read without taking a lock).
    pub size_bytes: Option<i64>,
    /// `pg_class.reltuples`; None when never analyzed.
    pub estimated_rows: Option<i64>,
    /// Sessions holding a lock that conflicts with the statement's now.
    pub conflicts: Vec<LiveHolder>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LiveHolder {
    pub pid: i32,
    pub application_name: String,
    /// The lock it holds.
    pub mode: String,
    /// When its transaction began.
    pub since: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Risk {
    pub relation: String,
    /// `rewrite`, `blocking_index_build` or `scan_under_lock`.
    pub kind: &'static str,
    pub message: String,
    pub safe_alternative: &'static str,
}

/// The migrations `live` lacks, read without changing it: `None` when
/// nothing is pending.
pub async fn pending(
    live: &AsyncPgConnection,
    set: &MigrationSet,
) -> Result<Option<(super::SchemaState, Vec<super::MigrationText>)>, PlanError> {
    let texts = set.texts()?;
    let known = set.catalog()?;
    let state = schema_state(live, &known).await.map_err(PlanError::Live)?;
    if state.pending.is_empty() {
        return Ok(None);
    }
    Ok(Some((state, texts)))
}

/// Measures every pending migration of `texts` on `scratch` (an empty
/// database), after replaying there the ones `state` says are applied,
/// and reads the live side from `live`.
pub async fn make(
    live: &mut AsyncPgConnection,
    scratch: &mut AsyncPgConnection,
    state: &super::SchemaState,
    texts: &[super::MigrationText],
) -> Result<Plan, PlanError> {
    let started = std::time::Instant::now();
    for text in texts.iter().filter(|t| state.applied.contains(&t.version)) {
        measure::apply(scratch, text)
            .await
            .map_err(|source| PlanError::Replay {
                name: text.name.clone(),
                source,
            })?;
    }
    let mut migrations = Vec::new();
    for text in texts.iter().filter(|t| state.pending.contains(&t.version)) {
        let mut statements = measure::migration(scratch, text).await?;
        for statement in &mut statements {
            statement.tables = live::tables(live, &statement.locks)
                .await
                .map_err(PlanError::Live)?;
            statement.risks = risk::assess(statement);
        }
        migrations.push(MigrationPlan {
            name: text.name.clone(),
            version: text.version.clone(),
            transactional: text.run_in_transaction,
            contract: super::contract::is_contract(&text.up_sql),
            statements,
        });
    }
    let risky = migrations
        .iter()
        .flat_map(|m| &m.statements)
        .any(|s| !s.risks.is_empty());
    Ok(Plan {
        schema_version: state.version().map(str::to_owned),
        migrations,
        risky,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}
