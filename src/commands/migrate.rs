//! `conduit migrate run|status|revert|redo|repair|verify|baseline`: the
//! migration runner from the command line, under the same lock and the
//! same checks as a booting server.

use std::process::ExitCode;

use diesel_async::AsyncPgConnection;

use super::CommandError;
use crate::cli::MigrateAction;
use crate::config::SettingsArgs;
use crate::db;
use crate::db::migrations::{self, Baseline, MigrationError, MigrationSet, RunOptions};
use crate::db::settings::DatabaseSettings;
use crate::metrics::Metrics;

pub async fn run(args: &SettingsArgs, action: MigrateAction) -> Result<ExitCode, CommandError> {
    let database = args.database()?;
    let set = args.migration_set();
    let mut conn = db::wait_for_database(
        &database.migrations,
        &database.application_name,
        database.wait,
    )
    .await?;
    let limits = database.migration_locks;
    match action {
        MigrateAction::Run => {
            let known = set.catalog()?;
            let state = migrations::schema_state(&conn, &known)
                .await
                .map_err(MigrationError::Database)?;
            // As at boot: a binary that would refuse the database must
            // not change it first.
            if args.migrations.strict_schema {
                migrations::refuse_when_strict(&conn, &set, &state).await?;
            }
            let options = RunOptions {
                limits,
                allow_out_of_order: args.migrations.allow_out_of_order,
                watch_from: Some(database.migrations.clone()),
            };
            let report = migrations::run_pending(conn, set, options).await?;
            key_accounts_once_keyed(&database, report.schema_version.as_deref()).await;
            migrations::report_schema_problems(
                &report.unknown,
                &report.modified,
                args.migrations.strict_schema,
            )?;
        }
        MigrateAction::Revert => {
            migrations::revert_last(conn, set, limits).await?;
        }
        MigrateAction::Redo => {
            // The newest applied migration, reverted and applied again.
            let redone = migrations::redo_last(conn, set, limits).await?;
            let version = redone.split('_').next();
            key_accounts_once_keyed(&database, version).await;
        }
        MigrateAction::Repair => {
            let repaired = migrations::repair_checksums(conn, set, limits).await?;
            for fixed in &repaired {
                println!(
                    "repaired {}: checksum {} -> {}",
                    fixed.version, fixed.old, fixed.new
                );
            }
            if repaired.is_empty() {
                println!("nothing to repair: every applied migration matches its up.sql");
            }
        }
        MigrateAction::Verify => {
            let differences = migrations::verify(&mut conn, &database.migrations, &set).await?;
            for difference in &differences {
                println!("{difference}");
            }
            if !differences.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
            println!("no drift: the live schema is what the applied migrations make");
        }
        MigrateAction::Baseline { version } => {
            match migrations::baseline(conn, &database.migrations, set, &version, limits).await? {
                Baseline::Recorded(names) => {
                    for name in &names {
                        println!("recorded {name} as applied (not run)");
                    }
                    println!(
                        "baselined at {version}: `conduit migrate run` applies what comes after"
                    );
                }
                Baseline::Differs(differences) => {
                    for difference in &differences {
                        println!("{difference}");
                    }
                    eprintln!(
                        "conduit: refusing to baseline at {version}: the live schema differs from what the migrations up to {version} make in {} place(s), listed above; nothing was recorded",
                        differences.len()
                    );
                    return Ok(ExitCode::FAILURE);
                }
            }
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
        } else if state.out_of_order.contains(&migration.version) {
            "out of order"
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
    let out_of_order = if state.out_of_order.is_empty() {
        String::new()
    } else {
        format!(
            " ({} out of order: below the newest applied, refused without --allow-out-of-order)",
            state.out_of_order.len()
        )
    };
    println!(
        "schema version: {}, {} pending{out_of_order}",
        state.version().unwrap_or("none"),
        state.pending.len()
    );
    Ok(state.pending.len())
}

/// Account keys are computed in Rust, so the migration that adds their
/// columns leaves them empty: a release job that migrates for servers
/// started with CONDUIT_MIGRATE_ON_START=false computes them itself, before
/// any of those servers compares a new name with them.
async fn key_accounts_once_keyed(database: &DatabaseSettings, schema_version: Option<&str>) {
    if schema_version < Some(db::identity_keys::SINCE_MIGRATION) {
        return;
    }
    let Ok(pool) = db::build_pool(database, Metrics::new().db_queries()) else {
        return;
    };
    db::identity_keys::key_unkeyed_accounts(&db::Db::new(pool, database)).await;
}
