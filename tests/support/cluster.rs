//! PostgreSQL as a test may need to break it: a server of the test's own
//! to stop and start, and a forwarder that makes the shared one appear at
//! an address only when the test chooses.

use std::process::Command;

use url::Url;

use super::database::{connect, server_url};

/// A free TCP port on loopback (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A TCP forwarder from `listen` to the test PostgreSQL: lets a test make
/// the database appear at an address only when it chooses.
pub async fn forward_to_database(port: u16) -> tokio::task::JoinHandle<()> {
    let server = server_url();
    let upstream = format!(
        "{}:{}",
        server.host_str().expect("DATABASE_URL has a host"),
        server.port().unwrap_or(5432)
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind the forwarder");
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if let Ok(mut database) = tokio::net::TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut database).await;
                }
            });
        }
    })
}

/// `url` pointed at another port on loopback.
pub fn at_port(url: &Url, port: u16) -> Url {
    let mut moved = url.clone();
    moved.set_host(Some("127.0.0.1")).expect("a host");
    moved.set_port(Some(port)).expect("a port");
    moved
}

/// A PostgreSQL server of the test's own, which the test may stop and
/// start: for faults the shared server must not suffer. Runs as the
/// `postgres` user when the tests run as root.
pub struct TestCluster {
    dir: std::path::PathBuf,
    bin: std::path::PathBuf,
    pub port: u16,
    /// Extra `-c name=value` server settings (TLS, logging).
    settings: Vec<String>,
}

fn pg_bin_dir() -> std::path::PathBuf {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return dir.into();
    }
    let mut candidates: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    candidates.sort();
    candidates
        .pop()
        .filter(|dir| dir.join("pg_ctl").exists())
        .expect("PostgreSQL server binaries (set PG_BIN to their directory)")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl TestCluster {
    pub fn start() -> Self {
        Self::start_with(free_port(), Vec::new(), |_| {})
    }

    /// A cluster on `port` with extra server settings; `prepare` runs
    /// after initdb, before the first start, with the cluster's directory
    /// (to write certificates or pg_hba.conf; files are handed to the
    /// server user afterwards).
    pub fn start_with(
        port: u16,
        settings: Vec<String>,
        prepare: impl FnOnce(&std::path::Path),
    ) -> Self {
        let dir =
            std::env::temp_dir().join(format!("conduit-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("run")).expect("cluster directory");
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(&dir)
                .status();
            assert!(
                status.map(|s| s.success()).unwrap_or(false),
                "chown the cluster to postgres"
            );
        }
        let cluster = Self {
            bin: pg_bin_dir(),
            port,
            dir,
            settings,
        };
        let data = cluster.dir.join("data");
        let output = cluster
            .as_server_user(&cluster.bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "conduit",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ])
            .output()
            .expect("run initdb");
        assert!(
            output.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        prepare(&cluster.dir);
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(&cluster.dir)
                .status();
            assert!(
                status.map(|s| s.success()).unwrap_or(false),
                "chown the cluster to postgres"
            );
        }
        cluster.resume();
        cluster
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// A started cluster with an empty database `name`.
    pub async fn with_database(name: &str) -> Self {
        let cluster = Self::start();
        let mut admin = connect(&cluster.url("postgres")).await;
        diesel_async::RunQueryDsl::execute(
            diesel::sql_query(format!("CREATE DATABASE \"{name}\"")),
            &mut admin,
        )
        .await
        .unwrap_or_else(|e| panic!("create database {name}: {e}"));
        cluster
    }

    fn as_server_user(&self, program: &std::path::Path) -> Command {
        if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    fn pg_ctl(&self, args: &[&str]) -> std::process::Output {
        self.as_server_user(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(args)
            .output()
            .expect("run pg_ctl")
    }

    /// Starts (again) and waits until it accepts connections.
    pub fn resume(&self) {
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.join("run").display()
        );
        for setting in &self.settings {
            options.push_str(" -c ");
            options.push_str(setting);
        }
        let log = self.dir.join("postgres.log");
        let output = self.pg_ctl(&["-w", "-l", log.to_str().unwrap(), "-o", &options, "start"]);
        assert!(
            output.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Stops it the way a crash or an operator would: connections are cut.
    pub fn halt(&self) {
        let output = self.pg_ctl(&["-w", "-m", "fast", "stop"]);
        assert!(
            output.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    pub fn url(&self, database: &str) -> Url {
        Url::parse(&format!(
            "postgres://conduit@127.0.0.1:{}/{database}",
            self.port
        ))
        .expect("a valid URL")
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
