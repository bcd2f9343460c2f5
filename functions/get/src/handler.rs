//! `GET /api/v1/upload/{mediaId}`: metadata and URLs of the caller's media.

use std::convert::Infallible;

use lambda_http::{Body, Request, Response};
use media_core::MediaService;
use media_core::api::{self, ApiError};
use media_core::service::MediaView;

/// Handles one request.
pub async fn handle(service: &MediaService, req: Request) -> Result<Response<Body>, Infallible> {
    Ok(api::media_response(200, get(service, &req).await))
}

async fn get(service: &MediaService, req: &Request) -> Result<MediaView, ApiError> {
    let owner = api::owner(req)?;
    let id = api::media_id_param(req)?;
    Ok(service.get_media(&owner, &id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use media_provision::testkit::{
        SAMPLE_MEDIA_ID, SAMPLE_OWNER, TestStack, corpus_file, sample_event,
    };
    use serde_json::Value;

    #[tokio::test]
    async fn the_sample_event_returns_the_owners_media() -> Result<(), Box<dyn std::error::Error>> {
        let stack = TestStack::new(&[]).await?;
        let media = stack
            .upload(
                SAMPLE_OWNER,
                "image/jpeg",
                &corpus_file("Kodak_CX7530.jpg")?,
                false,
            )
            .await?;
        let req = lambda_http::request::from_str(&sample_event(
            "get",
            "get.json",
            media.media_id.as_str(),
        )?)?;
        let Ok(resp) = handle(&stack.service, req).await;
        assert_eq!(resp.status(), 200);
        // The media's version is its ETag.
        assert_eq!(
            resp.headers().get("etag").and_then(|v| v.to_str().ok()),
            Some("\"1\"")
        );
        let body: Value = serde_json::from_slice(resp.body().as_ref())?;
        assert_eq!(body["id"], media.media_id.as_str());
        assert_eq!(body["status"], "pending");
        assert_eq!(body["version"], 1);
        assert_eq!(body["kind"], "image");
        assert_eq!(body["tags"], serde_json::json!([]));

        // Someone else's media, and a malformed or unknown id: all the same 404.
        let other = stack
            .upload(
                "someone-else",
                "image/jpeg",
                &corpus_file("Kodak_CX7530.jpg")?,
                false,
            )
            .await?;
        for id in [other.media_id.as_str(), "not-an-id", SAMPLE_MEDIA_ID] {
            let req = lambda_http::request::from_str(&sample_event("get", "get.json", id)?)?;
            let Ok(resp) = handle(&stack.service, req).await;
            assert_eq!(resp.status(), 404, "{id}");
        }
        Ok(())
    }
}
