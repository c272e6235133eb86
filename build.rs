//! `embed_migrations!` reads migrations/ at compile time; without the
//! rerun line, an edit to a .sql file alone would not rebuild the binary.
//! Also embeds the SHA-256 of every up.sql by name, so the binary can
//! record what it applies and notice a migration edited after it ran
//! without hashing them all again at every boot, and the indexes each one
//! builds concurrently. Refuses two migrations with one version: diesel
//! would silently run only one of them.

use std::fmt::Write as _;
use std::path::Path;

use sha2::{Digest, Sha256};

#[path = "src/db/migrations/source_rules.rs"]
mod source_rules;

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=src/db/migrations/source_rules.rs");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().join("up.sql").is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let shared = source_rules::shared_versions(&names);
    if !shared.is_empty() {
        for (version, first, second) in &shared {
            eprintln!(
                "error: {}",
                source_rules::shared_version_message(version, first, second)
            );
        }
        std::process::exit(1);
    }
    let mut source = String::from(
        "/// The SHA-256 (hex) of every embedded migration's up.sql, by migration name.\n",
    );
    let mut indexes = String::from(
        "/// The indexes each embedded migration builds concurrently, by migration name.\n",
    );
    source.push_str("pub const EMBEDDED_UP_SQL_SHA256: &[(&str, &str)] = &[\n");
    indexes.push_str("pub const EMBEDDED_CONCURRENT_INDEXES: &[(&str, &[&str])] = &[\n");
    for name in &names {
        let path = root.join(name).join("up.sql");
        println!("cargo:rerun-if-changed={}", path.display());
        let sql = std::fs::read(&path).expect("read an up.sql");
        let digest: String = Sha256::digest(&sql)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        writeln!(source, "    ({name:?}, {digest:?}),").expect("writing to a String");
        let built = source_rules::concurrent_index_names(&String::from_utf8_lossy(&sql));
        if !built.is_empty() {
            writeln!(indexes, "    ({name:?}, &{built:?}),").expect("writing to a String");
        }
    }
    source.push_str("];\n");
    indexes.push_str("];\n");
    source.push_str(&indexes);
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let out = Path::new(&out_dir).join("embedded_up_sql_sha256.rs");
    std::fs::write(out, source).expect("write embedded_up_sql_sha256.rs");
    embed_up_sql_text(&root, &names, Path::new(&out_dir));
    write_expected_schema_fingerprint();
}

/// The SHA-256 of the expected schema's lines (sorted bytewise, joined by
/// newlines), computed the way the drift check's one query computes the
/// live schema's: a boot compares the two and reads nothing else when
/// they are equal.
fn write_expected_schema_fingerprint() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/db/migrations/expected_schema.txt");
    println!("cargo:rerun-if-changed={}", path.display());
    let text = std::fs::read_to_string(&path).expect("read src/db/migrations/expected_schema.txt");
    let mut lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    lines.sort_unstable();
    let digest: String = Sha256::digest(lines.join("\n").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("expected_schema_sha256.rs");
    std::fs::write(
        out,
        format!(
            "/// The SHA-256 of the expected schema's sorted lines.\npub const EXPECTED_SCHEMA_SHA256: &str = {digest:?};\n"
        ),
    )
    .expect("write expected_schema_sha256.rs");
}

/// The text of every up.sql by migration name, for the readers that need
/// the statements themselves (`migrate plan`, the contract marker), which
/// diesel's embedded migrations do not expose.
fn embed_up_sql_text(root: &Path, names: &[String], out_dir: &Path) {
    let mut source = String::from("/// Every embedded migration's up.sql, by migration name.\n");
    source.push_str("pub const EMBEDDED_UP_SQL: &[(&str, &str)] = &[\n");
    for name in names {
        let path = root.join(name).join("up.sql");
        writeln!(
            source,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .expect("writing to a String");
    }
    source.push_str("];\n");
    std::fs::write(out_dir.join("embedded_up_sql.rs"), source).expect("write embedded_up_sql.rs");
}
