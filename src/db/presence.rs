//! One connection per serving process, held open for as long as it runs,
//! so that `pg_stat_activity` always shows which releases are serving
//! (its `application_name` is `conduit@<newest version>`). The pool alone
//! does not: after a restart or failover of PostgreSQL, or an idle
//! timeout, a serving process can hold no connection at all, and a revert
//! or a contract migration would not see it. Opened on the migrations'
//! endpoint, which reaches PostgreSQL itself: through a transaction
//! pooler an idle client holds no server connection.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::db::endpoint::Endpoint;

/// How long after losing its connection a process opens another. The
/// waits that rely on it (db/migrations/contract.rs) give a release this
/// long and more to show itself again.
pub const RECONNECT_AFTER: Duration = Duration::from_millis(250);

/// Keeps a connection named `application_name` open on `endpoint`, from
/// `start_after` on (the pool's first connection shows the process until
/// then), opening a new one whenever it ends, until the task is aborted.
pub fn keep(endpoint: Endpoint, application_name: String, start_after: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(start_after).await;
        let url = endpoint.connection_url(&application_name);
        loop {
            match super::connect::open(&url, &endpoint.tls).await {
                // Ends when the server closes the session; the client
                // must live as long, or the session would end at once.
                Ok((client, session)) => {
                    let _ = session.await;
                    drop(client);
                }
                Err(error) => {
                    tracing::debug!(error = %crate::error_chain::Chain(&error), "could not open the presence connection");
                }
            }
            tokio::time::sleep(RECONNECT_AFTER).await;
        }
    })
}
