//! DATABASE_URL as tokio-postgres reads it, checked at start to mean one
//! thing only, so that no part of the password can end up read as a host,
//! a port or a database name (and printed as one).
//!
//! tokio-postgres takes everything before the first `@` as the user and
//! password, wherever that `@` is; a URL reader (and an operator) ends the
//! user and password at the first `/`, `?` or `#`. Where the two disagree
//! the URL is refused, and the message says what to percent-encode,
//! without quoting any of it.
//!
//! What tokio-postgres supports is supported: several hosts
//! (`postgres://h1:5432,h2:5433/db`), Unix socket directories
//! (`postgres:///db?host=/run/postgresql`, or `%2Frun%2Fpostgresql` as the
//! host), `hostaddr`, `target_session_attrs=read-write|read-only`,
//! `load_balance_hosts`, timeouts and keepalives. libpq parameters it does
//! not know are refused by name ([`UNSUPPORTED_LIBPQ_PARAMETERS`]).

mod checks;
mod error;
#[cfg(test)]
mod tests;

use tokio_postgres::config::Host;

use checks::{check_hosts, check_unambiguous, decode};
pub use error::UrlError;

/// libpq parameters tokio-postgres has no equivalent for. Named, so that
/// the refusal says why rather than "unknown option".
const UNSUPPORTED_LIBPQ_PARAMETERS: &[&str] = &[
    "passfile",
    "service",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "sslcompression",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "requirepeer",
    "require_auth",
    "gssencmode",
    "gsslib",
    "gssdelegation",
    "krbsrvname",
    "requiressl",
    "client_encoding",
    "fallback_application_name",
    "replication",
    "max_protocol_version",
    "min_protocol_version",
];

/// A checked DATABASE_URL: what tokio-postgres will be given (without the
/// TLS parameters) and what it will make of it.
#[derive(Clone)]
pub struct PgUrl {
    /// The URL as given, less `sslmode` and `sslrootcert`.
    url: String,
    config: tokio_postgres::Config,
}

/// The TLS parameters taken out of a URL, decoded: conduit reads them
/// itself (`db::tls`), since tokio-postgres knows neither `sslrootcert`
/// nor the verifying `sslmode`s.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TlsParameters {
    pub sslmode: Option<String>,
    pub sslrootcert: Option<String>,
}

impl PgUrl {
    /// Checks `raw` and splits off its TLS parameters.
    pub fn parse(raw: &str) -> Result<(Self, TlsParameters), UrlError> {
        let raw = raw.trim();
        let rest = ["postgres://", "postgresql://"]
            .iter()
            .find_map(|prefix| raw.strip_prefix(prefix))
            .ok_or(UrlError::NotAUrl)?;
        check_unambiguous(rest)?;
        let (head, query) = match raw.split_once('?') {
            Some((head, query)) => (head, Some(query)),
            None => (raw, None),
        };
        let mut tls = TlsParameters::default();
        let mut kept = Vec::new();
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode(key);
            let decoded = || decode(value).into_owned();
            match key.as_ref() {
                "sslmode" => tls.sslmode = Some(decoded()),
                "sslrootcert" => tls.sslrootcert = Some(decoded()),
                "target_session_attrs"
                    if !matches!(decoded().as_str(), "any" | "read-write" | "read-only") =>
                {
                    return Err(UrlError::UnsupportedSessionAttrs(decoded()))
                }
                known if UNSUPPORTED_LIBPQ_PARAMETERS.contains(&known) => {
                    return Err(UrlError::UnsupportedParameter(known.to_owned()))
                }
                _ => kept.push(pair),
            }
        }
        let url = if kept.is_empty() {
            head.to_owned()
        } else {
            format!("{head}?{}", kept.join("&"))
        };
        let config: tokio_postgres::Config = url.parse()?;
        check_hosts(&config)?;
        Ok((Self { url, config }, tls))
    }

    /// The URL to connect with, its `application_name` ours: one the URL
    /// carries is replaced, since contract migrations rely on every
    /// Conduit naming its release.
    pub fn with_application_name(&self, application_name: &str) -> String {
        let (head, query) = self.url.split_once('?').unwrap_or((&self.url, ""));
        let name: String =
            url::form_urlencoded::byte_serialize(application_name.as_bytes()).collect();
        let mut pairs: Vec<String> = query
            .split('&')
            .filter(|pair| !pair.is_empty() && !pair.starts_with("application_name="))
            .map(str::to_owned)
            .collect();
        pairs.push(format!("application_name={name}"));
        format!("{head}?{}", pairs.join("&"))
    }

    /// The database the URL names.
    pub fn database_name(&self) -> &str {
        self.config.get_dbname().unwrap_or_default()
    }

    /// The same URL naming another database: the path replaced, any
    /// `dbname` parameter dropped.
    pub fn with_database(&self, database: &str) -> Self {
        let scheme_end = self.url.find("://").map_or(0, |i| i + 3);
        let authority_end = self.url[scheme_end..]
            .find(['/', '?'])
            .map_or(self.url.len(), |i| scheme_end + i);
        let (head, tail) = self.url.split_at(authority_end);
        let kept: Vec<&str> = tail
            .split_once('?')
            .into_iter()
            .flat_map(|(_, query)| query.split('&'))
            .filter(|pair| !pair.starts_with("dbname="))
            .collect();
        let name =
            percent_encoding::utf8_percent_encode(database, percent_encoding::NON_ALPHANUMERIC);
        let mut url = format!("{head}/{name}");
        if !kept.is_empty() {
            url.push('?');
            url.push_str(&kept.join("&"));
        }
        let mut config = self.config.clone();
        config.dbname(database);
        Self { url, config }
    }

    /// The hosts, ports and database, for messages: never the user or the
    /// password. `h1:5432,h2:5433/db`; a socket directory shows as its path.
    pub fn target(&self) -> String {
        let config = &self.config;
        let count = config.get_hosts().len().max(config.get_hostaddrs().len());
        let ports = config.get_ports();
        let hosts: Vec<String> = (0..count)
            .map(|i| {
                let name = match (config.get_hosts().get(i), config.get_hostaddrs().get(i)) {
                    (Some(Host::Tcp(host)), _) => host.clone(),
                    (Some(Host::Unix(path)), _) => path.display().to_string(),
                    (None, Some(address)) => address.to_string(),
                    (None, None) => String::from("?"),
                };
                let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
                format!("{name}:{port}")
            })
            .collect();
        format!(
            "{}/{}",
            hosts.join(","),
            config.get_dbname().unwrap_or_default()
        )
    }
}
