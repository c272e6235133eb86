//! Fresh databases on the PostgreSQL that `make test` started (or
//! DATABASE_URL names), dropped when the test ends: empty ones for the
//! tests of migrations and boots, and clones of a migrated template for
//! everything else (crates.io's way: a clone costs a file copy, not ten
//! migrations).

use diesel::sql_types::Text;
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use url::Url;

/// The server every test database is created on.
pub fn server_url() -> Url {
    let raw = std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        panic!("DATABASE_URL is not set: run the tests with `make test`, which starts PostgreSQL")
    });
    Url::parse(&raw).expect("DATABASE_URL is a URL")
}

/// `base` with another database name.
pub fn with_database(base: &Url, name: &str) -> Url {
    let mut url = base.clone();
    url.set_path(&format!("/{name}"));
    url
}

/// An empty database of its own, dropped (connections and all) when the
/// test ends. `make test` sweeps any left by a crashed run.
pub struct TestDatabase {
    pub name: String,
    pub url: Url,
}

impl TestDatabase {
    /// An empty database: no migration applied.
    pub async fn create() -> Self {
        Self::create_from(None).await
    }

    /// A database with every migration of `migrations/` applied, cloned
    /// from a template built once per set of migrations.
    // The process tests boot the binary on empty databases only.
    #[allow(dead_code)]
    pub async fn migrated() -> Self {
        let template = template::name().await;
        Self::create_from(Some(&template)).await
    }

    async fn create_from(template: Option<&str>) -> Self {
        let name = format!("conduit_test_{}", uuid::Uuid::new_v4().simple());
        let server = server_url();
        let mut admin = connect(&server).await;
        let from = template.map_or(String::new(), |t| format!(" TEMPLATE \"{t}\""));
        diesel::sql_query(format!("CREATE DATABASE \"{name}\"{from}"))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        let url = with_database(&server, &name);
        Self { name, url }
    }

    pub fn url(&self) -> String {
        self.url.to_string()
    }

    pub async fn connect(&self) -> AsyncPgConnection {
        connect(&self.url).await
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside any runtime guarantee: use a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database");
            runtime.block_on(async move {
                let mut admin = connect(&server_url()).await;
                diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(_))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

pub async fn connect(url: &Url) -> AsyncPgConnection {
    AsyncPgConnection::establish(url.as_str())
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", url.path()))
}

#[derive(QueryableByName)]
struct TextRow {
    #[diesel(sql_type = Text)]
    value: String,
}

/// Runs `sql`, whose single column is named `value`, and returns its
/// values as text.
pub async fn select_texts(conn: &mut AsyncPgConnection, sql: &str) -> Vec<String> {
    diesel::sql_query(sql)
        .load::<TextRow>(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .map(|row| row.value)
        .collect()
}

/// Polls until some session of this connection's database waits on a lock
/// (true), or `stop` says to give up, or 30 s pass (false). No duration is
/// asserted: a slow machine only takes longer.
pub async fn wait_for_a_lock_waiter(
    conn: &mut AsyncPgConnection,
    mut stop: impl FnMut() -> bool,
) -> bool {
    for _ in 0..3000 {
        let waiting = select_texts(
            conn,
            "SELECT count(*)::text AS value FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .await;
        if waiting != ["0"] {
            return true;
        }
        if stop() {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    false
}

/// The migrated template: named after a digest of `migrations/`, so an
/// edited or added migration gets a template of its own, and prefixed
/// like every test database, so `make test` sweeps stale ones. It is built
/// under a temporary name by the real binary's `migrate run`, then renamed:
/// a clone never meets a half-migrated template, and two test processes
/// building it at once both end up with one.
#[allow(dead_code)]
mod template {
    use std::path::Path;
    use std::process::Command;

    use diesel_async::RunQueryDsl;
    use sha2::{Digest, Sha256};
    use tokio::sync::OnceCell;

    use super::{connect, server_url, with_database};

    static NAME: OnceCell<String> = OnceCell::const_new();

    pub async fn name() -> String {
        NAME.get_or_init(build).await.clone()
    }

    fn digest_of_migrations() -> String {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<_> = walk(&root);
        files.sort();
        let mut hasher = Sha256::new();
        for file in files {
            let relative = file.strip_prefix(&root).expect("under migrations/");
            hasher.update(relative.to_string_lossy().as_bytes());
            hasher.update(std::fs::read(&file).expect("read a migration file"));
        }
        let digest = hasher.finalize();
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).expect("read migrations/") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                found.extend(walk(&path));
            } else {
                found.push(path);
            }
        }
        found
    }

    async fn build() -> String {
        let name = format!("conduit_test_template_{}", digest_of_migrations());
        let server = server_url();
        let mut admin = connect(&server).await;
        let exists = diesel::sql_query(format!(
            "SELECT 1 FROM pg_database WHERE datname = '{name}'"
        ))
        .execute(&mut admin)
        .await
        .expect("look for the template");
        if exists == 1 {
            return name;
        }
        let building = format!("conduit_test_building_{}", uuid::Uuid::new_v4().simple());
        diesel::sql_query(format!("CREATE DATABASE \"{building}\""))
            .execute(&mut admin)
            .await
            .expect("create the template");
        let url = with_database(&server, &building).to_string();
        let migrate = tokio::task::spawn_blocking(move || {
            let mut command = Command::new(env!("CARGO_BIN_EXE_conduit"));
            for (key, _) in std::env::vars() {
                if key.starts_with("CONDUIT_") {
                    command.env_remove(key);
                }
            }
            command
                .args(["migrate", "run", "--database-url", &url])
                // Away from the checkout, so a developer's .env cannot leak in.
                .current_dir(std::env::temp_dir())
                .output()
        })
        .await
        .expect("the migration thread")
        .expect("run conduit migrate run");
        assert!(
            migrate.status.success(),
            "migrating the template failed: {}",
            String::from_utf8_lossy(&migrate.stderr)
        );
        let renamed = diesel::sql_query(format!(
            "ALTER DATABASE \"{building}\" RENAME TO \"{name}\""
        ))
        .execute(&mut admin)
        .await;
        if renamed.is_err() {
            // Another test process built it first: use theirs.
            diesel::sql_query(format!("DROP DATABASE \"{building}\" WITH (FORCE)"))
                .execute(&mut admin)
                .await
                .expect("drop the spare template");
        }
        name
    }
}
