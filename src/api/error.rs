//! API errors and the body extractors: every failure, including what axum's own extractors
//! reject, becomes a JSON `view::ErrorBody` with a fitting status, never a 500 for bad input.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::model::{EntryId, ModelError};
use crate::node::NodeError;
use crate::store::AppendError;
use crate::view::{ErrorBody, ErrorDetail, REQUEST_BYTES_MAX};

/// Longest message the API echoes back: serde's messages quote the input (a field name can be
/// megabytes long), and an error must not be a way to amplify a request.
pub const MESSAGE_CHARS_MAX: usize = 512;
/// Longest time to receive a request body (32 MiB at 1 MB/s fits). A client that trickles its
/// body must not hold one of the `REQUESTS_IN_FLIGHT_MAX` slots for ever.
pub const BODY_READ_TIMEOUT_MS: u64 = 60_000;

/// An error answer: a status and the `ErrorBody` detail.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: ErrorDetail,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError { status, detail: ErrorDetail { code: code.into(), message: clip(message.into()), field: None } }
    }

    /// Names the offending field or parameter.
    pub fn with_field(mut self, field: &str) -> ApiError {
        self.detail.field = Some(field.into());
        self
    }

    pub fn unauthorized(message: &str) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// A bad query parameter: 400 `invalid_query` naming it.
    pub fn invalid_query(param: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", message).with_field(param)
    }

    /// A validation error of a request body: 422 `invalid_field`.
    pub fn invalid_field(e: &ModelError) -> ApiError {
        let d = field_error(e);
        ApiError { status: StatusCode::UNPROCESSABLE_ENTITY, detail: d }
    }

    /// The node is busy or not accepting work: 503.
    pub fn unavailable(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// A fault on our side. The details go to the log only; the client gets a generic message.
    pub fn internal(context: &str, error: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(%error, "API: {context}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error: the node's log has the details; retry, or report it to the node's operator",
        )
    }

    pub fn from_node(e: NodeError) -> ApiError {
        match e {
            NodeError::NotReady(m) => ApiError::unavailable("not_ready", m),
            e @ NodeError::KeyRetired { .. } => ApiError::unavailable("key_retired", e.to_string()),
            NodeError::Stopped => {
                ApiError::unavailable("not_ready", "the node is shutting down: retry once it is back")
            }
            other => ApiError::internal("node", &other),
        }
    }

    /// A store refusal of one of our appends.
    pub fn from_append(e: &AppendError) -> ApiError {
        match e {
            AppendError::Invalid(m) => ApiError::invalid_field(m),
            AppendError::Target(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m.clone()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let unauthorized = self.status == StatusCode::UNAUTHORIZED;
        let mut r = (self.status, Json(ErrorBody { error: self.detail })).into_response();
        if unauthorized {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

/// The per-item error of a model validation failure (`invalid_field`, with the field).
pub fn field_error(e: &ModelError) -> ErrorDetail {
    ErrorDetail { code: "invalid_field".into(), message: clip(e.to_string()), field: Some(e.field.into()) }
}

/// The per-item error of a store refusal.
pub fn append_item_error(e: &AppendError) -> ErrorDetail {
    ApiError::from_append(e).detail
}

fn clip(mut s: String) -> String {
    if let Some((i, _)) = s.char_indices().nth(MESSAGE_CHARS_MAX) {
        s.truncate(i);
        s.push('…');
    }
    s
}

/// A JSON request body, with every rejection turned into an `ApiError`: 400 `invalid_json`
/// (syntax, unknown or ill-typed fields; serde's message names the field), 415
/// `unsupported_media_type`, 413 `payload_too_large` (a declared length is checked before any of
/// the body is read; a streamed body is cut off at the `DefaultBodyLimit`).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > REQUEST_BYTES_MAX as u64) {
            return Err(too_large());
        }
        let read = Json::<T>::from_request(req, state);
        match tokio::time::timeout(std::time::Duration::from_millis(BODY_READ_TIMEOUT_MS), read).await {
            Ok(r) => r.map(|Json(v)| JsonBody(v)).map_err(from_json_rejection),
            Err(_) => Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                format!("the request body did not arrive within {BODY_READ_TIMEOUT_MS} ms: send it at once"),
            )),
        }
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("request body is over {REQUEST_BYTES_MAX} bytes: split it into smaller requests"),
    )
}

fn from_json_rejection(r: JsonRejection) -> ApiError {
    match r {
        JsonRejection::JsonSyntaxError(e) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("request body is not valid JSON: {}", serde_message(&e)),
        ),
        JsonRejection::JsonDataError(e) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("request body does not have the expected shape: {}", serde_message(&e)),
        ),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with `Content-Type: application/json`",
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        other => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("could not read the request body: {}", other.body_text()),
        ),
    }
}

/// serde's own message (with the path to the field), without axum's generic preamble.
fn serde_message(e: &dyn std::error::Error) -> String {
    e.source().map_or_else(|| e.to_string(), |s| s.to_string())
}

/// The `{id}` path parameter, an entry id such as `ee:42` (400 `invalid_id` otherwise).
pub struct IdParam(pub EntryId);

impl<S: Send + Sync> FromRequestParts<S> for IdParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid_id", m).with_field("id");
        let Path(raw) = Path::<String>::from_request_parts(parts, state).await.map_err(|e| bad(e.body_text()))?;
        raw.parse::<EntryId>().map(IdParam).map_err(|e| bad(e.reason))
    }
}
