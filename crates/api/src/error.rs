//! Errors as Docker sends them: a status code and `{"message": "..."}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use shoal_manager::ApiError;
use shoal_store::StoreError;

#[derive(Debug)]
pub struct HttpError(pub StatusCode, pub String);

impl HttpError {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        HttpError(StatusCode::BAD_REQUEST, msg.into())
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        HttpError(StatusCode::NOT_FOUND, msg.into())
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(serde_json::json!({ "message": self.1 }))).into_response()
    }
}

impl From<ApiError> for HttpError {
    fn from(e: ApiError) -> Self {
        let status = match &e {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        HttpError(status, e.to_string())
    }
}

impl From<StoreError> for HttpError {
    fn from(e: StoreError) -> Self {
        ApiError::from(e).into()
    }
}

pub type HttpResult<T> = Result<T, HttpError>;
