//! The `application_name` every connection of a process carries:
//! `conduit@<newest migration version it knows>`, so `pg_stat_activity`
//! tells which releases are connected, and a contract migration can wait
//! until no older release is.

/// What every Conduit connection's application name starts with.
pub const PREFIX: &str = "conduit@";

/// PostgreSQL keeps at most this many bytes of an application name.
const MAX_BYTES: usize = 63;

/// The application name of a process whose newest known migration is
/// `newest_version` (`conduit@none` for a set without migrations). Cut to
/// PostgreSQL's 63 bytes at a character boundary, so what the server shows
/// is what the process sent; diesel keeps versions to 50 characters, so a
/// version is never cut in practice.
pub fn for_version(newest_version: Option<&str>) -> String {
    let mut name = format!("{PREFIX}{}", newest_version.unwrap_or("none"));
    let mut end = name.len().min(MAX_BYTES);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name.truncate(end);
    name
}

/// The migration version in a Conduit application name, `None` for any
/// other client.
pub fn version_of(application_name: &str) -> Option<&str> {
    application_name
        .strip_prefix(PREFIX)
        .filter(|v| !v.is_empty() && *v != "none")
}

/// Whether version `a` comes before version `b`: as numbers when both are
/// digits (so `9` is before `10`), otherwise in diesel's text order.
pub fn is_older(a: &str, b: &str) -> bool {
    let digits = |v: &str| !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit());
    if digits(a) && digits(b) {
        let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
        (a.len(), a) < (b.len(), b)
    } else {
        a < b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_carries_the_newest_version() {
        assert_eq!(for_version(Some("010")), "conduit@010");
        assert_eq!(for_version(None), "conduit@none");
        assert_eq!(version_of("conduit@010"), Some("010"));
        assert_eq!(version_of("conduit@none"), None);
        assert_eq!(version_of("psql"), None);
    }

    #[test]
    fn a_long_name_is_cut_to_63_bytes_at_a_character_boundary() {
        let version = "é".repeat(40);
        let name = for_version(Some(&version));
        assert!(name.len() <= 63, "{}", name.len());
        assert!(name.starts_with("conduit@é"));
    }

    #[test]
    fn versions_compare_as_numbers_when_they_are_digits() {
        assert!(is_older("009", "010"));
        assert!(is_older("9", "10"));
        assert!(!is_older("010", "010"));
        assert!(!is_older("011", "010"));
        assert!(is_older("2024_a", "2024_b"));
    }
}
