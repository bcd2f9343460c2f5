//! `POST /api/v1/upload/presign`: a pending record and a presigned PUT.

use std::convert::Infallible;

use lambda_http::{Body, Request, Response};
use media_core::MediaService;
use media_core::api::{self, ApiError};
use serde_json::Value;

/// Handles one request.
pub async fn handle(service: &MediaService, req: Request) -> Result<Response<Body>, Infallible> {
    Ok(api::respond(200, presign(service, &req).await))
}

async fn presign(service: &MediaService, req: &Request) -> Result<Value, ApiError> {
    let owner = api::owner(req)?;
    let body = api::json_body(req)?;
    Ok(service.presign(&owner, body).await?)
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
