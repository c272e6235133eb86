//! TLS to PostgreSQL on rustls, with libpq's meaning of `sslmode` and
//! `sslrootcert` (taken out of DATABASE_URL by `db::url`: tokio-postgres
//! knows only disable/prefer/require and rejects `sslrootcert`).
//!
//! | sslmode     | encrypted           | certificate checked         |
//! |-------------|---------------------|-----------------------------|
//! | disable     | never               | -                           |
//! | prefer      | if the server can   | no                          |
//! | require     | always              | chain only, if sslrootcert  |
//! | verify-ca   | always              | chain                       |
//! | verify-full | always              | chain and host name         |
//!
//! As in libpq, `prefer` is the default and `require` with an `sslrootcert`
//! behaves as `verify-ca`. Unlike libpq, a verifying mode without
//! `sslrootcert` is refused at start rather than falling back to
//! `~/.postgresql/root.crt`; `sslrootcert=system` trusts the public CAs
//! compiled into the binary (webpki-roots), so the image needs no CA files.
//!
//! The stream itself is tokio-postgres-rustls'. It offers SCRAM channel
//! binding (`tls-server-end-point`), so over TLS a server that accepts
//! SCRAM-SHA-256-PLUS gets it: a password exchange then fails if someone
//! in the middle re-encrypted the session, which matters most where the
//! certificate is not checked. `channel_binding=disable|prefer|require`
//! in DATABASE_URL is tokio-postgres' own parameter (default `prefer`).

mod mode;
mod verifiers;

use std::io;
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres_rustls::MakeRustlsConnect;

pub use mode::SslMode;
use verifiers::{root_store, ChainOnly, EncryptOnly};

use super::url::TlsParameters;

/// Why the TLS parameters of DATABASE_URL cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    /// An `sslmode` libpq has but tokio-postgres cannot do (`allow`), or none.
    #[error("DATABASE_URL: sslmode={0:?} is not one of disable, prefer, require, verify-ca, verify-full")]
    UnknownSslMode(String),
    /// A verifying mode with nothing to verify against.
    #[error("DATABASE_URL: sslmode={} needs sslrootcert=/path/to/ca.pem (or sslrootcert=system for the public CAs)", .0.as_str())]
    MissingRootCert(SslMode),
    /// The `sslrootcert` file is missing or is not PEM.
    #[error("DATABASE_URL: cannot read the CA certificates in sslrootcert={path}")]
    RootCert {
        path: String,
        source: rustls::pki_types::pem::Error,
    },
    /// The `sslrootcert` file parsed, but no certificate in it is usable.
    #[error("DATABASE_URL: sslrootcert={0} holds no usable CA certificate")]
    NoRootCert(String),
    /// rustls refused the configuration.
    #[error("could not set up TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The TLS half of the connection settings: made once at start (so a
/// missing CA file fails the boot, not the first request), cloned into
/// every connection attempt.
#[derive(Clone)]
pub struct PgTls {
    mode: SslMode,
    connector: MakeRustlsConnect,
}

impl std::fmt::Debug for PgTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTls").field("mode", &self.mode).finish()
    }
}

impl PgTls {
    /// The TLS settings a URL's `sslmode` and `sslrootcert` ask for
    /// (`db::url` took them out of it).
    pub fn from_parameters(parameters: &TlsParameters) -> Result<Self, TlsConfigError> {
        let mode = match parameters.sslmode.as_deref() {
            Some(mode) => SslMode::parse(mode)?,
            None => SslMode::Prefer,
        };
        let root = parameters.sslrootcert.as_deref();
        let mode = if mode == SslMode::Require && root.is_some() {
            SslMode::VerifyCa
        } else {
            mode
        };
        Self::new(mode, root)
    }

    fn new(mode: SslMode, root: Option<&str>) -> Result<Self, TlsConfigError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let verifier: Arc<dyn ServerCertVerifier> = match mode {
            SslMode::Disable | SslMode::Prefer | SslMode::Require => {
                Arc::new(EncryptOnly(provider))
            }
            SslMode::VerifyCa | SslMode::VerifyFull => {
                let roots = root_store(root.ok_or(TlsConfigError::MissingRootCert(mode))?)?;
                let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| rustls::Error::General(e.to_string()))?;
                if mode == SslMode::VerifyFull {
                    webpki
                } else {
                    Arc::new(ChainOnly(webpki))
                }
            }
        };
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Self {
            mode,
            connector: MakeRustlsConnect::new(config),
        })
    }

    /// The mode in force (`require` with a CA reads as `verify-ca`).
    pub fn mode(&self) -> SslMode {
        self.mode
    }

    /// Applies the mode to a tokio-postgres configuration.
    pub fn configure(&self, config: &mut tokio_postgres::Config) {
        config.ssl_mode(self.mode.on_the_wire());
    }
}

/// The encrypted stream of a connection (tokio-postgres-rustls' own, which
/// has no public name of its own).
pub type RustlsStream<S> = <MakeRustlsConnect as MakeTlsConnect<S>>::Stream;

impl<S> MakeTlsConnect<S> for PgTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = <MakeRustlsConnect as MakeTlsConnect<S>>::TlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, host: &str) -> Result<Self::TlsConnect, io::Error> {
        let name = match ServerName::try_from(host) {
            Ok(_) => host,
            // Only verify-full compares the name; the others need some name
            // for the handshake (a Unix socket path is not one).
            Err(_) if self.mode != SslMode::VerifyFull => "localhost",
            Err(error) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("sslmode=verify-full: {host:?} is not a host name: {error}"),
                ))
            }
        };
        match MakeTlsConnect::<S>::make_tls_connect(&mut self.connector, name) {
            Ok(connect) => Ok(connect),
            Err(never) => match never {},
        }
    }
}

/// The certificate error, when `error` (from a connection attempt) is a
/// certificate the client refused: retrying cannot help, so boot stops at
/// once and says why.
pub fn certificate_rejection(error: &tokio_postgres::Error) -> Option<rustls::Error> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(cause) = source {
        let rustls_error = cause.downcast_ref::<rustls::Error>().or_else(|| {
            cause
                .downcast_ref::<io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|e| e.downcast_ref::<rustls::Error>())
        });
        if let Some(error @ rustls::Error::InvalidCertificate(_)) = rustls_error {
            return Some(error.clone());
        }
        source = cause.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::url::PgUrl;

    fn take(url: &str) -> (Result<PgTls, TlsConfigError>, String) {
        let (url, parameters) = PgUrl::parse(url).expect("a URL");
        (
            PgTls::from_parameters(&parameters),
            url.with_application_name("x"),
        )
    }

    #[test]
    fn prefer_is_the_default_and_other_parameters_stay() {
        let (tls, url) = take("postgres://u:p@h/db?application_name=x&sslmode=require");
        assert_eq!(tls.expect("valid").mode(), SslMode::Require);
        assert_eq!(url, "postgres://u:p@h/db?application_name=x");
        let (tls, url) = take("postgres://u@h/db");
        assert_eq!(tls.expect("valid").mode(), SslMode::Prefer);
        assert_eq!(url, "postgres://u@h/db?application_name=x");
    }

    #[test]
    fn bad_tls_parameters_are_refused_with_a_reason() {
        let (tls, _) = take("postgres://u@h/db?sslmode=strict");
        assert!(matches!(tls, Err(TlsConfigError::UnknownSslMode(m)) if m == "strict"));
        let (tls, _) = take("postgres://u@h/db?sslmode=verify-full");
        assert!(matches!(
            tls,
            Err(TlsConfigError::MissingRootCert(SslMode::VerifyFull))
        ));
        let (tls, _) = take("postgres://u@h/db?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem");
        let message = tls.expect_err("no such file").to_string();
        assert!(message.contains("/nonexistent/ca.pem"), "{message}");
    }

    #[test]
    fn require_with_a_root_certificate_checks_the_chain_as_libpq_does() {
        let (tls, _) = take("postgres://u@h/db?sslmode=require&sslrootcert=system");
        assert_eq!(tls.expect("valid").mode(), SslMode::VerifyCa);
    }
}
