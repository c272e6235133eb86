// `embed_migrations!` reads migrations/ at compile time; without this, an
// edit to a .sql file alone would not rebuild the binary.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
