//! The real `conduit` binary run as a child process, its output collected
//! line by line.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a test waits for a server it started to be ready: a debug
/// build on a busy machine, migrations included.
pub const BOOT: Duration = Duration::from_secs(90);

/// The real `conduit` binary, its output collected line by line.
pub struct ConduitProcess {
    child: Child,
    output: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// The environment every spawned process starts from: JSON logs on a free
/// port, and nothing inherited that could change its behaviour.
pub fn base_command(database_url: Option<&str>) -> Command {
    with_base_environment(Command::new(env!("CARGO_BIN_EXE_conduit")), database_url)
}

fn with_base_environment(mut command: Command, database_url: Option<&str>) -> Command {
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

    /// The binary with at most `limit` open descriptors (soft and hard),
    /// through util-linux's `prlimit`, which execs it: the child is conduit.
    pub fn spawn_with_descriptor_limit(
        database_url: &str,
        limit: u32,
        envs: &[(&str, &str)],
    ) -> Self {
        let mut command = Command::new("prlimit");
        command
            .arg(format!("--nofile={limit}:{limit}"))
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_conduit"));
        Self::spawn_with(
            with_base_environment(command, Some(database_url)),
            &[],
            envs,
        )
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
