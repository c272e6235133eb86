//! Hardening with the real binary: settings that cannot work are refused
//! at start, naming the setting.

use std::time::Duration;

use crate::support::database::TestDatabase;
use crate::support::process::{run_conduit, ConduitProcess};

const BOOT: Duration = Duration::from_secs(90);

#[tokio::test]
async fn settings_that_cannot_work_are_refused_at_start_naming_the_setting() {
    let db = TestDatabase::create().await;
    let cases = [
        ("CONDUIT_SESSION_TTL", "0s"),
        ("CONDUIT_SESSION_TTL", "100000000000d"),
        ("CONDUIT_CORS_ORIGINS", "*"),
        ("CONDUIT_CORS_ORIGINS", "https://app.example.org/path"),
        ("CONDUIT_DB_STATEMENT_TIMEOUT", "0s"),
        ("CONDUIT_MIGRATION_LOCK_TIMEOUT", "0s"),
        ("CONDUIT_DB_ACQUIRE_TIMEOUT", "0"),
        ("CONDUIT_LOGIN_FAILURE_WINDOW", "0s"),
        ("CONDUIT_SHUTDOWN_TIMEOUT_SECS", "soon"),
    ];
    for (name, value) in cases {
        let (status, output) = run_conduit(Some(&db.url()), &["serve"], &[(name, value)]).await;
        assert!(!status.success(), "{name}={value} was accepted:\n{output}");
        assert!(
            !output.contains("listening"),
            "{name}={value}: listened before refusing:\n{output}"
        );
        let named = output
            .lines()
            .any(|line| line.contains(name) || line.contains(&cli_flag(name)));
        assert!(
            named,
            "{name}={value}: the message does not name it:\n{output}"
        );
    }
}

/// clap names a value it cannot parse by its flag (`--session-ttl`).
fn cli_flag(name: &str) -> String {
    let flag = name.trim_start_matches("CONDUIT_").to_lowercase();
    format!("--{}", flag.replace('_', "-"))
}

#[tokio::test]
async fn every_duration_setting_takes_units_and_bare_seconds() {
    let db = TestDatabase::create().await;
    let mut server = ConduitProcess::spawn(
        &db.url(),
        &[],
        &[
            ("CONDUIT_DB_WAIT_SECS", "1m"),
            ("CONDUIT_DB_ACQUIRE_TIMEOUT", "2500ms"),
            ("CONDUIT_MIGRATION_LOCK_WAIT_SECS", "120"),
            ("CONDUIT_SHUTDOWN_TIMEOUT_SECS", "10s"),
            ("CONDUIT_SESSION_TTL", "12h"),
        ],
    );
    server.wait_ready(BOOT).await.unwrap();
}
