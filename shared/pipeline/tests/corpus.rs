//! Every row of the shared corpus (`../shared/corpus/MANIFEST.tsv`: real third-party files, valid
//! and hostile) through the pipeline with production limits, checked against what the manifest
//! says a correct service does with it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use media_core::config::ThumbnailFormat;
use media_core::domain::{ContentType, RejectionCode};
use media_pipeline::{PipelineOptions, Processed, fit_inside, process_image};

fn corpus_dir() -> PathBuf {
    std::env::var("MEDIA_CORPUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
        })
}

/// The production defaults (`Config::from_env()` with no variable set), in the given format.
fn production(format: ThumbnailFormat) -> PipelineOptions {
    PipelineOptions {
        format,
        ..PipelineOptions::default()
    }
}

struct Row {
    file: String,
    expectation: String,
}

fn manifest() -> Vec<Row> {
    let text = std::fs::read_to_string(corpus_dir().join("MANIFEST.tsv"))
        .expect("the corpus manifest (set MEDIA_CORPUS_DIR if it is elsewhere)");
    let mut lines = text.lines();
    let header: Vec<_> = lines.next().unwrap_or_default().split('\t').collect();
    let col = |name| header.iter().position(|h| *h == name).expect(name);
    let (file, expectation) = (col("file"), col("expectation"));
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<_> = l.split('\t').collect();
            Row {
                file: f[file].to_owned(),
                expectation: f[expectation].to_owned(),
            }
        })
        .collect()
}

/// `key=value` facts after the verdict.
fn facts(expectation: &str) -> BTreeMap<String, String> {
    expectation
        .split("; ")
        .skip(1)
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

enum Expected {
    Accept,
    Reject(&'static str),
}

fn verdict(expectation: &str) -> Expected {
    let head = expectation.split(';').next().unwrap_or_default();
    if head.starts_with("accept") {
        // Includes accept_if_gif_supported (GIF is supported: its first frame is shown),
        // accept_if_avif_supported (AVIF is decoded by rav1d) and animated WebP (accepted;
        // derivatives show frame 1).
        return Expected::Accept;
    }
    let code = head
        .trim_start_matches("reject:")
        .split([' ', '('])
        .next()
        .unwrap_or_default();
    let known = [
        "corrupt",
        "not_an_image",
        "type_mismatch",
        "unsupported_type",
        "too_large_dimensions",
        "too_many_frames",
        "metadata_too_large",
        "too_large",
    ];
    Expected::Reject(
        known
            .into_iter()
            .find(|k| *k == code)
            .unwrap_or_else(|| panic!("unknown verdict {head:?}")),
    )
}

fn extension(file: &str) -> &str {
    file.rsplit_once('.').map_or("", |(_, e)| e)
}

/// Runs a file as a client would send it: declared by its extension. A file whose extension
/// names no accepted type is refused at presign (415); what matters is what the pipeline does
/// if a client declares it as an accepted type anyway, so it is declared as JPEG.
fn run(row: &Row, format: ThumbnailFormat) -> Result<Processed, media_core::domain::Rejection> {
    let bytes = std::fs::read(corpus_dir().join(&row.file)).expect("corpus file");
    let ext = extension(&row.file);
    let declared = ContentType::from_extension(ext).unwrap_or(ContentType::Jpeg);
    let ext = ContentType::from_extension(ext).map(|_| ext);
    process_image(&bytes, declared, ext, &production(format))
}

/// Mean absolute difference per channel between two decoded thumbnails of the same size.
fn difference(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let total: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    total as f64 / a.as_raw().len() as f64
}

fn decode(bytes: &[u8]) -> image::RgbImage {
    image::load_from_memory(bytes)
        .expect("a derivative decodes")
        .into_rgb8()
}

/// A derivative carries pixels only: no EXIF, XMP, ICC or other chunk of the original.
fn assert_bare(file: &str, bytes: &[u8]) {
    assert!(bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP");
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let kind = &bytes[at..at + 4];
        assert!(
            matches!(kind, b"VP8 " | b"VP8L" | b"VP8X" | b"ALPH"),
            "{file}: derivative has a {:?} chunk",
            String::from_utf8_lossy(kind)
        );
        let len = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]])
            as usize;
        at += 8 + len + (len & 1);
    }
}

#[test]
fn every_corpus_file_gets_the_expected_outcome() {
    let rows = manifest();
    assert!(rows.len() >= 56, "the manifest lists {} files", rows.len());
    let mut failures = Vec::new();
    for row in &rows {
        let result = run(row, ThumbnailFormat::Webp);
        let facts = facts(&row.expectation);
        match (verdict(&row.expectation), result) {
            (Expected::Reject(code), Err(r)) if r.code.as_str() == code => {}
            (Expected::Reject(code), Err(r)) => failures.push(format!(
                "{}: expected {code}, got {} ({})",
                row.file,
                r.code.as_str(),
                r.message
            )),
            (Expected::Reject(code), Ok(_)) => failures.push(format!(
                "{}: expected {code}, but it was accepted",
                row.file
            )),
            (Expected::Accept, Err(r)) => failures.push(format!(
                "{}: expected accept, got {} ({})",
                row.file,
                r.code.as_str(),
                r.message
            )),
            (Expected::Accept, Ok(p)) => {
                if let Err(e) = check_accepted(&row.file, &facts, &p) {
                    failures.push(format!("{}: {e}", row.file));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn check_accepted(
    file: &str,
    facts: &BTreeMap<String, String>,
    p: &Processed,
) -> Result<(), String> {
    let m = &p.metadata;
    let fact = |k: &str| facts.get(k).map(String::as_str);
    if let Some(t) = fact("type")
        && m.format != t
    {
        return Err(format!("format {} != {t}", m.format));
    }
    if let Some((w, h)) = fact("display").and_then(|d| d.split_once('x')) {
        let display = (w.parse::<u32>().ok(), h.parse::<u32>().ok());
        if (m.width, m.height) != display {
            return Err(format!("displayed {:?}x{:?} != {w}x{h}", m.width, m.height));
        }
    }
    let orientation = match fact("exif_orientation") {
        // In HEIF and AVIF files the container's irot/imir decide; an EXIF orientation inside
        // them is informative only, and not reported (as libheif does).
        _ if matches!(m.format.as_str(), "avif" | "heic" | "heif") => None,
        Some("none") | None => None,
        Some(o) if o.starts_with("invalid") => Some(1),
        Some(o) => o.parse::<u8>().ok(),
    };
    if m.exif.orientation != orientation {
        return Err(format!(
            "orientation {:?} != {orientation:?}",
            m.exif.orientation
        ));
    }
    match (
        fact("has_gps"),
        m.exif.gps_latitude.zip(m.exif.gps_longitude),
    ) {
        (Some("true"), Some((lat, lon))) => {
            if let Some((elat, elon)) = fact("gps").and_then(|g| g.split_once(',')) {
                let (elat, elon): (f64, f64) = (
                    elat.parse().unwrap_or(f64::NAN),
                    elon.parse().unwrap_or(f64::NAN),
                );
                if (lat - elat).abs() > 1e-4 || (lon - elon).abs() > 1e-4 {
                    return Err(format!("gps {lat},{lon} != {elat},{elon}"));
                }
            }
        }
        (Some("true"), None) => return Err("no GPS".into()),
        (_, Some(_)) => return Err("GPS where there is none".into()),
        _ => {}
    }
    for (key, value) in [
        ("make", &m.exif.make),
        ("model", &m.exif.model),
        ("date", &m.exif.date_time),
    ] {
        if let Some(expected) = fact(key)
            && value.as_deref() != Some(expected)
        {
            return Err(format!("{key} {value:?} != {expected:?}"));
        }
    }
    let frames = fact("frames").and_then(|f| f.parse::<u32>().ok());
    if m.frames != frames.filter(|f| *f > 1) {
        return Err(format!("frames {:?} != {frames:?}", m.frames));
    }
    // Three derivatives, fitted inside their box, never upscaled, stripped.
    let names: Vec<_> = p.thumbnails.iter().map(|t| t.name.as_str()).collect();
    if names != ["large", "medium", "small"] {
        return Err(format!("derivatives {names:?}"));
    }
    for (t, size) in p.thumbnails.iter().zip([800, 400, 150]) {
        let expected = fit_inside(m.width.unwrap_or(0), m.height.unwrap_or(0), size);
        if (t.width, t.height) != expected {
            return Err(format!(
                "{} is {}x{}, expected {expected:?}",
                t.name, t.width, t.height
            ));
        }
        let decoded = image::load_from_memory(&t.bytes).map_err(|e| e.to_string())?;
        if (decoded.width(), decoded.height()) != expected {
            return Err(format!("{} decodes at another size", t.name));
        }
        assert_bare(file, &t.bytes);
    }
    if m.blurhash.as_deref().is_none_or(|h| h.len() < 6) || m.dominant_color.is_none() {
        return Err("no placeholder".into());
    }
    Ok(())
}

/// The 18 orientation examples are one photo in every EXIF orientation: after auto-orientation,
/// every thumbnail must look like the upright one.
#[test]
fn all_eight_orientations_come_out_upright() {
    for shape in ["Landscape", "Portrait"] {
        let upright = |n: u8| {
            let row = Row {
                file: format!("{shape}_{n}.jpg"),
                expectation: String::new(),
            };
            let p = run(&row, ThumbnailFormat::Png).expect("accepted");
            decode(&p.thumbnails[1].bytes)
        };
        let reference = upright(1);
        // A wrong orientation differs from the upright by far more than the encoder noise.
        let rotated_wrongly = difference(&reference, &image::imageops::flip_horizontal(&reference));
        for n in [0, 2, 3, 4, 5, 6, 7, 8] {
            let d = difference(&reference, &upright(n));
            assert!(
                d < 2.0 && d * 10.0 < rotated_wrongly,
                "{shape}_{n}: differs from upright by {d:.2} (a mirror image: {rotated_wrongly:.2})"
            );
        }
    }
}

/// Colours survive: a CMYK JPEG is converted (not shown as a negative), 16-bit and palette PNGs
/// are scaled to 8 bits, and transparency stays transparent.
#[test]
fn cmyk_16_bit_palette_and_transparent_inputs_keep_their_colours() {
    let small = |file: &str| {
        let row = Row {
            file: file.into(),
            expectation: String::new(),
        };
        let p = run(&row, ThumbnailFormat::Png).expect("accepted");
        image::load_from_memory(&p.thumbnails[2].bytes).expect("decodes")
    };
    // The CMYK photo goes through its embedded profile: its mean colour matches libvips's
    // ICC conversion (128.2, 132.8, 122.8 for this file; the naive formula gives 109, 132, 110).
    let cmyk = small("Channel_digital_image_CMYK_color.jpg").into_rgb8();
    let mean: Vec<f64> = (0..3)
        .map(|c| {
            cmyk.pixels().map(|p| f64::from(p[c])).sum::<f64>()
                / f64::from(cmyk.width() * cmyk.height())
        })
        .collect();
    for (m, reference) in mean.iter().zip([128.2, 132.8, 122.8]) {
        assert!((m - reference).abs() < 4.0, "{mean:?}");
    }

    // PngSuite basn2c16: a 16-bit gradient; 8-bit output must still span the range.
    let deep = small("basn2c16.png").into_rgb8();
    let (lo, hi) = deep
        .pixels()
        .fold((255u8, 0u8), |(lo, hi), p| (lo.min(p[0]), hi.max(p[0])));
    assert!(lo < 16 && hi > 240, "16-bit red spans {lo}..{hi}");

    // tbrn2c08 has a tRNS colour key, basi6a08 a real alpha channel: both keep transparency.
    for file in ["tbrn2c08.png", "basi6a08.png"] {
        let rgba = small(file).into_rgba8();
        assert!(rgba.pixels().any(|p| p[3] < 255), "{file} lost its alpha");
    }
    // And a palette image is expanded to colour.
    let palette = small("basn3p08.png").into_rgb8();
    assert!(palette.pixels().any(|p| p[0] != p[1] || p[1] != p[2]));
}

/// The same corpus with JPEG derivatives: same outcomes, JPEG files with no APPn metadata.
#[test]
fn jpeg_derivatives_carry_no_metadata() {
    for row in manifest()
        .iter()
        .filter(|r| matches!(verdict(&r.expectation), Expected::Accept))
    {
        let p = run(row, ThumbnailFormat::Jpeg).expect("accepted");
        for t in &p.thumbnails {
            let b = &t.bytes;
            assert!(b.starts_with(&[0xFF, 0xD8]), "{}", row.file);
            // Walk the segments up to the first scan: only JFIF (APP0) and coding tables.
            let mut at = 2;
            while at + 4 <= b.len() && b[at] == 0xFF && b[at + 1] != 0xDA {
                let marker = b[at + 1];
                assert!(
                    !matches!(marker, 0xE1..=0xEF | 0xFE),
                    "{}: {} has segment {marker:#x}",
                    row.file,
                    t.name
                );
                at += 2 + usize::from(u16::from_be_bytes([b[at + 2], b[at + 3]]));
            }
        }
        assert!(p.metadata.exif.gps_latitude.is_none() || row.expectation.contains("has_gps=true"));
    }
    // RejectionCode is the vocabulary the manifest uses.
    assert_eq!(
        RejectionCode::MetadataTooLarge.as_str(),
        "metadata_too_large"
    );
}

/// Inputs the fuzzer (`make fuzz`) found, each once a panic inside a decoder: they must come out
/// as clean rejections. `fuzz-animated-webp-panic.webp` is a mutation of the corpus's
/// `animated-loop-3.webp` (sharp's fixture, Apache-2.0) that made the `image` crate's WebP decoder
/// index out of bounds; animated WebP now goes through libwebp.
#[test]
fn inputs_the_fuzzer_found_are_rejected_cleanly() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut fixtures: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|f| f.starts_with("fuzz-"))
        .collect();
    fixtures.sort();
    assert!(!fixtures.is_empty());
    for file in &fixtures {
        let bytes = std::fs::read(dir.join(file)).expect("fixture");
        let declared = ContentType::from_extension(extension(file)).unwrap_or(ContentType::Jpeg);
        let hook = std::panic::take_hook();
        // Any panic, even one the pipeline would catch, fails the test.
        std::panic::set_hook(Box::new(|info| {
            eprintln!("{info}");
            std::process::abort();
        }));
        let result = process_image(&bytes, declared, None, &production(ThumbnailFormat::Webp));
        std::panic::set_hook(hook);
        let err = result.err().map(|r| r.code.as_str());
        assert_eq!(err, Some("corrupt"), "{file}");
    }
}

/// An 80-byte PNG whose `tEXt` chunk declares 801,471,824 bytes: damage, not metadata. It was
/// rejected as `metadata_too_large` ("801471824 bytes of metadata"); a chunk that runs past the
/// end of the file is `corrupt`.
#[test]
fn a_chunk_that_runs_past_the_end_of_the_file_is_corrupt() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/chunk-past-eof.png");
    let bytes = std::fs::read(path).expect("fixture");
    assert_eq!(bytes.len(), 80);
    let rejection = process_image(
        &bytes,
        ContentType::Png,
        Some("png"),
        &production(ThumbnailFormat::Webp),
    )
    .expect_err("rejected");
    assert_eq!(
        rejection.code,
        RejectionCode::Corrupt,
        "{}",
        rejection.message
    );
}

/// WebP and PNG say how to display their pixels in the ways writers do (see
/// `fixtures/orientation/make.py`): a WebP's EXIF chunk with or without JPEG's `Exif\0\0` header,
/// a PNG's `eXIf`, or only XMP (`tiff:Orientation`, as an attribute or an element, compressed or
/// not). Every one of the eight orientations must come out upright in each form, with the
/// orientation reported.
#[test]
fn webp_and_png_orientations_come_out_upright_in_every_form() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/orientation");
    let run = |file: &str| {
        let bytes = std::fs::read(dir.join(file)).expect("fixture");
        let ext = extension(file);
        let declared = ContentType::from_extension(ext).expect("a known type");
        process_image(
            &bytes,
            declared,
            Some(ext),
            &production(ThumbnailFormat::Png),
        )
        .unwrap_or_else(|r| panic!("{file}: rejected: {r:?}"))
    };
    for form in [
        "exif.webp",
        "exifheader.webp",
        "xmp.webp",
        "exif.png",
        "xmp.png",
    ] {
        let reference = run(&format!("portrait-1-{form}"));
        let upright = decode(&reference.thumbnails[0].bytes);
        let mirrored = difference(&upright, &image::imageops::flip_horizontal(&upright));
        for n in 1..=8u8 {
            let file = format!("portrait-{n}-{form}");
            let p = run(&file);
            // Stored 80 x 120 (or 120 x 80 for 5-8); displayed upright, 80 wide and 120 high.
            assert_eq!(
                (p.metadata.width, p.metadata.height),
                (Some(80), Some(120)),
                "{file}"
            );
            assert_eq!(p.metadata.exif.orientation, Some(n), "{file}");
            let d = difference(&upright, &decode(&p.thumbnails[0].bytes));
            assert!(
                d < 4.0 && d * 5.0 < mirrored,
                "{file}: differs from upright by {d:.2} (a mirror image: {mirrored:.2})"
            );
        }
    }
}
