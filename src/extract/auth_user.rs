//! Who is asking: the `AuthUser` and `MaybeAuthUser` extractors.
//!
//! A token is read from `Authorization: Token <t>` (or `Bearer <t>`),
//! hashed, and looked up among live sessions. `MaybeAuthUser` is anonymous
//! only when no Authorization header was sent: a bad token is a 401 there
//! too (an `Option<AuthUser>` would silently turn it into "anonymous").

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header::AUTHORIZATION;
use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use chrono::Utc;

use crate::auth::token;
use crate::db::sessions;
use crate::db::users::User;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// An authenticated request: the user, the session and the token it came with.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user: User,
    pub session_id: i64,
    /// As the client sent it; echoed in `user.token`, never stored.
    pub token: String,
}

/// An optionally authenticated request.
#[derive(Debug, Clone)]
pub struct MaybeAuthUser(pub Option<AuthUser>);

impl MaybeAuthUser {
    pub fn user_id(&self) -> Option<i64> {
        self.0.as_ref().map(|auth| auth.user.id)
    }
}

/// The token of the Authorization header: `Ok(None)` when there is no
/// header, an error when there is one we cannot use.
fn presented_token(request: &HttpRequest) -> AppResult<Option<String>> {
    let Some(value) = request.headers().get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| AppError::Unauthorized("is invalid"))?;
    let token = value
        .strip_prefix("Token ")
        .or_else(|| value.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or(AppError::Unauthorized("is invalid"))?;
    if !token::is_well_formed(token) {
        return Err(AppError::Unauthorized("is invalid"));
    }
    Ok(Some(token.to_owned()))
}

async fn authenticate(state: Option<web::Data<AppState>>, token: String) -> AppResult<AuthUser> {
    let state = state
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("no application state registered")))?;
    let (session, user) = state
        .db
        .run(async |conn| {
            let (session, user) = sessions::find_active(conn, &token::digest(&token))
                .await?
                .ok_or(AppError::Unauthorized("is invalid"))?;
            if Utc::now() - session.last_used_at > sessions::LAST_USED_RESOLUTION {
                sessions::touch(conn, session.id).await?;
            }
            Ok::<_, AppError>((session, user))
        })
        .await?;
    Ok(AuthUser {
        user,
        session_id: session.id,
        token,
    })
}

/// The presented token and the application state: what both extractors
/// take from the request before their first await.
fn token_and_state(
    request: &HttpRequest,
) -> (AppResult<Option<String>>, Option<web::Data<AppState>>) {
    (
        presented_token(request),
        request.app_data::<web::Data<AppState>>().cloned(),
    )
}

impl FromRequest for AuthUser {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = AppResult<Self>>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let (token, state) = token_and_state(request);
        Box::pin(async move {
            let token = token?.ok_or(AppError::Unauthorized("is missing"))?;
            authenticate(state, token).await
        })
    }
}

impl FromRequest for MaybeAuthUser {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = AppResult<Self>>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let (token, state) = token_and_state(request);
        Box::pin(async move {
            match token? {
                None => Ok(MaybeAuthUser(None)),
                Some(token) => authenticate(state, token)
                    .await
                    .map(|a| MaybeAuthUser(Some(a))),
            }
        })
    }
}
