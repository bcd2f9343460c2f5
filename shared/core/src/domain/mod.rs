//! Domain types: parsed once at the edge, trusted everywhere after (parse, don't validate).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::describe::Descriptive;

mod content_type;
pub use content_type::{ContentType, MediaKind};
use time::format_description::well_known::Rfc3339;

/// Why an input value was refused when parsing it into a domain type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// The server-made identifier of one media item: a UUIDv7 in 32 lowercase hex digits, so ids sort by
/// creation time and never come from user input.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MediaId(String);

impl MediaId {
    /// A fresh, time-ordered id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().simple().to_string())
    }

    /// Accepts exactly 32 lowercase hex digits.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.len() == 32
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(s.to_owned()))
        } else {
            Err(ParseError("mediaId must be 32 lowercase hex digits".into()))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MediaId {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<MediaId> for String {
    fn from(id: MediaId) -> Self {
        id.0
    }
}

impl fmt::Display for MediaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The owner of media: the `sub` claim of the caller's JWT.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OwnerId(String);

impl OwnerId {
    /// A non-empty subject of at most 256 characters without control characters.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.is_empty() || s.len() > 256 || s.chars().any(char::is_control) {
            return Err(ParseError("invalid subject".into()));
        }
        Ok(Self(s.to_owned()))
    }

    /// The subject as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An S3 object key made by the server (never from a filename).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// The key of an original upload: `<prefix><yyyy>/<mm>/<dd>/<mediaId>/original.<ext>`.
    pub fn original(prefix: &str, created: OffsetDateTime, id: &MediaId, ct: ContentType) -> Self {
        Self(format!(
            "{prefix}{:04}/{:02}/{:02}/{id}/original.{}",
            created.year(),
            u8::from(created.month()),
            created.day(),
            ct.extension()
        ))
    }

    /// The key of a derivative: `<prefix><mediaId>/<name>.<ext>`.
    pub fn derivative(prefix: &str, id: &MediaId, name: &str, ext: &str) -> Self {
        Self(format!("{prefix}{id}/{name}.{ext}"))
    }

    /// Wraps a key read from storage or an event.
    pub fn from_raw(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// For a key of an original upload under `prefix`, the media id it belongs to.
    pub fn upload_media_id(&self, prefix: &str) -> Option<MediaId> {
        let rest = self.0.strip_prefix(prefix)?;
        let mut parts = rest.rsplit('/');
        let file = parts.next()?;
        let id = parts.next()?;
        if !file.starts_with("original.") {
            return None;
        }
        MediaId::parse(id).ok()
    }

    /// The folder of this key, with its trailing slash (`a/b/c.jpg` -> `a/b/`).
    pub fn folder(&self) -> &str {
        match self.0.rfind('/') {
            Some(i) => &self.0[..=i],
            None => "",
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Makes a user-supplied filename safe to store and show: display text only, never used in keys.
/// Path components, control characters and NUL are removed; Unicode is kept; length is capped.
pub fn sanitize_filename(raw: &str) -> Result<String, ParseError> {
    const MAX_CHARS: usize = 255;
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base.chars().filter(|c| !c.is_control()).collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    if cleaned.is_empty() {
        return Err(ParseError("filename is empty".into()));
    }
    Ok(cleaned.chars().take(MAX_CHARS).collect())
}

/// Where a media item is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaStatus {
    /// Presigned; the upload has not been processed yet.
    Pending,
    /// Processed; thumbnails exist.
    Ready,
    /// Processing refused the file; its object is gone.
    Rejected,
    /// Soft-deleted by its owner; cleanup removes it after the grace period.
    Deleted,
    /// The upload never completed in time; cleanup is removing it.
    Expired,
}

impl MediaStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Ready => "ready",
            Self::Rejected => "rejected",
            Self::Deleted => "deleted",
            Self::Expired => "expired",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        Ok(match s {
            "pending" => Self::Pending,
            "ready" => Self::Ready,
            "rejected" => Self::Rejected,
            "deleted" => Self::Deleted,
            "expired" => Self::Expired,
            other => return Err(ParseError(format!("unknown status {other:?}"))),
        })
    }
}

/// The machine-readable reason an upload was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionCode {
    /// The file is damaged or truncated.
    Corrupt,
    /// The content is not an image at all.
    NotAnImage,
    /// The content is an image of another type than declared.
    TypeMismatch,
    /// The content is an image type the service does not accept.
    UnsupportedType,
    /// Width, height or pixel count is over the limit.
    TooLargeDimensions,
    /// Too many animation frames.
    TooManyFrames,
    /// Embedded metadata is over the limit.
    MetadataTooLarge,
    /// The file is over the byte limit.
    TooLarge,
    /// The stored object's size differs from the size declared at presign.
    SizeMismatch,
    /// The content is not a document, spreadsheet, archive or text file at all.
    NotADocument,
    /// The document carries script, launch actions, embedded files or macros.
    ActiveContent,
    /// The archive has too many entries, inflates too far, or compresses suspiciously well.
    ArchiveTooLarge,
    /// An archive entry's name escapes the archive, or archives are nested too deep.
    UnsafeArchive,
    /// The content is not a video or audio container this service reads.
    NotVideoOrAudio,
    /// The malware scanner found a signature (named in the message).
    Malware,
    /// The malware scanner cannot scan this file (GuardDuty's `UNSUPPORTED`: encrypted, too
    /// large, ...).
    ScanUnsupported,
    /// The malware scanner failed on this file for good (GuardDuty's `FAILED`, `ACCESS_DENIED`).
    ScanFailed,
}

impl RejectionCode {
    /// The stable code string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Corrupt => "corrupt",
            Self::NotAnImage => "not_an_image",
            Self::TypeMismatch => "type_mismatch",
            Self::UnsupportedType => "unsupported_type",
            Self::TooLargeDimensions => "too_large_dimensions",
            Self::TooManyFrames => "too_many_frames",
            Self::MetadataTooLarge => "metadata_too_large",
            Self::TooLarge => "too_large",
            Self::SizeMismatch => "size_mismatch",
            Self::NotADocument => "not_a_document",
            Self::ActiveContent => "active_content",
            Self::ArchiveTooLarge => "archive_too_large",
            Self::UnsafeArchive => "unsafe_archive",
            Self::NotVideoOrAudio => "not_video_or_audio",
            Self::Malware => "malware",
            Self::ScanUnsupported => "scan_unsupported",
            Self::ScanFailed => "scan_failed",
        }
    }
}

/// Why an upload was rejected: a stable code and a human message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// The machine-readable reason.
    pub code: RejectionCode,
    /// A short explanation for people.
    pub message: String,
}

impl Rejection {
    /// A rejection with this code and message.
    pub fn new(code: RejectionCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// EXIF fields kept from the original (text sanitised, everything optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExifData {
    /// DateTimeOriginal (or DateTime), as written by the camera: `YYYY:MM:DD HH:MM:SS`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_time: Option<String>,
    /// Camera maker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub make: Option<String>,
    /// Camera model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Latitude in signed decimal degrees (south negative).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gps_latitude: Option<f64>,
    /// Longitude in signed decimal degrees (west negative).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gps_longitude: Option<f64>,
    /// EXIF orientation 1-8 as stored (invalid values are reported as 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orientation: Option<u8>,
    /// Aperture, e.g. 2.8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub f_number: Option<f64>,
    /// Exposure time, e.g. `1/250`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposure_time: Option<String>,
    /// ISO speed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iso: Option<u32>,
}

impl ExifData {
    /// True when no field was found.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// What processing learned about a ready file: the fields of its kind, the rest absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaMetadata {
    /// Detected format (`jpeg`, `png`, `webp`, `gif`, `pdf`, `docx`, `pptx`, `xlsx`, `csv`,
    /// `zip`, `text`, `mp4`, `mov`, `webm`, `mp3`, `m4a`, `wav`, `ogg`, `flac`).
    pub format: String,
    /// Size of the original in bytes.
    pub size: u64,
    /// SHA-256 of the original, lowercase hex.
    pub sha256: String,
    /// Displayed width (after EXIF orientation): images, the first page of a PDF in points, and
    /// a video's picture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Displayed height, likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// EXIF fields, when any were found (images).
    #[serde(default, skip_serializing_if = "ExifData::is_empty")]
    pub exif: ExifData,
    /// Frames of an animated image (absent for a still one); derivatives show the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<u32>,
    /// A BlurHash of the displayed image, for a placeholder while the thumbnail loads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blurhash: Option<String>,
    /// The dominant colour, `#rrggbb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dominant_color: Option<String>,
    /// Pages of a PDF (absent when it is encrypted with a password).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<u32>,
    /// A PDF's title, from its document information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// A PDF's author, from its document information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Whether a PDF is encrypted (PDFs only; encrypted ones get no thumbnails).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
    /// Files in a ZIP or OOXML archive (directory records not counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<u64>,
    /// The archive's total uncompressed size, as its central directory declares it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncompressed_bytes: Option<u64>,
    /// CSV records, the header included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// The widest CSV record's number of fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<u64>,
    /// CSV cells starting with `=`, `+`, `-` or `@`: formulas a spreadsheet would run when the
    /// file is opened (formula injection). Reported, not refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formula_cells: Option<u64>,
    /// Lines of a text file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<u64>,
    /// Playing time of a video or audio file, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// A video's first video track's codec, as its container names it (`avc1`, `hvc1`, `av01`,
    /// `V_VP9`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_codec: Option<String>,
    /// The first audio track's codec, as its container names it (`mp4a`, `mp3`, `pcm`,
    /// `vorbis`, `opus`, `flac`, `A_OPUS`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_codec: Option<String>,
    /// Video frames per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_rate: Option<f64>,
    /// Bits per second, over the whole file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bit_rate: Option<u64>,
    /// Audio samples per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u32>,
    /// Audio channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<u16>,
    /// The malware scan the file passed: `clean`, or `unsupported` (GuardDuty could not scan it
    /// and `SCAN_UNSUPPORTED=allow` let it through); absent when `MALWARE_SCANNER=none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan: Option<String>,
}

/// One stored derivative (thumbnail) of a ready image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredDerivative {
    /// Its object key.
    pub key: ObjectKey,
    /// Pixel width.
    pub width: u32,
    /// Pixel height.
    pub height: u32,
    /// Bytes stored.
    pub size: u64,
    /// MIME type.
    pub content_type: String,
}

/// The metadata record of one media item, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Media {
    /// Its id.
    pub id: MediaId,
    /// Who uploaded it.
    pub owner: OwnerId,
    /// Its state.
    pub status: MediaStatus,
    /// The sanitised filename the client gave (display only).
    pub filename: String,
    /// The declared content type.
    pub content_type: ContentType,
    /// The declared size in bytes.
    pub size: u64,
    /// The key of the original upload.
    pub key: ObjectKey,
    /// When it was presigned.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
    /// Until when a pending upload may still arrive.
    pub expires_at: Option<OffsetDateTime>,
    /// When it was soft-deleted.
    pub deleted_at: Option<OffsetDateTime>,
    /// Processing results (ready only).
    pub metadata: Option<MediaMetadata>,
    /// The validated copy of the original that URLs serve (ready only). The upload key itself is
    /// never served: a presigned PUT stays usable until it expires, so its content could change
    /// after validation.
    pub served_original: Option<ObjectKey>,
    /// The served copy's size in bytes (ready only; cleanup reports the bytes it reclaims).
    pub served_size: Option<u64>,
    /// Thumbnails by name (ready only).
    pub derivatives: BTreeMap<String, StoredDerivative>,
    /// Why it was rejected (rejected only).
    pub rejection: Option<Rejection>,
    /// What the app says about it: alt text, title, description, tags, the entity it belongs to.
    pub describe: Descriptive,
    /// Grows by one with every stored change (processing, edits, delete, restore): the ETag.
    pub version: u64,
    /// The status it had when it was soft-deleted (deleted only): what a restore brings back.
    pub deleted_from: Option<MediaStatus>,
    /// True while its file and declared bytes are counted in its owner's usage (pending and
    /// ready media; records from before quotas existed are not counted).
    pub holds_quota: bool,
    /// The S3 multipart upload the original arrives through (multipart uploads only): the routes
    /// under `/api/v1/upload/s3/multipart` answer only for it, and cleanup aborts it.
    pub upload_id: Option<String>,
}

impl Media {
    /// The kind of file it is.
    pub fn kind(&self) -> MediaKind {
        self.content_type.kind()
    }

    /// The keys URLs serve (ready media only): the served original and the thumbnails.
    pub fn served_keys(&self) -> Vec<ObjectKey> {
        self.served_original
            .iter()
            .chain(self.derivatives.values().map(|d| &d.key))
            .cloned()
            .collect()
    }

    /// The status a restore brings a deleted media back to: the one it had when it was deleted
    /// (records deleted before that was stored: ready if it has served keys, rejected if it has a
    /// rejection, else pending).
    pub fn restored_status(&self) -> MediaStatus {
        match self.deleted_from {
            Some(st @ (MediaStatus::Pending | MediaStatus::Ready | MediaStatus::Rejected)) => st,
            _ if self.served_original.is_some() => MediaStatus::Ready,
            _ if self.rejection.is_some() => MediaStatus::Rejected,
            _ => MediaStatus::Pending,
        }
    }
}

/// Formats a timestamp as RFC 3339 UTC with milliseconds, which sorts lexicographically.
pub fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Parses an RFC 3339 timestamp.
pub fn parse_time(s: &str) -> Result<OffsetDateTime, ParseError> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|e| ParseError(format!("bad timestamp {s:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_ids_are_strict() {
        let id = MediaId::generate();
        assert_eq!(MediaId::parse(id.as_str()), Ok(id));
        for bad in [
            "",
            "../etc",
            "ABCDEF0123456789ABCDEF0123456789",
            "0123456789abcdef0123456789abcde",
        ] {
            assert!(MediaId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn content_types_parse_case_insensitively_and_reject_others() {
        assert_eq!(
            ContentType::parse("IMAGE/JPEG; charset=binary"),
            Ok(ContentType::Jpeg)
        );
        assert!(ContentType::parse("image/svg+xml").is_err());
        assert!(ContentType::parse("").is_err());
    }

    #[test]
    fn keys_round_trip_to_media_ids() {
        let id = MediaId::generate();
        let t = time::macros::datetime!(2026-01-02 03:04:05 UTC);
        let key = ObjectKey::original("uploads/", t, &id, ContentType::Png);
        assert_eq!(
            key.as_str(),
            format!("uploads/2026/01/02/{id}/original.png")
        );
        assert_eq!(key.upload_media_id("uploads/"), Some(id.clone()));
        assert_eq!(key.folder(), format!("uploads/2026/01/02/{id}/"));
        assert_eq!(
            ObjectKey::from_raw("derivatives/x/small.webp").upload_media_id("uploads/"),
            None
        );
        assert_eq!(
            ObjectKey::from_raw(format!("uploads/{id}/small.jpg")).upload_media_id("uploads/"),
            None
        );
    }

    #[test]
    fn filenames_are_display_text_only() {
        assert_eq!(
            sanitize_filename("../../etc/passwd").as_deref(),
            Ok("passwd")
        );
        assert_eq!(
            sanitize_filename("C:\\x\\ph\u{0}oto\n.jpg").as_deref(),
            Ok("photo.jpg")
        );
        assert_eq!(sanitize_filename("été 🌞.jpg").as_deref(), Ok("été 🌞.jpg"));
        assert!(sanitize_filename("  /  ").is_err());
        assert_eq!(
            sanitize_filename(&"a".repeat(1000)).map(|s| s.chars().count()),
            Ok(255)
        );
    }

    #[test]
    fn times_sort_as_text() {
        let a = format_time(time::macros::datetime!(2026-01-02 03:04:05.006 UTC));
        assert_eq!(a, "2026-01-02T03:04:05.006Z");
        assert_eq!(parse_time(&a).map(format_time), Ok(a));
    }
}
