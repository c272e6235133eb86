//! Scratch databases: created beside the live one on its server, always
//! dropped by their user (after an error or an interrupt too). `migrate
//! plan` measures pending migrations on one; `migrate verify` and
//! `migrate baseline` read the schema some migrations make from one when
//! the checked-in description does not apply (a `--migrations-dir` set, or
//! a version below the newest). The migration role needs CREATEDB.

use diesel::migration::MigrationSource;
use diesel::result::{DatabaseErrorKind, Error};
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use diesel_migrations::MigrationHarness;

use super::{drift, BlockingPgConnection, MigrationError, MigrationSet};
use crate::db::endpoint::Endpoint;

/// Why a scratch database could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ScratchError {
    #[error(
        "a scratch database is needed beside the live one, and this role may not create \
         databases: grant it CREATEDB (ALTER ROLE ... CREATEDB) or run as a role that has it"
    )]
    MayNotCreateDatabase,
    #[error("could not create the scratch database {0}")]
    Create(String, #[source] Error),
}

/// A scratch database that exists until [`ScratchDatabase::drop_with`].
#[derive(Debug)]
pub struct ScratchDatabase {
    pub name: String,
}

impl ScratchDatabase {
    /// Creates `<prefix>_<random>` with `admin`.
    pub async fn create(admin: &mut AsyncPgConnection, prefix: &str) -> Result<Self, ScratchError> {
        let name = format!(
            "{prefix}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        match admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
        {
            Ok(()) => Ok(Self { name }),
            Err(error) if is_permission_denied(&error) => Err(ScratchError::MayNotCreateDatabase),
            Err(error) => Err(ScratchError::Create(name, error)),
        }
    }

    /// Drops it, ending any session still connected to it.
    pub async fn drop_with(self, admin: &mut AsyncPgConnection) -> Result<(), Error> {
        admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .await
    }
}

/// SQLSTATE 42501, insufficient_privilege, as diesel reports it.
fn is_permission_denied(error: &Error) -> bool {
    match error {
        Error::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            info.message().starts_with("permission denied")
        }
        _ => false,
    }
}

/// Describes the schema that the migrations of `set` with `versions` make,
/// applied in version order to a fresh database on the server `conn` is
/// connected to (reached through `endpoint`).
pub async fn expected_schema(
    conn: &mut AsyncPgConnection,
    endpoint: &Endpoint,
    set: &MigrationSet,
    versions: &[String],
) -> Result<Vec<String>, MigrationError> {
    let scratch = ScratchDatabase::create(conn, "conduit_verify")
        .await
        .map_err(|e| MigrationError::Scratch(crate::error_chain::Chain(&e).to_string()))?;
    let described = describe_fresh(endpoint, &scratch.name, set, versions).await;
    let name = scratch.name.clone();
    if let Err(error) = scratch.drop_with(conn).await {
        tracing::warn!(%error, database = %name, "could not drop the scratch database; drop it by hand");
    }
    described
}

async fn describe_fresh(
    endpoint: &Endpoint,
    database: &str,
    set: &MigrationSet,
    versions: &[String],
) -> Result<Vec<String>, MigrationError> {
    let url = endpoint
        .with_database(database)
        .connection_url("conduit-migrate-verify");
    let scratch = crate::db::connect(&url, &endpoint.tls)
        .await
        .map_err(|e| MigrationError::Scratch(crate::error_chain::Chain(&e).to_string()))?;
    let mut harness = BlockingPgConnection::from(scratch);
    let set = set.clone();
    let versions = versions.to_vec();
    let harness = tokio::task::spawn_blocking(move || {
        // Creates diesel's bookkeeping table, as its harness does first.
        harness
            .applied_migrations()
            .map_err(MigrationError::Bookkeeping)?;
        let mut migrations = set.migrations().map_err(MigrationError::Source)?;
        migrations.sort_by_key(|m| m.name().version().to_string());
        for migration in migrations
            .iter()
            .filter(|m| versions.contains(&m.name().version().to_string()))
        {
            harness
                .run_migration(migration.as_ref())
                .map_err(|e| MigrationError::failed(&migration.name().to_string(), e))?;
        }
        Ok::<_, MigrationError>(harness)
    })
    .await??;
    drift::describe(&mut harness.into_inner()).await
}
