//! A `CREATE INDEX CONCURRENTLY` that fails (a duplicate under a unique
//! index, a lock timeout, a crash) leaves its index behind, INVALID, and a
//! rerun of the same `CREATE` then fails on the name. Before a
//! non-transactional migration runs, the INVALID indexes among those its
//! own SQL builds are dropped; valid ones, and any index it does not
//! build, are left alone.

use diesel::sql_types::{Bool, Text};
use diesel::QueryableByName;

use super::{checksums, source_rules, BlockingPgConnection, MigrationError, MigrationSet};

#[derive(QueryableByName)]
struct IndexState {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Bool)]
    valid: bool,
}

impl MigrationSet {
    /// The indexes migration `name` builds concurrently, as its SQL names them.
    fn concurrent_indexes(&self, name: &str) -> Result<Vec<String>, MigrationError> {
        match self {
            MigrationSet::Embedded => Ok(checksums::EMBEDDED_CONCURRENT_INDEXES
                .iter()
                .find(|(migration, _)| *migration == name)
                .map(|(_, indexes)| indexes.iter().map(|i| (*i).to_owned()).collect())
                .unwrap_or_default()),
            MigrationSet::Directory(dir) => {
                let sql =
                    std::fs::read_to_string(dir.join(name).join("up.sql")).map_err(|source| {
                        MigrationError::SourceFile {
                            name: name.to_owned(),
                            source,
                        }
                    })?;
                Ok(source_rules::concurrent_index_names(&sql))
            }
        }
    }
}

/// Drops the INVALID indexes a failed run of `migration` left behind.
pub(super) fn drop_left_behind(
    conn: &mut BlockingPgConnection,
    set: &MigrationSet,
    migration: &str,
) -> Result<(), MigrationError> {
    use diesel::connection::SimpleConnection;
    use diesel::RunQueryDsl;

    for index in set.concurrent_indexes(migration)? {
        let found = diesel::sql_query(
            "SELECT c.oid::regclass::text AS name, i.indisvalid AS valid \
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE c.oid = to_regclass($1)",
        )
        .bind::<Text, _>(&index)
        .load::<IndexState>(conn)?;
        for state in found.into_iter().filter(|state| !state.valid) {
            // Concurrently: writes to the table go on meanwhile. The name
            // is the catalog's own rendering, quoted where it must be.
            conn.batch_execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {}", state.name))?;
            tracing::warn!(
                migration,
                index = %state.name,
                "dropped the INVALID index {} that a failed run of {migration} left behind, so that it can build it again",
                state.name
            );
        }
    }
    Ok(())
}
