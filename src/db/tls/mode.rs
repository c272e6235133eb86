//! libpq's `sslmode`, and what tokio-postgres is told for each.

use super::TlsConfigError;

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain text only.
    Disable,
    /// TLS if the server offers it, certificate unchecked (the default).
    Prefer,
    /// TLS always, certificate unchecked.
    Require,
    /// TLS always, the chain must lead to `sslrootcert`.
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host.
    VerifyFull,
}

impl SslMode {
    pub(super) fn parse(value: &str) -> Result<Self, TlsConfigError> {
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
    pub(super) fn on_the_wire(self) -> tokio_postgres::config::SslMode {
        match self {
            Self::Disable => tokio_postgres::config::SslMode::Disable,
            Self::Prefer => tokio_postgres::config::SslMode::Prefer,
            Self::Require | Self::VerifyCa | Self::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        }
    }

    /// The mode as a URL spells it.
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
