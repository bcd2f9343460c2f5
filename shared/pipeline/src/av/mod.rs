//! Video and audio containers: what a file is and what it holds (duration, dimensions, codecs,
//! frame rate, bit rate, sample rate, channels), read from the container without decoding any
//! media, and through ranged reads: a file of gigabytes is never read whole. MP4, MOV and M4A
//! (ISO base media), WebM (Matroska's EBML), MP3, WAV, Ogg (Vorbis, Opus, FLAC) and FLAC.
//!
//! Every parser is bounded: it reads at most [`MAX_PROBE_BYTES`] in all and visits a bounded
//! number of boxes, elements, chunks or pages, so no file can make it loop or allocate without
//! bound. A container that does not parse is [`AvError::Corrupt`].

mod audio;
mod check;
mod ebml;
mod isobmff;

use std::fmt;

/// Most bytes a probe reads of one file, all reads together (a movie's `moov` can be large: an
/// hour of video indexes a few megabytes).
pub const MAX_PROBE_BYTES: u64 = 64 * 1024 * 1024;

/// The containers recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// MPEG-4 (ISO base media, `ftyp` with an MP4 brand).
    Mp4,
    /// QuickTime (`ftyp qt  `, or a classic movie without `ftyp`).
    Mov,
    /// MPEG-4 audio (`ftyp M4A `/`M4B `).
    M4a,
    /// WebM (EBML with doctype `webm`).
    WebM,
    /// Matroska other than WebM (doctype `matroska`).
    Matroska,
    /// MPEG audio (MP3), possibly after an ID3v2 tag.
    Mp3,
    /// RIFF WAVE.
    Wav,
    /// Ogg.
    Ogg,
    /// Native FLAC.
    Flac,
}

impl Container {
    /// Its usual MIME type.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Mp4 => "video/mp4",
            Self::Mov => "video/quicktime",
            Self::M4a => "audio/mp4",
            Self::WebM => "video/webm",
            Self::Matroska => "video/x-matroska",
            Self::Mp3 => "audio/mpeg",
            Self::Wav => "audio/wav",
            Self::Ogg => "audio/ogg",
            Self::Flac => "audio/flac",
        }
    }
}

/// What the container says about the media it holds (each field as it applies).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AvInfo {
    /// The container, if recognised.
    pub container: Option<Container>,
    /// Playing time in seconds.
    pub duration_seconds: Option<f64>,
    /// Displayed width of the first video track.
    pub width: Option<u32>,
    /// Displayed height of the first video track.
    pub height: Option<u32>,
    /// The first video track's codec (`avc1`, `hvc1`, `av01`, `V_VP9`, ...).
    pub video_codec: Option<String>,
    /// The first audio track's codec (`mp4a`, `A_OPUS`, `mp3`, `pcm`, `vorbis`, `flac`, ...).
    pub audio_codec: Option<String>,
    /// Video frames per second.
    pub frame_rate: Option<f64>,
    /// Bits per second, over the whole file.
    pub bit_rate: Option<u64>,
    /// Audio samples per second.
    pub sample_rate: Option<u32>,
    /// Audio channels.
    pub channels: Option<u16>,
}

impl AvInfo {
    /// True when the file holds a video track.
    pub fn has_video(&self) -> bool {
        self.video_codec.is_some()
    }

    /// Fills the overall bit rate from the file size and duration, when the container gave none.
    fn finish(mut self, size: u64) -> Self {
        if self.bit_rate.is_none()
            && let Some(d) = self.duration_seconds.filter(|d| *d > 0.0 && d.is_finite())
        {
            self.bit_rate = Some((size as f64 * 8.0 / d).round() as u64);
        }
        self
    }
}

/// Why a probe failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AvError {
    /// Not a container this module knows.
    Unrecognised,
    /// A recognised container whose structure does not parse (truncated, sizes that do not add
    /// up, missing required parts).
    Corrupt(String),
    /// The source could not be read.
    Read(String),
}

impl fmt::Display for AvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unrecognised => f.write_str("not a video or audio container this service reads"),
            Self::Corrupt(m) => write!(f, "the container does not parse: {m}"),
            Self::Read(m) => write!(f, "the file could not be read: {m}"),
        }
    }
}

impl std::error::Error for AvError {}

pub(crate) fn corrupt(message: impl Into<String>) -> AvError {
    AvError::Corrupt(message.into())
}

pub use check::check;
pub use media_core::ports::RangeSource;

/// A file in memory.
#[derive(Debug, Clone, Copy)]
pub struct SliceSource<'a>(pub &'a [u8]);

impl RangeSource for SliceSource<'_> {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_at(&mut self, offset: u64, len: usize) -> Result<Vec<u8>, String> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.0.len());
        let end = start.saturating_add(len).min(self.0.len());
        Ok(self.0[start..end].to_vec())
    }
}

/// A source with a read budget: every parser reads through this, so no file makes it read more
/// than [`MAX_PROBE_BYTES`].
pub(crate) struct Reader<'a> {
    source: &'a mut dyn RangeSource,
    size: u64,
    read: u64,
}

impl<'a> Reader<'a> {
    fn new(source: &'a mut dyn RangeSource) -> Self {
        let size = source.size();
        Self {
            source,
            size,
            read: 0,
        }
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Exactly `len` bytes at `offset`, or `Corrupt` when the file ends first.
    pub(crate) fn exact(&mut self, offset: u64, len: usize) -> Result<Vec<u8>, AvError> {
        let bytes = self.upto(offset, len)?;
        if bytes.len() < len {
            return Err(corrupt(format!(
                "the file ends at {} bytes, within a structure at {offset}",
                self.size
            )));
        }
        Ok(bytes)
    }

    /// Up to `len` bytes at `offset` (fewer at the end of the file).
    pub(crate) fn upto(&mut self, offset: u64, len: usize) -> Result<Vec<u8>, AvError> {
        let len = len.min(usize::try_from(self.size.saturating_sub(offset)).unwrap_or(usize::MAX));
        self.read = self.read.saturating_add(len as u64);
        if self.read > MAX_PROBE_BYTES {
            return Err(corrupt(format!(
                "its structure takes more than {MAX_PROBE_BYTES} bytes to read"
            )));
        }
        self.source.read_at(offset, len).map_err(AvError::Read)
    }
}

/// Whether a file of this container (holding video or not) is what `declared` (a MIME type) says:
/// the ISO base media family for `video/mp4` and `video/quicktime` with a video track, and for
/// `audio/mp4` without one; WebM (not other Matroska) for `video/webm`; each audio format for its
/// own type.
pub fn matches_declared(declared: &str, container: Container, has_video: bool) -> bool {
    let iso = matches!(container, Container::Mp4 | Container::Mov | Container::M4a);
    match declared {
        "video/mp4" | "video/quicktime" => iso && has_video,
        "audio/mp4" | "audio/x-m4a" => iso && !has_video,
        "video/webm" => container == Container::WebM,
        "audio/mpeg" => container == Container::Mp3,
        "audio/wav" | "audio/x-wav" | "audio/vnd.wave" => container == Container::Wav,
        "audio/ogg" => container == Container::Ogg,
        "audio/flac" => container == Container::Flac,
        _ => false,
    }
}

/// What the first bytes say the file is.
pub fn sniff(head: &[u8]) -> Option<Container> {
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        return Some(isobmff::brand_container(&head[8..12]));
    }
    if head.len() >= 8 && matches!(&head[4..8], b"moov" | b"mdat" | b"wide" | b"free" | b"skip") {
        // A classic QuickTime movie starts with one of its atoms, no `ftyp`.
        return Some(Container::Mov);
    }
    if head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return Some(ebml::doc_container(head));
    }
    if head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WAVE" {
        return Some(Container::Wav);
    }
    if head.starts_with(b"OggS") {
        return Some(Container::Ogg);
    }
    if head.starts_with(b"fLaC") {
        return Some(Container::Flac);
    }
    if head.starts_with(b"ID3") {
        // An ID3v2 tag leads MP3 files, and sometimes FLAC ones.
        return Some(audio::after_id3(head).unwrap_or(Container::Mp3));
    }
    audio::mpeg_frame_at(head, 0).map(|_| Container::Mp3)
}

/// Reads what the container holds. The first bytes decide the parser.
pub fn probe(source: &mut dyn RangeSource) -> Result<AvInfo, AvError> {
    let mut reader = Reader::new(source);
    let size = reader.size();
    let head = reader.upto(0, 64)?;
    let container = sniff(&head).ok_or(AvError::Unrecognised)?;
    let info = match container {
        Container::Mp4 | Container::Mov | Container::M4a => isobmff::probe(&mut reader)?,
        Container::WebM | Container::Matroska => ebml::probe(&mut reader, container)?,
        Container::Mp3 => audio::mp3(&mut reader)?,
        Container::Wav => audio::wav(&mut reader)?,
        Container::Ogg => audio::ogg(&mut reader)?,
        Container::Flac => audio::flac(&mut reader)?,
    };
    Ok(AvInfo {
        container: Some(container),
        ..info
    }
    .finish(size))
}

/// Big-endian integer of up to eight bytes.
pub(crate) fn be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b))
}

/// Little-endian integer of up to eight bytes.
pub(crate) fn le(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rev()
        .fold(0u64, |n, b| (n << 8) | u64::from(*b))
}
