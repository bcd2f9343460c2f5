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
