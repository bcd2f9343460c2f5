//! Presign: validates a request for one file or a batch, creates the pending record and hands out
//! a presigned PUT or POST for it.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tracing::info;

use crate::config::MAX_SINGLE_PUT;
use crate::describe::Descriptive;
use crate::domain::{
    ContentType, Media, MediaId, MediaStatus, ObjectKey, OwnerId, format_time, sanitize_filename,
};
use crate::ports::{RepoError, Reserved, StoreError};
use crate::service::{FlushOnDrop, MediaService};
use crate::usage::{RateLimited, over_quota_message};

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
    /// Every other member: the optional descriptive fields (`alt`, `title`, `description`,
    /// `tags`, `entity`) are read from here; anything else is ignored.
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
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
    /// Within the kind's limit, but more than one request can carry.
    #[error(
        "size {size} is over 5 GiB, the most one request can upload; upload it in parts (POST /api/v1/upload/s3/multipart)"
    )]
    NeedsParts {
        /// Declared size.
        size: u64,
    },
    /// The owner made more presign requests this minute than allowed.
    #[error("more than {} presign requests this minute; try again in {} s", .0.limit, .0.retry_after)]
    RateLimited(RateLimited),
    /// The files do not fit the owner's quota.
    #[error("{0}")]
    QuotaExceeded(String),
    /// The new id belongs to another record (never expected: ids are random).
    #[error("media id {0} is already taken")]
    IdTaken(MediaId),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The repository failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl MediaService {
    /// Creates a pending record and a presigned PUT (or POST) for it.
    pub async fn presign_upload(
        &self,
        owner: &OwnerId,
        req: PresignRequest,
    ) -> Result<PresignResponse, PresignError> {
        let _flush = FlushOnDrop(&self.metrics);
        let checked = self.check_presign(req)?;
        self.presign_limited(owner, vec![checked])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| PresignError::Invalid("nothing was presigned".into()))
    }

    /// Presigns every file of a batch, or none: the count and the sum of the sizes are checked,
    /// and every file is validated, before any record is created.
    pub async fn presign_batch(
        &self,
        owner: &OwnerId,
        files: Vec<PresignRequest>,
    ) -> Result<PresignBatchResponse, PresignError> {
        let _flush = FlushOnDrop(&self.metrics);
        self.check_file_count(files.len(), "files must name at least one file")?;
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
        // A file alone is bounded by its kind's limit only, so one large document can be
        // presigned even when it is over the batch total.
        if checked.len() > 1 && total > self.config.max_total_size {
            return Err(PresignError::BatchTooLarge {
                total,
                limit: self.config.max_total_size,
            });
        }
        Ok(PresignBatchResponse {
            files: self.presign_limited(owner, checked).await?,
        })
    }

    /// The rate limit (one request, whatever it holds), then the records and their quota
    /// reservation. A request refused after it was counted is taken back from the rate window.
    pub(crate) async fn presign_limited(
        &self,
        owner: &OwnerId,
        checked: Vec<CheckedPresign>,
    ) -> Result<Vec<PresignResponse>, PresignError> {
        let window = self
            .count_presign(owner)
            .await?
            .map_err(PresignError::RateLimited)?;
        let result = self.presign_checked(owner, checked).await;
        if result.is_err() {
            self.give_back_presign(owner, window).await;
        }
        result
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

    pub(crate) fn check_presign(
        &self,
        req: PresignRequest,
    ) -> Result<CheckedPresign, PresignError> {
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
        let limit = self.config.max_size(content_type.kind());
        if size > limit {
            return Err(PresignError::TooLarge { size, limit });
        }
        if size > MAX_SINGLE_PUT {
            return Err(PresignError::NeedsParts { size });
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
        let describe = Descriptive::from_request(&req.rest)
            .map_err(|e| PresignError::Invalid(e.to_string()))?;
        Ok(CheckedPresign {
            filename,
            content_type,
            size,
            post,
            sha256,
            describe,
        })
    }

    /// A multipart upload's file, checked as a presign request is but with the size optional: a
    /// client that declares it is refused early when it is over the limit, and the parts decide
    /// it at complete. The record holds the declared size (0 when none) until then.
    pub(crate) fn check_multipart(
        &self,
        filename: Option<String>,
        content_type: Option<String>,
        size: Option<u64>,
        rest: serde_json::Map<String, serde_json::Value>,
    ) -> Result<CheckedPresign, PresignError> {
        let declared = size.map(|s| i64::try_from(s).unwrap_or(i64::MAX));
        let mut checked = self.check_presign(PresignRequest {
            filename,
            content_type,
            size: Some(declared.unwrap_or(1)),
            method: None,
            sha256: None,
            rest,
        })?;
        checked.size = size.unwrap_or(0);
        Ok(checked)
    }

    /// One request holds at least one file and at most `MAX_FILES_PER_REQUEST`; `none` says
    /// how to send one.
    pub(crate) fn check_file_count(&self, count: usize, none: &str) -> Result<(), PresignError> {
        let limit = self.config.max_files_per_request;
        if count == 0 {
            return Err(PresignError::Invalid(none.into()));
        }
        if count > limit {
            return Err(PresignError::TooManyFiles { count, limit });
        }
        Ok(())
    }

    /// Presigns each file and creates all their records, with their quota reservation, in one
    /// atomic write: all or none.
    async fn presign_checked(
        &self,
        owner: &OwnerId,
        checked: Vec<CheckedPresign>,
    ) -> Result<Vec<PresignResponse>, PresignError> {
        let started = Instant::now();
        let now = OffsetDateTime::now_utc();
        let mut records = Vec::with_capacity(checked.len());
        let mut answers = Vec::with_capacity(checked.len());
        for c in checked {
            let media = self.new_record(owner, &c, now);
            let (method, url, headers, fields) = self.presigned_request(&media.key, &c).await?;
            answers.push(PresignResponse {
                media_id: media.id.clone(),
                method,
                url,
                headers,
                fields,
                expires: self.config.presign_expiry.as_secs(),
                expires_at: format_time(now + self.config.presign_expiry),
                key: media.key.as_str().to_owned(),
            });
            records.push(media);
        }
        self.create_records(owner, &records, started).await?;
        Ok(answers)
    }

    /// The pending record of one checked file, created now.
    pub(crate) fn new_record(
        &self,
        owner: &OwnerId,
        c: &CheckedPresign,
        now: OffsetDateTime,
    ) -> Media {
        let id = MediaId::generate();
        let key = ObjectKey::original(&self.config.upload_prefix, now, &id, c.content_type);
        Media {
            id,
            owner: owner.clone(),
            status: MediaStatus::Pending,
            filename: c.filename.clone(),
            content_type: c.content_type,
            size: c.size,
            key,
            created_at: now,
            updated_at: now,
            expires_at: Some(now + self.config.pending_ttl),
            deleted_at: None,
            served_original: None,
            served_size: None,
            metadata: None,
            derivatives: BTreeMap::new(),
            rejection: None,
            describe: c.describe.clone(),
            version: 1,
            deleted_from: None,
            holds_quota: true,
            upload_id: None,
        }
    }

    /// Creates the records with their quota reservation, in one atomic write: all or none.
    pub(crate) async fn create_records(
        &self,
        owner: &OwnerId,
        records: &[Media],
        started: Instant,
    ) -> Result<(), PresignError> {
        let quota = self.quota();
        match self.repo.create(records, &quota).await? {
            Reserved::Applied => {}
            Reserved::OverQuota(usage) => {
                self.metrics.count("quota_exceeded_total", &[], 1);
                let bytes = records.iter().map(|m| m.size).sum();
                return Err(PresignError::QuotaExceeded(over_quota_message(
                    quota,
                    usage,
                    records.len() as u64,
                    bytes,
                )));
            }
            Reserved::Conflict => {
                // An id exists. Ids are random (UUIDv7), so this is our own write whose answer
                // was lost and whose retry met it: read them back, and answer if they are ours.
                for media in records {
                    let ours = self.repo.get(&media.id).await?.is_some_and(|stored| {
                        stored.owner == media.owner
                            && stored.key == media.key
                            && format_time(stored.created_at) == format_time(media.created_at)
                    });
                    if !ours {
                        return Err(PresignError::IdTaken(media.id.clone()));
                    }
                }
                info!(
                    files = records.len(),
                    outcome = "own_write",
                    "the records were created by this request's lost attempt"
                );
            }
        }
        for m in records {
            self.metrics.count(
                "upload_total",
                &[("status", "presigned"), ("type", m.content_type.mime())],
                1,
            );
            info!(
                media_id = %m.id, owner = owner.as_str(), status = "pending", content_type = %m.content_type,
                size = m.size, elapsed_ms = started.elapsed().as_millis() as u64, "presigned upload"
            );
        }
        Ok(())
    }

    /// The presigned PUT or POST of one file: method, URL, headers, form fields.
    async fn presigned_request(
        &self,
        key: &ObjectKey,
        c: &CheckedPresign,
    ) -> Result<
        (
            &'static str,
            String,
            HashMap<String, String>,
            BTreeMap<String, String>,
        ),
        PresignError,
    > {
        Ok(if c.post {
            let post = self
                .store
                .presign_post(
                    key,
                    c.content_type,
                    self.config.max_size(c.content_type.kind()),
                    self.config.presign_expiry,
                )
                .await?;
            ("POST", post.url, HashMap::new(), post.fields)
        } else {
            let put = self
                .store
                .presign_put(
                    key,
                    c.content_type,
                    c.size,
                    c.sha256.as_deref(),
                    self.config.presign_expiry,
                )
                .await?;
            (put.method, put.url, put.headers, BTreeMap::new())
        })
    }
}

/// A presign request that passed every check.
pub(crate) struct CheckedPresign {
    filename: String,
    content_type: ContentType,
    size: u64,
    post: bool,
    sha256: Option<String>,
    describe: Descriptive,
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
