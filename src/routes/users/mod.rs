//! Users and authentication (spec: "User and Authentication"), plus the
//! `DELETE /api/user/session` extension that ends the presented session.

use actix_web::{delete, get, post, put, web, HttpResponse};
use secrecy::ExposeSecret;

mod requests;

use requests::{exposed, LoginRequest, RegisterRequest, UpdateUserRequest};

use super::views::UserResponse;
use super::Routes;
use crate::auth::hashing::Lane;
use crate::auth::sign_in::{hash_or_give_back, Signed};
use crate::auth::throttle::Admission;
use crate::db::{sessions, users};
use crate::domain::users::{Credentials, NewUser, UserChanges};
use crate::domain::Patch;
use crate::error::{retry_after_secs, AppError, AppResult, ErrorBody, TAKEN};
use crate::extract::{AuthUser, ClientAddress, JsonBody};
use crate::state::AppState;

pub fn configure(cfg: &mut impl Routes) {
    cfg.service(register)
        .service(login)
        .service(current_user)
        .service(update_user)
        .service(end_session);
}

/// A taken username or email in an update is a 422 with the body of
/// registration's 409: the spec lists no 409 for PUT /user.
fn invalid_if_taken(error: diesel::result::Error) -> AppError {
    match users::taken_field(&error) {
        Some(field) => AppError::validation(field, TAKEN),
        None => error.into(),
    }
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
    address: ClientAddress,
    state: web::Data<AppState>,
    body: JsonBody<RegisterRequest>,
) -> AppResult<HttpResponse> {
    let payload = body.parse()?.user;
    let new = NewUser::parse(payload.username, payload.email, exposed(payload.password))?;
    let Signed { user, token } = state.sign_in().register(new, address.0).await?;
    Ok(HttpResponse::Created().json(UserResponse::new(user, token)))
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
    address: ClientAddress,
    state: web::Data<AppState>,
    body: JsonBody<LoginRequest>,
) -> AppResult<HttpResponse> {
    let payload = body.parse()?.user;
    let credentials = Credentials::parse(payload.email, exposed(payload.password))?;
    let Signed { user, token } = state.sign_in().login(credentials, address.0).await?;
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
    let changes = users::UserChangeset {
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
            retry_after_secs: retry_after_secs(retry_after),
        });
    }
    let hash = hash_or_give_back(&state.db, password, Lane::PasswordChange, async |conn| {
        state
            .throttle
            .give_back_password_change(conn, user_id, session_id)
            .await
    })
    .await?;
    Ok(hash)
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
