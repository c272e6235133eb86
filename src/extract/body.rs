//! Request bodies, paths and queries, with their errors in the API's shape.
//!
//! `JsonBody` only reads the bytes; the handler parses them after the auth
//! extractor has run, so a bad body never hides a 401. Every body is read
//! through it, so its checks hold for every route: JSON by Content-Type
//! (what a browser can send cross-site without a preflight never is), a
//! size cap, and a deadline for the whole body.

use std::future::{poll_fn, Future};
use std::marker::PhantomData;
use std::pin::Pin;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header::{HeaderMap, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{FromRequest, HttpRequest};
use futures_core::Stream;
use serde::de::DeserializeOwned;

use crate::error::{AppError, AppResult};

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How long a body may take to arrive (CONDUIT_BODY_TIMEOUT), registered
/// as app data; without it, [`BodyDeadline::DEFAULT`].
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub Duration);

impl BodyDeadline {
    pub const DEFAULT: Self = Self(Duration::from_secs(10));
}

/// A JSON request body, read but not yet parsed.
pub struct JsonBody<T> {
    bytes: Bytes,
    _target: PhantomData<T>,
}

impl<T: DeserializeOwned> JsonBody<T> {
    /// Parses the body, which must be exactly one JSON value (whitespace
    /// may follow it); errors name the offending field when there is one.
    pub fn parse(self) -> AppResult<T> {
        let mut deserializer = serde_json::Deserializer::from_slice(&self.bytes);
        let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
            let path = error.path().to_string();
            let inner = error.into_inner();
            let message = strip_position(&inner.to_string());
            if inner.is_data() {
                data_error(&path, &message)
            } else {
                AppError::validation("body", format!("is not valid JSON: {message}"))
            }
        })?;
        deserializer.end().map_err(|_| {
            AppError::validation("body", "must be exactly one JSON value; text follows it")
        })?;
        Ok(value)
    }
}

/// A value of the wrong shape, said in our words rather than serde's
/// (`invalid type: string "x", expected a sequence`).
fn data_error(path: &str, message: &str) -> AppError {
    if let Some(missing) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        return AppError::validation(missing, "is required");
    }
    let field = field_of(path).unwrap_or("body");
    let in_a_list = path.ends_with(']');
    let wording = message
        .rsplit_once(", expected ")
        .filter(|_| message.starts_with("invalid type: ") || message.starts_with("invalid value: "))
        .map(|(_, expected)| what_it_must_be(expected, in_a_list));
    match wording {
        Some(wording) => AppError::validation(field, wording),
        None => AppError::validation(field, message),
    }
}

/// serde's expectation (a Visitor's `expecting`) as our message. Every
/// list in the API is a list of strings.
fn what_it_must_be(expected: &str, in_a_list: bool) -> String {
    let (one, many) = match expected {
        "a string" => ("a string", "strings"),
        "a sequence" => return "must be a list of strings".to_owned(),
        "a boolean" => ("true or false", "booleans"),
        e if e.starts_with("struct ") || e == "a map" => ("an object", "objects"),
        e if [
            "u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "usize", "isize",
        ]
        .iter()
        .any(|t| e.contains(t)) =>
        {
            ("a whole number", "whole numbers")
        }
        _ => ("something else", "something else"),
    };
    if in_a_list {
        format!("must be a list of {many}")
    } else {
        format!("must be {one}")
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

/// `application/json`, with parameters or not. Not the `+json` types: a
/// plain JSON body is all the API takes.
fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .eq_ignore_ascii_case("application/json")
}

/// What refuses a body from its headers alone: a Content-Type that is not
/// JSON (including none: `fetch` sends none for a bare Blob, with no
/// preflight), then a declared length over the cap. A request with no
/// Content-Type and no body at all carries nothing to refuse: it goes on
/// to be told, in a 422 as the spec has it, that its body is missing.
fn refusal_from_headers(headers: &HeaderMap) -> Option<AppError> {
    let content_type = headers.get(CONTENT_TYPE);
    let content_type_ok = content_type
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json);
    let nothing_sent = content_type.is_none() && declares_no_body(headers);
    if !(content_type_ok || nothing_sent) {
        return Some(AppError::UnsupportedMediaType);
    }
    refusal_before_body(headers)
}

/// No Transfer-Encoding, and no Content-Length or a zero one.
fn declares_no_body(headers: &HeaderMap) -> bool {
    !headers.contains_key(TRANSFER_ENCODING)
        && headers
            .get(CONTENT_LENGTH)
            .is_none_or(|v| v.to_str().is_ok_and(|v| v.trim() == "0"))
}

/// A declared body over the cap, which no route accepts: refused before a
/// byte of it is read, also before `100 Continue`.
pub fn refusal_before_body(headers: &HeaderMap) -> Option<AppError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    declared
        .is_some_and(|length| length > MAX_BODY_BYTES as u64)
        .then_some(AppError::PayloadTooLarge)
}

async fn read_capped(mut payload: Payload) -> AppResult<Bytes> {
    let mut body = BytesMut::new();
    while let Some(chunk) = poll_fn(|cx| Pin::new(&mut payload).poll_next(cx)).await {
        let chunk =
            chunk.map_err(|e| AppError::validation("body", format!("could not be read: {e}")))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(AppError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

impl<T: 'static> FromRequest for JsonBody<T> {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = AppResult<Self>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let refusal = refusal_from_headers(request.headers());
        let deadline = request
            .app_data::<BodyDeadline>()
            .copied()
            .unwrap_or(BodyDeadline::DEFAULT);
        let payload = payload.take();
        Box::pin(async move {
            if let Some(refusal) = refusal {
                return Err(refusal);
            }
            let bytes = tokio::time::timeout(deadline.0, read_capped(payload))
                .await
                .map_err(|_| AppError::BodyTimeout)??;
            Ok(JsonBody {
                bytes,
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
    use super::{field_of, what_it_must_be};

    #[test]
    fn expectations_are_said_in_our_words() {
        assert_eq!(what_it_must_be("a string", false), "must be a string");
        assert_eq!(
            what_it_must_be("a string", true),
            "must be a list of strings"
        );
        assert_eq!(
            what_it_must_be("a sequence", false),
            "must be a list of strings"
        );
        assert_eq!(
            what_it_must_be("struct UserUpdatePayload", false),
            "must be an object"
        );
        assert_eq!(what_it_must_be("u32", false), "must be a whole number");
    }

    #[test]
    fn the_field_is_the_last_named_segment_of_the_path() {
        assert_eq!(field_of("article.title"), Some("title"));
        assert_eq!(field_of("article.tagList[2]"), Some("tagList"));
        assert_eq!(field_of("[0][0]"), None);
        assert_eq!(field_of("."), None);
    }
}
