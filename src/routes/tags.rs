//! Tags (spec: "Tags").

use actix_web::{get, web, HttpResponse};
use utoipa_actix_web::service_config::ServiceConfig;

use super::views::TagsResponse;
use crate::db::articles;
use crate::error::{AppResult, ErrorBody};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_tags);
}

/// Spec: GET /tags (Get tags): every tag some article carries, by name.
#[utoipa::path(
    tag = "Tags",
    responses(
        (status = 200, description = "Tags in use", body = TagsResponse),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
#[get("/tags")]
async fn list_tags(state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let tags = articles::tags_in_use(&mut conn).await?;
    Ok(HttpResponse::Ok().json(TagsResponse { tags }))
}
