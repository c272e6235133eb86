//! Migration guard rails with the real binary, each on an empty database
//! of its own: strict mode on `migrate run`, migrations merged out of
//! order, two migrations of one version, a concurrent index left INVALID,
//! lock timeouts diagnosed and retried, repair, drift and baseline.

mod drift;
mod history;
mod indexes;
mod locks;

use crate::support::database::{select_texts, TestDatabase};
use crate::support::process::run_conduit;

pub(crate) async fn applied_versions(db: &TestDatabase) -> Vec<String> {
    let mut conn = db.connect().await;
    select_texts(
        &mut conn,
        "SELECT version AS value FROM __diesel_schema_migrations ORDER BY version",
    )
    .await
}

pub(crate) async fn tables(db: &TestDatabase) -> Vec<String> {
    let mut conn = db.connect().await;
    select_texts(
        &mut conn,
        "SELECT table_name::text AS value FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_name NOT LIKE '\\_\\_%' ORDER BY 1",
    )
    .await
}

pub(crate) async fn migrate(
    db: &TestDatabase,
    args: &[&str],
    envs: &[(&str, &str)],
) -> (bool, String) {
    let mut all = vec!["migrate"];
    all.extend_from_slice(args);
    let (status, output) = run_conduit(Some(&db.url()), &all, envs).await;
    (status.success(), output)
}

/// A copy of one migration set in a directory of its own, to edit.
pub(crate) struct ScratchMigrations(std::path::PathBuf);

impl ScratchMigrations {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "conduit-guard-rails-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, name: &str, up: &str) {
        let migration = self.0.join(name);
        std::fs::create_dir_all(&migration).unwrap();
        std::fs::write(migration.join("up.sql"), up).unwrap();
        std::fs::write(migration.join("down.sql"), "SELECT 1;\n").unwrap();
    }

    fn path(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }
}

impl Drop for ScratchMigrations {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
