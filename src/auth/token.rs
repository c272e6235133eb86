//! Session tokens: 256 random bits, base64url; only their SHA-256 is stored.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Length of an encoded token: 32 bytes in unpadded base64url.
pub const TOKEN_LENGTH: usize = 43;

/// A new random token, from the operating system's CSPRNG.
pub fn generate() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// What the database stores and looks tokens up by.
pub fn digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Cheap shape check, so malformed tokens never reach the database.
pub fn is_well_formed(token: &str) -> bool {
    token.len() == TOKEN_LENGTH
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_well_formed_distinct_and_hashed_to_32_bytes() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert!(is_well_formed(&a), "{a}");
        assert_ne!(a, b);
        assert_eq!(digest(&a).len(), 32);
        assert_ne!(digest(&a), digest(&b));
        assert!(!is_well_formed("short"));
        assert!(!is_well_formed(&format!("{}=", &a[..42])));
    }
}
