//! `embed_migrations!` reads migrations/ at compile time; without the
//! rerun line, an edit to a .sql file alone would not rebuild the binary.
//! Also embeds the SHA-256 of every up.sql by name, so the binary can
//! record what it applies and notice a migration edited after it ran
//! without hashing them all again at every boot.

use std::fmt::Write as _;
use std::path::Path;

use sha2::{Digest, Sha256};

fn main() {
    println!("cargo:rerun-if-changed=migrations");
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
    let mut source = String::from(
        "/// The SHA-256 (hex) of every embedded migration's up.sql, by migration name.\n",
    );
    source.push_str("pub const EMBEDDED_UP_SQL_SHA256: &[(&str, &str)] = &[\n");
    for name in &names {
        let path = root.join(name).join("up.sql");
        println!("cargo:rerun-if-changed={}", path.display());
        let sql = std::fs::read(&path).expect("read an up.sql");
        let digest: String = Sha256::digest(&sql)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        writeln!(source, "    ({name:?}, {digest:?}),").expect("writing to a String");
    }
    source.push_str("];\n");
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let out = Path::new(&out_dir).join("embedded_up_sql_sha256.rs");
    std::fs::write(out, source).expect("write embedded_up_sql_sha256.rs");
    embed_up_sql_text(&root, &names, Path::new(&out_dir));
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
