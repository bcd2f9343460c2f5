//! Download: `GET /api/v1/upload/{mediaId}/download` answers a redirect to a presigned GET of the
//! served file that makes the browser save it (`Content-Disposition: attachment` with the
//! sanitised filename) with its stored type, valid for one minute.

use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::domain::{ContentType, Media, MediaId, MediaStatus, OwnerId};
use crate::ports::StoreError;
use crate::service::{MediaError, MediaService};

/// How long a download URL works.
pub const DOWNLOAD_URL_LIFETIME: Duration = Duration::from_secs(60);

/// RFC 8187's `attr-char`: what may stand unencoded in `filename*=UTF-8''...`.
const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `attachment; filename*=UTF-8''<filename, percent-encoded>`: any Unicode filename, with nothing
/// a header could be split on (the filename was sanitised when it was stored).
pub fn attachment(filename: &str) -> String {
    format!(
        "attachment; filename*=UTF-8''{}",
        utf8_percent_encode(filename, ATTR_CHAR)
    )
}

/// Why a download was refused.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// No such media for this caller, or nothing to serve (rejected).
    #[error("media not found")]
    NotFound,
    /// Still pending.
    #[error("the media is not processed yet")]
    NotReady,
    /// Storage or the repository failed.
    #[error(transparent)]
    Media(#[from] MediaError),
}

impl From<StoreError> for DownloadError {
    fn from(e: StoreError) -> Self {
        Self::Media(MediaError::Store(e))
    }
}

impl MediaService {
    /// The caller's media as a one-minute download URL.
    pub async fn download_media(
        &self,
        owner: &OwnerId,
        id: &MediaId,
    ) -> Result<String, DownloadError> {
        let media = match self.owned(owner, id).await {
            Ok(m) => m,
            Err(MediaError::NotFound) => return Err(DownloadError::NotFound),
            Err(e) => return Err(e.into()),
        };
        match media.status {
            MediaStatus::Pending => return Err(DownloadError::NotReady),
            MediaStatus::Ready => {}
            _ => return Err(DownloadError::NotFound),
        }
        self.metrics.count("download_total", &[], 1);
        self.download_url(&media)
            .await?
            .ok_or(DownloadError::NotFound)
    }

    /// A one-minute presigned GET of a ready media's served file, as an attachment with its
    /// filename and stored type (`None` if it has no served file).
    pub(crate) async fn download_url(&self, media: &Media) -> Result<Option<String>, StoreError> {
        let Some(served) = &media.served_original else {
            return Ok(None);
        };
        // The served copy's own type: a WebP when the original was converted.
        let content_type = served
            .as_str()
            .rsplit_once('.')
            .and_then(|(_, ext)| ContentType::from_extension(ext))
            .unwrap_or(media.content_type)
            .served_mime();
        let url = self
            .store
            .presign_download(
                served,
                &attachment(&media.filename),
                content_type,
                DOWNLOAD_URL_LIFETIME,
            )
            .await?;
        Ok(Some(url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_are_percent_encoded_as_rfc_8187_says() {
        assert_eq!(
            attachment("report.pdf"),
            "attachment; filename*=UTF-8''report.pdf"
        );
        assert_eq!(
            attachment("été 2026 (final).pdf"),
            "attachment; filename*=UTF-8''%C3%A9t%C3%A9%202026%20%28final%29.pdf"
        );
        assert_eq!(
            attachment("a\"b;c\r\nd.txt"),
            "attachment; filename*=UTF-8''a%22b%3Bc%0D%0Ad.txt"
        );
    }
}
