//! Confirm: checks that the upload arrived and returns the record.

use std::time::Instant;

use tracing::info;

use crate::domain::{MediaId, MediaStatus, OwnerId};
use crate::service::{FlushOnDrop, MediaError, MediaService, MediaView};

impl MediaService {
    /// Checks that the upload arrived (HeadObject) and returns the record.
    pub async fn confirm_upload(
        &self,
        owner: &OwnerId,
        id: &MediaId,
    ) -> Result<MediaView, MediaError> {
        let _flush = FlushOnDrop(&self.metrics);
        let started = Instant::now();
        let media = self.owned(owner, id).await?;
        // A ready or rejected record proves the object arrived (a rejected one is already deleted).
        if media.status == MediaStatus::Pending && self.store.head(&media.key).await?.is_none() {
            info!(media_id = %id, owner = owner.as_str(), status = "pending", outcome = "not_uploaded", "confirm before the upload");
            return Err(MediaError::NotUploaded);
        }
        info!(
            media_id = %id, owner = owner.as_str(), status = media.status.as_str(),
            elapsed_ms = started.elapsed().as_millis() as u64, "confirmed upload"
        );
        Ok(self.view(media).await?)
    }
}
