//! HEIC/HEIF photos (HEVC in HEIF: what iPhones and many Android phones save), through `heifer`,
//! a container parser and HEVC decoder in safe Rust, and AVIF images (AV1 in HEIF: Android
//! phones, cameras, the web), through heifer's parser and rav1d ([`avif`], [`av1`]; animated
//! ones in [`sequence`]). The same guarantees as the other images:
//! the `ftyp` brands checked against the declared type, the dimensions read from the container
//! (`ispe`) and checked before any pixel buffer exists, grids assembled within the pixel limit,
//! `irot`/`imir` applied (and an EXIF orientation inside the file not applied again, as libheif
//! does), colour converted to sRGB from the ICC profile or `nclx`, 10- and 12-bit reduced to
//! 8-bit, alpha kept, EXIF read from the `Exif` item. Damaged files are `corrupt`.

mod av1;
mod avif;
mod sequence;

use std::time::Instant;

use heifer::heifer_isobmff::HeifFile;
use media_core::domain::{ContentType, ExifData, MediaMetadata, Rejection, RejectionCode};

use crate::{
    PipelineOptions, Processed, Raster, Timings, check_dimensions, check_size, exif,
    make_thumbnails, placeholder, reject, sniff,
};

/// Whether `declared` is read here.
pub(crate) fn handles(declared: ContentType) -> bool {
    matches!(
        declared,
        ContentType::Heic | ContentType::Heif | ContentType::Avif
    )
}

/// Whether two of these types name the same coding (`image/heic` and `image/heif` both name
/// HEVC-coded files).
fn same_coding(a: ContentType, b: ContentType) -> bool {
    (a == ContentType::Avif) == (b == ContentType::Avif)
}

pub(crate) fn process(
    bytes: &[u8],
    sha256: [u8; 32],
    declared: ContentType,
    extension: Option<&str>,
    opts: &PipelineOptions,
) -> Result<Processed, Rejection> {
    let started = Instant::now();
    check_size(bytes, opts.max_bytes)?;
    if !opts.allowed_types.contains(&declared) {
        return Err(reject(
            RejectionCode::UnsupportedType,
            format!("{declared} images are not accepted"),
        ));
    }
    check_content(bytes, declared)?;
    if let Some(ext) = extension
        && !ContentType::from_extension(ext).is_some_and(|t| handles(t) && same_coding(t, declared))
    {
        return Err(reject(
            RejectionCode::TypeMismatch,
            format!("the content is {declared} but the name ends in .{ext}"),
        ));
    }

    let corrupt = |e: String| reject(RejectionCode::Corrupt, e);
    // An animated AVIF: its frames are counted, and when it has no still image its first frame
    // is what the thumbnails show.
    let sequence = if declared == ContentType::Avif {
        sequence::read(bytes).map_err(corrupt)?
    } else {
        None
    };
    if let Some(frames) = sequence.as_ref().map(|s| s.frames)
        && frames > opts.max_frames
    {
        return Err(reject(
            RejectionCode::TooManyFrames,
            format!(
                "the file has {frames} frames; the limit is {}",
                opts.max_frames
            ),
        ));
    }
    let frames = sequence.as_ref().map_or(1, |s| s.frames);
    // The still image when the file has a usable one; else (an animated AVIF without one, or
    // whose still image is broken) the sequence's first frame.
    let (image, exif, inspected) = match (HeifFile::parse(bytes), sequence) {
        (Ok(file), _) => still(bytes, &file, declared, opts, started)?,
        (Err(_), Some(sequence)) => {
            check_dimensions(sequence.width, sequence.height, opts)?;
            let inspected = started.elapsed();
            let image = avif::decode_frame(&sequence.first, opts.max_pixels).map_err(|e| {
                reject(
                    RejectionCode::Corrupt,
                    format!("the image could not be decoded: {e}"),
                )
            })?;
            (image, ExifData::default(), inspected)
        }
        (Err(e), None) => return Err(corrupt(e.to_string())),
    };
    // Grids and transforms may change the size the container declared: check what came out.
    check_dimensions(image.width, image.height, opts)?;
    let decoded = Raster {
        width: image.width,
        height: image.height,
        channels: 4,
        data: image.data,
    };
    let decoded = if image.has_alpha {
        decoded
    } else {
        decoded.drop_opaque_alpha()
    };
    let mut timings = Timings {
        inspect: inspected,
        decode: started.elapsed() - inspected,
        ..Timings::default()
    };
    let (thumbnails, smallest) = make_thumbnails(
        &decoded,
        (decoded.width, decoded.height),
        1,
        opts,
        &mut timings,
    )?;
    let original_webp = if opts.convert_original_to_webp {
        let t = Instant::now();
        let webp = crate::encode::webp(&decoded, opts.quality, opts.webp_method)
            .map_err(|e| reject(RejectionCode::Corrupt, e.to_string()))?;
        timings.encode += t.elapsed();
        (webp.len() < bytes.len()).then_some(webp)
    } else {
        None
    };
    Ok(Processed {
        metadata: MediaMetadata {
            width: Some(decoded.width),
            height: Some(decoded.height),
            format: declared.format_name().to_owned(),
            size: bytes.len() as u64,
            sha256: hex::encode(sha256),
            exif,
            frames: (frames > 1).then_some(frames),
            blurhash: smallest.as_ref().and_then(placeholder::blurhash),
            dominant_color: smallest.as_ref().and_then(placeholder::dominant_color),
            ..MediaMetadata::default()
        },
        thumbnails,
        original_webp,
        timings,
    })
}

/// A still image (HEIC, HEIF, AVIF; or an animated AVIF's still image): its size and metadata
/// checked from the container, then decoded. Returns the image, its EXIF and when inspection
/// ended.
fn still(
    bytes: &[u8],
    file: &HeifFile<'_>,
    declared: ContentType,
    opts: &PipelineOptions,
    started: Instant,
) -> Result<(heifer::Image<u8>, ExifData, std::time::Duration), Rejection> {
    let corrupt = |e: heifer::heifer_isobmff::Error| reject(RejectionCode::Corrupt, e.to_string());
    let primary = file.primary_id;
    let (width, height) = file
        .image_size(primary)
        .map_err(corrupt)?
        .ok_or_else(|| reject(RejectionCode::Corrupt, "the image has no size (ispe)"))?;
    // Before any pixel exists: the size the container declares, grids included.
    check_dimensions(width, height, opts)?;
    let exif_bytes = file.exif(primary).map_err(corrupt)?;
    let metadata_bytes = [
        exif_bytes.as_ref().map_or(0, Vec::len),
        file.xmp(primary).map_err(corrupt)?.map_or(0, |x| x.len()),
        file.icc_profile(primary)
            .map_err(corrupt)?
            .map_or(0, <[u8]>::len),
    ]
    .iter()
    .sum::<usize>() as u64;
    if metadata_bytes > opts.max_metadata_bytes {
        return Err(reject(
            RejectionCode::MetadataTooLarge,
            format!(
                "the file has {metadata_bytes} bytes of metadata; the limit is {}",
                opts.max_metadata_bytes
            ),
        ));
    }
    // The orientation is the container's (`irot`, `imir`), which the decoder applies: an EXIF
    // orientation inside a HEIF file is informative only and is not reported to be applied again.
    let mut exif = exif_bytes
        .as_deref()
        .map(exif::exif_from_tiff)
        .unwrap_or_default();
    exif.orientation = None;
    let inspected = started.elapsed();

    let image = if declared == ContentType::Avif {
        avif::decode(file, opts.max_pixels)
    } else {
        let options = heifer::Options {
            // One thread: the function has well under one vCPU, and a run is one file.
            max_threads: 1,
            max_pixels: opts.max_pixels,
        };
        heifer::decode_srgb_rgba8(bytes, &options).map_err(|e| e.to_string())
    }
    .map_err(|e| {
        reject(
            RejectionCode::Corrupt,
            format!("the image could not be decoded: {e}"),
        )
    })?;
    Ok((image, exif, inspected))
}

/// The content must be coded as declared (HEVC for HEIC and HEIF, AV1 for AVIF): another image
/// type (an AVIF declared as HEIC included) is `type_mismatch`, anything else `not_an_image`.
fn check_content(bytes: &[u8], declared: ContentType) -> Result<(), Rejection> {
    match sniff(bytes) {
        crate::Sniffed::Raster(detected)
            if handles(detected) && same_coding(detected, declared) =>
        {
            Ok(())
        }
        crate::Sniffed::Raster(detected) => Err(reject(
            RejectionCode::TypeMismatch,
            format!("declared {declared} but the content is {detected}"),
        )),
        crate::Sniffed::Unsupported(mime) => Err(reject(
            RejectionCode::UnsupportedType,
            format!("{mime} images are not accepted"),
        )),
        crate::Sniffed::NotAnImage => Err(reject(
            RejectionCode::NotAnImage,
            "the content is not a recognised image",
        )),
    }
}
