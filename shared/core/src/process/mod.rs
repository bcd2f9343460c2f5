//! Process: validates and decodes one uploaded object through the image processor, writes the
//! derivatives, and moves the record `pending` -> `ready` or `rejected`. Video and audio, files
//! of up to gigabytes, take their own path ([`streamed`]): read by ranges, never whole; documents
//! over the in-memory bound are copied to a scratch file ([`spooled`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use time::OffsetDateTime;
use tracing::{info, warn};

use crate::domain::{
    ContentType, Media, MediaId, MediaKind, MediaMetadata, MediaStatus, ObjectKey, Rejection,
    RejectionCode, StoredDerivative,
};
use crate::metrics::Unit;
use crate::notify::Change;
use crate::ports::{
    Fetched, ImageProcessor, Processed, PublishError, RepoError, StoreError, Thumbnail, Timings,
    Transition,
};
use crate::scanning::MalwareScanner;
use crate::service::{FlushOnDrop, MediaService};

mod scan;
mod scanned;
mod spooled;
mod streamed;

pub use scanned::ScanResult;

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
    /// The service was wired without an image processor (only the process function has one).
    #[error("this service has no image processor")]
    NoProcessor,
    /// `MALWARE_SCANNER=clamd`, but the service was wired without a scanner.
    #[error("this service has no malware scanner")]
    NoScanner,
    /// The malware scanner gave no verdict: retried, never `ready` unscanned.
    #[error(transparent)]
    Scan(#[from] crate::ports::ScanError),
    /// The outcome is stored but its event could not be published: the retry publishes it.
    #[error(transparent)]
    Publish(#[from] PublishError),
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
    /// `MALWARE_SCANNER=guardduty`: processing waits for GuardDuty's verdict event.
    AwaitingScan,
}

/// What stands between an upload and its processing.
#[derive(Debug, Clone)]
pub(crate) enum Gate {
    /// This run streams it through the scanner (clamd), or nothing (`MALWARE_SCANNER=none`).
    Scan,
    /// GuardDuty scanned this version of it (`etag`): no threat, or, when `unsupported`, a file
    /// it cannot scan that the operator lets through.
    Scanned {
        /// The version scanned.
        etag: String,
        /// GuardDuty's `UNSUPPORTED`, let through (`SCAN_UNSUPPORTED=allow`).
        unsupported: bool,
    },
    /// The scanner's verdict refuses it.
    Refused(Rejection),
}

impl Gate {
    /// The ETag to read, quoted as S3 sends it, when only the scanned version may be processed.
    fn if_match(&self) -> Option<String> {
        match self {
            Self::Scanned { etag, .. } => Some(format!("\"{}\"", etag.trim_matches('"'))),
            Self::Scan | Self::Refused(_) => None,
        }
    }
}

/// Why a stored file of `size` bytes cannot be `media` under this `limit`: over the limit, or
/// not the size declared.
fn size_rejection(media: &Media, size: u64, limit: u64) -> Option<Rejection> {
    if size > limit {
        return Some(Rejection::new(
            RejectionCode::TooLarge,
            format!("the file is {size} bytes; the limit is {limit}"),
        ));
    }
    (size != media.size).then(|| {
        Rejection::new(
            RejectionCode::SizeMismatch,
            format!("the file is {size} bytes but {} were declared", media.size),
        )
    })
}

/// An object to write: its key, bytes and content type.
type Write = (ObjectKey, Vec<u8>, &'static str);

/// What a run made, for [`MediaService::finish_ready`] to record.
struct Made {
    /// The copy the original's URL serves.
    served: ObjectKey,
    /// Its size.
    served_size: u64,
    /// What processing learned.
    metadata: MediaMetadata,
    /// The thumbnails written.
    derivatives: BTreeMap<String, StoredDerivative>,
    /// Every key this run wrote (deleted again when the record went meanwhile).
    written: Vec<ObjectKey>,
    /// Where the time went.
    timings: Timings,
}

impl MediaService {
    /// Processes one uploaded object (its S3 event): scans it (clamd), validates and decodes it,
    /// writes the thumbnails, and moves the record `pending` -> `ready` or `rejected`. Returns
    /// `Err` only for faults worth a retry. With `MALWARE_SCANNER=guardduty` it does nothing:
    /// GuardDuty's verdict starts processing ([`MediaService::process_scanned`]).
    pub async fn process_upload(&self, key: &ObjectKey) -> Result<ProcessOutcome, ProcessError> {
        if matches!(
            self.config.malware_scanner,
            MalwareScanner::GuardDuty { .. }
        ) {
            info!(key = %key, outcome = "awaiting_scan", "GuardDuty's verdict will start processing");
            return Ok(ProcessOutcome::AwaitingScan);
        }
        self.process_object(key, &Gate::Scan).await
    }

    /// The common path: the record's checks, then the file by its kind, through `gate`.
    pub(crate) async fn process_object(
        &self,
        key: &ObjectKey,
        gate: &Gate,
    ) -> Result<ProcessOutcome, ProcessError> {
        let _flush = FlushOnDrop(&self.metrics);
        let started = Instant::now();
        let processor = self.processor.as_ref().ok_or(ProcessError::NoProcessor)?;
        let Some(id) = key.upload_media_id(&self.config.upload_prefix) else {
            info!(key = %key, outcome = "ignored", "not an original upload");
            return Ok(ProcessOutcome::Ignored);
        };
        let Some(media) = self.repo.get(&id).await?.filter(|m| m.key == *key) else {
            // Keys are only made for records, and a record exists before its URL is handed out:
            // an upload no record owns (its record expired or was purged) is garbage. Delete it,
            // and whatever an earlier run for this id may have written before it stopped.
            let mut keys = self.processing_keys(&id, None);
            keys.push(key.clone());
            self.delete_all(&keys).await?;
            warn!(key = %key, media_id = %id, outcome = "orphan", "no record owns this upload; deleted it");
            return Ok(ProcessOutcome::Orphan);
        };
        if media.status != MediaStatus::Pending {
            if matches!(media.status, MediaStatus::Rejected | MediaStatus::Ready) {
                // Never served: a rejected file, a retry after a failed delete, or new bytes PUT
                // again to a still-valid URL after validation. The served original is a copy.
                self.store.delete(key).await?;
                // A redelivered event may be the retry of a run whose publish failed: announce
                // the outcome again (at most one more event per delivery; consumers dedupe).
                let change = if media.status == MediaStatus::Ready {
                    Change::Ready
                } else {
                    Change::Rejected
                };
                self.publish(change, &media).await?;
            }
            info!(media_id = %id, key = %key, status = media.status.as_str(), outcome = "duplicate", "already processed");
            return Ok(ProcessOutcome::AlreadyProcessed { media_id: id });
        }

        if let Gate::Refused(rejection) = gate {
            return self.reject(&media, rejection.clone(), started).await;
        }
        if media.kind().is_streamed() {
            return self
                .process_streamed(&media, processor, gate, started)
                .await;
        }
        // Held in memory up to the image limit: a larger document is copied to a scratch file
        // instead, and one declared smaller that is larger is refused for its size unread.
        if media.kind() != MediaKind::Image && media.size > self.config.max_file_size {
            return self.process_spooled(&media, processor, gate, started).await;
        }
        let limit = self.config.max_size(media.kind());
        let if_match = gate.if_match();
        let (bytes, sha256) = match self
            .reader()?
            .fetch(
                key,
                if_match.as_deref(),
                limit.min(self.config.max_file_size),
            )
            .await?
        {
            Fetched::Bytes { bytes, sha256 } => (bytes, sha256),
            Fetched::Missing => {
                warn!(media_id = %id, key = %key, outcome = "missing", "object vanished before processing");
                return Ok(ProcessOutcome::Missing { media_id: id });
            }
            Fetched::TooLarge(size) => {
                let r = size_rejection(&media, size, limit).unwrap_or_else(|| {
                    Rejection::new(RejectionCode::TooLarge, "the file is over the limit")
                });
                return self.reject(&media, r, started).await;
            }
        };
        if let Some(r) = size_rejection(&media, bytes.len() as u64, limit) {
            return self.reject(&media, r, started).await;
        }
        let bytes = Arc::new(bytes);
        let processed = match self
            .validate_and_scan(&media, processor, gate, &bytes, sha256)
            .await?
        {
            Ok(processed) => processed,
            Err(rejection) => return self.reject(&media, rejection, started).await,
        };
        // Both are done with the bytes: no copy is made here.
        let bytes = Arc::try_unwrap(bytes).unwrap_or_else(|shared| (*shared).clone());

        let timings = processed.timings;
        let (derivatives, mut writes) = self.thumbnail_writes(&id, processed.thumbnails);
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
        let served_size = served_bytes.len() as u64;
        writes.push((served.clone(), served_bytes, served_type.served_mime()));
        let written: Vec<ObjectKey> = writes.iter().map(|(key, _, _)| key.clone()).collect();
        self.put_all(writes).await?;

        self.finish_ready(
            &media,
            Made {
                served,
                served_size,
                metadata: MediaMetadata {
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

    /// The pipeline and the scan at once: the scan's time hides behind the decode. A file the
    /// pipeline refuses is refused at once, its scan dropped (a hostile file can cost a scanner
    /// far more than it costs the pipeline: clamd spends 23 s on a 1 MB JPEG that claims giant
    /// dimensions, which the pipeline refuses in a millisecond). Both are done with `bytes` when
    /// this returns.
    async fn validate_and_scan<B: AsRef<[u8]> + Send + Sync + ?Sized + 'static>(
        &self,
        media: &Media,
        processor: &Arc<dyn ImageProcessor>,
        gate: &Gate,
        bytes: &Arc<B>,
        sha256: [u8; 32],
    ) -> Result<Result<Processed, Rejection>, ProcessError> {
        let processor = Arc::clone(processor);
        let declared = media.content_type;
        let extension = media
            .key
            .as_str()
            .rsplit_once('.')
            .map(|(_, e)| e.to_owned());
        let span = tracing::Span::current();
        let shared = Arc::clone(bytes);
        let pipeline = tokio::task::spawn_blocking(move || {
            span.in_scope(|| {
                processor.process((*shared).as_ref(), sha256, declared, extension.as_deref())
            })
        });
        let scan = async {
            if matches!(gate, Gate::Scan) {
                self.scan_bytes(media, (**bytes).as_ref()).await
            } else {
                Ok(None)
            }
        };
        tokio::pin!(pipeline, scan);
        let mut scanned = None;
        let result = loop {
            tokio::select! {
                done = &mut pipeline => break done.map_err(ProcessError::Task)?,
                verdict = &mut scan, if scanned.is_none() => scanned = Some(verdict),
            }
        };
        let processed = match result {
            Ok(p) => p,
            Err(rejection) => return Ok(Err(rejection)),
        };
        let verdict = match scanned {
            Some(v) => v,
            None => scan.await,
        };
        Ok(match verdict? {
            Some(rejection) => Err(rejection),
            None => Ok(processed),
        })
    }

    /// Where each thumbnail is stored, and the writes that store them.
    fn thumbnail_writes(
        &self,
        id: &MediaId,
        thumbnails: Vec<Thumbnail>,
    ) -> (BTreeMap<String, StoredDerivative>, Vec<Write>) {
        let mut derivatives = BTreeMap::new();
        let mut writes = Vec::new();
        for thumb in thumbnails {
            let key = ObjectKey::derivative(
                &self.config.derivatives_prefix,
                id,
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
        (derivatives, writes)
    }

    /// All the writes at once: the function is billed for the wall time, and S3 latency is most
    /// of it. A failure fails the whole event, whose retry rewrites the same keys.
    async fn put_all(&self, writes: Vec<Write>) -> Result<(), ProcessError> {
        let writer = self.writer()?;
        futures_util::future::try_join_all(
            writes
                .into_iter()
                .map(|(key, bytes, mime)| async move { writer.put(&key, bytes, mime).await }),
        )
        .await?;
        Ok(())
    }

    /// Records a run's result: `pending` -> `ready`, or, when the record changed meanwhile,
    /// whatever the change calls for. Then deletes the upload and announces the outcome.
    async fn finish_ready(
        &self,
        media: &Media,
        made: Made,
        started: Instant,
    ) -> Result<ProcessOutcome, ProcessError> {
        let Made {
            served,
            served_size,
            metadata,
            derivatives,
            written,
            timings,
        } = made;
        let (id, key) = (&media.id, &media.key);
        let now = OffsetDateTime::now_utc();
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let transition = self
            .repo
            .mark_ready(id, &served, served_size, &metadata, &derivatives, now)
            .await?;
        let stored = match transition {
            Transition::Applied => {
                let mut ready = media.clone();
                ready.status = MediaStatus::Ready;
                ready.version += 1;
                ready.served_original = Some(served.clone());
                ready.served_size = Some(served_size);
                ready.metadata = Some(metadata);
                ready.derivatives = derivatives;
                ready.expires_at = None;
                ready.updated_at = now;
                Some(ready)
            }
            // The condition failed. If the record holds this run's result, the write was ours
            // (its answer was lost and the SDK's retry met it): finish the success path.
            Transition::Conflict => match self.repo.get(id).await? {
                Some(m) if m.status == MediaStatus::Ready => {
                    (m.served_original.as_ref() == Some(&served)).then_some(m)
                }
                Some(m) if m.status == MediaStatus::Rejected => None,
                // Deleted or expired meanwhile (or already purged). Cleanup deletes the keys a
                // record names and the keys a run could write, but it may have done so before
                // these writes landed: whichever of the two runs last deletes them.
                _ => {
                    self.delete_all(&written).await?;
                    None
                }
            },
        };
        if let Some(ready) = stored {
            // The upload is now redundant; a failure here is retried and lands in the
            // duplicate path above, which deletes it.
            self.store.delete(key).await?;
            self.record_outcome("ready", media, started);
            info!(
                media_id = %id, owner = media.owner.as_str(), key = %key, status = "ready",
                kind = media.kind().as_str(), elapsed_ms,
                inspect_ms = timings.inspect.as_millis() as u64,
                decode_ms = timings.decode.as_millis() as u64, resize_ms = timings.resize.as_millis() as u64,
                encode_ms = timings.encode.as_millis() as u64,
                "processed upload"
            );
            self.publish(Change::Ready, &ready).await?;
            Ok(ProcessOutcome::Ready {
                media_id: id.clone(),
            })
        } else {
            info!(media_id = %id, key = %key, outcome = "superseded", "record changed during processing");
            Ok(ProcessOutcome::AlreadyProcessed {
                media_id: id.clone(),
            })
        }
    }

    async fn reject(
        &self,
        media: &Media,
        rejection: Rejection,
        started: Instant,
    ) -> Result<ProcessOutcome, ProcessError> {
        let code = rejection.code;
        let now = OffsetDateTime::now_utc();
        let stored = match self.repo.mark_rejected(media, &rejection, now).await? {
            Transition::Applied => {
                let mut rejected = media.clone();
                rejected.status = MediaStatus::Rejected;
                rejected.version += 1;
                rejected.rejection = Some(rejection.clone());
                rejected.holds_quota = false;
                rejected.expires_at = None;
                rejected.updated_at = now;
                Some(rejected)
            }
            // Our own write whose answer was lost holds this rejection; anything else is newer.
            Transition::Conflict => self.repo.get(&media.id).await?.filter(|m| {
                m.status == MediaStatus::Rejected && m.rejection.as_ref() == Some(&rejection)
            }),
        };
        // Whatever the record says now, a refused file must not stay servable.
        self.store.delete(&media.key).await?;
        let Some(rejected) = stored else {
            info!(media_id = %media.id, key = %media.key, outcome = "superseded", "record changed during processing");
            return Ok(ProcessOutcome::AlreadyProcessed {
                media_id: media.id.clone(),
            });
        };
        self.record_outcome("rejected", media, started);
        self.metrics
            .count("upload_rejected_total", &[("reason", code.as_str())], 1);
        info!(
            media_id = %media.id, owner = media.owner.as_str(), key = %media.key, status = "rejected",
            reason = code.as_str(), message = %rejection.message, elapsed_ms = started.elapsed().as_millis() as u64,
            "rejected upload"
        );
        self.publish(Change::Rejected, &rejected).await?;
        Ok(ProcessOutcome::Rejected {
            media_id: media.id.clone(),
            code,
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
}
