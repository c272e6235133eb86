//! Tags (spec: "Tags").

use crate::routes::Routes;
use actix_web::{get, web, HttpResponse};

use super::views::TagsResponse;
use crate::db::tags;
use crate::error::{AppResult, ErrorBody};
use crate::state::AppState;

pub fn configure(cfg: &mut impl Routes) {
    cfg.service(list_tags);
}

/// Tags in the answer at most.
pub const TAGS_LIMIT: i64 = 100;
/// How many of the newest tag uses the popularity is counted over.
const TAGS_WINDOW: i64 = 10_000;

/// Spec: GET /tags (Get tags): the popular tags, at most 100: those used
/// by the most authors among the newest 10,000 tag uses, so that one
/// account cannot fill the list by posting a lot. The spec returns
/// every tag; with no bound that answer grows forever, and with a bound by
/// name anyone could push every real tag off it with a hundred new ones.
#[utoipa::path(
    tag = "Tags",
    responses(
        (status = 200, description = "At most 100 popular tags: those used by the most authors among the newest 10,000 tag uses, first the most used", body = TagsResponse),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
#[get("/tags")]
async fn list_tags(state: web::Data<AppState>) -> AppResult<HttpResponse> {
    state
        .db
        .run(async |conn| {
            let tags = tags::popular_tags(conn, TAGS_WINDOW, TAGS_LIMIT).await?;
            Ok(HttpResponse::Ok().json(TagsResponse { tags }))
        })
        .await
}
