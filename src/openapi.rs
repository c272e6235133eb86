//! The OpenAPI document, generated from the handlers' annotations, and the
//! browsable docs served from assets compiled into the binary.

use actix_web::{web, App, HttpResponse};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::{ErrorBody, FieldErrors};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Conduit API",
        version = "2.0.0",
        description = "The RealWorld Conduit API. Send the token from registration or login as `Authorization: Token <token>`."
    ),
    components(schemas(ErrorBody, FieldErrors)),
    modifiers(&TokenScheme),
    tags(
        (name = "User and Authentication"),
        (name = "Profile"),
        (name = "Articles"),
        (name = "Favorites"),
        (name = "Comments"),
        (name = "Tags"),
        (name = "Operations", description = "Health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

struct TokenScheme;

impl Modify for TokenScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "Token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`Token <token>` (or `Bearer <token>`)",
            ))),
        );
    }
}

/// The document of every route [`crate::routes::register`] registers.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, document) =
        crate::routes::register(App::new().into_utoipa_app().openapi(ApiDoc::openapi()))
            .split_for_parts();
    document
}

/// `/api/openapi.json` and the Swagger UI at `/api/docs/`. Registered before
/// the `/api` scope, which would otherwise answer these paths with 404.
pub fn docs(api: utoipa::openapi::OpenApi) -> SwaggerUi {
    SwaggerUi::new("/api/docs/{_:.*}").url("/api/openapi.json", api)
}

/// `/api/docs` without the trailing slash.
pub async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header(("Location", "/api/docs/"))
        .finish()
}

pub fn docs_redirect_route() -> actix_web::Route {
    web::get().to(docs_redirect)
}
