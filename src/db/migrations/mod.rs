//! Migrations: the set the binary carries (or a directory of them, for
//! tests), what the database holds compared with it, and what can go wrong.
//! `runner` applies and reverts them under a PostgreSQL advisory lock so
//! that any number of replicas can boot at once (diesel's harness takes no
//! lock of its own; see `lock`); `at_boot` is what a booting server does.

mod at_boot;
mod checksums;
pub mod contract;
mod drift;
mod error;
mod guards;
mod invalid_indexes;
mod lock;
mod lock_waits;
pub mod plan;
mod runner;
mod scratch;
mod source_rules;
mod sources;
mod state;
mod verify;

use std::path::PathBuf;

use diesel::migration::{Migration, MigrationSource};
use diesel::pg::Pg;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::AsyncPgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, FileBasedMigrations};

pub use at_boot::{bring_schema_up_to_date, BootMigrations, DriftCheck, SchemaAtBoot};
pub use checksums::modified_migrations;
pub use drift::Difference;
pub use error::{FailedStatement, MigrationError};
pub use guards::{refuse_when_strict, report_schema_problems};
pub use runner::{
    redo_last, repair_checksums, revert_last, run_pending, run_pending_keeping_connection,
    AppliedMigration, LockLimits, RepairedChecksum, RunOptions, RunReport,
};
pub use scratch::{ScratchDatabase, ScratchError};
pub use sources::MigrationText;
pub use state::{schema_state, SchemaState};
pub use verify::{baseline, verify, Baseline};

/// The SQL of `migrations/`, compiled into the binary.
pub const EMBEDDED_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

type BlockingPgConnection = AsyncConnectionWrapper<AsyncPgConnection>;

diesel::table! {
    /// diesel's bookkeeping table, declared here because `schema.rs`
    /// leaves it out.
    __diesel_schema_migrations (version) {
        version -> VarChar,
        run_on -> Timestamp,
    }
}

/// Which migrations to apply: the embedded ones, or (for tests of
/// migration sets) a directory read at run time.
#[derive(Debug, Clone)]
pub enum MigrationSet {
    Embedded,
    Directory(PathBuf),
}

impl MigrationSource<Pg> for MigrationSet {
    fn migrations(&self) -> diesel::migration::Result<Vec<Box<dyn Migration<Pg>>>> {
        match self {
            MigrationSet::Embedded => {
                <EmbeddedMigrations as MigrationSource<Pg>>::migrations(&EMBEDDED_MIGRATIONS)
            }
            MigrationSet::Directory(dir) => FileBasedMigrations::from_path(dir)?.migrations(),
        }
    }
}

/// One migration the binary knows about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownMigration {
    pub version: String,
    pub name: String,
}

impl MigrationSet {
    /// Every migration of the set, oldest first. A directory with two
    /// migrations of one version is refused (the embedded set is checked
    /// by build.rs): diesel would run only one of them.
    pub fn catalog(&self) -> Result<Vec<KnownMigration>, MigrationError> {
        if let MigrationSet::Directory(dir) = self {
            let names: Vec<String> = std::fs::read_dir(dir)
                .map_err(|e| MigrationError::Source(Box::new(e)))?
                .filter_map(Result::ok)
                .filter(|e| e.path().join("up.sql").is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            if let Some((version, first, second)) =
                source_rules::shared_versions(&names).into_iter().next()
            {
                return Err(MigrationError::SharedVersion(
                    source_rules::shared_version_message(&version, &first, &second),
                ));
            }
        }
        let mut known: Vec<KnownMigration> = self
            .migrations()
            .map_err(MigrationError::Source)?
            .iter()
            .map(|m| KnownMigration {
                version: m.name().version().to_string(),
                name: m.name().to_string(),
            })
            .collect();
        known.sort_by(|a, b| a.version.cmp(&b.version));
        Ok(known)
    }
}
