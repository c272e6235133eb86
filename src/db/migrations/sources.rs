//! The SQL text of each migration of a set, which diesel's migration
//! traits do not expose: embedded at build time (build.rs), or read from
//! the directory.

use diesel::migration::MigrationSource;

use super::{MigrationError, MigrationSet};

include!(concat!(env!("OUT_DIR"), "/embedded_up_sql.rs"));

/// One migration with the SQL it applies.
#[derive(Debug, Clone)]
pub struct MigrationText {
    /// The directory name, e.g. `011_add_score`.
    pub name: String,
    pub version: String,
    pub up_sql: String,
    /// False when its metadata.toml says `run_in_transaction = false`.
    pub run_in_transaction: bool,
}

impl MigrationSet {
    /// Every migration of the set with its up.sql, oldest first.
    pub fn texts(&self) -> Result<Vec<MigrationText>, MigrationError> {
        let mut texts = self
            .migrations()
            .map_err(MigrationError::Source)?
            .iter()
            .map(|m| {
                let name = m.name().to_string();
                Ok(MigrationText {
                    up_sql: self.up_sql(&name)?,
                    version: m.name().version().to_string(),
                    run_in_transaction: m.metadata().run_in_transaction(),
                    name,
                })
            })
            .collect::<Result<Vec<_>, MigrationError>>()?;
        texts.sort_by(|a, b| a.version.cmp(&b.version));
        Ok(texts)
    }

    /// The up.sql of the migration named `name`.
    pub fn up_sql(&self, name: &str) -> Result<String, MigrationError> {
        match self {
            MigrationSet::Embedded => EMBEDDED_UP_SQL
                .iter()
                .find(|(embedded, _)| *embedded == name)
                .map(|(_, sql)| (*sql).to_owned())
                .ok_or_else(|| MigrationError::SourceFile {
                    name: name.to_owned(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "not embedded in this binary",
                    ),
                }),
            MigrationSet::Directory(dir) => std::fs::read_to_string(dir.join(name).join("up.sql"))
                .map_err(|source| MigrationError::SourceFile {
                    name: name.to_owned(),
                    source,
                }),
        }
    }
}
