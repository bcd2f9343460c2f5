//! Documents over the in-memory bound (the image limit, `MAX_FILE_SIZE`) and up to
//! `MAX_DOCUMENT_SIZE`: PDFs, ZIP and OOXML archives, CSV and text. Their parsers read at random
//! (a PDF's cross-reference table and objects, a ZIP's central directory and the entries it
//! inspects), so the object is copied once to a scratch file, hashed as it arrives, and mapped
//! read-only ([`crate::ports::ObjectReader::spool`]): the validators and the scan read the mapping,
//! the function's heap does not grow with the file, and the served copy is made inside S3.
//! Every read and the copy insist on the ETag the first `HEAD` saw.

use std::sync::Arc;
use std::time::Instant;

use tracing::info;

use super::{Gate, Made, ProcessError, ProcessOutcome};
use crate::domain::{Media, ObjectKey};
use crate::ports::ImageProcessor;
use crate::service::MediaService;

impl MediaService {
    pub(super) async fn process_spooled(
        &self,
        media: &Media,
        processor: &Arc<dyn ImageProcessor>,
        gate: &Gate,
        started: Instant,
    ) -> Result<ProcessOutcome, ProcessError> {
        let (id, key) = (&media.id, &media.key);
        let reader = self.reader()?;
        let stat = match self.stat_upload(media, gate, started).await? {
            Ok(stat) => stat,
            Err(outcome) => return Ok(outcome),
        };
        let copying = Instant::now();
        let Some(spooled) = reader.spool(key, &stat.etag, stat.size).await? else {
            return Ok(self.changed(media));
        };
        let spool_ms = copying.elapsed().as_millis() as u64;
        let processed = match self
            .validate_and_scan(media, processor, gate, &spooled.bytes, spooled.sha256)
            .await?
        {
            Ok(processed) => processed,
            Err(rejection) => return self.reject(media, rejection, started).await,
        };
        drop(spooled);

        let timings = processed.timings;
        let (derivatives, writes) = self.thumbnail_writes(id, processed.thumbnails);
        let served = ObjectKey::derivative(
            &self.config.derivatives_prefix,
            id,
            "original",
            media.content_type.extension(),
        );
        let mut written: Vec<ObjectKey> = writes.iter().map(|(key, _, _)| key.clone()).collect();
        written.push(served.clone());
        let (_, copied) = tokio::try_join!(self.put_all(writes), async {
            Ok(reader
                .copy(
                    key,
                    &stat.etag,
                    stat.size,
                    &served,
                    media.content_type.served_mime(),
                )
                .await?)
        })?;
        if !copied {
            // Replaced or deleted since it was read: what this run wrote goes, and a replacement
            // brings its own event.
            self.delete_all(&written).await?;
            return Ok(self.changed(media));
        }
        info!(
            media_id = %id, key = %key, size = stat.size, spool_ms,
            "read a large document through a scratch file"
        );
        self.finish_ready(
            media,
            Made {
                served,
                served_size: stat.size,
                metadata: crate::domain::MediaMetadata {
                    scan: self.scan_label(gate),
                    ..processed.metadata
                },
                derivatives,
                written,
                timings,
            },
            started,
        )
        .await
    }
}
