//! The seeded demo account is known by its id: a production boot warns
//! about it whatever its email has become.

use std::time::Duration;

use diesel_async::RunQueryDsl;

use crate::support::database::TestDatabase;
use crate::support::process::{run_conduit, ConduitProcess};

const BOOT: Duration = Duration::from_secs(90);

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

    let mut production = ConduitProcess::spawn(&db.url(), &[], &[("CONDUIT_ENV", "production")]);
    production.wait_ready(BOOT).await.unwrap();
    let warning = production
        .wait_for_event(
            |e| {
                e["level"] == "WARN"
                    && e["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("demo account"))
            },
            Duration::from_secs(10),
        )
        .await;

    let warning = warning.unwrap_or_else(|| panic!("no warning:\n{}", production.output()));
    assert!(
        warning["message"]
            .as_str()
            .unwrap()
            .contains("refused in production"),
        "{warning}"
    );
}
