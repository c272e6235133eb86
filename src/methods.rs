//! Methods the way HTTP means them: `HEAD` is answered as `GET` without the
//! body, and a method a known path does not take is 405 with `Allow`, not
//! 404. actix's route macros put the method in the resource's guard, so
//! the router alone sees only "no match" for both.

use actix_web::body::MessageBody;
use actix_web::dev::{ResourceDef, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpRequest, HttpResponse};
use utoipa::openapi::OpenApi;

use crate::error::AppError;

/// Every path pattern the server routes, with the methods it takes. Read
/// from the OpenAPI document, which is collected from the same route
/// registrations (routes::register_documented), plus the docs' own paths.
pub struct KnownMethods(Vec<(ResourceDef, Vec<Method>)>);

impl KnownMethods {
    pub fn from_document(document: &OpenApi) -> Self {
        let mut known: Vec<(ResourceDef, Vec<Method>)> = document
            .paths
            .paths
            .iter()
            .map(|(pattern, item)| {
                let methods = [
                    (Method::GET, item.get.is_some()),
                    (Method::PUT, item.put.is_some()),
                    (Method::POST, item.post.is_some()),
                    (Method::DELETE, item.delete.is_some()),
                    (Method::PATCH, item.patch.is_some()),
                ]
                .into_iter()
                .filter_map(|(method, present)| present.then_some(method))
                .collect();
                (ResourceDef::new(pattern.as_str()), methods)
            })
            .collect();
        for pattern in ["/api/openapi.json", "/api/docs", "/api/docs/{_:.*}"] {
            known.push((ResourceDef::new(pattern), vec![Method::GET]));
        }
        Self(known)
    }

    /// The `Allow` value for `path`, or None when no route has that path.
    /// Several patterns can match one path (`/api/articles/feed` is also
    /// an `{slug}`): the router tries them all, so all their methods count.
    pub fn allowed(&self, path: &str) -> Option<String> {
        let mut methods: Vec<&Method> = self
            .0
            .iter()
            .filter(|(pattern, _)| pattern.is_match(path))
            .flat_map(|(_, methods)| methods)
            .collect();
        if methods.is_empty() {
            return None;
        }
        if methods.contains(&&Method::GET) {
            methods.push(&Method::HEAD);
        }
        let order = |m: &Method| {
            ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
                .iter()
                .position(|name| *name == m.as_str())
        };
        methods.sort_by_key(|m| order(m));
        methods.dedup();
        Some(
            methods
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        )
    }
}

/// Routes a `HEAD` as its `GET`. The connection's codec remembers the
/// request was `HEAD` and sends the headers (Content-Length included)
/// without the body.
pub async fn head_as_get(
    mut request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if request.method() == Method::HEAD {
        request.head_mut().method = Method::GET;
    }
    next.call(request).await
}

/// What no route matched: 405 with `Allow` on a known path, else 404.
pub async fn unrouted(
    request: HttpRequest,
    known: Option<web::Data<KnownMethods>>,
) -> Result<HttpResponse, AppError> {
    match known.and_then(|known| known.allowed(request.path())) {
        Some(allow) => Err(AppError::MethodNotAllowed { allow }),
        None => Err(AppError::NotFound("route")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_matching_a_path_contributes_its_methods() {
        let known = KnownMethods::from_document(&crate::openapi::document());
        assert_eq!(known.allowed("/health").as_deref(), Some("GET, HEAD"));
        assert_eq!(
            known.allowed("/api/user").as_deref(),
            Some("GET, HEAD, PUT")
        );
        assert_eq!(
            known.allowed("/api/articles/feed").as_deref(),
            Some("GET, HEAD, PUT, DELETE")
        );
        assert_eq!(known.allowed("/api/nothing-here"), None);
    }
}
