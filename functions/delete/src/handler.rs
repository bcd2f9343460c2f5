//! `DELETE /api/v1/upload/{mediaId}`: soft delete (204); cleanup removes it after the grace period.

use std::convert::Infallible;

use lambda_http::{Body, Request, Response};
use media_core::MediaService;
use media_core::api::{self, ApiError};

/// Handles one request.
pub async fn handle(service: &MediaService, req: Request) -> Result<Response<Body>, Infallible> {
    Ok(match delete(service, &req).await {
        Ok(()) => api::empty_response(204),
        Err(e) => e.into_response(),
    })
}

async fn delete(service: &MediaService, req: &Request) -> Result<(), ApiError> {
    let owner = api::owner(req)?;
    let id = api::media_id_param(req)?;
    Ok(service.delete_media(&owner, &id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use media_provision::testkit::{SAMPLE_OWNER, TestStack, corpus_file, sample_event};

    #[tokio::test]
    async fn the_sample_event_soft_deletes_and_a_repeat_is_still_204()
    -> Result<(), Box<dyn std::error::Error>> {
        let stack = TestStack::new(&[]).await?;
        let media = stack
            .upload(
                SAMPLE_OWNER,
                "image/jpeg",
                &corpus_file("Kodak_CX7530.jpg")?,
                true,
            )
            .await?;
        let other = stack
            .upload(
                "someone-else",
                "image/jpeg",
                &corpus_file("Kodak_CX7530.jpg")?,
                true,
            )
            .await?;
        let event = |id: &str| sample_event("delete", "delete.json", id);

        let Ok(resp) = handle(
            &stack.service,
            lambda_http::request::from_str(&event(other.media_id.as_str())?)?,
        )
        .await;
        assert_eq!(resp.status(), 404, "another user's media");
        let Ok(resp) = handle(
            &stack.service,
            lambda_http::request::from_str(&event(media.media_id.as_str())?)?,
        )
        .await;
        assert_eq!(resp.status(), 204);
        let Ok(resp) = handle(
            &stack.service,
            lambda_http::request::from_str(&event(media.media_id.as_str())?)?,
        )
        .await;
        // Idempotent: a retried DELETE whose first answer was lost must not turn into a 404.
        assert_eq!(resp.status(), 204, "already deleted by its owner");
        let Ok(resp) = handle(
            &stack.service,
            lambda_http::request::from_str(&event(other.media_id.as_str())?)?,
        )
        .await;
        assert_eq!(resp.status(), 404, "still not the caller's");
        Ok(())
    }
}
