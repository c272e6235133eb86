//! One PostgreSQL server to connect to: its URL and how to secure it.

use super::tls::{PgTls, TlsConfigError};
use super::url::{PgUrl, UrlError};

/// Where to connect and how to secure it: the URL without `sslmode` and
/// `sslrootcert`, which became `tls`.
#[derive(Clone)]
pub struct Endpoint {
    url: PgUrl,
    pub tls: PgTls,
}

/// Why a database URL cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error(transparent)]
    Url(#[from] UrlError),
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
}

impl Endpoint {
    /// A libpq-style URL, its `sslmode` and `sslrootcert` taken out into
    /// the TLS settings.
    pub fn parse(raw: &str) -> Result<Self, EndpointError> {
        let (url, tls) = PgUrl::parse(raw)?;
        let tls = PgTls::from_parameters(&tls)?;
        Ok(Self { url, tls })
    }

    /// The URL to connect with, tagged with an application name so that
    /// `pg_stat_activity` (and a replica waiting on the migration lock) can
    /// tell who holds a connection. Ours replaces one the URL carries:
    /// contract migrations rely on every Conduit naming its release.
    pub fn connection_url(&self, application_name: &str) -> String {
        self.url.with_application_name(application_name)
    }

    /// The same server and credentials, another database (a scratch one).
    pub fn with_database(&self, database: &str) -> Endpoint {
        Endpoint {
            url: self.url.with_database(database),
            tls: self.tls.clone(),
        }
    }

    /// The database name of the URL.
    pub fn database_name(&self) -> &str {
        self.url.database_name()
    }

    /// Hosts, ports and database, for messages: never the user or the
    /// password.
    pub fn display_target(&self) -> String {
        self.url.target()
    }
}

// Not derived: the URL carries the password.
impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("target", &self.display_target())
            .field("sslmode", &self.tls.mode().as_str())
            .finish()
    }
}
