//! The media service: the ports every use case talks to, and what the API use cases share (the
//! owner check and the media view). Each use case is its own module (`presign`, `process`,
//! `confirm`, `get`, `list`, `update`, `delete`, `cleanup`), an `impl MediaService` block over
//! these ports.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::config::Config;
use crate::describe::{EntityLink, Tag};
use crate::domain::{
    ContentType, Media, MediaId, MediaKind, MediaMetadata, MediaStatus, ObjectKey, OwnerId,
    Rejection, format_time,
};
use crate::metrics::{Metered, Metrics};
use crate::ports::{
    CdnCache, EventPublisher, GrantStore, ImageProcessor, MediaRepository, MultipartStore,
    ObjectReader, ObjectStore, ObjectWriter, PublishError, RepoError, Scanner, StoreError,
};

/// Failures of confirm, get and delete.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// No such media for this caller (another user's media is reported the same way).
    #[error("media not found")]
    NotFound,
    /// Confirm was called before the object arrived.
    #[error("the upload has not arrived yet")]
    NotUploaded,
    /// Other changes kept landing between a read and its conditional write.
    #[error("the media kept changing; try again")]
    Contended,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The repository failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// The change is stored, but its event could not be published (a retry publishes it).
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// What the API's answers and the events show of a media item: everything but its URLs and its
/// owner.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaFields {
    /// The media id.
    pub id: MediaId,
    /// `pending`, `ready` or `rejected` (in events, also `deleted` or `expired`).
    pub status: MediaStatus,
    /// The filename given at presign.
    pub filename: String,
    /// The declared type.
    pub content_type: ContentType,
    /// What sort of file it is (`image`).
    pub kind: MediaKind,
    /// The declared size in bytes.
    pub size: u64,
    /// Alternative text.
    pub alt: Option<String>,
    /// A title.
    pub title: Option<String>,
    /// A description.
    pub description: Option<String>,
    /// Tags, normalised.
    pub tags: Vec<Tag>,
    /// The thing it belongs to.
    pub entity: Option<EntityLink>,
    /// Grows by one with every stored change; the `ETag` of every answer that shows the media.
    pub version: u64,
    /// What processing found (ready only).
    pub metadata: Option<MediaMetadata>,
    /// Why it was rejected (rejected only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection: Option<Rejection>,
    /// When it was presigned.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
}

impl MediaFields {
    /// The fields of `media` as stored.
    pub fn of(media: &Media) -> Self {
        Self {
            id: media.id.clone(),
            status: media.status,
            filename: media.filename.clone(),
            content_type: media.content_type,
            kind: media.kind(),
            size: media.size,
            alt: media.describe.alt.clone(),
            title: media.describe.title.clone(),
            description: media.describe.description.clone(),
            tags: media.describe.tags.clone(),
            entity: media.describe.entity.clone(),
            version: media.version,
            metadata: media.metadata.clone(),
            rejection: media.rejection.clone(),
            created_at: format_time(media.created_at),
            updated_at: format_time(media.updated_at),
        }
    }
}

/// A media record as the API shows it: its fields and its URLs.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaView {
    /// Everything but the URLs.
    #[serde(flatten)]
    pub fields: MediaFields,
    /// URL of the original (ready only).
    pub original_url: Option<String>,
    /// URLs of the thumbnails by name (ready only).
    pub thumbnails: BTreeMap<String, String>,
}

/// The service behind every function.
#[derive(Clone)]
pub struct MediaService {
    pub(crate) config: Arc<Config>,
    pub(crate) store: Arc<dyn ObjectStore>,
    /// Objects' bytes read and copied (the process function).
    reader: Option<Arc<dyn ObjectReader>>,
    /// Objects written (the process function, and presign's server-side upload).
    writer: Option<Arc<dyn ObjectWriter>>,
    pub(crate) repo: Arc<dyn MediaRepository>,
    pub(crate) grants: Arc<dyn GrantStore>,
    pub(crate) cdn: Option<Arc<dyn CdnCache>>,
    pub(crate) metrics: Metrics,
    /// Only the process function links an image pipeline; the API functions have none.
    pub(crate) processor: Option<Arc<dyn ImageProcessor>>,
    /// Where state changes are published (the functions that make them: process, delete,
    /// library, cleanup).
    pub(crate) events: Option<Arc<dyn EventPublisher>>,
    /// S3 multipart uploads (the upload routes under `/api/v1/upload/s3/`, and cleanup, which
    /// aborts the ones never completed).
    pub(crate) multipart: Option<Arc<dyn MultipartStore>>,
    /// The malware scanner processing streams each upload through (`MALWARE_SCANNER=clamd`).
    pub(crate) scanner: Option<Arc<dyn Scanner>>,
}

/// The error of a port the function was wired without (a wiring bug, answered as internal).
fn unwired(operation: &'static str) -> StoreError {
    StoreError {
        operation,
        source: "this function's service was wired without that port".into(),
    }
}

/// Writes the metrics of one use case when it ends, whichever way it ends.
pub(crate) struct FlushOnDrop<'a>(pub(crate) &'a Metrics);

impl Drop for FlushOnDrop<'_> {
    fn drop(&mut self) {
        self.0.flush();
    }
}

impl MediaService {
    /// A service over the given ports, with metrics on stdout when `METRICS_NAMESPACE` is set.
    pub fn new(
        config: Config,
        store: Arc<dyn ObjectStore>,
        repo: Arc<dyn MediaRepository>,
        grants: Arc<dyn GrantStore>,
    ) -> Self {
        let metrics = Metrics::stdout(config.metrics_namespace.as_deref());
        Self::with_parts(config, store, repo, grants, None, metrics)
    }

    /// A service over the given ports (objects, records, download grants), an optional CDN
    /// cache, and these metrics.
    pub fn with_parts(
        config: Config,
        store: Arc<dyn ObjectStore>,
        repo: Arc<dyn MediaRepository>,
        grants: Arc<dyn GrantStore>,
        cdn: Option<Arc<dyn CdnCache>>,
        metrics: Metrics,
    ) -> Self {
        Self {
            config: Arc::new(config),
            store: Arc::new(Metered::new(store, metrics.clone())),
            reader: None,
            writer: None,
            repo,
            grants,
            cdn,
            metrics,
            processor: None,
            events: None,
            multipart: None,
            scanner: None,
        }
    }

    /// The same service with an event publisher, to which every state change is announced.
    pub fn with_events(mut self, events: Arc<dyn EventPublisher>) -> Self {
        self.events = Some(events);
        self
    }

    /// The same service with objects' bytes read and copied (processing).
    pub fn with_reader(mut self, reader: Arc<dyn ObjectReader>) -> Self {
        self.reader = Some(Arc::new(Metered::new(reader, self.metrics.clone())));
        self
    }

    /// The same service with objects written (processing, the server-side upload).
    pub fn with_writer(mut self, writer: Arc<dyn ObjectWriter>) -> Self {
        self.writer = Some(Arc::new(Metered::new(writer, self.metrics.clone())));
        self
    }

    /// The object reader, or an error saying the service was wired without one.
    pub(crate) fn reader(&self) -> Result<&Arc<dyn ObjectReader>, StoreError> {
        self.reader.as_ref().ok_or_else(|| unwired("read objects"))
    }

    /// The object writer, or an error saying the service was wired without one.
    pub(crate) fn writer(&self) -> Result<&Arc<dyn ObjectWriter>, StoreError> {
        self.writer.as_ref().ok_or_else(|| unwired("write objects"))
    }

    /// The same service with S3 multipart uploads.
    pub fn with_multipart(mut self, multipart: Arc<dyn MultipartStore>) -> Self {
        self.multipart = Some(multipart);
        self
    }

    /// The same service with a CDN cache, which cleanup tells what it deleted.
    pub fn with_cdn(mut self, cdn: Arc<dyn CdnCache>) -> Self {
        self.cdn = Some(cdn);
        self
    }

    /// The same service with a malware scanner, which `process_upload` needs when
    /// `MALWARE_SCANNER` is `clamd`.
    pub fn with_scanner(mut self, scanner: Arc<dyn Scanner>) -> Self {
        self.scanner = Some(scanner);
        self
    }

    /// The same service with an image processor, which `process_upload` needs.
    pub fn with_processor(mut self, processor: Arc<dyn ImageProcessor>) -> Self {
        self.processor = Some(processor);
        self
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Every key a processing run for `id` can write with this configuration: each thumbnail
    /// size in the configured format, and the served original as its own type or as WebP. With
    /// `media` given, also every key its record names (written under an older configuration).
    /// Cleanup deletes these, with no listing, and so does a run that finds its record gone.
    pub(crate) fn processing_keys(&self, id: &MediaId, media: Option<&Media>) -> Vec<ObjectKey> {
        let prefix = &self.config.derivatives_prefix;
        let ext = self.config.thumbnail_format.extension();
        let mut keys: Vec<ObjectKey> = self
            .config
            .thumbnail_sizes
            .iter()
            .map(|s| ObjectKey::derivative(prefix, id, &s.name, ext))
            .collect();
        let originals = match media {
            Some(m) => vec![m.content_type, ContentType::Webp],
            None => ContentType::ALL.to_vec(),
        };
        for t in originals {
            keys.push(ObjectKey::derivative(prefix, id, "original", t.extension()));
        }
        if let Some(m) = media {
            keys.extend(m.served_original.iter().cloned());
            keys.extend(m.derivatives.values().map(|d| d.key.clone()));
        }
        keys.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        keys.dedup();
        keys
    }

    /// Deletes these objects, all at once (DELETEs are free; their latency is what they cost).
    pub(crate) async fn delete_all(&self, keys: &[ObjectKey]) -> Result<(), StoreError> {
        futures_util::future::try_join_all(keys.iter().map(|k| self.store.delete(k))).await?;
        Ok(())
    }

    pub(crate) async fn owned(&self, owner: &OwnerId, id: &MediaId) -> Result<Media, MediaError> {
        match self.repo.get(id).await? {
            Some(m)
                if m.owner == *owner
                    && matches!(
                        m.status,
                        MediaStatus::Pending | MediaStatus::Ready | MediaStatus::Rejected
                    ) =>
            {
                Ok(m)
            }
            _ => Err(MediaError::NotFound),
        }
    }

    async fn url(&self, key: &ObjectKey) -> Result<String, StoreError> {
        match &self.config.cdn_base_url {
            Some(base) => Ok(format!("{base}/{key}")),
            None => {
                self.store
                    .presign_get(key, self.config.download_url_expiry)
                    .await
            }
        }
    }

    pub(crate) async fn view(&self, media: Media) -> Result<MediaView, StoreError> {
        let mut original_url = None;
        let mut thumbnails = BTreeMap::new();
        if media.status == MediaStatus::Ready {
            if let Some(served) = &media.served_original {
                // A document is private: its original is always a short-lived presigned GET,
                // never a CDN URL (only images, and every kind's thumbnails, go through a CDN).
                original_url = Some(if media.kind() == MediaKind::Image {
                    self.url(served).await?
                } else {
                    self.store
                        .presign_get(served, self.config.download_url_expiry)
                        .await?
                });
            }
            for (name, d) in &media.derivatives {
                thumbnails.insert(name.clone(), self.url(&d.key).await?);
            }
        }
        Ok(MediaView {
            fields: MediaFields::of(&media),
            original_url,
            thumbnails,
        })
    }
}
