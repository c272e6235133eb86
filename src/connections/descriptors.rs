//! The connection limit when CONDUIT_MAX_CONNECTIONS is not set: what the
//! process's descriptor limit leaves for clients.

use super::REFUSALS_IN_FLIGHT_PER_WORKER;

/// Descriptors kept for what is not a client connection: the listener,
/// the runtimes' pollers, standard streams, the migration connection,
/// files the process opens. The pool's connections and a few per worker
/// come on top.
const RESERVED_DESCRIPTORS: u64 = 32;
const RESERVED_PER_WORKER: u64 = 4 + REFUSALS_IN_FLIGHT_PER_WORKER as u64;
/// Below this the server could not do its work; the limit is not lowered further.
const FEWEST_CONNECTIONS: u64 = 8;

/// The connection limit when none is set: the descriptor limit (raised
/// to its hard limit first, as far as the operating system allows) less
/// the pool's connections and a reserve.
pub fn default_max_connections(pool_size: u32, workers: usize) -> usize {
    let reserve =
        RESERVED_DESCRIPTORS + RESERVED_PER_WORKER * workers as u64 + u64::from(pool_size);
    let limit = descriptor_limit();
    let room = limit.saturating_sub(reserve).max(FEWEST_CONNECTIONS);
    usize::try_from(room).unwrap_or(usize::MAX)
}

#[cfg(target_os = "linux")]
fn descriptor_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return u64::from(u32::MAX);
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

#[cfg(not(target_os = "linux"))]
fn descriptor_limit() -> u64 {
    u64::from(u32::MAX)
}
