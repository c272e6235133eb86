//! Favorites (spec: "Favorites").

use crate::routes::Routes;
use actix_web::http::StatusCode;
use actix_web::{delete, post, web, HttpResponse};

use super::{article_response, find_article, or_article_gone};
use crate::db::favorites;
use crate::error::{AppResult, ErrorBody};
use crate::extract::AuthUser;
use crate::routes::views::ArticleResponse;
use crate::state::AppState;

pub fn configure(cfg: &mut impl Routes) {
    cfg.service(favorite_article).service(unfavorite_article);
}

/// Spec: POST /articles/{slug}/favorite (Favorite an article).
#[utoipa::path(
    tag = "Favorites",
    params(("slug" = String, Path, description = "Slug of the article")),
    security(("Token" = [])),
    responses(
        (status = 200, description = "Favorited", body = ArticleResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such article", body = ErrorBody),
    )
)]
#[post("/articles/{slug}/favorite")]
async fn favorite_article(
    auth: AuthUser,
    state: web::Data<AppState>,
    slug: web::Path<String>,
) -> AppResult<HttpResponse> {
    auth.write(&state.db, async |conn| {
        let article = find_article(conn, &slug).await?;
        favorites::favorite(conn, auth.user.id, article.id)
            .await
            .map_err(or_article_gone)?;
        article_response(conn, article, Some(auth.user.id), StatusCode::OK).await
    })
    .await
}

/// Spec: DELETE /articles/{slug}/favorite (Unfavorite an article).
#[utoipa::path(
    tag = "Favorites",
    params(("slug" = String, Path, description = "Slug of the article")),
    security(("Token" = [])),
    responses(
        (status = 200, description = "No longer favorited", body = ArticleResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such article", body = ErrorBody),
    )
)]
#[delete("/articles/{slug}/favorite")]
async fn unfavorite_article(
    auth: AuthUser,
    state: web::Data<AppState>,
    slug: web::Path<String>,
) -> AppResult<HttpResponse> {
    auth.write(&state.db, async |conn| {
        let article = find_article(conn, &slug).await?;
        favorites::unfavorite(conn, auth.user.id, article.id).await?;
        article_response(conn, article, Some(auth.user.id), StatusCode::OK).await
    })
    .await
}
