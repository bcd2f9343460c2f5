//! The local API: the routes of `template.yaml`, each request turned into the API Gateway (HTTP API,
//! payload 2.0) event the deployed function receives, with the JWT authorizer's claims in its
//! request context, and handed to that function's own handler.

use std::convert::Infallible;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use media_core::MediaService;
use media_core::api::{ApiError, Route};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth;

/// Largest API request body accepted: Lambda's 6 MB request payload limit (a multipart server-side
/// upload is the one large body; the function refuses it past `SERVER_UPLOAD_MAX_BYTES`).
const MAX_BODY: usize = 6 * 1024 * 1024;

/// What every request needs.
pub struct ApiState {
    /// The service the handlers call.
    pub service: MediaService,
    /// The HS256 secret of the local authorizer.
    pub jwt_secret: String,
    /// The local stack, for the health check.
    pub stack: crate::stack::LocalStack,
    /// Origins allowed by CORS (`*` for any).
    pub cors_origins: Vec<String>,
}

/// 200 when the table, the bucket and the event queue all answer (within 3 s), else 503.
async fn health(state: &ApiState) -> HttpResponse {
    let stack = &state.stack;
    let config = state.service.config();
    let checks = async {
        let table = stack
            .clients
            .dynamodb
            .describe_table()
            .table_name(&config.table)
            .send()
            .await
            .is_ok();
        let bucket = stack
            .clients
            .s3
            .head_bucket()
            .bucket(&config.bucket)
            .send()
            .await
            .is_ok();
        let queue = stack
            .sqs
            .get_queue_attributes()
            .queue_url(&stack.queue_url)
            .send()
            .await
            .is_ok();
        (table, bucket, queue)
    };
    let response = match tokio::time::timeout(std::time::Duration::from_secs(3), checks).await {
        Ok((true, true, true)) => media_core::api::json_response(200, &json!({"status": "ok"})),
        Ok((table, bucket, queue)) => ApiError::new(
            503,
            "unavailable",
            format!("not ready: table={table} bucket={bucket} queue={queue}"),
        )
        .into_response(),
        Err(_) => {
            ApiError::new(503, "unavailable", "the emulator did not answer in time").into_response()
        }
    };
    to_hyper(response)
}

/// The API's OpenAPI 3.1 document (`openapi.json` at the repository's root), served at
/// `/openapi.json`.
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// The demo page (`local/demo/`), served at `/`.
const DEMO_HTML: &str = include_str!("../demo/index.html");
const DEMO_JS: &str = include_str!("../demo/demo.js");
const DEMO_UPLOAD_JS: &str = include_str!("../demo/upload.js");
const DEMO_CSS: &str = include_str!("../demo/demo.css");

/// The files the local server serves besides the API: the OpenAPI document and the demo page.
fn static_file(path: &str) -> Option<(&'static str, &'static str)> {
    Some(match path {
        "/openapi.json" => ("application/json", OPENAPI),
        "/" | "/index.html" => ("text/html; charset=utf-8", DEMO_HTML),
        "/demo/demo.js" => ("text/javascript; charset=utf-8", DEMO_JS),
        "/demo/upload.js" => ("text/javascript; charset=utf-8", DEMO_UPLOAD_JS),
        "/demo/demo.css" => ("text/css; charset=utf-8", DEMO_CSS),
        _ => return None,
    })
}

/// `GET /local/token?user=NAME`: a one-hour token from the local authorizer, standing in for the
/// sign-in page of a real deployment (the demo page uses it). Local only: the deployed API has no
/// such route, and the local server listens on loopback.
fn local_token(state: &ApiState, query: Option<&str>) -> HttpResponse {
    let Some(user) = token_user(query) else {
        return error(ApiError::new(
            400,
            "invalid_request",
            "user must be 1-64 letters, digits, '-' or '_'",
        ));
    };
    const TTL: i64 = 3600;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let token = auth::sign(&state.jwt_secret, user, now, now + TTL);
    to_hyper(media_core::api::json_response(
        200,
        &json!({"token": token, "user": user, "expiresIn": TTL}),
    ))
}

/// The `user` of a token request (`demo` when absent), if it is 1-64 of `[A-Za-z0-9_-]`.
fn token_user(query: Option<&str>) -> Option<&str> {
    let user = query
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("user="))
        .unwrap_or("demo");
    let valid = (1..=64).contains(&user.len())
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    valid.then_some(user)
}

/// Matches a request to its route of [`media_core::api::ROUTES`] (the list `template.yaml`
/// follows) and the route's path parameters (`{mediaId}`, `{grantId}`, `{token}`).
fn route(method: &Method, path: &str) -> Option<(&'static Route, PathParams)> {
    let segments: Vec<&str> = path.split('/').collect();
    media_core::api::ROUTES.iter().find_map(|r| {
        if r.method != method.as_str() {
            return None;
        }
        let template: Vec<&str> = r.path.split('/').collect();
        if template.len() != segments.len() {
            return None;
        }
        let mut params = PathParams::new();
        for (t, s) in template.iter().zip(&segments) {
            match t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                Some(name) if !s.is_empty() => {
                    let value = percent_encoding::percent_decode_str(s).decode_utf8_lossy();
                    params.insert(name.to_owned(), value.into_owned());
                }
                _ if t != s => return None,
                _ => {}
            }
        }
        Some((r, params))
    })
}

/// Path parameters by name, as API Gateway passes them (decoded).
type PathParams = std::collections::BTreeMap<String, String>;

/// Serves connections from `listener` until `stop` flips.
pub async fn serve(listener: TcpListener, state: Arc<ApiState>, mut stop: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(Arc::clone(&state), req));
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}

type HttpResponse = hyper::Response<Full<Bytes>>;

async fn handle(
    state: Arc<ApiState>,
    req: hyper::Request<Incoming>,
) -> Result<HttpResponse, Infallible> {
    let origin = req
        .headers()
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut resp = dispatch(&state, req).await;
    if let Some(origin) = origin.filter(|o| state.cors_origins.iter().any(|a| a == "*" || a == o))
        && let Ok(v) = HeaderValue::from_str(&origin)
    {
        let h = resp.headers_mut();
        h.insert("access-control-allow-origin", v);
        h.insert(
            "access-control-allow-headers",
            HeaderValue::from_static("authorization,content-type,if-match,uppy-versions"),
        );
        h.insert(
            "access-control-allow-methods",
            HeaderValue::from_static("GET,POST,PATCH,DELETE,OPTIONS"),
        );
        h.insert(
            "access-control-expose-headers",
            HeaderValue::from_static("etag,location"),
        );
        h.insert("access-control-max-age", HeaderValue::from_static("600"));
        h.insert("vary", HeaderValue::from_static("origin"));
    }
    Ok(resp)
}

fn error(e: ApiError) -> HttpResponse {
    to_hyper(e.into_response())
}

/// A function's response as the local server sends it.
fn to_hyper(response: lambda_http::Response<lambda_http::Body>) -> HttpResponse {
    let (parts, body) = response.into_parts();
    let bytes = match body {
        lambda_http::Body::Empty => Bytes::new(),
        lambda_http::Body::Text(t) => Bytes::from(t),
        lambda_http::Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    hyper::Response::from_parts(parts, Full::new(bytes))
}

async fn dispatch(state: &ApiState, req: hyper::Request<Incoming>) -> HttpResponse {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    if parts.method == Method::OPTIONS {
        let mut resp = hyper::Response::new(Full::new(Bytes::new()));
        *resp.status_mut() = StatusCode::NO_CONTENT;
        return resp;
    }
    if parts.method == Method::GET && path == "/health" {
        return health(state).await;
    }
    if parts.method == Method::GET
        && let Some((content_type, body)) = static_file(&path)
    {
        let mut resp = hyper::Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        let h = resp.headers_mut();
        h.insert(
            hyper::header::CONTENT_TYPE,
            HeaderValue::from_static(content_type),
        );
        h.insert(
            hyper::header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        );
        return resp;
    }
    if parts.method == Method::GET && path == "/local/token" {
        return local_token(state, parts.uri.query());
    }
    let Some((route, params)) = route(&parts.method, &path) else {
        return error(ApiError::new(
            404,
            "route_not_found",
            format!("no route for {} {path}", parts.method),
        ));
    };

    // The JWT authorizer runs before any function, as in API Gateway, except on public routes.
    let auth_header = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = if route.public {
        None
    } else {
        match auth::bearer(auth_header).and_then(|t| auth::verify(&state.jwt_secret, t, now)) {
            Ok(c) => Some(c),
            Err(e) => {
                return error(ApiError::new(
                    401,
                    "unauthorized",
                    format!("a valid bearer token is required: {e}"),
                ));
            }
        }
    };

    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return error(ApiError::new(
                413,
                "too_large",
                "the request body is over the 6 MB a Lambda request may carry; upload large files with a presigned URL (POST /api/v1/upload/presign)",
            ));
        }
    };
    let event = api_gateway_event(&parts, &route.key(), &params, claims.as_ref(), &body);
    let request = match lambda_http::request::from_str(&event.to_string()) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "could not build the API Gateway event");
            return error(ApiError::new(
                500,
                "internal",
                "the request could not be completed",
            ));
        }
    };
    let service = &state.service;
    let response = match route.function {
        "presign" => presign::handler::handle(service, request).await,
        "confirm" => confirm::handler::handle(service, request).await,
        "get" => get::handler::handle(service, request).await,
        "delete" => delete::handler::handle(service, request).await,
        "library" => library::handler::handle(service, request).await,
        other => Ok(ApiError::new(
            500,
            "internal",
            format!("the local runner has no function {other}"),
        )
        .into_response()),
    };
    let Ok(response) = response;
    to_hyper(response)
}

/// The API Gateway HTTP API (payload format 2.0) event for a request.
fn api_gateway_event(
    parts: &http::request::Parts,
    route_key: &str,
    params: &PathParams,
    claims: Option<&std::collections::HashMap<String, String>>,
    body: &Bytes,
) -> Value {
    let mut headers = serde_json::Map::new();
    for (name, value) in &parts.headers {
        if let Ok(v) = value.to_str() {
            headers.insert(name.as_str().to_owned(), Value::String(v.to_owned()));
        }
    }
    let now = time::OffsetDateTime::now_utc();
    let (body, is_base64) = match std::str::from_utf8(body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (STANDARD.encode(body), true),
    };
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.uri.path(),
        "rawQueryString": parts.uri.query().unwrap_or(""),
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            // API Gateway's own domain; here the host (and port) the client called.
            "domainName": parts.headers.get(http::header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("127.0.0.1"),
            "domainPrefix": "127",
            "http": {
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": parts.headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or(""),
            },
            "requestId": uuid_like(),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.to_string(),
            "timeEpoch": now.unix_timestamp() * 1000,
        },
        "isBase64Encoded": is_base64,
    });
    if !body.is_empty() {
        event["body"] = Value::String(body);
    }
    if let Some(c) = claims {
        event["requestContext"]["authorizer"] = json!({ "jwt": { "claims": c, "scopes": null } });
    }
    if !params.is_empty() {
        event["pathParameters"] = json!(params);
    }
    let query = query_parameters(parts.uri.query().unwrap_or(""));
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    event
}

/// `queryStringParameters` as API Gateway (payload 2.0) writes them: names and values decoded,
/// repeated names joined by commas.
fn query_parameters(raw: &str) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        let (name, value) = (decode(name), decode(value));
        match out.get_mut(&name) {
            Some(Value::String(v)) => {
                v.push(',');
                v.push_str(&value);
            }
            _ => {
                out.insert(name, Value::String(value));
            }
        }
    }
    out
}

fn uuid_like() -> String {
    media_core::domain::MediaId::generate().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_the_demo_page_and_the_openapi_document() {
        let (html, page) = static_file("/").unwrap();
        assert!(html.starts_with("text/html"));
        // Every asset the page names is served, and the module demo.js imports.
        for asset in ["/demo/demo.js", "/demo/demo.css"] {
            assert!(page.contains(asset), "{asset}");
            assert!(static_file(asset).is_some(), "{asset}");
        }
        assert!(DEMO_JS.contains("from './upload.js'"));
        assert!(static_file("/demo/upload.js").is_some());
        assert_eq!(static_file("/openapi.json").unwrap().1, OPENAPI);
        assert!(static_file("/demo/../Cargo.toml").is_none());
    }

    #[test]
    fn token_users_are_plain_names() {
        assert_eq!(token_user(None), Some("demo"));
        assert_eq!(token_user(Some("user=alice_1")), Some("alice_1"));
        assert_eq!(token_user(Some("x=1&user=bob-2")), Some("bob-2"));
        for bad in ["user=", "user=a%2Fb", "user=a b", "user=é"] {
            assert_eq!(token_user(Some(bad)), None, "{bad}");
        }
        let long = format!("user={}", "a".repeat(65));
        assert_eq!(token_user(Some(&long)), None);
    }

    #[test]
    fn routes_match_the_template() {
        let r = |m: Method, p: &str| {
            route(&m, p).map(|(r, params)| (r.function, params.get("mediaId").cloned()))
        };
        assert_eq!(
            r(Method::POST, "/api/v1/upload/presign"),
            Some(("presign", None))
        );
        assert_eq!(
            r(Method::POST, "/api/v1/upload/confirm"),
            Some(("confirm", None))
        );
        assert_eq!(
            r(Method::GET, "/api/v1/upload/abc"),
            Some(("get", Some("abc".into())))
        );
        assert_eq!(
            r(Method::DELETE, "/api/v1/upload/abc").map(|x| x.0),
            Some("delete")
        );
        assert_eq!(r(Method::GET, "/api/v1/upload"), Some(("library", None)));
        assert_eq!(
            r(Method::PATCH, "/api/v1/upload/abc").map(|x| x.0),
            Some("library")
        );
        // Every route of the API reaches its function with its route key.
        for route_def in media_core::api::ROUTES {
            let method = Method::from_bytes(route_def.method.as_bytes()).unwrap();
            let path = route_def
                .path
                .replace("{mediaId}", "abc")
                .replace("{grantId}", "def")
                .replace("{token}", "ghi");
            let (found, _) = route(&method, &path).unwrap();
            assert_eq!(found, route_def);
        }
        let (found, params) = route(&Method::DELETE, "/api/v1/upload/abc/grants/def").unwrap();
        assert_eq!(found.path, "/api/v1/upload/{mediaId}/grants/{grantId}");
        assert_eq!(params.get("grantId").map(String::as_str), Some("def"));
        let (found, params) = route(&Method::GET, "/api/v1/download/t%2Dk").unwrap();
        assert!(found.public);
        assert_eq!(params.get("token").map(String::as_str), Some("t-k"));
        assert!(r(Method::GET, "/api/v1/upload/").is_none());
        assert!(r(Method::GET, "/api/v1/upload/a/b").is_none());
        assert!(r(Method::PUT, "/api/v1/upload/presign").is_none());
        assert!(r(Method::PATCH, "/api/v1/upload").is_none());
    }

    #[test]
    fn query_parameters_are_decoded_and_repeated_names_joined() {
        let q = query_parameters(
            "tag=red%20car&limit=5&tag=b&x&createdAfter=2026-01-01T00%3A00%3A00%2B02%3A00",
        );
        assert_eq!(q["tag"], "red car,b");
        assert_eq!(q["limit"], "5");
        assert_eq!(q["x"], "");
        assert_eq!(q["createdAfter"], "2026-01-01T00:00:00+02:00");
        assert!(query_parameters("").is_empty());
    }
}
