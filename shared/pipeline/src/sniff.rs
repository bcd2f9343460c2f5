//! What the bytes are, from their magic number alone: never from the declared type or the name.

use media_core::domain::ContentType;

/// The verdict on a file's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// One of the raster types the pipeline can decode.
    Raster(ContentType),
    /// A real image of a type the service does not decode (TIFF, SVG, JPEG XL, ...).
    Unsupported(&'static str),
    /// Not an image at all, or an image signature damaged in transit.
    NotAnImage,
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Identifies the content. The four decodable types need their full signature: a PNG whose
/// signature was mangled by a text-mode transfer (`\r\n` rewritten) is not a PNG.
pub fn sniff(bytes: &[u8]) -> Sniffed {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Sniffed::Raster(ContentType::Jpeg);
    }
    if bytes.starts_with(PNG_SIGNATURE) {
        return Sniffed::Raster(ContentType::Png);
    }
    if bytes.len() >= 16 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        return Sniffed::Raster(ContentType::Webp);
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Sniffed::Raster(ContentType::Gif);
    }
    if is_hevc_heif(bytes) {
        return Sniffed::Raster(ContentType::Heic);
    }
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" && infer::image::is_avif(bytes) {
        return Sniffed::Raster(ContentType::Avif);
    }
    if let Some(kind) = infer::get(bytes).filter(|k| k.matcher_type() == infer::MatcherType::Image)
    {
        // `infer` matches on shorter prefixes than the checks above: a near-miss of one of
        // our own types is a damaged file, not some other format.
        return match ContentType::parse(kind.mime_type()) {
            Ok(_) => Sniffed::NotAnImage,
            Err(_) => Sniffed::Unsupported(kind.mime_type()),
        };
    }
    if is_svg(bytes) {
        return Sniffed::Unsupported("image/svg+xml");
    }
    Sniffed::NotAnImage
}

/// A HEIF file whose images are HEVC-coded (HEIC): `ftyp` with a HEVC brand, or a generic
/// `mif1`/`mif2` one that is not AVIF.
fn is_hevc_heif(bytes: &[u8]) -> bool {
    bytes.len() >= 12
        && &bytes[4..8] == b"ftyp"
        && match heifer::check_file_type(bytes) {
            heifer::FileTypeResult::Supported => true,
            heifer::FileTypeResult::MayBe => !infer::image::is_avif(bytes),
            heifer::FileTypeResult::No | heifer::FileTypeResult::Unsupported => false,
        }
}

/// An SVG document: XML text whose root is an `<svg>` element in the SVG namespace. Markup that
/// merely contains `<svg` (an HTML page, a script payload) is not an image.
fn is_svg(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    let Ok(text) = std::str::from_utf8(head).or_else(|e| {
        // The cut may split a character: keep the valid prefix.
        std::str::from_utf8(&head[..e.valid_up_to()])
    }) else {
        return false;
    };
    let text = text.trim_start_matches('\u{feff}').trim_start();
    if !text.starts_with('<') {
        return false;
    }
    let Some(root) = text.find("<svg") else {
        return false;
    };
    let tag_end = text[root..].find('>').map_or(text.len(), |i| root + i);
    text[root..tag_end].contains("http://www.w3.org/2000/svg")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_signatures_are_required() {
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Sniffed::Raster(ContentType::Png)
        );
        assert_eq!(
            sniff(b"\x89PNG\r\r\n\x1a\n\0\0\0\rIHDR"),
            Sniffed::NotAnImage
        );
        assert_eq!(
            sniff(b"RIFF\0\0\0\0WEBPVP8 "),
            Sniffed::Raster(ContentType::Webp)
        );
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVEfmt "), Sniffed::NotAnImage);
        assert_eq!(
            sniff(b"GIF89a\x01\0\x01\0"),
            Sniffed::Raster(ContentType::Gif)
        );
    }

    #[test]
    fn svg_documents_are_unsupported_and_svg_fragments_are_not_images() {
        let doc = br#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>"#;
        assert_eq!(sniff(doc), Sniffed::Unsupported("image/svg+xml"));
        assert_eq!(
            sniff(b"<svg><script>alert(1)</script></svg>"),
            Sniffed::NotAnImage
        );
        assert_eq!(sniff(b"hello"), Sniffed::NotAnImage);
        assert_eq!(sniff(b""), Sniffed::NotAnImage);
    }
}
