//! `GET /api/v1/upload/{mediaId}`: metadata and URLs of the caller's media.

use std::convert::Infallible;

use lambda_http::{Body, Request, Response};
use media_core::MediaService;
use media_core::api::{self, ApiError};
use media_core::service::MediaView;

/// Handles one request.
pub async fn handle(service: &MediaService, req: Request) -> Result<Response<Body>, Infallible> {
    Ok(api::respond(200, get(service, &req).await))
}

async fn get(service: &MediaService, req: &Request) -> Result<MediaView, ApiError> {
    let owner = api::owner(req)?;
    let id = api::media_id_param(req)?;
    Ok(service.get_media(&owner, &id).await?)
}
