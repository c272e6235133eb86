//! The OpenAPI document, generated from the handlers' annotations, and the
//! browsable docs served from assets compiled into the binary.

use actix_web::dev::HttpServiceFactory;
use actix_web::http::header::ContentType;
use actix_web::{web, App, HttpResponse};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::domain::FieldErrors;
use crate::error::ErrorBody;

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
        crate::routes::register_documented(App::new().into_utoipa_app().openapi(ApiDoc::openapi()))
            .split_for_parts();
    document
}

/// The document as JSON, serialized once at boot: every worker serves the
/// same bytes, rather than each cloning the document at start and
/// serializing it again on every request.
pub fn document_json() -> Result<web::Bytes, serde_json::Error> {
    serde_json::to_vec(&document()).map(web::Bytes::from)
}

/// `/api/openapi.json` and the Swagger UI at `/api/docs/`. Registered before
/// the `/api` scope, which would otherwise answer these paths with 404.
pub fn docs(json: web::Bytes) -> impl HttpServiceFactory {
    let document = web::resource(DOCUMENT_PATH).route(web::get().to(move || {
        let json = json.clone();
        async move {
            HttpResponse::Ok()
                .content_type(ContentType::json())
                .body(json)
        }
    }));
    let ui = SwaggerUi::new("/api/docs/{_:.*}").config(Config::new([DOCUMENT_PATH]));
    (document, ui)
}

const DOCUMENT_PATH: &str = "/api/openapi.json";

/// `/api/docs` without the trailing slash.
pub async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header(("Location", "/api/docs/"))
        .finish()
}

pub fn docs_redirect_route() -> actix_web::Route {
    web::get().to(docs_redirect)
}
