//! A concurrent index a failed run left INVALID is dropped by the rerun;
//! a valid index of the same name never is.

use diesel_async::SimpleAsyncConnection;

use crate::guard_rails::{applied_versions, migrate};
use crate::support::database::{select_texts, TestDatabase};
use crate::support::process::fixture;

// ---- 3. A failed concurrent index ----

#[tokio::test]
async fn a_rerun_drops_the_invalid_index_its_failed_run_left_and_nothing_else() {
    let db = TestDatabase::create().await;
    let dir = fixture("migrations_invalid_index");
    let (ran, output) = migrate(&db, &["run", "--migrations-dir", &dir], &[]).await;
    assert!(!ran, "duplicates make the unique index fail: {output}");
    let mut conn = db.connect().await;
    let validity =
        "SELECT format('%s=%s', c.relname, i.indisvalid::text) AS value FROM pg_index i \
                    JOIN pg_class c ON c.oid = i.indexrelid \
                    WHERE c.relname LIKE 'widgets\\_%\\_key' ORDER BY 1";
    assert_eq!(
        select_texts(&mut conn, validity).await,
        ["widgets_name_key=false"]
    );
    // Someone else's failed index, which the migration does not build.
    let other = conn
        .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY widgets_other_key ON widgets (name)")
        .await;
    assert!(other.is_err());
    conn.batch_execute(
        "DELETE FROM widgets WHERE id = (SELECT max(id) FROM widgets WHERE name = 'spanner')",
    )
    .await
    .unwrap();

    let (ran, output) = migrate(&db, &["run", "--migrations-dir", &dir], &[]).await;

    eprintln!("{output}");
    assert!(ran, "{output}");
    assert!(
        output.contains(
            "dropped the INVALID index widgets_name_key that a failed run of 002_unique_widget_names left behind"
        ),
        "{output}"
    );
    assert_eq!(
        select_texts(&mut conn, validity).await,
        ["widgets_name_key=true", "widgets_other_key=false"]
    );
    assert_eq!(applied_versions(&db).await, ["001", "002"]);
}

#[tokio::test]
async fn a_valid_index_of_the_same_name_is_never_dropped() {
    let db = TestDatabase::create().await;
    let dir = fixture("migrations_invalid_index");
    let (ran, _) = migrate(&db, &["run", "--migrations-dir", &dir], &[]).await;
    assert!(!ran);
    let mut conn = db.connect().await;
    // By hand: the failed index replaced by a valid, non-unique one.
    conn.batch_execute(
        "DROP INDEX widgets_name_key; CREATE INDEX widgets_name_key ON widgets (name)",
    )
    .await
    .unwrap();

    let (ran, output) = migrate(&db, &["run", "--migrations-dir", &dir], &[]).await;

    assert!(!ran, "{output}");
    assert!(output.contains("already exists"), "{output}");
    assert!(!output.contains("dropped the INVALID index"), "{output}");
    let kept = select_texts(
        &mut conn,
        "SELECT indisvalid::text AS value FROM pg_index WHERE indexrelid = 'widgets_name_key'::regclass",
    )
    .await;
    assert_eq!(kept, ["true"]);
}
