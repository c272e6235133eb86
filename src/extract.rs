//! Request bodies, paths and queries, with their errors in the API's shape.
//!
//! `JsonBody` only reads the bytes; the handler parses them after the auth
//! extractor has run, so a bad body never hides a 401.

use std::future::{poll_fn, Future};
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{FromRequest, HttpRequest};
use futures_core::Stream;
use serde::de::DeserializeOwned;

use crate::error::{AppError, AppResult};

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON request body, read but not yet parsed.
pub struct JsonBody<T> {
    bytes: Bytes,
    _target: PhantomData<T>,
}

impl<T: DeserializeOwned> JsonBody<T> {
    /// Parses the body; errors name the offending field when there is one.
    pub fn parse(self) -> AppResult<T> {
        let mut deserializer = serde_json::Deserializer::from_slice(&self.bytes);
        serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
            let path = error.path().to_string();
            let inner = error.into_inner();
            let field = field_of(&path);
            let message = strip_position(&inner.to_string());
            if inner.is_data() {
                AppError::validation(field.unwrap_or("body"), message)
            } else {
                AppError::validation("body", format!("is not valid JSON: {message}"))
            }
        })
    }
}

/// The field a serde path points at: `article.tagList[2]` is `tagList`;
/// a path into a bare array or the root has none.
fn field_of(path: &str) -> Option<&str> {
    let last = path.rsplit('.').next()?;
    let name = last.split('[').next().unwrap_or_default();
    (!name.is_empty() && name != "?").then_some(name)
}

/// serde_json appends " at line 1 column 7"; the field name says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

impl<T: 'static> FromRequest for JsonBody<T> {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = AppResult<Self>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let content_type_ok = request
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| v.to_str().map(is_json).unwrap_or(false))
            .unwrap_or(true);
        let declared = request
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if !content_type_ok {
                return Err(AppError::UnsupportedMediaType);
            }
            if declared.is_some_and(|length| length > MAX_BODY_BYTES) {
                return Err(AppError::PayloadTooLarge);
            }
            let mut body = BytesMut::new();
            while let Some(chunk) = poll_fn(|cx| Pin::new(&mut payload).poll_next(cx)).await {
                let chunk = chunk
                    .map_err(|e| AppError::validation("body", format!("could not be read: {e}")))?;
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(AppError::PayloadTooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(JsonBody {
                bytes: body.freeze(),
                _target: PhantomData,
            })
        })
    }
}

/// Path and query errors as 422s in the API's shape, not actix's plain-text 400s.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|error, _| {
        AppError::validation("path", strip_position(&error.to_string())).into()
    })
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|error, _| {
        AppError::validation("query", strip_position(&error.to_string())).into()
    })
}

#[cfg(test)]
mod tests {
    use super::field_of;

    #[test]
    fn the_field_is_the_last_named_segment_of_the_path() {
        assert_eq!(field_of("article.title"), Some("title"));
        assert_eq!(field_of("article.tagList[2]"), Some("tagList"));
        assert_eq!(field_of("[0][0]"), None);
        assert_eq!(field_of("."), None);
    }
}
