//! An attempt that was counted but never checked (the hashing queue was
//! full: 503) takes back its count and the wait it set, on each row it
//! counted on, so that a refusal it did not earn keeps nobody waiting.

use std::time::Duration;

use conduit::db::throttle::{self, Admission, LoginBudgets, LoginKeys};

use crate::helpers::TestDatabase;

const BUDGETS: LoginBudgets = LoginBudgets {
    window: Duration::from_secs(900),
    pair: 10,
    account: 2,
    address: 2,
    max_backoff: Duration::from_secs(60),
};

fn keys(address: &str, account: &str) -> LoginKeys {
    LoginKeys {
        pair: format!("login-pair:{address} {account}"),
        account: format!("login-account:{account}"),
        address: format!("login-address:{address}"),
    }
}

#[tokio::test]
async fn a_login_given_back_leaves_no_wait_for_the_next_one() {
    let db = TestDatabase::migrated().await;
    let mut conn = db.connect().await;
    // Others push the account past its budget: from now on each address
    // waits between its attempts at it.
    for address in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        let admitted = throttle::begin_login(&mut conn, &keys(address, "owner"), &BUDGETS)
            .await
            .unwrap();
        assert_eq!(admitted, Admission::Admitted, "{address}");
    }
    let owner = keys("198.51.100.7", "owner");
    let first = throttle::begin_login(&mut conn, &owner, &BUDGETS)
        .await
        .unwrap();
    assert_eq!(first, Admission::Admitted);
    let spaced = throttle::begin_login(&mut conn, &owner, &BUDGETS)
        .await
        .unwrap();
    assert!(
        matches!(spaced, Admission::Refused { .. }),
        "a second attempt at once waits: {spaced:?}"
    );

    // The first attempt could not be checked after all.
    throttle::give_back_login(&mut conn, &owner).await.unwrap();

    let again = throttle::begin_login(&mut conn, &owner, &BUDGETS)
        .await
        .unwrap();
    assert_eq!(
        again,
        Admission::Admitted,
        "the given-back attempt left a wait"
    );
}

#[tokio::test]
async fn a_registration_given_back_leaves_no_wait_for_the_next_one() {
    let db = TestDatabase::migrated().await;
    let mut conn = db.connect().await;
    let key = "registration:192.0.2.9";
    let window = Duration::from_secs(900);
    let backoff = Duration::from_secs(60);
    for _ in 0..2 {
        let admitted = throttle::begin_with_backoff(&mut conn, key, window, 2, backoff)
            .await
            .unwrap();
        assert_eq!(admitted, Admission::Admitted);
    }
    let over = throttle::begin_with_backoff(&mut conn, key, window, 2, backoff)
        .await
        .unwrap();
    assert!(matches!(over, Admission::Refused { .. }), "{over:?}");

    throttle::give_back(&mut conn, key).await.unwrap();

    let again = throttle::begin_with_backoff(&mut conn, key, window, 2, backoff)
        .await
        .unwrap();
    assert_eq!(
        again,
        Admission::Admitted,
        "the given-back attempt left a wait"
    );
}
