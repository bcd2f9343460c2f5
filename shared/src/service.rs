//! The media service: one method per use case, over the two ports.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tracing::{Instrument, error, info, warn};

use crate::aws::{AwsClients, CloudFrontCache, DynamoMediaRepository, S3ObjectStore};
use crate::config::Config;
use crate::domain::{
    ContentType, ImageMetadata, Media, MediaId, MediaStatus, ObjectKey, OwnerId, Rejection,
    RejectionCode, StoredDerivative, format_time, sanitize_filename,
};
use crate::metrics::{MeteredObjectStore, Metrics, Unit};
use crate::pipeline::{PipelineOptions, process_with_checksum};
use crate::ports::{
    CdnCache, CleanupQueue, Fetched, MediaRepository, ObjectStore, RepoError, StoreError,
    Transition,
};

/// One file of `POST /api/v1/upload/presign`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresignRequest {
    /// The client's filename (display text only).
    pub filename: Option<String>,
    /// The declared MIME type.
    pub content_type: Option<String>,
    /// The exact size in bytes.
    pub size: Option<i64>,
    /// `PUT` (default: a presigned PUT) or `POST` (a presigned POST policy for a form).
    pub method: Option<String>,
    /// The body's SHA-256, base64 (as S3's `x-amz-checksum-sha256`) or hex; PUT only. When given,
    /// the signature pins it and S3 refuses any other body.
    pub sha256: Option<String>,
}

/// The body of `POST /api/v1/upload/presign`: one file, or `{"files": [...]}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PresignBody {
    /// Several files, presigned together or not at all.
    Batch {
        /// The files.
        files: Vec<PresignRequest>,
    },
    /// One file.
    Single(PresignRequest),
}

/// The answer to a batch presign: one entry per requested file, in order.
#[derive(Debug, Clone, Serialize)]
pub struct PresignBatchResponse {
    /// The presigned uploads.
    pub files: Vec<PresignResponse>,
}

/// The answer to a presign request: where and how to upload.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PresignResponse {
    /// The new media id.
    pub media_id: MediaId,
    /// `PUT` or `POST`.
    pub method: &'static str,
    /// The presigned URL (PUT), or the form's action (POST).
    pub url: String,
    /// Headers to send exactly as given (PUT; empty for POST).
    pub headers: HashMap<String, String>,
    /// Form fields to post before the file, in any order (POST; empty for PUT).
    pub fields: BTreeMap<String, String>,
    /// Seconds the URL stays valid.
    pub expires: u64,
    /// When the URL stops working (RFC 3339).
    pub expires_at: String,
    /// The object key the upload lands at.
    pub key: String,
}

/// Refusals of a presign request.
#[derive(Debug, thiserror::Error)]
pub enum PresignError {
    /// The request is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The content type is not accepted.
    #[error("content type {0:?} is not accepted")]
    UnsupportedType(String),
    /// A batch names more files than allowed.
    #[error("{count} files in one request; the limit is {limit}")]
    TooManyFiles {
        /// Files requested.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A batch's sizes add up to more than allowed.
    #[error("the files add up to {total} bytes; the limit per request is {limit}")]
    BatchTooLarge {
        /// Sum of the declared sizes.
        total: u64,
        /// The limit.
        limit: u64,
    },
    /// The declared size is over the limit.
    #[error("size {size} is over the limit of {limit} bytes")]
    TooLarge {
        /// Declared size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The repository failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Failures of confirm, get and delete.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// No such media for this caller (another user's media is reported the same way).
    #[error("media not found")]
    NotFound,
    /// Confirm was called before the object arrived.
    #[error("the upload has not arrived yet")]
    NotUploaded,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The repository failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Faults of processing that are worth a retry (a rejected upload is an outcome, not an error).
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The repository failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// The blocking image task could not be joined.
    #[error("the image task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// Failures that stop a cleanup run as a whole.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    /// The work lists could not be read.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// What processing one uploaded object came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum ProcessOutcome {
    /// Thumbnails written; the record is ready.
    Ready {
        /// The media.
        media_id: MediaId,
    },
    /// The file was refused; its object is deleted.
    Rejected {
        /// The media.
        media_id: MediaId,
        /// Why.
        code: RejectionCode,
    },
    /// The record was not pending (a repeated or late event): nothing changed.
    AlreadyProcessed {
        /// The media.
        media_id: MediaId,
    },
    /// No record owns this key: the object was deleted.
    Orphan,
    /// The object was gone before it could be read (deleted meanwhile): nothing changed.
    Missing {
        /// The media.
        media_id: MediaId,
    },
    /// The key is not an original upload.
    Ignored,
}

/// A media record as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaView {
    /// The media id.
    pub id: MediaId,
    /// `pending`, `ready` or `rejected`.
    pub status: MediaStatus,
    /// The filename given at presign.
    pub filename: String,
    /// The declared type.
    pub content_type: ContentType,
    /// URL of the original (ready only).
    pub original_url: Option<String>,
    /// URLs of the thumbnails by name (ready only).
    pub thumbnails: BTreeMap<String, String>,
    /// What processing found (ready only).
    pub metadata: Option<ImageMetadata>,
    /// Why it was rejected (rejected only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection: Option<Rejection>,
    /// When it was presigned.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
}

/// What one cleanup run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CleanupSummary {
    /// Soft-deleted media removed for good (objects and record).
    pub purged: u64,
    /// Pending uploads that expired and were removed.
    pub expired: u64,
    /// Objects deleted.
    pub objects_deleted: u64,
    /// Bytes those objects held.
    pub bytes_reclaimed: u64,
    /// CDN paths invalidated (derivatives of purged media), when a CDN distribution is configured.
    pub invalidated_paths: u64,
    /// Media that could not be handled this run (retried next run).
    pub failures: u64,
    /// Wall time of the run.
    pub duration_ms: u64,
}

/// The service behind every function.
#[derive(Clone)]
pub struct MediaService {
    config: Arc<Config>,
    store: Arc<dyn ObjectStore>,
    repo: Arc<dyn MediaRepository>,
    cdn: Option<Arc<dyn CdnCache>>,
    metrics: Metrics,
    pipeline: Arc<PipelineOptions>,
}

/// Writes the metrics of one use case when it ends, whichever way it ends.
struct FlushOnDrop<'a>(&'a Metrics);

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
    ) -> Self {
        let metrics = Metrics::stdout(config.metrics_namespace.as_deref());
        Self::with_parts(config, store, repo, None, metrics)
    }

    /// A service over the given ports, an optional CDN cache, and these metrics.
    pub fn with_parts(
        config: Config,
        store: Arc<dyn ObjectStore>,
        repo: Arc<dyn MediaRepository>,
        cdn: Option<Arc<dyn CdnCache>>,
        metrics: Metrics,
    ) -> Self {
        let pipeline = Arc::new(PipelineOptions::from_config(&config));
        Self {
            config: Arc::new(config),
            store: Arc::new(MeteredObjectStore::new(store, metrics.clone())),
            repo,
            cdn,
            metrics,
            pipeline,
        }
    }

    /// The service over S3 and DynamoDB, as the functions run it.
    pub async fn from_config(config: &Config) -> Self {
        let clients = AwsClients::from_config(config).await;
        Self::with_clients(config, &clients)
    }

    /// The service over already-built clients.
    pub fn with_clients(config: &Config, clients: &AwsClients) -> Self {
        let cdn = config.cdn_distribution_id.as_ref().map(|id| {
            Arc::new(CloudFrontCache::new(clients.cloudfront.clone(), id)) as Arc<dyn CdnCache>
        });
        Self::with_parts(
            config.clone(),
            Arc::new(S3ObjectStore::new(clients, &config.bucket)),
            Arc::new(DynamoMediaRepository::new(
                clients.dynamodb.clone(),
                &config.table,
            )),
            cdn,
            Metrics::stdout(config.metrics_namespace.as_deref()),
        )
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Creates a pending record and a presigned PUT (or POST) for it.
    pub async fn presign_upload(
        &self,
        owner: &OwnerId,
        req: PresignRequest,
    ) -> Result<PresignResponse, PresignError> {
        let _flush = FlushOnDrop(&self.metrics);
        let checked = self.check_presign(req)?;
        self.presign_checked(owner, checked).await
    }

    /// Presigns every file of a batch, or none: the count and the sum of the sizes are checked,
    /// and every file is validated, before any record is created.
    pub async fn presign_batch(
        &self,
        owner: &OwnerId,
        files: Vec<PresignRequest>,
    ) -> Result<PresignBatchResponse, PresignError> {
        let _flush = FlushOnDrop(&self.metrics);
        let limit = self.config.max_files_per_request;
        if files.is_empty() {
            return Err(PresignError::Invalid(
                "files must name at least one file".into(),
            ));
        }
        if files.len() > limit {
            return Err(PresignError::TooManyFiles {
                count: files.len(),
                limit,
            });
        }
        let checked = files
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                self.check_presign(f).map_err(|e| match e {
                    PresignError::Invalid(m) => PresignError::Invalid(format!("files[{i}]: {m}")),
                    other => other,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let total: u64 = checked.iter().map(|c| c.size).sum();
        if total > self.config.max_total_size {
            return Err(PresignError::BatchTooLarge {
                total,
                limit: self.config.max_total_size,
            });
        }
        let mut out = Vec::with_capacity(checked.len());
        for c in checked {
            // A failure here leaves the earlier records pending: they expire like any upload
            // that never arrives.
            out.push(self.presign_checked(owner, c).await?);
        }
        Ok(PresignBatchResponse { files: out })
    }

    /// `presign_upload` or `presign_batch`, by the body's shape.
    pub async fn presign(
        &self,
        owner: &OwnerId,
        body: PresignBody,
    ) -> Result<serde_json::Value, PresignError> {
        let value = match body {
            PresignBody::Single(req) => {
                serde_json::to_value(self.presign_upload(owner, req).await?)
            }
            PresignBody::Batch { files } => {
                serde_json::to_value(self.presign_batch(owner, files).await?)
            }
        };
        value.map_err(|e| PresignError::Invalid(format!("response: {e}")))
    }

    fn check_presign(&self, req: PresignRequest) -> Result<CheckedPresign, PresignError> {
        let filename = sanitize_filename(req.filename.as_deref().unwrap_or_default())
            .map_err(|e| PresignError::Invalid(format!("filename: {e}")))?;
        let raw_type = req
            .content_type
            .ok_or_else(|| PresignError::Invalid("contentType is required".into()))?;
        let content_type = ContentType::parse(&raw_type)
            .ok()
            .filter(|t| self.config.allowed_types.contains(t))
            .ok_or(PresignError::UnsupportedType(raw_type))?;
        let size = req
            .size
            .ok_or_else(|| PresignError::Invalid("size is required".into()))?;
        let size = u64::try_from(size).ok().filter(|s| *s > 0).ok_or_else(|| {
            PresignError::Invalid("size must be a positive number of bytes".into())
        })?;
        if size > self.config.max_file_size {
            return Err(PresignError::TooLarge {
                size,
                limit: self.config.max_file_size,
            });
        }
        let post = match req
            .method
            .as_deref()
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            None | Some("PUT") => false,
            Some("POST") => true,
            Some(_) => return Err(PresignError::Invalid("method must be PUT or POST".into())),
        };
        let sha256 = match req.sha256.as_deref() {
            None => None,
            Some(_) if post => {
                return Err(PresignError::Invalid(
                    "sha256 is for PUT uploads; a POST policy cannot pin it".into(),
                ));
            }
            Some(raw) => Some(sha256_base64(raw).ok_or_else(|| {
                PresignError::Invalid("sha256 must be 32 bytes, base64 or hex".into())
            })?),
        };
        Ok(CheckedPresign {
            filename,
            content_type,
            size,
            post,
            sha256,
        })
    }

    async fn presign_checked(
        &self,
        owner: &OwnerId,
        c: CheckedPresign,
    ) -> Result<PresignResponse, PresignError> {
        let started = Instant::now();
        let now = OffsetDateTime::now_utc();
        let id = MediaId::generate();
        let key = ObjectKey::original(&self.config.upload_prefix, now, &id, c.content_type);
        let (method, url, headers, fields) = if c.post {
            let post = self
                .store
                .presign_post(
                    &key,
                    c.content_type,
                    self.config.max_file_size,
                    self.config.presign_expiry,
                )
                .await?;
            ("POST", post.url, HashMap::new(), post.fields)
        } else {
            let put = self
                .store
                .presign_put(
                    &key,
                    c.content_type,
                    c.size,
                    c.sha256.as_deref(),
                    self.config.presign_expiry,
                )
                .await?;
            (put.method, put.url, put.headers, BTreeMap::new())
        };
        let media = Media {
            id: id.clone(),
            owner: owner.clone(),
            status: MediaStatus::Pending,
            filename: c.filename,
            content_type: c.content_type,
            size: c.size,
            key: key.clone(),
            created_at: now,
            updated_at: now,
            expires_at: Some(now + self.config.pending_ttl),
            deleted_at: None,
            served_original: None,
            metadata: None,
            derivatives: BTreeMap::new(),
            rejection: None,
        };
        self.repo.create(&media).await?;
        self.metrics.count(
            "upload_total",
            &[("status", "presigned"), ("type", c.content_type.mime())],
            1,
        );
        info!(
            media_id = %id, owner = owner.as_str(), status = "pending", content_type = %c.content_type,
            size = c.size, method, elapsed_ms = started.elapsed().as_millis() as u64, "presigned upload"
        );
        Ok(PresignResponse {
            media_id: id,
            method,
            url,
            headers,
            fields,
            expires: self.config.presign_expiry.as_secs(),
            expires_at: format_time(now + self.config.presign_expiry),
            key: key.as_str().to_owned(),
        })
    }

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
        self.view(media).await
    }

    /// The caller's media with its URLs.
    pub async fn get_media(&self, owner: &OwnerId, id: &MediaId) -> Result<MediaView, MediaError> {
        let _flush = FlushOnDrop(&self.metrics);
        let media = self.owned(owner, id).await?;
        self.view(media).await
    }

    /// Soft-deletes the caller's media: gone from the API at once, removed by cleanup later.
    pub async fn delete_media(&self, owner: &OwnerId, id: &MediaId) -> Result<(), MediaError> {
        match self
            .repo
            .soft_delete(id, owner, OffsetDateTime::now_utc())
            .await?
        {
            Transition::Applied => {
                info!(media_id = %id, owner = owner.as_str(), status = "deleted", "soft-deleted media");
                Ok(())
            }
            Transition::Conflict => Err(MediaError::NotFound),
        }
    }

    async fn owned(&self, owner: &OwnerId, id: &MediaId) -> Result<Media, MediaError> {
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

    async fn view(&self, media: Media) -> Result<MediaView, MediaError> {
        let mut original_url = None;
        let mut thumbnails = BTreeMap::new();
        if media.status == MediaStatus::Ready {
            if let Some(served) = &media.served_original {
                original_url = Some(self.url(served).await?);
            }
            for (name, d) in &media.derivatives {
                thumbnails.insert(name.clone(), self.url(&d.key).await?);
            }
        }
        Ok(MediaView {
            id: media.id,
            status: media.status,
            filename: media.filename,
            content_type: media.content_type,
            original_url,
            thumbnails,
            metadata: media.metadata,
            rejection: media.rejection,
            created_at: format_time(media.created_at),
            updated_at: format_time(media.updated_at),
        })
    }

    /// Processes one uploaded object: validates and decodes it, writes the thumbnails, and moves the
    /// record `pending` -> `ready` or `rejected`. Returns `Err` only for faults worth a retry.
    pub async fn process_upload(&self, key: &ObjectKey) -> Result<ProcessOutcome, ProcessError> {
        let _flush = FlushOnDrop(&self.metrics);
        let started = Instant::now();
        let Some(id) = key.upload_media_id(&self.config.upload_prefix) else {
            info!(key = %key, outcome = "ignored", "not an original upload");
            return Ok(ProcessOutcome::Ignored);
        };
        let Some(media) = self.repo.get(&id).await?.filter(|m| m.key == *key) else {
            // Keys are only made for records, and a record exists before its URL is handed out:
            // an upload no record owns (its record expired or was purged) is garbage. Delete it.
            self.store.delete(key).await?;
            warn!(key = %key, media_id = %id, outcome = "orphan", "no record owns this upload; deleted it");
            return Ok(ProcessOutcome::Orphan);
        };
        if media.status != MediaStatus::Pending {
            if matches!(media.status, MediaStatus::Rejected | MediaStatus::Ready) {
                // Never served: a rejected file, a retry after a failed delete, or new bytes PUT
                // again to a still-valid URL after validation. The served original is a copy.
                self.store.delete(key).await?;
            }
            info!(media_id = %id, key = %key, status = media.status.as_str(), outcome = "duplicate", "already processed");
            return Ok(ProcessOutcome::AlreadyProcessed { media_id: id });
        }

        let (bytes, sha256) = match self.store.fetch(key, self.config.max_file_size).await? {
            Fetched::Bytes { bytes, sha256 } => (bytes, sha256),
            Fetched::Missing => {
                warn!(media_id = %id, key = %key, outcome = "missing", "object vanished before processing");
                return Ok(ProcessOutcome::Missing { media_id: id });
            }
            Fetched::TooLarge(size) => {
                let r = Rejection::new(
                    RejectionCode::TooLarge,
                    format!(
                        "the file is {size} bytes; the limit is {}",
                        self.config.max_file_size
                    ),
                );
                return self.reject(&media, r, started).await;
            }
        };
        if bytes.len() as u64 != media.size {
            let r = Rejection::new(
                RejectionCode::SizeMismatch,
                format!(
                    "the file is {} bytes but {} were declared",
                    bytes.len(),
                    media.size
                ),
            );
            return self.reject(&media, r, started).await;
        }

        let options = Arc::clone(&self.pipeline);
        let declared = media.content_type;
        let extension = key.as_str().rsplit_once('.').map(|(_, e)| e.to_owned());
        let span = tracing::Span::current();
        let (bytes, result) = tokio::task::spawn_blocking(move || {
            let result = span.in_scope(|| {
                process_with_checksum(&bytes, sha256, declared, extension.as_deref(), &options)
            });
            (bytes, result)
        })
        .await
        .map_err(ProcessError::Task)?;
        let processed = match result {
            Ok(p) => p,
            Err(rejection) => return self.reject(&media, rejection, started).await,
        };

        let timings = processed.timings;
        let mut derivatives = BTreeMap::new();
        let mut writes = Vec::new();
        for thumb in processed.thumbnails {
            let key = ObjectKey::derivative(
                &self.config.derivatives_prefix,
                &id,
                &thumb.name,
                thumb.format.extension(),
            );
            derivatives.insert(
                thumb.name,
                StoredDerivative {
                    key: key.clone(),
                    width: thumb.width,
                    height: thumb.height,
                    size: thumb.bytes.len() as u64,
                    content_type: thumb.format.mime().into(),
                },
            );
            writes.push((key, thumb.bytes, thumb.format.mime()));
        }
        // The validated bytes (or their smaller WebP conversion), outside the upload prefix, are
        // what the original's URL serves.
        let (served_bytes, served_type) = match processed.original_webp {
            Some(webp) => (webp, ContentType::Webp),
            None => (bytes, media.content_type),
        };
        let served = ObjectKey::derivative(
            &self.config.derivatives_prefix,
            &id,
            "original",
            served_type.extension(),
        );
        writes.push((served.clone(), served_bytes, served_type.mime()));
        // All at once: the function is billed for the wall time, and S3 latency is most of it.
        // A failure fails the whole event, whose retry rewrites the same keys.
        futures_util::future::try_join_all(
            writes
                .into_iter()
                .map(|(key, bytes, mime)| async move { self.store.put(&key, bytes, mime).await }),
        )
        .await?;

        let now = OffsetDateTime::now_utc();
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match self
            .repo
            .mark_ready(&id, &served, &processed.metadata, &derivatives, now)
            .await?
        {
            Transition::Applied => {
                // The upload is now redundant; a failure here is retried and lands in the
                // duplicate path above, which deletes it.
                self.store.delete(key).await?;
                self.record_outcome("ready", &media, started);
                info!(
                    media_id = %id, owner = media.owner.as_str(), key = %key, status = "ready",
                    width = processed.metadata.width, height = processed.metadata.height, elapsed_ms,
                    decode_ms = timings.decode.as_millis() as u64, resize_ms = timings.resize.as_millis() as u64,
                    encode_ms = timings.encode.as_millis() as u64,
                    "processed upload"
                );
                Ok(ProcessOutcome::Ready { media_id: id })
            }
            Transition::Conflict => {
                // Deleted or expired meanwhile: cleanup purges a record's folders with the record.
                // If the record is already gone, nothing would ever find what was just written.
                if self.repo.get(&id).await?.is_none() {
                    for d in derivatives.values() {
                        self.store.delete(&d.key).await?;
                    }
                    self.store.delete(&served).await?;
                }
                info!(media_id = %id, key = %key, outcome = "superseded", "record changed during processing");
                Ok(ProcessOutcome::AlreadyProcessed { media_id: id })
            }
        }
    }

    async fn reject(
        &self,
        media: &Media,
        rejection: Rejection,
        started: Instant,
    ) -> Result<ProcessOutcome, ProcessError> {
        let code = rejection.code;
        let transition = self
            .repo
            .mark_rejected(&media.id, &rejection, OffsetDateTime::now_utc())
            .await?;
        // Whatever the record says now, a refused file must not stay servable.
        self.store.delete(&media.key).await?;
        self.record_outcome("rejected", media, started);
        self.metrics
            .count("upload_rejected_total", &[("reason", code.as_str())], 1);
        info!(
            media_id = %media.id, owner = media.owner.as_str(), key = %media.key, status = "rejected",
            reason = code.as_str(), message = %rejection.message, elapsed_ms = started.elapsed().as_millis() as u64,
            "rejected upload"
        );
        Ok(match transition {
            Transition::Applied => ProcessOutcome::Rejected {
                media_id: media.id.clone(),
                code,
            },
            Transition::Conflict => ProcessOutcome::AlreadyProcessed {
                media_id: media.id.clone(),
            },
        })
    }

    fn record_outcome(&self, status: &str, media: &Media, started: Instant) {
        let kind = media.content_type.mime();
        self.metrics
            .count("upload_total", &[("status", status), ("type", kind)], 1);
        self.metrics.record(
            "upload_duration_seconds",
            Unit::Seconds,
            &[("type", kind)],
            started.elapsed().as_secs_f64(),
        );
        self.metrics.record(
            "upload_size_bytes",
            Unit::Bytes,
            &[("type", kind)],
            media.size as f64,
        );
    }

    /// One cleanup run: expires pending uploads past their expiry and purges media soft-deleted
    /// longer than the grace period (objects first, then the record). Failures of single media
    /// are logged and counted, and retried by the next run.
    pub async fn run_cleanup(&self) -> Result<CleanupSummary, CleanupError> {
        let _flush = FlushOnDrop(&self.metrics);
        let started = Instant::now();
        let mut stale_paths = Vec::new();
        let now = OffsetDateTime::now_utc();
        let limit = self.config.cleanup_batch_limit;
        let mut summary = CleanupSummary::default();

        for media in self.repo.due(CleanupQueue::Pending, now, limit).await? {
            let span = tracing::info_span!("expire", media_id = %media.id);
            let result = async {
                if self.repo.expire(&media.id, now).await? == Transition::Applied {
                    self.purge(&media, &mut summary, &mut stale_paths).await?;
                    summary.expired += 1;
                }
                Ok::<_, PurgeError>(())
            }
            .instrument(span)
            .await;
            if let Err(e) = result {
                summary.failures += 1;
                error!(media_id = %media.id, error = %e, cause = ?e, "could not expire a pending upload");
            }
        }

        let cutoff = now - self.config.cleanup_grace_period;
        for media in self.repo.due(CleanupQueue::Purge, cutoff, limit).await? {
            let was_deleted = media.status == MediaStatus::Deleted;
            match self.purge(&media, &mut summary, &mut stale_paths).await {
                Ok(true) if was_deleted => summary.purged += 1,
                Ok(true) => summary.expired += 1,
                Ok(false) => {}
                Err(e) => {
                    summary.failures += 1;
                    error!(media_id = %media.id, error = %e, cause = ?e, "could not purge media");
                }
            }
        }

        if let Some(cdn) = self.cdn.as_ref().filter(|_| !stale_paths.is_empty()) {
            // One batched invalidation per run. The objects are gone already: if it fails, the
            // CDN serves its cached copies until they expire; the failure is counted and alarmed.
            match cdn.invalidate(&stale_paths).await {
                Ok(()) => summary.invalidated_paths = stale_paths.len() as u64,
                Err(e) => {
                    summary.failures += 1;
                    error!(paths = stale_paths.len(), error = %e, cause = ?e, "could not invalidate CDN paths");
                }
            }
        }

        summary.duration_ms = started.elapsed().as_millis() as u64;
        for (name, value) in [
            ("cleanup_purged_total", summary.purged),
            ("cleanup_expired_total", summary.expired),
            ("cleanup_objects_deleted_total", summary.objects_deleted),
            ("cleanup_failures_total", summary.failures),
            ("cleanup_invalidated_paths_total", summary.invalidated_paths),
        ] {
            self.metrics.count(name, &[], value);
        }
        self.metrics.record(
            "cleanup_bytes_reclaimed_total",
            Unit::Bytes,
            &[],
            summary.bytes_reclaimed as f64,
        );
        let line = serde_json::to_string(&summary).unwrap_or_default();
        if summary.failures > 0 {
            warn!(summary = %line, "cleanup finished with failures");
        } else {
            info!(summary = %line, "cleanup finished");
        }
        Ok(summary)
    }

    /// Deletes every object of `media`, then its record. True when the record was removed.
    async fn purge(
        &self,
        media: &Media,
        summary: &mut CleanupSummary,
        stale_paths: &mut Vec<String>,
    ) -> Result<bool, PurgeError> {
        let derivatives = format!("{}{}/", self.config.derivatives_prefix, media.id);
        let own_folder = format!("/{}/", media.id);
        for prefix in [media.key.folder(), derivatives.as_str()] {
            if !prefix.ends_with(&own_folder) {
                // Never list beyond this media's own folder, whatever a malformed record says.
                return Err(PurgeError::Foreign(prefix.to_owned()));
            }
            // Each media folder holds a handful of objects; the bound only guards against surprises.
            for obj in self.store.list(prefix, 1000).await? {
                self.store.delete(&obj.key).await?;
                if self.cdn.is_some() && prefix == derivatives {
                    stale_paths.push(format!("/{}", obj.key));
                }
                summary.objects_deleted += 1;
                summary.bytes_reclaimed += obj.size;
            }
        }
        Ok(self.repo.remove(&media.id).await? == Transition::Applied)
    }
}

/// A presign request that passed every check.
struct CheckedPresign {
    filename: String,
    content_type: ContentType,
    size: u64,
    post: bool,
    sha256: Option<String>,
}

/// A SHA-256 given as base64 or hex, as the base64 S3 wants; `None` unless it is 32 bytes.
fn sha256_base64(raw: &str) -> Option<String> {
    use base64::Engine;
    let raw = raw.trim();
    let bytes = if raw.len() == 64 {
        hex::decode(raw).ok()?
    } else {
        base64::engine::general_purpose::STANDARD.decode(raw).ok()?
    };
    (bytes.len() == 32).then(|| base64::engine::general_purpose::STANDARD.encode(bytes))
}

#[derive(Debug, thiserror::Error)]
enum PurgeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("refusing to purge {0:?}: not a folder of this media")]
    Foreign(String),
}
