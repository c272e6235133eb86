//! What anyone who can reach the server learns about its database: no
//! more than "unavailable".

use diesel_async::RunQueryDsl;

use crate::helpers::spawn_app;
use crate::support::database::{connect, server_url};

/// With its database gone, `/ready` answers 503 with a generic reason,
/// never the database's own message ("database \"…\" does not exist",
/// "password authentication failed for user \"…\"").
#[tokio::test]
async fn ready_does_not_show_the_database_error_text() {
    let app = spawn_app().await;
    let mut admin = connect(&server_url()).await;
    diesel::sql_query(format!("DROP DATABASE \"{}\" WITH (FORCE)", app.db.name))
        .execute(&mut admin)
        .await
        .expect("drop the app's database");

    for _ in 0..3 {
        let reply = app.get("/ready", None).await;
        assert_eq!(reply.status, 503, "{:?}", reply.body);
        assert_eq!(
            reply.body["reason"], "database unavailable",
            "{:?}",
            reply.body
        );
        let text = reply.body.to_string();
        assert!(!text.contains(&app.db.name), "{text}");
        assert!(!text.contains("does not exist"), "{text}");
    }
}
