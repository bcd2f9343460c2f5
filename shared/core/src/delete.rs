//! Delete: soft-deletes the caller's media and stops serving it at once; cleanup removes it after
//! the grace period, and a restore before then brings it back.

use time::OffsetDateTime;
use tracing::{error, info};

use crate::domain::{Media, MediaId, MediaStatus, OwnerId};
use crate::notify::Change;
use crate::ports::Transition;
use crate::service::{FlushOnDrop, MediaError, MediaService};

/// How often a delete is tried again when an edit lands between its read and its write.
const ATTEMPTS: usize = 3;

impl MediaService {
    /// Soft-deletes the caller's media (`pending|ready|rejected` -> `deleted`): gone from the API
    /// at once, and its objects stop serving (the bucket keeps their versions for a restore; a
    /// CDN is told to forget them), and its download grants are revoked. Cleanup removes it for good after the grace period.
    ///
    /// Idempotent: deleting one's own media that is already soft-deleted succeeds too (and hides
    /// its objects again), so a retried call whose first answer was lost is not a 404.
    pub async fn delete_media(&self, owner: &OwnerId, id: &MediaId) -> Result<(), MediaError> {
        let _flush = FlushOnDrop(&self.metrics);
        for _ in 0..ATTEMPTS {
            let mut media = match self.repo.get(id).await? {
                Some(m) if m.owner == *owner => m,
                _ => return Err(MediaError::NotFound),
            };
            let outcome = match media.status {
                MediaStatus::Deleted => "already_deleted",
                MediaStatus::Expired => return Err(MediaError::NotFound),
                _ => {
                    let now = OffsetDateTime::now_utc();
                    match self.repo.soft_delete(&media, now).await? {
                        Transition::Applied => {
                            media.deleted_from = Some(media.status);
                            media.status = MediaStatus::Deleted;
                            media.version += 1;
                            media.deleted_at = Some(now);
                            media.updated_at = now;
                            "deleted"
                        }
                        // Our own write whose answer was lost, or an edit in between: read again.
                        Transition::Conflict => continue,
                    }
                }
            };
            self.stop_serving(&media).await?;
            // Its download links stop too (a grant's use also checks that its media is still
            // served, so a link cannot outlive the delete even before this runs).
            let revoked = self.grants.revoke_all(id).await?;
            // A repeated delete announces again (at most one more event per retry): the first
            // attempt may have failed after storing the change and before publishing it.
            self.publish(Change::Deleted, &media).await?;
            info!(media_id = %id, owner = owner.as_str(), status = "deleted", outcome, revoked_grants = revoked, "soft-deleted media");
            return Ok(());
        }
        Err(MediaError::Contended)
    }

    /// Deletes the objects URLs serve (in a versioned bucket: a delete marker on each, so every
    /// presigned URL handed out before answers 404), then invalidates them on the CDN.
    async fn stop_serving(&self, media: &Media) -> Result<(), MediaError> {
        let keys = media.served_keys();
        if keys.is_empty() {
            return Ok(());
        }
        self.delete_all(&keys).await?;
        if let Some(cdn) = &self.cdn {
            // The exact keys, not a wildcard: CloudFront allows 3,000 file paths in progress per
            // distribution but only 15 wildcard paths, which a burst of deletes would exhaust.
            let paths: Vec<String> = keys.iter().map(|k| format!("/{k}")).collect();
            // The origin no longer serves them; if the invalidation fails, cached copies stay
            // until they expire. Counted and logged, not a failed delete.
            if let Err(e) = cdn.invalidate(&paths).await {
                self.metrics
                    .count("cdn_invalidation_failures_total", &[], 1);
                error!(media_id = %media.id, error = %e, cause = ?e, "could not invalidate a deleted media's CDN paths");
            }
        }
        Ok(())
    }
}
