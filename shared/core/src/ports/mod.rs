//! The ports the use cases talk to: object storage, the media repository, an optional CDN cache,
//! and the image processor. The AWS adapters (crate `media-aws`) implement the first three, the
//! image pipeline (crate `media-pipeline`) the last.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::config::ThumbnailFormat;
use crate::describe::{Descriptive, EntityLink, Tag};
use crate::domain::{
    ContentType, Media, MediaId, MediaMetadata, MediaStatus, ObjectKey, OwnerId, Rejection,
    StoredDerivative,
};

mod multipart;
mod ranged;
mod scanner;

pub use multipart::{Completion, MultipartStore, PartTag, UploadedPart};
pub use ranged::{ObjectStat, RangeSource};
pub use scanner::{ScanError, ScanSession, Scanner, Verdict};

/// A failure of the storage backend (S3). The SDK error is kept as the source.
#[derive(Debug, thiserror::Error)]
#[error("object storage failed to {operation}")]
pub struct StoreError {
    /// What was attempted.
    pub operation: &'static str,
    /// The underlying error.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// A failure of the metadata store (DynamoDB), or a record it cannot read back.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The backend call failed.
    #[error("media repository failed to {operation}")]
    Backend {
        /// What was attempted.
        operation: &'static str,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A stored item does not parse.
    #[error("stored media record {id} is malformed: {reason}")]
    Malformed {
        /// The item's id attribute.
        id: String,
        /// What is wrong.
        reason: String,
    },
}

/// A presigned HTTP request the client performs itself.
#[derive(Debug, Clone)]
pub struct PresignedRequest {
    /// The HTTP method.
    pub method: &'static str,
    /// The full URL, signature included.
    pub url: String,
    /// Headers the client must send exactly (the signature covers them).
    pub headers: HashMap<String, String>,
}

/// A presigned POST: the form's action URL and the fields to post before the file.
#[derive(Debug, Clone)]
pub struct PresignedPost {
    /// Where the form posts.
    pub url: String,
    /// The form fields, signature included.
    pub fields: std::collections::BTreeMap<String, String>,
}

/// What a read of an object found.
#[derive(Debug)]
pub enum Fetched {
    /// The object, whole, and the SHA-256 of its bytes (hashed as they arrived, so the hashing
    /// overlaps the download instead of adding to the processing time).
    Bytes {
        /// The body.
        bytes: Vec<u8>,
        /// SHA-256 of `bytes`.
        sha256: [u8; 32],
    },
    /// No such object.
    Missing,
    /// The object is larger than the limit given; only its size is known.
    TooLarge(u64),
}

/// An object copied out of storage for parsers that read it at random: its bytes, held outside
/// the heap (a private scratch file mapped read-only, in Lambda's `/tmp`), and their SHA-256,
/// hashed as they arrived.
pub struct Spooled {
    /// The bytes.
    pub bytes: Arc<dyn AsRef<[u8]> + Send + Sync>,
    /// SHA-256 of `bytes`.
    pub sha256: [u8; 32],
}

impl std::fmt::Debug for Spooled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spooled")
            .field("len", &(*self.bytes).as_ref().len())
            .field("sha256", &hex::encode(self.sha256))
            .finish()
    }
}

/// Object storage: where originals and derivatives live.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// A presigned PUT that pins the content type, the exact length and, when given, the body's
    /// SHA-256 (base64, sent as `x-amz-checksum-sha256`).
    async fn presign_put(
        &self,
        key: &ObjectKey,
        content_type: ContentType,
        length: u64,
        sha256: Option<&str>,
        expires_in: Duration,
    ) -> Result<PresignedRequest, StoreError>;
    /// A presigned POST policy for a browser form: the exact key and content type, bodies of
    /// 1..=`max_length` bytes.
    async fn presign_post(
        &self,
        key: &ObjectKey,
        content_type: ContentType,
        max_length: u64,
        expires_in: Duration,
    ) -> Result<PresignedPost, StoreError>;
    /// A presigned GET.
    async fn presign_get(
        &self,
        key: &ObjectKey,
        expires_in: Duration,
    ) -> Result<String, StoreError>;
    /// A presigned GET whose answer carries this `Content-Disposition` and `Content-Type`
    /// (S3's `response-content-disposition` and `response-content-type`).
    async fn presign_download(
        &self,
        key: &ObjectKey,
        content_disposition: &str,
        content_type: &str,
        expires_in: Duration,
    ) -> Result<String, StoreError>;
    /// The object's size, or `None` if it does not exist.
    async fn head(&self, key: &ObjectKey) -> Result<Option<u64>, StoreError> {
        Ok(self.stat(key).await?.map(|s| s.size))
    }
    /// The object's size and ETag, or `None` if it does not exist.
    async fn stat(&self, key: &ObjectKey) -> Result<Option<ObjectStat>, StoreError>;
    /// Deletes an object; deleting a missing object succeeds. The bucket keeps versions: the
    /// object stops serving at once (every URL of it answers 404), and a restore can bring it back
    /// until the bucket's lifecycle removes the old version.
    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError>;
    /// Brings deleted objects back: removes the delete markers on top of each key so that its
    /// newest version serves again. Returns the keys that have no version left to bring back.
    async fn undelete(&self, keys: &[ObjectKey]) -> Result<Vec<ObjectKey>, StoreError>;
}

/// Reading an object's bytes, and copying them inside the bucket: what processing does. A port of
/// its own, wired only into the functions that process (every method of a wired port is linked
/// into the function; see media-aws's `wire.rs`).
#[async_trait]
pub trait ObjectReader: Send + Sync {
    /// Up to `len` bytes from `offset` of the object's version `etag` (fewer only at its end);
    /// `None` if the object is gone or holds other bytes now.
    async fn read_range(
        &self,
        key: &ObjectKey,
        etag: &str,
        offset: u64,
        len: usize,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    /// The SHA-256 of the object's version `etag` (of `size` bytes, as its `stat` said),
    /// streamed: never held whole in memory. `None` if the object is gone or holds other bytes
    /// now.
    async fn digest(
        &self,
        key: &ObjectKey,
        etag: &str,
        size: u64,
    ) -> Result<Option<[u8; 32]>, StoreError>;
    /// Copies the object's version `etag` (of `size` bytes) to `to` inside the bucket, stored
    /// with `content_type`, without it passing through this function. False if the source is
    /// gone or holds other bytes now (then nothing is written).
    async fn copy(
        &self,
        from: &ObjectKey,
        etag: &str,
        size: u64,
        to: &ObjectKey,
        content_type: &str,
    ) -> Result<bool, StoreError>;
    /// The object's version `etag` (of `size` bytes) copied to a scratch file, never held whole
    /// in memory, for parsers that need all of it at random (documents over the in-memory
    /// bound). `None` if the object is gone or holds other bytes now.
    async fn spool(
        &self,
        key: &ObjectKey,
        etag: &str,
        size: u64,
    ) -> Result<Option<Spooled>, StoreError>;
    /// The whole object if it is at most `max_bytes` long; with `if_match`, only that version
    /// of it (another is [`Fetched::Missing`]).
    async fn fetch(
        &self,
        key: &ObjectKey,
        if_match: Option<&str>,
        max_bytes: u64,
    ) -> Result<Fetched, StoreError>;
}

/// Writing objects: processing's derivatives, and the files of the server-side upload route.
#[async_trait]
pub trait ObjectWriter: Send + Sync {
    /// Writes an object.
    async fn put(
        &self,
        key: &ObjectKey,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<(), StoreError>;
}

/// The result of a conditional state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The change was written.
    Applied,
    /// The record was not in the required state (or is gone): nothing was written.
    Conflict,
}

/// Per-owner limits (0: no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Quota {
    /// Most media (pending and ready ones count).
    pub files: u64,
    /// Most bytes, by declared size.
    pub bytes: u64,
}

/// What an owner's media hold: the pending and ready ones, by declared size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Media counted.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// The result of a write that reserves room in an owner's quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    /// Written, and the room reserved.
    Applied,
    /// A record was not in the required state (or an id exists): nothing was written.
    Conflict,
    /// The reservation does not fit the quota: nothing was written. The usage as it was.
    OverQuota(Usage),
}

/// How many index partitions each cleanup work list is spread over. One partition of a DynamoDB
/// index takes about 1,000 writes per second, and every presign, processing run and delete writes
/// one of these keys: sixteen shards let the table take about 16,000 of each per second.
pub const CLEANUP_SHARDS: u32 = 16;

/// The two work lists of cleanup, each spread over [`CLEANUP_SHARDS`] index partitions ordered by
/// due time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanupQueue {
    /// Pending uploads, due at their expiry.
    Pending,
    /// Soft-deleted or expired media, due at the time they were deleted.
    Purge,
}

impl CleanupQueue {
    /// The list's name: the unsharded partition value of records written before sharding.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Purge => "purge",
        }
    }

    /// The partition `id` is queued in: `<name>#<shard>`, the shard a stable hash of the id.
    pub fn partition(self, id: &MediaId) -> String {
        // FNV-1a: stable across releases and platforms (std's hasher is not).
        let hash = id.as_str().bytes().fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        format!("{}#{}", self.as_str(), hash % CLEANUP_SHARDS)
    }

    /// Every partition cleanup reads: each shard, and the unsharded value last, for records
    /// queued before the list was sharded.
    pub fn partitions(self) -> Vec<String> {
        (0..CLEANUP_SHARDS)
            .map(|n| format!("{}#{n}", self.as_str()))
            .chain(std::iter::once(self.as_str().to_owned()))
            .collect()
    }
}

/// The media metadata store. Every state change is conditional on the current state, so a repeated
/// or late event cannot undo a newer state.
///
/// A write whose answer was lost may have been applied: the SDK's retry then meets its own write
/// and reports [`Transition::Conflict`]. The use cases read the record back on a conflict and
/// tell their own applied write from someone else's.
#[async_trait]
pub trait MediaRepository: Send + Sync {
    /// Stores new pending records (one presign: a file or a batch), all or none, and reserves
    /// their files and declared bytes in their owner's usage within `quota`, in the same atomic
    /// write. [`Reserved::Conflict`] if an id exists; [`Reserved::OverQuota`] if the reservation
    /// does not fit: then nothing is written.
    async fn create(&self, media: &[Media], quota: &Quota) -> Result<Reserved, RepoError>;
    /// What `owner`'s media hold (strongly consistent).
    async fn usage(&self, owner: &OwnerId) -> Result<Usage, RepoError>;
    /// Counts one request of `owner` in the window that starts at `window` if fewer than `limit`
    /// were counted in it; false (nothing counted) when the window is full.
    async fn count_request(
        &self,
        owner: &OwnerId,
        window: OffsetDateTime,
        limit: u64,
    ) -> Result<bool, RepoError>;
    /// Takes back one request counted in the window (a request refused after it was counted).
    async fn uncount_request(
        &self,
        owner: &OwnerId,
        window: OffsetDateTime,
    ) -> Result<(), RepoError>;
    /// Reads a record by id (strongly consistent).
    async fn get(&self, id: &MediaId) -> Result<Option<Media>, RepoError>;
    /// A page of `owner`'s records that match `query`, newest first, starting after `start`.
    /// At most `limit` items; fewer (even none) when the adapter's read budget for one call ran
    /// out first, with `next` set so that the caller can go on.
    async fn list(
        &self,
        owner: &OwnerId,
        query: &ListQuery,
        start: Option<&ListPosition>,
        limit: usize,
    ) -> Result<ListPage, RepoError>;
    /// `owner`'s `pending|ready|rejected` record at version `expected` -> the same record with
    /// these descriptive fields, at version `expected + 1`.
    async fn describe(
        &self,
        id: &MediaId,
        owner: &OwnerId,
        expected: u64,
        fields: &Descriptive,
        now: OffsetDateTime,
    ) -> Result<Transition, RepoError>;
    /// `pending` -> `ready`, with the served original's key and size, metadata and thumbnails.
    async fn mark_ready(
        &self,
        id: &MediaId,
        served_original: &ObjectKey,
        served_size: u64,
        metadata: &MediaMetadata,
        derivatives: &std::collections::BTreeMap<String, StoredDerivative>,
        now: OffsetDateTime,
    ) -> Result<Transition, RepoError>;
    /// `pending` -> `rejected`, giving back the record's reservation in the same atomic write.
    async fn mark_rejected(
        &self,
        media: &Media,
        rejection: &Rejection,
        now: OffsetDateTime,
    ) -> Result<Transition, RepoError>;
    /// `media` as read (its owner, status and version unchanged since) -> `deleted`, remembering
    /// the status it had for a restore, and giving back its reservation in the same atomic write.
    async fn soft_delete(
        &self,
        media: &Media,
        now: OffsetDateTime,
    ) -> Result<Transition, RepoError>;
    /// `media` as read (`deleted`, version unchanged since) -> the status it had before the delete
    /// (`to`), queued again for expiry when that is `pending`. A `pending` or `ready` media
    /// reserves its file and bytes again within `quota`, in the same atomic write.
    async fn restore(
        &self,
        media: &Media,
        to: MediaStatus,
        quota: &Quota,
        now: OffsetDateTime,
    ) -> Result<Reserved, RepoError>;
    /// `pending` -> `expired` (queued for purge), giving back the record's reservation in the same
    /// atomic write.
    async fn expire(&self, media: &Media, now: OffsetDateTime) -> Result<Transition, RepoError>;
    /// `media` as read (pending, a multipart upload) -> the same record with `size` bytes, its
    /// owner's usage changed by the difference within `quota`, in the same atomic write: a
    /// multipart upload's size is known when it is completed. [`Reserved::Conflict`] if the record
    /// is no longer pending at its size and upload id.
    async fn settle_size(
        &self,
        media: &Media,
        size: u64,
        quota: &Quota,
    ) -> Result<Reserved, RepoError>;
    /// Removes a `deleted` or `expired` record.
    async fn remove(&self, id: &MediaId) -> Result<Transition, RepoError>;
    /// Records queued in `partition` (one of [`CleanupQueue::partitions`]) due at or before `due`,
    /// oldest first, at most `limit`.
    async fn due(
        &self,
        partition: &str,
        due: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Media>, RepoError>;
}

/// Which of an owner's records a list returns (always newest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Only these statuses (never empty: the API lists `pending`, `ready` and `rejected`).
    pub statuses: Vec<MediaStatus>,
    /// Only these content types (`None`: any).
    pub content_types: Option<Vec<ContentType>>,
    /// Only records with this tag.
    pub tag: Option<Tag>,
    /// Only records linked to this entity.
    pub entity: Option<EntityLink>,
    /// Only records created at or after this instant (millisecond precision, as stored).
    pub created_from: Option<OffsetDateTime>,
    /// Only records created at or before this instant (millisecond precision, as stored).
    pub created_until: Option<OffsetDateTime>,
}

/// Where a list left off: the last record it returned or read, by its index key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPosition {
    /// The record's `createdAt`, as stored.
    pub created_at: String,
    /// The record's id.
    pub id: MediaId,
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct ListPage {
    /// The records, newest first.
    pub items: Vec<Media>,
    /// Where to go on from, when more records may follow.
    pub next: Option<ListPosition>,
}

/// A failure to publish an event (EventBridge). The SDK error is kept as the source.
#[derive(Debug, thiserror::Error)]
#[error("could not publish an event")]
pub struct PublishError {
    /// The underlying error.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Where state changes are announced to the app's backend.
#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Publishes one event.
    async fn publish(&self, event: &crate::notify::MediaEvent) -> Result<(), PublishError>;
}

/// A CDN cache in front of the derivatives: told to forget objects that were deleted.
#[async_trait]
pub trait CdnCache: Send + Sync {
    /// Invalidates these paths (each `/` + an object key). Callers batch: one call per run.
    async fn invalidate(&self, paths: &[String]) -> Result<(), StoreError>;
}

/// What counting one use of a grant came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantUse {
    /// Counted: the download may go ahead.
    Counted,
    /// No such grant (never made, revoked, or removed).
    Missing,
    /// Past its expiry.
    Expired,
    /// All its downloads are used.
    Exhausted,
}

/// Download grants. Each change is conditional, so concurrent uses never count past a grant's
/// maximum.
#[async_trait]
pub trait GrantStore: Send + Sync {
    /// Stores a new grant.
    async fn create(&self, grant: &crate::grants::Grant) -> Result<(), RepoError>;
    /// One grant by id.
    async fn get(
        &self,
        id: &crate::grants::GrantId,
    ) -> Result<Option<crate::grants::Grant>, RepoError>;
    /// Every grant of a media.
    async fn list(&self, media: &MediaId) -> Result<Vec<crate::grants::Grant>, RepoError>;
    /// Counts one download, atomically, if the grant exists, has not expired at `now` and has
    /// downloads left. `use_id` is unique to this use: a retry of the same write whose answer was
    /// lost finds it and is not counted twice.
    async fn count_use(
        &self,
        id: &crate::grants::GrantId,
        use_id: &str,
        now: OffsetDateTime,
    ) -> Result<GrantUse, RepoError>;
    /// Removes one grant of a media (a missing one is not an error).
    async fn revoke(&self, media: &MediaId, id: &crate::grants::GrantId) -> Result<(), RepoError>;
    /// Removes every grant of a media; how many there were.
    async fn revoke_all(&self, media: &MediaId) -> Result<usize, RepoError>;
}

/// One encoded derivative.
#[derive(Debug, Clone)]
pub struct Thumbnail {
    /// Its size name (`small`, ...).
    pub name: String,
    /// Pixel width.
    pub width: u32,
    /// Pixel height.
    pub height: u32,
    /// The encoded file, with no metadata of the original.
    pub bytes: Vec<u8>,
    /// Its format.
    pub format: ThumbnailFormat,
}

/// Where the time went, for logs and benchmarks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// Checks, header and EXIF.
    pub inspect: Duration,
    /// Pixel decode.
    pub decode: Duration,
    /// Resizing and orientation.
    pub resize: Duration,
    /// Encoding the derivatives.
    pub encode: Duration,
}

/// A successfully processed image.
#[derive(Debug, Clone)]
pub struct Processed {
    /// What is stored in the record.
    pub metadata: MediaMetadata,
    /// The derivatives, largest first.
    pub thumbnails: Vec<Thumbnail>,
    /// A WebP of the whole (oriented) original, when asked for and smaller than the upload.
    pub original_webp: Option<Vec<u8>>,
    /// Where the time went.
    pub timings: Timings,
}

/// Validates and decodes an uploaded file and makes its derivatives: pure, synchronous and
/// CPU-bound (the process use case runs it in `spawn_blocking`). A refused file is a
/// [`Rejection`], never a panic.
pub trait ImageProcessor: Send + Sync {
    /// Processes `bytes`, whose SHA-256 is `sha256`, declared as `declared`, stored under a key
    /// with this `extension` (which must agree with the content too).
    fn process(
        &self,
        bytes: &[u8],
        sha256: [u8; 32],
        declared: ContentType,
        extension: Option<&str>,
    ) -> Result<Processed, Rejection>;

    /// Checks a video or audio file read through `source` by ranges (never whole: a few
    /// megabytes of a file of gigabytes) against `declared` and `extension`, and reads what its
    /// container says. The metadata's `sha256` is left empty for the caller to fill.
    fn probe(
        &self,
        source: &mut dyn RangeSource,
        declared: ContentType,
        extension: Option<&str>,
    ) -> Result<MediaMetadata, Rejection>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanup_partitions_are_stable_and_spread_over_every_shard() {
        // Stable across releases: a record's partition is written once and queried later.
        let id = MediaId::parse("019aa7c1e2f37b8c9d0e1f2a3b4c5d6e").expect("an id");
        assert_eq!(CleanupQueue::Pending.partition(&id), "pending#4");
        assert_eq!(CleanupQueue::Purge.partition(&id), "purge#4");
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..2000 {
            let p = CleanupQueue::Purge.partition(&MediaId::generate());
            assert!(CleanupQueue::Purge.partitions().contains(&p), "{p}");
            seen.insert(p);
        }
        assert_eq!(seen.len(), CLEANUP_SHARDS as usize, "every shard is used");
        // Every shard, then the unsharded value of records queued before sharding.
        let all = CleanupQueue::Pending.partitions();
        assert_eq!(all.len(), CLEANUP_SHARDS as usize + 1);
        assert_eq!(all.last().map(String::as_str), Some("pending"));
    }
}
