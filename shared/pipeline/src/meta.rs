//! Finding the metadata blocks that the EXIF reader's container support misses: a WebP's `EXIF`
//! chunk in either of the forms writers use, and the XMP packet of a WebP or a PNG, whose
//! `tiff:Orientation` decides when there is no EXIF orientation.

use std::borrow::Cow;

/// Most bytes of a compressed XMP packet inflated (a PNG `iTXt` may be zlib-compressed).
const MAX_XMP_BYTES: usize = 1024 * 1024;

/// The TIFF structure of a WebP's `EXIF` chunk: the chunk as it is when it starts with the TIFF
/// header (`II*\0` or `MM\0*`, as the WebP container specification says), or without the
/// `Exif\0\0` header that JPEG's APP1 uses and that some writers (Pillow before 9, ...) copy.
pub fn webp_exif(bytes: &[u8]) -> Option<&[u8]> {
    let chunk = riff_chunk(bytes, b"EXIF")?;
    let tiff = chunk.strip_prefix(b"Exif\0\0").unwrap_or(chunk);
    (tiff.starts_with(b"II*\0") || tiff.starts_with(b"MM\0*")).then_some(tiff)
}

/// The orientation (1-8) an XMP packet of a WebP (`XMP ` chunk) or a PNG (`iTXt`
/// `XML:com.adobe.xmp`) gives as `tiff:Orientation`, as an attribute or an element.
pub fn xmp_orientation(bytes: &[u8]) -> Option<u8> {
    let packet = if bytes.starts_with(b"RIFF") {
        Cow::Borrowed(riff_chunk(bytes, b"XMP ")?)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        png_xmp(bytes)?
    } else {
        return None;
    };
    orientation_in(&String::from_utf8_lossy(&packet))
}

fn orientation_in(xmp: &str) -> Option<u8> {
    let at = xmp.find("tiff:Orientation")?;
    let rest = &xmp[at + "tiff:Orientation".len()..];
    // `tiff:Orientation="6"` or `<tiff:Orientation>6</tiff:Orientation>`.
    let value = rest
        .trim_start()
        .strip_prefix('=')
        .map(|r| r.trim_start().trim_start_matches(['"', '\'']))
        .or_else(|| rest.strip_prefix('>'))?;
    let digits: String = value
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    match digits.parse::<u8>() {
        Ok(o @ 1..=8) => Some(o),
        _ => None,
    }
}

/// The body of the first RIFF chunk of this type (after the 12-byte RIFF header).
fn riff_chunk<'a>(b: &'a [u8], fourcc: &[u8; 4]) -> Option<&'a [u8]> {
    let mut at: usize = 12;
    while at.checked_add(8)? <= b.len() {
        let len = u32::from_le_bytes(b.get(at + 4..at + 8)?.try_into().ok()?) as usize;
        let body = b.get(at + 8..at.checked_add(8)?.checked_add(len)?)?;
        if &b[at..at + 4] == fourcc {
            return Some(body);
        }
        at = at + 8 + len + (len & 1);
    }
    None
}

/// The XMP packet of a PNG: the text of its `iTXt` chunk with keyword `XML:com.adobe.xmp`,
/// inflated when compressed.
fn png_xmp(b: &[u8]) -> Option<Cow<'_, [u8]>> {
    let mut at: usize = 8;
    while at.checked_add(12)? <= b.len() {
        let len = u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize;
        let kind = b.get(at + 4..at + 8)?;
        let body = b.get(at + 8..at.checked_add(8)?.checked_add(len)?)?;
        if kind == b"IEND" {
            return None;
        }
        if kind == b"iTXt" && body.starts_with(b"XML:com.adobe.xmp\0") {
            let rest = &body[b"XML:com.adobe.xmp\0".len()..];
            let (&compressed, rest) = rest.split_first()?;
            let (_method, rest) = rest.split_first()?;
            // Language tag and translated keyword, each NUL-terminated, then the text.
            let rest = &rest[rest.iter().position(|&c| c == 0)? + 1..];
            let text = &rest[rest.iter().position(|&c| c == 0)? + 1..];
            return if compressed == 0 {
                Some(Cow::Borrowed(text))
            } else {
                inflate(text).map(Cow::Owned)
            };
        }
        at = at + 12 + len;
    }
    None
}

fn inflate(zlib: &[u8]) -> Option<Vec<u8>> {
    let mut out = vec![0; (zlib.len() * 8).clamp(4096, MAX_XMP_BYTES)];
    let mut inflater = libdeflater::Decompressor::new();
    loop {
        match inflater.zlib_decompress(zlib, &mut out) {
            Ok(n) => {
                out.truncate(n);
                return Some(out);
            }
            Err(libdeflater::DecompressionError::InsufficientSpace)
                if out.len() < MAX_XMP_BYTES =>
            {
                let grown = (out.len() * 4).min(MAX_XMP_BYTES);
                out.resize(grown, 0);
            }
            Err(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn riff(chunks: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
        let mut body = b"WEBP".to_vec();
        for (kind, data) in chunks {
            body.extend_from_slice(*kind);
            body.extend_from_slice(&(data.len() as u32).to_le_bytes());
            body.extend_from_slice(data);
            if data.len() % 2 == 1 {
                body.push(0);
            }
        }
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend(body);
        out
    }

    /// A TIFF structure with one IFD0 entry: Orientation (0x0112, SHORT) = `o`, little-endian.
    fn tiff(o: u16) -> Vec<u8> {
        let mut t = b"II*\0\x08\0\0\0\x01\0".to_vec();
        t.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0]);
        t.extend_from_slice(&o.to_le_bytes());
        t.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        t
    }

    #[test]
    fn xmp_orientation_is_read_as_an_attribute_or_an_element() {
        assert_eq!(
            orientation_in(r#"<rdf:Description tiff:Orientation="6"/>"#),
            Some(6)
        );
        assert_eq!(orientation_in("<x tiff:Orientation = '8'/>"), Some(8));
        assert_eq!(
            orientation_in("<tiff:Orientation>3</tiff:Orientation>"),
            Some(3)
        );
        for bad in [
            r#"tiff:Orientation="9""#,
            r#"tiff:Orientation="0""#,
            r#"tiff:Orientation="""#,
            "tiff:Orientation",
            "<tiff:Orientation>x</tiff:Orientation>",
            "",
        ] {
            assert_eq!(orientation_in(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_webp_exif_chunk_is_found_in_both_forms_and_nothing_else_is() {
        let bare = riff(&[(b"EXIF", &tiff(6))]);
        assert_eq!(webp_exif(&bare), Some(&tiff(6)[..]));
        let mut prefixed = b"Exif\0\0".to_vec();
        prefixed.extend(tiff(6));
        assert_eq!(
            webp_exif(&riff(&[(b"EXIF", &prefixed)])),
            Some(&tiff(6)[..])
        );
        assert_eq!(webp_exif(&riff(&[(b"EXIF", b"garbage")])), None);
        assert_eq!(webp_exif(&riff(&[(b"XMP ", &tiff(6))])), None);
        // Truncated anywhere: nothing found, no panic.
        for n in 0..bare.len() {
            let _ = webp_exif(&bare[..n]);
            let _ = xmp_orientation(&bare[..n]);
        }
    }

    #[test]
    fn exif_orientation_wins_over_xmp() {
        let xmp: &[u8] = br#"<x:xmpmeta><rdf:Description tiff:Orientation="3"/></x:xmpmeta>"#;
        let both = riff(&[(b"EXIF", &tiff(6)), (b"XMP ", xmp)]);
        assert_eq!(crate::exif::read_exif(&both).orientation, Some(6));
        let only_xmp = riff(&[(b"XMP ", xmp)]);
        assert_eq!(crate::exif::read_exif(&only_xmp).orientation, Some(3));
    }

    #[test]
    fn a_compressed_png_xmp_packet_is_inflated_within_its_cap() {
        let xmp = b"<tiff:Orientation>7</tiff:Orientation>";
        let mut c = libdeflater::Compressor::new(libdeflater::CompressionLvl::default());
        let mut z = vec![0; c.zlib_compress_bound(xmp.len())];
        let n = c.zlib_compress(xmp, &mut z).unwrap_or(0);
        z.truncate(n);
        let mut chunk = b"XML:com.adobe.xmp\0\x01\0\0\0".to_vec();
        chunk.extend(&z);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
        png.extend_from_slice(b"iTXt");
        png.extend_from_slice(&chunk);
        png.extend_from_slice(&[0; 4]); // CRC: not checked here
        assert_eq!(xmp_orientation(&png), Some(7));
        // Not zlib: no orientation, no panic.
        let last = png.len() - 5;
        png[last] ^= 0xff;
        let _ = xmp_orientation(&png);
    }
}
