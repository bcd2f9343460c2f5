//! The caller's media library. `GET /api/v1/upload`: a page of the caller's media;
//! `PATCH /api/v1/upload/{mediaId}`: a JSON merge patch of its descriptive fields;
//! `POST /api/v1/upload/{mediaId}/restore`: undo a delete; `GET /api/v1/usage`: usage against
//! the quotas; `GET /api/v1/upload/{mediaId}/download`: a redirect that downloads it; grants
//! (`POST`/`GET /api/v1/upload/{mediaId}/grants`, `DELETE .../grants/{grantId}`) and their public
//! link `GET /api/v1/download/{token}`. Each route is translated to its one use case.

use std::convert::Infallible;

use lambda_http::{Body, Request, Response};
use media_core::MediaService;
use media_core::api::{self, ApiError};
use media_core::describe::DescriptivePatch;
use media_core::grants::{GrantId, GrantList, GrantRequest, GrantView};
use media_core::list::{ListRequest, ListResponse};
use media_core::service::MediaView;
use media_core::usage::UsageView;

/// Handles one request, by the route API Gateway matched.
pub async fn handle(service: &MediaService, req: Request) -> Result<Response<Body>, Infallible> {
    let route = api::route_key(&req);
    Ok(match route.as_str() {
        "GET /api/v1/upload" => api::respond(200, list(service, &req).await),
        "PATCH /api/v1/upload/{mediaId}" => api::media_response(200, update(service, &req).await),
        "POST /api/v1/upload/{mediaId}/restore" => {
            api::media_response(200, restore(service, &req).await)
        }
        "GET /api/v1/usage" => api::respond(200, usage(service, &req).await),
        "GET /api/v1/upload/{mediaId}/download" if api::wants_json(&req) => api::respond(
            200,
            download(service, &req)
                .await
                .map(|url| serde_json::json!({ "url": url, "expiresIn": 60 })),
        ),
        "GET /api/v1/upload/{mediaId}/download" => api::redirect(download(service, &req).await),
        "POST /api/v1/upload/{mediaId}/grants" => {
            api::respond(201, create_grant(service, &req).await)
        }
        "GET /api/v1/upload/{mediaId}/grants" => {
            api::respond(200, list_grants(service, &req).await)
        }
        "DELETE /api/v1/upload/{mediaId}/grants/{grantId}" => {
            match revoke_grant(service, &req).await {
                Ok(()) => api::empty_response(204),
                Err(e) => e.into_response(),
            }
        }
        "GET /api/v1/download/{token}" => api::redirect(use_grant(service, &req).await),
        _ => ApiError::new(404, "route_not_found", format!("no route {route:?} here"))
            .into_response(),
    })
}

async fn list(service: &MediaService, req: &Request) -> Result<ListResponse, ApiError> {
    let owner = api::owner(req)?;
    let request = ListRequest::parse(|name| api::query_param(req, name))?;
    Ok(service.list_media(&owner, request).await?)
}

async fn update(service: &MediaService, req: &Request) -> Result<MediaView, ApiError> {
    let owner = api::owner(req)?;
    let id = api::media_id_param(req)?;
    let patch = DescriptivePatch::parse(&api::merge_patch_body(req)?)
        .map_err(|e| ApiError::new(400, "invalid_request", e.to_string()))?;
    Ok(service
        .update_media(&owner, &id, patch, api::if_match(req))
        .await?)
}

async fn restore(service: &MediaService, req: &Request) -> Result<MediaView, ApiError> {
    let owner = api::owner(req)?;
    let id = api::media_id_param(req)?;
    Ok(service.restore_media(&owner, &id).await?)
}

async fn usage(service: &MediaService, req: &Request) -> Result<UsageView, ApiError> {
    let owner = api::owner(req)?;
    Ok(service.get_usage(&owner).await?)
}

async fn download(service: &MediaService, req: &Request) -> Result<String, ApiError> {
    let owner = api::owner(req)?;
    let id = api::media_id_param(req)?;
    Ok(service.download_media(&owner, &id).await?)
}

async fn create_grant(service: &MediaService, req: &Request) -> Result<GrantView, ApiError> {
    let owner = api::owner(req)?;
    let id = api::media_id_param(req)?;
    let request = api::json_body::<GrantRequest>(req)?.check()?;
    Ok(service
        .create_grant(&owner, &id, request, &api::api_base(req))
        .await?)
}

async fn list_grants(service: &MediaService, req: &Request) -> Result<GrantList, ApiError> {
    let owner = api::owner(req)?;
    let id = api::media_id_param(req)?;
    Ok(service.list_grants(&owner, &id).await?)
}

async fn revoke_grant(service: &MediaService, req: &Request) -> Result<(), ApiError> {
    let owner = api::owner(req)?;
    let id = api::media_id_param(req)?;
    // A malformed grant id names no grant: revoking it is a no-op, as for one already revoked.
    match api::path_param(req, "grantId").and_then(GrantId::parse) {
        Some(grant) => Ok(service.revoke_grant(&owner, &id, &grant).await?),
        None => Ok(service.list_grants(&owner, &id).await.map(|_| ())?),
    }
}

/// The public route: no caller, only the token.
async fn use_grant(service: &MediaService, req: &Request) -> Result<String, ApiError> {
    let token = api::path_param(req, "token").unwrap_or_default();
    Ok(service.use_grant(token).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use media_provision::testkit::{SAMPLE_OWNER, TestStack, corpus_file, sample_event};
    use serde_json::{Value, json};

    async fn call(
        stack: &TestStack,
        event: &Value,
    ) -> Result<(u16, Option<String>, Value), Box<dyn std::error::Error>> {
        let Ok(resp) = handle(
            &stack.service,
            lambda_http::request::from_str(&event.to_string())?,
        )
        .await;
        let etag = resp
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = if resp.body().is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(resp.body().as_ref())?
        };
        Ok((resp.status().as_u16(), etag, body))
    }

    #[tokio::test]
    async fn the_public_download_link_needs_no_authorizer_and_an_unknown_token_is_404()
    -> Result<(), Box<dyn std::error::Error>> {
        let stack = TestStack::new(&[]).await?;
        let event: Value =
            serde_json::from_str(&sample_event("library", "use-grant.json", "unused")?)?;
        assert!(event["requestContext"].get("authorizer").is_none());
        let (status, _, body) = call(&stack, &event).await?;
        assert_eq!((status, &body["error"]["code"]), (404, &json!("not_found")));
        Ok(())
    }

    #[tokio::test]
    async fn the_sample_events_list_and_describe_the_owners_media()
    -> Result<(), Box<dyn std::error::Error>> {
        let stack = TestStack::new(&[]).await?;
        let jpeg = corpus_file("Kodak_CX7530.jpg")?;
        let media = stack
            .upload(SAMPLE_OWNER, "image/jpeg", &jpeg, false)
            .await?;
        let id = media.media_id.as_str();

        let patch: Value = serde_json::from_str(&sample_event("library", "update.json", id)?)?;
        let (status, etag, body) = call(&stack, &patch).await?;
        assert_eq!(status, 200, "{body}");
        assert_eq!(etag.as_deref(), Some("\"2\""));
        assert_eq!(body["alt"], "A red bicycle against a wall");
        assert_eq!(body["tags"], json!(["bicycle", "red"]));
        assert_eq!(body["entity"], json!({"type": "product", "id": "42"}));
        assert_eq!(body["version"], 2);

        let list: Value = serde_json::from_str(&sample_event("library", "list.json", id)?)?;
        let (status, _, body) = call(&stack, &list).await?;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["items"][0]["id"], id);
        assert_eq!(body["nextCursor"], Value::Null);

        // A stale If-Match changes nothing.
        let mut stale = patch.clone();
        stale["headers"]["if-match"] = json!("\"1\"");
        let (status, _, body) = call(&stack, &stale).await?;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (412, Some("precondition_failed"))
        );

        // Someone else's media is not found; a field that is not descriptive is named.
        let other = stack
            .upload("someone-else", "image/jpeg", &jpeg, false)
            .await?;
        let foreign: Value = serde_json::from_str(&sample_event(
            "library",
            "update.json",
            other.media_id.as_str(),
        )?)?;
        assert_eq!(call(&stack, &foreign).await?.0, 404);
        let mut bad = patch.clone();
        bad["body"] = json!(r#"{"status":"ready"}"#);
        let (status, _, body) = call(&stack, &bad).await?;
        assert_eq!(status, 400);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("status:")
        );
        let mut plain = patch.clone();
        plain["headers"]["content-type"] = json!("text/plain");
        assert_eq!(call(&stack, &plain).await?.0, 415);
        Ok(())
    }
}
