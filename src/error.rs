//! The one error type of the HTTP layer, and the one place it becomes a
//! response: `{"errors": {"<field>": ["<message>"]}}` with the right status.
//! Unexpected errors keep their cause, logged whole once, here.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::hashing::HashingUnavailable;
use crate::auth::password::PasswordError;
use crate::auth::sign_in::SignInError;
use crate::domain::FieldErrors;

/// What a taken username or email is told, as a 409 or a 422.
pub const TAKEN: &str = "has already been taken";

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub errors: FieldErrors,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 401: `token` is missing, or is invalid (unknown, expired or ended).
    #[error("token {0}")]
    Unauthorized(&'static str),
    /// 401: wrong email or password (one message for both: no account probing).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// 403 on the named resource (`article`, `comment`).
    #[error("{0} forbidden")]
    Forbidden(&'static str),
    /// 404 of the named resource (`article`, `profile`, `comment`).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409: the named field's value is taken.
    #[error("{0} has already been taken")]
    Conflict(&'static str),
    /// 422: invalid input, by field.
    #[error("invalid input: {0:?}")]
    Validation(FieldErrors),
    /// 429: too many failed logins from this address or for this account.
    #[error("too many failed logins")]
    TooManyFailedLogins { retry_after_secs: u64 },
    /// 429: too many registrations from this address.
    #[error("too many registrations")]
    TooManyRegistrations { retry_after_secs: u64 },
    /// 429: too many password changes from this session or for this user.
    #[error("too many password changes")]
    TooManyPasswordChanges { retry_after_secs: u64 },
    /// 413: the body is larger than the server accepts.
    #[error("body too large")]
    PayloadTooLarge,
    /// 408: the body did not arrive within CONDUIT_BODY_TIMEOUT; the
    /// connection is closed.
    #[error("body not received in time")]
    BodyTimeout,
    /// 405 on a known path, with the methods it takes (`GET, HEAD`).
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
    /// 415: the body is not JSON.
    #[error("unsupported content type")]
    UnsupportedMediaType,
    /// 503 with Retry-After: too many passwords are waiting to be hashed;
    /// refused at once instead of queued behind a flood.
    #[error("password hashing is saturated")]
    HashingBusy,
    /// 503: the database cannot be reached (pool timeout, closed connection).
    #[error("database unavailable")]
    DatabaseUnavailable(#[source] anyhow::Error),
    /// 500: a bug or an unexpected database answer. Logged, never shown.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(FieldErrors::single(field, message))
    }

    /// A 500 that keeps `error` and its causes for the log.
    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Self::Internal(error.into())
    }

    fn body(&self) -> FieldErrors {
        match self {
            AppError::Unauthorized(reason) => FieldErrors::single("token", *reason),
            AppError::InvalidCredentials => FieldErrors::single("credentials", "invalid"),
            AppError::Forbidden(resource) => FieldErrors::single(*resource, "forbidden"),
            AppError::NotFound(resource) => FieldErrors::single(*resource, "not found"),
            AppError::Conflict(field) => FieldErrors::single(*field, TAKEN),
            AppError::Validation(errors) => errors.clone(),
            AppError::TooManyFailedLogins { .. } => {
                FieldErrors::single("credentials", "too many failed attempts; retry later")
            }
            AppError::TooManyRegistrations { .. } => FieldErrors::single(
                "user",
                "too many registrations from this address; retry later",
            ),
            AppError::TooManyPasswordChanges { .. } => {
                FieldErrors::single("password", "changed too often; retry later")
            }
            AppError::PayloadTooLarge => FieldErrors::single("body", "is too large"),
            AppError::BodyTimeout => FieldErrors::single("body", "was not received in time"),
            AppError::MethodNotAllowed { allow } => {
                FieldErrors::single("method", format!("is not allowed here; allowed: {allow}"))
            }
            AppError::UnsupportedMediaType => {
                FieldErrors::single("body", "must be JSON (Content-Type: application/json)")
            }
            AppError::HashingBusy => {
                FieldErrors::single("server", "too busy to check passwords; retry shortly")
            }
            AppError::DatabaseUnavailable(_) => FieldErrors::single("database", "unavailable"),
            AppError::Internal(_) => FieldErrors::single("server", "internal error"),
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::Unauthorized(_) | AppError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::TooManyFailedLogins { .. }
            | AppError::TooManyRegistrations { .. }
            | AppError::TooManyPasswordChanges { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            AppError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            AppError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::DatabaseUnavailable(_) | AppError::HashingBusy => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        // `{:#}` prints the error and each of its causes.
        match self {
            AppError::Internal(error) => {
                tracing::error!(error = %format!("{error:#}"), "request failed")
            }
            AppError::DatabaseUnavailable(error) => {
                tracing::warn!(error = %format!("{error:#}"), "database unavailable")
            }
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        if let AppError::TooManyFailedLogins { retry_after_secs }
        | AppError::TooManyRegistrations { retry_after_secs }
        | AppError::TooManyPasswordChanges { retry_after_secs } = self
        {
            response.insert_header(("Retry-After", retry_after_secs.to_string()));
        }
        if let AppError::HashingBusy = self {
            response.insert_header(("Retry-After", "1"));
        }
        if let AppError::MethodNotAllowed { allow } = self {
            response.insert_header(("Allow", allow.as_str()));
        }
        if let AppError::BodyTimeout = self {
            // The rest of the body may still come: the connection cannot
            // carry another request.
            response.force_close();
        }
        response.json(ErrorBody {
            errors: self.body(),
        })
    }
}

/// A full hashing queue is load (503); any other failure to hash or check
/// a password is a bug or a stopped hashing thread (500).
impl From<PasswordError> for AppError {
    fn from(error: PasswordError) -> Self {
        match error {
            PasswordError::Hashing(HashingUnavailable::Busy) => AppError::HashingBusy,
            error => AppError::internal(error),
        }
    }
}

impl From<SignInError> for AppError {
    fn from(error: SignInError) -> Self {
        match error {
            SignInError::InvalidCredentials => AppError::InvalidCredentials,
            SignInError::Taken(field) => AppError::Conflict(field),
            SignInError::TooManyFailedLogins { retry_after } => AppError::TooManyFailedLogins {
                retry_after_secs: retry_after_secs(retry_after),
            },
            SignInError::TooManyRegistrations { retry_after } => AppError::TooManyRegistrations {
                retry_after_secs: retry_after_secs(retry_after),
            },
            SignInError::Password(error) => error.into(),
            SignInError::Database(error) => error.into(),
            SignInError::Pool(error) => error.into(),
            error @ (SignInError::Token(_) | SignInError::SessionLength(_)) => {
                AppError::internal(error)
            }
        }
    }
}

/// Seconds for `Retry-After`, at least one.
pub fn retry_after_secs(wait: std::time::Duration) -> u64 {
    (wait.as_millis().div_ceil(1000) as u64).max(1)
}

impl From<FieldErrors> for AppError {
    fn from(errors: FieldErrors) -> Self {
        AppError::Validation(errors)
    }
}

/// Errors a query can end with whatever it is. A unique violation a
/// request can cause is mapped to its field where that query is made.
impl From<DieselError> for AppError {
    fn from(error: DieselError) -> Self {
        match &error {
            DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
            | DieselError::BrokenTransactionManager => AppError::DatabaseUnavailable(error.into()),
            // PostgreSQL text cannot hold NUL: a path or query parameter
            // that carries one cannot match anything.
            DieselError::DatabaseError(_, info)
                if info
                    .message()
                    .contains("invalid byte sequence for encoding") =>
            {
                AppError::validation("request", "can't contain NUL characters")
            }
            // A query cancelled by statement_timeout is an overloaded or
            // locked database, not a bug.
            DieselError::DatabaseError(_, info) if is_cancellation(info.message()) => {
                AppError::DatabaseUnavailable(error.into())
            }
            _ => AppError::Internal(error.into()),
        }
    }
}

fn is_cancellation(message: &str) -> bool {
    message.contains("canceling statement due to statement timeout")
        || message.contains("terminating connection")
        || message.contains("connection closed")
}

impl From<deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>> for AppError {
    fn from(
        error: deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>,
    ) -> Self {
        AppError::DatabaseUnavailable(error.into())
    }
}

pub type AppResult<T> = Result<T, AppError>;
