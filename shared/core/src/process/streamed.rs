//! Video and audio: files of up to gigabytes, never held whole. The container is read by
//! ranges (a few megabytes at most), the SHA-256 and the malware scan stream, and the served
//! copy is made inside S3. Every read and the copy insist on the ETag the first `HEAD` saw, so a file replaced while
//! it is processed is never served as the one that was checked.

use std::sync::Arc;
use std::time::Instant;

use tracing::{info, warn};

use super::{Gate, Made, ProcessError, ProcessOutcome};
use crate::domain::{Media, MediaMetadata, ObjectKey};
use crate::ports::{ImageProcessor, ObjectReader, ObjectStat, RangeSource, StoreError, Timings};
use crate::service::MediaService;

/// Bytes fetched at least per ranged read while probing: the parsers read box and element
/// headers a few bytes at a time, and one GET costs more than 256 KiB more of it.
const READ_AHEAD: usize = 256 * 1024;
/// Blocks the probe keeps (its start, the index at its end, and the ones in between).
const CACHED_BLOCKS: usize = 4;

impl MediaService {
    pub(super) async fn process_streamed(
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

        let mut source = StoreSource::new(
            Arc::clone(reader),
            key.clone(),
            stat.etag.clone(),
            stat.size,
        );
        let processor = Arc::clone(processor);
        let declared = media.content_type;
        let extension = key.as_str().rsplit_once('.').map(|(_, e)| e.to_owned());
        let span = tracing::Span::current();
        let (source, result) = tokio::task::spawn_blocking(move || {
            let result =
                span.in_scope(|| processor.probe(&mut source, declared, extension.as_deref()));
            (source, result)
        })
        .await
        .map_err(ProcessError::Task)?;
        let inspect = started.elapsed();
        match source.fault {
            Some(ReadFault::Store(e)) => return Err(e.into()),
            Some(ReadFault::Changed) => return Ok(self.changed(media)),
            None => {}
        }
        let metadata = match result {
            Ok(m) => m,
            Err(rejection) => return self.reject(media, rejection, started).await,
        };

        let served = ObjectKey::derivative(
            &self.config.derivatives_prefix,
            id,
            "original",
            declared.extension(),
        );
        let copying = Instant::now();
        // All at once: the copy happens inside S3, the hash and the scan stream through this
        // function.
        let (sha256, copied, scanned) = tokio::try_join!(
            async { Ok::<_, ProcessError>(reader.digest(key, &stat.etag, stat.size).await?) },
            async {
                Ok::<_, ProcessError>(
                    reader
                        .copy(key, &stat.etag, stat.size, &served, declared.served_mime())
                        .await?,
                )
            },
            async {
                if matches!(gate, Gate::Scan) {
                    self.scan_object(media, key, &stat.etag, stat.size).await
                } else {
                    Ok(Ok(None))
                }
            },
        )?;
        let (Some(sha256), true, Ok(infected)) = (sha256, copied, scanned) else {
            self.store.delete(&served).await?;
            return Ok(self.changed(media));
        };
        if let Some(rejection) = infected {
            self.store.delete(&served).await?;
            return self.reject(media, rejection, started).await;
        }
        info!(
            media_id = %id, key = %key, size = stat.size, gets = source.gets,
            probe_ms = inspect.as_millis() as u64, hash_and_copy_ms = copying.elapsed().as_millis() as u64,
            "read a large file"
        );
        self.finish_ready(
            media,
            Made {
                served: served.clone(),
                served_size: stat.size,
                metadata: MediaMetadata {
                    sha256: hex::encode(sha256),
                    scan: self.scan_label(gate),
                    ..metadata
                },
                derivatives: Default::default(),
                written: vec![served],
                timings: Timings {
                    inspect,
                    ..Timings::default()
                },
            },
            started,
        )
        .await
    }

    /// The upload's size and ETag, for the paths that read it by ranges; `Err` with the outcome
    /// when it is gone, was replaced since its scan, or is refused for its size.
    pub(super) async fn stat_upload(
        &self,
        media: &Media,
        gate: &Gate,
        started: Instant,
    ) -> Result<Result<ObjectStat, ProcessOutcome>, ProcessError> {
        let (id, key) = (&media.id, &media.key);
        let Some(stat) = self.store.stat(key).await? else {
            warn!(media_id = %id, key = %key, outcome = "missing", "object vanished before processing");
            return Ok(Err(ProcessOutcome::Missing {
                media_id: id.clone(),
            }));
        };
        if gate.if_match().is_some_and(|scanned| scanned != stat.etag) {
            // Replaced since it was scanned: the new version's verdict comes on its own.
            return Ok(Err(self.changed(media)));
        }
        let limit = self.config.max_size(media.kind());
        if let Some(r) = super::size_rejection(media, stat.size, limit) {
            return self.reject(media, r, started).await.map(Err);
        }
        Ok(Ok(stat))
    }

    /// The object was deleted or replaced while it was read: a replacement brings its own event
    /// (the record is still pending), a deletion needs nothing more.
    pub(super) fn changed(&self, media: &Media) -> ProcessOutcome {
        warn!(media_id = %media.id, key = %media.key, outcome = "missing", "object changed while it was processed");
        ProcessOutcome::Missing {
            media_id: media.id.clone(),
        }
    }
}

/// Why a read of the object failed.
enum ReadFault {
    /// The object is gone, or holds other bytes than those the `HEAD` saw.
    Changed,
    /// Storage failed: worth a retry.
    Store(StoreError),
}

/// The object read by ranges, for the probe in its blocking task: each read waits on the async
/// store, and reads at least [`READ_AHEAD`] bytes, kept for the reads that follow.
struct StoreSource {
    store: Arc<dyn ObjectReader>,
    key: ObjectKey,
    etag: String,
    size: u64,
    runtime: tokio::runtime::Handle,
    blocks: BlockCache,
    fault: Option<ReadFault>,
    gets: u32,
}

impl StoreSource {
    fn new(store: Arc<dyn ObjectReader>, key: ObjectKey, etag: String, size: u64) -> Self {
        Self {
            store,
            key,
            etag,
            size,
            runtime: tokio::runtime::Handle::current(),
            blocks: BlockCache::default(),
            fault: None,
            gets: 0,
        }
    }
}

impl RangeSource for StoreSource {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&mut self, offset: u64, len: usize) -> Result<Vec<u8>, String> {
        if let Some(bytes) = self.blocks.get(offset, len, self.size) {
            return Ok(bytes);
        }
        let fetch = len.max(READ_AHEAD);
        self.gets += 1;
        let read = self
            .runtime
            .block_on(self.store.read_range(&self.key, &self.etag, offset, fetch));
        match read {
            Ok(Some(block)) => {
                let end = len.min(block.len());
                let bytes = block[..end].to_vec();
                self.blocks.put(offset, block);
                Ok(bytes)
            }
            Ok(None) => {
                self.fault = Some(ReadFault::Changed);
                Err("the object changed while it was read".into())
            }
            Err(e) => {
                let message = e.to_string();
                self.fault = Some(ReadFault::Store(e));
                Err(message)
            }
        }
    }
}

/// The last few blocks read, newest last.
#[derive(Default)]
struct BlockCache(Vec<(u64, Vec<u8>)>);

impl BlockCache {
    /// The bytes `offset..offset + len` (cut at `size`, the file's end) if one block holds them.
    fn get(&mut self, offset: u64, len: usize, size: u64) -> Option<Vec<u8>> {
        let end = offset.saturating_add(len as u64).min(size);
        let i = self.0.iter().position(|(start, block)| {
            *start <= offset && end <= start.saturating_add(block.len() as u64)
        })?;
        let (start, block) = self.0.remove(i);
        let from = usize::try_from(offset - start).ok()?;
        let to = usize::try_from(end.max(offset) - start).ok()?;
        let bytes = block.get(from..to).map(<[u8]>::to_vec);
        self.0.push((start, block));
        bytes
    }

    fn put(&mut self, start: u64, block: Vec<u8>) {
        if self.0.len() >= CACHED_BLOCKS {
            self.0.remove(0);
        }
        self.0.push((start, block));
    }
}

#[cfg(test)]
mod tests {
    use super::BlockCache;

    #[test]
    fn the_block_cache_answers_only_what_one_block_holds() {
        let mut cache = BlockCache::default();
        cache.put(100, (0..50).collect());
        assert_eq!(cache.get(100, 3, 1000), Some(vec![0, 1, 2]));
        assert_eq!(cache.get(140, 10, 1000), Some((40..50).collect()));
        assert_eq!(cache.get(140, 11, 1000), None, "runs past the block");
        assert_eq!(cache.get(99, 2, 1000), None, "starts before it");
        // At the file's end a read is cut short, as the source's contract says.
        assert_eq!(cache.get(145, 100, 150), Some((45..50).collect()));
        assert_eq!(cache.get(150, 10, 150), Some(vec![]));
        for i in 1..=4 {
            cache.put(1000 * i, vec![i as u8; 10]);
        }
        assert_eq!(cache.0.len(), 4, "the oldest block makes room");
        assert_eq!(cache.get(100, 1, 1000), None);
        assert_eq!(cache.get(4005, 1, 10_000), Some(vec![4]));
    }
}
