//! Fresh databases on the PostgreSQL that `make test` started (or
//! DATABASE_URL names), dropped when the test ends.

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
    pub async fn create() -> Self {
        let name = format!("conduit_test_{}", uuid::Uuid::new_v4().simple());
        let server = server_url();
        let mut admin = connect(&server).await;
        diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
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
