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

use std::borrow::Cow;

use percent_encoding::percent_decode_str;
use tokio_postgres::config::Host;

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

/// The `@` that ends the user and password must be the only one, and come
/// before the first `/`, `?` or `#`; no `#` at all (tokio-postgres does not
/// know fragments, and would read one as part of a value).
fn check_unambiguous(after_scheme: &str) -> Result<(), UrlError> {
    let authority_end = after_scheme
        .find(['/', '?', '#'])
        .unwrap_or(after_scheme.len());
    let ats = after_scheme.matches('@').count();
    let at_outside = after_scheme[authority_end..].contains('@');
    if ats > 1 || at_outside || after_scheme.contains('#') {
        return Err(UrlError::Ambiguous);
    }
    Ok(())
}

/// What tokio-postgres would refuse only when connecting, refused at start.
fn check_hosts(config: &tokio_postgres::Config) -> Result<(), UrlError> {
    let hosts = config.get_hosts().len();
    let hostaddrs = config.get_hostaddrs().len();
    if hosts == 0 && hostaddrs == 0 {
        return Err(UrlError::NoHost);
    }
    if hosts > 0 && hostaddrs > 0 && hosts != hostaddrs {
        return Err(UrlError::HostaddrCount { hosts, hostaddrs });
    }
    let count = hosts.max(hostaddrs);
    let ports = config.get_ports().len();
    if ports > 1 && ports != count {
        return Err(UrlError::PortCount {
            hosts: count,
            ports,
        });
    }
    Ok(())
}

fn decode(text: &str) -> Cow<'_, str> {
    percent_decode_str(text).decode_utf8_lossy()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<(PgUrl, TlsParameters), UrlError> {
        PgUrl::parse(raw)
    }

    #[test]
    fn a_password_with_a_raw_slash_question_mark_hash_or_at_is_refused_unquoted() {
        for raw in [
            "postgres://conduit:2024/Winter-s3cret@db.example/conduit",
            "postgres://conduit:Winter?s3cret@db.example/conduit",
            "postgres://conduit:Winter#s3cret@db.example/conduit",
            "postgres://conduit:Winter@s3cret@db.example/conduit",
            "postgres://db.example/conduit?user=me@Winter-s3cret",
        ] {
            let error = parse(raw).err().expect(raw);
            assert!(matches!(error, UrlError::Ambiguous), "{raw}: {error}");
            let message = error.to_string();
            assert!(message.contains("percent-encode"), "{message}");
            assert!(!message.contains("s3cret"), "{message}");
        }
        let (url, _) =
            parse("postgres://conduit:2024%2FWinter-s3cret@db.example/conduit").expect("encoded");
        assert_eq!(url.target(), "db.example:5432/conduit");
        assert_eq!(url.config.get_password(), Some(&b"2024/Winter-s3cret"[..]));
    }

    #[test]
    fn sockets_several_hosts_and_hostaddr_are_read_as_tokio_postgres_reads_them() {
        let (url, _) = parse("postgres:///conduit?host=/run/postgresql&user=conduit").unwrap();
        assert_eq!(url.target(), "/run/postgresql:5432/conduit");
        let (url, _) = parse("postgresql://u@%2Fvar%2Frun%2Fpostgresql:5433/db").unwrap();
        assert_eq!(url.target(), "/var/run/postgresql:5433/db");
        let (url, _) =
            parse("postgres://u@h1:5432,h2:5433/db?target_session_attrs=read-write").unwrap();
        assert_eq!(url.target(), "h1:5432,h2:5433/db");
        let (url, _) = parse("postgres:///db?hostaddr=10.0.0.5&port=6432").unwrap();
        assert_eq!(url.target(), "10.0.0.5:6432/db");
    }

    #[test]
    fn tls_parameters_are_taken_out_and_the_rest_kept() {
        let (url, tls) = parse(
            "postgres://u:p@h/db?connect_timeout=3&sslmode=verify-full&sslrootcert=%2Fca.pem",
        )
        .unwrap();
        assert_eq!(tls.sslmode.as_deref(), Some("verify-full"));
        assert_eq!(tls.sslrootcert.as_deref(), Some("/ca.pem"));
        assert_eq!(
            url.with_application_name("conduit migrate"),
            "postgres://u:p@h/db?connect_timeout=3&application_name=conduit+migrate"
        );
        // Ours wins: contract migrations tell releases apart by it.
        let (url, _) = parse("postgres://u@h/db?application_name=mine&connect_timeout=3").unwrap();
        assert_eq!(
            url.with_application_name("conduit@012"),
            "postgres://u@h/db?connect_timeout=3&application_name=conduit%40012"
        );
    }

    #[test]
    fn channel_binding_is_tokio_postgres_own_parameter() {
        use tokio_postgres::config::ChannelBinding;
        let (url, _) = parse("postgres://u@h/db?sslmode=require&channel_binding=require").unwrap();
        assert_eq!(url.config.get_channel_binding(), ChannelBinding::Require);
        assert_eq!(
            url.with_application_name("x"),
            "postgres://u@h/db?channel_binding=require&application_name=x"
        );
        let (url, _) = parse("postgres://u@h/db").unwrap();
        assert_eq!(url.config.get_channel_binding(), ChannelBinding::Prefer);
        let error = parse("postgres://u@h/db?channel_binding=always")
            .err()
            .unwrap();
        assert!(matches!(error, UrlError::Driver(_)), "{error}");
    }

    #[test]
    fn what_tokio_postgres_cannot_do_is_named() {
        let message = |raw: &str| parse(raw).err().expect(raw).to_string();
        assert!(message("host=db user=u").contains("key=value"));
        assert!(message("postgres://u@h/db?sslcert=/c.pem").contains("`sslcert` is a libpq"));
        assert!(message("postgres://u@h/db?target_session_attrs=primary")
            .contains("target_session_attrs=primary is not supported"));
        assert!(message("postgres:///db").contains("names no host"));
        assert!(message("postgres:///db?host=h1&host=h2&host=h3&port=1,2")
            .contains("3 hosts but 2 ports"));
    }
}
