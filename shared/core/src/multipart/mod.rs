//! Resumable uploads in parts, the way stock Uppy speaks to Companion's S3 routes
//! (`/api/v1/upload/s3/multipart...`): start an upload (a pending record and an S3 multipart
//! upload), sign each part's PUT, list the parts that arrived (a resumed upload skips them),
//! complete it (the size limit is enforced here, from the parts S3 holds), or abort it.
//!
//! Every call names the upload by its key and upload id; both must be those of one of the caller's
//! records, or the answer is 404. Keys are made by the server, never from the filename.

mod complete;
mod params;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use tracing::info;

use crate::domain::{Media, MediaId, MediaStatus, ObjectKey, OwnerId};
use crate::ports::{MultipartStore, RepoError, StoreError, Transition, UploadedPart};
use crate::presign::PresignError;
use crate::service::{FlushOnDrop, MediaService};

pub use complete::{CompleteRequest, CompletedPart, MultipartCompleted};
pub use params::UploadParams;

/// S3's smallest part (all but the last): 5 MiB.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// S3's largest part: 5 GiB.
pub const MAX_PART_SIZE: u64 = crate::config::MAX_SINGLE_PUT;
/// S3's most parts in one upload.
pub const MAX_PARTS: u32 = 10_000;

/// `POST /api/v1/upload/s3/multipart`, as Uppy sends it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MultipartStart {
    /// The file's name (display only).
    pub filename: Option<String>,
    /// Its declared type.
    #[serde(rename = "type")]
    pub content_type: Option<String>,
    /// The file's metadata: `size` (when given, over the kind's limit is refused at once) and the
    /// descriptive fields (`alt`, `title`, `description`, `tags`, `entity`); anything else is
    /// ignored.
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

/// The answer to a start: what Uppy needs, and the media id.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MultipartStarted {
    /// The object key the parts assemble into.
    pub key: String,
    /// S3's upload id.
    pub upload_id: String,
    /// The bucket.
    pub bucket: String,
    /// The new media id.
    pub media_id: MediaId,
}

/// A presigned part upload.
#[derive(Debug, Clone, Serialize)]
pub struct SignedPart {
    /// The presigned `UploadPart` URL.
    pub url: String,
    /// Seconds it stays valid.
    pub expires: u64,
}

/// One part as `GET .../multipart/{uploadId}` lists it (S3's names, as Companion answers).
#[derive(Debug, Clone, Serialize)]
pub struct PartView {
    /// Its number.
    #[serde(rename = "PartNumber")]
    pub part_number: u32,
    /// Its ETag.
    #[serde(rename = "ETag")]
    pub etag: String,
    /// Its size in bytes.
    #[serde(rename = "Size")]
    pub size: u64,
}

impl From<UploadedPart> for PartView {
    fn from(p: UploadedPart) -> Self {
        Self {
            part_number: p.number,
            etag: p.etag,
            size: p.size,
        }
    }
}

/// Refusals and failures of the multipart routes.
#[derive(Debug, thiserror::Error)]
pub enum MultipartError {
    /// The request is malformed.
    #[error("{0}")]
    Invalid(String),
    /// No such upload among the caller's pending media.
    #[error("no such upload")]
    NotFound,
    /// The file is over its kind's limit.
    #[error("the file is {size} bytes or more; the limit is {limit}")]
    TooLarge {
        /// Its size (or the least it can be).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Completing it would take the owner over their byte quota.
    #[error("{0}")]
    QuotaExceeded(String),
    /// The media changed under the call (completed and aborted at once).
    #[error("the upload changed while this request ran; try again")]
    Contended,
    /// A start refused as a presign would be (type, size, rate, quota).
    #[error(transparent)]
    Start(#[from] PresignError),
    /// This deployment has no multipart store.
    #[error("multipart uploads are not configured")]
    Unavailable,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The repository failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl MediaService {
    fn multipart_store(&self) -> Result<&dyn MultipartStore, MultipartError> {
        self.multipart.as_deref().ok_or(MultipartError::Unavailable)
    }

    /// Starts a multipart upload: the pending record (checked, rate-limited and reserved against
    /// the quota as a presign is) and the S3 upload it names.
    pub async fn start_multipart(
        &self,
        owner: &OwnerId,
        start: MultipartStart,
    ) -> Result<MultipartStarted, MultipartError> {
        let _flush = FlushOnDrop(&self.metrics);
        let store = self.multipart_store()?;
        let started = std::time::Instant::now();
        let size = declared_size(&start.metadata)?;
        let describe = descriptive(&start.metadata);
        let checked = self.check_multipart(start.filename, start.content_type, size, describe)?;
        let window = self
            .count_presign(owner)
            .await?
            .map_err(PresignError::RateLimited)?;
        let result = async {
            let now = OffsetDateTime::now_utc();
            let mut media = self.new_record(owner, &checked, now);
            media.expires_at = Some(now + self.config.multipart_pending_ttl);
            // The S3 upload first: a record always names an upload that was made. An upload
            // whose record is never written is removed by the bucket's lifecycle rule.
            let upload_id = store
                .create_multipart(&media.key, media.content_type)
                .await?;
            media.upload_id = Some(upload_id.clone());
            if let Err(e) = self
                .create_records(owner, std::slice::from_ref(&media), started)
                .await
            {
                if let Err(abort) = store.abort_multipart(&media.key, &upload_id).await {
                    tracing::warn!(error = %abort, "could not abort the upload of a refused start");
                }
                return Err(MultipartError::Start(e));
            }
            Ok(MultipartStarted {
                key: media.key.as_str().to_owned(),
                upload_id,
                bucket: self.config.bucket.clone(),
                media_id: media.id,
            })
        }
        .await;
        if result.is_err() {
            self.give_back_presign(owner, window).await;
        } else {
            self.metrics
                .count("multipart_total", &[("stage", "started")], 1);
        }
        result
    }

    /// A presigned PUT for one part (`part` as the path gives it, 1..=10000).
    pub async fn sign_part(
        &self,
        owner: &OwnerId,
        upload_id: &str,
        key: &str,
        part: &str,
    ) -> Result<SignedPart, MultipartError> {
        let store = self.multipart_store()?;
        let number = part_number(part)?;
        let media = self.pending_upload(owner, upload_id, key).await?;
        // Every part but the last is at least 5 MiB: beyond this part number the file cannot
        // fit its kind's limit, so the part is refused before any byte is sent.
        let limit = self.config.max_size(media.kind());
        let least = u64::from(number - 1) * MIN_PART_SIZE + 1;
        if least > limit {
            return Err(MultipartError::TooLarge { size: least, limit });
        }
        let expires = self.config.presign_expiry;
        let url = store
            .presign_part(&media.key, upload_id, number, expires)
            .await?;
        Ok(SignedPart {
            url,
            expires: expires.as_secs(),
        })
    }

    /// The parts uploaded so far, all of them (S3 lists at most 1000 a page).
    pub async fn list_parts(
        &self,
        owner: &OwnerId,
        upload_id: &str,
        key: &str,
    ) -> Result<Vec<PartView>, MultipartError> {
        let store = self.multipart_store()?;
        let media = self.pending_upload(owner, upload_id, key).await?;
        let parts = store
            .list_parts(&media.key, upload_id)
            .await?
            .ok_or(MultipartError::NotFound)?;
        Ok(parts.into_iter().map(PartView::from).collect())
    }

    /// Aborts the upload: S3 frees its parts, and the record is expired (it no longer shows, its
    /// quota is given back, and the next cleanup removes it). A repeated abort answers the same.
    pub async fn abort_multipart(
        &self,
        owner: &OwnerId,
        upload_id: &str,
        key: &str,
    ) -> Result<(), MultipartError> {
        let _flush = FlushOnDrop(&self.metrics);
        let store = self.multipart_store()?;
        let media = self.upload_record(owner, upload_id, key).await?;
        match media.status {
            MediaStatus::Pending => {}
            // This call's own earlier attempt, whose answer was lost.
            MediaStatus::Expired => return Ok(()),
            _ => return Err(MultipartError::NotFound),
        }
        // The record leaves `pending` first: a complete that then finds no upload knows it was
        // aborted. Should the abort below fail, cleanup's purge of the expired record aborts it.
        let now = OffsetDateTime::now_utc();
        if self.repo.expire(&media, now).await? == Transition::Conflict {
            let now_status = self.repo.get(&media.id).await?.map(|m| m.status);
            if now_status != Some(MediaStatus::Expired) {
                return Err(MultipartError::Contended);
            }
        }
        store.abort_multipart(&media.key, upload_id).await?;
        self.metrics
            .count("multipart_total", &[("stage", "aborted")], 1);
        info!(media_id = %media.id, owner = owner.as_str(), "multipart upload aborted");
        Ok(())
    }

    /// The caller's record of this upload, whatever its status.
    pub(crate) async fn upload_record(
        &self,
        owner: &OwnerId,
        upload_id: &str,
        key: &str,
    ) -> Result<Media, MultipartError> {
        let id = ObjectKey::from_raw(key)
            .upload_media_id(&self.config.upload_prefix)
            .ok_or(MultipartError::NotFound)?;
        match self.repo.get(&id).await? {
            Some(m)
                if m.owner == *owner
                    && m.key.as_str() == key
                    && m.upload_id.as_deref() == Some(upload_id) =>
            {
                Ok(m)
            }
            _ => Err(MultipartError::NotFound),
        }
    }

    /// The caller's pending record of this upload.
    async fn pending_upload(
        &self,
        owner: &OwnerId,
        upload_id: &str,
        key: &str,
    ) -> Result<Media, MultipartError> {
        let media = self.upload_record(owner, upload_id, key).await?;
        if media.status == MediaStatus::Pending {
            Ok(media)
        } else {
            Err(MultipartError::NotFound)
        }
    }
}

/// A part number from the path: 1..=10000.
fn part_number(raw: &str) -> Result<u32, MultipartError> {
    raw.parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_PARTS).contains(n))
        .ok_or_else(|| {
            MultipartError::Invalid(format!(
                "the part number must be a whole number from 1 to {MAX_PARTS}"
            ))
        })
}

/// `metadata.size`, when the client sends it: a whole number of bytes (or its decimal string,
/// as Uppy's metadata values may be).
fn declared_size(metadata: &Map<String, Value>) -> Result<Option<u64>, MultipartError> {
    let invalid = || MultipartError::Invalid("metadata.size must be a number of bytes".into());
    match metadata.get("size") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().filter(|s| *s > 0).map(Some).ok_or_else(invalid),
        Some(Value::String(s)) => s
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|s| *s > 0)
            .map(Some)
            .ok_or_else(invalid),
        Some(_) => Err(invalid()),
    }
}

/// The descriptive fields of a start's metadata. Uppy sends metadata values as strings, so
/// `tags` and `entity` may come as JSON text.
fn descriptive(metadata: &Map<String, Value>) -> Map<String, Value> {
    crate::describe::FIELDS
        .iter()
        .filter_map(|name| {
            let value = metadata.get(*name)?;
            let value = match (*name, value) {
                ("tags" | "entity", Value::String(text)) => {
                    serde_json::from_str(text).unwrap_or_else(|_| value.clone())
                }
                _ => value.clone(),
            };
            Some(((*name).to_owned(), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_numbers_are_one_to_ten_thousand() {
        assert_eq!(part_number("1").ok(), Some(1));
        assert_eq!(part_number("10000").ok(), Some(10_000));
        for bad in ["0", "10001", "-1", "1.5", "", "x", "99999999999"] {
            assert!(
                matches!(part_number(bad), Err(MultipartError::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_declared_size_is_a_positive_number_or_its_text() {
        let meta = |v: Value| Map::from_iter([("size".to_owned(), v)]);
        assert_eq!(declared_size(&Map::new()).ok(), Some(None));
        assert_eq!(declared_size(&meta(Value::from(7))).ok(), Some(Some(7)));
        assert_eq!(declared_size(&meta(Value::from("7"))).ok(), Some(Some(7)));
        for bad in [
            Value::from(0),
            Value::from(-1),
            Value::from("x"),
            Value::Bool(true),
        ] {
            assert!(declared_size(&meta(bad)).is_err());
        }
    }

    #[test]
    fn descriptive_fields_come_from_metadata_and_json_text() {
        let meta: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "name": "a.pdf", "alt": "An invoice", "tags": "[\"x\",\"y\"]", "relativePath": null
        }))
        .unwrap_or_default();
        let d = descriptive(&meta);
        assert_eq!(d.get("alt"), Some(&Value::from("An invoice")));
        assert_eq!(d.get("tags"), Some(&serde_json::json!(["x", "y"])));
        assert!(!d.contains_key("name"));
    }
}
