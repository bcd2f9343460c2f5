//! Delete: soft-deletes the caller's media; cleanup removes it after the grace period.

use time::OffsetDateTime;
use tracing::info;

use crate::domain::{MediaId, MediaStatus, OwnerId};
use crate::ports::Transition;
use crate::service::{MediaError, MediaService};

impl MediaService {
    /// Soft-deletes the caller's media (`pending|ready|rejected` -> `deleted`): gone from the API
    /// at once, removed by cleanup later. Idempotent: deleting one's own media that is already
    /// soft-deleted succeeds too, so a retried call whose first answer was lost is not a 404.
    pub async fn delete_media(&self, owner: &OwnerId, id: &MediaId) -> Result<(), MediaError> {
        let transition = self
            .repo
            .soft_delete(id, owner, OffsetDateTime::now_utc())
            .await?;
        let outcome = match transition {
            Transition::Applied => "deleted",
            // The condition failed: our own earlier (or retried) delete, or not the caller's.
            Transition::Conflict => match self.repo.get(id).await? {
                Some(m) if m.owner == *owner && m.status == MediaStatus::Deleted => {
                    "already_deleted"
                }
                _ => return Err(MediaError::NotFound),
            },
        };
        info!(media_id = %id, owner = owner.as_str(), status = "deleted", outcome, "soft-deleted media");
        Ok(())
    }
}
