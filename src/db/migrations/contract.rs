//! Contract migrations: a migration whose up.sql begins with the line
//! `-- conduit:contract` drops or renames something an older release may
//! still read, so it is applied only while no older release is connected
//! (each names itself `conduit@<version>`, db/application_name.rs). The
//! runner waits for them up to CONDUIT_MIGRATION_LOCK_WAIT, then
//! refuses, naming them.

use std::time::{Duration, Instant};

use diesel::sql_types::{Integer, Text};
use diesel::QueryableByName;

use super::{BlockingPgConnection, MigrationError, MigrationSet};
use crate::db::application_name;

/// The first line that marks a migration as a contract step.
pub const MARKER: &str = "-- conduit:contract";

/// How long the runner sleeps between two looks at who is connected.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How long no blocking release must be seen before the step goes ahead:
/// a serving process whose connections were all cut (a restart of
/// PostgreSQL, a failover) shows itself again within
/// `db::presence::RECONNECT_AFTER` and the time to connect.
const ABSENT_FOR: Duration = Duration::from_secs(2);
/// How often a waiting runner says that it is still waiting.
const LOG_INTERVAL: Duration = Duration::from_secs(5);

/// Whether `up_sql` begins with the contract marker line.
pub fn is_contract(up_sql: &str) -> bool {
    up_sql
        .lines()
        .next()
        .is_some_and(|line| line.trim_end() == MARKER)
}

/// A connection that names a Conduit release.
#[derive(Debug, QueryableByName)]
pub struct ReleaseSession {
    #[diesel(sql_type = Integer)]
    pub pid: i32,
    #[diesel(sql_type = Text)]
    pub application_name: String,
    #[diesel(sql_type = Text)]
    pub client_address: String,
}

impl std::fmt::Display for ReleaseSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} {} from {}",
            self.pid, self.application_name, self.client_address
        )
    }
}

/// Before applying `name` (version `version`) of `set`: if it is a
/// contract migration, waits until no connection to this database names a
/// release older than it, for at most `wait`.
pub(super) fn wait_for_older_releases(
    conn: &mut BlockingPgConnection,
    set: &MigrationSet,
    name: &str,
    version: &str,
    wait: Duration,
) -> Result<(), MigrationError> {
    if !is_contract(&set.up_sql(name)?) {
        return Ok(());
    }
    let waiting = Waiting {
        blocks: &|theirs| application_name::is_older(theirs, version),
        waits: format!("contract migration {name} waits for older releases to disconnect"),
        gone: "older releases have disconnected",
    };
    waiting.wait(conn, name, wait)?.map_or(Ok(()), |blocked| {
        Err(MigrationError::ContractBlocked(blocked))
    })
}

/// Before reverting `name` (version `version`): waits until no connection
/// to this database names a release that knows it (its newest version is
/// `version` or later), for at most `wait`. Such a release reads what the
/// down.sql removes; roll it back first.
pub(super) fn wait_for_releases_using(
    conn: &mut BlockingPgConnection,
    name: &str,
    version: &str,
    wait: Duration,
) -> Result<(), MigrationError> {
    let waiting = Waiting {
        blocks: &|theirs| !application_name::is_older(theirs, version),
        waits: format!("reverting {name} waits for the releases that use it to disconnect"),
        gone: "the releases that use it have disconnected",
    };
    waiting.wait(conn, name, wait)?.map_or(Ok(()), |blocked| {
        Err(MigrationError::RevertBlocked(blocked))
    })
}

/// Still connected when the wait ran out: the step, for how long, and who.
#[derive(Debug)]
pub struct Blocked {
    pub name: String,
    pub waited_secs: u64,
    pub sessions: String,
}

/// A wait for the connected releases that `blocks` a step.
struct Waiting<'a> {
    blocks: &'a dyn Fn(&str) -> bool,
    waits: String,
    gone: &'static str,
}

impl Waiting<'_> {
    /// Polls until no other connection's release `blocks` for
    /// [`ABSENT_FOR`] on end; gives up after `wait` of seeing one.
    fn wait(
        &self,
        conn: &mut BlockingPgConnection,
        name: &str,
        wait: Duration,
    ) -> Result<Option<Blocked>, MigrationError> {
        let started = Instant::now();
        let mut last_log: Option<Instant> = None;
        let mut absent_since: Option<Instant> = None;
        loop {
            let blocking = self.blocking_sessions(conn)?;
            if blocking.is_empty() {
                let since = *absent_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= ABSENT_FOR {
                    if last_log.is_some() {
                        tracing::info!(migration = name, "{}", self.gone);
                    }
                    return Ok(None);
                }
                std::thread::sleep(POLL_INTERVAL);
                continue;
            }
            absent_since = None;
            let listed = blocking
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            if started.elapsed() >= wait {
                return Ok(Some(Blocked {
                    name: name.to_owned(),
                    waited_secs: started.elapsed().as_secs(),
                    sessions: listed,
                }));
            }
            if last_log.is_none_or(|at| at.elapsed() >= LOG_INTERVAL) {
                tracing::info!(migration = name, sessions = %listed, "{}", self.waits);
                last_log = Some(Instant::now());
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    fn blocking_sessions(
        &self,
        conn: &mut BlockingPgConnection,
    ) -> Result<Vec<ReleaseSession>, MigrationError> {
        Ok(release_sessions(conn)?
            .into_iter()
            .filter(|s| application_name::version_of(&s.application_name).is_some_and(self.blocks))
            .collect())
    }
}

/// The other connections to this database that name a Conduit release.
fn release_sessions(
    conn: &mut BlockingPgConnection,
) -> Result<Vec<ReleaseSession>, MigrationError> {
    use diesel::RunQueryDsl;

    Ok(diesel::sql_query(format!(
        "SELECT pid, application_name, \
                coalesce(host(client_addr), 'a local socket') AS client_address \
         FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
           AND application_name LIKE '{}%' \
         ORDER BY pid",
        application_name::PREFIX
    ))
    .load(conn)?)
}

#[cfg(test)]
mod tests {
    use super::is_contract;

    #[test]
    fn only_a_first_line_marker_makes_a_contract_migration() {
        assert!(is_contract(
            "-- conduit:contract\nALTER TABLE t DROP COLUMN c;"
        ));
        assert!(is_contract("-- conduit:contract  \r\nDROP TABLE t;"));
        assert!(!is_contract(
            "ALTER TABLE t DROP COLUMN c;\n-- conduit:contract"
        ));
        assert!(!is_contract("-- conduit:contracts\nDROP TABLE t;"));
        assert!(!is_contract(""));
    }
}
