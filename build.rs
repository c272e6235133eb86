//! `embed_migrations!` reads migrations/ at compile time; without the
//! rerun line, an edit to a .sql file alone would not rebuild the binary.
//! Also embeds every up.sql by name, so the binary can checksum what it
//! applies and notice a migration edited after it ran.

use std::fmt::Write as _;
use std::path::Path;

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
    let mut source = String::from("/// Every embedded migration's up.sql, by migration name.\n");
    source.push_str("pub const EMBEDDED_UP_SQL: &[(&str, &str)] = &[\n");
    for name in &names {
        let path = root.join(name).join("up.sql");
        println!("cargo:rerun-if-changed={}", path.display());
        writeln!(
            source,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .expect("writing to a String");
    }
    source.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("embedded_up_sql.rs");
    std::fs::write(out, source).expect("write embedded_up_sql.rs");
}
