//! Server-side upload (`POST /api/v1/upload`, multipart): for clients that cannot upload to S3
//! themselves. Each file gets a record exactly as a presign would make it (the same type, size,
//! quota and rate rules, checked before anything is stored), then its bytes are written under its
//! upload key; processing follows through the same S3 event as a presigned upload.

use std::time::Instant;

use time::OffsetDateTime;

use crate::domain::OwnerId;
use crate::presign::{PresignError, PresignRequest};
use crate::service::{FlushOnDrop, MediaService, MediaView};

/// One file of a multipart upload.
#[derive(Debug, Clone)]
pub struct UploadedFile {
    /// The part's filename.
    pub filename: String,
    /// The part's `Content-Type`.
    pub content_type: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// The files of a multipart upload answer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UploadedFiles {
    /// One pending media per file, in order.
    pub files: Vec<MediaView>,
}

impl MediaService {
    /// Stores the files, each as a pending media with `describe` (the descriptive fields, as a
    /// presign request carries them). All files are checked, counted against the rate limit (one
    /// request) and reserved against the quota before any byte is written.
    pub async fn upload_files(
        &self,
        owner: &OwnerId,
        files: Vec<UploadedFile>,
        describe: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<UploadedFiles, PresignError> {
        let _flush = FlushOnDrop(&self.metrics);
        let started = Instant::now();
        self.check_file_count(
            files.len(),
            "send one or more files as multipart parts named \"files\"",
        )?;
        let checked = files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let request = PresignRequest {
                    filename: Some(f.filename.clone()),
                    content_type: Some(f.content_type.clone()),
                    size: i64::try_from(f.bytes.len()).ok(),
                    method: None,
                    sha256: None,
                    rest: describe.clone(),
                };
                self.check_presign(request).map_err(|e| match e {
                    PresignError::Invalid(m) => PresignError::Invalid(format!("files[{i}]: {m}")),
                    other => other,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Before anything is counted or stored: a service wired without a writer fails here.
        let writer = self.writer()?;
        let window = self
            .count_presign(owner)
            .await?
            .map_err(PresignError::RateLimited)?;
        let now = OffsetDateTime::now_utc();
        let records: Vec<_> = checked
            .iter()
            .map(|c| self.new_record(owner, c, now))
            .collect();
        if let Err(e) = self.create_records(owner, &records, started).await {
            self.give_back_presign(owner, window).await;
            return Err(e);
        }
        // The records exist; a write that fails leaves its record pending, and cleanup expires it
        // (and gives its quota back) like any upload that never arrived.
        futures_util::future::try_join_all(
            records.iter().zip(files).map(|(m, f)| async move {
                writer.put(&m.key, f.bytes, m.content_type.mime()).await
            }),
        )
        .await?;
        self.metrics
            .count("server_upload_total", &[], records.len() as u64);
        let mut views = Vec::with_capacity(records.len());
        for m in records {
            views.push(self.view(m).await?);
        }
        Ok(UploadedFiles { files: views })
    }
}
