//! Profiles (spec: "Profile").

use crate::routes::Routes;
use actix_web::{delete, get, post, web, HttpResponse};

use super::views::{ProfileResponse, ProfileView};
use crate::db::profiles;
use crate::db::users::{self, User};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::extract::{AuthUser, MaybeAuthUser};
use crate::state::AppState;
use diesel_async::AsyncPgConnection;

pub fn configure(cfg: &mut impl Routes) {
    cfg.service(get_profile)
        .service(follow_user)
        .service(unfollow_user);
}

async fn find_profile_user(conn: &mut AsyncPgConnection, username: &str) -> AppResult<User> {
    users::find_by_username(conn, username)
        .await?
        .ok_or(AppError::NotFound("profile"))
}

fn profile(user: User, following: bool) -> HttpResponse {
    HttpResponse::Ok().json(ProfileResponse {
        profile: ProfileView::new(user, following),
    })
}

/// Spec: GET /profiles/{username} (Get a profile).
#[utoipa::path(
    tag = "Profile",
    params(("username" = String, Path, description = "Username of the profile")),
    security((), ("Token" = [])),
    responses(
        (status = 200, description = "The profile", body = ProfileResponse),
        (status = 401, description = "Invalid token", body = ErrorBody),
        (status = 404, description = "No such profile", body = ErrorBody),
    )
)]
#[get("/profiles/{username}")]
async fn get_profile(
    auth: MaybeAuthUser,
    state: web::Data<AppState>,
    username: web::Path<String>,
) -> AppResult<HttpResponse> {
    state
        .db
        .run(async |conn| {
            let user = find_profile_user(conn, &username).await?;
            let following = match auth.user_id() {
                Some(viewer) => profiles::followed_among(conn, viewer, &[user.id])
                    .await?
                    .contains(&user.id),
                None => false,
            };
            Ok(profile(user, following))
        })
        .await
}

/// Spec: POST /profiles/{username}/follow (Follow a user).
#[utoipa::path(
    tag = "Profile",
    params(("username" = String, Path, description = "Username to follow")),
    security(("Token" = [])),
    responses(
        (status = 200, description = "Now following", body = ProfileResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such profile", body = ErrorBody),
        (status = 422, description = "Cannot follow yourself", body = ErrorBody),
    )
)]
#[post("/profiles/{username}/follow")]
async fn follow_user(
    auth: AuthUser,
    state: web::Data<AppState>,
    username: web::Path<String>,
) -> AppResult<HttpResponse> {
    auth.write(&state.db, async |conn| {
        let user = find_profile_user(conn, &username).await?;
        if user.id == auth.user.id {
            return Err(AppError::validation("profile", "cannot follow yourself"));
        }
        profiles::follow(conn, auth.user.id, user.id).await?;
        Ok(profile(user, true))
    })
    .await
}

/// Spec: DELETE /profiles/{username}/follow (Unfollow a user).
#[utoipa::path(
    tag = "Profile",
    params(("username" = String, Path, description = "Username to unfollow")),
    security(("Token" = [])),
    responses(
        (status = 200, description = "No longer following", body = ProfileResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such profile", body = ErrorBody),
    )
)]
#[delete("/profiles/{username}/follow")]
async fn unfollow_user(
    auth: AuthUser,
    state: web::Data<AppState>,
    username: web::Path<String>,
) -> AppResult<HttpResponse> {
    auth.write(&state.db, async |conn| {
        let user = find_profile_user(conn, &username).await?;
        profiles::unfollow(conn, auth.user.id, user.id).await?;
        Ok(profile(user, false))
    })
    .await
}
