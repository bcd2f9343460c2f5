//! A walk over a file's container structure (JPEG segments, PNG chunks, RIFF chunks, GIF blocks)
//! before anything is decoded: how many bytes of metadata it carries and how many frames it has,
//! so that both are bounded before a decoder sees them. Every loop advances by at least one byte,
//! so a walk ends within the file's length.

use media_core::domain::ContentType;

/// What the walk found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Structure {
    /// Bytes of embedded metadata: EXIF, XMP, ICC, comments, text chunks.
    pub metadata_bytes: u64,
    /// Frames (1 for a still image).
    pub frames: u32,
    /// A JPEG with an Adobe APP14 segment: its CMYK samples are stored inverted.
    pub adobe: bool,
}

/// The walk failed: the container itself is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// Walks the container of a file whose type was already sniffed.
pub fn walk(bytes: &[u8], kind: ContentType) -> Result<Structure, Malformed> {
    match kind {
        ContentType::Jpeg => jpeg(bytes),
        ContentType::Png => png(bytes),
        ContentType::Webp => webp(bytes),
        ContentType::Gif => gif(bytes),
        // Only the four raster types are sniffed as images and reach the image pipeline.
        _ => Err(Malformed("not an image")),
    }
}

fn be16(b: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
    ])))
}

fn be32(b: &[u8], at: usize) -> Option<usize> {
    let s = b.get(at..at + 4)?;
    usize::try_from(u32::from_be_bytes([s[0], s[1], s[2], s[3]])).ok()
}

fn le32(b: &[u8], at: usize) -> Option<usize> {
    let s = b.get(at..at + 4)?;
    usize::try_from(u32::from_le_bytes([s[0], s[1], s[2], s[3]])).ok()
}

/// Segments from SOI to the first scan. Pixel data follows SOS; nothing there is metadata.
fn jpeg(b: &[u8]) -> Result<Structure, Malformed> {
    let mut s = Structure {
        frames: 1,
        ..Structure::default()
    };
    jpeg_segments(b, |marker, payload| {
        if matches!(marker, 0xE0..=0xEF | 0xFE) {
            s.metadata_bytes += payload.len() as u64 + 2;
        }
        if marker == 0xEE && payload.starts_with(b"Adobe") {
            s.adobe = true;
        }
    })?;
    Ok(s)
}

/// Calls `visit(marker, payload)` for each segment of a JPEG's header, from SOI up to the first
/// scan (SOS), and fails where the header is malformed.
pub fn jpeg_segments(b: &[u8], mut visit: impl FnMut(u8, &[u8])) -> Result<(), Malformed> {
    let mut at = 2;
    loop {
        if b.get(at) != Some(&0xFF) {
            return Err(Malformed("a JPEG segment does not start with a marker"));
        }
        // Any number of 0xFF fill bytes may precede a marker.
        while b.get(at) == Some(&0xFF) {
            at += 1;
        }
        let marker = *b
            .get(at)
            .ok_or(Malformed("the JPEG ends inside its header"))?;
        at += 1;
        match marker {
            0xD8 | 0x01 | 0xD0..=0xD7 => continue,
            0xD9 => return Err(Malformed("the JPEG ends before any image data")),
            0xDA => return Ok(()),
            _ => {}
        }
        let len = be16(b, at).ok_or(Malformed("the JPEG ends inside its header"))?;
        if len < 2 || at + len > b.len() {
            return Err(Malformed("a JPEG segment runs past the end of the file"));
        }
        visit(marker, &b[at + 2..at + len]);
        at += len;
    }
}

/// Chunks up to IEND. Only the ancillary chunks that carry no pixels count as metadata.
fn png(b: &[u8]) -> Result<Structure, Malformed> {
    let mut s = Structure {
        frames: 1,
        ..Structure::default()
    };
    let mut at = 8;
    while at < b.len() {
        let len = be32(b, at).ok_or(Malformed("the PNG ends inside a chunk header"))?;
        let kind = b
            .get(at + 4..at + 8)
            .ok_or(Malformed("the PNG ends inside a chunk header"))?;
        let end = at
            .checked_add(12)
            .and_then(|v| v.checked_add(len))
            .ok_or(Malformed("a PNG chunk is impossibly long"))?;
        match kind {
            b"IHDR" | b"PLTE" | b"IDAT" | b"tRNS" | b"fcTL" | b"fdAT" | b"gAMA" | b"cHRM"
            | b"sRGB" | b"sBIT" | b"bKGD" | b"pHYs" | b"hIST" | b"cICP" => {}
            b"acTL" => {
                if let Some(n) = be32(b, at + 8) {
                    s.frames = u32::try_from(n).unwrap_or(u32::MAX).max(1);
                }
            }
            b"IEND" => return Ok(s),
            // A chunk that claims more bytes than the file has is damage, not metadata.
            _ if end > b.len() => {
                return Err(Malformed("a PNG chunk runs past the end of the file"));
            }
            _ => s.metadata_bytes += len as u64,
        }
        if end > b.len() {
            // Truncated image data: the decoder reports it as corrupt with the precise cause.
            return Ok(s);
        }
        at = end;
    }
    Ok(s)
}

/// RIFF chunks: `ANMF` are frames; `ICCP`, `EXIF`, `XMP ` and unknown chunks are metadata.
fn webp(b: &[u8]) -> Result<Structure, Malformed> {
    let mut s = Structure {
        frames: 0,
        ..Structure::default()
    };
    let mut at = 12;
    while at + 8 <= b.len() {
        let kind = &b[at..at + 4];
        let len = le32(b, at + 4).ok_or(Malformed("the WebP ends inside a chunk header"))?;
        match kind {
            b"VP8 " | b"VP8L" => s.frames = s.frames.max(1),
            b"ANMF" => s.frames = s.frames.saturating_add(1),
            b"VP8X" | b"ALPH" | b"ANIM" => {}
            _ if at + 8 + len > b.len() => {
                return Err(Malformed("a WebP chunk runs past the end of the file"));
            }
            _ => s.metadata_bytes += len as u64,
        }
        // Chunks are padded to an even length.
        at = at
            .checked_add(8)
            .and_then(|v| v.checked_add(len))
            .and_then(|v| v.checked_add(len & 1))
            .ok_or(Malformed("a WebP chunk is impossibly long"))?;
    }
    s.frames = s.frames.max(1);
    Ok(s)
}

/// Blocks after the logical screen descriptor: image descriptors are frames; comment and
/// application extensions are metadata.
fn gif(b: &[u8]) -> Result<Structure, Malformed> {
    let mut s = Structure::default();
    let truncated = Malformed("the GIF ends inside a block");
    let flags = *b.get(10).ok_or(truncated)?;
    let mut at = 13;
    if flags & 0x80 != 0 {
        at += 3 << ((flags & 0x07) + 1);
    }
    // Skips a chain of data sub-blocks; returns the position after the terminator.
    let sub_blocks = |mut at: usize, s: &mut Structure, counts: bool| -> Result<usize, Malformed> {
        loop {
            let n = usize::from(*b.get(at).ok_or(truncated)?);
            at += 1;
            if n == 0 {
                return Ok(at);
            }
            if counts {
                s.metadata_bytes += n as u64;
            }
            at += n;
        }
    };
    loop {
        match b.get(at) {
            // A GIF that simply stops after a complete block is common and harmless.
            None | Some(0x3B) => break,
            Some(0x2C) => {
                s.frames = s.frames.saturating_add(1);
                let local = *b.get(at + 9).ok_or(truncated)?;
                at += 10;
                if local & 0x80 != 0 {
                    at += 3 << ((local & 0x07) + 1);
                }
                at = sub_blocks(at + 1, &mut s, false)?;
            }
            Some(0x21) => {
                let label = *b.get(at + 1).ok_or(truncated)?;
                // Graphic control (0xF9) and plain text (0x01) are rendering, not metadata.
                let counts = matches!(label, 0xFE | 0xFF);
                at = sub_blocks(at + 2, &mut s, counts)?;
            }
            Some(_) => return Err(Malformed("the GIF has an unknown block")),
        }
    }
    if s.frames == 0 {
        return Err(Malformed("the GIF has no image"));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_metadata_is_summed_until_the_first_scan() {
        let mut f = vec![0xFF, 0xD8];
        f.extend([0xFF, 0xE1, 0x00, 0x06, b'E', b'x', b'i', b'f']);
        f.extend([0xFF, 0xEE, 0x00, 0x07, b'A', b'd', b'o', b'b', b'e']);
        f.extend([0xFF, 0xDB, 0x00, 0x03, 0x00]);
        f.extend([0xFF, 0xDA, 0x00, 0x02, 0xFF, 0xE1, 0xFF, 0xFF]);
        let s = walk(&f, ContentType::Jpeg).unwrap();
        assert_eq!((s.metadata_bytes, s.frames, s.adobe), (13, 1, true));
    }

    #[test]
    fn a_jpeg_segment_past_the_end_is_malformed() {
        let f = [0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF, 0x00];
        assert!(walk(&f, ContentType::Jpeg).is_err());
    }

    #[test]
    fn a_metadata_chunk_past_the_end_is_malformed_not_metadata() {
        // A PNG signature, an IHDR, and a tEXt chunk declaring 801471824 bytes in an 80-byte
        // file (the shape of the `broken.png` a tester sent: rejected as metadata_too_large).
        let mut f = b"\x89PNG\r\n\x1a\n".to_vec();
        f.extend(b"\0\0\0\x0dIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90\x77\x53\xde");
        f.extend(801_471_824_u32.to_be_bytes());
        f.extend(b"tEXtComment\0");
        f.resize(80, b'x');
        let e = walk(&f, ContentType::Png).unwrap_err();
        assert_eq!(e.0, "a PNG chunk runs past the end of the file");
        // The same for a RIFF chunk of a WebP.
        let mut w = b"RIFF\0\0\0\0WEBPVP8L\x05\0\0\0\x2f\0\0\0\0\0".to_vec();
        w.extend(b"EXIF");
        w.extend(801_471_824_u32.to_le_bytes());
        w.extend(b"Exif");
        assert!(walk(&w, ContentType::Webp).is_err());
    }

    #[test]
    fn gif_frames_are_counted_without_decoding() {
        // Header, 1x1 screen without a colour table, two 1x1 frames, trailer.
        let mut f = b"GIF89a\x01\0\x01\0\0\0\0".to_vec();
        for _ in 0..2 {
            f.extend(b"\x2C\0\0\0\0\x01\0\x01\0\0\x02\x02\x4C\x01\0");
        }
        f.extend(b"\x21\xFE\x03abc\0\x3B");
        let s = walk(&f, ContentType::Gif).unwrap();
        assert_eq!((s.frames, s.metadata_bytes), (2, 3));
        assert!(walk(&f[..20], ContentType::Gif).is_err());
    }
}
