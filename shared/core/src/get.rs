//! Get: the caller's media with its URLs.

use crate::domain::{MediaId, OwnerId};
use crate::service::{FlushOnDrop, MediaError, MediaService, MediaView};

impl MediaService {
    /// The caller's media with its URLs.
    pub async fn get_media(&self, owner: &OwnerId, id: &MediaId) -> Result<MediaView, MediaError> {
        let _flush = FlushOnDrop(&self.metrics);
        let media = self.owned(owner, id).await?;
        Ok(self.view(media).await?)
    }
}
