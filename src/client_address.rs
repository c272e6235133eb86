//! The client's address: the TCP peer, unless the peer is a proxy the
//! operator trusts (CONDUIT_TRUSTED_PROXIES), in which case the address
//! that proxy reports in `X-Forwarded-For` or `Forwarded` (one of them: a
//! request that carries both is keyed by the proxy's own address).
//!
//! Any client can write those headers, so they are read only from trusted
//! peers, and only as far as the chain stays trusted: walking the list
//! from the right (the entry our own proxy appended), the first address
//! that is not a trusted proxy is the client.

use std::net::IpAddr;

use actix_web::http::header::HeaderMap;
use ipnet::IpNet;

#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// CIDRs (`10.0.0.0/8`) or single addresses (`192.0.2.7`).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        entries
            .iter()
            .map(|entry| entry.as_ref().trim())
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                let net = entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!("{entry:?} is not a CIDR (10.0.0.0/8) or an IP address")
                    })?;
                // Peers are compared in their canonical form (an
                // IPv4-mapped ::ffff:a.b.c.d is a.b.c.d): so are entries.
                Ok(canonical_net(net))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Whether `address` is one of the proxies the operator trusts.
    pub fn trusts(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.0.iter().any(|net| net.contains(&address))
    }

    /// The client's address for a request from `peer` with `headers`.
    pub fn client_address(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = canonical(peer?);
        if !self.trusts(peer) {
            return Some(peer);
        }
        let mut chain = forwarded_chain(headers);
        // Rightmost first: the nearest hop, written by our own proxy.
        chain.reverse();
        let mut client = peer;
        for hop in chain {
            let Some(hop) = hop else {
                // An entry we cannot read: stop trusting the chain there.
                break;
            };
            client = canonical(hop);
            if !self.trusts(client) {
                break;
            }
        }
        Some(client)
    }
}

/// An IPv4 address mapped into IPv6 (`::ffff:10.0.0.1`) is that IPv4 address.
/// An IPv4-mapped range (`::ffff:10.0.0.0/104`) as the IPv4 range it maps.
fn canonical_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.network().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(net, IpNet::V4),
            None => net,
        },
        net => net,
    }
}

fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The forwarded-for chain, leftmost (the original client) first: from
/// every `X-Forwarded-For` header, else from every `Forwarded` header's
/// `for=` parameters. `None` marks an entry that is not an address
/// (`unknown`, an obfuscated name, garbage).
///
/// A value that is not UTF-8 is read with its bad bytes replaced, never
/// dropped: the entry they are in is unreadable and stops the walk, while
/// the entries our proxy appended to the same line (nginx's
/// `$proxy_add_x_forwarded_for`) still count. Dropping it would hand the
/// walk to whatever else the client wrote. When both headers are present,
/// a client wrote at least one and which one our proxy wrote is unknown:
/// neither is believed, and the chain is a single unreadable entry (the
/// client is the proxy itself).
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .collect()
    };
    let x_forwarded_for = values("x-forwarded-for");
    let forwarded = values("forwarded");
    if !x_forwarded_for.is_empty() && !forwarded.is_empty() {
        return vec![None];
    }
    if !x_forwarded_for.is_empty() {
        return x_forwarded_for
            .iter()
            .flat_map(|value| value.split(','))
            .map(|entry| parse_node(entry.trim()))
            .collect();
    }
    forwarded
        .iter()
        .flat_map(|value| value.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (key, value) = pair.trim().split_once('=')?;
                key.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| parse_node(value.trim().trim_matches('"')))
            })
        })
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(address) = node.parse::<IpAddr>() {
        return Some(address);
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (host, port) = node.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let none = TrustedProxies::default();
        let forged = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(
            none.client_address(ip("198.51.100.1"), &forged),
            ip("198.51.100.1")
        );
        let some = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        assert_eq!(
            some.client_address(ip("198.51.100.1"), &forged),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn a_trusted_chain_is_walked_from_the_right_to_the_first_untrusted_hop() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8", "192.0.2.7"]).unwrap();
        // The client forged the leftmost entry; our proxies appended the rest.
        let chain = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.9, 192.0.2.7")]);
        assert_eq!(
            proxies.client_address(ip("10.1.2.3"), &chain),
            ip("203.0.113.9")
        );
        // Several headers are one list.
        let split = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(
            proxies.client_address(ip("10.1.2.3"), &split),
            ip("203.0.113.9")
        );
        // No header: the proxy itself is the client.
        assert_eq!(
            proxies.client_address(ip("10.1.2.3"), &HeaderMap::new()),
            ip("10.1.2.3")
        );
        // Garbage stops the walk at the last trusted hop.
        let garbage = headers(&[("x-forwarded-for", "203.0.113.9, nonsense")]);
        assert_eq!(
            proxies.client_address(ip("10.1.2.3"), &garbage),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn forwarded_is_read_when_x_forwarded_for_is_absent() {
        let proxies = TrustedProxies::parse(&["127.0.0.1"]).unwrap();
        let forwarded = headers(&[(
            "forwarded",
            r#"for="[2001:db8::1]:4711";proto=https, for=198.51.100.2:80"#,
        )]);
        assert_eq!(
            proxies.client_address(ip("127.0.0.1"), &forwarded),
            ip("198.51.100.2")
        );
        let v6 = headers(&[("forwarded", r#"for="[2001:db8::1]:4711""#)]);
        assert_eq!(
            proxies.client_address(ip("::ffff:127.0.0.1"), &v6),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_spoil_only_their_own_entry() {
        let proxies = TrustedProxies::parse(&["127.0.0.1"]).unwrap();
        // The client's bytes, then what an appending proxy (nginx) added.
        let mut appended = HeaderMap::new();
        appended.append(
            HeaderName::from_static("x-forwarded-for"),
            HeaderValue::from_bytes(b"\xff, 198.51.100.77").unwrap(),
        );
        assert_eq!(
            proxies.client_address(ip("127.0.0.1"), &appended),
            ip("198.51.100.77")
        );
        // Not a reason to read a header the client wrote instead.
        appended.append(
            HeaderName::from_static("forwarded"),
            HeaderValue::from_static("for=192.0.2.200"),
        );
        assert_eq!(
            proxies.client_address(ip("127.0.0.1"), &appended),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn with_both_headers_neither_is_believed() {
        let proxies = TrustedProxies::parse(&["127.0.0.1"]).unwrap();
        // The proxy writes Forwarded; the client wrote X-Forwarded-For.
        let both = headers(&[
            ("x-forwarded-for", "192.0.2.201"),
            ("forwarded", "for=198.51.100.79"),
        ]);
        assert_eq!(
            proxies.client_address(ip("127.0.0.1"), &both),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn entries_that_are_not_cidrs_are_refused() {
        assert!(TrustedProxies::parse(&["10.0.0.0/33"]).is_err());
        assert!(TrustedProxies::parse(&["proxy.internal"]).is_err());
        assert!(TrustedProxies::parse(&["", " 10.0.0.0/8 ", "::1"]).is_ok());
    }

    #[test]
    fn an_ipv4_mapped_proxy_entry_matches_its_ipv4_peer() {
        let proxies = TrustedProxies::parse(&["::ffff:127.0.0.1", "::ffff:10.0.0.0/104"]).unwrap();
        let forwarded = headers(&[("x-forwarded-for", "203.0.113.9")]);
        for peer in ["127.0.0.1", "::ffff:127.0.0.1", "10.1.2.3"] {
            assert_eq!(
                proxies.client_address(ip(peer), &forwarded),
                ip("203.0.113.9"),
                "{peer}"
            );
        }
    }
}
