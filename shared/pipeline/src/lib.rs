//! The image pipeline: bytes in, metadata and derivatives (or a rejection) out. Pure and
//! synchronous: no I/O, so it runs in `spawn_blocking`, in `media-dev process` and in tests alike.
//!
//! The order of the checks is the point: size, magic number, container structure (metadata and
//! frame counts), header dimensions; only then is a pixel buffer allocated, and only as large as
//! the largest derivative needs (JPEG is decoded at a reduced DCT scale).

pub mod av;
mod color;
mod container;
mod decode;
pub mod document;
mod encode;
mod exif;
mod heif;
mod meta;
mod placeholder;
mod png;
mod raster;
mod resize;
mod sniff;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use image::Limits;
use sha2::{Digest, Sha256};

pub use document::DocumentOptions;
pub use encode::{DEFAULT_WEBP_METHOD, EncodeOptions};
pub use exif::read_exif;
pub use raster::Raster;
pub use resize::fit_inside;
pub use sniff::{Sniffed, sniff};

use media_core::config::{ThumbnailFormat, ThumbnailSize};
use media_core::domain::{ContentType, MediaKind, MediaMetadata, Rejection, RejectionCode};
use media_core::ports::{ImageProcessor, RangeSource};
pub use media_core::ports::{Processed, Thumbnail, Timings};

/// The knobs of the pipeline: its own options, which the process function fills from the app's
/// configuration (`process::pipeline_options`); [`Default`] is the production default.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineOptions {
    /// Types accepted.
    pub allowed_types: Vec<ContentType>,
    /// Largest width x height.
    pub max_pixels: u64,
    /// Largest width or height.
    pub max_side: u32,
    /// Largest upload in bytes.
    pub max_bytes: u64,
    /// Most animation frames.
    pub max_frames: u32,
    /// Most bytes of embedded metadata.
    pub max_metadata_bytes: u64,
    /// Derivatives to make.
    pub sizes: Vec<ThumbnailSize>,
    /// Their format.
    pub format: ThumbnailFormat,
    /// Their lossy quality.
    pub quality: u8,
    /// libwebp's method (0-6).
    pub webp_method: u8,
    /// Also make a WebP of the whole original.
    pub convert_original_to_webp: bool,
    /// How documents, spreadsheets, archives and text are checked.
    pub documents: DocumentOptions,
}

impl Default for PipelineOptions {
    /// The options the deployed function has when no variable is set (a test in the process
    /// function holds this equal to the configuration's defaults).
    fn default() -> Self {
        Self {
            allowed_types: ContentType::ALL.to_vec(),
            max_pixels: 50_000_000,
            max_side: 16384,
            max_bytes: 5 * 1024 * 1024,
            max_frames: 1000,
            max_metadata_bytes: 1024 * 1024,
            sizes: [("small", 150), ("medium", 400), ("large", 800)]
                .into_iter()
                .map(|(name, size)| ThumbnailSize {
                    name: name.to_owned(),
                    size,
                })
                .collect(),
            format: ThumbnailFormat::Webp,
            quality: 80,
            webp_method: DEFAULT_WEBP_METHOD,
            convert_original_to_webp: false,
            documents: DocumentOptions::default(),
        }
    }
}

/// The pipeline as the core's [`ImageProcessor`] port.
#[derive(Debug, Clone)]
pub struct Pipeline {
    options: PipelineOptions,
}

impl Pipeline {
    /// A pipeline with these options.
    pub fn new(options: PipelineOptions) -> Self {
        Self { options }
    }

    /// Its options.
    pub fn options(&self) -> &PipelineOptions {
        &self.options
    }
}

impl ImageProcessor for Pipeline {
    fn process(
        &self,
        bytes: &[u8],
        sha256: [u8; 32],
        declared: ContentType,
        extension: Option<&str>,
    ) -> Result<Processed, Rejection> {
        process_with_checksum(bytes, sha256, declared, extension, &self.options)
    }

    fn probe(
        &self,
        source: &mut dyn RangeSource,
        declared: ContentType,
        extension: Option<&str>,
    ) -> Result<MediaMetadata, Rejection> {
        av::check(source, declared, extension, &self.options)
    }
}

impl PipelineOptions {
    fn encoding(&self) -> EncodeOptions {
        EncodeOptions {
            format: self.format,
            quality: self.quality,
            webp_method: self.webp_method,
        }
    }
}

/// Runs the whole pipeline on an uploaded file. `extension` is the object key's extension, which
/// must agree with the content too. Never panics: a panic inside a decoder is caught here, as a
/// last resort, and becomes a `corrupt` rejection.
pub fn process_image(
    bytes: &[u8],
    declared: ContentType,
    extension: Option<&str>,
    opts: &PipelineOptions,
) -> Result<Processed, Rejection> {
    process_with_checksum(
        bytes,
        Sha256::digest(bytes).into(),
        declared,
        extension,
        opts,
    )
}

/// [`process_image`] for a file whose SHA-256 is already known: the process function hashes the
/// object while it downloads, so the hash costs no processing time.
pub fn process_with_checksum(
    bytes: &[u8],
    sha256: [u8; 32],
    declared: ContentType,
    extension: Option<&str>,
    opts: &PipelineOptions,
) -> Result<Processed, Rejection> {
    catch_unwind(AssertUnwindSafe(|| {
        if heif::handles(declared) {
            heif::process(bytes, sha256, declared, extension, opts)
        } else if declared.kind() == MediaKind::Image {
            process_unguarded(bytes, sha256, declared, extension, opts)
        } else if declared.kind().is_streamed() {
            // The process function reads these by ranges from S3; a file in memory is read the
            // same way, through a slice.
            let started = Instant::now();
            let metadata = av::check(&mut av::SliceSource(bytes), declared, extension, opts)?;
            Ok(Processed {
                metadata: MediaMetadata {
                    sha256: hex::encode(sha256),
                    ..metadata
                },
                thumbnails: Vec::new(),
                original_webp: None,
                timings: Timings {
                    inspect: started.elapsed(),
                    ..Timings::default()
                },
            })
        } else {
            document::process(bytes, sha256, declared, extension, opts)
        }
    }))
    .unwrap_or_else(|_| {
        Err(Rejection::new(
            RejectionCode::Corrupt,
            "the file could not be decoded",
        ))
    })
}

pub(crate) fn reject(code: RejectionCode, message: impl Into<String>) -> Rejection {
    Rejection::new(code, message)
}

/// `too_large` when the file is over `limit` bytes.
pub(crate) fn check_size(bytes: &[u8], limit: u64) -> Result<(), Rejection> {
    if bytes.len() as u64 > limit {
        return Err(reject(
            RejectionCode::TooLarge,
            format!("the file is {} bytes; the limit is {limit}", bytes.len()),
        ));
    }
    Ok(())
}

fn process_unguarded(
    bytes: &[u8],
    sha256: [u8; 32],
    declared: ContentType,
    extension: Option<&str>,
    opts: &PipelineOptions,
) -> Result<Processed, Rejection> {
    let started = Instant::now();
    check_size(bytes, opts.max_bytes)?;
    let kind = check_type(bytes, declared, extension, &opts.allowed_types)?;

    let structure =
        container::walk(bytes, kind).map_err(|e| reject(RejectionCode::Corrupt, e.0))?;
    let within = |code, what: &str, value: u64, limit: u64| {
        if value > limit {
            return Err(reject(
                code,
                format!("the file has {value} {what}; the limit is {limit}"),
            ));
        }
        Ok(())
    };
    within(
        RejectionCode::MetadataTooLarge,
        "bytes of metadata",
        structure.metadata_bytes,
        opts.max_metadata_bytes,
    )?;
    within(
        RejectionCode::TooManyFrames,
        "frames",
        u64::from(structure.frames),
        u64::from(opts.max_frames),
    )?;

    // Dimensions from the header, checked before any pixel buffer exists.
    let header = decode::header(bytes, kind)?;
    check_dimensions(header.width, header.height, opts)?;

    let exif = if structure.metadata_bytes > 0 {
        read_exif(bytes)
    } else {
        Default::default()
    };
    let orientation = exif.orientation.unwrap_or(1);
    let inspected = started.elapsed();

    // Only as many pixels as the largest derivative needs, unless the original is converted.
    let largest = opts.sizes.iter().map(|s| s.size).max().unwrap_or(0);
    let min_longest =
        (!opts.convert_original_to_webp || kind == ContentType::Webp).then_some(largest.max(1));
    let mut limits = Limits::default();
    limits.max_image_width = Some(opts.max_side);
    limits.max_image_height = Some(opts.max_side);
    // Room for a 16-bit RGBA decode at the pixel limit, and no more.
    limits.max_alloc = Some(opts.max_pixels.saturating_mul(8).max(64 << 20));
    let decoded = decode::decode(bytes, kind, header, min_longest, &structure, limits)?;
    let decode_time = started.elapsed() - inspected;

    let mut timings = Timings {
        inspect: inspected,
        decode: decode_time,
        ..Timings::default()
    };
    let (thumbnails, smallest) = make_thumbnails(
        &decoded,
        (header.width, header.height),
        orientation,
        opts,
        &mut timings,
    )?;

    let original_webp = if opts.convert_original_to_webp && kind != ContentType::Webp {
        let t = Instant::now();
        let full = decoded.oriented(orientation);
        let webp = encode::webp(&full, opts.quality, opts.webp_method)
            .map_err(|e| reject(RejectionCode::Corrupt, e.to_string()))?;
        timings.encode += t.elapsed();
        (webp.len() < bytes.len()).then_some(webp)
    } else {
        None
    };

    let swaps = (5..=8).contains(&orientation);
    let (width, height) = if swaps {
        (header.height, header.width)
    } else {
        (header.width, header.height)
    };
    Ok(Processed {
        metadata: MediaMetadata {
            width: Some(width),
            height: Some(height),
            format: kind.format_name().to_owned(),
            size: bytes.len() as u64,
            sha256: hex::encode(sha256),
            exif,
            frames: (structure.frames > 1).then_some(structure.frames),
            blurhash: smallest.as_ref().and_then(placeholder::blurhash),
            dominant_color: smallest.as_ref().and_then(placeholder::dominant_color),
            ..MediaMetadata::default()
        },
        thumbnails,
        original_webp,
        timings,
    })
}

/// The content must be an accepted raster type, the declared one, and the key's extension's.
fn check_type(
    bytes: &[u8],
    declared: ContentType,
    extension: Option<&str>,
    allowed: &[ContentType],
) -> Result<ContentType, Rejection> {
    let detected = match sniff(bytes) {
        Sniffed::Raster(t) => t,
        Sniffed::Unsupported(mime) => {
            return Err(reject(
                RejectionCode::UnsupportedType,
                format!("{mime} images are not accepted"),
            ));
        }
        Sniffed::NotAnImage => {
            return Err(reject(
                RejectionCode::NotAnImage,
                "the content is not a recognised image",
            ));
        }
    };
    if !allowed.contains(&detected) {
        return Err(reject(
            RejectionCode::UnsupportedType,
            format!("{detected} images are not accepted"),
        ));
    }
    if detected != declared {
        return Err(reject(
            RejectionCode::TypeMismatch,
            format!("declared {declared} but the content is {detected}"),
        ));
    }
    if let Some(ext) = extension
        && ContentType::from_extension(ext) != Some(detected)
    {
        return Err(reject(
            RejectionCode::TypeMismatch,
            format!("the content is {detected} but the name ends in .{ext}"),
        ));
    }
    Ok(detected)
}

pub(crate) fn check_dimensions(
    width: u32,
    height: u32,
    opts: &PipelineOptions,
) -> Result<(), Rejection> {
    let pixels = u64::from(width) * u64::from(height);
    if width == 0 || height == 0 {
        return Err(reject(RejectionCode::Corrupt, "the image has no pixels"));
    }
    if width > opts.max_side || height > opts.max_side || pixels > opts.max_pixels {
        return Err(reject(
            RejectionCode::TooLargeDimensions,
            format!(
                "{width}x{height} ({:.1} MP) is over the limit of {:.1} MP and {} px a side",
                pixels as f64 / 1e6,
                opts.max_pixels as f64 / 1e6,
                opts.max_side
            ),
        ));
    }
    Ok(())
}

/// The derivatives, largest first, each resized from the previous (larger) one and oriented
/// only once it is small. Also returns the smallest, oriented, for the placeholders.
pub(crate) fn make_thumbnails(
    decoded: &Raster,
    (stored_w, stored_h): (u32, u32),
    orientation: u8,
    opts: &PipelineOptions,
    timings: &mut Timings,
) -> Result<(Vec<Thumbnail>, Option<Raster>), Rejection> {
    let mut sizes = opts.sizes.clone();
    sizes.sort_by_key(|s| std::cmp::Reverse(s.size));
    let mut resizer = resize::Lanczos::default();
    let mut out = Vec::with_capacity(sizes.len());
    let mut smallest = None;
    let mut source: std::borrow::Cow<'_, Raster> = std::borrow::Cow::Borrowed(decoded);
    for spec in sizes {
        let t = Instant::now();
        // Sized from the stored dimensions, so the result does not depend on the decode scale.
        let (w, h) = fit_inside(stored_w, stored_h, spec.size);
        let (w, h) = (w.min(source.width).max(1), h.min(source.height).max(1));
        let resized = resizer
            .resize(&source, w, h)
            .map_err(|e| reject(RejectionCode::Corrupt, e.to_string()))?;
        let oriented = resized.oriented(orientation);
        let t2 = Instant::now();
        timings.resize += t2 - t;
        let bytes = encode::encode(&oriented, opts.encoding())
            .map_err(|e| reject(RejectionCode::Corrupt, e.to_string()))?;
        timings.encode += t2.elapsed();
        out.push(Thumbnail {
            name: spec.name,
            width: oriented.width,
            height: oriented.height,
            bytes,
            format: opts.format,
        });
        smallest = Some(oriented);
        source = std::borrow::Cow::Owned(resized);
    }
    Ok((out, smallest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> PipelineOptions {
        PipelineOptions {
            allowed_types: vec![ContentType::Jpeg, ContentType::Png, ContentType::Webp],
            max_pixels: 50_000_000,
            max_side: 16384,
            max_bytes: 5 << 20,
            max_frames: 1000,
            max_metadata_bytes: 1 << 20,
            sizes: vec![
                ThumbnailSize {
                    name: "small".into(),
                    size: 150,
                },
                ThumbnailSize {
                    name: "medium".into(),
                    size: 400,
                },
                ThumbnailSize {
                    name: "large".into(),
                    size: 800,
                },
            ],
            format: ThumbnailFormat::Webp,
            quality: 80,
            webp_method: DEFAULT_WEBP_METHOD,
            convert_original_to_webp: false,
            documents: DocumentOptions::default(),
        }
    }

    fn png(w: u32, h: u32) -> Vec<u8> {
        use image::{DynamicImage, ImageFormat};
        use std::io::Cursor;
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([x as u8, y as u8, 7])
        }));
        let mut out = Vec::new();
        let _ = img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png);
        out
    }

    #[test]
    fn a_small_png_gets_three_unscaled_webp_thumbnails() -> Result<(), Rejection> {
        let p = process_image(&png(300, 200), ContentType::Png, Some("png"), &opts())?;
        assert_eq!(
            (
                p.metadata.width,
                p.metadata.height,
                p.metadata.format.as_str()
            ),
            (Some(300), Some(200), "png")
        );
        let dims: Vec<_> = p
            .thumbnails
            .iter()
            .map(|t| (t.name.as_str(), t.width, t.height))
            .collect();
        assert_eq!(
            dims,
            [
                ("large", 300, 200),
                ("medium", 300, 200),
                ("small", 150, 100)
            ]
        );
        for t in &p.thumbnails {
            assert_eq!(
                image::guess_format(&t.bytes).ok(),
                Some(image::ImageFormat::WebP)
            );
        }
        Ok(())
    }

    #[test]
    fn text_named_as_an_image_is_not_an_image() {
        let err = process_image(
            b"push graphic-context\nviewbox 0 0 640 480",
            ContentType::Jpeg,
            None,
            &opts(),
        )
        .unwrap_err();
        assert_eq!(err.code, RejectionCode::NotAnImage);
    }

    #[test]
    fn a_png_named_jpg_is_a_type_mismatch() {
        let err = process_image(&png(4, 4), ContentType::Png, Some("jpg"), &opts()).unwrap_err();
        assert_eq!(err.code, RejectionCode::TypeMismatch);
    }

    #[test]
    fn a_png_declared_as_jpeg_is_a_type_mismatch() {
        let err = process_image(&png(4, 4), ContentType::Jpeg, None, &opts()).unwrap_err();
        assert_eq!(err.code, RejectionCode::TypeMismatch);
    }

    #[test]
    fn dimensions_are_checked_from_the_header() {
        let mut o = opts();
        o.max_pixels = 100;
        let err = process_image(&png(20, 20), ContentType::Png, None, &o).unwrap_err();
        assert_eq!(err.code, RejectionCode::TooLargeDimensions);
    }

    #[test]
    fn a_truncated_png_is_corrupt() {
        let bytes = png(64, 64);
        let err =
            process_image(&bytes[..bytes.len() / 2], ContentType::Png, None, &opts()).unwrap_err();
        assert_eq!(err.code, RejectionCode::Corrupt);
    }

    /// A baseline JPEG of a gradient, with `segments` inserted after SOI.
    fn jpeg(w: usize, h: usize, segments: &[Vec<u8>]) -> Vec<u8> {
        let pixels: Vec<u8> = (0..w * h)
            .flat_map(|i| [(i % w) as u8, (i / w) as u8, 90])
            .collect();
        let image = turbojpeg::Image {
            pixels: pixels.as_slice(),
            width: w,
            pitch: w * 3,
            height: h,
            format: turbojpeg::PixelFormat::RGB,
        };
        let plain = turbojpeg::compress(image, 90, turbojpeg::Subsamp::Sub2x2)
            .expect("compress")
            .to_vec();
        let mut out = plain[..2].to_vec();
        for seg in segments {
            out.extend(seg);
        }
        out.extend(&plain[2..]);
        out
    }

    fn app1(payload: &[u8]) -> Vec<u8> {
        let len = u16::try_from(payload.len() + 2).expect("segment length");
        let mut seg = vec![0xFF, 0xE1];
        seg.extend(len.to_be_bytes());
        seg.extend(payload);
        seg
    }

    /// A little-endian TIFF with one IFD0 entry: Make, ASCII, pointing at `make`.
    fn exif_with_make(make: &[u8]) -> Vec<u8> {
        let mut tiff = b"II*\0\x08\0\0\0".to_vec();
        tiff.extend(1u16.to_le_bytes()); // one entry
        tiff.extend(0x010Fu16.to_le_bytes()); // Make
        tiff.extend(2u16.to_le_bytes()); // ASCII
        tiff.extend((make.len() as u32 + 1).to_le_bytes());
        tiff.extend(26u32.to_le_bytes()); // value offset: right after the IFD
        tiff.extend(0u32.to_le_bytes()); // no next IFD
        tiff.extend(make);
        tiff.push(0);
        let mut payload = b"Exif\0\0".to_vec();
        payload.extend(tiff);
        payload
    }

    #[test]
    fn broken_exif_never_rejects_a_good_image() -> Result<(), Rejection> {
        for garbage in [
            b"Exif\0\0".to_vec(),
            b"Exif\0\0II*\0\xff\xff\xff\x7f".to_vec(),
            b"Exif\0\0MM\0*\0\0\0\x08\xff\xff".to_vec(),
            [b"Exif\0\0".as_slice(), &[0xAB; 3000]].concat(),
        ] {
            let p = process_image(
                &jpeg(64, 48, &[app1(&garbage)]),
                ContentType::Jpeg,
                None,
                &opts(),
            )?;
            assert_eq!((p.metadata.width, p.metadata.height), (Some(64), Some(48)));
            assert!(p.metadata.exif.is_empty());
        }
        Ok(())
    }

    #[test]
    fn exif_text_is_sanitised_and_capped() -> Result<(), Rejection> {
        let mut make = b"Evil\x07\x1b[31mCorp\n".to_vec();
        make.extend([b'x'; 400]);
        let file = jpeg(32, 32, &[app1(&exif_with_make(&make))]);
        let p = process_image(&file, ContentType::Jpeg, None, &opts())?;
        let got = p.metadata.exif.make.unwrap_or_default();
        assert!(got.starts_with("Evil[31mCorp"), "{got:?}");
        assert!(!got.chars().any(char::is_control));
        assert_eq!(got.chars().count(), 128);
        Ok(())
    }

    #[test]
    fn metadata_over_the_limit_is_refused_before_decoding() {
        let file = jpeg(16, 16, &vec![app1(&[0u8; 60_000]); 3]);
        let mut o = opts();
        o.max_metadata_bytes = 100_000;
        let err = process_image(&file, ContentType::Jpeg, None, &o).unwrap_err();
        assert_eq!(err.code, RejectionCode::MetadataTooLarge);
        o.max_metadata_bytes = 200_000;
        assert!(process_image(&file, ContentType::Jpeg, None, &o).is_ok());
    }

    #[test]
    fn frames_over_the_limit_are_refused() {
        // A GIF with three 1x1 frames.
        let mut gif = b"GIF89a\x01\0\x01\0\x80\0\0\0\0\0\xff\xff\xff".to_vec();
        for _ in 0..3 {
            gif.extend(b"\x2C\0\0\0\0\x01\0\x01\0\0\x02\x02\x44\x01\0");
        }
        gif.push(0x3B);
        let mut o = opts();
        o.allowed_types.push(ContentType::Gif);
        let p = process_image(&gif, ContentType::Gif, Some("gif"), &o);
        assert_eq!(p.map(|p| p.metadata.frames), Ok(Some(3)));
        o.max_frames = 2;
        let err = process_image(&gif, ContentType::Gif, None, &o).unwrap_err();
        assert_eq!(err.code, RejectionCode::TooManyFrames);
    }

    /// A Display P3 orange, and what it is in sRGB.
    const P3_ORANGE: [u8; 3] = [230, 120, 40];

    fn p3_icc() -> Vec<u8> {
        moxcms::ColorProfile::new_display_p3()
            .encode()
            .expect("encodes")
    }

    /// `file` carries a Display P3 profile: its thumbnails are in sRGB (PNG thumbnails, so that
    /// only the input's own encoding loss is left).
    fn assert_converted_to_srgb(file: &[u8], kind: ContentType) {
        let mut expected = P3_ORANGE.to_vec();
        assert!(color::to_srgb(&mut expected, 3, &p3_icc()));
        let mut o = opts();
        o.format = ThumbnailFormat::Png;
        let p = process_image(file, kind, None, &o).expect("accepted");
        for t in &p.thumbnails {
            let img = image::load_from_memory(&t.bytes)
                .expect("decodes")
                .to_rgb8();
            let px = img.get_pixel(img.width() / 2, img.height() / 2).0;
            for c in 0..3 {
                assert!(
                    px[c].abs_diff(expected[c]) <= 3,
                    "{kind:?} {}: {px:?}, expected about {expected:?} (P3 {P3_ORANGE:?})",
                    t.name
                );
            }
        }
    }

    #[test]
    fn display_p3_inputs_get_srgb_thumbnails() {
        let (w, h) = (64usize, 48usize);
        let pixels: Vec<u8> = P3_ORANGE.repeat(w * h);

        // JPEG, the profile in an APP2 ICC_PROFILE segment (as iPhones write it).
        let image = turbojpeg::Image {
            pixels: pixels.as_slice(),
            width: w,
            pitch: w * 3,
            height: h,
            format: turbojpeg::PixelFormat::RGB,
        };
        let plain = turbojpeg::compress(image, 98, turbojpeg::Subsamp::None)
            .expect("compress")
            .to_vec();
        let icc = p3_icc();
        let mut app2 = vec![0xFF, 0xE2];
        app2.extend(u16::try_from(icc.len() + 16).expect("fits").to_be_bytes());
        app2.extend(b"ICC_PROFILE\0\x01\x01");
        app2.extend(&icc);
        let mut file = plain[..2].to_vec();
        file.extend(app2);
        file.extend(&plain[2..]);
        assert_converted_to_srgb(&file, ContentType::Jpeg);

        // PNG, in an iCCP chunk (as macOS screenshots are).
        let mut file = Vec::new();
        let mut encoder = image::codecs::png::PngEncoder::new(&mut file);
        image::ImageEncoder::set_icc_profile(&mut encoder, icc.clone()).expect("icc");
        image::ImageEncoder::write_image(
            encoder,
            &pixels,
            w as u32,
            h as u32,
            image::ExtendedColorType::Rgb8,
        )
        .expect("png");
        assert_converted_to_srgb(&file, ContentType::Png);

        // WebP, in an ICCP chunk after VP8X.
        let mut lossless = Vec::new();
        image::ImageEncoder::write_image(
            image::codecs::webp::WebPEncoder::new_lossless(&mut lossless),
            &pixels,
            w as u32,
            h as u32,
            image::ExtendedColorType::Rgb8,
        )
        .expect("webp");
        let chunk = |name: &[u8], body: &[u8]| {
            let mut c = name.to_vec();
            c.extend(u32::try_from(body.len()).expect("fits").to_le_bytes());
            c.extend(body);
            if body.len() % 2 == 1 {
                c.push(0);
            }
            c
        };
        let mut vp8x = vec![0x20, 0, 0, 0]; // ICC flag
        vp8x.extend(&u32::try_from(w - 1).expect("fits").to_le_bytes()[..3]);
        vp8x.extend(&u32::try_from(h - 1).expect("fits").to_le_bytes()[..3]);
        let mut body = b"WEBP".to_vec();
        body.extend(chunk(b"VP8X", &vp8x));
        body.extend(chunk(b"ICCP", &icc));
        body.extend(&lossless[12..]); // the VP8L chunk
        let file = chunk(b"RIFF", &body);
        assert_converted_to_srgb(&file, ContentType::Webp);
    }

    #[test]
    fn the_original_can_be_converted_to_an_upright_webp() -> Result<(), Rejection> {
        let mut o = opts();
        o.convert_original_to_webp = true;
        // Orientation 6: stored 60x40, displayed 40x60.
        let tiff_orientation_6 = {
            let mut t = b"Exif\0\0II*\0\x08\0\0\0\x01\0".to_vec();
            t.extend(0x0112u16.to_le_bytes());
            t.extend(3u16.to_le_bytes());
            t.extend(1u32.to_le_bytes());
            t.extend([6, 0, 0, 0]);
            t.extend(0u32.to_le_bytes());
            t
        };
        let file = jpeg(60, 40, &[app1(&tiff_orientation_6)]);
        let p = process_image(&file, ContentType::Jpeg, None, &o)?;
        let webp = p.original_webp.expect("smaller than a q90 JPEG");
        let decoded = image::load_from_memory(&webp).expect("decodes");
        assert_eq!((decoded.width(), decoded.height()), (40, 60));
        assert_eq!((p.metadata.width, p.metadata.height), (Some(40), Some(60)));
        Ok(())
    }
}
