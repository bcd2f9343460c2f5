//! The file types the service accepts, and the kinds they group into.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ParseError;

/// A file type the service knows, named by its MIME type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ContentType {
    /// `image/jpeg`
    #[serde(rename = "image/jpeg")]
    Jpeg,
    /// `image/png`
    #[serde(rename = "image/png")]
    Png,
    /// `image/webp`
    #[serde(rename = "image/webp")]
    Webp,
    /// `image/gif`
    #[serde(rename = "image/gif")]
    Gif,
    /// `application/pdf`
    #[serde(rename = "application/pdf")]
    Pdf,
    /// A Word document (`.docx`).
    #[serde(rename = "application/vnd.openxmlformats-officedocument.wordprocessingml.document")]
    Docx,
    /// A PowerPoint presentation (`.pptx`).
    #[serde(rename = "application/vnd.openxmlformats-officedocument.presentationml.presentation")]
    Pptx,
    /// An Excel workbook (`.xlsx`).
    #[serde(rename = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")]
    Xlsx,
    /// `text/csv`
    #[serde(rename = "text/csv")]
    Csv,
    /// `application/zip`
    #[serde(rename = "application/zip")]
    Zip,
    /// `text/plain`
    #[serde(rename = "text/plain")]
    Text,
    /// An MPEG-4 video (`.mp4`).
    #[serde(rename = "video/mp4")]
    Mp4,
    /// A QuickTime movie (`.mov`).
    #[serde(rename = "video/quicktime")]
    Mov,
    /// A WebM video.
    #[serde(rename = "video/webm")]
    Webm,
    /// MPEG audio (`.mp3`).
    #[serde(rename = "audio/mpeg")]
    Mp3,
    /// MPEG-4 audio, AAC or ALAC (`.m4a`).
    #[serde(rename = "audio/mp4")]
    M4a,
    /// A WAVE file.
    #[serde(rename = "audio/wav")]
    Wav,
    /// Ogg audio: Vorbis, Opus or FLAC (`.ogg`, `.oga`, `.opus`).
    #[serde(rename = "audio/ogg")]
    Ogg,
    /// FLAC.
    #[serde(rename = "audio/flac")]
    Flac,
    /// A HEIC photo (HEVC in HEIF: iPhones, many Android phones).
    #[serde(rename = "image/heic")]
    Heic,
    /// A HEIF image (the generic name; HEVC-coded ones are read).
    #[serde(rename = "image/heif")]
    Heif,
    /// An AVIF image (AV1 in HEIF: Android phones, cameras, the web), still or animated.
    #[serde(rename = "image/avif")]
    Avif,
}

impl ContentType {
    /// Every type the service can check.
    pub const ALL: [ContentType; 22] = [
        Self::Jpeg,
        Self::Png,
        Self::Webp,
        Self::Gif,
        Self::Pdf,
        Self::Docx,
        Self::Pptx,
        Self::Xlsx,
        Self::Csv,
        Self::Zip,
        Self::Text,
        Self::Mp4,
        Self::Mov,
        Self::Webm,
        Self::Mp3,
        Self::M4a,
        Self::Wav,
        Self::Ogg,
        Self::Flac,
        Self::Heic,
        Self::Heif,
        Self::Avif,
    ];

    /// Other names clients send for these types (browsers and phones differ: Chrome names an
    /// `.m4a` `audio/x-m4a`, Firefox a `.wav` `audio/x-wav`, some Windows browsers an `.mp3`
    /// `audio/mp3`).
    const ALIASES: [(&'static str, ContentType); 11] = [
        ("audio/x-m4a", Self::M4a),
        ("audio/m4a", Self::M4a),
        ("audio/x-wav", Self::Wav),
        ("audio/wave", Self::Wav),
        ("audio/vnd.wave", Self::Wav),
        ("audio/mp3", Self::Mp3),
        ("audio/x-mp3", Self::Mp3),
        ("audio/mpeg3", Self::Mp3),
        ("audio/x-flac", Self::Flac),
        ("audio/opus", Self::Ogg),
        ("video/x-quicktime", Self::Mov),
    ];

    /// Parses a MIME type (case-insensitive, parameters such as `; charset=` ignored).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let essence = s
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|t| t.mime() == essence)
            .or_else(|| {
                Self::ALIASES
                    .into_iter()
                    .find(|(alias, _)| *alias == essence)
                    .map(|(_, t)| t)
            })
            .ok_or_else(|| ParseError(format!("unsupported content type {essence:?}")))
    }

    /// The MIME type.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Webp => "image/webp",
            Self::Gif => "image/gif",
            Self::Pdf => "application/pdf",
            Self::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            Self::Pptx => {
                "application/vnd.openxmlformats-officedocument.presentationml.presentation"
            }
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Self::Csv => "text/csv",
            Self::Zip => "application/zip",
            Self::Text => "text/plain",
            Self::Mp4 => "video/mp4",
            Self::Mov => "video/quicktime",
            Self::Webm => "video/webm",
            Self::Mp3 => "audio/mpeg",
            Self::M4a => "audio/mp4",
            Self::Wav => "audio/wav",
            Self::Ogg => "audio/ogg",
            Self::Flac => "audio/flac",
            Self::Heic => "image/heic",
            Self::Heif => "image/heif",
            Self::Avif => "image/avif",
        }
    }

    /// The `Content-Type` the file is stored and served with: text says its charset (validation
    /// accepts only UTF-8), so a browser never guesses one.
    pub fn served_mime(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Text => "text/plain; charset=utf-8",
            other => other.mime(),
        }
    }

    /// The file extension used in object keys.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Webp => "webp",
            Self::Gif => "gif",
            Self::Pdf => "pdf",
            Self::Docx => "docx",
            Self::Pptx => "pptx",
            Self::Xlsx => "xlsx",
            Self::Csv => "csv",
            Self::Zip => "zip",
            Self::Text => "txt",
            Self::Mp4 => "mp4",
            Self::Mov => "mov",
            Self::Webm => "webm",
            Self::Mp3 => "mp3",
            Self::M4a => "m4a",
            Self::Wav => "wav",
            Self::Ogg => "ogg",
            Self::Flac => "flac",
            Self::Heic => "heic",
            Self::Heif => "heif",
            Self::Avif => "avif",
        }
    }

    /// The type a file extension names (case-insensitive, `jpeg`/`jpe` included).
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext.to_ascii_lowercase().as_str() {
            "jpg" | "jpeg" | "jpe" => Some(Self::Jpeg),
            "png" => Some(Self::Png),
            "webp" => Some(Self::Webp),
            "gif" => Some(Self::Gif),
            "pdf" => Some(Self::Pdf),
            "docx" => Some(Self::Docx),
            "pptx" => Some(Self::Pptx),
            "xlsx" => Some(Self::Xlsx),
            "csv" => Some(Self::Csv),
            "zip" => Some(Self::Zip),
            "txt" | "text" => Some(Self::Text),
            "mp4" | "m4v" => Some(Self::Mp4),
            "mov" | "qt" => Some(Self::Mov),
            "webm" => Some(Self::Webm),
            "mp3" => Some(Self::Mp3),
            "m4a" => Some(Self::M4a),
            "wav" | "wave" => Some(Self::Wav),
            "ogg" | "oga" | "opus" => Some(Self::Ogg),
            "flac" => Some(Self::Flac),
            "heic" => Some(Self::Heic),
            "heif" | "hif" => Some(Self::Heif),
            "avif" => Some(Self::Avif),
            _ => None,
        }
    }

    /// The kind of media this type is.
    pub fn kind(self) -> MediaKind {
        match self {
            Self::Jpeg
            | Self::Png
            | Self::Webp
            | Self::Gif
            | Self::Heic
            | Self::Heif
            | Self::Avif => MediaKind::Image,
            Self::Pdf | Self::Docx | Self::Pptx => MediaKind::Document,
            Self::Xlsx | Self::Csv => MediaKind::Spreadsheet,
            Self::Zip => MediaKind::Archive,
            Self::Text => MediaKind::Text,
            Self::Mp4 | Self::Mov | Self::Webm => MediaKind::Video,
            Self::Mp3 | Self::M4a | Self::Wav | Self::Ogg | Self::Flac => MediaKind::Audio,
        }
    }

    /// The short format name reported in metadata (`jpeg`, `png`, `pdf`, `docx`, ...).
    pub fn format_name(self) -> &'static str {
        match self {
            Self::Jpeg => "jpeg",
            Self::Text => "text",
            other => other.extension(),
        }
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.mime())
    }
}

/// What sort of file a media item is; it decides how the file is checked and processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    /// A still or animated image: thumbnails, EXIF, placeholders.
    Image,
    /// A PDF (thumbnails of its first page), Word or PowerPoint document.
    Document,
    /// An Excel workbook or a CSV file.
    Spreadsheet,
    /// A ZIP archive.
    Archive,
    /// Plain UTF-8 text.
    Text,
    /// A movie: MP4, QuickTime or WebM (read from its container, never decoded).
    Video,
    /// Sound: MP3, M4A, WAV, Ogg or FLAC (likewise).
    Audio,
}

impl MediaKind {
    /// Every kind.
    pub const ALL: [MediaKind; 7] = [
        Self::Image,
        Self::Document,
        Self::Spreadsheet,
        Self::Archive,
        Self::Text,
        Self::Video,
        Self::Audio,
    ];

    /// The name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Document => "document",
            Self::Spreadsheet => "spreadsheet",
            Self::Archive => "archive",
            Self::Text => "text",
            Self::Video => "video",
            Self::Audio => "audio",
        }
    }

    /// True for video and audio: files of up to gigabytes, read by ranges and streamed, never
    /// held whole in memory.
    pub fn is_streamed(self) -> bool {
        matches!(self, Self::Video | Self::Audio)
    }

    /// Parses a kind's name.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| ParseError(format!("unknown kind {s:?}")))
    }

    /// The content types of this kind.
    pub fn content_types(self) -> Vec<ContentType> {
        ContentType::ALL
            .into_iter()
            .filter(|t| t.kind() == self)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_names_itself_the_same_way_everywhere() {
        for t in ContentType::ALL {
            assert_eq!(ContentType::parse(t.mime()), Ok(t));
            assert_eq!(ContentType::from_extension(t.extension()), Some(t));
            assert_eq!(
                serde_json::to_value(t).ok(),
                Some(serde_json::Value::from(t.mime()))
            );
            assert!(t.kind().content_types().contains(&t));
            assert!(t.served_mime().starts_with(t.mime()));
        }
        assert_eq!(ContentType::Csv.served_mime(), "text/csv; charset=utf-8");
        assert_eq!(MediaKind::Archive.content_types(), [ContentType::Zip]);
        for (alias, t) in ContentType::ALIASES {
            assert_eq!(ContentType::parse(alias), Ok(t));
            assert_ne!(alias, t.mime());
        }
        assert_eq!(ContentType::parse("Audio/X-M4A"), Ok(ContentType::M4a));
        assert_eq!(
            MediaKind::Video.content_types(),
            [ContentType::Mp4, ContentType::Mov, ContentType::Webm]
        );
        assert_eq!(
            MediaKind::Spreadsheet.content_types(),
            [ContentType::Xlsx, ContentType::Csv]
        );
    }
}
