//! Cleanup: expires pending uploads past their expiry and purges media soft-deleted longer than
//! the grace period, objects first, then the record.

use std::time::Instant;

use serde::Serialize;
use time::OffsetDateTime;
use tracing::{Instrument, error, info, warn};

use crate::domain::{Media, MediaStatus};
use crate::metrics::Unit;
use crate::notify::Change;
use crate::ports::{CleanupQueue, RepoError, StoreError, Transition};
use crate::service::{FlushOnDrop, MediaService};

/// Failures that stop a cleanup run as a whole.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    /// The work lists could not be read.
    #[error(transparent)]
    Repo(#[from] RepoError),
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

impl MediaService {
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

        for media in self.due(CleanupQueue::Pending, now, limit).await? {
            let span = tracing::info_span!("expire", media_id = %media.id);
            let result = async {
                if self.expire(&media, now).await? {
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
        for media in self.due(CleanupQueue::Purge, cutoff, limit).await? {
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

    /// Records of `queue` due by `due`, from every shard, at most `limit` in all.
    async fn due(
        &self,
        queue: CleanupQueue,
        due: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Media>, RepoError> {
        let mut found = Vec::new();
        for partition in queue.partitions() {
            let left = limit.saturating_sub(found.len());
            if left == 0 {
                break;
            }
            found.extend(self.repo.due(&partition, due, left).await?);
        }
        Ok(found)
    }

    /// `pending` -> `expired`. True when this call made the change, including an earlier attempt
    /// of it whose answer was lost (the record then reads back as expired).
    async fn expire(&self, media: &Media, now: OffsetDateTime) -> Result<bool, RepoError> {
        Ok(match self.repo.expire(media, now).await? {
            Transition::Applied => true,
            Transition::Conflict => self
                .repo
                .get(&media.id)
                .await?
                .is_some_and(|m| m.status == MediaStatus::Expired),
        })
    }

    /// Deletes every object of `media`, then its record. True when the record was removed.
    ///
    /// The keys come from the record and the configuration, never from a listing: the upload, the
    /// keys the record names, and every key a processing run could write. A run that writes after
    /// these deletes finds the record deleted or gone when it tries to mark it ready, and deletes
    /// its own writes (see `process_upload`): whichever comes last cleans up.
    async fn purge(
        &self,
        media: &Media,
        summary: &mut CleanupSummary,
        stale_paths: &mut Vec<String>,
    ) -> Result<bool, PurgeError> {
        let own_folder = format!("/{}/", media.id);
        // An upload never processed may or may not have arrived: a HEAD (a GET-class request)
        // tells, for the summary. A processed upload was deleted when it was processed.
        let never_processed = media.served_original.is_none() && media.rejection.is_none();
        let upload_size = if never_processed {
            self.store.head(&media.key).await?
        } else {
            None
        };
        let keys: Vec<_> = std::iter::once(media.key.clone())
            .chain(self.processing_keys(&media.id, Some(media)))
            .collect();
        if let Some(key) = keys.iter().find(|k| !k.folder().ends_with(&own_folder)) {
            // Never delete beyond this media's own folders, whatever a malformed record says.
            return Err(PurgeError::Foreign(key.as_str().to_owned()));
        }
        if let (true, Some(upload_id), Some(multipart)) =
            (never_processed, &media.upload_id, &self.multipart)
        {
            // A multipart upload never completed holds its parts until it is aborted (aborting
            // one completed or aborted already is no error). Aborted before the key is deleted,
            // so that a completion racing this purge leaves an object that the delete removes.
            multipart.abort_multipart(&media.key, upload_id).await?;
        }
        self.delete_all(&keys).await?;
        // What the record says existed: what was served (and may be cached by a CDN), or the
        // upload of media never processed (a processed upload was deleted when it was).
        let served = media
            .served_original
            .iter()
            .map(|k| (k, media.served_size.unwrap_or(media.size)))
            .chain(media.derivatives.values().map(|d| (&d.key, d.size)));
        let mut existed = 0;
        for (key, size) in served {
            existed += 1;
            summary.bytes_reclaimed += size;
            if self.cdn.is_some() {
                stale_paths.push(format!("/{key}"));
            }
        }
        if let Some(size) = upload_size {
            existed += 1;
            summary.bytes_reclaimed += size;
        }
        summary.objects_deleted += existed;
        let removed = match self.repo.remove(&media.id).await? {
            Transition::Applied => true,
            // Gone: removed by this call's earlier attempt whose answer was lost.
            Transition::Conflict => self.repo.get(&media.id).await?.is_none(),
        };
        if removed && let Err(e) = self.publish(Change::Purged, media).await {
            // The record is gone, so no later run can announce it: counted (and alarmed on
            // through the failures metric), not retried.
            summary.failures += 1;
            warn!(media_id = %media.id, error = %e, "purged, but the event was not published");
        }
        Ok(removed)
    }
}

#[derive(Debug, thiserror::Error)]
enum PurgeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("refusing to purge {0:?}: not in a folder of this media")]
    Foreign(String),
}
