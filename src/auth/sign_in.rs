//! Registration and login: the throttle, the hash, the first session and
//! the demo account's refusal, in the order that makes a refused attempt
//! cheap. The routes parse the request and shape the answer; what happens
//! in between is here.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};

use super::hashing::Lane;
use super::password::{self, PasswordError};
use super::settings::AuthSettings;
use super::throttle::{Admission, LoginKeys, Throttle};
use super::token;
use crate::db::pool::transaction;
use crate::db::users::{self, User};
use crate::db::{demo_account, sessions, Db, PoolError};
use crate::domain::identity;
use crate::domain::users::{Credentials, NewUser};

/// What the flows work with, borrowed from the application state.
#[derive(Clone, Copy)]
pub struct SignIn<'a> {
    pub db: &'a Db,
    pub throttle: &'a Throttle,
    pub settings: &'a AuthSettings,
}

/// A user with a new session, and the session's token (given to the
/// client once; only its digest is stored).
pub struct Signed {
    pub user: User,
    pub token: String,
}

/// Why a registration or a login did not start a session.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// The same answer for an unknown email and a wrong password.
    #[error("the email or the password is wrong")]
    InvalidCredentials,
    #[error("the {0} is taken")]
    Taken(&'static str),
    #[error("too many failed logins")]
    TooManyFailedLogins { retry_after: Duration },
    #[error("too many registrations from this address")]
    TooManyRegistrations { retry_after: Duration },
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("could not make a session token")]
    Token(#[source] getrandom::Error),
    #[error("CONDUIT_SESSION_TTL is too long for a timestamp")]
    SessionLength(#[source] chrono::OutOfRangeError),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    Pool(#[from] PoolError),
}

impl SignIn<'_> {
    /// POST /users: every registration counts for its address, a taken
    /// name too (else the 409 would tell anyone, without limit, which
    /// emails have accounts); a taken name is answered before the hash, so
    /// a flood of them costs one indexed query each. The account and its
    /// first session are one transaction.
    pub async fn register(
        self,
        new: NewUser,
        address: Option<IpAddr>,
    ) -> Result<Signed, SignInError> {
        let username = new.username.into_inner();
        let email = new.email.into_inner();
        // Both answers are values, not an Err: in transaction mode an Err
        // would roll back what the throttle's statement counted.
        let (admission, taken) = self
            .db
            .run(async |conn| {
                let admission = self.throttle.begin_registration(conn, address).await?;
                let taken = match admission {
                    Admission::Admitted => users::taken_by_another(conn, &username, &email).await?,
                    Admission::Refused { .. } => None,
                };
                Ok::<_, SignInError>((admission, taken))
            })
            .await?;
        if let Admission::Refused { retry_after } = admission {
            return Err(SignInError::TooManyRegistrations { retry_after });
        }
        if let Some(field) = taken {
            return Err(SignInError::Taken(field));
        }
        let password_hash = hash_or_give_back(
            self.db,
            new.password.into_inner(),
            Lane::SignIn,
            async |conn| self.throttle.give_back_registration(conn, address).await,
        )
        .await?;
        let token = new_token()?;
        let expires_at = self.session_expiry()?;
        let user = self
            .db
            .run(async |conn| {
                conn.transaction(async |conn| {
                    let row = users::NewUserRow {
                        username: &username,
                        email: &email,
                        password_hash: &password_hash,
                    };
                    let user = users::insert(conn, &row).await.map_err(taken_or)?;
                    sessions::create(conn, user.id, &token::digest(&token), expires_at).await?;
                    Ok::<_, SignInError>(user)
                })
                .await
            })
            .await?;
        Ok(Signed { user, token })
    }

    /// POST /users/login: counted as a failure from the first statement
    /// until the password proves right; the connection goes back to the
    /// pool before the hash, which may wait long for a hashing thread.
    pub async fn login(
        self,
        credentials: Credentials,
        address: Option<IpAddr>,
    ) -> Result<Signed, SignInError> {
        let Credentials { email, password } = credentials;
        let (admission, user, keys, demo_refused) = self
            .db
            .run(async |conn| {
                let user = users::find_by_email(conn, &email).await?;
                let keys = LoginKeys::new(address, &identity::folded(&email));
                // A refusal is a value, not an Err, which would roll the
                // count back in transaction mode.
                let admission = self.throttle.begin_login(conn, &keys).await?;
                let demo_refused = match &user {
                    Some(user) if !self.settings.demo_login_allowed => {
                        demo_account::is_demo(conn, user.id).await?
                    }
                    _ => false,
                };
                Ok::<_, SignInError>((admission, user, keys, demo_refused))
            })
            .await?;
        if let Admission::Refused { retry_after } = admission {
            return Err(SignInError::TooManyFailedLogins { retry_after });
        }
        // The demo account's password is public: in production its login
        // is a failure, counted as one and refused before the hash, so it
        // buys nobody a hash.
        if demo_refused {
            tracing::warn!(
                "refused a login to the demo account (production; CONDUIT_ALLOW_DEMO_USER is off)"
            );
            return Err(SignInError::InvalidCredentials);
        }
        let user = match password::verify(password, user).await {
            Ok(Some(user)) => user,
            Ok(None) => return Err(SignInError::InvalidCredentials),
            // Not checked (e.g. the hashing queue is full): no failure either.
            Err(error) => {
                self.db
                    .run(async |conn| {
                        self.throttle.give_back_login(conn, &keys).await?;
                        Ok::<_, SignInError>(())
                    })
                    .await?;
                return Err(error.into());
            }
        };
        let token = new_token()?;
        let expires_at = self.session_expiry()?;
        // Either ending is a value, not an Err: in transaction mode an Err
        // would roll back the count `login_succeeded` gave back.
        let outcome = self
            .db
            .run(async |conn| {
                self.throttle.login_succeeded(conn, &keys).await?;
                start_if_password_unchanged(conn, &user, &token, expires_at).await
            })
            .await?;
        match outcome {
            Outcome::Started => Ok(Signed { user, token }),
            Outcome::PasswordChanged => Err(SignInError::InvalidCredentials),
        }
    }

    fn session_expiry(&self) -> Result<DateTime<Utc>, SignInError> {
        let ttl = chrono::Duration::from_std(self.settings.session_ttl)
            .map_err(SignInError::SessionLength)?;
        Ok(Utc::now() + ttl)
    }
}

/// How a login whose password was right ended.
enum Outcome {
    Started,
    /// The password changed while it was being checked: it is no longer right.
    PasswordChanged,
}

/// The hash was read before the password was checked: a change committed
/// since then must win, or the old password would open a session that the
/// change never ended.
async fn start_if_password_unchanged(
    conn: &mut AsyncPgConnection,
    user: &User,
    token: &str,
    expires_at: DateTime<Utc>,
) -> Result<Outcome, SignInError> {
    let started = transaction(conn, async |conn| {
        sessions::create_if_password_unchanged(
            conn,
            user.id,
            &user.password_hash,
            &token::digest(token),
            expires_at,
        )
        .await
    })
    .await?;
    Ok(match started {
        Some(_) => Outcome::Started,
        None => Outcome::PasswordChanged,
    })
}

/// Hashes `password` in `lane`; when it cannot be done (the queue is
/// full), `give_back` first returns the count the attempt took: an attempt
/// that was not carried out does not count.
pub async fn hash_or_give_back(
    db: &Db,
    password: String,
    lane: Lane,
    give_back: impl AsyncFnOnce(&mut AsyncPgConnection) -> diesel::QueryResult<()>,
) -> Result<String, SignInError> {
    match password::hash(password, lane).await {
        Ok(hash) => Ok(hash),
        Err(error) => {
            db.run(async |conn| Ok::<_, SignInError>(give_back(conn).await?))
                .await?;
            Err(error.into())
        }
    }
}

fn new_token() -> Result<String, SignInError> {
    token::generate().map_err(SignInError::Token)
}

/// A taken username or email is the client's conflict, not a failure.
pub fn taken_or(error: diesel::result::Error) -> SignInError {
    match users::taken_field(&error) {
        Some(field) => SignInError::Taken(field),
        None => error.into(),
    }
}
