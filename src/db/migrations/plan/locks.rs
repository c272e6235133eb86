//! PostgreSQL's table-level lock modes, which of them conflict, and the
//! levels its documentation gives for statements that cannot be measured
//! inside a transaction.

/// The eight table lock modes, weakest first, as `pg_locks.mode` names them.
const MODES: [&str; 8] = [
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
];

/// For each mode (by index in `MODES`), the modes it conflicts with, as a
/// bit set: PostgreSQL's "Conflicting Lock Modes" table.
const CONFLICTS: [u8; 8] = [
    0b1000_0000,
    0b1100_0000,
    0b1111_0000,
    0b1111_1000,
    0b1110_1100,
    0b1111_1100,
    0b1111_1110,
    0b1111_1111,
];

fn index(mode: &str) -> Option<usize> {
    MODES.iter().position(|m| *m == mode)
}

/// Whether a session holding `held` makes one asking for `wanted` wait.
pub fn conflict(wanted: &str, held: &str) -> bool {
    match (index(wanted), index(held)) {
        (Some(w), Some(h)) => CONFLICTS[w] & (1 << h) != 0,
        _ => false,
    }
}

/// The strongest of `modes` (by PostgreSQL's order of lock modes).
pub fn strongest<'a>(modes: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    modes.max_by_key(|m| index(m))
}

/// Whether `mode` makes writers (INSERT, UPDATE, DELETE) wait.
pub fn blocks_writes(mode: &str) -> bool {
    conflict(mode, "RowExclusiveLock")
}

/// The lock a statement that cannot run in a transaction block takes, as
/// the documentation gives it, and on what: `CREATE INDEX CONCURRENTLY`,
/// `REINDEX ... CONCURRENTLY`, `DROP INDEX CONCURRENTLY`, plain `VACUUM`.
pub fn documented(words: &[String]) -> Option<(String, &'static str)> {
    let first = words.first()?.as_str();
    let concurrently = words.iter().any(|w| w == "concurrently");
    let relation = match first {
        "create" if concurrently => after(words, "on")?,
        "drop" | "reindex" if concurrently => words.last()?.clone(),
        "vacuum" if !words.iter().any(|w| w == "full") => words.last()?.clone(),
        _ => return None,
    };
    Some((relation, "ShareUpdateExclusiveLock"))
}

/// The name after keyword `word` (skipping ONLY), unquoted.
fn after(words: &[String], word: &str) -> Option<String> {
    let at = words.iter().position(|w| w == word)?;
    let name = words[at + 1..].iter().find(|w| *w != "only")?;
    Some(name.trim_matches('"').trim_end_matches(';').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::migrations::plan::split::words;

    #[test]
    fn the_conflict_table_is_postgresqls() {
        assert!(conflict("AccessExclusiveLock", "AccessShareLock"));
        assert!(!conflict("ShareLock", "ShareLock"));
        assert!(conflict("ShareLock", "RowExclusiveLock"));
        assert!(!conflict("ShareUpdateExclusiveLock", "RowExclusiveLock"));
        assert!(conflict(
            "ShareUpdateExclusiveLock",
            "ShareUpdateExclusiveLock"
        ));
        assert!(blocks_writes("ShareLock"));
        assert!(!blocks_writes("ShareUpdateExclusiveLock"));
        // Symmetric, as the documentation's table is.
        for a in MODES {
            for b in MODES {
                assert_eq!(conflict(a, b), conflict(b, a), "{a} {b}");
            }
        }
    }

    #[test]
    fn concurrent_index_builds_get_their_documented_lock() {
        let cic = words("CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON ONLY articles(tag)");
        assert_eq!(
            documented(&cic),
            Some(("articles".to_owned(), "ShareUpdateExclusiveLock"))
        );
        assert_eq!(documented(&words("CREATE INDEX i ON articles(tag)")), None);
    }
}
