//! `POST /api/v1/upload/confirm`: the record, once its object has arrived.

use std::convert::Infallible;

use lambda_http::{Body, Request, Response};
use media_core::MediaService;
use media_core::api::{self, ApiError};
use media_core::domain::MediaId;
use media_core::service::MediaView;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfirmRequest {
    media_id: String,
}

/// Handles one request.
pub async fn handle(service: &MediaService, req: Request) -> Result<Response<Body>, Infallible> {
    Ok(api::respond(200, confirm(service, &req).await))
}

async fn confirm(service: &MediaService, req: &Request) -> Result<MediaView, ApiError> {
    let owner = api::owner(req)?;
    let body: ConfirmRequest = api::json_body(req)?;
    // A malformed id cannot name any media: the same 404 as someone else's.
    let id = MediaId::parse(&body.media_id).map_err(|_| ApiError::new(404, "not_found", "no such media"))?;
    Ok(service.confirm_upload(&owner, &id).await?)
}
