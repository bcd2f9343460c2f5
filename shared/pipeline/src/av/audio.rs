//! Audio files: MP3 (MPEG audio frames, after an ID3v2 tag; duration from a Xing/Info or VBRI
//! header, else from the bit rate), WAV (RIFF chunks), Ogg (the first page's identification header
//! and the last page's granule position) and FLAC (`STREAMINFO`).

use super::{AvError, AvInfo, Container, Reader, be, corrupt, le};

/// Most RIFF chunks walked.
const MAX_CHUNKS: usize = 1024;
/// How much of the file's end is read for Ogg's last page.
const OGG_TAIL: u64 = 64 * 1024;
/// How far past an ID3v2 tag the first MPEG frame is looked for.
const MPEG_SEARCH: usize = 64 * 1024;

/// The size of an ID3v2 tag at the start of `head`, header and footer included.
fn id3_len(head: &[u8]) -> Option<u64> {
    if head.len() < 10 || !head.starts_with(b"ID3") {
        return None;
    }
    let size = head[6..10]
        .iter()
        .fold(0u64, |n, b| (n << 7) | u64::from(b & 0x7F));
    let footer = if head[5] & 0x10 != 0 { 10 } else { 0 };
    Some(10 + size + footer)
}

/// What follows an ID3v2 tag, when the head holds it: FLAC or MP3.
pub(super) fn after_id3(head: &[u8]) -> Option<Container> {
    let len = usize::try_from(id3_len(head)?).ok()?;
    let rest = head.get(len..)?;
    rest.starts_with(b"fLaC").then_some(Container::Flac)
}

/// An MPEG audio frame header at `at`: (version 1/2/25, layer 1-3, bit rate in kbit/s, sample
/// rate, channels, frame length in bytes).
pub(super) fn mpeg_frame_at(bytes: &[u8], at: usize) -> Option<(u8, u8, u32, u32, u16, usize)> {
    let h = bytes.get(at..at + 4)?;
    if h[0] != 0xFF || h[1] & 0xE0 != 0xE0 {
        return None;
    }
    let version = match (h[1] >> 3) & 3 {
        0 => 25,
        2 => 2,
        3 => 1,
        _ => return None,
    };
    let layer = match (h[1] >> 1) & 3 {
        1 => 3,
        2 => 2,
        3 => 1,
        _ => return None,
    };
    let bitrate_index = usize::from(h[2] >> 4);
    let rate_index = usize::from((h[2] >> 2) & 3);
    if bitrate_index == 0 || bitrate_index == 15 || rate_index == 3 {
        return None;
    }
    const V1: [[u32; 14]; 3] = [
        [
            32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448,
        ],
        [
            32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384,
        ],
        [
            32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
        ],
    ];
    const V2: [[u32; 14]; 2] = [
        [
            32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256,
        ],
        [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
    ];
    let kbps = if version == 1 {
        V1[usize::from(layer - 1)][bitrate_index - 1]
    } else {
        V2[usize::from(layer.min(2) - 1)][bitrate_index - 1]
    };
    let base = [44_100, 48_000, 32_000][rate_index];
    let rate = match version {
        1 => base,
        2 => base / 2,
        _ => base / 4,
    };
    let channels = if h[3] >> 6 == 3 { 1 } else { 2 };
    let padding = usize::from((h[2] >> 1) & 1);
    let len = match (layer, version) {
        (1, _) => (12 * kbps as usize * 1000 / rate as usize + padding) * 4,
        (3, 2 | 25) => 72 * kbps as usize * 1000 / rate as usize + padding,
        _ => 144 * kbps as usize * 1000 / rate as usize + padding,
    };
    Some((version, layer, kbps, rate, channels, len))
}

pub(super) fn mp3(reader: &mut Reader<'_>) -> Result<AvInfo, AvError> {
    let size = reader.size();
    let head = reader.upto(0, 10)?;
    let start = id3_len(&head).unwrap_or(0);
    let window = reader.upto(start, MPEG_SEARCH)?;
    // The first frame header that is followed by another one where its length says.
    let (at, frame) = (0..window.len().saturating_sub(4))
        .find_map(|i| {
            let f = mpeg_frame_at(&window, i)?;
            let next = i + f.5;
            (next + 4 > window.len() || mpeg_frame_at(&window, next).is_some()).then_some((i, f))
        })
        .ok_or_else(|| corrupt("no MPEG audio frame"))?;
    let (version, layer, kbps, rate, channels, len) = frame;
    let samples_per_frame: u64 = match (layer, version) {
        (1, _) => 384,
        (3, 2 | 25) => 576,
        _ => 1152,
    };
    let first = &window[at..(at + len).min(window.len())];
    // Xing/Info (VBR) after the side information, or VBRI at 36: the number of frames.
    let side = match (version, channels) {
        (1, 2) => 36,
        (1, _) | (_, 2) => 21,
        _ => 13,
    };
    let frames = [side, 36].iter().find_map(|&o| {
        let tag = first.get(o..o + 4)?;
        match tag {
            b"Xing" | b"Info" if first.get(o + 7).is_some_and(|f| f & 1 != 0) => {
                first.get(o + 8..o + 12).map(be)
            }
            b"VBRI" => first.get(o + 14..o + 18).map(be),
            _ => None,
        }
    });
    let audio_bytes = size.saturating_sub(start + at as u64);
    let duration = match frames.filter(|f| *f > 0) {
        Some(f) => f as f64 * samples_per_frame as f64 / f64::from(rate),
        None => audio_bytes as f64 * 8.0 / (f64::from(kbps) * 1000.0),
    };
    Ok(AvInfo {
        duration_seconds: Some(duration),
        audio_codec: Some(format!("mp{layer}")),
        sample_rate: Some(rate),
        channels: Some(channels),
        bit_rate: frames.is_none().then_some(u64::from(kbps) * 1000),
        ..AvInfo::default()
    })
}

pub(super) fn wav(reader: &mut Reader<'_>) -> Result<AvInfo, AvError> {
    let size = reader.size();
    let riff = reader.exact(0, 12)?;
    let end = (le(&riff[4..8]) + 8).min(size);
    let mut at = 12;
    let (mut format, mut data) = (None, None);
    for _ in 0..MAX_CHUNKS {
        if at + 8 > end || (format.is_some() && data.is_some()) {
            break;
        }
        let h = reader.exact(at, 8)?;
        let len = le(&h[4..8]);
        match &h[0..4] {
            b"fmt " => {
                if len < 16 {
                    return Err(corrupt("a WAVE fmt chunk under 16 bytes"));
                }
                format = Some(reader.exact(at + 8, 16)?);
            }
            // A data chunk may claim more than the file holds (streams written live).
            b"data" => data = Some(len.min(end.saturating_sub(at + 8))),
            _ => {}
        }
        at = at + 8 + len + (len & 1);
    }
    let fmt = format.ok_or_else(|| corrupt("no WAVE fmt chunk"))?;
    let data = data.ok_or_else(|| corrupt("no WAVE data chunk"))?;
    let tag = le(&fmt[0..2]);
    let channels = u16::try_from(le(&fmt[2..4])).unwrap_or(0);
    let rate = u32::try_from(le(&fmt[4..8])).unwrap_or(0);
    let byte_rate = le(&fmt[8..12]);
    if channels == 0 || rate == 0 || byte_rate == 0 {
        return Err(corrupt("a WAVE format with no channels or rate"));
    }
    Ok(AvInfo {
        duration_seconds: Some(data as f64 / byte_rate as f64),
        audio_codec: Some(
            match tag {
                1 => "pcm",
                3 => "pcm_float",
                6 => "alaw",
                7 => "ulaw",
                0xFFFE => "pcm_extensible",
                _ => "other",
            }
            .to_owned(),
        ),
        sample_rate: Some(rate),
        channels: Some(channels),
        bit_rate: Some(byte_rate * 8),
        ..AvInfo::default()
    })
}

pub(super) fn flac(reader: &mut Reader<'_>) -> Result<AvInfo, AvError> {
    let head = reader.upto(0, 10)?;
    let start = id3_len(&head).unwrap_or(0);
    let block = reader.exact(start, 4 + 4 + 34)?;
    if &block[0..4] != b"fLaC" || block[4] & 0x7F != 0 {
        return Err(corrupt("FLAC without STREAMINFO first"));
    }
    streaminfo(&block[8..42], "flac")
}

/// A FLAC `STREAMINFO` block's 34 bytes.
fn streaminfo(s: &[u8], codec: &str) -> Result<AvInfo, AvError> {
    let rate = u32::try_from(be(&s[10..13]) >> 4).unwrap_or(0);
    let channels = u16::from((s[12] >> 1) & 7) + 1;
    let samples = be(&s[13..18]) & 0xF_FFFF_FFFF;
    if rate == 0 {
        return Err(corrupt("a FLAC stream with a sample rate of 0"));
    }
    Ok(AvInfo {
        duration_seconds: (samples > 0).then(|| samples as f64 / f64::from(rate)),
        audio_codec: Some(codec.to_owned()),
        sample_rate: Some(rate),
        channels: Some(channels),
        ..AvInfo::default()
    })
}

pub(super) fn ogg(reader: &mut Reader<'_>) -> Result<AvInfo, AvError> {
    let size = reader.size();
    let page = reader.upto(0, 27 + 255 + 128)?;
    if page.len() < 27 || &page[0..4] != b"OggS" {
        return Err(corrupt("no Ogg page"));
    }
    let serial = &page[14..18];
    let segments = usize::from(page[26]);
    let packet = page
        .get(27 + segments..)
        .ok_or_else(|| corrupt("a truncated Ogg page"))?;
    let (mut info, rate, skip) = if packet.starts_with(b"\x01vorbis") && packet.len() >= 30 {
        let channels = u16::from(packet[11]);
        let rate = u32::try_from(le(&packet[12..16])).unwrap_or(0);
        let nominal = le(&packet[20..24]);
        let info = AvInfo {
            audio_codec: Some("vorbis".into()),
            sample_rate: Some(rate),
            channels: Some(channels),
            bit_rate: (nominal > 0 && nominal < u64::from(u32::MAX / 2)).then_some(nominal),
            ..AvInfo::default()
        };
        (info, u64::from(rate), 0)
    } else if packet.starts_with(b"OpusHead") && packet.len() >= 19 {
        let info = AvInfo {
            audio_codec: Some("opus".into()),
            sample_rate: u32::try_from(le(&packet[12..16])).ok().filter(|r| *r > 0),
            channels: Some(u16::from(packet[9])),
            ..AvInfo::default()
        };
        // Opus plays at 48 kHz whatever the input rate; the pre-skip is not played.
        (info, 48_000, le(&packet[10..12]))
    } else if packet.starts_with(b"\x7fFLAC") && packet.len() >= 17 + 34 {
        // "\x7fFLAC", version, header count, "fLaC", then STREAMINFO's header and its 34 bytes.
        let info = streaminfo(&packet[17..51], "flac")?;
        let rate = u64::from(info.sample_rate.unwrap_or(0));
        (
            AvInfo {
                duration_seconds: None,
                ..info
            },
            rate,
            0,
        )
    } else {
        return Err(corrupt("an Ogg stream of an unknown codec"));
    };
    if rate == 0 || info.channels == Some(0) {
        return Err(corrupt("an Ogg stream with no rate or channels"));
    }
    // The last page of this stream holds the position of its last sample.
    let tail_start = size.saturating_sub(OGG_TAIL);
    let tail = reader.upto(tail_start, OGG_TAIL as usize)?;
    let granule = (0..tail.len().saturating_sub(27))
        .rev()
        .filter(|&i| &tail[i..i + 4] == b"OggS" && &tail[i + 14..i + 18] == serial)
        .map(|i| le(&tail[i + 6..i + 14]))
        .find(|g| *g != u64::MAX);
    info.duration_seconds = granule
        .filter(|g| *g > skip)
        .map(|g| (g - skip) as f64 / rate as f64);
    Ok(info)
}
