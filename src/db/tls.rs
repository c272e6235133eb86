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

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

use super::url::TlsParameters;

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<Self, TlsConfigError> {
        Ok(match value {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            // libpq's `allow` (plain first, TLS only if refused) has no
            // tokio-postgres equivalent: refused rather than silently
            // treated as another mode.
            other => return Err(TlsConfigError::UnknownSslMode(other.to_owned())),
        })
    }

    /// What tokio-postgres is told: whether to ask for TLS, and whether
    /// to insist on it.
    fn on_the_wire(self) -> tokio_postgres::config::SslMode {
        match self {
            Self::Disable => tokio_postgres::config::SslMode::Disable,
            Self::Prefer => tokio_postgres::config::SslMode::Prefer,
            Self::Require | Self::VerifyCa | Self::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("DATABASE_URL: sslmode={0:?} is not one of disable, prefer, require, verify-ca, verify-full")]
    UnknownSslMode(String),
    #[error("DATABASE_URL: sslmode={} needs sslrootcert=/path/to/ca.pem (or sslrootcert=system for the public CAs)", .0.as_str())]
    MissingRootCert(SslMode),
    #[error("DATABASE_URL: cannot read the CA certificates in sslrootcert={path}")]
    RootCert {
        path: String,
        source: rustls::pki_types::pem::Error,
    },
    #[error("DATABASE_URL: sslrootcert={0} holds no usable CA certificate")]
    NoRootCert(String),
    #[error("could not set up TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The TLS half of the connection settings: made once at start (so a
/// missing CA file fails the boot, not the first request), cloned into
/// every connection attempt.
#[derive(Clone)]
pub struct PgTls {
    mode: SslMode,
    config: Arc<ClientConfig>,
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
            config: Arc::new(config),
        })
    }

    pub fn mode(&self) -> SslMode {
        self.mode
    }

    /// Applies the mode to a tokio-postgres configuration.
    pub fn configure(&self, config: &mut tokio_postgres::Config) {
        config.ssl_mode(self.mode.on_the_wire());
    }
}

fn root_store(root: &str) -> Result<RootCertStore, TlsConfigError> {
    let mut store = RootCertStore::empty();
    if root == "system" {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok(store);
    }
    let path = PathBuf::from(root);
    let unreadable = |source| TlsConfigError::RootCert {
        path: root.to_owned(),
        source,
    };
    let certificates = CertificateDer::pem_file_iter(&path)
        .map_err(unreadable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unreadable)?;
    let (added, _ignored) = store.add_parsable_certificates(certificates);
    if added == 0 {
        return Err(TlsConfigError::NoRootCert(root.to_owned()));
    }
    Ok(store)
}

/// `prefer` and `require` without a CA: encrypted, certificate unchecked
/// (libpq's meaning). The handshake signature is still verified, so the
/// session is bound to the key of the certificate the server showed.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to the CA; the host name is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            // webpki checks the name last, after the chain.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

impl<S> MakeTlsConnect<S> for PgTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, host: &str) -> Result<RustlsConnect, io::Error> {
        let name = match ServerName::try_from(host.to_owned()) {
            Ok(name) => name,
            // Only verify-full compares the name; the others need some name
            // for the handshake (a Unix socket path is not one).
            Err(_) if self.mode != SslMode::VerifyFull => {
                ServerName::try_from("localhost").map_err(io::Error::other)?
            }
            Err(error) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("sslmode=verify-full: {host:?} is not a host name: {error}"),
                ))
            }
        };
        Ok(RustlsConnect {
            name,
            connector: tokio_rustls::TlsConnector::from(self.config.clone()),
        })
    }
}

pub struct RustlsConnect {
    name: ServerName<'static>,
    connector: tokio_rustls::TlsConnector,
}

type ConnectFuture<S> = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = ConnectFuture<S>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let stream = self.connector.connect(self.name, stream).await?;
            Ok(RustlsStream(stream))
        })
    }
}

/// tokio-rustls' stream, with the trait tokio-postgres asks of it.
pub struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        // No SCRAM channel binding: tokio-postgres then authenticates
        // without it, as libpq does with channel_binding=prefer.
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
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
