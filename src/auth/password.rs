//! Passwords: argon2id with the OWASP parameters, always off the actix
//! workers (hashing takes tens of milliseconds of CPU).

use std::sync::OnceLock;

use actix_web::web;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::error::{AppError, AppResult};

/// At most one hash per core at a time. Each hash holds 19 MiB and a core
/// for its whole run: more at once only adds memory and context switches
/// (measured with `make bench`: 32 concurrent logins without this limit
/// reached 2.7 GiB of RSS and a fifth of the hashing throughput). Waiting
/// here, rather than in the blocking pool's queue, also means a request
/// whose client went away stops waiting and never hashes at all.
fn hashing_slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS
        .get_or_init(|| Semaphore::new(std::thread::available_parallelism().map_or(1, |n| n.get())))
}

/// Runs one hash or verification on a blocking thread, once a slot is free.
async fn with_slot<T: Send + 'static>(
    work: impl FnOnce() -> AppResult<T> + Send + 'static,
) -> AppResult<T> {
    let _slot = hashing_slots()
        .acquire()
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    web::block(work).await?
}

/// Accepted password lengths, in characters (NIST 800-63B: at least 8, and
/// long passphrases allowed).
pub const MIN_LENGTH: usize = 8;
pub const MAX_LENGTH: usize = 128;

/// A hash of the same cost, verified (and its result ignored) when the
/// account does not exist, so that a login takes as long either way.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$0THj0R0Mamu6Kw8ile6lTg$eubsFb1L6bN961MpRiqjp0LByYCBjXbx6/4gOao0rmA";

/// OWASP: argon2id, 19 MiB, 2 iterations, 1 lane.
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("constant, valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes `password` into a PHC string, on a blocking thread.
pub async fn hash(password: String) -> AppResult<String> {
    with_slot(move || hash_blocking(&password)).await
}

/// Hashes `password` on the calling thread: tens of milliseconds of CPU, so
/// never on an actix worker (the benchmark tools call it directly).
pub fn hash_blocking(password: &str) -> AppResult<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| AppError::Internal(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AppError::Internal(e.to_string()))?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AppError::Internal(e.to_string()))
}

/// True when `password` matches `stored`; with `None` (no such account) it
/// does the same work and answers false.
pub async fn verify(password: String, stored: Option<String>) -> AppResult<bool> {
    with_slot(move || {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| DUMMY_HASH.to_owned());
        let parsed = PasswordHash::new(&stored).map_err(|e| AppError::Internal(e.to_string()))?;
        let matches = hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(known && matches)
    })
    .await
}
