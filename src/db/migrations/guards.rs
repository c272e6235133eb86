//! What boot and `conduit migrate run` check before they apply anything,
//! and how they report a database whose migrations differ from the
//! binary's: the same checks in both, so that CONDUIT_STRICT_SCHEMA means
//! one thing wherever it is set.

use diesel_async::AsyncPgConnection;

use super::{modified_migrations, MigrationError, MigrationSet, SchemaState};

/// Under CONDUIT_STRICT_SCHEMA, refuses (before anything is applied) a
/// database with migrations this binary does not know or applied
/// migrations whose up.sql changed since they ran.
pub async fn refuse_when_strict(
    conn: &AsyncPgConnection,
    set: &MigrationSet,
    state: &SchemaState,
) -> Result<(), MigrationError> {
    let modified = modified_migrations(conn, set, &state.applied).await?;
    report_schema_problems(&state.unknown, &modified, true)
}

/// Says what differs between the database's migrations and the binary's;
/// under `strict` (CONDUIT_STRICT_SCHEMA), refuses instead.
pub fn report_schema_problems(
    unknown: &[String],
    modified: &[String],
    strict: bool,
) -> Result<(), MigrationError> {
    let mut problems = Vec::new();
    if !unknown.is_empty() {
        problems.push(format!(
            "the database has migrations this binary does not know: {} (a newer binary applied them)",
            unknown.join(", ")
        ));
    }
    if !modified.is_empty() {
        problems.push(format!(
            "applied migrations whose up.sql changed since they ran: {} (if the edit is harmless, `conduit migrate repair` records the new checksums)",
            modified.join(", ")
        ));
    }
    if problems.is_empty() {
        return Ok(());
    }
    let message = problems.join("; ");
    if strict {
        return Err(MigrationError::SchemaMismatch(message));
    }
    tracing::warn!(unknown = ?unknown, modified = ?modified, "{message}");
    Ok(())
}
