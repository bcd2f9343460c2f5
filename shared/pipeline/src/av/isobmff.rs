//! ISO base media files (MP4, MOV, M4A): the top-level boxes are walked by their headers alone
//! (the media data, `mdat`, is skipped by its size, wherever it is), then the `moov` box is read
//! whole and its tracks parsed: `mvhd`, and per track `tkhd`, `mdhd`, `hdlr`, `stsd`, `stts`.

use super::{AvError, AvInfo, Container, Reader, be, corrupt};

/// Most top-level boxes walked.
const MAX_TOP_BOXES: usize = 4096;
/// Most boxes visited inside `moov`.
const MAX_MOOV_BOXES: usize = 65_536;
/// Largest `moov` read.
const MAX_MOOV_BYTES: u64 = 48 * 1024 * 1024;

/// The container a `ftyp` major brand names.
pub(super) fn brand_container(brand: &[u8]) -> Container {
    match brand {
        b"qt  " => Container::Mov,
        b"M4A " | b"M4B " | b"M4P " => Container::M4a,
        _ => Container::Mp4,
    }
}

/// One box: its type, where its payload starts, and its payload's length.
#[derive(Debug, Clone, Copy)]
struct BoxHeader {
    kind: [u8; 4],
    payload: u64,
    len: u64,
}

/// The header of the box at `offset` of a region of `end` bytes, read by `read(offset, len)`.
fn header(
    read: &mut dyn FnMut(u64, usize) -> Result<Vec<u8>, AvError>,
    offset: u64,
    end: u64,
) -> Result<BoxHeader, AvError> {
    let h = read(offset, 8)?;
    let mut size = be(&h[0..4]);
    let kind = [h[4], h[5], h[6], h[7]];
    let mut header_len = 8;
    if size == 1 {
        size = be(&read(offset + 8, 8)?);
        header_len = 16;
    } else if size == 0 {
        // To the end of the file (or of the enclosing box).
        size = end - offset;
    }
    if size < header_len || offset.saturating_add(size) > end {
        return Err(corrupt(format!(
            "box {:?} at {offset} claims {size} bytes; {} are left",
            String::from_utf8_lossy(&kind),
            end - offset
        )));
    }
    Ok(BoxHeader {
        kind,
        payload: offset + header_len,
        len: size - header_len,
    })
}

pub(super) fn probe(reader: &mut Reader<'_>) -> Result<AvInfo, AvError> {
    let size = reader.size();
    let mut offset = 0;
    let mut moov = None;
    for _ in 0..MAX_TOP_BOXES {
        if offset >= size {
            break;
        }
        if size - offset < 8 {
            return Err(corrupt("trailing bytes after the last box"));
        }
        let b = header(&mut |o, l| reader.exact(o, l), offset, size)?;
        if &b.kind == b"moov" {
            moov = Some(b);
            break;
        }
        offset = b.payload + b.len;
    }
    let moov = moov.ok_or_else(|| corrupt("no moov box: the movie has no index"))?;
    if moov.len > MAX_MOOV_BYTES {
        return Err(corrupt(format!("a moov box of {} bytes", moov.len)));
    }
    let bytes = reader.exact(
        moov.payload,
        usize::try_from(moov.len).unwrap_or(usize::MAX),
    )?;
    parse_moov(&bytes)
}

/// A child box: its type and its payload.
type Child<'a> = ([u8; 4], &'a [u8]);

/// The children of `region` (a box's payload), each as (type, payload bytes).
fn children<'a>(region: &'a [u8], budget: &mut usize) -> Result<Vec<Child<'a>>, AvError> {
    let end = region.len() as u64;
    let mut read = |o: u64, l: usize| -> Result<Vec<u8>, AvError> {
        let start = usize::try_from(o).unwrap_or(usize::MAX);
        region
            .get(start..start.saturating_add(l))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| corrupt("a box header runs past its parent"))
    };
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < end {
        if *budget == 0 {
            return Err(corrupt("too many boxes"));
        }
        *budget -= 1;
        if end - offset < 8 {
            // Some writers pad a box with a few zero bytes: tolerated when they are zeros.
            if region[offset as usize..].iter().all(|b| *b == 0) {
                break;
            }
            return Err(corrupt("trailing bytes in a box"));
        }
        let b = header(&mut read, offset, end)?;
        let start = b.payload as usize;
        out.push((b.kind, &region[start..start + b.len as usize]));
        offset = b.payload + b.len;
    }
    Ok(out)
}

fn child<'a>(list: &[Child<'a>], kind: &[u8; 4]) -> Option<&'a [u8]> {
    list.iter().find(|(k, _)| k == kind).map(|(_, p)| *p)
}

/// A full box's version, and its payload after version and flags.
fn full(payload: &[u8]) -> Result<(u8, &[u8]), AvError> {
    if payload.len() < 4 {
        return Err(corrupt("a full box without its version"));
    }
    Ok((payload[0], &payload[4..]))
}

/// (timescale, duration) of an `mvhd` or `mdhd`.
fn timescale_duration(payload: &[u8]) -> Result<(u64, u64), AvError> {
    let (version, rest) = full(payload)?;
    let (ts, dur) = if version == 1 {
        (rest.get(16..20), rest.get(20..28))
    } else {
        (rest.get(8..12), rest.get(12..16))
    };
    match (ts, dur) {
        (Some(ts), Some(dur)) => {
            let duration = be(dur);
            // All ones means "unknown".
            let unknown = duration == u64::from(u32::MAX) || duration == u64::MAX;
            Ok((be(ts), if unknown { 0 } else { duration }))
        }
        _ => Err(corrupt("a movie or media header is too short")),
    }
}

fn parse_moov(moov: &[u8]) -> Result<AvInfo, AvError> {
    let mut budget = MAX_MOOV_BOXES;
    let top = children(moov, &mut budget)?;
    let mvhd = child(&top, b"mvhd").ok_or_else(|| corrupt("no mvhd in moov"))?;
    let (timescale, duration) = timescale_duration(mvhd)?;
    let mut info = AvInfo::default();
    if timescale > 0 && duration > 0 {
        info.duration_seconds = Some(duration as f64 / timescale as f64);
    }
    for (_, trak) in top.iter().filter(|(k, _)| k == b"trak") {
        track(trak, &mut info, &mut budget)?;
    }
    if info.video_codec.is_none() && info.audio_codec.is_none() {
        return Err(corrupt("no audio or video track"));
    }
    Ok(info)
}

fn track(trak: &[u8], info: &mut AvInfo, budget: &mut usize) -> Result<(), AvError> {
    let boxes = children(trak, budget)?;
    let Some(mdia) = child(&boxes, b"mdia") else {
        return Ok(());
    };
    let mdia = children(mdia, budget)?;
    let handler = child(&mdia, b"hdlr")
        .and_then(|h| h.get(8..12))
        .ok_or_else(|| corrupt("a track without its handler"))?;
    let (timescale, _) = child(&mdia, b"mdhd")
        .map(timescale_duration)
        .transpose()?
        .unwrap_or((0, 0));
    let minf = child(&mdia, b"minf")
        .map(|m| children(m, budget))
        .transpose()?
        .unwrap_or_default();
    let stbl = child(&minf, b"stbl")
        .map(|s| children(s, budget))
        .transpose()?
        .unwrap_or_default();
    let entry = child(&stbl, b"stsd")
        .and_then(|s| s.get(8..))
        .unwrap_or_default();
    // The first sample entry: [size][format][6 reserved][2 data reference index] then its fields.
    let format = entry
        .get(4..8)
        .map(|f| String::from_utf8_lossy(f).trim().to_owned());
    match handler {
        b"vide" if info.video_codec.is_none() => {
            info.video_codec = format;
            // The displayed size: tkhd's width and height (16.16 fixed point), else the entry's.
            let tkhd = child(&boxes, b"tkhd").map(full).transpose()?;
            let (w, h) = match tkhd {
                Some((_, rest)) if rest.len() >= 44 => {
                    let n = rest.len();
                    let (w, h) = (be(&rest[n - 8..n - 4]) >> 16, be(&rest[n - 4..]) >> 16);
                    // The display matrix [a b u; c d v; x y w] before them: a quarter turn
                    // (a = d = 0) shows the track with its sides swapped.
                    let matrix = &rest[n - 44..n - 8];
                    let quarter_turn = be(&matrix[0..4]) == 0 && be(&matrix[16..20]) == 0;
                    if quarter_turn { (h, w) } else { (w, h) }
                }
                _ => (0, 0),
            };
            let (w, h) = if w > 0 && h > 0 {
                (w, h)
            } else {
                entry
                    .get(32..36)
                    .map(|d| (be(&d[0..2]), be(&d[2..4])))
                    .unwrap_or((0, 0))
            };
            info.width = u32::try_from(w).ok().filter(|w| *w > 0);
            info.height = u32::try_from(h).ok().filter(|h| *h > 0);
            if let Some(stts) = child(&stbl, b"stts") {
                info.frame_rate = frame_rate(stts, timescale)?;
            }
        }
        b"soun" if info.audio_codec.is_none() => {
            info.audio_codec = format;
            // Audio sample entry: after the 16 bytes of header and version fields,
            // [2 channels][2 sample size][4 reserved][4 sample rate 16.16].
            if let Some(fields) = entry.get(24..36) {
                info.channels = u16::try_from(be(&fields[0..2])).ok().filter(|c| *c > 0);
                let rate = be(&fields[8..12]) >> 16;
                info.sample_rate = u32::try_from(rate).ok().filter(|r| *r > 0);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Frames per second from `stts` (sample counts and durations) and the media timescale.
fn frame_rate(stts: &[u8], timescale: u64) -> Result<Option<f64>, AvError> {
    let (_, rest) = full(stts)?;
    let count = rest.get(0..4).map(be).unwrap_or(0);
    let entries = rest.get(4..).unwrap_or_default();
    if (entries.len() as u64) < count.saturating_mul(8) {
        return Err(corrupt("stts lists more entries than it holds"));
    }
    let (mut samples, mut ticks) = (0u64, 0u64);
    for e in entries.chunks_exact(8).take(count as usize) {
        let n = be(&e[0..4]);
        samples = samples.saturating_add(n);
        ticks = ticks.saturating_add(n.saturating_mul(be(&e[4..8])));
    }
    Ok((timescale > 0 && ticks > 0).then(|| samples as f64 * timescale as f64 / ticks as f64))
}
