//! Documents, spreadsheets, archives and text: what the bytes really are, checked against the
//! declared type, then validated by their own parser (PDF, ZIP/OOXML, CSV, text), all in memory,
//! bounded, and without inflating anything that is not inspected.

mod archive;
mod csv;
mod ooxml;
mod pdf;

use std::time::Instant;

use media_core::domain::{ContentType, MediaKind, MediaMetadata, Rejection, RejectionCode};

use crate::{PipelineOptions, Processed, Timings};

pub use archive::ArchiveLimits;

/// The knobs of document validation.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentOptions {
    /// Largest document, spreadsheet, archive or text file in bytes.
    pub max_bytes: u64,
    /// Accept PDFs with script, launch actions or embedded files, and OOXML with macros.
    pub allow_active_content: bool,
    /// Bounds on ZIP and OOXML archives.
    pub archive: ArchiveLimits,
    /// Longest a PDF's first page may take to render; past it there are no thumbnails (zero: never
    /// render).
    pub render_timeout: std::time::Duration,
}

impl Default for DocumentOptions {
    fn default() -> Self {
        Self {
            max_bytes: 50 * 1024 * 1024,
            allow_active_content: false,
            archive: ArchiveLimits::default(),
            render_timeout: std::time::Duration::from_secs(10),
        }
    }
}

/// What the first bytes say a file is, before its own parser looks at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detected {
    /// `%PDF-` at the start.
    Pdf,
    /// A ZIP local header or an empty archive's end record at the start.
    Zip,
    /// One of the raster types the image pipeline accepts.
    Image(ContentType),
    /// Markup a browser would render: HTML, SVG or XML.
    Markup(&'static str),
    /// Any other recognised binary format (executables, other archives, media, ...).
    Other(&'static str),
    /// None of the above: text if it is valid UTF-8 without NUL bytes.
    Unknown,
}

/// Identifies the content from its first bytes.
pub(crate) fn detect(bytes: &[u8]) -> Detected {
    if bytes.starts_with(b"%PDF-") {
        return Detected::Pdf;
    }
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        return Detected::Zip;
    }
    if let crate::Sniffed::Raster(t) = crate::sniff(bytes) {
        return Detected::Image(t);
    }
    if let Some(markup) = markup(bytes) {
        return Detected::Markup(markup);
    }
    if let Some(kind) = infer::get(bytes).filter(|k| k.matcher_type() != infer::MatcherType::Text) {
        return Detected::Other(kind.mime_type());
    }
    Detected::Unknown
}

/// Markup that a browser sniffing the bytes would render as a page: the WHATWG MIME-sniffing
/// "HTML" patterns (a tag name followed by a space or `>`), an XML declaration, or an SVG root.
fn markup(bytes: &[u8]) -> Option<&'static str> {
    const HTML: [&[u8]; 17] = [
        b"<!DOCTYPE HTML",
        b"<HTML",
        b"<HEAD",
        b"<SCRIPT",
        b"<IFRAME",
        b"<H1",
        b"<DIV",
        b"<FONT",
        b"<TABLE",
        b"<A",
        b"<STYLE",
        b"<TITLE",
        b"<B",
        b"<BODY",
        b"<BR",
        b"<P",
        b"<!--",
    ];
    let head = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = head
        .iter()
        .position(|b| !matches!(b, b'\t' | b'\n' | b'\x0C' | b'\r' | b' '))?;
    let head = &head[start..head.len().min(start + 512)];
    let starts_with = |pattern: &[u8]| {
        head.len() > pattern.len()
            && head[..pattern.len()].eq_ignore_ascii_case(pattern)
            && (pattern == b"<!--" || matches!(head[pattern.len()], b' ' | b'>'))
    };
    if HTML.iter().any(|p| starts_with(p)) {
        return Some("HTML");
    }
    if head.len() >= 5 && head[..5].eq_ignore_ascii_case(b"<?xml") {
        return Some("XML");
    }
    if head.len() >= 4 && head[..4].eq_ignore_ascii_case(b"<svg") {
        return Some("SVG");
    }
    None
}

/// What validating a document came to: its metadata, and for a PDF its first page rendered.
pub struct Validated {
    /// The kind's fields (format, size and hash are filled in by the caller).
    pub metadata: MediaMetadata,
    /// A PDF's first page, to make thumbnails from.
    pub first_page: Option<crate::Raster>,
    /// How long rendering it took.
    pub render: std::time::Duration,
}

pub(crate) fn reject(code: RejectionCode, message: impl Into<String>) -> Rejection {
    Rejection::new(code, message)
}

/// Validates a file declared as a document, spreadsheet, archive or text type. `longest` is the
/// longest side a PDF's first page is rendered at (the largest thumbnail).
pub fn validate(
    bytes: &[u8],
    declared: ContentType,
    opts: &DocumentOptions,
    longest: u32,
) -> Result<Validated, Rejection> {
    let detected = detect(bytes);
    let mismatch = |what: &str| {
        reject(
            RejectionCode::TypeMismatch,
            format!("declared {declared} but the content is {what}"),
        )
    };
    match detected {
        Detected::Image(t) => return Err(mismatch(t.mime())),
        Detected::Markup(what) => {
            return Err(reject(
                RejectionCode::NotADocument,
                format!("the content is {what} markup, which is not accepted as {declared}"),
            ));
        }
        Detected::Other(mime) => {
            return Err(reject(
                RejectionCode::NotADocument,
                format!("the content is {mime}, which is not accepted"),
            ));
        }
        _ => {}
    }
    match (declared, detected) {
        (ContentType::Pdf, Detected::Pdf) => pdf::validate(bytes, opts, longest),
        (ContentType::Pdf, Detected::Zip) => Err(mismatch("a ZIP archive")),
        (ContentType::Pdf, _) => Err(reject(
            RejectionCode::NotADocument,
            "the content is not a PDF",
        )),
        (
            ContentType::Zip | ContentType::Docx | ContentType::Pptx | ContentType::Xlsx,
            Detected::Zip,
        ) => archive::validate(bytes, declared, opts),
        (
            ContentType::Zip | ContentType::Docx | ContentType::Pptx | ContentType::Xlsx,
            Detected::Pdf,
        ) => Err(mismatch("a PDF")),
        (ContentType::Zip | ContentType::Docx | ContentType::Pptx | ContentType::Xlsx, _) => {
            Err(reject(
                RejectionCode::NotADocument,
                "the content is not a ZIP archive",
            ))
        }
        (ContentType::Csv | ContentType::Text, Detected::Pdf) => Err(mismatch("a PDF")),
        (ContentType::Csv | ContentType::Text, Detected::Zip) => Err(mismatch("a ZIP archive")),
        (ContentType::Csv, _) => csv::validate_csv(bytes),
        (ContentType::Text, _) => csv::validate_text(bytes),
        (image, _) => {
            debug_assert_eq!(image.kind(), MediaKind::Image);
            Err(reject(
                RejectionCode::UnsupportedType,
                format!("{image} is not a document type"),
            ))
        }
    }
}

/// A document, spreadsheet, archive or text file: checked by its own validator; a PDF's first
/// page becomes the thumbnails. The original is served as uploaded.
pub(crate) fn process(
    bytes: &[u8],
    sha256: [u8; 32],
    declared: ContentType,
    extension: Option<&str>,
    opts: &PipelineOptions,
) -> Result<Processed, Rejection> {
    let started = Instant::now();
    crate::check_size(bytes, opts.documents.max_bytes)?;
    if !opts.allowed_types.contains(&declared) {
        return Err(reject(
            RejectionCode::UnsupportedType,
            format!("{declared} files are not accepted"),
        ));
    }
    if let Some(ext) = extension
        && ContentType::from_extension(ext) != Some(declared)
    {
        return Err(reject(
            RejectionCode::TypeMismatch,
            format!("declared {declared} but the name ends in .{ext}"),
        ));
    }
    let largest = opts.sizes.iter().map(|s| s.size).max().unwrap_or(0);
    let validated = validate(bytes, declared, &opts.documents, largest)?;
    // Validation is the inspection; rendering the first page is the decode.
    let mut timings = Timings {
        inspect: started.elapsed().saturating_sub(validated.render),
        decode: validated.render,
        ..Timings::default()
    };
    let thumbnails = match &validated.first_page {
        Some(page) => {
            crate::make_thumbnails(page, (page.width, page.height), 1, opts, &mut timings)?.0
        }
        None => Vec::new(),
    };
    Ok(Processed {
        metadata: MediaMetadata {
            format: declared.format_name().to_owned(),
            size: bytes.len() as u64,
            sha256: hex::encode(sha256),
            ..validated.metadata
        },
        thumbnails,
        original_webp: None,
        timings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_told_from_text_that_mentions_tags() {
        assert_eq!(markup(b"  <!doctype html><p>x"), Some("HTML"));
        assert_eq!(markup(b"\xEF\xBB\xBF<html>"), Some("HTML"));
        assert_eq!(markup(b"<script src=x>"), Some("HTML"));
        assert_eq!(markup(b"<?xml version='1.0'?><svg/>"), Some("XML"));
        assert_eq!(
            markup(b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
            Some("SVG")
        );
        assert_eq!(markup(b"<!-- a comment"), Some("HTML"));
        assert_eq!(markup(b"name,<b>price</b>\n"), None);
        assert_eq!(markup(b"<ab>"), None);
        assert_eq!(markup(b"plain text"), None);
    }

    #[test]
    fn first_bytes_decide_the_family() {
        assert_eq!(detect(b"%PDF-1.7\n"), Detected::Pdf);
        assert_eq!(detect(b"PK\x03\x04rest"), Detected::Zip);
        assert_eq!(
            detect(b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"),
            Detected::Zip
        );
        assert!(matches!(
            detect(b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff"),
            Detected::Other(_)
        ));
        let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
        elf.resize(64, 0);
        assert!(matches!(detect(&elf), Detected::Other(_)));
        assert_eq!(detect(b"a,b\n1,2\n"), Detected::Unknown);
    }
}
