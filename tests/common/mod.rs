//! Test tooling shared by the integration tests: fresh databases on the
//! PostgreSQL that `make test` started (or DATABASE_URL names), and the real
//! `conduit` binary run as a child process.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// Runs `sql`, whose single column is named `value`, and returns the texts.
pub async fn texts(conn: &mut AsyncPgConnection, sql: &str) -> Vec<String> {
    diesel::sql_query(sql)
        .load::<TextRow>(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .map(|row| row.value)
        .collect()
}

/// A free TCP port on loopback (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The real `conduit` binary, its output collected line by line.
pub struct ConduitProcess {
    child: Child,
    output: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// The environment every spawned process starts from: JSON logs on a free
/// port, and nothing inherited that could change its behaviour.
fn base_command(database_url: Option<&str>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_conduit"));
    for (key, _) in std::env::vars() {
        if key.starts_with("CONDUIT_") || key == "DATABASE_URL" || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    if let Some(url) = database_url {
        command.env("DATABASE_URL", url);
    }
    command
        .env("CONDUIT_LOG_FORMAT", "json")
        .env("CONDUIT_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        // Away from the checkout, so a developer's .env cannot leak in.
        .current_dir(std::env::temp_dir());
    command
}

impl ConduitProcess {
    pub fn spawn(database_url: &str, args: &[&str], envs: &[(&str, &str)]) -> Self {
        Self::spawn_with(base_command(Some(database_url)), args, envs)
    }

    pub fn spawn_without_database(args: &[&str], envs: &[(&str, &str)]) -> Self {
        Self::spawn_with(base_command(None), args, envs)
    }

    fn spawn_with(mut command: Command, args: &[&str], envs: &[(&str, &str)]) -> Self {
        command.args(args).envs(envs.iter().copied());
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn conduit");
        let output = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let readers = vec![
            collect_lines(stdout, output.clone()),
            collect_lines(stderr, output.clone()),
        ];
        Self {
            child,
            output,
            readers,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every line printed so far, stdout and stderr interleaved.
    pub fn output(&self) -> String {
        self.output.lock().expect("output lock").join("\n")
    }

    pub fn lines(&self) -> Vec<String> {
        self.output.lock().expect("output lock").clone()
    }

    /// Parsed JSON log lines (other lines skipped).
    pub fn log_events(&self) -> Vec<serde_json::Value> {
        self.lines()
            .iter()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// The first log event matching `wanted`, waiting for the output to
    /// arrive (it is read from a pipe on another thread).
    pub async fn wait_for_event(
        &self,
        wanted: impl Fn(&serde_json::Value) -> bool,
        timeout: Duration,
    ) -> Option<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(event) = self.log_events().into_iter().find(|e| wanted(e)) {
                return Some(event);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The address the server bound, once it has logged it.
    pub async fn wait_for_address(&mut self, timeout: Duration) -> Result<SocketAddr, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let address = self.log_events().iter().find_map(|event| {
                let message = event["message"].as_str()?;
                message.strip_prefix("listening on http://")?.parse().ok()
            });
            if let Some(address) = address {
                return Ok(address);
            }
            if let Some(status) = self.try_exit_status() {
                return Err(format!("exited with {status}:\n{}", self.output()));
            }
            if Instant::now() > deadline {
                return Err(format!("no address after {timeout:?}:\n{}", self.output()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `/ready` answers 200; returns the server's address.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<SocketAddr, String> {
        let deadline = Instant::now() + timeout;
        let address = self.wait_for_address(timeout).await?;
        let client = reqwest::Client::new();
        loop {
            if let Ok(response) = client.get(format!("http://{address}/ready")).send().await {
                if response.status() == 200 {
                    return Ok(address);
                }
            }
            if let Some(status) = self.try_exit_status() {
                return Err(format!("exited with {status}:\n{}", self.output()));
            }
            if Instant::now() > deadline {
                return Err(format!("not ready after {timeout:?}:\n{}", self.output()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("poll the child")
    }

    /// Waits for the process to exit by itself.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit_status() {
                // Everything the process wrote is read once the pipes close.
                let readers = std::mem::take(&mut self.readers);
                tokio::task::spawn_blocking(move || {
                    for reader in readers {
                        let _ = reader.join();
                    }
                })
                .await
                .expect("join the output readers");
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "still running after {timeout:?}:\n{}",
                    self.output()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Log events at ERROR level: a clean run has none.
    pub fn errors(&self) -> Vec<serde_json::Value> {
        self.log_events()
            .into_iter()
            .filter(|event| event["level"] == "ERROR")
            .collect()
    }
}

impl Drop for ConduitProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect_lines(
    stream: impl std::io::Read + Send + 'static,
    sink: Arc<Mutex<Vec<String>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            sink.lock().expect("output lock").push(line);
        }
    })
}

/// Runs the binary to completion (for `migrate ...` and `healthcheck`).
pub async fn run_conduit(
    database_url: Option<&str>,
    args: &[&str],
    envs: &[(&str, &str)],
) -> (ExitStatus, String) {
    let mut process = match database_url {
        Some(url) => ConduitProcess::spawn(url, args, envs),
        None => ConduitProcess::spawn_without_database(args, envs),
    };
    let status = process
        .wait_exit(Duration::from_secs(120))
        .await
        .expect("the command finishes");
    (status, process.output())
}

/// The path of a test fixture directory.
pub fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// GET a URL and return status and JSON body.
pub async fn get_json(url: &str) -> (u16, serde_json::Value) {
    let response = reqwest::get(url).await.expect("request");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
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
            port: free_port(),
            dir,
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
        cluster.resume();
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
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.join("run").display()
        );
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
        .unwrap()
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
