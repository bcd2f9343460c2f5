//! PDF: parsed by hayro-syntax (cross-reference tables and streams, object streams, repair of
//! broken tables), checked for active content object by object, and its first page rendered by
//! hayro for the thumbnails.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use hayro::hayro_syntax::object::{Dict, MaybeRef, Object};
use hayro::hayro_syntax::{DecryptionError, LoadPdfError, Pdf};
use media_core::domain::{MediaMetadata, Rejection, RejectionCode};

use super::{DocumentOptions, Validated, reject};
use crate::Raster;

/// How deep direct objects are followed inside one object (real files nest a few levels).
const MAX_DEPTH: usize = 32;
/// Most characters kept of a title or author.
const MAX_TEXT_CHARS: usize = 256;

/// Active content found in a PDF, in the words of the rejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Active {
    /// A JavaScript action run when the document opens.
    OpenActionScript,
    /// JavaScript anywhere (document scripts, actions on pages, fields or links).
    JavaScript,
    /// A Launch action (runs a program or opens a file).
    Launch,
    /// Embedded files (attachments), or a go-to into one.
    EmbeddedFile,
}

impl Active {
    fn message(self) -> &'static str {
        match self {
            Self::OpenActionScript => "the PDF runs JavaScript when it is opened (/OpenAction)",
            Self::JavaScript => "the PDF carries JavaScript (/JS, /JavaScript)",
            Self::Launch => "the PDF has a /Launch action, which runs a program or opens a file",
            Self::EmbeddedFile => "the PDF embeds files (/EmbeddedFiles, /EF)",
        }
    }
}

fn action_is_script(dict: &Dict<'_>) -> bool {
    dict.contains_key(b"JS")
        || dict
            .get::<hayro::hayro_syntax::object::Name<'_>>(b"S")
            .is_some_and(|s| &*s == b"JavaScript")
}

/// The first active content in a dictionary or the direct objects inside it.
fn scan_dict(dict: &Dict<'_>, depth: usize) -> Option<Active> {
    if depth > MAX_DEPTH {
        return None;
    }
    if dict
        .get::<Dict<'_>>(b"OpenAction")
        .is_some_and(|a| action_is_script(&a))
    {
        return Some(Active::OpenActionScript);
    }
    for (key, value) in dict.entries() {
        match &*key {
            b"JS" | b"JavaScript" => return Some(Active::JavaScript),
            b"EmbeddedFiles" | b"EF" => return Some(Active::EmbeddedFile),
            b"S" | b"Type" => {
                if let MaybeRef::NotRef(Object::Name(name)) = &value {
                    match &**name {
                        b"JavaScript" => return Some(Active::JavaScript),
                        b"Launch" => return Some(Active::Launch),
                        b"GoToE" | b"EmbeddedFile" => return Some(Active::EmbeddedFile),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        if let MaybeRef::NotRef(inner) = value
            && let Some(found) = scan_object(&inner, depth + 1)
        {
            return Some(found);
        }
    }
    None
}

fn scan_object(object: &Object<'_>, depth: usize) -> Option<Active> {
    if depth > MAX_DEPTH {
        return None;
    }
    match object {
        Object::Dict(d) => scan_dict(d, depth),
        Object::Stream(s) => scan_dict(s.dict(), depth),
        Object::Array(a) => a.raw_iter().find_map(|item| match item {
            MaybeRef::NotRef(inner) => scan_object(&inner, depth + 1),
            MaybeRef::Ref(_) => None,
        }),
        _ => None,
    }
}

/// The first active content among every object the cross-reference names (those in object
/// streams included): indirect objects are each visited once, here, so references are not
/// followed and a reference cycle cannot loop.
pub(crate) fn active_content(pdf: &Pdf) -> Option<Active> {
    pdf.objects()
        .into_iter()
        .find_map(|object| scan_object(&object, 0))
}

/// A PDF text string as text: UTF-16BE or UTF-8 with their byte order marks, else
/// PDFDocEncoding (Latin-1 for everything but a few punctuation marks); control characters
/// dropped, length capped, empty as `None`.
pub(crate) fn text_string(raw: &[u8]) -> Option<String> {
    let decoded: String = if let Some(utf16) = raw.strip_prefix(b"\xFE\xFF") {
        let units: Vec<u16> = utf16
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        char::decode_utf16(units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect()
    } else if let Some(utf8) = raw.strip_prefix(b"\xEF\xBB\xBF") {
        String::from_utf8_lossy(utf8).into_owned()
    } else {
        raw.iter().map(|&b| char::from(b)).collect()
    };
    let cleaned: String = decoded
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT_CHARS)
        .collect();
    let cleaned = cleaned.trim();
    (!cleaned.is_empty()).then(|| cleaned.to_owned())
}

/// Whether the file is also a ZIP archive: an end-of-central-directory record near its end that
/// a ZIP reader accepts with at least one entry (the shape of PDF/ZIP polyglots, which an
/// archive tool opens as something else than the PDF viewer shows).
fn is_also_a_zip(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub((64 << 10) + 22)..];
    tail.windows(4).any(|w| w == b"PK\x05\x06")
        && super::archive::open(bytes).is_ok_and(|z| !z.is_empty())
}

/// Whether a PDF that opened without a password is nevertheless encrypted (an empty user
/// password, as owner-password-only "protected" files have): a wrong password opens an
/// unencrypted file just the same, and an encrypted one not at all.
fn opens_only_with_empty_password(bytes: &[u8]) -> bool {
    Pdf::new_with_password(bytes.to_vec(), "\u{1}not the password\u{1}").is_err()
}

/// Renders the first page on a thread of its own, for at most `deadline`: a page that takes
/// longer (a hostile or pathological one) gives no thumbnails instead of holding the function
/// until its timeout. The renderer has no way to be cancelled, so a late thread runs on to its
/// end, detached, and its result is dropped.
fn render_within(bytes: &[u8], longest: u32, deadline: Duration) -> Option<Raster> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let bytes = bytes.to_vec();
    std::thread::Builder::new()
        .name("pdf-render".into())
        .spawn(move || {
            let raster = Pdf::new(bytes)
                .ok()
                .and_then(|pdf| render_first_page(&pdf, longest));
            let _ = tx.send(raster);
        })
        .ok()?;
    rx.recv_timeout(deadline).ok().flatten()
}

/// Renders the first page with its longest side `longest` pixels, on white; `None` when the
/// renderer fails (the PDF is still accepted, without thumbnails).
fn render_first_page(pdf: &Pdf, longest: u32) -> Option<Raster> {
    let page = pdf.pages().first()?;
    let (w, h) = page.render_dimensions();
    if !(w.is_finite() && h.is_finite() && w >= 1.0 && h >= 1.0) {
        return None;
    }
    // Half a pixel more, so that float error cannot truncate the longest side by one.
    let scale = ((longest.max(1) as f32 + 0.5) / w.max(h)).min(f32::from(u16::MAX) / w.max(h));
    let settings = hayro::PixmapSettings {
        x_scale: scale,
        y_scale: scale,
        bg_color: hayro::vello_cpu::color::palette::css::WHITE,
    };
    let pixmap = catch_unwind(AssertUnwindSafe(|| {
        hayro::render(
            page,
            &hayro::RenderCache::new(),
            &hayro::hayro_interpret::InterpreterSettings::default(),
            &hayro::RenderSettings::default(),
            &settings,
        )
    }))
    .ok()?;
    let (width, height) = (u32::from(pixmap.width()), u32::from(pixmap.height()));
    if width == 0 || height == 0 {
        return None;
    }
    // Opaque (painted over white), so premultiplied and straight RGB are the same.
    let data = pixmap
        .data_as_u8_slice()
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    Some(Raster {
        width,
        height,
        channels: 3,
        data,
    })
}

/// Validates a PDF: it must parse; active content is refused unless allowed; an encrypted one is
/// accepted without pages it cannot read or thumbnails.
pub(super) fn validate(
    bytes: &[u8],
    opts: &DocumentOptions,
    longest: u32,
) -> Result<Validated, Rejection> {
    let pdf = match Pdf::new(bytes.to_vec()) {
        Ok(pdf) => pdf,
        Err(LoadPdfError::Decryption(
            DecryptionError::PasswordProtected | DecryptionError::UnsupportedAlgorithm,
        )) => {
            return Ok(Validated {
                metadata: MediaMetadata {
                    encrypted: Some(true),
                    ..MediaMetadata::default()
                },
                first_page: None,
                render: std::time::Duration::ZERO,
            });
        }
        Err(LoadPdfError::Decryption(e)) => {
            return Err(reject(
                RejectionCode::Corrupt,
                format!("the PDF's encryption is broken: {e:?}"),
            ));
        }
        Err(LoadPdfError::Invalid) => {
            return Err(reject(
                RejectionCode::Corrupt,
                "the PDF could not be parsed",
            ));
        }
    };
    if is_also_a_zip(bytes) {
        return Err(reject(
            RejectionCode::TypeMismatch,
            "the file is both a PDF and a ZIP archive (a polyglot)",
        ));
    }
    if pdf.pages().is_empty() {
        return Err(reject(RejectionCode::Corrupt, "the PDF has no pages"));
    }
    if !opts.allow_active_content
        && let Some(found) = active_content(&pdf)
    {
        return Err(reject(RejectionCode::ActiveContent, found.message()));
    }
    let encrypted = opens_only_with_empty_password(bytes);
    let info = pdf.metadata();
    let (width, height) = pdf
        .pages()
        .first()
        .map(|p| p.render_dimensions())
        .map_or((None, None), |(w, h)| {
            (Some(w.round() as u32), Some(h.round() as u32))
        });
    let rendering = std::time::Instant::now();
    let first_page = if encrypted || opts.render_timeout.is_zero() {
        None
    } else {
        render_within(bytes, longest, opts.render_timeout)
    };
    let render = rendering.elapsed();
    Ok(Validated {
        metadata: MediaMetadata {
            pages: Some(u32::try_from(pdf.pages().len()).unwrap_or(u32::MAX)),
            title: info.title.as_deref().and_then(text_string),
            author: info.author.as_deref().and_then(text_string),
            encrypted: Some(encrypted),
            width,
            height,
            ..MediaMetadata::default()
        },
        first_page,
        render,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_render_past_its_deadline_gives_no_thumbnails_and_the_pdf_is_still_accepted()
    -> Result<(), Box<dyn std::error::Error>> {
        let bytes = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../tests/documents/pdfjs-tracemonkey.pdf"),
        )?;
        let in_time = validate(&bytes, &DocumentOptions::default(), 150).map_err(|r| r.message)?;
        assert!(in_time.first_page.is_some());
        // A page that takes milliseconds cannot render in a nanosecond.
        let opts = DocumentOptions {
            render_timeout: Duration::from_nanos(1),
            ..DocumentOptions::default()
        };
        let late = validate(&bytes, &opts, 150).map_err(|r| r.message)?;
        assert!(late.first_page.is_none());
        assert_eq!(late.metadata.pages, Some(14));
        Ok(())
    }

    #[test]
    fn text_strings_decode_each_encoding() {
        assert_eq!(
            text_string(b"\xFE\xFF\0H\0i\x26\x03").as_deref(),
            Some("Hi\u{2603}")
        );
        assert_eq!(
            text_string(b"\xEF\xBB\xBFcaf\xC3\xA9").as_deref(),
            Some("café")
        );
        assert_eq!(text_string(b"caf\xE9\x07").as_deref(), Some("café"));
        assert_eq!(text_string(b"  \n "), None);
        assert_eq!(
            text_string(&[b'a'; 1000]).map(|t| t.len()),
            Some(MAX_TEXT_CHARS)
        );
    }
}
