//! `conduit migrate run|status|revert|redo`: the migration runner from the
//! command line, under the same lock as a booting server.

use std::process::ExitCode;

use diesel_async::AsyncPgConnection;

use super::CommandError;
use crate::cli::MigrateAction;
use crate::config::SettingsArgs;
use crate::db;
use crate::db::migrations::{self, MigrationError, MigrationSet};

pub async fn run(args: &SettingsArgs, action: MigrateAction) -> Result<ExitCode, CommandError> {
    let database = args.database()?;
    let set = args.migration_set();
    let conn = db::wait_for_database(&database).await?;
    let limits = database.migration_locks;
    match action {
        MigrateAction::Run => {
            migrations::run_pending(conn, set, limits).await?;
        }
        MigrateAction::Revert => {
            migrations::revert_last(conn, set, limits).await?;
        }
        MigrateAction::Redo => {
            migrations::redo_last(conn, set, limits).await?;
        }
        MigrateAction::Plan {
            format,
            fail_on_risk,
        } => return super::plan::run(conn, &database, &set, format, fail_on_risk).await,
        MigrateAction::Status { check } => {
            let pending = print_status(&conn, &set).await?;
            if check && pending > 0 {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints each migration's state and the schema version; returns how many
/// are pending.
async fn print_status(
    conn: &AsyncPgConnection,
    set: &MigrationSet,
) -> Result<usize, MigrationError> {
    let known = set.catalog()?;
    let state = migrations::schema_state(conn, &known)
        .await
        .map_err(MigrationError::Database)?;
    for migration in &known {
        let mark = if state.applied.contains(&migration.version) {
            "applied"
        } else {
            "pending"
        };
        println!("{mark:<8} {}", migration.name);
    }
    for version in &state.unknown {
        println!("{:<8} {version} (applied by a newer binary)", "unknown");
    }
    let modified = migrations::modified_migrations(conn, set, &state.applied).await?;
    for version in &modified {
        println!(
            "{:<8} {version} (up.sql changed since it was applied)",
            "modified"
        );
    }
    println!(
        "schema version: {}, {} pending",
        state.version().unwrap_or("none"),
        state.pending.len()
    );
    Ok(state.pending.len())
}
