//! The throttle of an account: failures block it from that address only,
//! an attacker elsewhere cannot keep its owner out, every spelling of its
//! email shares its budget, and its own concurrent logins are not refused.

use serde_json::json;

use crate::helpers::spawn_app;
use crate::throttle::{behind_a_proxy, hammer, login_from};

#[tokio::test]
async fn failed_logins_are_throttled_per_account_and_address_but_successes_never() {
    let strict = crate::helpers::spawn_app_with(&["--login-max-failures", "3"]).await;
    strict.register("target").await;
    strict.register("neighbour").await;
    let relaxed = spawn_app().await;
    relaxed.register("regular").await;

    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            strict
                .login("target@example.org", "wrong-password")
                .await
                .status
                .as_u16(),
        );
    }
    let blocked = strict
        .client
        .post(format!("{}/api/users/login", strict.address))
        .json(&json!({"user": {"email": "target@example.org", "password": "password123"}}))
        .send()
        .await
        .unwrap();
    let retry_after: u64 = blocked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let blocked_status = blocked.status();
    let blocked_body: serde_json::Value = blocked.json().await.unwrap();
    let same_address = strict.login("neighbour@example.org", "password123").await;
    let mut successes = Vec::new();
    for _ in 0..15 {
        successes.push(
            relaxed
                .login("regular@example.org", "password123")
                .await
                .status
                .as_u16(),
        );
    }

    assert_eq!(statuses, [401, 401, 401]);
    assert_eq!(blocked_status, 429, "blocked, even with the right password");
    assert!(retry_after > 0 && retry_after <= 15 * 60, "{retry_after}");
    assert_eq!(
        blocked_body["errors"]["credentials"][0],
        "too many failed attempts; retry later"
    );
    // An address has ten times an account's budget: one client's failures
    // for one account do not block everyone behind the same address.
    assert_eq!(
        same_address.status, 200,
        "another account from the same address"
    );
    assert!(successes.iter().all(|s| *s == 200), "{successes:?}");
}

/// Per (account, address) the budget is strict: after it, that address is
/// refused for that account until the window ends, right password or not.
/// But the account is not locked: its owner, from an address of their
/// own, gets in at once.
#[tokio::test]
async fn failures_block_the_account_from_that_address_only() {
    let app = behind_a_proxy(&["--login-max-failures", "3"]).await;
    app.register("owner").await;
    for _ in 0..3 {
        let (status, _) =
            login_from(&app, "203.0.113.66", "owner@example.org", "wrong-password").await;
        assert_eq!(status, 401);
    }
    let (status, retry_after) =
        login_from(&app, "203.0.113.66", "owner@example.org", "password123").await;
    assert_eq!(status, 429, "strict, even with the right password");
    let retry_after = retry_after.expect("Retry-After");
    assert!(
        retry_after > 60 && retry_after <= 15 * 60,
        "until the window ends, not a backoff: {retry_after}"
    );

    let (status, _) = login_from(&app, "198.51.100.7", "owner@example.org", "password123").await;
    assert_eq!(status, 200, "the owner from their own address");
}

/// An attacker guessing from many addresses at once cannot keep the owner
/// out: from a fresh address the owner gets in at once; after a typo they
/// wait one backoff (at most CONDUIT_LOGIN_MAX_BACKOFF), even while the
/// attacker keeps guessing; the attacker's addresses are each held to the
/// strict budget.
#[tokio::test]
async fn an_attacker_elsewhere_cannot_keep_the_owner_out() {
    let app = behind_a_proxy(&["--login-max-failures", "3", "--login-max-backoff", "2s"]).await;
    app.register("owner").await;
    let attackers: Vec<String> = (1..=8).map(|i| format!("203.0.113.{i}")).collect();

    let statuses = hammer(&app, &attackers, "owner@example.org", 6).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    assert!(
        checked <= attackers.len() * 3,
        "at most the strict budget per address: {checked} of {statuses:?}"
    );

    let (status, _) = login_from(&app, "198.51.100.7", "owner@example.org", "password123").await;
    assert_eq!(status, 200, "the owner, first try from their address");

    // A typo from another address of the owner's: then one backoff.
    let (status, _) = login_from(&app, "198.51.100.8", "owner@example.org", "typo-password").await;
    assert_eq!(status, 401);
    let (status, retry_after) =
        login_from(&app, "198.51.100.8", "owner@example.org", "password123").await;
    let wait = match status {
        200 => 0,
        429 => retry_after.expect("Retry-After"),
        other => panic!("answered {other}"),
    };
    assert!(wait <= 2, "at most CONDUIT_LOGIN_MAX_BACKOFF: {wait}");
    if wait > 0 {
        // The attacker keeps guessing meanwhile, from every address.
        let guesses = hammer(&app, &attackers, "owner@example.org", 2);
        let sleep = tokio::time::sleep(std::time::Duration::from_millis(wait * 1000 + 100));
        let (statuses, ()) = tokio::join!(guesses, sleep);
        assert!(
            statuses.iter().all(|s| *s == 401 || *s == 429),
            "{statuses:?}"
        );
        let (status, _) =
            login_from(&app, "198.51.100.8", "owner@example.org", "password123").await;
        assert_eq!(status, 200, "after one Retry-After");
    }
}

/// Every spelling of an email that finds the account counts against its
/// one budget: PostgreSQL's `lower()` maps `İ` (U+0130) to `i`, Rust's
/// `to_lowercase` does not, so keys built from the email itself gave the
/// variant a budget of its own while it logged into the same account.
#[tokio::test]
async fn every_spelling_of_an_email_shares_the_accounts_budget() {
    let app = behind_a_proxy(&["--login-max-failures", "3"]).await;
    app.register("alice").await;
    let variant = "al\u{130}ce@example.org";
    let (status, _) = login_from(&app, "198.51.100.9", variant, "password123").await;
    if status != 200 {
        // This database's collation does not map İ to i: the variant names
        // nobody, and there is nothing to share.
        assert_eq!(status, 401);
        return;
    }
    for _ in 0..3 {
        let (status, _) =
            login_from(&app, "203.0.113.5", "alice@example.org", "wrong-password").await;
        assert_eq!(status, 401);
    }
    let (status, _) = login_from(&app, "203.0.113.5", variant, "wrong-password").await;
    assert_eq!(
        status, 429,
        "the variant is the same account from the same address"
    );
    let (status, _) = login_from(&app, "203.0.113.5", variant, "password123").await;
    assert_eq!(status, 429);
}

/// Many logins of one account from one address at once, right and wrong,
/// within the budget: none is answered 500 or 429. Counting them took the
/// same rows' locks in different orders (deadlocks answered 500), and an
/// attempt that waited on a row's lock compared its own start time with
/// a later attempt's (429 with `Retry-After: 1`, far below the budget).
#[tokio::test]
async fn concurrent_logins_of_one_account_get_neither_500_nor_429() {
    let app = behind_a_proxy(&["--login-max-failures", "1000", "--hash-queue-limit", "1000"]).await;
    app.register("shared").await;
    let attempts = (0..90).map(|i| {
        let app = &app;
        async move {
            let password = if i % 3 == 0 {
                "wrong-password"
            } else {
                "password123"
            };
            login_from(app, "203.0.113.9", "shared@example.org", password)
                .await
                .0
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    // 503 is the test server's small pool (4) giving up under this burst on
    // a busy host: overload, answered as such. A deadlock is a 500; a
    // false refusal a 429.
    assert!(
        statuses.iter().all(|s| [200, 401, 503].contains(s)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&200) && statuses.contains(&401),
        "{statuses:?}"
    );
}

/// Logins the (account, address) pair refuses check no password: they
/// do not spend the address's budget, which everyone behind the address
/// (a NAT, an office) shares. An account retrying on its own, or its
/// logins in flight, must not slow down its neighbours.
#[tokio::test]
async fn logins_refused_for_one_account_do_not_spend_the_shared_address() {
    let app = behind_a_proxy(&["--login-max-failures", "3"]).await;
    app.register("retrier").await;
    app.register("neighbour").await;
    let shared = "203.0.113.70";
    for _ in 0..3 {
        let (status, _) = login_from(&app, shared, "retrier@example.org", "wrong-password").await;
        assert_eq!(status, 401);
    }
    // Ten times the account's budget is the address's (30 here).
    for _ in 0..40 {
        let (status, _) = login_from(&app, shared, "retrier@example.org", "password123").await;
        assert_eq!(status, 429);
    }

    let (status, retry_after) =
        login_from(&app, shared, "neighbour@example.org", "password123").await;

    assert_eq!(status, 200, "the neighbour waited {retry_after:?}");
}
