//! What makes a measured statement risky on a live table, and the safe
//! way to get the same schema.

use super::{locks, split, Risk, StatementPlan};

const ADD_COLUMN_DEFAULT: &str = "add the column without a default (or with a constant one), \
     backfill it in batches, then SET DEFAULT";
const CHANGE_TYPE: &str = "add a column of the new type, backfill it in batches, move reads \
     and writes to it, then drop the old one in a contract migration";
const REWRITE: &str = "rewrite in batches into a new table or column instead, or run it in a \
     maintenance window";
const INDEX: &str = "CREATE INDEX CONCURRENTLY, alone in a migration of its own with \
     run_in_transaction = false in its metadata.toml";
const NOT_NULL: &str = "ADD CONSTRAINT ... CHECK (column IS NOT NULL) NOT VALID, VALIDATE \
     CONSTRAINT in a later migration, then SET NOT NULL (no scan once a valid check exists) \
     and drop the check";
const VALIDATE: &str = "ADD CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT in a later \
     migration (it scans under SHARE UPDATE EXCLUSIVE, which lets reads and writes go on)";

/// The risks of `statement` on tables the live database has.
pub(super) fn assess(statement: &StatementPlan) -> Vec<Risk> {
    let live = |relation: &str| {
        statement
            .tables
            .iter()
            .any(|t| t.relation == relation && t.exists)
    };
    let words = split::words(&statement.sql);
    let has = |word: &str| words.iter().any(|w| w == word);
    let mut risks = Vec::new();
    for table in statement.rewrites.iter().filter(|t| live(t)) {
        let safe_alternative = if has("add") && has("default") {
            ADD_COLUMN_DEFAULT
        } else if has("type") {
            CHANGE_TYPE
        } else {
            REWRITE
        };
        risks.push(Risk {
            relation: table.clone(),
            kind: "rewrite",
            message: format!(
                "rewrites {table} under an ACCESS EXCLUSIVE lock: no reads or writes until it ends"
            ),
            safe_alternative,
        });
    }
    let index_build = words.first().is_some_and(|w| w == "create") && has("index");
    for scan in statement.scans.iter().filter(|s| live(&s.relation)) {
        if !locks::blocks_writes(&scan.mode) {
            continue;
        }
        let (kind, message, safe_alternative) = if index_build {
            (
                "blocking_index_build",
                format!(
                    "builds an index on {} under {}: writes wait until it ends",
                    scan.relation, scan.mode
                ),
                INDEX,
            )
        } else if has("not") && has("null") && has("set") {
            (
                "scan_under_lock",
                format!(
                    "scans {} under {} to check NOT NULL",
                    scan.relation, scan.mode
                ),
                NOT_NULL,
            )
        } else {
            (
                "scan_under_lock",
                format!(
                    "scans {} under {} to validate a constraint",
                    scan.relation, scan.mode
                ),
                VALIDATE,
            )
        };
        risks.push(Risk {
            relation: scan.relation.clone(),
            kind,
            message,
            safe_alternative,
        });
    }
    risks
}
