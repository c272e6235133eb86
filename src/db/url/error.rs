//! Why DATABASE_URL is refused, never quoting it.

/// Why DATABASE_URL is refused.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error(
        "must be a URL starting with postgres:// or postgresql:// \
         (key=value connection strings are not supported)"
    )]
    NotAUrl,
    // Nothing of the URL is quoted: which part is the password is exactly
    // what cannot be told.
    #[error(
        "can be read in more than one way, so it is refused (and not shown: it may hold the \
         password): percent-encode the characters / ? # @ in the user name and password \
         (as %2F %3F %23 %40), and # anywhere (as %23)"
    )]
    Ambiguous,
    #[error(
        "names no host: give one (postgres://user@host:5432/db), several \
         (postgres://user@h1,h2/db), or a Unix socket directory \
         (postgres:///db?host=/run/postgresql)"
    )]
    NoHost,
    #[error("{hosts} hosts but {ports} ports: give one port for every host, or one per host")]
    PortCount { hosts: usize, ports: usize },
    #[error("{hosts} hosts but {hostaddrs} hostaddr values: give one hostaddr per host")]
    HostaddrCount { hosts: usize, hostaddrs: usize },
    #[error(
        "`{0}` is a libpq parameter that conduit does not support: it connects through \
         tokio-postgres, without libpq"
    )]
    UnsupportedParameter(String),
    #[error(
        "target_session_attrs={0} is not supported (tokio-postgres knows any, read-write and \
         read-only; read-write finds the primary)"
    )]
    UnsupportedSessionAttrs(String),
    /// tokio-postgres' own reason, which names an option but never
    /// quotes a value.
    #[error(transparent)]
    Driver(#[from] tokio_postgres::Error),
}
