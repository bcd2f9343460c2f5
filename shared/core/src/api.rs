//! What the HTTP functions share at the edge: the caller's identity from the JWT authorizer, body and
//! path parsing, and the one place that maps errors to HTTP statuses and JSON error bodies.

use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{error, warn};

use crate::domain::{MediaId, OwnerId};
use crate::list::ListError;
use crate::ports::RepoError;
use crate::presign::PresignError;
use crate::restore::RestoreError;
use crate::service::{MediaError, MediaView};
use crate::update::{IfMatch, UpdateError};

/// One route of the HTTP API: method, path template and the function (crate) that serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// HTTP method.
    pub method: &'static str,
    /// Path template, as API Gateway writes it.
    pub path: &'static str,
    /// The function crate (and SAM `Binary`) behind it.
    pub function: &'static str,
}

impl Route {
    /// API Gateway's route key, `METHOD /path`.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// Every route the API serves: template.yaml, the local runner and the OpenAPI document agree with
/// this list (each checked by a test).
pub const ROUTES: &[Route] = &[
    Route {
        method: "POST",
        path: "/api/v1/upload/presign",
        function: "presign",
    },
    Route {
        method: "POST",
        path: "/api/v1/upload/confirm",
        function: "confirm",
    },
    Route {
        method: "GET",
        path: "/api/v1/upload/{mediaId}",
        function: "get",
    },
    Route {
        method: "DELETE",
        path: "/api/v1/upload/{mediaId}",
        function: "delete",
    },
    Route {
        method: "GET",
        path: "/api/v1/upload",
        function: "library",
    },
    Route {
        method: "PATCH",
        path: "/api/v1/upload/{mediaId}",
        function: "library",
    },
    Route {
        method: "POST",
        path: "/api/v1/upload/{mediaId}/restore",
        function: "library",
    },
    Route {
        method: "GET",
        path: "/api/v1/usage",
        function: "library",
    },
];

/// An HTTP error: status, stable code and a message safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human message (never internal details).
    pub message: String,
    /// Seconds for a `Retry-After` header (429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    fn internal() -> Self {
        Self::new(
            500,
            "internal",
            "the request could not be completed; try again",
        )
    }

    /// The response `{ "error": { "code", "message" } }` (with `Retry-After` when set).
    pub fn into_response(self) -> Response<Body> {
        let body = serde_json::json!({ "error": { "code": self.code, "message": self.message } });
        let mut resp = json_response(self.status, &body);
        if let Some(seconds) = self.retry_after {
            resp.headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
        }
        resp
    }
}

impl From<PresignError> for ApiError {
    fn from(e: PresignError) -> Self {
        match e {
            PresignError::Invalid(m) => Self::new(400, "invalid_request", m),
            PresignError::UnsupportedType(_) => Self::new(415, "unsupported_type", e.to_string()),
            PresignError::TooLarge { .. } => Self::new(413, "too_large", e.to_string()),
            PresignError::TooManyFiles { .. } => Self::new(400, "too_many_files", e.to_string()),
            PresignError::BatchTooLarge { .. } => Self::new(413, "batch_too_large", e.to_string()),
            PresignError::RateLimited(r) => Self {
                retry_after: Some(r.retry_after),
                ..Self::new(429, "rate_limited", e.to_string())
            },
            PresignError::QuotaExceeded(m) => Self::new(403, "quota_exceeded", m),
            PresignError::Store(_) | PresignError::Repo(_) | PresignError::IdTaken(_) => {
                error!(error = %e, cause = ?e, "presign failed");
                Self::internal()
            }
        }
    }
}

impl From<MediaError> for ApiError {
    fn from(e: MediaError) -> Self {
        match e {
            MediaError::NotFound => Self::new(404, "not_found", "no such media"),
            MediaError::NotUploaded => {
                Self::new(409, "not_uploaded", "the file has not been uploaded yet")
            }
            MediaError::Contended => Self::new(409, "conflict", e.to_string()),
            MediaError::Store(_) | MediaError::Repo(_) | MediaError::Publish(_) => {
                error!(error = %e, cause = ?e, "media request failed");
                Self::internal()
            }
        }
    }
}

impl From<RepoError> for ApiError {
    fn from(e: RepoError) -> Self {
        error!(error = %e, cause = ?e, "request failed");
        Self::internal()
    }
}

impl From<ListError> for ApiError {
    fn from(e: ListError) -> Self {
        match e {
            ListError::Invalid { .. } => Self::new(400, "invalid_request", e.to_string()),
            ListError::InvalidCursor(m) => Self::new(400, "invalid_cursor", m),
            ListError::Store(_) | ListError::Repo(_) => {
                error!(error = %e, cause = ?e, "list failed");
                Self::internal()
            }
        }
    }
}

impl From<RestoreError> for ApiError {
    fn from(e: RestoreError) -> Self {
        match e {
            RestoreError::NotFound => Self::new(404, "not_found", "no such media"),
            RestoreError::NotDeleted => Self::new(409, "not_deleted", e.to_string()),
            RestoreError::QuotaExceeded(m) => Self::new(403, "quota_exceeded", m),
            RestoreError::Contended => Self::new(409, "conflict", e.to_string()),
            RestoreError::Store(_) | RestoreError::Repo(_) | RestoreError::Publish(_) => {
                error!(error = %e, cause = ?e, "restore failed");
                Self::internal()
            }
        }
    }
}

impl From<UpdateError> for ApiError {
    fn from(e: UpdateError) -> Self {
        match e {
            UpdateError::Invalid(_) => Self::new(400, "invalid_request", e.to_string()),
            UpdateError::NotFound => Self::new(404, "not_found", "no such media"),
            UpdateError::PreconditionFailed { .. } => {
                Self::new(412, "precondition_failed", e.to_string())
            }
            UpdateError::Contended => Self::new(409, "conflict", e.to_string()),
            UpdateError::Store(_) | UpdateError::Repo(_) => {
                error!(error = %e, cause = ?e, "update failed");
                Self::internal()
            }
        }
    }
}

/// The answer that shows one media item: its JSON, with `ETag: "<version>"`.
pub fn media_response(status: u16, result: Result<MediaView, ApiError>) -> Response<Body> {
    match result {
        Ok(view) => {
            let mut resp = json_response(status, &view);
            if let Ok(v) = http::HeaderValue::from_str(&format!("\"{}\"", view.fields.version)) {
                resp.headers_mut().insert(http::header::ETAG, v);
            }
            resp
        }
        Err(e) => e.into_response(),
    }
}

/// The `If-Match` header, if the request has one.
pub fn if_match(req: &Request) -> Option<IfMatch> {
    let values: Vec<&str> = req
        .headers()
        .get_all(http::header::IF_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| IfMatch::parse(&values.join(",")))
}

/// One query string parameter (the first, if it is repeated).
pub fn query_param<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.query_string_parameters_ref()
        .and_then(|q| q.first(name))
}

/// A JSON merge patch body: `application/json` or `application/merge-patch+json`, else 415.
pub fn merge_patch_body(req: &Request) -> Result<serde_json::Value, ApiError> {
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match content_type.as_deref() {
        Some("application/json" | "application/merge-patch+json") => json_body(req),
        _ => Err(ApiError::new(
            415,
            "unsupported_media_type",
            "send the patch as application/merge-patch+json or application/json",
        )),
    }
}

/// A JSON response with `status`.
pub fn json_response<T: Serialize>(status: u16, body: &T) -> Response<Body> {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned());
    let mut resp = Response::new(Body::Text(text));
    *resp.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    resp
}

/// An empty response with `status` (204 for deletes).
pub fn empty_response(status: u16) -> Response<Body> {
    let mut resp = Response::new(Body::Empty);
    *resp.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::NO_CONTENT);
    resp
}

/// Turns a handler's result into its response.
pub fn respond<T: Serialize>(status: u16, result: Result<T, ApiError>) -> Response<Body> {
    match result {
        Ok(body) => json_response(status, &body),
        Err(e) => e.into_response(),
    }
}

/// The caller: the `sub` claim the API Gateway JWT authorizer validated. Without it, 401.
pub fn owner(req: &Request) -> Result<OwnerId, ApiError> {
    let unauthorized = || ApiError::new(401, "unauthorized", "a valid bearer token is required");
    let sub = req
        .request_context_ref()
        .and_then(|ctx| ctx.authorizer())
        .and_then(|a| a.jwt.as_ref())
        .and_then(|jwt| jwt.claims.get("sub"))
        .ok_or_else(unauthorized)?;
    OwnerId::parse(sub).map_err(|_| unauthorized())
}

/// The `{mediaId}` path parameter. A malformed id cannot name any media, so it is a 404.
pub fn media_id_param(req: &Request) -> Result<MediaId, ApiError> {
    req.path_parameters_ref()
        .and_then(|p| p.first("mediaId"))
        .and_then(|id| MediaId::parse(id).ok())
        .ok_or_else(|| MediaError::NotFound.into())
}

/// The JSON body, or a 400 that says what is wrong with it.
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.is_empty() {
        return Err(ApiError::new(
            400,
            "invalid_request",
            "a JSON body is required",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        warn!(error = %e, "bad request body");
        ApiError::new(
            400,
            "invalid_request",
            format!("the body is not valid JSON for this request: {e}"),
        )
    })
}
