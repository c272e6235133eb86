//! Which page of a list: `limit` and `offset` as the query string gives them.

use super::{field_errors, FieldErrors, Invalid};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

/// The largest `offset` a list accepts. PostgreSQL walks every skipped
/// row, so an unbounded offset lets one request (and ten in parallel, the
/// whole pool) scan a table; deeper pages are reached through filters.
pub const MAX_OFFSET: i64 = 10_000;

impl Page {
    /// `limit` from 1 to 100 (default 20), `offset` from 0 to
    /// [`MAX_OFFSET`] (default 0).
    pub fn parse(limit: Option<&str>, offset: Option<&str>) -> Result<Self, FieldErrors> {
        Self::parse_with_default(limit, offset, 20)
    }

    /// As [`Page::parse`], with `default_limit` when `limit` is absent.
    pub fn parse_with_default(
        limit: Option<&str>,
        offset: Option<&str>,
        default_limit: i64,
    ) -> Result<Self, FieldErrors> {
        let limit = match limit.map(str::parse::<i64>) {
            None => Ok(default_limit),
            Some(Ok(limit)) if (1..=100).contains(&limit) => Ok(limit),
            Some(_) => Err(Invalid::from("must be an integer from 1 to 100")),
        };
        let offset = match offset.map(str::parse::<i64>) {
            None => Ok(0),
            Some(Ok(offset)) if (0..=MAX_OFFSET).contains(&offset) => Ok(offset),
            Some(_) => Err(Invalid::from("must be an integer from 0 to 10000")),
        };
        match (limit, offset) {
            (Ok(limit), Ok(offset)) => Ok(Self { limit, offset }),
            (limit, offset) => Err(field_errors([
                ("limit", limit.err()),
                ("offset", offset.err()),
            ])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_offsets_outside_their_range_are_field_errors() {
        assert_eq!(
            Page::parse(None, None),
            Ok(Page {
                limit: 20,
                offset: 0
            })
        );
        assert_eq!(
            Page::parse(Some("100"), Some("5")),
            Ok(Page {
                limit: 100,
                offset: 5
            })
        );
        for (limit, offset) in [
            ("0", "-1"),
            ("abc", "99999999999999999999999"),
            ("101", "10001"),
        ] {
            let errors = Page::parse(Some(limit), Some(offset)).unwrap_err();
            assert_eq!(
                serde_json::to_value(&errors).unwrap(),
                serde_json::json!({
                    "limit": ["must be an integer from 1 to 100"],
                    "offset": ["must be an integer from 0 to 10000"]
                })
            );
        }
    }
}
