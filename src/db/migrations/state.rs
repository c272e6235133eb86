//! What the database holds compared with what the binary knows, read
//! without writing anything.

use diesel::{ExpressionMethods, QueryDsl, QueryResult};
use diesel_async::AsyncPgConnection;
use serde::Serialize;

use super::{__diesel_schema_migrations, KnownMigration};
use crate::db::functions::to_regclass;

/// What the database holds compared with what the binary knows.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SchemaState {
    /// Applied versions, oldest first.
    pub applied: Vec<String>,
    /// Known versions not applied yet, oldest first.
    pub pending: Vec<String>,
    /// Applied versions this binary does not know (a newer binary ran).
    pub unknown: Vec<String>,
    /// Pending versions that sort below the newest applied one (merged
    /// from a branch after a later migration ran).
    pub out_of_order: Vec<String>,
}

impl SchemaState {
    /// The newest applied version, if any.
    pub fn version(&self) -> Option<&str> {
        self.applied.last().map(String::as_str)
    }
}

/// Reads the applied versions without writing anything: safe for `/ready`
/// and `migrate status` on a database nobody migrated yet.
pub async fn schema_state(
    conn: &AsyncPgConnection,
    known: &[KnownMigration],
) -> QueryResult<SchemaState> {
    use diesel_async::RunQueryDsl;

    // Both statements go out together (diesel-async pipelines futures on a
    // shared connection), so boot and /ready wait for one round trip. The
    // read's error means something only if the table exists.
    let exists = diesel::select(to_regclass("__diesel_schema_migrations").is_not_null())
        .get_result::<bool>(&mut &*conn);
    let versions = __diesel_schema_migrations::table
        .select(__diesel_schema_migrations::version)
        .order(__diesel_schema_migrations::version.asc())
        .load::<String>(&mut &*conn);
    let (exists, versions) = tokio::join!(exists, versions);
    let applied = if exists? { versions? } else { Vec::new() };
    let pending: Vec<String> = known
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .map(|m| m.version.clone())
        .collect();
    let unknown = applied
        .iter()
        .filter(|v| !known.iter().any(|m| &m.version == *v))
        .cloned()
        .collect();
    let out_of_order = out_of_order(&applied, &pending);
    Ok(SchemaState {
        applied,
        pending,
        unknown,
        out_of_order,
    })
}

/// The pending versions below the newest applied one.
fn out_of_order(applied: &[String], pending: &[String]) -> Vec<String> {
    match applied.iter().max() {
        Some(newest) => pending.iter().filter(|v| *v < newest).cloned().collect(),
        None => Vec::new(),
    }
}
