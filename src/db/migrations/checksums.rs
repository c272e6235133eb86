//! Checksums of applied migrations, so that an applied migration whose
//! up.sql was edited afterwards is noticed. Kept in a table of our own,
//! created on first use the way diesel creates its bookkeeping table.

use std::collections::{BTreeMap, HashMap};

use diesel::{ExpressionMethods, QueryDsl};
use diesel_async::AsyncPgConnection;
use sha2::{Digest, Sha256};

use super::{BlockingPgConnection, MigrationError, MigrationSet};
use crate::db::functions::to_regclass;

include!(concat!(env!("OUT_DIR"), "/embedded_up_sql_sha256.rs"));

diesel::table! {
    /// The SHA-256 of each applied migration's up.sql. Ours, created on
    /// first use the way diesel creates its own table, so that an edit to
    /// an applied migration is noticed.
    __conduit_migration_checksums (version) {
        version -> VarChar,
        up_sql_sha256 -> Text,
        recorded_at -> Timestamptz,
    }
}

const CREATE_CHECKSUMS_TABLE: &str = "CREATE TABLE IF NOT EXISTS __conduit_migration_checksums (\
     version VARCHAR(50) PRIMARY KEY NOT NULL, \
     up_sql_sha256 TEXT NOT NULL, \
     recorded_at TIMESTAMPTZ NOT NULL DEFAULT now())";

/// Every writer calls this first: the table appears on first use, as
/// diesel's own does.
fn ensure_table(conn: &mut BlockingPgConnection) -> Result<(), MigrationError> {
    use diesel::RunQueryDsl;

    diesel::sql_query(CREATE_CHECKSUMS_TABLE).execute(conn)?;
    Ok(())
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The version part of a migration name: "001" of "001_initial_schema".
pub(super) fn version_of(name: &str) -> &str {
    name.split('_').next().unwrap_or(name)
}

impl MigrationSet {
    /// The SHA-256 of every migration's up.sql, by version.
    pub fn checksums(&self) -> Result<BTreeMap<String, String>, MigrationError> {
        match self {
            // Hashed at build time (build.rs): the same bytes as the
            // migrations embedded by `embed_migrations!`.
            MigrationSet::Embedded => Ok(EMBEDDED_UP_SQL_SHA256
                .iter()
                .map(|(name, digest)| (version_of(name).to_owned(), (*digest).to_owned()))
                .collect()),
            MigrationSet::Directory(dir) => {
                self.catalog()?
                    .into_iter()
                    .map(|m| {
                        let sql = std::fs::read_to_string(dir.join(&m.name).join("up.sql"))
                            .map_err(|source| MigrationError::SourceFile {
                                name: m.name.clone(),
                                source,
                            })?;
                        Ok((m.version, sha256_hex(&sql)))
                    })
                    .collect()
            }
        }
    }
}

/// Applied versions whose recorded checksum differs from the binary's
/// up.sql, and applied versions with no checksum recorded yet.
fn compare(
    current: &BTreeMap<String, String>,
    recorded: &HashMap<String, String>,
    applied: &[String],
) -> (Vec<String>, Vec<String>) {
    let mut modified = Vec::new();
    let mut unrecorded = Vec::new();
    for version in applied {
        match (current.get(version), recorded.get(version)) {
            (Some(now), Some(then)) if now != then => modified.push(version.clone()),
            (Some(_), None) => unrecorded.push(version.clone()),
            _ => {}
        }
    }
    (modified, unrecorded)
}

/// Applied migrations whose up.sql changed since they ran, read-only (for
/// `migrate status` and boots that do not migrate).
pub async fn modified_migrations(
    conn: &AsyncPgConnection,
    set: &MigrationSet,
    applied: &[String],
) -> Result<Vec<String>, MigrationError> {
    use diesel_async::RunQueryDsl;

    // Sent together, as in `schema_state`.
    let exists = diesel::select(to_regclass("__conduit_migration_checksums").is_not_null())
        .get_result::<bool>(&mut &*conn);
    let recorded = __conduit_migration_checksums::table
        .select((
            __conduit_migration_checksums::version,
            __conduit_migration_checksums::up_sql_sha256,
        ))
        .load::<(String, String)>(&mut &*conn);
    let (exists, recorded) = tokio::join!(exists, recorded);
    if !exists? {
        return Ok(Vec::new());
    }
    let recorded: HashMap<String, String> = recorded?.into_iter().collect();
    Ok(compare(&set.checksums()?, &recorded, applied).0)
}

pub(super) fn record(
    conn: &mut BlockingPgConnection,
    version: &str,
    checksum: &str,
) -> Result<(), MigrationError> {
    use diesel::RunQueryDsl;

    ensure_table(conn)?;
    diesel::insert_into(__conduit_migration_checksums::table)
        .values((
            __conduit_migration_checksums::version.eq(version),
            __conduit_migration_checksums::up_sql_sha256.eq(checksum),
        ))
        .on_conflict(__conduit_migration_checksums::version)
        .do_update()
        .set((
            __conduit_migration_checksums::up_sql_sha256.eq(checksum),
            __conduit_migration_checksums::recorded_at.eq(diesel::dsl::now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Forgets the checksum of a reverted migration.
pub(super) fn forget(conn: &mut BlockingPgConnection, version: &str) -> Result<(), MigrationError> {
    use diesel::RunQueryDsl;

    ensure_table(conn)?;
    diesel::delete(
        __conduit_migration_checksums::table
            .filter(__conduit_migration_checksums::version.eq(version)),
    )
    .execute(conn)?;
    Ok(())
}

/// The recorded checksums by version (the table created if missing).
fn recorded_checksums(
    conn: &mut BlockingPgConnection,
) -> Result<HashMap<String, String>, MigrationError> {
    use diesel::RunQueryDsl;

    ensure_table(conn)?;
    Ok(__conduit_migration_checksums::table
        .select((
            __conduit_migration_checksums::version,
            __conduit_migration_checksums::up_sql_sha256,
        ))
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect())
}

/// After a run: records the checksums of applied migrations that have none
/// yet (applied before checksums were kept, or by diesel_cli) and returns
/// the applied versions whose up.sql has changed since.
pub(super) fn verify(
    conn: &mut BlockingPgConnection,
    current: &BTreeMap<String, String>,
    applied: &[String],
) -> Result<Vec<String>, MigrationError> {
    let recorded = recorded_checksums(conn)?;
    let (modified, unrecorded) = compare(current, &recorded, applied);
    for version in &unrecorded {
        record(conn, version, &current[version])?;
    }
    Ok(modified)
}

/// An applied migration whose recorded checksum `repair` replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairedChecksum {
    pub version: String,
    pub old: String,
    pub new: String,
}

/// Records the current checksum of every applied migration whose up.sql
/// changed since it ran (and of those with none recorded); returns the
/// changed ones with both checksums.
pub(super) fn repair(
    conn: &mut BlockingPgConnection,
    current: &BTreeMap<String, String>,
    applied: &[String],
) -> Result<Vec<RepairedChecksum>, MigrationError> {
    let recorded = recorded_checksums(conn)?;
    let (modified, unrecorded) = compare(current, &recorded, applied);
    let mut repaired = Vec::with_capacity(modified.len());
    for version in modified.iter().chain(&unrecorded) {
        record(conn, version, &current[version])?;
    }
    for version in modified {
        repaired.push(RepairedChecksum {
            old: recorded[&version].clone(),
            new: current[&version].clone(),
            version,
        });
    }
    Ok(repaired)
}
