//! Large objects on S3, never held whole: a `HEAD` for size and ETag, ranged GETs, a SHA-256
//! streamed over ranges fetched a few at a time, and server-side copies (one `CopyObject` up to
//! 5 GiB, `UploadPartCopy` above). Every read and copy insists on the ETag the `HEAD` saw
//! (`If-Match`, `x-amz-copy-source-if-match`), so all of them see the same bytes; an object
//! deleted or replaced meanwhile answers `None`/`false`, never a mix of two uploads.

use std::io::Write;
use std::sync::Arc;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, MetadataDirective};
use futures_util::{StreamExt, TryStreamExt};
use media_core::config::MAX_SINGLE_PUT;
use media_core::domain::ObjectKey;
use media_core::ports::{ObjectStat, Spooled, StoreError};
use sha2::{Digest, Sha256};

use crate::s3::S3ObjectStore;
use crate::store_err;

/// Bytes per ranged GET while hashing.
const DIGEST_CHUNK: u64 = 8 * 1024 * 1024;
/// Ranged GETs in flight while hashing: S3 serves each connection at some tens of MB/s, so a
/// few at once keep the hash fed; memory stays at `DIGEST_CHUNK` times this.
const DIGEST_IN_FLIGHT: usize = 4;
/// Part copies in flight above 5 GiB.
const COPY_IN_FLIGHT: usize = 4;
/// The size of a copied part (fewer than 10,000 parts up to 9.7 TiB; larger objects get larger
/// parts).
const COPY_PART: u64 = 1024 * 1024 * 1024;

/// True when S3 refused because the object is gone or holds other bytes now.
pub(crate) fn gone_or_changed<E: ProvideErrorMetadata, R: HttpStatus>(e: &SdkError<E, R>) -> bool {
    let status = e.raw_response().map(HttpStatus::status);
    let code = e.as_service_error().and_then(|s| s.code());
    matches!(status, Some(404 | 412))
        || matches!(
            code,
            Some("NoSuchKey" | "NotFound" | "PreconditionFailed" | "NoSuchUpload")
        )
}

/// The HTTP status of a raw response.
pub(crate) trait HttpStatus {
    fn status(&self) -> u16;
}

impl HttpStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}

impl S3ObjectStore {
    pub(crate) async fn stat_object(
        &self,
        key: &ObjectKey,
    ) -> Result<Option<ObjectStat>, StoreError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
        {
            Ok(out) => Ok(Some(ObjectStat {
                size: out
                    .content_length()
                    .and_then(|l| u64::try_from(l).ok())
                    .unwrap_or(0),
                etag: out.e_tag().unwrap_or_default().to_owned(),
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            // S3 answers a HEAD of a missing key with 403, not 404, to a role without
            // s3:ListBucket, and no function may list the bucket. The roles that call this hold
            // s3:GetObject on the key's prefix (tests/e2e/template.rs checks), so 403 means absent.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 403) => Ok(None),
            Err(e) => Err(store_err("read object metadata", e)),
        }
    }

    pub(crate) async fn read_object_range(
        &self,
        key: &ObjectKey,
        etag: &str,
        offset: u64,
        len: usize,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        if len == 0 {
            return Ok(Some(Vec::new()));
        }
        let last = offset.saturating_add(len as u64 - 1);
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .if_match(etag)
            .range(format!("bytes={offset}-{last}"))
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if gone_or_changed(&e) => return Ok(None),
            // A range that starts at or past the end: nothing to read there.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 416) => {
                return Ok(Some(Vec::new()));
            }
            Err(e) => return Err(store_err("read a range of an object", e)),
        };
        let mut bytes = Vec::with_capacity(len);
        let mut body = out.body;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| store_err("read a range of an object", e))?
        {
            bytes.extend_from_slice(&chunk);
        }
        // A server that ignores `Range` sends the whole object: keep what was asked for.
        bytes.truncate(len);
        Ok(Some(bytes))
    }

    pub(crate) async fn digest_object(
        &self,
        key: &ObjectKey,
        etag: &str,
        size: u64,
    ) -> Result<Option<[u8; 32]>, StoreError> {
        self.hash_chunks(key, etag, size, |_| Ok(())).await
    }

    /// The object copied to a scratch file as it is hashed, then mapped (see [`crate::scratch`]).
    pub(crate) async fn spool_object(
        &self,
        key: &ObjectKey,
        etag: &str,
        size: u64,
    ) -> Result<Option<Spooled>, StoreError> {
        let failed = |e: std::io::Error| store_err("copy an object to a scratch file", e);
        let mut file = crate::scratch::scratch().map_err(failed)?;
        // Blocking writes of one chunk at a time, into the page cache: a few milliseconds each.
        let hashed = self
            .hash_chunks(key, etag, size, |chunk| {
                file.write_all(chunk).map_err(failed)
            })
            .await?;
        let Some(sha256) = hashed else {
            return Ok(None);
        };
        let bytes = crate::scratch::map(file).map_err(failed)?;
        Ok(Some(Spooled {
            bytes: Arc::new(bytes),
            sha256,
        }))
    }

    /// The SHA-256 of the object's version `etag`, each chunk handed to `sink` in order as it is
    /// hashed. `None` if the object changed or went meanwhile.
    async fn hash_chunks(
        &self,
        key: &ObjectKey,
        etag: &str,
        size: u64,
        mut sink: impl FnMut(&[u8]) -> Result<(), StoreError>,
    ) -> Result<Option<[u8; 32]>, StoreError> {
        // The caller's HEAD gave the size; every range carries `If-Match`, so a changed object
        // answers `None` without a HEAD of its own.
        let ranges = (0..size.div_ceil(DIGEST_CHUNK)).map(|i| {
            let offset = i * DIGEST_CHUNK;
            let len = DIGEST_CHUNK.min(size - offset) as usize;
            self.read_object_range(key, etag, offset, len)
        });
        // In order, a few ahead: the hash is sequential, the downloads need not be.
        let mut chunks = futures_util::stream::iter(ranges).buffered(DIGEST_IN_FLIGHT);
        let mut hasher = Sha256::new();
        let mut hashed = 0u64;
        while let Some(chunk) = chunks.next().await {
            let Some(chunk) = chunk? else {
                return Ok(None);
            };
            hashed += chunk.len() as u64;
            hasher.update(&chunk);
            sink(&chunk)?;
        }
        if hashed != size {
            // Shorter than its HEAD said: it changed under us after all.
            return Ok(None);
        }
        Ok(Some(hasher.finalize().into()))
    }

    pub(crate) async fn copy_object(
        &self,
        from: &ObjectKey,
        etag: &str,
        size: u64,
        to: &ObjectKey,
        content_type: &str,
    ) -> Result<bool, StoreError> {
        if size > self.single_copy_limit {
            return self.copy_in_parts(from, etag, size, to, content_type).await;
        }
        match self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .key(to.as_str())
            .copy_source(self.copy_source(from))
            .copy_source_if_match(etag)
            .metadata_directive(MetadataDirective::Replace)
            .content_type(content_type)
            .cache_control(crate::s3::IMMUTABLE)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if gone_or_changed(&e) => Ok(false),
            Err(e) => Err(store_err("copy an object", e)),
        }
    }

    /// Keys are made by the service (`uploads/<id>.<ext>`): nothing in them needs escaping.
    fn copy_source(&self, key: &ObjectKey) -> String {
        format!("{}/{}", self.bucket, key.as_str())
    }

    async fn copy_in_parts(
        &self,
        from: &ObjectKey,
        etag: &str,
        size: u64,
        to: &ObjectKey,
        content_type: &str,
    ) -> Result<bool, StoreError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(to.as_str())
            .content_type(content_type)
            .cache_control(crate::s3::IMMUTABLE)
            .send()
            .await
            .map_err(|e| store_err("start a copy in parts", e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_owned();
        let parts = match self.copy_parts(from, etag, size, to, &upload_id).await {
            Ok(Some(parts)) => parts,
            other => {
                // Abort whatever went wrong; the error (or the changed source) is the answer.
                let _ = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(to.as_str())
                    .upload_id(&upload_id)
                    .send()
                    .await;
                return other.map(|_| false);
            }
        };
        match self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(to.as_str())
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => Err(store_err("complete a copy in parts", e)),
        }
    }

    async fn copy_parts(
        &self,
        from: &ObjectKey,
        etag: &str,
        size: u64,
        to: &ObjectKey,
        upload_id: &str,
    ) -> Result<Option<Vec<CompletedPart>>, StoreError> {
        // At most 10,000 parts of at most 5 GiB.
        let part = COPY_PART
            .min(self.single_copy_limit)
            .max(size.div_ceil(10_000))
            .clamp(1, MAX_SINGLE_PUT);
        let count = size.div_ceil(part);
        let copies = (0..count).map(|i| {
            let first = i * part;
            let last = (first + part).min(size) - 1;
            let number = i32::try_from(i + 1).unwrap_or(i32::MAX);
            async move {
                match self
                    .client
                    .upload_part_copy()
                    .bucket(&self.bucket)
                    .key(to.as_str())
                    .upload_id(upload_id)
                    .part_number(number)
                    .copy_source(self.copy_source(from))
                    .copy_source_if_match(etag)
                    .copy_source_range(format!("bytes={first}-{last}"))
                    .send()
                    .await
                {
                    Ok(out) => Ok(Some(
                        CompletedPart::builder()
                            .part_number(number)
                            .set_e_tag(
                                out.copy_part_result()
                                    .and_then(|r| r.e_tag())
                                    .map(str::to_owned),
                            )
                            .build(),
                    )),
                    Err(e) if gone_or_changed(&e) => Ok(None),
                    Err(e) => Err(store_err("copy a part of an object", e)),
                }
            }
        });
        let parts: Vec<Option<CompletedPart>> = futures_util::stream::iter(copies)
            .buffered(COPY_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(parts.into_iter().collect())
    }
}
