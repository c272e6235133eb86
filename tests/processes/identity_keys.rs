//! Account keys (migration 012) are computed in Rust: whoever applies the
//! migration must compute them, or names compared with them meet empty
//! keys. A release job's `migrate run` and an operator's `migrate redo`
//! are such appliers, with no server booting after them.

use crate::support::database::{select_texts, TestDatabase};
use crate::support::process::run_conduit;

const DEMO_KEY: &str =
    "SELECT coalesce(username_folded, 'none') AS value FROM users WHERE username = 'demo'";

#[tokio::test]
async fn a_release_jobs_migrate_run_keys_the_accounts_it_migrates() {
    let db = TestDatabase::create().await;

    let (status, output) = run_conduit(Some(&db.url()), &["migrate", "run"], &[]).await;

    assert!(status.success(), "{output}");
    let mut conn = db.connect().await;
    assert_eq!(
        select_texts(&mut conn, DEMO_KEY).await,
        ["demo"],
        "{output}"
    );
}

#[tokio::test]
async fn a_redo_of_the_keys_migration_keys_the_accounts_again() {
    let db = TestDatabase::create().await;
    let (status, output) = run_conduit(Some(&db.url()), &["migrate", "run"], &[]).await;
    assert!(status.success(), "{output}");

    let (status, output) = run_conduit(Some(&db.url()), &["migrate", "redo"], &[]).await;

    assert!(status.success(), "{output}");
    let mut conn = db.connect().await;
    assert_eq!(
        select_texts(&mut conn, DEMO_KEY).await,
        ["demo"],
        "{output}"
    );
}
