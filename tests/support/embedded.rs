//! What the binary embeds, read from the library: tests compare with it
//! rather than list versions that the next migration makes stale.

use conduit::db::migrations::MigrationSet;

/// Every embedded migration's version, oldest first.
pub fn versions() -> Vec<String> {
    MigrationSet::Embedded
        .catalog()
        .expect("the embedded migrations")
        .into_iter()
        .map(|migration| migration.version)
        .collect()
}

/// The newest embedded migration's version.
pub fn newest() -> String {
    versions().pop().expect("at least one migration")
}
