//! Settings that were renamed, read under their old names too so that an
//! upgrade breaks no deployment: a flag or the new name wins.

/// (old name, new name) of each renamed environment variable. The old
/// flags are clap aliases of the new ones.
const RENAMED: [(&str, &str); 3] = [
    ("CONDUIT_DB_WAIT_SECS", "CONDUIT_DB_WAIT"),
    (
        "CONDUIT_MIGRATION_LOCK_WAIT_SECS",
        "CONDUIT_MIGRATION_LOCK_WAIT",
    ),
    ("CONDUIT_SHUTDOWN_TIMEOUT_SECS", "CONDUIT_SHUTDOWN_TIMEOUT"),
];

/// Copies each old name's value to its new name where the new one is not
/// set, before clap reads the environment; returns the old names it read,
/// for a warning once logging is up. Called at the start of `main`, while
/// the process has one thread (the environment is not thread-safe).
pub fn adopt_old_names() -> Vec<&'static str> {
    let mut adopted = Vec::new();
    for (old, new) in RENAMED {
        if let Some(value) = std::env::var_os(old) {
            if std::env::var_os(new).is_none() {
                std::env::set_var(new, value);
            }
            adopted.push(old);
        }
    }
    adopted
}

/// The warning for an old name still in use.
pub fn rename_hint(old: &str) -> String {
    let new = RENAMED
        .iter()
        .find(|(o, _)| *o == old)
        .map_or(old, |(_, n)| *n);
    format!("{old} is the old name of {new}: it is still read when {new} is not set, but rename it")
}
