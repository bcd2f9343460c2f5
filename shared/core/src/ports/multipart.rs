//! The S3 multipart upload port: what the resumable upload routes and cleanup ask of the store.

use std::time::Duration;

use async_trait::async_trait;

use super::StoreError;
use crate::domain::{ContentType, ObjectKey};

/// One part of a multipart upload, as the store lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedPart {
    /// Its number, 1..=10000.
    pub number: u32,
    /// Its ETag, with the quotes S3 gives it.
    pub etag: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A part named in a complete request: its number and the ETag its upload answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartTag {
    /// Its number.
    pub number: u32,
    /// Its ETag.
    pub etag: String,
}

/// How a complete request ended at the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// The object exists now.
    Completed,
    /// No such upload: it was completed or aborted already.
    NoSuchUpload,
    /// The store refused the parts (an unknown part or ETag, parts out of order, a part other
    /// than the last under 5 MiB): its message.
    Refused(String),
}

/// S3 multipart uploads under the upload prefix.
#[async_trait]
pub trait MultipartStore: Send + Sync {
    /// Starts a multipart upload of an object of this type at `key`: its upload id.
    async fn create_multipart(
        &self,
        key: &ObjectKey,
        content_type: ContentType,
    ) -> Result<String, StoreError>;
    /// A presigned `UploadPart` URL for part `number` of the upload.
    async fn presign_part(
        &self,
        key: &ObjectKey,
        upload_id: &str,
        number: u32,
        expires_in: Duration,
    ) -> Result<String, StoreError>;
    /// Every part uploaded so far, in part order, read to the last page; `None` when there is no
    /// such upload (completed or aborted).
    async fn list_parts(
        &self,
        key: &ObjectKey,
        upload_id: &str,
    ) -> Result<Option<Vec<UploadedPart>>, StoreError>;
    /// Assembles the object from these parts.
    async fn complete_multipart(
        &self,
        key: &ObjectKey,
        upload_id: &str,
        parts: &[PartTag],
    ) -> Result<Completion, StoreError>;
    /// Aborts the upload and frees its parts; an upload that no longer exists is no error.
    async fn abort_multipart(&self, key: &ObjectKey, upload_id: &str) -> Result<(), StoreError>;
}
