//! The schema some migrations make, read from a scratch database they are
//! applied to and that is dropped afterwards: for `migrate verify` and
//! `migrate baseline` when the checked-in description does not apply (a
//! `--migrations-dir` set, or a version below the newest). The migration
//! role needs CREATEDB for it.

use diesel::migration::MigrationSource;
use diesel_async::AsyncPgConnection;
use diesel_migrations::MigrationHarness;

use super::{drift, BlockingPgConnection, MigrationError, MigrationSet};
use crate::config::Endpoint;

/// Describes the schema that the migrations of `set` with `versions` make,
/// applied in version order to a fresh database on the server `conn` is
/// connected to (reached through `endpoint`).
pub async fn expected_schema(
    conn: &mut AsyncPgConnection,
    endpoint: &Endpoint,
    set: &MigrationSet,
    versions: &[String],
) -> Result<Vec<String>, MigrationError> {
    use diesel_async::RunQueryDsl;

    let name = format!("conduit_verify_{}", uuid::Uuid::new_v4().simple());
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(conn)
        .await
        .map_err(|e| MigrationError::Scratch(e.to_string()))?;
    let described = describe_fresh(endpoint, &name, set, versions).await;
    if let Err(error) = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(conn)
        .await
    {
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
