//! Checking an uploaded video or audio file: its container against the declared type and the
//! key's extension, and what the container says, into the record's metadata.

use std::panic::{AssertUnwindSafe, catch_unwind};

use media_core::domain::{ContentType, MediaMetadata, Rejection, RejectionCode};

use super::{AvError, AvInfo, RangeSource, probe};
use crate::PipelineOptions;

/// Checks the file `source` reads, declared as `declared` and stored under a key ending in
/// `extension`: the type accepted, the extension agreeing, the container one of the declared
/// type's and parsing. Reads a few megabytes at most, whatever the file's size; never panics.
pub fn check(
    source: &mut dyn RangeSource,
    declared: ContentType,
    extension: Option<&str>,
    opts: &PipelineOptions,
) -> Result<MediaMetadata, Rejection> {
    if !declared.kind().is_streamed() || !opts.allowed_types.contains(&declared) {
        return Err(Rejection::new(
            RejectionCode::UnsupportedType,
            format!("{declared} files are not accepted"),
        ));
    }
    if let Some(ext) = extension
        && ContentType::from_extension(ext) != Some(declared)
    {
        return Err(Rejection::new(
            RejectionCode::TypeMismatch,
            format!("declared {declared} but the name ends in .{ext}"),
        ));
    }
    let size = source.size();
    let info = catch_unwind(AssertUnwindSafe(|| probe(source)))
        .unwrap_or_else(|_| Err(AvError::Corrupt("the container could not be read".into())))
        .map_err(|e| match e {
            AvError::Unrecognised => Rejection::new(
                RejectionCode::NotVideoOrAudio,
                format!("declared {declared} but the content is not a video or audio file"),
            ),
            AvError::Corrupt(_) | AvError::Read(_) => {
                Rejection::new(RejectionCode::Corrupt, e.to_string())
            }
        })?;
    let container = info.container.ok_or_else(|| {
        Rejection::new(RejectionCode::Corrupt, "the container was not recognised")
    })?;
    if !super::matches_declared(declared.mime(), container, info.has_video()) {
        let what = if info.has_video() {
            "with video"
        } else {
            "without video"
        };
        return Err(Rejection::new(
            RejectionCode::TypeMismatch,
            format!(
                "declared {declared} but the content is {} {what}",
                container.mime()
            ),
        ));
    }
    Ok(metadata(declared, size, info))
}

fn metadata(declared: ContentType, size: u64, info: AvInfo) -> MediaMetadata {
    // Rounded for people and for JSON: a duration to the millisecond, a frame rate to the
    // thousandth (29.97).
    let round = |v: f64, scale: f64| (v * scale).round() / scale;
    MediaMetadata {
        format: declared.format_name().to_owned(),
        size,
        width: info.width,
        height: info.height,
        duration_seconds: info
            .duration_seconds
            .filter(|d| d.is_finite() && *d >= 0.0)
            .map(|d| round(d, 1000.0)),
        video_codec: info.video_codec,
        audio_codec: info.audio_codec,
        frame_rate: info
            .frame_rate
            .filter(|f| f.is_finite() && *f > 0.0)
            .map(|f| round(f, 1000.0)),
        bit_rate: info.bit_rate,
        sample_rate: info.sample_rate,
        channels: info.channels,
        ..MediaMetadata::default()
    }
}
