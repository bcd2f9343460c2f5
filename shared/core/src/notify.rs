//! Events for the app's backend: one per state change (ready, rejected, deleted, restored,
//! purged), published after the change is stored. A retried state change (a lost answer, a
//! redelivered event, a repeated request) publishes at most one more; consumers dedupe on
//! `id` + `version`.

use std::collections::BTreeMap;

use serde::Serialize;
use tracing::error;

use crate::domain::Media;
use crate::ports::PublishError;
use crate::service::{MediaFields, MediaService};

/// The `source` of every event.
pub const SOURCE: &str = "media-upload";

/// What happened to a media item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Processing accepted it.
    Ready,
    /// Processing refused it.
    Rejected,
    /// Its owner deleted it (restorable during the grace period).
    Deleted,
    /// Its owner restored it.
    Restored,
    /// Cleanup removed it for good.
    Purged,
}

impl Change {
    /// The event's `detail-type`.
    pub fn detail_type(self) -> &'static str {
        match self {
            Self::Ready => "Media Ready",
            Self::Rejected => "Media Rejected",
            Self::Deleted => "Media Deleted",
            Self::Restored => "Media Restored",
            Self::Purged => "Media Purged",
        }
    }
}

/// An event's `detail`: the media as stored after the change, without URLs, with its owner.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaDetail {
    /// The owner (the JWT `sub` of the uploader).
    pub owner_id: String,
    /// The media's fields, as the API shows them (`id` + `version` is the key to dedupe on).
    #[serde(flatten)]
    pub fields: MediaFields,
    /// The thumbnails' names and sizes (ready only; no URLs: ask the API for those).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub thumbnails: BTreeMap<String, (u32, u32)>,
}

impl MediaDetail {
    /// The detail of `media` as stored.
    pub fn of(media: &Media) -> Self {
        Self {
            owner_id: media.owner.as_str().to_owned(),
            fields: MediaFields::of(media),
            thumbnails: media
                .derivatives
                .iter()
                .map(|(name, d)| (name.clone(), (d.width, d.height)))
                .collect(),
        }
    }
}

/// One event to publish.
#[derive(Debug, Clone)]
pub struct MediaEvent {
    /// What happened.
    pub change: Change,
    /// The media after it.
    pub detail: MediaDetail,
}

impl MediaService {
    /// Publishes the event of a stored change, when a publisher is wired. A failure is returned
    /// (the caller fails, and its retry publishes again) and counted.
    pub(crate) async fn publish(&self, change: Change, media: &Media) -> Result<(), PublishError> {
        let Some(events) = &self.events else {
            return Ok(());
        };
        let event = MediaEvent {
            change,
            detail: MediaDetail::of(media),
        };
        let result = events.publish(&event).await;
        let outcome = if result.is_ok() {
            "published"
        } else {
            "failed"
        };
        self.metrics.count(
            "event_total",
            &[("type", change.detail_type()), ("outcome", outcome)],
            1,
        );
        if let Err(e) = &result {
            error!(media_id = %media.id, detail_type = change.detail_type(), error = %e, cause = ?e, "could not publish an event");
        }
        result
    }
}
