//! The seeded demo account is known by its id: a production boot warns
//! about it whatever its email has become.

use diesel_async::RunQueryDsl;

use crate::support::database::TestDatabase;
use crate::support::process::run_conduit;

#[tokio::test]
async fn a_production_boot_warns_about_the_demo_account_under_a_new_email() {
    let db = TestDatabase::create().await;
    let (run, output) = run_conduit(Some(&db.url()), &["migrate", "run"], &[]).await;
    assert!(run.success(), "{output}");
    // What the account itself can do through PUT /api/user while demo
    // logins are allowed.
    diesel::sql_query(
        "UPDATE users SET email = 'not-the-demo@example.org' WHERE email = 'demo@example.com'",
    )
    .execute(&mut db.connect().await)
    .await
    .expect("rename the demo account");

    crate::boot::assert_production_boot_warns_of_the_demo_account(&db).await;
}
