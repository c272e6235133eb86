//! Drift: the live schema compared with the schema the applied migrations
//! make. Both are described the same way (`describe_schema.sql`: one line
//! per table, column, constraint, index, trigger, function, sequence and
//! extension). For the embedded migrations, the expected description is
//! checked in (`expected_schema.txt`, written by `make expected-schema`
//! and checked by `make schema-check`), and build.rs embeds its SHA-256:
//! an up-to-date database costs one query whose answer is one hash; only
//! when the hashes differ are both descriptions compared line by line.
//! Any other set of migrations (or an older version of this one) is
//! described from a scratch database they are applied to (`scratch`).

use std::collections::BTreeMap;

use diesel::sql_types::Text;
use diesel::QueryableByName;
use diesel_async::AsyncPgConnection;

use super::MigrationError;

include!(concat!(env!("OUT_DIR"), "/expected_schema_sha256.rs"));

/// The description of the schema the embedded migrations make.
const EXPECTED_SCHEMA: &str = include_str!("expected_schema.txt");
const DESCRIBE_SCHEMA: &str = include_str!("describe_schema.sql");
/// How many differences a boot logs one by one.
const SHOWN_AT_BOOT: usize = 20;

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = Text)]
    line: String,
}

#[derive(QueryableByName)]
struct Fingerprint {
    #[diesel(sql_type = Text)]
    sha256: String,
}

fn describe_sql() -> &'static str {
    DESCRIBE_SCHEMA.trim_end().trim_end_matches(';')
}

/// The live schema, one line per object, sorted bytewise.
pub async fn describe(conn: &mut AsyncPgConnection) -> Result<Vec<String>, MigrationError> {
    use diesel_async::RunQueryDsl;

    Ok(diesel::sql_query(describe_sql())
        .load::<Line>(conn)
        .await?
        .into_iter()
        .map(|l| l.line)
        .collect())
}

/// The SHA-256 of [`describe`]'s lines joined by newlines, computed by
/// the server: one short answer instead of the whole description.
async fn fingerprint(conn: &mut AsyncPgConnection) -> Result<String, MigrationError> {
    use diesel_async::RunQueryDsl;

    let query = format!(
        "SELECT encode(sha256(convert_to(coalesce(string_agg(line, E'\\n' ORDER BY line COLLATE \"C\"), ''), 'UTF8')), 'hex') AS sha256 \
         FROM ({}) described",
        describe_sql()
    );
    Ok(diesel::sql_query(query)
        .get_result::<Fingerprint>(conn)
        .await?
        .sha256)
}

/// The lines of the schema the embedded migrations make.
pub fn expected_embedded() -> Vec<String> {
    EXPECTED_SCHEMA
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The differences between the live schema and the one the embedded
/// migrations make, all applied: one hash compared when there are none.
pub async fn drift_from_embedded(
    conn: &mut AsyncPgConnection,
) -> Result<Vec<Difference>, MigrationError> {
    if fingerprint(conn).await? == EXPECTED_SCHEMA_SHA256 {
        return Ok(Vec::new());
    }
    Ok(compare(&expected_embedded(), &describe(conn).await?))
}

/// One object that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// In the database, made by no migration.
    Added { object: String, found: String },
    /// Made by a migration, not in the database.
    Missing { object: String, expected: String },
    /// In both, defined differently.
    Changed {
        object: String,
        expected: String,
        found: String,
    },
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let detail = |definition: &str| {
            if definition.is_empty() {
                String::new()
            } else {
                format!(": {definition}")
            }
        };
        match self {
            Difference::Added { object, found } => {
                write!(f, "added {object}{} (no migration makes it)", detail(found))
            }
            Difference::Missing { object, expected } => {
                write!(
                    f,
                    "missing {object}{} (a migration makes it)",
                    detail(expected)
                )
            }
            Difference::Changed {
                object,
                expected,
                found,
            } => write!(
                f,
                "changed {object}: the migrations make `{expected}`, the database has `{found}`"
            ),
        }
    }
}

/// "column public.users.bio" and its definition, from a described line.
fn split(line: &str) -> (String, String) {
    let mut parts = line.splitn(3, '\t');
    let kind = parts.next().unwrap_or_default();
    let name = parts.next().unwrap_or_default();
    let definition = parts.next().unwrap_or_default();
    (format!("{kind} {name}"), definition.to_owned())
}

/// Every object that differs between two descriptions, in object order.
pub fn compare(expected: &[String], live: &[String]) -> Vec<Difference> {
    let expected: BTreeMap<String, String> = expected.iter().map(|l| split(l)).collect();
    let live: BTreeMap<String, String> = live.iter().map(|l| split(l)).collect();
    let mut differences = Vec::new();
    for (object, definition) in &expected {
        match live.get(object) {
            None => differences.push(Difference::Missing {
                object: object.clone(),
                expected: definition.clone(),
            }),
            Some(found) if found != definition => differences.push(Difference::Changed {
                object: object.clone(),
                expected: definition.clone(),
                found: found.clone(),
            }),
            Some(_) => {}
        }
    }
    for (object, found) in &live {
        if !expected.contains_key(object) {
            differences.push(Difference::Added {
                object: object.clone(),
                found: found.clone(),
            });
        }
    }
    differences
}

/// Logs each difference on a line of its own (up to a cap), each beginning
/// `schema drift:`; under CONDUIT_STRICT_SCHEMA, refuses instead.
pub fn report_drift(differences: &[Difference], strict: bool) -> Result<(), MigrationError> {
    if differences.is_empty() {
        return Ok(());
    }
    for difference in differences.iter().take(SHOWN_AT_BOOT) {
        tracing::warn!("schema drift: {difference}");
    }
    if differences.len() > SHOWN_AT_BOOT {
        tracing::warn!(
            "schema drift: {} more differences (`conduit migrate verify` lists every one)",
            differences.len() - SHOWN_AT_BOOT
        );
    }
    if strict {
        return Err(MigrationError::SchemaMismatch(format!(
            "the live schema differs from what the applied migrations make in {} place(s), first: {} \
             (`conduit migrate verify` lists every one)",
            differences.len(),
            differences[0]
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_are_added_missing_or_changed_by_object() {
        let expected = [
            "column\tpublic.users.bio\ttext NULL",
            "index\tpublic.users_pkey\tCREATE UNIQUE INDEX users_pkey ON public.users USING btree (id)",
            "table\tpublic.users\t",
        ]
        .map(String::from);
        let live = [
            "column\tpublic.users.bio\tcharacter varying(10) NULL",
            "index\tpublic.users_bio_idx\tCREATE INDEX users_bio_idx ON public.users USING btree (bio)",
            "table\tpublic.users\t",
        ]
        .map(String::from);

        let shown: Vec<String> = compare(&expected, &live)
            .iter()
            .map(ToString::to_string)
            .collect();

        assert_eq!(
            shown,
            [
                "changed column public.users.bio: the migrations make `text NULL`, the database has `character varying(10) NULL`",
                "missing index public.users_pkey: CREATE UNIQUE INDEX users_pkey ON public.users USING btree (id) (a migration makes it)",
                "added index public.users_bio_idx: CREATE INDEX users_bio_idx ON public.users USING btree (bio) (no migration makes it)",
            ]
        );
        assert!(compare(&expected, &expected).is_empty());
    }
}
