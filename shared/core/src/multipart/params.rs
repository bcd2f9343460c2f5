//! `GET /api/v1/upload/s3/params`: Companion's route for a file sent whole, which stock Uppy
//! calls in Companion mode for files it does not upload in parts. A pending record and a presigned
//! POST, exactly as `POST /api/v1/upload/presign` with `"method": "POST"` makes them.

use serde::Serialize;
use serde_json::{Map, Value};

use super::{MultipartError, declared_size, descriptive};
use crate::domain::{MediaId, OwnerId};
use crate::presign::PresignRequest;
use crate::service::{FlushOnDrop, MediaService};

/// Companion's answer: a form to post the file with, plus the media id and key.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadParams {
    /// Always `POST`.
    pub method: &'static str,
    /// The form's action.
    pub url: String,
    /// The form fields to send before the file.
    pub fields: std::collections::BTreeMap<String, String>,
    /// Seconds the form stays valid.
    pub expires: u64,
    /// The new media id.
    pub media_id: MediaId,
    /// The object key.
    pub key: String,
}

impl MediaService {
    /// A presigned POST for one file named by Companion's query (`filename`, `type`, and
    /// `metadata[...]`). The record needs the exact size, so `metadata[size]` is required (one
    /// line of Uppy sets it: see the README).
    pub async fn upload_params(
        &self,
        owner: &OwnerId,
        filename: Option<String>,
        content_type: Option<String>,
        metadata: Map<String, Value>,
    ) -> Result<UploadParams, MultipartError> {
        let _flush = FlushOnDrop(&self.metrics);
        let size = declared_size(&metadata)?.ok_or_else(|| {
            MultipartError::Invalid(
                "metadata[size] is required: the file's size in bytes (set it as Uppy file meta)"
                    .into(),
            )
        })?;
        let request = PresignRequest {
            filename,
            content_type,
            size: Some(i64::try_from(size).unwrap_or(i64::MAX)),
            method: Some("POST".into()),
            sha256: None,
            rest: descriptive(&metadata),
        };
        let presigned = self.presign_upload(owner, request).await?;
        Ok(UploadParams {
            method: "POST",
            url: presigned.url,
            fields: presigned.fields,
            expires: presigned.expires,
            media_id: presigned.media_id,
            key: presigned.key,
        })
    }
}
