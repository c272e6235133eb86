//! Article lists: the global list with its filters, and the feed.

use crate::routes::Routes;
use actix_web::{get, web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::db::articles::{self, ArticleFilter};
use crate::domain::articles::normalized_tag;
use crate::domain::page::Page;
use crate::error::{AppResult, ErrorBody};
use crate::extract::{AuthUser, MaybeAuthUser};
use crate::routes::views::{ArticleSummary, ArticlesResponse};
use crate::state::AppState;

pub fn configure(cfg: &mut impl Routes) {
    cfg.service(feed_articles).service(list_articles);
}

/// `limit` and `offset` are read as text so that a bad value is a field
/// error of its own rather than a generic query error.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// How many articles to return (1 to 100, default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// How many articles to skip (0 to 10000, default 0).
    #[param(value_type = Option<i64>, minimum = 0, maximum = 10000)]
    offset: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Filters {
    /// Only articles with this tag.
    tag: Option<String>,
    /// Only articles by this username.
    author: Option<String>,
    /// Only articles this username favorited.
    favorited: Option<String>,
}

/// Loads one page of the articles `filter` selects and renders it for `viewer`.
async fn list_page(
    state: &AppState,
    filter: ArticleFilter,
    query: &PageQuery,
    viewer: Option<i64>,
) -> AppResult<HttpResponse> {
    let page = Page::parse(query.limit.as_deref(), query.offset.as_deref())?;
    state
        .db
        .run(async |conn| {
            let (details, total) =
                articles::list(conn, &filter, page.limit, page.offset, viewer).await?;
            Ok(HttpResponse::Ok().json(ArticlesResponse {
                articles: details.into_iter().map(ArticleSummary::from).collect(),
                articles_count: total,
            }))
        })
        .await
}

/// Spec: GET /articles/feed (Get recent articles from users you follow).
#[utoipa::path(
    tag = "Articles",
    params(PageQuery),
    security(("Token" = [])),
    responses(
        (status = 200, description = "Newest first", body = ArticlesResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 422, description = "Invalid limit or offset", body = ErrorBody),
    )
)]
#[get("/articles/feed")]
async fn feed_articles(
    auth: AuthUser,
    state: web::Data<AppState>,
    page: web::Query<PageQuery>,
) -> AppResult<HttpResponse> {
    let filter = ArticleFilter {
        followed_by: Some(auth.user.id),
        ..ArticleFilter::default()
    };
    list_page(&state, filter, &page, Some(auth.user.id)).await
}

/// Spec: GET /articles (Get recent articles globally), filtered by tag,
/// author or favoriting user.
#[utoipa::path(
    tag = "Articles",
    params(Filters, PageQuery),
    security((), ("Token" = [])),
    responses(
        (status = 200, description = "Newest first", body = ArticlesResponse),
        (status = 401, description = "Invalid token", body = ErrorBody),
        (status = 422, description = "Invalid limit or offset", body = ErrorBody),
    )
)]
#[get("/articles")]
async fn list_articles(
    auth: MaybeAuthUser,
    state: web::Data<AppState>,
    filters: web::Query<Filters>,
    page: web::Query<PageQuery>,
) -> AppResult<HttpResponse> {
    let filters = filters.into_inner();
    let filter = ArticleFilter {
        // As tags are stored, so that `café` finds `café` however typed.
        tag: filters.tag.as_deref().map(normalized_tag),
        author: filters.author,
        favorited_by: filters.favorited,
        followed_by: None,
    };
    list_page(&state, filter, &page, auth.user_id()).await
}
