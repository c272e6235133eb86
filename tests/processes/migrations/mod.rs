//! Migration scenarios, each on an empty database of its own, with the real
//! binary: clean start, second boot, concurrent boots, a failing migration,
//! reversibility and foreign-key indexes, data migrations.

mod boots;
mod data;
mod reverts;

use conduit::db::migrations::{MigrationSet, EMBEDDED_MIGRATIONS};
use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::AsyncPgConnection;
use diesel_migrations::MigrationHarness;

use crate::support::database::{select_texts, TestDatabase};

pub(crate) async fn applied_versions(db: &TestDatabase) -> Vec<String> {
    let mut conn = db.connect().await;
    select_texts(
        &mut conn,
        "SELECT version AS value FROM __diesel_schema_migrations ORDER BY run_on, version",
    )
    .await
}

/// The embedded migrations, oldest first. Migrations are not `Send`, so
/// each blocking task loads its own.
pub(crate) fn embedded_in_order() -> Vec<Box<dyn diesel::migration::Migration<Pg>>> {
    let mut migrations = MigrationSource::<Pg>::migrations(&EMBEDDED_MIGRATIONS).unwrap();
    migrations.sort_by_key(|m| m.name().version().to_string());
    migrations
}

/// Runs `steps` ("up"/"down") of the `index`th embedded migration.
pub(crate) async fn step(
    db: &TestDatabase,
    index: usize,
    steps: &'static [&'static str],
) -> String {
    let mut harness = AsyncConnectionWrapper::<AsyncPgConnection>::from(db.connect().await);
    tokio::task::spawn_blocking(move || {
        let migration = embedded_in_order().swap_remove(index);
        // Creates diesel's bookkeeping table on first use.
        harness.applied_migrations().unwrap();
        for direction in steps {
            match *direction {
                "up" => harness.run_migration(migration.as_ref()).map(drop),
                _ => harness.revert_migration(migration.as_ref()).map(drop),
            }
            .unwrap_or_else(|e| panic!("{} {direction}: {e}", migration.name()));
        }
        migration.name().to_string()
    })
    .await
    .unwrap()
}

/// As [`step`], but a failing step is returned, not a panic.
pub(crate) async fn try_step(
    db: &TestDatabase,
    index: usize,
    direction: &'static str,
) -> Result<String, String> {
    let mut harness = AsyncConnectionWrapper::<AsyncPgConnection>::from(db.connect().await);
    tokio::task::spawn_blocking(move || {
        let migration = embedded_in_order().swap_remove(index);
        harness.applied_migrations().map_err(|e| e.to_string())?;
        match direction {
            "up" => harness.run_migration(migration.as_ref()).map(drop),
            _ => harness.revert_migration(migration.as_ref()).map(drop),
        }
        .map_err(|e| format!("{}: {e}", migration.name()))?;
        Ok(migration.name().to_string())
    })
    .await
    .unwrap()
}

pub(crate) async fn migrate_all(db: &TestDatabase) {
    let mut harness = AsyncConnectionWrapper::<AsyncPgConnection>::from(db.connect().await);
    tokio::task::spawn_blocking(move || {
        harness
            .run_pending_migrations(MigrationSet::Embedded)
            .unwrap();
    })
    .await
    .unwrap();
}

pub(crate) async fn execute(conn: &mut AsyncPgConnection, sql: &str) {
    use diesel_async::RunQueryDsl;
    diesel::sql_query(sql)
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}
