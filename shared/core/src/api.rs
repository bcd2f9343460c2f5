//! What the HTTP functions share at the edge: the caller's identity from the JWT authorizer, body and
//! path parsing, and the one place that maps errors to HTTP statuses and JSON error bodies.

use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{error, warn};

use crate::domain::{MediaId, OwnerId};
use crate::download::DownloadError;
use crate::grants::GrantError;
use crate::list::ListError;
use crate::multipart::MultipartError;
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
    /// Served without the JWT authorizer (a download link: its token is the capability).
    pub public: bool,
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
    // Resumable uploads in parts, as Companion's S3 routes (stock Uppy's `endpoint` and
    // `companionEndpoint` speak them).
    Route {
        method: "POST",
        path: "/api/v1/upload/s3/multipart",
        function: "presign",
        public: false,
    },
    Route {
        method: "GET",
        path: "/api/v1/upload/s3/multipart/{uploadId}",
        function: "presign",
        public: false,
    },
    Route {
        method: "GET",
        path: "/api/v1/upload/s3/multipart/{uploadId}/{partNumber}",
        function: "presign",
        public: false,
    },
    Route {
        method: "POST",
        path: "/api/v1/upload/s3/multipart/{uploadId}/complete",
        function: "presign",
        public: false,
    },
    Route {
        method: "DELETE",
        path: "/api/v1/upload/s3/multipart/{uploadId}",
        function: "presign",
        public: false,
    },
    Route {
        method: "GET",
        path: "/api/v1/upload/s3/params",
        function: "presign",
        public: false,
    },
    Route {
        method: "POST",
        path: "/api/v1/upload/presign",
        function: "presign",
        public: false,
    },
    Route {
        method: "POST",
        path: "/api/v1/upload",
        function: "presign",
        public: false,
    },
    Route {
        method: "POST",
        path: "/api/v1/upload/confirm",
        function: "confirm",
        public: false,
    },
    Route {
        method: "GET",
        path: "/api/v1/upload/{mediaId}",
        function: "get",
        public: false,
    },
    Route {
        method: "DELETE",
        path: "/api/v1/upload/{mediaId}",
        function: "delete",
        public: false,
    },
    Route {
        method: "GET",
        path: "/api/v1/upload",
        function: "library",
        public: false,
    },
    Route {
        method: "PATCH",
        path: "/api/v1/upload/{mediaId}",
        function: "library",
        public: false,
    },
    Route {
        method: "POST",
        path: "/api/v1/upload/{mediaId}/restore",
        function: "library",
        public: false,
    },
    Route {
        method: "GET",
        path: "/api/v1/usage",
        function: "library",
        public: false,
    },
    Route {
        method: "GET",
        path: "/api/v1/upload/{mediaId}/download",
        function: "library",
        public: false,
    },
    Route {
        method: "POST",
        path: "/api/v1/upload/{mediaId}/grants",
        function: "library",
        public: false,
    },
    Route {
        method: "GET",
        path: "/api/v1/upload/{mediaId}/grants",
        function: "library",
        public: false,
    },
    Route {
        method: "DELETE",
        path: "/api/v1/upload/{mediaId}/grants/{grantId}",
        function: "library",
        public: false,
    },
    Route {
        method: "GET",
        path: "/api/v1/download/{token}",
        function: "library",
        public: true,
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
            PresignError::TooLarge { .. } | PresignError::NeedsParts { .. } => {
                Self::new(413, "too_large", e.to_string())
            }
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

impl From<MultipartError> for ApiError {
    fn from(e: MultipartError) -> Self {
        match e {
            MultipartError::Invalid(m) => Self::new(400, "invalid_request", m),
            MultipartError::NotFound => Self::new(404, "not_found", e.to_string()),
            MultipartError::TooLarge { .. } => Self::new(413, "too_large", e.to_string()),
            MultipartError::QuotaExceeded(m) => Self::new(403, "quota_exceeded", m),
            MultipartError::Contended => Self::new(409, "conflict", e.to_string()),
            MultipartError::Start(e) => e.into(),
            MultipartError::Unavailable | MultipartError::Store(_) | MultipartError::Repo(_) => {
                error!(error = %e, cause = ?e, "multipart request failed");
                Self::internal()
            }
        }
    }
}

impl From<DownloadError> for ApiError {
    fn from(e: DownloadError) -> Self {
        match e {
            DownloadError::NotFound => Self::new(404, "not_found", "no such media"),
            DownloadError::NotReady => Self::new(409, "not_ready", e.to_string()),
            DownloadError::Media(e) => e.into(),
        }
    }
}

impl From<GrantError> for ApiError {
    fn from(e: GrantError) -> Self {
        match e {
            GrantError::Invalid(m) => Self::new(400, "invalid_request", m),
            GrantError::NotFound => Self::new(404, "not_found", "no such media"),
            GrantError::NotReady => Self::new(409, "not_ready", e.to_string()),
            GrantError::UnknownToken => Self::new(404, "not_found", e.to_string()),
            GrantError::Expired => Self::new(410, "grant_expired", e.to_string()),
            GrantError::Exhausted => Self::new(410, "grant_exhausted", e.to_string()),
            GrantError::Random(_) | GrantError::Store(_) | GrantError::Repo(_) => {
                error!(error = %e, cause = ?e, "grant request failed");
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

/// `302 Found` to `location` (a short-lived download URL): never cached, and the URL is not
/// sent on as a referrer.
pub fn redirect(result: Result<String, ApiError>) -> Response<Body> {
    let location = match result.map(|url| http::HeaderValue::from_str(&url)) {
        Ok(Ok(v)) => v,
        Ok(Err(_)) => return ApiError::internal().into_response(),
        Err(e) => return e.into_response(),
    };
    let mut resp = empty_response(302);
    let headers = resp.headers_mut();
    headers.insert(http::header::LOCATION, location);
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    headers.insert(
        http::header::REFERRER_POLICY,
        http::HeaderValue::from_static("no-referrer"),
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

/// API Gateway's route key of the request (`METHOD /path/{param}`), which a function serving
/// several routes dispatches on; empty when the event has none.
pub fn route_key(req: &Request) -> String {
    req.request_context_ref()
        .and_then(|ctx| match ctx {
            lambda_http::request::RequestContext::ApiGatewayV2(c) => c.route_key.clone(),
            _ => None,
        })
        .unwrap_or_default()
}

/// Whether the client asked for JSON (`Accept: application/json`) rather than taking any answer:
/// a browser app that cannot follow a redirect with its bearer token reads the URL instead.
pub fn wants_json(req: &Request) -> bool {
    req.headers()
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            t.split(';')
                .next()
                .is_some_and(|t| t.trim() == "application/json")
        })
}

/// A path parameter (`{grantId}`, `{token}`), if the route has it.
pub fn path_param<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.path_parameters_ref().and_then(|p| p.first(name))
}

/// The API's own URL (`https://host`), which links to it are built on: API Gateway's domain
/// name from the request context, else the `Host` header (the local runner).
pub fn api_base(req: &Request) -> String {
    let domain = req.request_context_ref().and_then(|ctx| match ctx {
        lambda_http::request::RequestContext::ApiGatewayV2(c) => c.domain_name.clone(),
        _ => None,
    });
    let host = domain.or_else(|| {
        req.headers()
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    });
    let host = host.unwrap_or_default();
    let local = host.starts_with("127.0.0.1") || host.starts_with("localhost");
    format!("{}://{host}", if local { "http" } else { "https" })
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
