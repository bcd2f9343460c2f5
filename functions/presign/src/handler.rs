//! `POST /api/v1/upload/presign`: a pending record and a presigned PUT or POST.
//! `POST /api/v1/upload`: the same records, with the files sent through the API as
//! `multipart/form-data` (parts named `files`, plus optional descriptive fields).
//! `/api/v1/upload/s3/...`: resumable uploads in parts (see [`crate::multipart`]).

use std::convert::Infallible;

use lambda_http::{Body, Request, Response};
use media_core::MediaService;
use media_core::api::{self, ApiError};
use media_core::server_upload::{UploadedFile, UploadedFiles};
use serde_json::Value;

/// Handles one request, by the route API Gateway matched.
pub async fn handle(service: &MediaService, req: Request) -> Result<Response<Body>, Infallible> {
    let route = api::route_key(&req);
    Ok(match route.as_str() {
        r if r.contains(" /api/v1/upload/s3/") => crate::multipart::handle(service, r, &req).await,
        "POST /api/v1/upload" => api::respond(201, upload(service, &req).await),
        _ => api::respond(200, presign(service, &req).await),
    })
}

async fn presign(service: &MediaService, req: &Request) -> Result<Value, ApiError> {
    let owner = api::owner(req)?;
    let body = api::json_body(req)?;
    Ok(service.presign(&owner, body).await?)
}

async fn upload(service: &MediaService, req: &Request) -> Result<UploadedFiles, ApiError> {
    let owner = api::owner(req)?;
    let body: &[u8] = req.body().as_ref();
    let limit = service.config().server_upload_max_bytes;
    if body.len() as u64 > limit {
        return Err(ApiError::new(
            413,
            "too_large",
            format!(
                "the request is {} bytes; a server-side upload takes at most {limit}. Upload larger \
                 files straight to S3: POST /api/v1/upload/presign",
                body.len()
            ),
        ));
    }
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        ApiError::new(
            415,
            "unsupported_media_type",
            "send the files as multipart/form-data",
        )
    })?;
    let (files, describe) = parts(body.to_vec(), &boundary).await?;
    Ok(service.upload_files(&owner, files, &describe).await?)
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(400, "invalid_request", message)
}

/// Reads every part: the `files` parts, and the descriptive fields.
async fn parts(
    body: Vec<u8>,
    boundary: &str,
) -> Result<(Vec<UploadedFile>, serde_json::Map<String, Value>), ApiError> {
    let stream =
        futures_util::stream::once(async move { Ok::<_, Infallible>(bytes::Bytes::from(body)) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut files = Vec::new();
    let mut describe = serde_json::Map::new();
    // The body is bounded (SERVER_UPLOAD_MAX_BYTES), and so is every loop over it.
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| invalid(format!("the multipart body is malformed: {e}")))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "files" | "file" => {
                let filename = field
                    .file_name()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid("a file part needs a filename"))?;
                let content_type = field
                    .content_type()
                    .map(|m| m.essence_str().to_owned())
                    .ok_or_else(|| {
                        invalid(format!("the part {filename:?} needs a Content-Type"))
                    })?;
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| invalid(format!("the multipart body is malformed: {e}")))?;
                files.push(UploadedFile {
                    filename,
                    content_type,
                    bytes: bytes.to_vec(),
                });
            }
            // The descriptive fields (`tags` and `entity` as JSON, the others as text).
            n if media_core::describe::FIELDS.contains(&n) => {
                let text = field
                    .text()
                    .await
                    .map_err(|e| invalid(format!("the field {n} is malformed: {e}")))?;
                let value = if n == "tags" || n == "entity" {
                    serde_json::from_str(&text).map_err(|_| {
                        invalid(format!(
                            "{n} must be JSON (a list of tags, an entity object)"
                        ))
                    })?
                } else {
                    Value::String(text)
                };
                describe.insert(n.to_owned(), value);
            }
            other => return Err(invalid(format!("unknown field {other:?}"))),
        }
    }
    Ok((files, describe))
}

#[cfg(test)]
mod tests {
    use super::*;
    use media_provision::testkit::{SAMPLE_MEDIA_ID, TestStack, sample_event};
    use serde_json::Value;

    #[tokio::test]
    async fn the_sample_event_presigns_a_put_that_pins_type_and_length()
    -> Result<(), Box<dyn std::error::Error>> {
        let stack = TestStack::new(&[]).await?;
        let req = lambda_http::request::from_str(&sample_event(
            "presign",
            "presign.json",
            SAMPLE_MEDIA_ID,
        )?)?;
        let Ok(resp) = handle(&stack.service, req).await;
        assert_eq!(resp.status(), 200);
        let body: Value = serde_json::from_slice(resp.body().as_ref())?;
        assert_eq!(body["method"], "PUT");
        assert_eq!(body["headers"]["Content-Type"], "image/jpeg");
        assert_eq!(body["expires"], 900);
        let url = body["url"].as_str().unwrap_or_default();
        assert!(
            url.contains("X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost"),
            "{url}"
        );
        assert!(
            !url.to_ascii_lowercase().contains("x-amz-checksum"),
            "{url}"
        );
        let key = body["key"].as_str().unwrap_or_default();
        let id = body["mediaId"].as_str().unwrap_or_default();
        assert!(
            key.starts_with("uploads/") && key.ends_with(&format!("/{id}/original.jpg")),
            "{key}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn bad_requests_get_json_errors() -> Result<(), Box<dyn std::error::Error>> {
        let stack = TestStack::new(&[]).await?;
        let sample: Value =
            serde_json::from_str(&sample_event("presign", "presign.json", SAMPLE_MEDIA_ID)?)?;
        let cases = [
            (
                r#"{"filename":"a.svg","contentType":"image/svg+xml","size":10}"#,
                415,
                "unsupported_type",
            ),
            (
                r#"{"filename":"a.jpg","contentType":"image/jpeg","size":0}"#,
                400,
                "invalid_request",
            ),
            (
                r#"{"filename":"a.jpg","contentType":"image/jpeg","size":-5}"#,
                400,
                "invalid_request",
            ),
            (
                r#"{"filename":"a.jpg","contentType":"image/jpeg","size":5242881}"#,
                413,
                "too_large",
            ),
            (
                r#"{"filename":"a.jpg","contentType":"image/jpeg"}"#,
                400,
                "invalid_request",
            ),
            (
                r#"{"filename":"a.jpg","contentType":"image/jpeg","size":"big"}"#,
                400,
                "invalid_request",
            ),
            (r#"not json"#, 400, "invalid_request"),
        ];
        for (body, status, code) in cases {
            let mut event = sample.clone();
            event["body"] = Value::String(body.to_owned());
            let Ok(resp) = handle(
                &stack.service,
                lambda_http::request::from_str(&event.to_string())?,
            )
            .await;
            assert_eq!(resp.status(), status, "{body}");
            let json: Value = serde_json::from_slice(resp.body().as_ref())?;
            assert_eq!(json["error"]["code"], code, "{body}");
            assert!(json["error"]["message"].is_string(), "{body}");
        }
        // Without the authorizer's claims: 401.
        let mut event = sample.clone();
        event["requestContext"]["authorizer"] = Value::Null;
        let Ok(resp) = handle(
            &stack.service,
            lambda_http::request::from_str(&event.to_string())?,
        )
        .await;
        assert_eq!(resp.status(), 401);
        Ok(())
    }
}
