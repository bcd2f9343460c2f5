//! The resumable upload routes under `/api/v1/upload/s3/multipart`, and `/api/v1/upload/s3/params`
//! for a file sent whole, in the shapes of Companion's S3 routes (what stock Uppy sends and reads).

use lambda_http::RequestExt;
use lambda_http::{Body, Request, Response};
use media_core::MediaService;
use media_core::api::{self, ApiError};
use media_core::multipart::CompleteRequest;
use serde_json::{Map, Value, json};

/// Answers one of the multipart routes (`route` is API Gateway's route key).
pub async fn handle(service: &MediaService, route: &str, req: &Request) -> Response<Body> {
    match route {
        "POST /api/v1/upload/s3/multipart" => api::respond(200, start(service, req).await),
        "GET /api/v1/upload/s3/multipart/{uploadId}" => api::respond(200, list(service, req).await),
        "GET /api/v1/upload/s3/multipart/{uploadId}/{partNumber}" => {
            api::respond(200, sign(service, req).await)
        }
        "POST /api/v1/upload/s3/multipart/{uploadId}/complete" => {
            api::respond(200, complete(service, req).await)
        }
        "DELETE /api/v1/upload/s3/multipart/{uploadId}" => {
            api::respond(200, abort(service, req).await)
        }
        "GET /api/v1/upload/s3/params" => api::respond(200, params(service, req).await),
        _ => ApiError::new(404, "not_found", "no such route").into_response(),
    }
}

/// The upload id from the path and the key from the query (`?key=`), both required.
fn upload(req: &Request) -> Result<(&str, &str), ApiError> {
    let upload_id = api::path_param(req, "uploadId")
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ApiError::new(400, "invalid_request", "the upload id is missing"))?;
    let key = api::query_param(req, "key")
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                400,
                "invalid_request",
                "the object key must be passed as a query parameter: ?key=",
            )
        })?;
    Ok((upload_id, key))
}

async fn start(service: &MediaService, req: &Request) -> Result<Value, ApiError> {
    let owner = api::owner(req)?;
    let body = api::json_body(req)?;
    let started = service.start_multipart(&owner, body).await?;
    Ok(json!(started))
}

async fn sign(service: &MediaService, req: &Request) -> Result<Value, ApiError> {
    let owner = api::owner(req)?;
    let (upload_id, key) = upload(req)?;
    let part = api::path_param(req, "partNumber").unwrap_or_default();
    Ok(json!(
        service.sign_part(&owner, upload_id, key, part).await?
    ))
}

async fn list(service: &MediaService, req: &Request) -> Result<Value, ApiError> {
    let owner = api::owner(req)?;
    let (upload_id, key) = upload(req)?;
    Ok(json!(service.list_parts(&owner, upload_id, key).await?))
}

async fn complete(service: &MediaService, req: &Request) -> Result<Value, ApiError> {
    let owner = api::owner(req)?;
    let (upload_id, key) = upload(req)?;
    let body: CompleteRequest = api::json_body(req)?;
    let done = service
        .complete_multipart(&owner, upload_id, key, body)
        .await?;
    // Companion answers S3's Location; the object is private, so the location given is the
    // media's own URL in this API, where its status and URLs are read.
    Ok(json!({
        "location": format!("{}/api/v1/upload/{}", api::api_base(req), done.media_id),
        "key": done.key,
        "bucket": done.bucket,
        "mediaId": done.media_id,
    }))
}

/// Companion's query: `filename`, `type`, and the file's metadata as `metadata[name]=value`.
async fn params(service: &MediaService, req: &Request) -> Result<Value, ApiError> {
    let owner = api::owner(req)?;
    let query = req.query_string_parameters_ref();
    let metadata: Map<String, Value> = query
        .iter()
        .flat_map(|q| q.iter())
        .filter_map(|(name, value)| {
            let field = name.strip_prefix("metadata[")?.strip_suffix(']')?;
            Some((field.to_owned(), Value::String(value.to_owned())))
        })
        .collect();
    let text = |name: &str| api::query_param(req, name).map(str::to_owned);
    let params = service
        .upload_params(&owner, text("filename"), text("type"), metadata)
        .await?;
    Ok(json!(params))
}

async fn abort(service: &MediaService, req: &Request) -> Result<Value, ApiError> {
    let owner = api::owner(req)?;
    let (upload_id, key) = upload(req)?;
    service.abort_multipart(&owner, upload_id, key).await?;
    Ok(json!({}))
}
