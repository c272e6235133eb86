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
use crate::auth::throttle::{Admission, LoginKeys};
use crate::auth::{password, token, AuthUser, DEMO_EMAIL};
use crate::config::AuthSettings;
use crate::db::sessions;
use crate::db::users::{self, User};
use crate::domain::users::{Credentials, NewUser, UserChanges};
use crate::domain::{identity, Patch};
use crate::error::{AppError, AppResult, ErrorBody, TAKEN};
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
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    image: Patch<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateUserRequest {
    user: UserUpdatePayload,
}

/// Starts a session for `user`: a fresh token, of which only the digest is kept.
async fn start_session(
    conn: &mut diesel_async::AsyncPgConnection,
    user: &User,
    settings: &AuthSettings,
    token: &str,
) -> AppResult<()> {
    let expires_at = Utc::now()
        + chrono::Duration::from_std(settings.session_ttl).map_err(AppError::internal)?;
    sessions::create(conn, user.id, &token::digest(token), expires_at).await?;
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
    let password_hash = match password::hash(new.password.into_inner()).await {
        Ok(hash) => hash,
        Err(error) => {
            state
                .db
                .run(async |conn| {
                    state
                        .throttle
                        .registration_not_carried_out(conn, address)
                        .await?;
                    Ok::<_, AppError>(())
                })
                .await?;
            return Err(error.into());
        }
    };
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
                    throttle.login_not_checked(conn, &keys).await?;
                    Ok::<_, AppError>(())
                })
                .await?;
            return Err(error.into());
        }
    };
    let demo_refused =
        user.email.eq_ignore_ascii_case(DEMO_EMAIL) && !state.auth.demo_login_allowed;
    let token = new_token()?;
    state
        .db
        .run(async |conn| {
            throttle.login_succeeded(conn, &keys).await?;
            if demo_refused {
                return Ok(None);
            }
            start_session(conn, &user, &state.auth, &token).await?;
            Ok::<_, AppError>(Some(()))
        })
        .await?
        .ok_or_else(|| {
            tracing::warn!(
                "refused a login to the demo account (production; CONDUIT_ALLOW_DEMO_USER is off)"
            );
            AppError::InvalidCredentials
        })?;
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
/// of the user, in the same transaction as the change.
#[utoipa::path(
    tag = "User and Authentication",
    security(("Token" = [])),
    request_body = UpdateUserRequest,
    responses(
        (status = 200, description = "Updated", body = UserResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 422, description = "Invalid input, or username or email taken", body = ErrorBody),
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
        Some(password) => Some(password::hash(password.into_inner()).await?),
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
    state
        .db
        .run(async |conn| {
            let user = conn
                .transaction(async |conn| {
                    let user = users::update(conn, auth.user.id, &changes)
                        .await
                        .map_err(invalid_if_taken)?;
                    if password_changed {
                        sessions::revoke_others(conn, user.id, auth.session_id).await?;
                    }
                    Ok::<_, AppError>(user)
                })
                .await?;
            Ok(HttpResponse::Ok().json(UserResponse::new(user, auth.token)))
        })
        .await
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
    state
        .db
        .run(async |conn| {
            sessions::revoke(conn, auth.session_id).await?;
            Ok(HttpResponse::NoContent().finish())
        })
        .await
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
