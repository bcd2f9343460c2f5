//! WebM and Matroska (EBML): the header's doctype, then the segment's elements in order, read by
//! their headers; `Info` (timecode scale, duration) and `Tracks` (codec, size, sampling, channels,
//! frame duration) are read whole, and clusters, the media, are skipped by their sizes.

use super::{AvError, AvInfo, Container, Reader, be, corrupt};

const EBML: u64 = 0x1A45_DFA3;
const DOC_TYPE: u64 = 0x4282;
const SEGMENT: u64 = 0x1853_8067;
const INFO: u64 = 0x1549_A966;
const TIMECODE_SCALE: u64 = 0x2A_D7B1;
const DURATION: u64 = 0x4489;
const TRACKS: u64 = 0x1654_AE6B;
const TRACK_ENTRY: u64 = 0xAE;
const TRACK_TYPE: u64 = 0x83;
const CODEC_ID: u64 = 0x86;
const DEFAULT_DURATION: u64 = 0x23_E383;
const VIDEO: u64 = 0xE0;
const PIXEL_WIDTH: u64 = 0xB0;
const PIXEL_HEIGHT: u64 = 0xBA;
const DISPLAY_WIDTH: u64 = 0x54B0;
const DISPLAY_HEIGHT: u64 = 0x54BA;
const AUDIO: u64 = 0xE1;
const SAMPLING_FREQUENCY: u64 = 0xB5;
const CHANNELS: u64 = 0x9F;
const CLUSTER: u64 = 0x1F43_B675;

/// Most segment children walked.
const MAX_ELEMENTS: usize = 4096;
/// Largest `Info` or `Tracks` element read whole.
const MAX_MASTER_BYTES: u64 = 4 * 1024 * 1024;
/// Most elements visited inside one `Info` or `Tracks`.
const MAX_CHILDREN: usize = 16_384;

/// An element's id, and its data's start and length (`None`: unknown size, to its parent's end).
struct Element {
    id: u64,
    data: u64,
    len: Option<u64>,
}

/// A variable-length integer: (value, width). `marker` keeps the length marker (ids keep it).
fn vint(bytes: &[u8], marker: bool) -> Option<(u64, usize)> {
    let first = *bytes.first()?;
    let width = first.leading_zeros() as usize + 1;
    if width > 8 || bytes.len() < width {
        return None;
    }
    let mut value = if marker {
        u64::from(first)
    } else {
        u64::from(first) & (0xFF >> width)
    };
    for b in &bytes[1..width] {
        value = (value << 8) | u64::from(*b);
    }
    Some((value, width))
}

/// The element whose header starts `bytes` (at file offset `offset`).
fn element(bytes: &[u8], offset: u64) -> Result<Element, AvError> {
    let bad = || corrupt(format!("an EBML element header at {offset} does not parse"));
    let (id, id_len) = vint(bytes, true).ok_or_else(bad)?;
    if id_len > 4 {
        return Err(bad());
    }
    let (size, size_len) = vint(&bytes[id_len..], false).ok_or_else(bad)?;
    // All value bits set: unknown size.
    let unknown = size == (1u64 << (7 * size_len)) - 1;
    Ok(Element {
        id,
        data: offset + (id_len + size_len) as u64,
        len: (!unknown).then_some(size),
    })
}

/// The container the EBML header's doctype names (Matroska unless it says `webm`).
pub(super) fn doc_container(head: &[u8]) -> Container {
    let webm = (0..head.len().saturating_sub(2))
        .filter(|&i| head[i..].starts_with(&[0x42, 0x82]))
        .filter_map(|i| {
            let (len, width) = vint(&head[i + 2..], false)?;
            let start = i + 2 + width;
            head.get(start..start + usize::try_from(len).ok()?)
        })
        .any(|v| v.strip_suffix(b"\0").unwrap_or(v).starts_with(b"webm"));
    if webm {
        Container::WebM
    } else {
        Container::Matroska
    }
}

pub(super) fn probe(reader: &mut Reader<'_>, container: Container) -> Result<AvInfo, AvError> {
    let size = reader.size();
    let head = reader.upto(0, 12)?;
    let header = element(&head, 0)?;
    if header.id != EBML {
        return Err(corrupt("no EBML header"));
    }
    let header_len = header
        .len
        .ok_or_else(|| corrupt("an EBML header of unknown size"))?;
    let fields = reader.exact(
        header.data,
        usize::try_from(header_len.min(4096)).unwrap_or(0),
    )?;
    let doc_type = children(&fields, header.data)?
        .into_iter()
        .find(|(id, _)| *id == DOC_TYPE)
        .map(|(_, v)| String::from_utf8_lossy(v).trim_end_matches('\0').to_owned())
        .ok_or_else(|| corrupt("no doctype"))?;
    let expected = if container == Container::WebM {
        "webm"
    } else {
        "matroska"
    };
    if doc_type != expected {
        return Err(corrupt(format!("doctype {doc_type:?}")));
    }
    let offset = header.data + header_len;
    let segment = element(&reader.exact(offset, 12)?, offset)?;
    if segment.id != SEGMENT {
        return Err(corrupt("no segment after the EBML header"));
    }
    let end = segment.len.map_or(size, |l| segment.data.saturating_add(l));
    if end > size {
        return Err(corrupt("the segment runs past the end of the file"));
    }
    let mut info = AvInfo::default();
    let mut scale = 1_000_000u64;
    let mut duration = None;
    let mut tracks_seen = false;
    let mut at = segment.data;
    for _ in 0..MAX_ELEMENTS {
        if at >= end || (tracks_seen && duration.is_some()) {
            break;
        }
        let e = element(&reader.exact(at, 12.min((end - at) as usize))?, at)?;
        let len = match e.len {
            Some(l) if e.data.saturating_add(l) <= end => l,
            Some(_) => return Err(corrupt("an element runs past its segment")),
            // An unknown-size cluster: the media runs to the end; nothing we need follows.
            None if e.id == CLUSTER => break,
            None => return Err(corrupt("an element of unknown size")),
        };
        match e.id {
            INFO | TRACKS => {
                if len > MAX_MASTER_BYTES {
                    return Err(corrupt(format!("an Info or Tracks element of {len} bytes")));
                }
                let body = reader.exact(e.data, len as usize)?;
                if e.id == INFO {
                    for (id, v) in children(&body, e.data)? {
                        match id {
                            TIMECODE_SCALE => scale = be(v),
                            DURATION => duration = float(v),
                            _ => {}
                        }
                    }
                } else {
                    tracks(&body, e.data, &mut info)?;
                    tracks_seen = true;
                }
            }
            _ => {}
        }
        at = e.data + len;
    }
    if !tracks_seen {
        return Err(corrupt("no Tracks element before the media"));
    }
    if let Some(d) = duration.filter(|d| *d > 0.0 && d.is_finite()) {
        info.duration_seconds = Some(d * scale as f64 / 1e9);
    }
    if info.video_codec.is_none() && info.audio_codec.is_none() {
        return Err(corrupt("no audio or video track"));
    }
    Ok(info)
}

/// The direct children of a master element's body, as (id, data).
fn children(body: &[u8], offset: u64) -> Result<Vec<(u64, &[u8])>, AvError> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < body.len() {
        if out.len() >= MAX_CHILDREN {
            return Err(corrupt("too many elements"));
        }
        let e = element(&body[at..], offset + at as u64)?;
        let start = (e.data - offset) as usize;
        let len = e
            .len
            .ok_or_else(|| corrupt("a child element of unknown size"))?;
        let end = start
            .checked_add(usize::try_from(len).unwrap_or(usize::MAX))
            .filter(|end| *end <= body.len())
            .ok_or_else(|| corrupt("an element runs past its parent"))?;
        out.push((e.id, &body[start..end]));
        at = end;
    }
    Ok(out)
}

fn float(v: &[u8]) -> Option<f64> {
    match v.len() {
        4 => Some(f64::from(f32::from_bits(u32::try_from(be(v)).ok()?))),
        8 => Some(f64::from_bits(be(v))),
        _ => None,
    }
}

fn tracks(body: &[u8], offset: u64, info: &mut AvInfo) -> Result<(), AvError> {
    for (id, entry) in children(body, offset)? {
        if id != TRACK_ENTRY {
            continue;
        }
        let fields = children(entry, 0)?;
        let get = |want: u64| fields.iter().find(|(id, _)| *id == want).map(|(_, v)| *v);
        let codec =
            get(CODEC_ID).map(|v| String::from_utf8_lossy(v).trim_end_matches('\0').to_owned());
        match get(TRACK_TYPE).map(be) {
            Some(1) if info.video_codec.is_none() => {
                info.video_codec = codec;
                if let Some(video) = get(VIDEO) {
                    let v = children(video, 0)?;
                    let num = |want: u64| v.iter().find(|(id, _)| *id == want).map(|(_, x)| be(x));
                    let w = num(DISPLAY_WIDTH).or(num(PIXEL_WIDTH));
                    let h = num(DISPLAY_HEIGHT).or(num(PIXEL_HEIGHT));
                    info.width = w.and_then(|w| u32::try_from(w).ok()).filter(|w| *w > 0);
                    info.height = h.and_then(|h| u32::try_from(h).ok()).filter(|h| *h > 0);
                }
                // Nanoseconds per frame.
                info.frame_rate = get(DEFAULT_DURATION)
                    .map(be)
                    .filter(|d| *d > 0)
                    .map(|d| 1e9 / d as f64);
            }
            Some(2) if info.audio_codec.is_none() => {
                info.audio_codec = codec;
                if let Some(audio) = get(AUDIO) {
                    for (id, v) in children(audio, 0)? {
                        match id {
                            SAMPLING_FREQUENCY => {
                                info.sample_rate = float(v)
                                    .filter(|r| *r >= 1.0 && *r < 1e7)
                                    .map(|r| r.round() as u32);
                            }
                            CHANNELS => {
                                info.channels = u16::try_from(be(v)).ok().filter(|c| *c > 0)
                            }
                            _ => {}
                        }
                    }
                    // Matroska's default is mono, 8 kHz, when the element is absent.
                    info.channels = info.channels.or(Some(1));
                    info.sample_rate = info.sample_rate.or(Some(8000));
                }
            }
            _ => {}
        }
    }
    Ok(())
}
