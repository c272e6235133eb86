//! Rules read from the migration files themselves, shared by `build.rs`
//! (which refuses a bad set before it is embedded) and the runner (which
//! reads `--migrations-dir` sets at run time): no database involved.

/// The version diesel gives a migration directory: the part of its name
/// before the first `_`, without dashes ("2024-01-02_x" is "20240102").
pub fn version_of_directory(name: &str) -> String {
    name.split('_').next().unwrap_or(name).replace('-', "")
}

/// Pairs of migration directories that share a version, as
/// `(version, first, second)`: diesel keys migrations by version, so one
/// of each pair would silently never run.
pub fn shared_versions(names: &[String]) -> Vec<(String, String, String)> {
    let mut sorted: Vec<(String, &String)> = names
        .iter()
        .map(|name| (version_of_directory(name), name))
        .collect();
    sorted.sort();
    sorted
        .windows(2)
        .filter(|pair| pair[0].0 == pair[1].0)
        .map(|pair| (pair[0].0.clone(), pair[0].1.clone(), pair[1].1.clone()))
        .collect()
}

/// The one line `build.rs` and the runner refuse a set with.
pub fn shared_version_message(version: &str, first: &str, second: &str) -> String {
    format!(
        "migrations {first} and {second} have the same version {version}: give one of them \
         the next free version (rename its directory), since only one of them would ever run"
    )
}

/// The indexes an up.sql builds with `CREATE [UNIQUE] INDEX CONCURRENTLY
/// [IF NOT EXISTS] name`, as written (possibly quoted or schema-qualified).
/// Only these may be dropped when a failed run left them INVALID.
pub fn concurrent_index_names(sql: &str) -> Vec<String> {
    let words: Vec<&str> = sql
        .lines()
        .map(|line| line.split("--").next().unwrap_or(""))
        .flat_map(str::split_whitespace)
        .collect();
    let is = |i: usize, word: &str| words.get(i).is_some_and(|w| w.eq_ignore_ascii_case(word));
    let mut names = Vec::new();
    for start in 0..words.len() {
        if !is(start, "create") {
            continue;
        }
        let mut i = start + 1;
        if is(i, "unique") {
            i += 1;
        }
        if !(is(i, "index") && is(i + 1, "concurrently")) {
            continue;
        }
        i += 2;
        if is(i, "if") && is(i + 1, "not") && is(i + 2, "exists") {
            i += 3;
        }
        // An unnamed index gets a generated name: nothing to match it by.
        if let Some(name) = words.get(i).filter(|_| !is(i, "on")) {
            names.push((*name).to_owned());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_sharing_a_version_are_paired_by_name() {
        let names = [
            "010_tag_link_counts",
            "011_sessions",
            "011_identity",
            "2024-01-02_a",
            "20240102_b",
        ]
        .map(String::from);
        assert_eq!(
            shared_versions(&names),
            [
                (
                    "011".to_owned(),
                    "011_identity".to_owned(),
                    "011_sessions".to_owned()
                ),
                (
                    "20240102".to_owned(),
                    "2024-01-02_a".to_owned(),
                    "20240102_b".to_owned()
                ),
            ]
        );
        assert!(shared_versions(&["001_a".into(), "002_a".into()]).is_empty());
    }

    #[test]
    fn concurrent_index_names_are_read_from_the_sql_and_nothing_else() {
        let sql = "-- CREATE INDEX CONCURRENTLY commented_out ON t (a);\n\
                   CREATE INDEX CONCURRENTLY IF NOT EXISTS widgets_name_idx\n  ON widgets (name);\n\
                   create unique index concurrently \"Quoted\" on t (b);\n\
                   CREATE INDEX plain_idx ON t (c);\n\
                   CREATE INDEX CONCURRENTLY ON t (d);";
        assert_eq!(
            concurrent_index_names(sql),
            ["widgets_name_idx", "\"Quoted\""]
        );
    }
}
