//! Update: a JSON merge patch of the caller's media's descriptive fields, with optimistic
//! concurrency on the record's version (`If-Match`).

use time::OffsetDateTime;
use tracing::info;

use crate::describe::{DescriptivePatch, FieldError};
use crate::domain::{MediaId, OwnerId};
use crate::ports::{RepoError, StoreError, Transition};
use crate::service::{FlushOnDrop, MediaError, MediaService, MediaView};

/// How often an edit without `If-Match` is tried again when another change lands between its
/// read and its write.
const ATTEMPTS: usize = 3;

/// An `If-Match` header: `*`, or the versions it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: any current version.
    Any,
    /// `"3"` or `"3", "4"`: one of these versions (weak tags never match).
    Versions(Vec<u64>),
}

impl IfMatch {
    /// Parses the header's value. Entity tags that are not ours (or weak) match nothing.
    pub fn parse(header: &str) -> Self {
        if header.trim() == "*" {
            return Self::Any;
        }
        Self::Versions(
            header
                .split(',')
                .filter_map(|tag| {
                    tag.trim()
                        .strip_prefix('"')?
                        .strip_suffix('"')?
                        .parse()
                        .ok()
                })
                .collect(),
        )
    }

    fn matches(&self, version: u64) -> bool {
        match self {
            Self::Any => true,
            Self::Versions(v) => v.contains(&version),
        }
    }
}

/// Refusals and failures of an update.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// A field of the patch is refused.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// No such media for this caller, or it is deleted.
    #[error("media not found")]
    NotFound,
    /// `If-Match` does not name the current version.
    #[error("the media is at version {current}, not the one If-Match names")]
    PreconditionFailed {
        /// The current version.
        current: u64,
    },
    /// Other changes kept landing between the read and the write.
    #[error("the media kept changing while it was being edited; try again")]
    Contended,
    /// Storage failed (signing a URL).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The repository failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl From<MediaError> for UpdateError {
    fn from(e: MediaError) -> Self {
        match e {
            MediaError::Store(e) => Self::Store(e),
            MediaError::Repo(e) => Self::Repo(e),
            // Edits publish no event.
            MediaError::Publish(e) => Self::Repo(RepoError::Backend {
                operation: "publish an event",
                source: Box::new(e),
            }),
            MediaError::Contended => Self::Contended,
            MediaError::NotFound | MediaError::NotUploaded => Self::NotFound,
        }
    }
}

impl MediaService {
    /// Applies a merge patch to the caller's media (`pending`, `ready` or `rejected`) and answers
    /// the media as stored. A patch that changes nothing stores nothing (the version stays).
    ///
    /// The write is conditional on the version read, so a concurrent change is never overwritten;
    /// a write whose answer was lost is recognised on the retry by reading the record back.
    pub async fn update_media(
        &self,
        owner: &OwnerId,
        id: &MediaId,
        patch: DescriptivePatch,
        if_match: Option<IfMatch>,
    ) -> Result<MediaView, UpdateError> {
        let _flush = FlushOnDrop(&self.metrics);
        for _ in 0..ATTEMPTS {
            let mut media = self.owned(owner, id).await?;
            if let Some(m) = &if_match
                && !m.matches(media.version)
            {
                return Err(UpdateError::PreconditionFailed {
                    current: media.version,
                });
            }
            let next = patch.clone().apply(&media.describe);
            if next == media.describe {
                return Ok(self.view(media).await?);
            }
            let now = OffsetDateTime::now_utc();
            let transition = self
                .repo
                .describe(id, owner, media.version, &next, now)
                .await?;
            match transition {
                Transition::Applied => {
                    media.describe = next;
                    media.version += 1;
                    media.updated_at = now;
                    info!(media_id = %id, version = media.version, outcome = "updated", "updated media");
                    return Ok(self.view(media).await?);
                }
                Transition::Conflict => {
                    // Our own write, applied before its answer was lost? Then the record is at the
                    // next version with exactly these fields.
                    let stored = self.owned(owner, id).await?;
                    if stored.version == media.version + 1 && stored.describe == next {
                        info!(media_id = %id, version = stored.version, outcome = "already_updated", "updated media");
                        return Ok(self.view(stored).await?);
                    }
                    if matches!(if_match, Some(IfMatch::Versions(_))) {
                        return Err(UpdateError::PreconditionFailed {
                            current: stored.version,
                        });
                    }
                }
            }
        }
        Err(UpdateError::Contended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_names_versions_or_any() {
        assert_eq!(IfMatch::parse("*"), IfMatch::Any);
        assert_eq!(IfMatch::parse("\"3\""), IfMatch::Versions(vec![3]));
        assert_eq!(
            IfMatch::parse(" \"3\" , \"4\""),
            IfMatch::Versions(vec![3, 4])
        );
        // Weak tags and tags that are not ours match nothing.
        assert!(!IfMatch::parse("W/\"3\"").matches(3));
        assert!(!IfMatch::parse("3").matches(3));
        assert!(!IfMatch::parse("\"abc\"").matches(3));
        assert!(IfMatch::parse("*").matches(7));
    }
}
