//! The image pipeline: bytes in, metadata and derivatives (or a rejection) out. Pure and
//! synchronous: no I/O, so it runs in `spawn_blocking`, in `media-dev process` and in tests alike.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

use image::imageops::FilterType;
use image::metadata::Orientation;
use image::{DynamicImage, ImageError, ImageFormat, ImageReader, Limits};
use sha2::{Digest, Sha256};

use crate::config::{Config, ThumbnailFormat, ThumbnailSize};
use crate::domain::{ContentType, ExifData, ImageMetadata, Rejection, RejectionCode};

/// The knobs of the pipeline, taken from [`Config`].
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// Types accepted.
    pub allowed_types: Vec<ContentType>,
    /// Largest width x height.
    pub max_pixels: u64,
    /// Largest width or height.
    pub max_side: u32,
    /// Largest upload in bytes.
    pub max_bytes: u64,
    /// Derivatives to make.
    pub sizes: Vec<ThumbnailSize>,
    /// Their format.
    pub format: ThumbnailFormat,
    /// Their lossy quality.
    pub quality: u8,
}

impl PipelineOptions {
    /// The options the deployed function uses.
    pub fn from_config(config: &Config) -> Self {
        Self {
            allowed_types: config.allowed_types.clone(),
            max_pixels: config.max_image_pixels,
            max_side: config.max_image_side,
            max_bytes: config.max_file_size,
            sizes: config.thumbnail_sizes.clone(),
            format: config.thumbnail_format,
            quality: config.thumbnail_quality,
        }
    }
}

/// One encoded derivative.
#[derive(Debug, Clone)]
pub struct Thumbnail {
    /// Its size name (`small`, ...).
    pub name: String,
    /// Pixel width.
    pub width: u32,
    /// Pixel height.
    pub height: u32,
    /// The encoded file, with no metadata of the original.
    pub bytes: Vec<u8>,
    /// Its format.
    pub format: ThumbnailFormat,
}

/// A successfully processed image.
#[derive(Debug, Clone)]
pub struct Processed {
    /// What is stored in the record.
    pub metadata: ImageMetadata,
    /// The derivatives, largest first.
    pub thumbnails: Vec<Thumbnail>,
}

/// Runs the whole pipeline on an uploaded file. Never panics: a panic inside a decoder is caught
/// here, as a last resort, and becomes a `corrupt` rejection.
pub fn process_image(
    bytes: &[u8],
    declared: ContentType,
    opts: &PipelineOptions,
) -> Result<Processed, Rejection> {
    catch_unwind(AssertUnwindSafe(|| {
        process_unguarded(bytes, declared, opts)
    }))
    .unwrap_or_else(|_| {
        Err(Rejection::new(
            RejectionCode::Corrupt,
            "the image could not be decoded",
        ))
    })
}

fn process_unguarded(
    bytes: &[u8],
    declared: ContentType,
    opts: &PipelineOptions,
) -> Result<Processed, Rejection> {
    if bytes.len() as u64 > opts.max_bytes {
        return Err(Rejection::new(
            RejectionCode::TooLarge,
            format!(
                "the file is {} bytes; the limit is {}",
                bytes.len(),
                opts.max_bytes
            ),
        ));
    }
    let detected = sniff(bytes, declared, &opts.allowed_types)?;
    let format = match detected {
        ContentType::Jpeg => ImageFormat::Jpeg,
        ContentType::Png => ImageFormat::Png,
        ContentType::Webp => ImageFormat::WebP,
        ContentType::Gif => ImageFormat::Gif,
    };

    // Dimensions from the header, checked before any pixel buffer exists.
    let (width, height) = reader(bytes, format, None)
        .into_dimensions()
        .map_err(decode_rejection)?;
    check_dimensions(width, height, opts)?;

    let exif = read_exif(bytes);
    let orientation = exif
        .orientation
        .and_then(Orientation::from_exif)
        .unwrap_or(Orientation::NoTransforms);

    // The decoder's own limits back up the header check.
    let mut limits = Limits::default();
    limits.max_image_width = Some(opts.max_side);
    limits.max_image_height = Some(opts.max_side);
    limits.max_alloc = Some(opts.max_pixels.saturating_mul(8).max(64 << 20));
    let decoded = reader(bytes, format, Some(limits))
        .decode()
        .map_err(decode_rejection)?;

    let thumbnails = make_thumbnails(decoded, orientation, opts)?;
    let (display_w, display_h) = if swaps_axes(orientation) {
        (height, width)
    } else {
        (width, height)
    };
    Ok(Processed {
        metadata: ImageMetadata {
            width: display_w,
            height: display_h,
            format: detected.format_name().to_owned(),
            size: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(bytes)),
            exif,
        },
        thumbnails,
    })
}

/// Checks the magic number against the declared type and the accepted types.
fn sniff(
    bytes: &[u8],
    declared: ContentType,
    allowed: &[ContentType],
) -> Result<ContentType, Rejection> {
    let Some(kind) = infer::get(bytes).filter(|k| k.matcher_type() == infer::MatcherType::Image)
    else {
        return Err(Rejection::new(
            RejectionCode::NotAnImage,
            "the content is not a recognised image",
        ));
    };
    let Ok(detected) = ContentType::parse(kind.mime_type()) else {
        return Err(Rejection::new(
            RejectionCode::UnsupportedType,
            format!("{} images are not accepted", kind.mime_type()),
        ));
    };
    if !allowed.contains(&detected) {
        return Err(Rejection::new(
            RejectionCode::UnsupportedType,
            format!("{detected} images are not accepted"),
        ));
    }
    if detected != declared {
        return Err(Rejection::new(
            RejectionCode::TypeMismatch,
            format!("declared {declared} but the content is {detected}"),
        ));
    }
    Ok(detected)
}

fn reader(bytes: &[u8], format: ImageFormat, limits: Option<Limits>) -> ImageReader<Cursor<&[u8]>> {
    let mut r = ImageReader::new(Cursor::new(bytes));
    r.set_format(format);
    if let Some(l) = limits {
        r.limits(l);
    }
    r
}

fn check_dimensions(width: u32, height: u32, opts: &PipelineOptions) -> Result<(), Rejection> {
    let pixels = u64::from(width) * u64::from(height);
    if width == 0 || height == 0 {
        return Err(Rejection::new(
            RejectionCode::Corrupt,
            "the image has no pixels",
        ));
    }
    if width > opts.max_side || height > opts.max_side || pixels > opts.max_pixels {
        return Err(Rejection::new(
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

fn decode_rejection(err: ImageError) -> Rejection {
    match err {
        ImageError::Limits(_) => Rejection::new(
            RejectionCode::TooLargeDimensions,
            "the image is over the decoding limits",
        ),
        ImageError::Unsupported(e) => Rejection::new(
            RejectionCode::UnsupportedType,
            format!("unsupported image feature: {e}"),
        ),
        other => Rejection::new(
            RejectionCode::Corrupt,
            format!("the image could not be decoded: {other}"),
        ),
    }
}

fn swaps_axes(o: Orientation) -> bool {
    matches!(
        o,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// The size of `(w, h)` fitted inside a `size` square, never upscaled.
pub fn fit_inside(w: u32, h: u32, size: u32) -> (u32, u32) {
    let longest = w.max(h);
    if longest <= size {
        return (w, h);
    }
    let scale = f64::from(size) / f64::from(longest);
    let fit = |v: u32| ((f64::from(v) * scale).round() as u32).clamp(1, size);
    (fit(w), fit(h))
}

fn make_thumbnails(
    image: DynamicImage,
    orientation: Orientation,
    opts: &PipelineOptions,
) -> Result<Vec<Thumbnail>, Rejection> {
    // 8-bit RGB(A) is what every encoder takes; alpha is kept only where the source has it.
    let mut source = if image.color().has_alpha() {
        DynamicImage::ImageRgba8(image.into_rgba8())
    } else {
        DynamicImage::ImageRgb8(image.into_rgb8())
    };
    let mut sizes = opts.sizes.clone();
    sizes.sort_by_key(|s| std::cmp::Reverse(s.size));

    let mut out = Vec::with_capacity(sizes.len());
    for spec in sizes {
        // Each size is made from the previous, larger one: far cheaper than from the original.
        let (w, h) = fit_inside(source.width(), source.height(), spec.size);
        if (w, h) != (source.width(), source.height()) {
            source = source.resize_exact(w, h, FilterType::Lanczos3);
        }
        // Orientation is applied to the small result, not to the full-size decode.
        let mut oriented = source.clone();
        oriented.apply_orientation(orientation);
        let bytes = encode(&oriented, opts.format, opts.quality)?;
        out.push(Thumbnail {
            name: spec.name,
            width: oriented.width(),
            height: oriented.height(),
            bytes,
            format: opts.format,
        });
    }
    Ok(out)
}

fn encode(
    image: &DynamicImage,
    format: ThumbnailFormat,
    quality: u8,
) -> Result<Vec<u8>, Rejection> {
    let failed = |e: &dyn std::fmt::Display| {
        Rejection::new(RejectionCode::Corrupt, format!("encoding failed: {e}"))
    };
    match format {
        ThumbnailFormat::Webp => {
            let encoder = match image {
                DynamicImage::ImageRgba8(b) => {
                    webp::Encoder::from_rgba(b.as_raw(), b.width(), b.height())
                }
                DynamicImage::ImageRgb8(b) => {
                    webp::Encoder::from_rgb(b.as_raw(), b.width(), b.height())
                }
                _ => return Err(failed(&"unexpected pixel layout")),
            };
            encoder
                .encode_simple(false, f32::from(quality))
                .map(|m| m.to_vec())
                .map_err(|e| failed(&format!("{e:?}")))
        }
        ThumbnailFormat::Jpeg => {
            let mut out = Vec::new();
            let rgb = DynamicImage::ImageRgb8(image.to_rgb8());
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
                .encode_image(&rgb)
                .map_err(|e| failed(&e))?;
            Ok(out)
        }
        ThumbnailFormat::Png => {
            let mut out = Vec::new();
            image
                .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
                .map_err(|e| failed(&e))?;
            Ok(out)
        }
    }
}

/// Reads the EXIF fields the service reports. Broken EXIF never rejects an image: whatever parses
/// is kept, the rest is dropped.
pub fn read_exif(bytes: &[u8]) -> ExifData {
    use exif::{In, Tag, Value};
    let Ok(exif) = exif::Reader::new().read_from_container(&mut Cursor::new(bytes)) else {
        return ExifData::default();
    };
    let field = |tag| exif.get_field(tag, In::PRIMARY).map(|f| &f.value);
    let text = |tag| match field(tag) {
        Some(Value::Ascii(parts)) => parts.first().and_then(|p| clean_text(p)),
        _ => None,
    };
    let rational = |tag| match field(tag) {
        Some(Value::Rational(v)) => v.first().filter(|r| r.denom != 0).copied(),
        _ => None,
    };
    let coordinate = |tag, ref_tag, negative: &[u8]| -> Option<f64> {
        let Some(Value::Rational(dms)) = field(tag) else {
            return None;
        };
        if dms.len() < 3 || dms.iter().take(3).any(|r| r.denom == 0) {
            return None;
        }
        let deg = dms[0].to_f64() + dms[1].to_f64() / 60.0 + dms[2].to_f64() / 3600.0;
        let sign = match field(ref_tag) {
            Some(Value::Ascii(r))
                if r.first()
                    .is_some_and(|r| r.first().is_some_and(|c| negative.contains(c))) =>
            {
                -1.0
            }
            _ => 1.0,
        };
        Some(((sign * deg) * 1e6).round() / 1e6).filter(|v| v.is_finite())
    };
    let latitude =
        coordinate(Tag::GPSLatitude, Tag::GPSLatitudeRef, b"Ss").filter(|v| v.abs() <= 90.0);
    let longitude =
        coordinate(Tag::GPSLongitude, Tag::GPSLongitudeRef, b"Ww").filter(|v| v.abs() <= 180.0);
    let (gps_latitude, gps_longitude) = match (latitude, longitude) {
        (Some(a), Some(b)) => (Some(a), Some(b)),
        _ => (None, None),
    };
    let orientation = field(Tag::Orientation)
        .and_then(|v| v.get_uint(0))
        .map(|o| match o {
            1..=8 => o as u8,
            _ => 1, // 0 or garbage counts as "no transform"
        });
    ExifData {
        date_time: text(Tag::DateTimeOriginal).or_else(|| text(Tag::DateTime)),
        make: text(Tag::Make),
        model: text(Tag::Model),
        gps_latitude,
        gps_longitude,
        orientation,
        f_number: rational(Tag::FNumber).map(|r| (r.to_f64() * 100.0).round() / 100.0),
        exposure_time: rational(Tag::ExposureTime).map(|r| {
            if r.num == 1 || r.num == 0 {
                format!("{}/{}", r.num, r.denom)
            } else {
                format!("{}", (r.to_f64() * 1e4).round() / 1e4)
            }
        }),
        iso: field(Tag::PhotographicSensitivity).and_then(|v| v.get_uint(0)),
    }
}

/// Printable text only, trimmed, at most 128 characters.
fn clean_text(raw: &[u8]) -> Option<String> {
    let s: String = String::from_utf8_lossy(raw)
        .chars()
        .filter(|c| !c.is_control())
        .take(128)
        .collect();
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
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
        }
    }

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([x as u8, y as u8, 7])
        }));
        let mut out = Vec::new();
        let _ = img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png);
        out
    }

    #[test]
    fn fit_inside_never_upscales() {
        assert_eq!(fit_inside(1800, 1200, 800), (800, 533));
        assert_eq!(fit_inside(1200, 1800, 150), (100, 150));
        assert_eq!(fit_inside(32, 32, 150), (32, 32));
        assert_eq!(fit_inside(10000, 1, 150), (150, 1));
    }

    #[test]
    fn a_small_png_gets_three_unscaled_webp_thumbnails() -> Result<(), Rejection> {
        let p = process_image(&png(300, 200), ContentType::Png, &opts())?;
        assert_eq!(
            (
                p.metadata.width,
                p.metadata.height,
                p.metadata.format.as_str()
            ),
            (300, 200, "png")
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
            assert_eq!(image::guess_format(&t.bytes).ok(), Some(ImageFormat::WebP));
        }
        Ok(())
    }

    #[test]
    fn text_named_as_an_image_is_not_an_image() {
        let err = process_image(
            b"push graphic-context\nviewbox 0 0 640 480",
            ContentType::Jpeg,
            &opts(),
        )
        .unwrap_err();
        assert_eq!(err.code, RejectionCode::NotAnImage);
    }

    #[test]
    fn a_png_declared_as_jpeg_is_a_type_mismatch() {
        let err = process_image(&png(4, 4), ContentType::Jpeg, &opts()).unwrap_err();
        assert_eq!(err.code, RejectionCode::TypeMismatch);
    }

    #[test]
    fn dimensions_are_checked_from_the_header() {
        let mut o = opts();
        o.max_pixels = 100;
        let err = process_image(&png(20, 20), ContentType::Png, &o).unwrap_err();
        assert_eq!(err.code, RejectionCode::TooLargeDimensions);
    }

    #[test]
    fn a_truncated_png_is_corrupt() {
        let bytes = png(64, 64);
        let err = process_image(&bytes[..bytes.len() / 2], ContentType::Png, &opts()).unwrap_err();
        assert_eq!(err.code, RejectionCode::Corrupt);
    }
}
