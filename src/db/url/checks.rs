//! What tokio-postgres would read differently from a person, or refuse
//! only when connecting, refused at start.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

use super::UrlError;

/// The `@` that ends the user and password must be the only one, and come
/// before the first `/`, `?` or `#`; no `#` at all (tokio-postgres does not
/// know fragments, and would read one as part of a value).
pub(super) fn check_unambiguous(after_scheme: &str) -> Result<(), UrlError> {
    let authority_end = after_scheme
        .find(['/', '?', '#'])
        .unwrap_or(after_scheme.len());
    let ats = after_scheme.matches('@').count();
    let at_outside = after_scheme[authority_end..].contains('@');
    if ats > 1 || at_outside || after_scheme.contains('#') {
        return Err(UrlError::Ambiguous);
    }
    Ok(())
}

/// What tokio-postgres would refuse only when connecting, refused at start.
pub(super) fn check_hosts(config: &tokio_postgres::Config) -> Result<(), UrlError> {
    let hosts = config.get_hosts().len();
    let hostaddrs = config.get_hostaddrs().len();
    if hosts == 0 && hostaddrs == 0 {
        return Err(UrlError::NoHost);
    }
    if hosts > 0 && hostaddrs > 0 && hosts != hostaddrs {
        return Err(UrlError::HostaddrCount { hosts, hostaddrs });
    }
    let count = hosts.max(hostaddrs);
    let ports = config.get_ports().len();
    if ports > 1 && ports != count {
        return Err(UrlError::PortCount {
            hosts: count,
            ports,
        });
    }
    Ok(())
}

/// A URL component percent-decoded as tokio-postgres decodes it.
pub(super) fn decode(text: &str) -> Cow<'_, str> {
    percent_decode_str(text).decode_utf8_lossy()
}
