//! Errors as the HTTP API answers them: a status and `{"error": {"code", "message"}}`.
use crate::app::AppError;
use crate::store::StoreError;
use crate::tasks::classify::TaskError;
use crate::tasks::worker::WorkerError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

/// Every error code the API answers with; each has its one status. The OpenAPI document lists
/// them (`ErrorCode::ALL`), so a client can match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request does not parse (query, form, or a body that is not JSON).
    BadRequest,
    Unauthorized,
    Forbidden,
    /// A form or cookie-authenticated write without the session's CSRF token.
    Csrf,
    NotFound,
    Conflict,
    /// The request parses but breaks a rule; the message names the field.
    Invalid,
    TooManyRequests,
    /// The server runs without a model, the model thread has stopped, or the inference
    /// server does not answer.
    Unavailable,
    /// Anything else; the message says only that, and the log has the cause.
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 10] = [
        ErrorCode::BadRequest,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::Csrf,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::Invalid,
        ErrorCode::TooManyRequests,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden | ErrorCode::Csrf => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Csrf => "csrf",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Invalid => "invalid",
            ErrorCode::TooManyRequests => "too_many_requests",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

/// What a 500 tells the client: nothing of the database, the model or the file system.
const INTERNAL_MESSAGE: &str = "internal error; the server log has the details";

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }

    /// A 500: the log gets `cause` with every source below it; the client a fixed message.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %chain(cause), "internal error");
        Self::new(ErrorCode::Internal, INTERNAL_MESSAGE)
    }

    /// A 500 for a broken invariant that has no error value.
    pub fn internal_msg(what: &str) -> Self {
        tracing::error!(error = what, "internal error");
        Self::new(ErrorCode::Internal, INTERNAL_MESSAGE)
    }
}

/// `error: source: source ...`, every cause down the chain.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        out.push_str(": ");
        out.push_str(&s.to_string());
        next = s.source();
    }
    out
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status())
            .json(json!({"error": {"code": self.code, "message": self.message}}))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => Self::not_found(e.to_string()),
            StoreError::Conflict(_) => Self::new(ErrorCode::Conflict, e.to_string()),
            StoreError::Invalid(_) => Self::new(ErrorCode::Invalid, e.to_string()),
            StoreError::Forbidden(_) => Self::forbidden(e.to_string()),
            StoreError::Sqlite(_) | StoreError::Corrupt(_) => Self::internal(&e),
        }
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Store(s) => s.into(),
            AppError::NoModel(why) => Self::unavailable(why),
            AppError::Stopped(what) => Self::internal_msg(what),
            AppError::Worker(e) => e.into(),
        }
    }
}

impl From<WorkerError> for ApiError {
    fn from(e: WorkerError) -> Self {
        match e {
            WorkerError::Stopped => Self::unavailable(e.to_string()),
            WorkerError::Task(t) => Self::from(*t),
        }
    }
}

impl From<TaskError> for ApiError {
    /// A bad prompt, label set or text is the caller's; a failing engine is the server's.
    fn from(e: TaskError) -> Self {
        match e {
            TaskError::Prompt(_)
            | TaskError::Labels(_)
            | TaskError::NoRoom(_)
            | TaskError::Unsupported(_) => Self::new(ErrorCode::Invalid, e.to_string()),
            // The inference server's address is the operator's, not a secret: say it.
            TaskError::Remote(r) if r.is_unavailable() => Self::unavailable(r.to_string()),
            TaskError::Engine(_) | TaskError::Panicked(_) | TaskError::Remote(_) => {
                Self::internal(&e)
            }
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        Self::internal(&e)
    }
}

/// Turns a JSON body that does not parse into our error shape, naming the field serde names.
pub fn json_error(
    err: actix_web::error::JsonPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    let code = match &err {
        actix_web::error::JsonPayloadError::Deserialize(_) => ErrorCode::Invalid,
        _ => ErrorCode::BadRequest,
    };
    ApiError::new(code, err.to_string()).into()
}

/// The same for query strings and forms.
pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::bad_request(err.to_string()).into()
}

pub fn form_error(
    err: actix_web::error::UrlencodedError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::bad_request(err.to_string()).into()
}

pub fn path_error(
    err: actix_web::error::PathError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::not_found(err.to_string()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineError;

    #[test]
    fn every_code_is_named_as_it_serializes() {
        for code in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(code).ok(), Some(json!(code.as_str())));
        }
    }

    #[test]
    fn each_error_keeps_its_status_and_a_500_hides_its_cause() {
        let corrupt: ApiError = StoreError::Corrupt("row 7 of /srv/wick.db".into()).into();
        assert_eq!(corrupt.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!corrupt.message.contains("wick.db"), "{}", corrupt.message);
        let invalid: ApiError = StoreError::invalid("labels", "1 to 1000 labels").into();
        assert_eq!(
            (invalid.code, invalid.message.as_str()),
            (ErrorCode::Invalid, "labels: 1 to 1000 labels")
        );
        let no_room: ApiError = WorkerError::from(TaskError::NoRoom(512)).into();
        assert_eq!(no_room.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let engine = TaskError::Engine(EngineError::NotFound("/models/x.gguf".into()));
        let engine: ApiError = WorkerError::from(engine).into();
        assert_eq!(engine.code, ErrorCode::Internal);
        assert!(!engine.message.contains("x.gguf"), "{}", engine.message);
        let stopped: ApiError = WorkerError::Stopped.into();
        assert_eq!(stopped.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
