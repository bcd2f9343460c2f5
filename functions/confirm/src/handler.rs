//! `POST /api/v1/upload/confirm`: the record, once its object has arrived.

use std::convert::Infallible;

use lambda_http::{Body, Request, Response};
use media_core::MediaService;
use media_core::api::{self, ApiError};
use media_core::domain::MediaId;
use media_core::service::{MediaError, MediaView};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfirmRequest {
    media_id: String,
}

/// Handles one request.
pub async fn handle(service: &MediaService, req: Request) -> Result<Response<Body>, Infallible> {
    Ok(api::media_response(200, confirm(service, &req).await))
}

async fn confirm(service: &MediaService, req: &Request) -> Result<MediaView, ApiError> {
    let owner = api::owner(req)?;
    let body: ConfirmRequest = api::json_body(req)?;
    // A malformed id cannot name any media: the same 404 as someone else's.
    let id = MediaId::parse(&body.media_id).map_err(|_| MediaError::NotFound)?;
    Ok(service.confirm_upload(&owner, &id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use media_provision::testkit::{SAMPLE_OWNER, TestStack, corpus_file, sample_event};
    use serde_json::Value;

    #[tokio::test]
    async fn the_sample_event_confirms_only_an_uploaded_object()
    -> Result<(), Box<dyn std::error::Error>> {
        let stack = TestStack::new(&[]).await?;
        let bytes = corpus_file("Kodak_CX7530.jpg")?;
        let missing = stack
            .upload(SAMPLE_OWNER, "image/jpeg", &bytes, false)
            .await?;
        let req = lambda_http::request::from_str(&sample_event(
            "confirm",
            "confirm.json",
            missing.media_id.as_str(),
        )?)?;
        let Ok(resp) = handle(&stack.service, req).await;
        assert_eq!(resp.status(), 409);
        let body: Value = serde_json::from_slice(resp.body().as_ref())?;
        assert_eq!(body["error"]["code"], "not_uploaded");

        let uploaded = stack
            .upload(SAMPLE_OWNER, "image/jpeg", &bytes, true)
            .await?;
        let req = lambda_http::request::from_str(&sample_event(
            "confirm",
            "confirm.json",
            uploaded.media_id.as_str(),
        )?)?;
        let Ok(resp) = handle(&stack.service, req).await;
        assert_eq!(resp.status(), 200);
        let body: Value = serde_json::from_slice(resp.body().as_ref())?;
        assert_eq!(body["id"], uploaded.media_id.as_str());
        Ok(())
    }
}
