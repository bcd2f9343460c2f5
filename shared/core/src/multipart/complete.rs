//! Completing a multipart upload: the parts S3 holds decide the file's size, which must fit its
//! kind's limit and the owner's quota before S3 assembles the object. Over the limit, the upload
//! is aborted and the media rejected (`too_large`), so no object ever exists.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tracing::{info, warn};

use super::{MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE, MultipartError};
use crate::domain::{MediaId, MediaStatus, OwnerId, Rejection, RejectionCode};
use crate::ports::{Completion, PartTag, Reserved, UploadedPart};
use crate::service::{FlushOnDrop, MediaService};
use crate::usage::over_quota_message;

/// One part of `POST .../complete` (S3's names, as Uppy sends them).
#[derive(Debug, Clone, Deserialize)]
pub struct CompletedPart {
    /// Its number.
    #[serde(rename = "PartNumber")]
    pub part_number: u32,
    /// The ETag its upload answered.
    #[serde(rename = "ETag")]
    pub etag: String,
}

/// The body of `POST .../complete`.
#[derive(Debug, Clone, Deserialize)]
pub struct CompleteRequest {
    /// The parts, in ascending order.
    pub parts: Vec<CompletedPart>,
}

/// A completed upload.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MultipartCompleted {
    /// The media id.
    pub media_id: MediaId,
    /// The object key.
    pub key: String,
    /// The bucket.
    pub bucket: String,
}

impl MediaService {
    /// Completes the upload from these parts. A repeated complete (its answer lost) answers the
    /// same once the object exists; one that was refused as too large is refused again.
    pub async fn complete_multipart(
        &self,
        owner: &OwnerId,
        upload_id: &str,
        key: &str,
        request: CompleteRequest,
    ) -> Result<MultipartCompleted, MultipartError> {
        let _flush = FlushOnDrop(&self.metrics);
        let store = self.multipart_store()?;
        let tags = checked_parts(request.parts)?;
        let media = self.upload_record(owner, upload_id, key).await?;
        let done = MultipartCompleted {
            media_id: media.id.clone(),
            key: media.key.as_str().to_owned(),
            bucket: self.config.bucket.clone(),
        };
        let limit = self.config.max_size(media.kind());
        match media.status {
            MediaStatus::Pending => {}
            MediaStatus::Ready => return Ok(done),
            MediaStatus::Rejected => {
                return match &media.rejection {
                    // Refused at complete: the same answer again.
                    Some(r) if r.code == RejectionCode::TooLarge => Err(MultipartError::TooLarge {
                        size: media.size,
                        limit,
                    }),
                    // Completed, then refused by processing: the upload itself did complete.
                    _ => Ok(done),
                };
            }
            _ => return Err(MultipartError::NotFound),
        }
        let Some(listed) = store.list_parts(&media.key, upload_id).await? else {
            return self.gone(&media, done).await;
        };
        let size = total_size(&tags, &listed)?;
        if size > limit {
            self.refuse_too_large(&media, upload_id, size, limit)
                .await?;
            return Err(MultipartError::TooLarge { size, limit });
        }
        if size != media.size {
            self.settle(&media, size).await?;
        }
        match store
            .complete_multipart(&media.key, upload_id, &tags)
            .await?
        {
            Completion::Completed => {}
            Completion::NoSuchUpload => return self.gone(&media, done).await,
            Completion::Refused(message) => return Err(MultipartError::Invalid(message)),
        }
        self.metrics
            .count("multipart_total", &[("stage", "completed")], 1);
        info!(
            media_id = %media.id, owner = owner.as_str(), size, parts = tags.len(),
            "multipart upload completed"
        );
        Ok(done)
    }

    /// S3 has no such upload: completed or aborted. An abort (by the owner or by cleanup) always
    /// takes the record out of `pending` before it aborts the upload, so a record still pending
    /// means this call's earlier attempt completed it and its answer was lost. (The bucket's
    /// lifecycle rule aborts uploads only two days old, after cleanup expired their records.)
    async fn gone(
        &self,
        media: &crate::domain::Media,
        done: MultipartCompleted,
    ) -> Result<MultipartCompleted, MultipartError> {
        match self.repo.get(&media.id).await? {
            Some(m) if matches!(m.status, MediaStatus::Pending | MediaStatus::Ready) => Ok(done),
            _ => Err(MultipartError::NotFound),
        }
    }

    /// Over the limit: the upload is aborted (no object is ever assembled) and the media
    /// rejected, which gives its reservation back.
    async fn refuse_too_large(
        &self,
        media: &crate::domain::Media,
        upload_id: &str,
        size: u64,
        limit: u64,
    ) -> Result<(), MultipartError> {
        self.multipart_store()?
            .abort_multipart(&media.key, upload_id)
            .await?;
        let rejection = Rejection {
            code: RejectionCode::TooLarge,
            message: format!("the file is {size} bytes; the limit is {limit}"),
        };
        let now = OffsetDateTime::now_utc();
        // A conflict is this call's earlier attempt (rejected already) or a concurrent one: the
        // upload is gone either way.
        let _ = self.repo.mark_rejected(media, &rejection, now).await?;
        self.metrics
            .count("multipart_total", &[("stage", "too_large")], 1);
        warn!(media_id = %media.id, size, limit, "multipart upload over the limit: aborted");
        Ok(())
    }

    /// The record takes the parts' size, and the owner's usage the difference, within the quota.
    async fn settle(&self, media: &crate::domain::Media, size: u64) -> Result<(), MultipartError> {
        let quota = self.quota();
        match self.repo.settle_size(media, size, &quota).await? {
            Reserved::Applied => Ok(()),
            Reserved::OverQuota(usage) => {
                self.metrics.count("quota_exceeded_total", &[], 1);
                let extra = size.saturating_sub(media.size);
                Err(MultipartError::QuotaExceeded(over_quota_message(
                    quota, usage, 0, extra,
                )))
            }
            Reserved::Conflict => {
                // This call's earlier attempt settled it (its answer was lost), or the record
                // changed under it.
                match self.repo.get(&media.id).await? {
                    Some(m) if m.status == MediaStatus::Pending && m.size == size => Ok(()),
                    _ => Err(MultipartError::Contended),
                }
            }
        }
    }
}

/// The parts of a complete request: at least one, at most 10,000, numbers ascending.
fn checked_parts(parts: Vec<CompletedPart>) -> Result<Vec<PartTag>, MultipartError> {
    let invalid = |m: String| MultipartError::Invalid(m);
    if parts.is_empty() {
        return Err(invalid("parts must name at least one part".into()));
    }
    if parts.len() > MAX_PARTS as usize {
        return Err(invalid(format!("parts names more than {MAX_PARTS} parts")));
    }
    let mut previous = 0;
    let mut tags = Vec::with_capacity(parts.len());
    for (i, p) in parts.into_iter().enumerate() {
        if !(1..=MAX_PARTS).contains(&p.part_number) {
            return Err(invalid(format!(
                "parts[{i}].PartNumber must be from 1 to {MAX_PARTS}"
            )));
        }
        if p.part_number <= previous {
            return Err(invalid(format!(
                "parts[{i}]: part numbers must be in ascending order, each once"
            )));
        }
        previous = p.part_number;
        tags.push(PartTag {
            number: p.part_number,
            etag: p.etag,
        });
    }
    Ok(tags)
}

/// The size of the object these parts make, from S3's list: every named part must be there with
/// its ETag, every part but the last at least 5 MiB, none over 5 GiB.
fn total_size(tags: &[PartTag], listed: &[UploadedPart]) -> Result<u64, MultipartError> {
    let unquote = |e: &str| e.trim().trim_matches('"').to_owned();
    let mut total: u64 = 0;
    for (i, tag) in tags.iter().enumerate() {
        let part = listed
            .iter()
            .find(|p| p.number == tag.number && unquote(&p.etag) == unquote(&tag.etag))
            .ok_or_else(|| {
                MultipartError::Invalid(format!(
                    "part {} with ETag {} was not uploaded",
                    tag.number, tag.etag
                ))
            })?;
        let last = i + 1 == tags.len();
        if (!last && part.size < MIN_PART_SIZE) || part.size > MAX_PART_SIZE {
            return Err(MultipartError::Invalid(format!(
                "part {} is {} bytes; every part but the last is 5 MiB to 5 GiB",
                part.number, part.size
            )));
        }
        total = total.saturating_add(part.size);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(number: u32, etag: &str) -> CompletedPart {
        CompletedPart {
            part_number: number,
            etag: etag.into(),
        }
    }

    fn listed(number: u32, size: u64) -> UploadedPart {
        UploadedPart {
            number,
            etag: format!("\"e{number}\""),
            size,
        }
    }

    #[test]
    fn parts_are_ascending_unique_and_in_range() {
        assert!(checked_parts(vec![part(1, "a"), part(3, "b")]).is_ok());
        for bad in [
            vec![],
            vec![part(0, "a")],
            vec![part(10_001, "a")],
            vec![part(2, "a"), part(1, "b")],
            vec![part(1, "a"), part(1, "b")],
        ] {
            assert!(checked_parts(bad).is_err());
        }
    }

    #[test]
    fn the_size_is_the_named_parts_as_listed() {
        let mib = 1024 * 1024;
        let list = [listed(1, 5 * mib), listed(2, 5 * mib), listed(3, 10)];
        let tags = |ns: &[u32]| -> Vec<PartTag> {
            ns.iter()
                .map(|n| PartTag {
                    number: *n,
                    etag: format!("e{n}"),
                })
                .collect()
        };
        assert_eq!(
            total_size(&tags(&[1, 2, 3]), &list).ok(),
            Some(10 * mib + 10)
        );
        // A part left out is not counted; a small part is fine last only.
        assert_eq!(total_size(&tags(&[1, 3]), &list).ok(), Some(5 * mib + 10));
        assert!(total_size(&tags(&[1, 4]), &list).is_err());
        let small = [listed(1, 10), listed(2, 10)];
        assert!(total_size(&tags(&[1, 2]), &small).is_err());
        let wrong = vec![PartTag {
            number: 1,
            etag: "other".into(),
        }];
        assert!(total_size(&wrong, &list).is_err());
    }
}
