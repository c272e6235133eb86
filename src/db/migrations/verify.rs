//! `migrate verify` (the live schema against the one the applied
//! migrations make) and `migrate baseline` (adopting a database that has
//! the schema but no migration history).

use diesel_async::AsyncPgConnection;

use super::{
    drift, runner, schema_state, scratch, Difference, KnownMigration, LockLimits, MigrationError,
    MigrationSet,
};
use crate::db::endpoint::Endpoint;

/// The description of the schema that the migrations of `set` with
/// `versions` make: the checked-in one when that is all the embedded
/// migrations, else from a scratch database.
async fn expected_schema(
    conn: &mut AsyncPgConnection,
    endpoint: &Endpoint,
    set: &MigrationSet,
    known: &[KnownMigration],
    versions: &[String],
) -> Result<Vec<String>, MigrationError> {
    let every_one =
        known.len() == versions.len() && known.iter().all(|m| versions.contains(&m.version));
    if matches!(set, MigrationSet::Embedded) && every_one {
        return Ok(drift::expected_embedded());
    }
    scratch::expected_schema(conn, endpoint, set, versions).await
}

/// The differences between the live schema and the one its applied
/// migrations make.
pub async fn verify(
    conn: &mut AsyncPgConnection,
    endpoint: &Endpoint,
    set: &MigrationSet,
) -> Result<Vec<Difference>, MigrationError> {
    let known = set.catalog()?;
    let state = schema_state(conn, &known)
        .await
        .map_err(MigrationError::Database)?;
    if !state.unknown.is_empty() {
        return Err(MigrationError::CannotVerify(format!(
            "the database has migrations this binary does not know: {} (verify with the binary that applied them)",
            state.unknown.join(", ")
        )));
    }
    let expected = expected_schema(conn, endpoint, set, &known, &state.applied).await?;
    Ok(drift::compare(&expected, &drift::describe(conn).await?))
}

/// What `baseline` did.
pub enum Baseline {
    /// These migrations are now recorded as applied, none of them run.
    Recorded(Vec<String>),
    /// The live schema is not what the migrations up to the version make:
    /// nothing was recorded.
    Differs(Vec<Difference>),
}

/// Records the migrations of `set` up to `version` as applied, with their
/// checksums, without running them, on a database with no migration
/// history whose schema is what they make.
pub async fn baseline(
    mut conn: AsyncPgConnection,
    endpoint: &Endpoint,
    set: MigrationSet,
    version: &str,
    limits: LockLimits,
) -> Result<Baseline, MigrationError> {
    let known = set.catalog()?;
    if !known.iter().any(|m| m.version == version) {
        return Err(MigrationError::CannotBaseline(format!(
            "no migration has version {version} (known: {})",
            known
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let state = schema_state(&conn, &known)
        .await
        .map_err(MigrationError::Database)?;
    runner::refuse_history(&state.applied)?;
    let versions: Vec<String> = known
        .iter()
        .filter(|m| m.version.as_str() <= version)
        .map(|m| m.version.clone())
        .collect();
    let expected = expected_schema(&mut conn, endpoint, &set, &known, &versions).await?;
    let differences = drift::compare(&expected, &drift::describe(&mut conn).await?);
    if !differences.is_empty() {
        return Ok(Baseline::Differs(differences));
    }
    let names = known
        .iter()
        .filter(|m| versions.contains(&m.version))
        .map(|m| m.name.clone())
        .collect();
    runner::record_without_running(conn, set, versions, limits).await?;
    Ok(Baseline::Recorded(names))
}
