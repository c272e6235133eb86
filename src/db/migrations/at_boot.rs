//! What a booting server does about the schema: migrate on its dedicated
//! connection (or, with migrate-on-start off, only look), then compare the
//! database's migrations with the binary's.

use diesel_async::AsyncPgConnection;

use super::{modified_migrations, run_pending, schema_state, KnownMigration, MigrationError};
use crate::config::Settings;

/// Brings the schema up to date as `settings` ask; returns the schema
/// version the database is at.
pub async fn bring_schema_up_to_date(
    conn: AsyncPgConnection,
    settings: &Settings,
    known: &[KnownMigration],
) -> Result<Option<String>, MigrationError> {
    // Read first, without the lock: most boots find nothing to apply, and
    // then skip the lock and the harness.
    let state = schema_state(&conn, known)
        .await
        .map_err(MigrationError::Database)?;
    let will_migrate = settings.migrate_on_start && !state.pending.is_empty();
    // Strict: refuse before applying anything, not after (a binary that
    // would refuse the database must not change it first).
    if will_migrate && settings.strict_schema {
        let modified = modified_migrations(&conn, &settings.migrations, &state.applied).await?;
        check_schema(&state.unknown, &modified, true)?;
    }
    let (version, unknown, modified) = if will_migrate {
        let report = run_pending(
            conn,
            settings.migrations.clone(),
            settings.database.migration_locks,
        )
        .await?;
        (report.schema_version, report.unknown, report.modified)
    } else {
        let shown = state.version().unwrap_or("none");
        if state.pending.is_empty() {
            tracing::info!(schema_version = shown, "schema up to date at {shown}");
        } else {
            tracing::warn!(
                pending = ?state.pending,
                "CONDUIT_MIGRATE_ON_START is off and migrations are pending: /ready answers 503 until `conduit migrate run` applies them"
            );
        }
        let modified = modified_migrations(&conn, &settings.migrations, &state.applied).await?;
        (state.version().map(str::to_owned), state.unknown, modified)
    };
    check_schema(&unknown, &modified, settings.strict_schema)?;
    Ok(version)
}

/// Says what differs between the database's migrations and the binary's;
/// under CONDUIT_STRICT_SCHEMA, refuses to start instead.
fn check_schema(
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
            "applied migrations whose up.sql changed since they ran: {}",
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
