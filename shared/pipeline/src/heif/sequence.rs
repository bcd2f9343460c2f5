//! Image sequences (animated AVIF, brand `avis`): the frames are the samples of a `pict` track in
//! `moov`. Only what the pipeline needs is read: the number of frames (for `MAX_IMAGE_FRAMES`),
//! the size the sample entry declares (checked before anything is decoded), and the first
//! frame's data, which is what the thumbnails show.

use heifer::heifer_isobmff::BoxIter;

/// The first track of AV1 frames of a file.
pub(super) struct Sequence {
    /// Its frame count.
    pub frames: u32,
    /// The size its sample entry declares.
    pub width: u32,
    pub height: u32,
    /// The first frame: the sample entry's configuration OBUs (the sequence header), then the
    /// first sample.
    pub first: Vec<u8>,
}

/// Most boxes visited inside `moov`.
const MAX_BOXES: usize = 4096;

/// The file's first AV1 image sequence, `None` when it has no `moov`.
pub(super) fn read(bytes: &[u8]) -> Result<Option<Sequence>, String> {
    let Some(moov) = child(bytes, b"moov")? else {
        return Ok(None);
    };
    let mut visited = 0;
    for trak in BoxIter::new(moov) {
        let trak = trak.map_err(|e| e.to_string())?;
        visited += 1;
        if visited > MAX_BOXES {
            return Err("too many boxes in moov".into());
        }
        if trak.header.box_type.0 != *b"trak" {
            continue;
        }
        let mdia = required(trak.content, b"mdia")?;
        let hdlr = required(mdia, b"hdlr")?;
        if hdlr.get(8..12) != Some(b"pict".as_slice()) {
            continue;
        }
        let stbl = required(required(mdia, b"minf")?, b"stbl")?;
        if let Some(sequence) = track(bytes, stbl)? {
            return Ok(Some(sequence));
        }
    }
    Err("the image sequence has no AV1 track".into())
}

/// The sequence of one track's sample table, when its first sample entry is `av01`.
fn track(file: &[u8], stbl: &[u8]) -> Result<Option<Sequence>, String> {
    // stsd: version and flags, entry count, then the entries.
    let stsd = required(stbl, b"stsd")?;
    let Some(entry) = BoxIter::new(stsd.get(8..).ok_or("a short stsd")?).next() else {
        return Err("an empty stsd".into());
    };
    let entry = entry.map_err(|e| e.to_string())?;
    if entry.header.box_type.0 != *b"av01" {
        return Ok(None);
    }
    // A visual sample entry: 24 bytes, the width and height, then 50 more before its boxes.
    let content = entry.content;
    let (width, height) = (u16_at(content, 24)?, u16_at(content, 26)?);
    let config = child(
        content.get(78..).ok_or("a short av01 sample entry")?,
        b"av1C",
    )?
    .ok_or("the AV1 sample entry has no av1C")?;
    // av1C: four bytes of fields, then the configuration OBUs.
    let config_obus = config.get(4..).ok_or("a short av1C")?;

    // stsz: version and flags, a size for all samples (0: each has its own), the count.
    let stsz = required(stbl, b"stsz")?;
    let (all, frames) = (u32_at(stsz, 4)?, u32_at(stsz, 8)?);
    if frames == 0 {
        return Err("the image sequence has no frames".into());
    }
    let first_size = if all != 0 { all } else { u32_at(stsz, 12)? };
    // The first sample starts the first chunk: stco (32-bit offsets) or co64.
    let offset = match child(stbl, b"stco")? {
        Some(stco) => u64::from(u32_at(stco, 8)?),
        None => {
            let co64 = required(stbl, b"co64")?;
            (u64::from(u32_at(co64, 8)?) << 32) | u64::from(u32_at(co64, 12)?)
        }
    };
    let sample = usize::try_from(offset)
        .ok()
        .and_then(|start| file.get(start..start.checked_add(first_size as usize)?))
        .ok_or("the first frame lies outside the file")?;
    let mut first = Vec::with_capacity(config_obus.len() + sample.len());
    first.extend_from_slice(config_obus);
    first.extend_from_slice(sample);
    Ok(Some(Sequence {
        frames,
        width: u32::from(width),
        height: u32::from(height),
        first,
    }))
}

/// The content of the first `kind` box of `region`, if any.
fn child<'a>(region: &'a [u8], kind: &[u8; 4]) -> Result<Option<&'a [u8]>, String> {
    for (i, b) in BoxIter::new(region).enumerate() {
        let b = b.map_err(|e| e.to_string())?;
        if i >= MAX_BOXES {
            return Err("too many boxes".into());
        }
        if b.header.box_type.0 == *kind {
            return Ok(Some(b.content));
        }
    }
    Ok(None)
}

fn required<'a>(region: &'a [u8], kind: &[u8; 4]) -> Result<&'a [u8], String> {
    child(region, kind)?.ok_or_else(|| format!("no {} box", String::from_utf8_lossy(kind)))
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, String> {
    b.get(at..at + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or_else(|| "a short box".into())
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, String> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| "a short box".into())
}
