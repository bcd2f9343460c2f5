//! The multipart upload port on Amazon S3, for [`S3ObjectStore`].

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use media_core::domain::{ContentType, ObjectKey};
use media_core::ports::{Completion, MultipartStore, PartTag, StoreError, UploadedPart};

use crate::{S3ObjectStore, store_err};

/// S3 lists at most 1000 parts a page and an upload has at most 10,000: eleven pages at most.
const MAX_LIST_PAGES: usize = 11;

/// The error codes with which S3 refuses a complete request's parts.
const REFUSED_PARTS: [&str; 4] = [
    "InvalidPart",
    "InvalidPartOrder",
    "EntityTooSmall",
    "MalformedXML",
];

#[async_trait]
impl MultipartStore for S3ObjectStore {
    async fn create_multipart(
        &self,
        key: &ObjectKey,
        content_type: ContentType,
    ) -> Result<String, StoreError> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key.as_str())
            .content_type(content_type.mime())
            .send()
            .await
            .map_err(|e| store_err("start a multipart upload", e))?;
        out.upload_id()
            .map(str::to_owned)
            .ok_or_else(|| store_err("start a multipart upload", NoUploadId))
    }

    async fn presign_part(
        &self,
        key: &ObjectKey,
        upload_id: &str,
        number: u32,
        expires_in: Duration,
    ) -> Result<String, StoreError> {
        let presigning =
            PresigningConfig::expires_in(expires_in).map_err(|e| store_err("presign a part", e))?;
        let number = i32::try_from(number).map_err(|e| store_err("presign a part", e))?;
        let req = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key.as_str())
            .upload_id(upload_id)
            .part_number(number)
            .presigned(presigning)
            .await
            .map_err(|e| store_err("presign a part", e))?;
        Ok(req.uri().to_owned())
    }

    async fn list_parts(
        &self,
        key: &ObjectKey,
        upload_id: &str,
    ) -> Result<Option<Vec<UploadedPart>>, StoreError> {
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let result = self
                .client
                .list_parts()
                .bucket(&self.bucket)
                .key(key.as_str())
                .upload_id(upload_id)
                .set_part_number_marker(marker.take())
                .send()
                .await;
            let page = match result {
                Ok(page) => page,
                Err(e) if e.code() == Some("NoSuchUpload") => return Ok(None),
                Err(e) => return Err(store_err("list the parts of an upload", e)),
            };
            for p in page.parts() {
                let (Some(number), Some(etag)) = (p.part_number(), p.e_tag()) else {
                    continue;
                };
                parts.push(UploadedPart {
                    number: u32::try_from(number).unwrap_or(0),
                    etag: etag.to_owned(),
                    size: p.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                });
            }
            match page.next_part_number_marker() {
                Some(next) if page.is_truncated() == Some(true) => marker = Some(next.to_owned()),
                _ => {
                    parts.sort_by_key(|p| p.number);
                    return Ok(Some(parts));
                }
            }
        }
        Err(store_err(
            "list the parts of an upload",
            TooManyPages(MAX_LIST_PAGES),
        ))
    }

    async fn complete_multipart(
        &self,
        key: &ObjectKey,
        upload_id: &str,
        parts: &[PartTag],
    ) -> Result<Completion, StoreError> {
        let completed = parts
            .iter()
            .map(|p| {
                CompletedPart::builder()
                    .part_number(i32::try_from(p.number).unwrap_or(i32::MAX))
                    .e_tag(&p.etag)
                    .build()
            })
            .collect();
        let result = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key.as_str())
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(completed))
                    .build(),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(Completion::Completed),
            Err(e) if e.code() == Some("NoSuchUpload") => Ok(Completion::NoSuchUpload),
            Err(e) if e.code().is_some_and(|c| REFUSED_PARTS.contains(&c)) => {
                Ok(Completion::Refused(format!(
                    "S3 refused the parts: {}",
                    e.message().unwrap_or("invalid parts")
                )))
            }
            Err(e) => Err(store_err("complete a multipart upload", e)),
        }
    }

    async fn abort_multipart(&self, key: &ObjectKey, upload_id: &str) -> Result<(), StoreError> {
        match self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key.as_str())
            .upload_id(upload_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("NoSuchUpload") => Ok(()),
            Err(e) => Err(store_err("abort a multipart upload", e)),
        }
    }
}

/// S3 answered a CreateMultipartUpload without an upload id.
#[derive(Debug, thiserror::Error)]
#[error("S3 gave no upload id")]
struct NoUploadId;

/// ListParts did not reach its last page.
#[derive(Debug, thiserror::Error)]
#[error("more than {0} pages of parts")]
struct TooManyPages(usize);
