//! `POST /api/v1/upload/presign`: a pending record and a presigned PUT.

use std::convert::Infallible;

use lambda_http::{Body, Request, Response};
use media_core::MediaService;
use media_core::api::{self, ApiError};
use media_core::service::PresignResponse;

/// Handles one request.
pub async fn handle(service: &MediaService, req: Request) -> Result<Response<Body>, Infallible> {
    Ok(api::respond(200, presign(service, &req).await))
}

async fn presign(service: &MediaService, req: &Request) -> Result<PresignResponse, ApiError> {
    let owner = api::owner(req)?;
    let body = api::json_body(req)?;
    Ok(service.presign_upload(&owner, body).await?)
}
