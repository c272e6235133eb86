//! Comments (spec: "Comments").

use crate::routes::Routes;
use actix_web::{delete, get, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{find_article, or_article_gone};
use crate::db::{comments, profiles};
use crate::domain::articles::NewComment;
use crate::domain::page::Page;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::extract::JsonBody;
use crate::extract::{AuthUser, MaybeAuthUser};
use crate::routes::views::{CommentResponse, CommentView, CommentsResponse};
use crate::state::AppState;

/// Comments per page when `limit` is not given: the most a page may hold,
/// so that clients of the spec (which knows no paging) see every comment
/// of all but the longest threads.
const COMMENTS_PAGE: i64 = 100;

pub fn configure(cfg: &mut impl Routes) {
    cfg.service(add_comment)
        .service(list_comments)
        .service(delete_comment);
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewCommentPayload {
    #[serde(default)]
    body: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewCommentRequest {
    comment: NewCommentPayload,
}

/// Spec: POST /articles/{slug}/comments (Create a comment).
#[utoipa::path(
    tag = "Comments",
    params(("slug" = String, Path, description = "Slug of the article")),
    security(("Token" = [])),
    request_body = NewCommentRequest,
    responses(
        (status = 201, description = "Created", body = CommentResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such article", body = ErrorBody),
        (status = 422, description = "Invalid input", body = ErrorBody),
    )
)]
#[post("/articles/{slug}/comments")]
async fn add_comment(
    auth: AuthUser,
    state: web::Data<AppState>,
    slug: web::Path<String>,
    body: JsonBody<NewCommentRequest>,
) -> AppResult<HttpResponse> {
    let comment = auth
        .write(&state.db, async |conn| {
            let article = find_article(conn, &slug).await?;
            let new = NewComment::parse(body.parse()?.comment.body)?;

            comments::create(conn, article.id, auth.user.id, &new.body)
                .await
                .map_err(or_article_gone)
        })
        .await?;
    Ok(HttpResponse::Created().json(CommentResponse {
        comment: CommentView::new(comment, auth.user, false),
    }))
}

/// A page of comments. The spec returns every comment; without a bound
/// one article's thousands of long comments make every GET megabytes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CommentPageQuery {
    /// How many comments to return (1 to 100, default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// How many comments to skip, newest first (0 to 10000, default 0).
    #[param(value_type = Option<i64>, minimum = 0, maximum = 10000)]
    offset: Option<String>,
}

/// Spec: GET /articles/{slug}/comments (Get comments for an article),
/// newest first, a page of at most 100 (an extension: `limit`, `offset`);
/// two queries whatever their number.
#[utoipa::path(
    tag = "Comments",
    params(("slug" = String, Path, description = "Slug of the article"), CommentPageQuery),
    security((), ("Token" = [])),
    responses(
        (status = 200, description = "Newest first", body = CommentsResponse),
        (status = 401, description = "Invalid token", body = ErrorBody),
        (status = 404, description = "No such article", body = ErrorBody),
        (status = 422, description = "Invalid limit or offset", body = ErrorBody),
    )
)]
#[get("/articles/{slug}/comments")]
async fn list_comments(
    auth: MaybeAuthUser,
    state: web::Data<AppState>,
    slug: web::Path<String>,
    page: web::Query<CommentPageQuery>,
) -> AppResult<HttpResponse> {
    let page =
        Page::parse_with_default(page.limit.as_deref(), page.offset.as_deref(), COMMENTS_PAGE)?;
    state
        .db
        .run(async |conn| {
            let article = find_article(conn, &slug).await?;
            let rows = comments::for_article(conn, article.id, page.limit, page.offset).await?;
            let followed = match auth.user_id() {
                Some(viewer) => {
                    let authors: Vec<i64> = rows.iter().map(|(_, author)| author.id).collect();
                    profiles::followed_among(conn, viewer, &authors).await?
                }
                None => Default::default(),
            };
            let comments = rows
                .into_iter()
                .map(|(comment, author)| {
                    let following = followed.contains(&author.id);
                    CommentView::new(comment, author, following)
                })
                .collect();
            Ok(HttpResponse::Ok().json(CommentsResponse { comments }))
        })
        .await
}

/// Spec: DELETE /articles/{slug}/comments/{id} (Delete a comment); only its
/// author may.
#[utoipa::path(
    tag = "Comments",
    params(
        ("slug" = String, Path, description = "Slug of the article"),
        ("id" = i64, Path, description = "Id of the comment"),
    ),
    security(("Token" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not the author", body = ErrorBody),
        (status = 404, description = "No such article or comment", body = ErrorBody),
        (status = 422, description = "The id is not an integer", body = ErrorBody),
    )
)]
#[delete("/articles/{slug}/comments/{id}")]
async fn delete_comment(
    auth: AuthUser,
    state: web::Data<AppState>,
    path: web::Path<(String, i64)>,
) -> AppResult<HttpResponse> {
    let (slug, id) = path.into_inner();
    auth.write(&state.db, async |conn| {
        let article = find_article(conn, &slug).await?;
        let comment = comments::find(conn, article.id, id)
            .await?
            .ok_or(AppError::NotFound("comment"))?;
        if comment.author_id != auth.user.id {
            return Err(AppError::Forbidden("comment"));
        }
        comments::delete(conn, comment.id).await?;
        Ok(HttpResponse::NoContent().finish())
    })
    .await
}
