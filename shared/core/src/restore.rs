//! Restore: undoes a soft delete within the grace period. The media comes back in the state it
//! had, and its objects serve again before the answer is sent.

use time::OffsetDateTime;
use tracing::{info, warn};

use crate::domain::{MediaId, MediaStatus, OwnerId};
use crate::notify::Change;
use crate::ports::{PublishError, RepoError, Reserved, StoreError};
use crate::service::{FlushOnDrop, MediaService, MediaView};
use crate::usage::over_quota_message;

/// How often a restore is tried again when another change lands between its read and its write.
const ATTEMPTS: usize = 3;

/// Refusals and failures of a restore.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// No such media for this caller, or it was purged already.
    #[error("media not found")]
    NotFound,
    /// The media is not deleted.
    #[error("the media is not deleted")]
    NotDeleted,
    /// The owner no longer has room for it.
    #[error("{0}")]
    QuotaExceeded(String),
    /// Other changes kept landing between the read and the write.
    #[error("the media kept changing while it was being restored; try again")]
    Contended,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The repository failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// Restored, but its event could not be published (a retry publishes it).
    #[error(transparent)]
    Publish(#[from] PublishError),
}

impl MediaService {
    /// Brings the caller's soft-deleted media back to the status it had, its objects first (so
    /// that its URLs serve again as soon as this answers), then the record.
    ///
    /// A restore whose answer was lost and is retried finds the media restored at the next
    /// version and answers it again.
    pub async fn restore_media(
        &self,
        owner: &OwnerId,
        id: &MediaId,
    ) -> Result<MediaView, RestoreError> {
        let _flush = FlushOnDrop(&self.metrics);
        let mut restored_version = None;
        for _ in 0..ATTEMPTS {
            let media = match self.repo.get(id).await? {
                Some(m) if m.owner == *owner => m,
                _ => return Err(RestoreError::NotFound),
            };
            match media.status {
                MediaStatus::Deleted => {}
                MediaStatus::Expired => return Err(RestoreError::NotFound),
                // Live again: by our own earlier attempt whose answer was lost, or it never was
                // deleted.
                _ if restored_version == Some(media.version) => {
                    info!(media_id = %id, version = media.version, outcome = "already_restored", "restored media");
                    self.publish(Change::Restored, &media).await?;
                    return Ok(self.view(media).await?);
                }
                _ => return Err(RestoreError::NotDeleted),
            }
            let to = media.restored_status();
            let keys = media.served_keys();
            if !keys.is_empty() {
                let missing = self.store.undelete(&keys).await?;
                if !missing.is_empty() {
                    // The bucket no longer holds them (its lifecycle removed old versions): there
                    // is nothing to bring back, as after a purge.
                    warn!(media_id = %id, missing = missing.len(), "a deleted media's objects are gone; it cannot be restored");
                    return Err(RestoreError::NotFound);
                }
            }
            let now = OffsetDateTime::now_utc();
            restored_version = Some(media.version + 1);
            let quota = self.quota();
            match self.repo.restore(&media, to, &quota, now).await? {
                Reserved::OverQuota(usage) => {
                    // Its objects serve again already: hide them again, as the record says.
                    if !keys.is_empty() {
                        self.delete_all(&keys).await?;
                    }
                    return Err(RestoreError::QuotaExceeded(over_quota_message(
                        quota, usage, 1, media.size,
                    )));
                }
                Reserved::Applied => {
                    let mut media = media;
                    media.status = to;
                    media.version += 1;
                    media.updated_at = now;
                    media.deleted_at = None;
                    media.deleted_from = None;
                    info!(media_id = %id, status = to.as_str(), version = media.version, outcome = "restored", "restored media");
                    self.publish(Change::Restored, &media).await?;
                    return Ok(self.view(media).await?);
                }
                Reserved::Conflict => continue,
            }
        }
        Err(RestoreError::Contended)
    }
}
