//! The throttle of an address: a budget with a growing Retry-After,
//! guesses across accounts and parallel ones counted, registrations
//! throttled, ended windows deleted, X-Forwarded-For only from a trusted proxy.

use serde_json::json;

use crate::helpers::{spawn_app, TestApp};
use crate::hostile::is_error_shape;
use crate::support::database::select_texts;
use crate::throttle::{behind_a_proxy, login_from, register_from};

/// Parallel guesses cannot outrun the login throttle: an attempt counts
/// from the moment it starts, not after its (slow) hash, so of 60 wrong
/// passwords sent at once exactly the budget (10 by default) is checked.
#[tokio::test]
async fn parallel_wrong_passwords_are_throttled_while_in_flight() {
    let app = spawn_app().await;
    app.register("victim").await;
    let guesses = (0..60).map(|i| {
        let client = app.client.clone();
        let url = format!("{}/api/users/login", app.address);
        async move {
            client
                .post(url)
                .json(&json!({"user": {"email": "victim@example.org", "password": format!("guess-{i}-wrong")}}))
                .send()
                .await
                .expect("answered")
                .status()
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let count = |code: u16| statuses.iter().filter(|s| **s == code).count();
    assert_eq!((count(401), count(429)), (10, 50), "statuses: {statuses:?}");
}

/// Behind a trusted proxy every client has its own login budget (the
/// address the proxy reports); from an untrusted peer the same header is
/// ignored, so a client cannot escape its budget by writing it.
#[tokio::test]
async fn forwarded_for_counts_only_from_a_trusted_proxy() {
    async fn fail_logins(app: &TestApp, forwarded_for: &str, count: usize, tag: &str) -> Vec<u16> {
        let mut statuses = Vec::new();
        for i in 0..count {
            let status = app
                .client
                .post(format!("{}/api/users/login", app.address))
                .header("X-Forwarded-For", forwarded_for)
                .json(&json!({"user": {"email": format!("nobody-{tag}-{i}@example.org"), "password": "wrong-password"}}))
                .send()
                .await
                .expect("answered")
                .status()
                .as_u16();
            statuses.push(status);
        }
        statuses
    }

    // 2 failures per account, so 20 per address.
    let behind_proxy = crate::helpers::spawn_app_with(&[
        "--trusted-proxies",
        "127.0.0.0/8",
        "--login-max-failures",
        "2",
    ])
    .await;
    assert_eq!(
        fail_logins(&behind_proxy, "203.0.113.1", 20, "a").await,
        [401; 20]
    );
    assert_eq!(
        fail_logins(&behind_proxy, "203.0.113.1", 1, "b").await,
        [429]
    );
    assert_eq!(
        fail_logins(&behind_proxy, "203.0.113.2", 1, "c").await,
        [401],
        "another client behind the same proxy is not blocked"
    );

    let direct = crate::helpers::spawn_app_with(&["--login-max-failures", "2"]).await;
    assert_eq!(
        fail_logins(&direct, "203.0.113.1", 20, "a").await,
        [401; 20]
    );
    assert_eq!(
        fail_logins(&direct, "203.0.113.2", 1, "c").await,
        [429],
        "a forged header from an untrusted peer changes nothing"
    );
}

/// Beyond an address's budget (ten times an account's), the address is
/// not locked out either: it may try again after a delay that doubles
/// with each attempt, up to CONDUIT_LOGIN_MAX_BACKOFF.
///
/// Each round sends two attempts at once: one is admitted (and starts the
/// next delay when it is counted, before it hashes), the other finds that
/// delay running. Sent one after the other, the second would meet a delay
/// already spent by the first's hashing on a busy host.
#[tokio::test]
async fn an_address_beyond_its_budget_waits_a_growing_retry_after() {
    let app = behind_a_proxy(&["--login-max-failures", "1", "--login-max-backoff", "2s"]).await;
    let address = "203.0.113.50";
    let mut accounts = (0..).map(|i| format!("nobody-{i}@example.org"));
    let mut next = || accounts.next().expect("endless");
    for _ in 0..9 {
        assert_eq!(
            login_from(&app, address, &next(), "wrong-password").await.0,
            401
        );
    }
    let mut waits = Vec::new();
    for round in 0..4 {
        let (first, second) = (next(), next());
        let (a, b) = tokio::join!(
            login_from(&app, address, &first, "wrong-password"),
            login_from(&app, address, &second, "wrong-password"),
        );
        let mut statuses = [a.0, b.0];
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            [401, 429],
            "round {round}: one let through, one told to wait"
        );
        let refused = if a.0 == 429 { a } else { b };
        let wait = refused.1.expect("Retry-After");
        waits.push(wait);
        tokio::time::sleep(std::time::Duration::from_millis(wait * 1000 + 100)).await;
    }
    assert_eq!(waits[0], 1, "the first wait: {waits:?}");
    assert!(
        waits.iter().all(|w| (1..=2).contains(w)),
        "capped: {waits:?}"
    );
    assert!(waits.contains(&2), "doubled: {waits:?}");
    assert_eq!(
        login_from(&app, "203.0.113.51", &next(), "wrong-password")
            .await
            .0,
        401,
        "another address is not slowed"
    );
}

/// Wrong passwords sent at once from one address to many accounts are
/// counted while in flight against the address too: of 40 parallel
/// guesses with an address budget of 20 (2 per account), at most the 20
/// and the one after the first second's backoff are checked.
#[tokio::test]
async fn parallel_guesses_across_accounts_are_counted_per_address() {
    let app = behind_a_proxy(&["--login-max-failures", "2"]).await;
    let guesses = (0..40).map(|i| {
        let app = &app;
        async move {
            login_from(
                app,
                "203.0.113.77",
                &format!("spray-{i}@example.org"),
                "wrong-password",
            )
            .await
            .0
        }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let count = |code: u16| statuses.iter().filter(|s| **s == code).count();
    assert_eq!(count(401) + count(429), 40, "{statuses:?}");
    assert!(
        (20..=21).contains(&count(401)),
        "the budget, and at most one more after a second: {statuses:?}"
    );
}

/// Registrations are throttled per address (CONDUIT_REGISTRATIONS_PER_ADDRESS,
/// then backoff): a flood from one address cannot create accounts without
/// bound, nor probe which emails have accounts (a taken name counts too),
/// and other addresses are not slowed.
#[tokio::test]
async fn registrations_are_throttled_per_address() {
    let app = behind_a_proxy(&["--registrations-per-address", "3"]).await;
    for i in 0..3 {
        let (status, _, body) = register_from(&app, "203.0.113.9", &format!("flood{i}")).await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, retry_after, body) = register_from(&app, "203.0.113.9", "flood3").await;
    assert_eq!(status, 429, "{body}");
    assert!(
        retry_after.is_some_and(|s| (1..=60).contains(&s)),
        "{retry_after:?}"
    );
    assert!(is_error_shape(&body), "{body}");
    assert_eq!(
        body["errors"]["user"][0],
        "too many registrations from this address; retry later"
    );
    assert_eq!(
        register_from(&app, "203.0.113.9", "flood0").await.0,
        429,
        "a taken name is no way around the throttle"
    );
    assert_eq!(
        register_from(&app, "198.51.100.7", "flood0").await.0,
        409,
        "a taken name from an address within its budget"
    );
    assert_eq!(
        register_from(&app, "198.51.100.9", "elsewhere").await.0,
        201
    );
}

/// Counters whose window has ended are deleted by the server itself (soon
/// after boot, then periodically, in batches); live ones are kept, so a restart
/// does not reset a budget.
#[tokio::test]
async fn ended_throttle_windows_are_deleted_and_live_ones_kept() {
    use diesel_async::RunQueryDsl;
    let app = crate::helpers::spawn_app_with(&["--login-max-failures", "2"]).await;
    app.register("target").await;
    for _ in 0..2 {
        assert_eq!(
            app.login("target@example.org", "wrong-password")
                .await
                .status,
            401
        );
    }
    let db = app.stop().await;
    let mut conn = db.connect().await;
    diesel::sql_query(
        "INSERT INTO throttle_counters (key, attempts, window_ends_at, next_at) \
         SELECT 'login-address:192.0.2.' || i, 5, now() - interval '1 minute', now() \
         FROM generate_series(1, 2500) AS i",
    )
    .execute(&mut conn)
    .await
    .expect("ended windows");
    const ENDED: &str = "SELECT count(*)::text AS value FROM throttle_counters \
                         WHERE window_ends_at <= now()";
    assert_eq!(select_texts(&mut conn, ENDED).await, ["2500"]);

    let restarted = crate::helpers::spawn_app_on(db, &["--login-max-failures", "2"]).await;
    // The first round runs about a second after boot, off /ready's path.
    assert!(
        crate::helpers::texts_become(&mut conn, ENDED, &["0"]).await,
        "all purged, in batches"
    );
    assert_eq!(
        restarted
            .login("target@example.org", "password123")
            .await
            .status,
        429,
        "the live count survived the restart"
    );
}
