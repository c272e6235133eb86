//! Passwords: argon2id with the OWASP parameters, stored as PHC strings,
//! hashed on the threads of [`super::hashing`], never on an actix worker
//! (a hash takes tens of milliseconds of CPU).

use std::cell::RefCell;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use super::hashing::{self, HashingUnavailable, Lane};
use crate::db::users::User;

/// A hash of the same cost, verified (and its result ignored) when the
/// account does not exist, so that a login takes as long either way.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$0THj0R0Mamu6Kw8ile6lTg$eubsFb1L6bN961MpRiqjp0LByYCBjXbx6/4gOao0rmA";

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("could not draw a salt")]
    Salt(#[source] getrandom::Error),
    // Without their `std` feature (which would bring another getrandom)
    // argon2's errors are not std errors: kept as values, shown in the
    // message.
    #[error("argon2 failed: {0}")]
    Argon2(argon2::Error),
    #[error("malformed password hash: {0}")]
    Phc(argon2::password_hash::Error),
    #[error("the stored password hash has no {0}")]
    Incomplete(&'static str),
    #[error(transparent)]
    Hashing(#[from] HashingUnavailable),
}

impl From<argon2::Error> for PasswordError {
    fn from(error: argon2::Error) -> Self {
        Self::Argon2(error)
    }
}

impl From<argon2::password_hash::Error> for PasswordError {
    fn from(error: argon2::password_hash::Error) -> Self {
        Self::Phc(error)
    }
}

/// OWASP: argon2id, 19 MiB, 2 iterations, 1 lane.
fn owasp_params() -> Params {
    Params::new(19 * 1024, 2, 1, None).expect("constant, valid argon2 parameters")
}

/// Hashes `password` into a PHC string, on a hashing thread, in `lane`
/// (a registration's or a password change's: see [`hashing::Lane`]).
pub async fn hash(password: String, lane: Lane) -> Result<String, PasswordError> {
    hashing::run(lane, move |memory| hash_with(&password, memory)).await?
}

/// Hashes `password` on the calling thread: tens of milliseconds of CPU, so
/// never on an actix worker (the benchmark tools call it directly). Like
/// the hashing threads, each calling thread keeps its argon2 memory, so
/// that timing this measures what the server does.
pub fn hash_blocking(password: &str) -> Result<String, PasswordError> {
    thread_local! {
        static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
    }
    MEMORY.with_borrow_mut(|memory| hash_with(password, memory))
}

fn hash_with(password: &str, memory: &mut Vec<Block>) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(PasswordError::Salt)?;
    let params = owasp_params();
    let mut output = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(
            password.as_bytes(),
            &salt,
            &mut output,
            blocks(memory, params.block_count()),
        )?;
    let salt = SaltString::encode_b64(&salt)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&output)?),
    };
    Ok(phc.to_string())
}

/// Whether `password` hashes to `stored` (a PHC string), with the stored
/// parameters, on the calling thread.
fn verify_with(
    password: &str,
    stored: &str,
    memory: &mut Vec<Block>,
) -> Result<bool, PasswordError> {
    let parsed = PasswordHash::new(stored)?;
    let expected = parsed.hash.ok_or(PasswordError::Incomplete("output"))?;
    let params = Params::try_from(&parsed)?;
    let algorithm = Algorithm::try_from(parsed.algorithm)?;
    let version = match parsed.version {
        Some(number) => Version::try_from(number)?,
        None => Version::default(),
    };
    let mut salt = [0u8; 64];
    let salt = parsed
        .salt
        .ok_or(PasswordError::Incomplete("salt"))?
        .decode_b64(&mut salt)?;
    let mut output = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params.clone()).hash_password_into_with_memory(
        password.as_bytes(),
        salt,
        &mut output,
        blocks(memory, params.block_count()),
    )?;
    // Output's equality is constant-time.
    Ok(Output::new(&output)? == expected)
}

/// `count` blocks of argon2 working memory, reusing what `memory` holds.
fn blocks(memory: &mut Vec<Block>, count: usize) -> &mut [Block] {
    memory.resize(count, Block::default());
    memory
}

/// The account when `password` matches its hash; with `None` (no such
/// account) it does the same work against a dummy hash and answers `None`,
/// so that the time taken does not tell whether the email is registered.
pub async fn verify(password: String, user: Option<User>) -> Result<Option<User>, PasswordError> {
    hashing::run(Lane::SignIn, move |memory| {
        let stored = user
            .as_ref()
            .map_or(DUMMY_HASH, |u| u.password_hash.as_str());
        let matches = verify_with(&password, stored, memory)?;
        Ok(user.filter(|_| matches))
    })
    .await?
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    use super::*;

    /// The reused-memory path must stay interchangeable with the argon2
    /// crate's own PHC hashing, which wrote the hashes already stored
    /// (the seeded demo account's among them).
    #[test]
    fn hashes_match_the_argon2_crate_both_ways() {
        let ours = hash_blocking("correct horse").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, owasp_params());
        assert!(reference.verify_password(b"correct horse", &parsed).is_ok());
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );

        let salt = SaltString::encode_b64(b"sixteen byte salt").unwrap();
        let theirs = reference
            .hash_password(b"battery staple", &salt)
            .unwrap()
            .to_string();
        let mut memory = Vec::new();
        assert!(verify_with("battery staple", &theirs, &mut memory).unwrap());
        assert!(!verify_with("battery stapler", &theirs, &mut memory).unwrap());
        assert!(verify_with("x", "not a phc string", &mut memory).is_err());
    }
}
