//! Who may hold a connection open. Every descriptor a client holds is one
//! the server cannot use for anyone else, so a connection is admitted only
//! while the process has room (CONDUIT_MAX_CONNECTIONS, by default what
//! the descriptor limit leaves) and while its address holds fewer than
//! CONDUIT_MAX_CONNECTIONS_PER_ADDRESS. Anything else is answered at once
//! and closed: the server refuses new connections instead of running out
//! of descriptors, and the connections it serves go on.
//!
//! The cap per address is on the TCP peer. Behind a trusted proxy every
//! connection comes from the proxy, carrying many clients, and the client
//! it reports is known only per request: so trusted proxies are not
//! capped here (the proxy limits its own clients), only by the total.

mod descriptors;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::client_address::TrustedProxies;

pub use descriptors::default_max_connections;

/// Connections a worker may hold beyond its share of the limit: the ones
/// accepted during a flood that it has yet to refuse. Past that, accepting
/// pauses (the backlog holds the rest) rather than the process running out
/// of descriptors.
const REFUSALS_IN_FLIGHT_PER_WORKER: usize = 8;
/// Limits on what a client's connection may hold on to.
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    /// How long a request's body may take to arrive.
    pub body_timeout: Duration,
    /// 0: no cap per address.
    pub max_per_address: u32,
    /// None: derived from the descriptor limit at start.
    pub max_total: Option<u32>,
}

#[derive(Clone)]
pub struct ConnectionGate {
    inner: Arc<Inner>,
}

struct Inner {
    max_total: usize,
    /// 0: no cap per address.
    max_per_address: usize,
    trusted_proxies: TrustedProxies,
    open: AtomicUsize,
    by_address: Mutex<HashMap<IpAddr, usize>>,
    refusals: RefusalLog,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The process holds as many connections as it has room for.
    Full,
    /// This address holds its share.
    TooManyFromAddress,
}

impl Refusal {
    /// The whole answer, written before the connection is closed: there
    /// is no request to route yet, and none is read.
    pub fn response(self) -> &'static [u8] {
        match self {
            Refusal::Full => {
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
                  retry-after: 1\r\nconnection: close\r\ncontent-length: 61\r\n\r\n\
                  {\"errors\":{\"server\":[\"too many connections; retry shortly\"]}}"
            }
            Refusal::TooManyFromAddress => {
                b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n\
                  retry-after: 1\r\nconnection: close\r\ncontent-length: 73\r\n\r\n\
                  {\"errors\":{\"connection\":[\"too many open connections from this address\"]}}"
            }
        }
    }
}

/// An admitted connection: its place is given back when this is dropped.
pub struct Admitted {
    gate: Arc<Inner>,
    key: Option<IpAddr>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.gate.open.fetch_sub(1, Ordering::AcqRel);
        if let Some(key) = self.key {
            let mut by_address = self.gate.lock();
            if let Some(count) = by_address.get_mut(&key) {
                *count -= 1;
                if *count == 0 {
                    by_address.remove(&key);
                }
            }
        }
    }
}

impl ConnectionGate {
    pub fn new(max_total: usize, max_per_address: usize, trusted_proxies: TrustedProxies) -> Self {
        Self {
            inner: Arc::new(Inner {
                max_total,
                max_per_address,
                trusted_proxies,
                open: AtomicUsize::new(0),
                by_address: Mutex::new(HashMap::new()),
                refusals: RefusalLog::default(),
            }),
        }
    }

    pub fn max_total(&self) -> usize {
        self.inner.max_total
    }

    /// How many connections one of `workers` may hold at once, the ones
    /// it is about to refuse included.
    pub fn per_worker(&self, workers: usize) -> usize {
        self.inner.max_total.div_ceil(workers.max(1)) + REFUSALS_IN_FLIGHT_PER_WORKER
    }

    /// Admits a connection from `peer`, or says why not.
    pub fn admit(&self, peer: Option<IpAddr>) -> Result<Admitted, Refusal> {
        let inner = &self.inner;
        let outcome = self.try_admit(peer);
        if let Err(refusal) = outcome {
            inner.refusals.note(refusal);
        }
        outcome
    }

    fn try_admit(&self, peer: Option<IpAddr>) -> Result<Admitted, Refusal> {
        let inner = &self.inner;
        if inner.open.fetch_add(1, Ordering::AcqRel) >= inner.max_total {
            inner.open.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Full);
        }
        // From here on, dropping `admitted` gives the place back.
        let mut admitted = Admitted {
            gate: inner.clone(),
            key: None,
        };
        let key = peer
            .filter(|_| inner.max_per_address > 0)
            .filter(|peer| !inner.trusted_proxies.trusts(*peer))
            .map(address_key);
        if let Some(key) = key {
            let mut by_address = inner.lock();
            let count = by_address.entry(key).or_insert(0);
            if *count >= inner.max_per_address {
                drop(by_address);
                return Err(Refusal::TooManyFromAddress);
            }
            *count += 1;
            admitted.key = Some(key);
        }
        Ok(admitted)
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        // A panic while counting cannot leave the map half-updated in a
        // way that matters more than refusing every connection would.
        self.by_address
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One client: an IPv4 address, or an IPv6 /64 (what one subscriber gets,
/// so that walking its addresses does not multiply its share).
fn address_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(
                u128::from(v6) & 0xffff_ffff_ffff_ffff_0000_0000_0000_0000,
            )),
        },
        v4 => v4,
    }
}

/// Refusals come in floods: one warning per ten seconds says how many.
#[derive(Default)]
struct RefusalLog {
    last_logged_second: AtomicU64,
    unlogged: AtomicU64,
}

impl RefusalLog {
    const EVERY_SECS: u64 = 10;

    fn note(&self, refusal: Refusal) {
        let unlogged = self.unlogged.fetch_add(1, Ordering::Relaxed) + 1;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let last = self.last_logged_second.load(Ordering::Relaxed);
        if now < last + Self::EVERY_SECS {
            return;
        }
        if self
            .last_logged_second
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.unlogged.fetch_sub(unlogged, Ordering::Relaxed);
            let reason = match refusal {
                Refusal::Full => "the server holds as many connections as it has room for",
                Refusal::TooManyFromAddress => "an address holds its share of connections",
            };
            tracing::warn!(
                refused = unlogged,
                "refused {unlogged} new connection(s) since the last warning; latest: {reason}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn an_address_gets_its_share_and_its_places_back() {
        let gate = ConnectionGate::new(100, 2, TrustedProxies::default());
        let first = gate.admit(ip("192.0.2.1")).unwrap();
        let _second = gate.admit(ip("192.0.2.1")).unwrap();
        assert_eq!(
            gate.admit(ip("192.0.2.1")).err(),
            Some(Refusal::TooManyFromAddress)
        );
        assert!(gate.admit(ip("192.0.2.2")).is_ok());
        drop(first);
        assert!(gate.admit(ip("192.0.2.1")).is_ok());
    }

    #[test]
    fn an_ipv6_client_is_its_slash_64() {
        let gate = ConnectionGate::new(100, 1, TrustedProxies::default());
        let _held = gate.admit(ip("2001:db8:0:1::1")).unwrap();
        assert!(gate.admit(ip("2001:db8:0:1::2")).is_err());
        assert!(gate.admit(ip("2001:db8:0:2::1")).is_ok());
    }

    #[test]
    fn trusted_proxies_are_capped_only_by_the_total() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        let gate = ConnectionGate::new(3, 1, proxies);
        let held: Vec<_> = (0..3)
            .map(|_| gate.admit(ip("10.0.0.1")).unwrap())
            .collect();
        assert_eq!(gate.admit(ip("192.0.2.1")).err(), Some(Refusal::Full));
        drop(held);
        assert!(gate.admit(ip("192.0.2.1")).is_ok());
    }

    #[test]
    fn the_canned_answers_declare_their_length() {
        for refusal in [Refusal::Full, Refusal::TooManyFromAddress] {
            let text = std::str::from_utf8(refusal.response()).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert!(head.contains(&format!("content-length: {}", body.len())));
            serde_json::from_str::<serde_json::Value>(body).unwrap();
        }
    }
}
