//! The fields of an account, each parsed into a value that is valid by
//! construction: a username, an email, a password, and their limits.

use std::fmt;

use unicode_normalization::UnicodeNormalization;

use crate::domain::text::{self, BLANK, INVISIBLE, STRAY_MODIFIER};
use crate::domain::{identity, Invalid};

pub const USERNAME_MAX: usize = 64;
pub const EMAIL_MAX: usize = 254;
pub const URL_MAX: usize = 2_000;
pub const BIO_MAX: usize = 2_000;

/// Unicode NFC: a name typed with a combining accent (e + U+0301) and one
/// typed with the precomposed letter (é) are the same name, stored once.
pub(super) fn nfc(value: Option<String>) -> Option<String> {
    value.map(|v| v.nfc().collect())
}

/// A username: letters, digits, `_`, `-` and `.`, at least one letter or
/// digit (so never `.` or `..`, which no profile URL could reach), at most
/// [`USERNAME_MAX`], in NFC, nothing invisible ([`identity::is_invisible`]).
/// Unique whatever its case and width, and unlike any other name in look
/// ([`identity::folded`], [`identity::skeleton`]; migration 012).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(value: Option<String>) -> Result<Self, Invalid> {
        let value = text::required(nfc(value), USERNAME_MAX)?;
        if value.chars().any(identity::is_invisible) {
            Err(INVISIBLE.into())
        } else if identity::has_stray_modifier(&value) {
            Err(STRAY_MODIFIER.into())
        } else if !value
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            Err("may contain only letters, digits, '_', '-' and '.'".into())
        } else if !value.chars().any(char::is_alphanumeric) {
            Err("must contain a letter or a digit".into())
        } else {
            Ok(Self(value))
        }
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// An email address: something@somewhere, no spaces, nothing invisible.
/// Unique whatever its case ([`identity::folded`]; migration 012).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(value: Option<String>) -> Result<Self, Invalid> {
        let value = text::required(nfc(value), EMAIL_MAX)?;
        let well_formed = match value.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && !has_space_or_invisible(&value)
                    && !identity::has_stray_modifier(&value)
            }
            None => false,
        };
        if well_formed {
            Ok(Self(value))
        } else {
            Err("is invalid".into())
        }
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A new password, within the accepted lengths. Never trimmed: every
/// character counts. Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Accepted lengths, in characters (NIST 800-63B: at least 8, and long
    /// passphrases allowed).
    pub const MIN_LENGTH: usize = 8;
    pub const MAX_LENGTH: usize = 128;

    pub fn parse(value: Option<String>) -> Result<Self, Invalid> {
        let value = value.unwrap_or_default();
        let length = value.chars().count();
        if value.is_empty() {
            Err(BLANK.into())
        } else if length < Self::MIN_LENGTH {
            Err(format!("is too short (minimum is {} characters)", Self::MIN_LENGTH).into())
        } else if length > Self::MAX_LENGTH {
            Err(text::too_long(Self::MAX_LENGTH).into())
        } else {
            Ok(Self(value))
        }
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// Whether `value` holds white space or an invisible character: neither
/// belongs in an email address or a URL.
pub(super) fn has_space_or_invisible(value: &str) -> bool {
    value
        .chars()
        .any(|c| c.is_whitespace() || identity::is_invisible(c))
}
