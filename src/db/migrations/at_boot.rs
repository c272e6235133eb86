//! What a booting server does about the schema: migrate on its dedicated
//! connection (or, with migrate-on-start off, only look), then compare the
//! database's migrations with the binary's, and its schema with the one
//! they make.

use diesel_async::AsyncPgConnection;

use super::LockLimits;
use super::{
    drift, modified_migrations, refuse_when_strict, report_schema_problems,
    run_pending_keeping_connection, schema_state, KnownMigration, MigrationError, MigrationSet,
    RunOptions, SchemaState,
};
use crate::db::endpoint::Endpoint;
use crate::db::identity_keys;

/// What boot found, for the metrics and for what runs once serving.
pub struct SchemaAtBoot {
    /// The newest applied version.
    pub version: Option<String>,
    /// Pending migrations below the newest applied one (boot refuses them
    /// when it migrates; with migrate-on-start off they stay pending).
    pub out_of_order: usize,
    /// Differences between the live schema and the expected one, when
    /// boot already knows them (under CONDUIT_STRICT_SCHEMA).
    pub drift: Option<usize>,
    /// The drift check left for once the server is up: without
    /// CONDUIT_STRICT_SCHEMA, /ready does not wait for it.
    pub deferred_drift_check: Option<DriftCheck>,
    /// Whether accounts wait for their identity keys
    /// (`db::identity_keys`), asked on the connection boot already has.
    pub unkeyed_accounts: bool,
}

/// A drift check to run later, on the migration connection.
pub struct DriftCheck {
    conn: AsyncPgConnection,
}

impl DriftCheck {
    /// Logs each difference (`schema drift: ...`); returns how many there
    /// are, or `None` when the check itself failed (logged).
    pub async fn run(mut self) -> Option<usize> {
        match drift::drift_from_embedded(&mut self.conn).await {
            Ok(differences) => {
                // Never strict here: strict boots check before serving.
                let _ = drift::report_drift(&differences, false);
                Some(differences.len())
            }
            Err(error) => {
                tracing::warn!(error = %crate::error_chain::Chain(&error), "could not check the schema for drift");
                None
            }
        }
    }
}

/// What boot does about the schema (CONDUIT_MIGRATE_ON_START and its kin).
#[derive(Debug, Clone)]
pub struct BootMigrations {
    pub set: MigrationSet,
    pub migrate_on_start: bool,
    pub strict_schema: bool,
    pub allow_out_of_order: bool,
}

/// Brings the schema up to date as `boot` asks.
pub async fn bring_schema_up_to_date(
    conn: AsyncPgConnection,
    boot: &BootMigrations,
    endpoint: &Endpoint,
    locks: LockLimits,
    known: &[KnownMigration],
) -> Result<SchemaAtBoot, MigrationError> {
    // Read first, without the lock: most boots find nothing to apply, and
    // then skip the lock and the harness.
    let state = schema_state(&conn, known)
        .await
        .map_err(MigrationError::Database)?;
    let will_migrate = boot.migrate_on_start && !state.pending.is_empty();
    // Strict: refuse before applying anything, not after (a binary that
    // would refuse the database must not change it first).
    if will_migrate && boot.strict_schema {
        refuse_when_strict(&conn, &boot.set, &state).await?;
    }
    let (version, unknown, modified, pending, out_of_order, conn) = if will_migrate {
        let options = RunOptions {
            limits: locks,
            allow_out_of_order: boot.allow_out_of_order,
            watch_from: Some(endpoint.clone()),
        };
        let (report, conn) =
            run_pending_keeping_connection(conn, boot.set.clone(), options).await?;
        (
            report.schema_version,
            report.unknown,
            report.modified,
            false,
            0,
            conn,
        )
    } else {
        let shown = state.version().unwrap_or("none");
        if state.pending.is_empty() {
            tracing::info!(schema_version = shown, "schema up to date at {shown}");
        } else {
            warn_pending(&state);
        }
        let modified = modified_migrations(&conn, &boot.set, &state.applied).await?;
        (
            state.version().map(str::to_owned),
            state.unknown,
            modified,
            !state.pending.is_empty(),
            state.out_of_order.len(),
            conn,
        )
    };
    report_schema_problems(&unknown, &modified, boot.strict_schema)?;
    // The checked-in description is of every embedded migration applied:
    // with some pending, or some unknown, there is nothing to compare with.
    let comparable = matches!(boot.set, MigrationSet::Embedded) && !pending && unknown.is_empty();
    let mut conn = conn;
    let unkeyed_accounts = if version.as_deref() >= Some(identity_keys::SINCE_MIGRATION) {
        // A failed look is not a failed boot: keying is then tried anyway.
        identity_keys::any_unkeyed(&mut conn).await.unwrap_or(true)
    } else {
        false
    };
    let mut at_boot = SchemaAtBoot {
        version,
        out_of_order,
        drift: None,
        deferred_drift_check: None,
        unkeyed_accounts,
    };
    if comparable && boot.strict_schema {
        let differences = drift::drift_from_embedded(&mut conn).await?;
        drift::report_drift(&differences, true)?;
        at_boot.drift = Some(0);
    } else if comparable {
        at_boot.deferred_drift_check = Some(DriftCheck { conn });
    }
    Ok(at_boot)
}

fn warn_pending(state: &SchemaState) {
    tracing::warn!(
        pending = ?state.pending,
        out_of_order = ?state.out_of_order,
        "CONDUIT_MIGRATE_ON_START is off and migrations are pending: /ready answers 503 until `conduit migrate run` applies them"
    );
}
