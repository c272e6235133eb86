//! Users and authentication (spec: "User and Authentication"), plus the
//! `DELETE /api/user/session` extension that ends the presented session.

use crate::routes::Routes;
use actix_web::{delete, get, post, put, web, HttpRequest, HttpResponse};
use chrono::Utc;
use diesel_async::AsyncConnection;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use utoipa::ToSchema;

use super::views::UserResponse;
use crate::auth::hashing::Lane;
use crate::auth::settings::AuthSettings;
use crate::auth::throttle::{Admission, LoginKeys};
use crate::auth::{password, token};
use crate::db::pool::transaction;
use crate::db::users::{self, User};
use crate::db::{demo_account, sessions};
use crate::domain::users::{Credentials, NewUser, UserChanges};
use crate::domain::{identity, Patch};
use crate::error::{AppError, AppResult, ErrorBody, TAKEN};
use crate::extract::AuthUser;
use crate::extract::JsonBody;
use crate::state::AppState;

pub fn configure(cfg: &mut impl Routes) {
    cfg.service(register)
        .service(login)
        .service(current_user)
        .service(update_user)
        .service(end_session);
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewUserPayload {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    password: Option<SecretString>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    user: NewUserPayload,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginPayload {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    password: Option<SecretString>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    user: LoginPayload,
}

/// Absent fields are left alone; `bio` and `image` may be null (or `""`),
/// the others may not.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct UserUpdatePayload {
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    username: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    email: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    password: Patch<SecretString>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    bio: Patch<String>,
    /// An absolute http or https URL.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = "uri")]
    image: Patch<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateUserRequest {
    user: UserUpdatePayload,
}

/// When a session started now ends.
fn session_expiry(settings: &AuthSettings) -> AppResult<chrono::DateTime<Utc>> {
    Ok(
        Utc::now()
            + chrono::Duration::from_std(settings.session_ttl).map_err(AppError::internal)?,
    )
}

/// Starts a session for `user`: a fresh token, of which only the digest is kept.
async fn start_session(
    conn: &mut diesel_async::AsyncPgConnection,
    user: &User,
    settings: &AuthSettings,
    token: &str,
) -> AppResult<()> {
    sessions::create(
        conn,
        user.id,
        &token::digest(token),
        session_expiry(settings)?,
    )
    .await?;
    Ok(())
}

fn new_token() -> AppResult<String> {
    token::generate().map_err(AppError::internal)
}

/// A password out of its request type (which keeps it out of `Debug`),
/// for the domain type that checks it (whose `Debug` hides it too).
fn exposed(password: Option<SecretString>) -> Option<String> {
    password.map(|password| password.expose_secret().to_owned())
}

/// A taken username or email is the client's conflict, not a failure.
fn conflict_or(error: diesel::result::Error) -> AppError {
    match users::taken_field(&error) {
        Some(field) => AppError::Conflict(field),
        None => error.into(),
    }
}

/// A taken username or email in an update is a 422 with the body of
/// [`conflict_or`]'s 409: the spec lists no 409 for PUT /user.
fn invalid_if_taken(error: diesel::result::Error) -> AppError {
    match conflict_or(error) {
        AppError::Conflict(field) => AppError::validation(field, TAKEN),
        other => other,
    }
}

/// The client's address: X-Forwarded-For only from a trusted proxy, since
/// any client can write it.
fn client_address(request: &HttpRequest, state: &AppState) -> Option<std::net::IpAddr> {
    state
        .trusted_proxies
        .client_address(request.peer_addr().map(|a| a.ip()), request.headers())
}

/// Seconds for `Retry-After`, at least one.
fn whole_seconds(wait: std::time::Duration) -> u64 {
    (wait.as_millis().div_ceil(1000) as u64).max(1)
}

/// Spec: POST /users (Registration). The account and its first session
/// are written in one transaction.
#[utoipa::path(
    tag = "User and Authentication",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered", body = UserResponse),
        (status = 409, description = "Username or email taken", body = ErrorBody),
        (status = 422, description = "Invalid input", body = ErrorBody),
        (status = 429, description = "Too many registrations from this address; see Retry-After", body = ErrorBody),
        (status = 503, description = "Too busy hashing passwords; see Retry-After", body = ErrorBody),
    )
)]
#[post("/users")]
async fn register(
    request: HttpRequest,
    state: web::Data<AppState>,
    body: JsonBody<RegisterRequest>,
) -> AppResult<HttpResponse> {
    let payload = body.parse()?.user;
    let new = NewUser::parse(payload.username, payload.email, exposed(payload.password))?;
    let username = new.username.into_inner();
    let email = new.email.into_inner();

    // A taken name is answered before the hash: a flood of registrations
    // of existing accounts costs one indexed query each, not a hash. Only
    // a registration that gets as far as the hash counts for its address.
    let address = client_address(&request, &state);
    let admission = state
        .db
        .run(async |conn| {
            if let Some(field) = users::taken_by_another(conn, &username, &email).await? {
                return Err(AppError::Conflict(field));
            }
            // A refusal is a value, not an Err: in transaction mode an Err
            // would roll back what the throttle's statement counted.
            Ok(state.throttle.begin_registration(conn, address).await?)
        })
        .await?;
    if let Admission::Refused { retry_after } = admission {
        return Err(AppError::TooManyRegistrations {
            retry_after_secs: whole_seconds(retry_after),
        });
    }
    let password_hash = hash_or_give_back(
        &state,
        new.password.into_inner(),
        Lane::SignIn,
        async |conn| state.throttle.give_back_registration(conn, address).await,
    )
    .await?;
    let token = new_token()?;
    state
        .db
        .run(async |conn| {
            let user = conn
                .transaction(async |conn| {
                    let user = users::insert(
                        conn,
                        &users::NewUser {
                            username: &username,
                            email: &email,
                            password_hash: &password_hash,
                        },
                    )
                    .await
                    .map_err(conflict_or)?;
                    start_session(conn, &user, &state.auth, &token).await?;
                    Ok::<_, AppError>(user)
                })
                .await?;
            Ok(HttpResponse::Created().json(UserResponse::new(user, token)))
        })
        .await
}

/// How a login whose password was right ended.
enum LoginOutcome {
    Started,
    /// The password changed while it was being checked: it is no longer right.
    PasswordChanged,
    /// The seeded demo account, in production.
    DemoRefused,
}

/// Spec: POST /users/login (Authentication). Unknown email and wrong
/// password get the same answer, after the same work.
#[utoipa::path(
    tag = "User and Authentication",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = UserResponse),
        (status = 401, description = "Invalid credentials", body = ErrorBody),
        (status = 422, description = "Invalid input", body = ErrorBody),
        (status = 429, description = "Too many failed logins; see Retry-After", body = ErrorBody),
        (status = 503, description = "Too busy hashing passwords; see Retry-After", body = ErrorBody),
    )
)]
#[post("/users/login")]
async fn login(
    request: HttpRequest,
    state: web::Data<AppState>,
    body: JsonBody<LoginRequest>,
) -> AppResult<HttpResponse> {
    let payload = body.parse()?.user;
    let Credentials { email, password } =
        Credentials::parse(payload.email, exposed(payload.password))?;

    let address = client_address(&request, &state);
    let throttle = &state.throttle;
    // The connection goes back to the pool before the hash: a login may
    // wait a long time for a hashing thread, and every other request needs
    // the pool meanwhile.
    let (admission, user, keys) = state
        .db
        .run(async |conn| {
            let user = users::find_by_email(conn, &email).await?;
            let keys = LoginKeys::new(address, &identity::folded(&email));
            // Counted as a failure from here until the password proves
            // right. A refusal is a value, not an Err, which would roll the
            // count back in transaction mode.
            let admission = throttle.begin_login(conn, &keys).await?;
            Ok::<_, AppError>((admission, user, keys))
        })
        .await?;
    if let Admission::Refused { retry_after } = admission {
        return Err(AppError::TooManyFailedLogins {
            retry_after_secs: whole_seconds(retry_after),
        });
    }
    let user = match password::verify(password, user).await {
        Ok(Some(user)) => user,
        Ok(None) => return Err(AppError::InvalidCredentials),
        // Not checked (e.g. the hashing queue is full): no failure either.
        Err(error) => {
            state
                .db
                .run(async |conn| {
                    throttle.give_back_login(conn, &keys).await?;
                    Ok::<_, AppError>(())
                })
                .await?;
            return Err(error.into());
        }
    };
    let token = new_token()?;
    let outcome = state
        .db
        .run(async |conn| {
            throttle.login_succeeded(conn, &keys).await?;
            if !state.auth.demo_login_allowed && demo_account::is_demo(conn, user.id).await? {
                return Ok(LoginOutcome::DemoRefused);
            }
            // The hash was read before the password was checked: a change
            // committed since then must win, or the old password would
            // open a session that the change never ended.
            let started = transaction(conn, async |conn| {
                sessions::create_if_password_unchanged(
                    conn,
                    user.id,
                    &user.password_hash,
                    &token::digest(&token),
                    session_expiry(&state.auth)?,
                )
                .await
                .map_err(AppError::from)
            })
            .await?;
            Ok::<_, AppError>(match started {
                Some(_) => LoginOutcome::Started,
                None => LoginOutcome::PasswordChanged,
            })
        })
        .await?;
    match outcome {
        LoginOutcome::Started => {}
        LoginOutcome::PasswordChanged => return Err(AppError::InvalidCredentials),
        LoginOutcome::DemoRefused => {
            tracing::warn!(
                "refused a login to the demo account (production; CONDUIT_ALLOW_DEMO_USER is off)"
            );
            return Err(AppError::InvalidCredentials);
        }
    }
    Ok(HttpResponse::Ok().json(UserResponse::new(user, token)))
}

/// Spec: GET /user (Get current user).
#[utoipa::path(
    tag = "User and Authentication",
    security(("Token" = [])),
    responses(
        (status = 200, description = "The current user", body = UserResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
    )
)]
#[get("/user")]
async fn current_user(auth: AuthUser) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(UserResponse::new(auth.user, auth.token)))
}

/// Spec: PUT /user (Update user). A new password ends every other session
/// of the user, in the same transaction as the change, which answers 401
/// if this request's own session ended first.
#[utoipa::path(
    tag = "User and Authentication",
    security(("Token" = [])),
    request_body = UpdateUserRequest,
    responses(
        (status = 200, description = "Updated", body = UserResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 422, description = "Invalid input, or username or email taken", body = ErrorBody),
        (status = 429, description = "Password changed too often; see Retry-After", body = ErrorBody),
        (status = 503, description = "Too busy hashing passwords; see Retry-After", body = ErrorBody),
    )
)]
#[put("/user")]
async fn update_user(
    auth: AuthUser,
    state: web::Data<AppState>,
    body: JsonBody<UpdateUserRequest>,
) -> AppResult<HttpResponse> {
    let payload = body.parse()?.user;
    let requested = UserChanges::parse(
        payload.username,
        payload.email,
        match payload.password {
            Patch::Absent => Patch::Absent,
            Patch::Null => Patch::Null,
            Patch::Value(password) => Patch::Value(password.expose_secret().to_owned()),
        },
        payload.bio,
        payload.image,
    )?;

    let password_hash = match requested.password {
        Some(password) => Some(hash_new_password(&auth, &state, password.into_inner()).await?),
        None => None,
    };
    let changes = users::UserChanges {
        username: requested.username.map(|u| u.into_inner()),
        email: requested.email.map(|e| e.into_inner()),
        password_hash,
        bio: requested.bio,
        image: requested.image,
    };
    let password_changed = changes.password_hash.is_some();
    // The account's row is locked, and the session checked, in the
    // transaction that writes: a session ended while this request was on
    // its way (its body held back, its password hashing) changes nothing.
    let user = auth
        .write_account(&state.db, async |conn| {
            // Sessions first: a change of the username or email locks the
            // account's row against the references other writes take
            // (FOR KEY SHARE), and a write of another session holding its
            // session's row would then wait for us while we wait for it.
            if password_changed {
                sessions::revoke_others(conn, auth.user.id, auth.session_id).await?;
            }
            users::update(conn, auth.user.id, &changes)
                .await
                .map_err(invalid_if_taken)
        })
        .await?;
    Ok(HttpResponse::Ok().json(UserResponse::new(user, auth.token)))
}

/// Hashes a password change, within the session's and the user's budget
/// (checked, with the session, before the hash is paid for) and in the
/// hashing threads' password-change lane, which cannot take the queue
/// from logins.
async fn hash_new_password(
    auth: &AuthUser,
    state: &AppState,
    password: String,
) -> AppResult<String> {
    let (user_id, session_id) = (auth.user.id, auth.session_id);
    let admission = auth
        .write(&state.db, async |conn| {
            // A refusal is a value, not an Err, which would roll the
            // count back.
            Ok(state
                .throttle
                .begin_password_change(conn, user_id, session_id)
                .await?)
        })
        .await?;
    if let Admission::Refused { retry_after } = admission {
        return Err(AppError::TooManyPasswordChanges {
            retry_after_secs: whole_seconds(retry_after),
        });
    }
    hash_or_give_back(state, password, Lane::PasswordChange, async |conn| {
        state
            .throttle
            .give_back_password_change(conn, user_id, session_id)
            .await
    })
    .await
}

/// Hashes `password` in `lane`; when it cannot be done (the queue is
/// full), `give_back` first returns the count the attempt took.
async fn hash_or_give_back(
    state: &AppState,
    password: String,
    lane: Lane,
    give_back: impl AsyncFnOnce(&mut diesel_async::AsyncPgConnection) -> diesel::QueryResult<()>,
) -> AppResult<String> {
    match password::hash(password, lane).await {
        Ok(hash) => Ok(hash),
        Err(error) => {
            state
                .db
                .run(async |conn| Ok::<_, AppError>(give_back(conn).await?))
                .await?;
            Err(error.into())
        }
    }
}

/// Extension: DELETE /user/session ends the session whose token was
/// presented (log out). Other sessions of the user stay valid.
#[utoipa::path(
    tag = "User and Authentication",
    security(("Token" = [])),
    responses(
        (status = 204, description = "Session ended"),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
    )
)]
#[delete("/user/session")]
async fn end_session(auth: AuthUser, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    // Not through `auth.write`: the one statement is its own check (it
    // ends the session only if it is still live), and two logouts of one
    // session, each holding a share lock and then updating the row, would
    // deadlock.
    let ended = state
        .db
        .run(async |conn| Ok::<_, AppError>(sessions::revoke(conn, auth.session_id).await?))
        .await?;
    if ended == 0 {
        return Err(AppError::Unauthorized("is invalid"));
    }
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request type printed with `{:?}` (by a future log line, a panic
    /// message) shows no password.
    #[test]
    fn request_types_do_not_show_passwords_in_debug() {
        let secret = "hunter2-correct-horse";
        let registration: RegisterRequest = serde_json::from_value(serde_json::json!(
            {"user": {"username": "u", "email": "u@x.org", "password": secret}}
        ))
        .unwrap();
        let credentials: LoginRequest = serde_json::from_value(serde_json::json!(
            {"user": {"email": "u@x.org", "password": secret}}
        ))
        .unwrap();
        let change: UpdateUserRequest =
            serde_json::from_value(serde_json::json!({"user": {"password": secret}})).unwrap();
        for shown in [
            format!("{registration:?}"),
            format!("{credentials:?}"),
            format!("{change:?}"),
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert_eq!(
            exposed(credentials.user.password).as_deref(),
            Some(secret),
            "the handler still gets it"
        );
    }
}
