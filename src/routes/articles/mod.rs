//! Articles (spec: "Articles", "Favorites", "Comments").

mod comments;
mod favorites;
mod listing;

use crate::routes::Routes;
use actix_web::http::StatusCode;
use actix_web::{delete, get, post, put, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use super::views::ArticleResponse;
use crate::db::articles::{self, Article};
use crate::domain::articles::{ArticleChanges, NewArticle};
use crate::domain::{Patch, Slug};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::extract::JsonBody;
use crate::extract::{AuthUser, MaybeAuthUser};
use crate::state::AppState;
use diesel_async::AsyncPgConnection;

pub fn configure(cfg: &mut impl Routes) {
    // The feed before `/articles/{slug}`, or "feed" would be taken for a slug.
    listing::configure(cfg);
    cfg.service(get_article)
        .service(create_article)
        .service(update_article)
        .service(delete_article);
    favorites::configure(cfg);
    comments::configure(cfg);
}

/// How many times a create retries after drawing a slug that exists.
const SLUG_ATTEMPTS: usize = 3;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewArticlePayload {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    tag_list: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewArticleRequest {
    article: NewArticlePayload,
}

/// Absent fields are left alone; null is an error for every field, and
/// `tagList: []` removes every tag.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateArticlePayload {
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    title: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    description: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    body: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    tag_list: Patch<Vec<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateArticleRequest {
    article: UpdateArticlePayload,
}

/// The article with this slug, or 404.
async fn find_article(conn: &mut AsyncPgConnection, slug: &str) -> AppResult<Article> {
    articles::find_by_slug(conn, slug)
        .await?
        .ok_or(AppError::NotFound("article"))
}

/// The article with this slug if `auth` wrote it: 404, then 403.
async fn find_own_article(
    conn: &mut AsyncPgConnection,
    slug: &str,
    auth: &AuthUser,
) -> AppResult<Article> {
    let article = find_article(conn, slug).await?;
    if article.author_id != auth.user.id {
        return Err(AppError::Forbidden("article"));
    }
    Ok(article)
}

/// A write that lost a race with a DELETE of its article: the row to
/// update is gone (`NotFound`), or a row pointing at it cannot be written
/// (foreign-key violation). Either way the client's answer is the 404 a
/// moment later would have given, not a 500.
fn or_article_gone(error: diesel::result::Error) -> AppError {
    use diesel::result::{DatabaseErrorKind, Error};
    match error {
        Error::NotFound | Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
            AppError::NotFound("article")
        }
        other => other.into(),
    }
}

/// A slug another article has is a 409 on `slug`; any other failure goes
/// to `otherwise`.
fn slug_conflict_or(
    error: diesel::result::Error,
    otherwise: impl FnOnce(diesel::result::Error) -> AppError,
) -> AppError {
    if articles::is_slug_taken(&error) {
        AppError::Conflict("slug")
    } else {
        otherwise(error)
    }
}

/// The article as the API shows it to `viewer`, with `status`.
async fn article_response(
    conn: &mut AsyncPgConnection,
    article: Article,
    viewer: Option<i64>,
    status: StatusCode,
) -> AppResult<HttpResponse> {
    let details = articles::details(conn, article, viewer)
        .await
        .map_err(or_article_gone)?;
    Ok(HttpResponse::build(status).json(ArticleResponse::from(details)))
}

fn new_slug(title: &str) -> AppResult<Slug> {
    Slug::for_title(title).map_err(AppError::internal)
}

/// Spec: GET /articles/{slug} (Get an article).
#[utoipa::path(
    tag = "Articles",
    params(("slug" = String, Path, description = "Slug of the article")),
    security((), ("Token" = [])),
    responses(
        (status = 200, description = "The article", body = ArticleResponse),
        (status = 401, description = "Invalid token", body = ErrorBody),
        (status = 404, description = "No such article", body = ErrorBody),
    )
)]
#[get("/articles/{slug}")]
async fn get_article(
    auth: MaybeAuthUser,
    state: web::Data<AppState>,
    slug: web::Path<String>,
) -> AppResult<HttpResponse> {
    state
        .db
        .run(async |conn| {
            let details = articles::find_with_details(conn, &slug, auth.user_id())
                .await?
                .ok_or(AppError::NotFound("article"))?;
            Ok(HttpResponse::Ok().json(ArticleResponse::from(details)))
        })
        .await
}

/// Spec: POST /articles (Create an article). The article and its tags are
/// written in one transaction; equal titles get distinct slugs.
#[utoipa::path(
    tag = "Articles",
    security(("Token" = [])),
    request_body = NewArticleRequest,
    responses(
        (status = 201, description = "Created", body = ArticleResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 422, description = "Invalid input", body = ErrorBody),
    )
)]
#[post("/articles")]
async fn create_article(
    auth: AuthUser,
    state: web::Data<AppState>,
    body: JsonBody<NewArticleRequest>,
) -> AppResult<HttpResponse> {
    let payload = body.parse()?.article;
    let new = NewArticle::parse(
        payload.title,
        payload.description,
        payload.body,
        payload.tag_list,
    )?;

    auth.write(&state.db, async |conn| {
        let mut attempt = 0;
        let article = loop {
            attempt += 1;
            let slug = new_slug(&new.title)?;
            let row = articles::NewArticleRow {
                author_id: auth.user.id,
                slug: slug.as_str(),
                title: &new.title,
                description: &new.description,
                body: &new.body,
            };
            match articles::create(conn, &row, new.tags.as_slice()).await {
                Err(error) if articles::is_slug_taken(&error) && attempt < SLUG_ATTEMPTS => {
                    continue
                }
                outcome => break outcome.map_err(|error| slug_conflict_or(error, AppError::from)),
            }
        }?;
        article_response(conn, article, Some(auth.user.id), StatusCode::CREATED).await
    })
    .await
}

/// Spec: PUT /articles/{slug} (Update an article). A new title gives a new
/// slug; `createdAt` never changes, `updatedAt` does.
#[utoipa::path(
    tag = "Articles",
    params(("slug" = String, Path, description = "Slug of the article")),
    security(("Token" = [])),
    request_body = UpdateArticleRequest,
    responses(
        (status = 200, description = "Updated", body = ArticleResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not the author", body = ErrorBody),
        (status = 404, description = "No such article", body = ErrorBody),
        (status = 422, description = "Invalid input", body = ErrorBody),
    )
)]
#[put("/articles/{slug}")]
async fn update_article(
    auth: AuthUser,
    state: web::Data<AppState>,
    slug: web::Path<String>,
    body: JsonBody<UpdateArticleRequest>,
) -> AppResult<HttpResponse> {
    auth.write(&state.db, async |conn| {
        let article = find_own_article(conn, &slug, &auth).await?;
        let payload = body.parse()?.article;
        let requested = ArticleChanges::parse(
            payload.title,
            payload.description,
            payload.body,
            payload.tag_list,
        )?;
        let slug = match requested.title.as_deref().filter(|t| *t != article.title) {
            Some(title) => Some(new_slug(title)?),
            None => None,
        };
        let changes = articles::ArticleChangeset {
            slug: slug.map(Slug::into_inner),
            title: requested.title,
            description: requested.description,
            body: requested.body,
        };

        let updated = articles::update(
            conn,
            article.id,
            &changes,
            requested.tags.as_ref().map(|t| t.as_slice()),
        )
        .await
        .map_err(|error| slug_conflict_or(error, or_article_gone))?;
        article_response(conn, updated, Some(auth.user.id), StatusCode::OK).await
    })
    .await
}

/// Spec: DELETE /articles/{slug} (Delete an article), with its comments,
/// tags and favorites.
#[utoipa::path(
    tag = "Articles",
    params(("slug" = String, Path, description = "Slug of the article")),
    security(("Token" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not the author", body = ErrorBody),
        (status = 404, description = "No such article", body = ErrorBody),
    )
)]
#[delete("/articles/{slug}")]
async fn delete_article(
    auth: AuthUser,
    state: web::Data<AppState>,
    slug: web::Path<String>,
) -> AppResult<HttpResponse> {
    auth.write(&state.db, async |conn| {
        let article = find_own_article(conn, &slug, &auth).await?;
        articles::delete(conn, article.id).await?;
        Ok(HttpResponse::NoContent().finish())
    })
    .await
}
