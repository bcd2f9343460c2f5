//! Usage: what an owner's media hold against the per-owner quotas, and the per-owner presign
//! rate. The reservations themselves are taken and given back by the repository, in the same
//! atomic write as the state change that calls for them.

use serde::Serialize;
use time::OffsetDateTime;
use tracing::warn;

use crate::domain::OwnerId;
use crate::ports::{Quota, RepoError, Usage};
use crate::service::{FlushOnDrop, MediaService};

/// `GET /api/v1/usage`: what the caller's media hold, and the limits (0: no limit).
#[derive(Debug, Clone, Serialize)]
pub struct UsageView {
    /// Media counted (pending and ready).
    pub files: u64,
    /// Their declared bytes.
    pub bytes: u64,
    /// The quotas.
    pub limits: Limits,
}

/// The per-owner quotas (0: no limit).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Limits {
    /// Most media.
    pub files: u64,
    /// Most bytes.
    pub bytes: u64,
}

/// A presign request over the owner's rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    /// Requests allowed per minute.
    pub limit: u64,
    /// Seconds until the next window opens.
    pub retry_after: u64,
}

/// Why a reservation does not fit, for people: the limits, what is in use, and what was asked.
pub fn over_quota_message(quota: Quota, usage: Usage, files: u64, bytes: u64) -> String {
    let part = |used: u64, limit: u64, unit: &str| {
        if limit == 0 {
            format!("{used} {unit} in use (no limit)")
        } else {
            format!("{used} of {limit} {unit} in use")
        }
    };
    format!(
        "over the quota: {}, {}; this needs {files} more files and {bytes} more bytes",
        part(usage.files, quota.files, "files"),
        part(usage.bytes, quota.bytes, "bytes"),
    )
}

impl MediaService {
    /// What the caller's media hold, with the limits.
    pub async fn get_usage(&self, owner: &OwnerId) -> Result<UsageView, RepoError> {
        let _flush = FlushOnDrop(&self.metrics);
        let usage = self.repo.usage(owner).await?;
        let quota = self.quota();
        Ok(UsageView {
            files: usage.files,
            bytes: usage.bytes,
            limits: Limits {
                files: quota.files,
                bytes: quota.bytes,
            },
        })
    }

    /// The configured quotas.
    pub(crate) fn quota(&self) -> Quota {
        Quota {
            files: self.config.quota_files,
            bytes: self.config.quota_bytes,
        }
    }

    /// Counts one presign request of `owner` in the current clock minute. `Ok(None)` when the
    /// limit is off; `Ok(Some(window))` when counted (give it back with
    /// [`Self::give_back_presign`] if the request is refused later).
    pub(crate) async fn count_presign(
        &self,
        owner: &OwnerId,
    ) -> Result<Result<Option<OffsetDateTime>, RateLimited>, RepoError> {
        let limit = self.config.presign_rate_per_minute;
        if limit == 0 {
            return Ok(Ok(None));
        }
        let now = OffsetDateTime::now_utc();
        let into_minute = u64::from(now.second());
        let window = now
            .replace_second(0)
            .and_then(|t| t.replace_nanosecond(0))
            .unwrap_or(now);
        if self.repo.count_request(owner, window, limit).await? {
            Ok(Ok(Some(window)))
        } else {
            self.metrics.count("presign_rate_limited_total", &[], 1);
            Ok(Err(RateLimited {
                limit,
                retry_after: 60 - into_minute.min(59),
            }))
        }
    }

    /// Takes back a counted presign request that was refused after all (refused requests do
    /// not count). Best effort: a failure leaves the window one request fuller.
    pub(crate) async fn give_back_presign(&self, owner: &OwnerId, window: Option<OffsetDateTime>) {
        if let Some(w) = window
            && let Err(e) = self.repo.uncount_request(owner, w).await
        {
            warn!(error = %e, "could not take back a refused presign request from its rate window");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quota_message_says_what_is_used_and_needed() {
        let m = over_quota_message(
            Quota { files: 3, bytes: 0 },
            Usage {
                files: 3,
                bytes: 10,
            },
            1,
            5,
        );
        assert_eq!(
            m,
            "over the quota: 3 of 3 files in use, 10 bytes in use (no limit); this needs 1 more files and 5 more bytes"
        );
    }
}
