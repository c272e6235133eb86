//! The one syntax of every duration setting, and the bounds they are
//! checked against when clap reads them.

use std::time::Duration;

/// The longest session or window a setting may ask for: far beyond any
/// real use, and far from the overflow of a timestamp plus it.
pub const LONGEST: Duration = Duration::from_secs(10 * 366 * 24 * 3600);
/// PostgreSQL takes its timeouts in whole milliseconds, as an int4.
pub const LONGEST_PG_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);
pub const MILLISECOND: Duration = Duration::from_millis(1);
pub const SECOND: Duration = Duration::from_secs(1);

/// Every duration setting's syntax: a number with a unit (`500ms`, `5s`,
/// `15m`, `12h`, `30d`), or a bare number of seconds, which is what the
/// settings once named `..._SECS` took.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|error| format!("{value:?}: {error}"));
    }
    humantime::parse_duration(value)
        .map_err(|error| format!("{value:?} is not a duration like 5s, 15m, 12h or 30d: {error}"))
}

/// A value parser for a duration from `least` to `most`: values that parse
/// but cannot work (a session that ends as it starts, a timeout PostgreSQL
/// reads as "none") are refused when clap reads them, naming the setting.
pub fn between(
    least: Duration,
    most: Duration,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |value| {
        let duration = parse_duration(value)?;
        if duration < least || duration > most {
            return Err(format!(
                "must be between {} and {} (got {})",
                shown(least),
                shown(most),
                shown(duration)
            ));
        }
        Ok(duration)
    }
}

pub fn shown(duration: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_or_bare_seconds() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-5").is_err());
    }

    #[test]
    fn a_duration_outside_its_bounds_is_refused_with_them() {
        let parse = between(SECOND, Duration::from_secs(60));
        assert_eq!(parse("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(
            parse("0s"),
            Err("must be between 1s and 1m (got 0s)".to_owned())
        );
    }
}
