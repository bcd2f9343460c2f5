//! Decoding into a [`Raster`]: dimensions from the header first, then the pixels, no larger
//! than the derivatives need. JPEG goes through libjpeg-turbo, which decodes at a reduced DCT
//! scale (1/2, 1/4, 1/8) so a 12 MP photo never exists at full size; a still WebP goes through
//! libwebp, whose decoder scales while it decodes; an 8-bit RGB(A) PNG through libdeflate (see
//! `png.rs`); other PNGs and GIF through the `image` crate with its allocation limits set.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits};
use turbojpeg::{Colorspace, Decompressor, PixelFormat, ScalingFactor};

use super::container::Structure;
use super::raster::Raster;
use media_core::domain::{ContentType, Rejection, RejectionCode};

/// Most progressive scans a JPEG may have. Real encoders use about 10; each scan is another pass
/// over every coefficient, so an unbounded count is a cheap way to burn CPU.
const MAX_JPEG_SCANS: u32 = 200;

/// A header read without touching pixel data.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    /// Stored width.
    pub width: u32,
    /// Stored height.
    pub height: u32,
}

/// Reads the dimensions from the header. Nothing is allocated in proportion to them.
pub fn header(bytes: &[u8], kind: ContentType) -> Result<Header, Rejection> {
    match kind {
        ContentType::Jpeg => {
            let h = Decompressor::new()
                .and_then(|mut d| d.read_header(bytes))
                .map_err(|e| corrupt(&e))?;
            Ok(Header {
                width: u32::try_from(h.width).map_err(|_| corrupt(&"width"))?,
                height: u32::try_from(h.height).map_err(|_| corrupt(&"height"))?,
            })
        }
        _ => {
            let (width, height) = reader(bytes, kind, Limits::default())
                .into_dimensions()
                .map_err(image_rejection)?;
            Ok(Header { width, height })
        }
    }
}

/// Decodes the first frame. With `min_longest`, a JPEG is decoded at the smallest DCT scale whose
/// longest side is still at least that many pixels; other formats always decode at full size.
/// The container's [`Structure`] says whether CMYK samples are stored inverted (Adobe APP14) and
/// whether a WebP is animated.
pub fn decode(
    bytes: &[u8],
    kind: ContentType,
    header: Header,
    min_longest: Option<u32>,
    structure: &Structure,
    limits: Limits,
) -> Result<Raster, Rejection> {
    let (mut raster, icc) = match kind {
        ContentType::Jpeg => {
            let icc = jpeg_icc_profile(bytes);
            let raster = decode_jpeg(bytes, header, min_longest, structure.adobe, icc.as_deref())?;
            // A CMYK profile was applied by the decode; only an RGB one is left to apply.
            (raster, icc)
        }
        ContentType::Webp if structure.frames <= 1 => {
            (decode_webp(bytes, min_longest)?, webp_icc_profile(bytes))
        }
        ContentType::Webp => (
            decode_webp_first_frame(bytes, header)?,
            webp_icc_profile(bytes),
        ),
        ContentType::Png => match super::png::decode(bytes, header, &limits) {
            Some(decoded) => decoded,
            None => decode_with_image(bytes, kind, limits)?,
        },
        ContentType::Gif => decode_with_image(bytes, kind, limits)?,
        _ => {
            return Err(Rejection::new(
                RejectionCode::NotAnImage,
                "the content is not a recognised image",
            ));
        }
    };
    if let Some(icc) = icc {
        super::color::to_srgb(&mut raster.data, raster.channels, &icc);
    }
    Ok(raster)
}

/// PNG and GIF through the `image` crate, with its limits; the ICC profile beside the pixels.
fn decode_with_image(
    bytes: &[u8],
    kind: ContentType,
    limits: Limits,
) -> Result<(Raster, Option<Vec<u8>>), Rejection> {
    let mut decoder = reader(bytes, kind, limits.clone())
        .into_decoder()
        .map_err(image_rejection)?;
    // As `ImageReader::decode` does: the pixel buffer counts against the limits.
    let mut limits = limits;
    limits
        .reserve(decoder.total_bytes())
        .map_err(image_rejection)?;
    decoder.set_limits(limits).map_err(image_rejection)?;
    // A broken profile is dropped, never a reason to reject the image.
    let icc = decoder.icc_profile().ok().flatten();
    let image = DynamicImage::from_decoder(decoder).map_err(image_rejection)?;
    Ok((from_dynamic(image), icc))
}

/// The scale at which a JPEG of this size is decoded.
pub fn jpeg_scale(header: Header, min_longest: Option<u32>) -> ScalingFactor {
    let longest = header.width.max(header.height) as usize;
    let Some(target) = min_longest.map(|t| t as usize) else {
        return ScalingFactor::ONE;
    };
    // Only 1/2, 1/4 and 1/8, as libvips does: libjpeg-turbo has SIMD IDCTs for those, and the
    // 3/8, 5/8, ... ones alias visibly (SSIM about 0.005 lower after the Lanczos3 step).
    Decompressor::supported_scaling_factors()
        .into_iter()
        .filter(|f| f.num() == 1)
        .filter(|f| f.scale(longest) >= target)
        .min_by_key(|f| f.scale(longest))
        .unwrap_or(ScalingFactor::ONE)
}

fn decode_jpeg(
    bytes: &[u8],
    header: Header,
    min_longest: Option<u32>,
    adobe: bool,
    icc: Option<&[u8]>,
) -> Result<Raster, Rejection> {
    let mut d = Decompressor::new().map_err(|e| corrupt(&e))?;
    let info = d.read_header(bytes).map_err(|e| corrupt(&e))?;
    let factor = jpeg_scale(header, min_longest);
    d.set_scaling_factor(factor).map_err(|e| corrupt(&e))?;
    d.set_scan_limit(MAX_JPEG_SCANS).map_err(|e| corrupt(&e))?;
    let scaled = info.scaled(factor);
    let cmyk = matches!(info.colorspace, Colorspace::CMYK | Colorspace::YCCK);
    let format = if cmyk {
        PixelFormat::CMYK
    } else {
        PixelFormat::RGB
    };
    let mut image = turbojpeg::Image {
        pixels: vec![0u8; format.size() * scaled.width * scaled.height],
        width: scaled.width,
        pitch: format.size() * scaled.width,
        height: scaled.height,
        format,
    };
    if let Err(e) = d.decompress(bytes, image.as_deref_mut())
        && !benign_jpeg_warning(&e.to_string())
    {
        return Err(corrupt(&e));
    }
    let data = if cmyk {
        cmyk_to_rgb(&image.pixels, adobe, icc)
    } else {
        image.pixels
    };
    Ok(Raster {
        width: u32::try_from(scaled.width).map_err(|_| corrupt(&"width"))?,
        height: u32::try_from(scaled.height).map_err(|_| corrupt(&"height"))?,
        channels: 3,
        data,
    })
}

/// The size a WebP is decoded at: shrunk by the largest whole factor that keeps its longest side
/// at least `min_longest` (libwebp's rescaler averages the pixels it drops, like a box filter).
fn webp_scale(header: Header, min_longest: Option<u32>) -> (u32, u32) {
    let longest = header.width.max(header.height);
    let factor = min_longest.map_or(1, |t| (longest / t.max(1)).max(1));
    (
        header.width.div_ceil(factor).max(1),
        header.height.div_ceil(factor).max(1),
    )
}

/// A still WebP through libwebp, scaled while decoding. The `webp` crate has no safe API for
/// scaling; this is the one place the project calls C directly.
#[allow(unsafe_code)]
fn decode_webp(bytes: &[u8], min_longest: Option<u32>) -> Result<Raster, Rejection> {
    use libwebp_sys::{
        VP8StatusCode, WEBP_CSP_MODE, WebPDecode, WebPDecoderConfig, WebPGetFeatures,
        WebPRGBABuffer,
    };
    let mut config = WebPDecoderConfig::new().map_err(|()| corrupt(&"libwebp ABI mismatch"))?;
    // SAFETY: `bytes` is valid for `bytes.len()` bytes, and `config.input` is a plain struct
    // owned here that libwebp only writes.
    let status = unsafe { WebPGetFeatures(bytes.as_ptr(), bytes.len(), &mut config.input) };
    if status != VP8StatusCode::VP8_STATUS_OK {
        return Err(corrupt(&format!("libwebp: {status:?}")));
    }
    let channels = if config.input.has_alpha != 0 { 4 } else { 3 };
    let header = Header {
        width: u32::try_from(config.input.width).map_err(|_| corrupt(&"width"))?,
        height: u32::try_from(config.input.height).map_err(|_| corrupt(&"height"))?,
    };
    let (width, height) = webp_scale(header, min_longest);
    let (w, h) = (width as usize, height as usize);
    let mut data = vec![0u8; w * h * channels];
    if (width, height) != (header.width, header.height) {
        config.options.use_scaling = 1;
        config.options.scaled_width = i32::try_from(width).map_err(|_| corrupt(&"width"))?;
        config.options.scaled_height = i32::try_from(height).map_err(|_| corrupt(&"height"))?;
    }
    config.output.colorspace = if channels == 4 {
        WEBP_CSP_MODE::MODE_RGBA // straight, not premultiplied, alpha
    } else {
        WEBP_CSP_MODE::MODE_RGB
    };
    config.output.is_external_memory = 1;
    config.output.u.RGBA = WebPRGBABuffer {
        rgba: data.as_mut_ptr(),
        stride: i32::try_from(w * channels).map_err(|_| corrupt(&"stride"))?,
        size: data.len(),
    };
    // SAFETY: the output buffer is `data`, alive and unaliased for the whole call; libwebp
    // checks its stride and size against the output dimensions before writing, and with
    // external memory it allocates nothing that would need freeing afterwards.
    let status = unsafe { WebPDecode(bytes.as_ptr(), bytes.len(), &mut config) };
    if status != VP8StatusCode::VP8_STATUS_OK {
        return Err(corrupt(&format!("libwebp: {status:?}")));
    }
    Ok(Raster {
        width,
        height,
        channels,
        data,
    }
    .drop_opaque_alpha())
}

/// The first frame of an animated WebP, on its canvas: the frame's own bitstream (`VP8 `/`VP8L`,
/// with its `ALPH`) is rewrapped as a still WebP and decoded by libwebp, then placed at its
/// offset on a transparent canvas. (The `image` crate's pure-Rust decoder panics on some damaged
/// animations; fuzzing found one, kept in `shared/pipeline/tests/fixtures`.)
fn decode_webp_first_frame(bytes: &[u8], canvas: Header) -> Result<Raster, Rejection> {
    let le24 = |b: &[u8]| u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16;
    let mut at = 12;
    let frame = loop {
        let chunk = bytes
            .get(at..at + 8)
            .ok_or_else(|| corrupt(&"the animation has no frame"))?;
        let len = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]) as usize;
        let body = bytes
            .get(at + 8..at + 8 + len)
            .ok_or_else(|| corrupt(&"a WebP chunk runs past the end of the file"))?;
        if &chunk[..4] == b"ANMF" {
            break body;
        }
        at += 8 + len + (len & 1);
    };
    if frame.len() < 16 {
        return Err(corrupt(&"a WebP frame header is truncated"));
    }
    let (x, y) = (le24(&frame[0..3]) * 2, le24(&frame[3..6]) * 2);
    let (w, h) = (le24(&frame[6..9]) + 1, le24(&frame[9..12]) + 1);
    if u64::from(x) + u64::from(w) > u64::from(canvas.width)
        || u64::from(y) + u64::from(h) > u64::from(canvas.height)
    {
        return Err(corrupt(&"a WebP frame lies outside its canvas"));
    }
    let sub = &frame[16..];
    let mut still = Vec::with_capacity(sub.len() + 30);
    still.extend(b"RIFF\0\0\0\0WEBP");
    if sub.starts_with(b"ALPH") {
        // Lossy with alpha needs a VP8X header saying so.
        still.extend(b"VP8X");
        still.extend(10u32.to_le_bytes());
        still.extend([0x10, 0, 0, 0]);
        still.extend(&(w - 1).to_le_bytes()[..3]);
        still.extend(&(h - 1).to_le_bytes()[..3]);
    }
    still.extend(sub);
    let riff = u32::try_from(still.len() - 8).map_err(|_| corrupt(&"size"))?;
    still[4..8].copy_from_slice(&riff.to_le_bytes());
    let decoded = decode_webp(&still, None)?;
    if (decoded.width, decoded.height) != (w, h) {
        return Err(corrupt(&"a WebP frame's size disagrees with its header"));
    }
    if (x, y, w, h) == (0, 0, canvas.width, canvas.height) {
        return Ok(decoded);
    }
    let mut out = vec![0u8; canvas.width as usize * canvas.height as usize * 4];
    let rgba = decoded.rgba();
    for row in 0..h as usize {
        let from = row * w as usize * 4;
        let to = ((y as usize + row) * canvas.width as usize + x as usize) * 4;
        out[to..to + w as usize * 4].copy_from_slice(&rgba[from..from + w as usize * 4]);
    }
    Ok(Raster {
        width: canvas.width,
        height: canvas.height,
        channels: 4,
        data: out,
    })
}

/// libjpeg-turbo reports recoverable problems as warnings, and the TurboJPEG API returns them
/// as errors after decoding the whole image. Warnings about missing or damaged entropy-coded data
/// ("Premature end of JPEG file", "Corrupt JPEG data: bad Huffman code", ...) mean rows were
/// filled with grey, so the file is corrupt. These few say nothing about the pixels.
fn benign_jpeg_warning(message: &str) -> bool {
    const BENIGN: [&str; 3] = [
        "extraneous bytes before marker",
        "unknown JFIF revision number",
        "Unknown Adobe color transform code",
    ];
    BENIGN.iter().any(|b| message.contains(b))
}

/// CMYK to sRGB: through the file's embedded CMYK profile when it has one that parses (what
/// print-workflow files carry, and what libvips uses), else the naive composite browsers use.
/// Adobe (Photoshop) files store the samples inverted.
fn cmyk_to_rgb(cmyk: &[u8], inverted: bool, icc: Option<&[u8]>) -> Vec<u8> {
    use moxcms::{ColorProfile, DataColorSpace, Layout, TransformOptions};
    let profile = icc
        .and_then(|icc| ColorProfile::new_from_slice(icc).ok())
        .filter(|p| p.color_space == DataColorSpace::Cmyk);
    if let Some(profile) = profile {
        let transform = profile.create_transform_8bit(
            Layout::Rgba,
            &ColorProfile::new_srgb(),
            Layout::Rgb,
            // Relative colorimetric: libvips's default intent.
            TransformOptions {
                rendering_intent: moxcms::RenderingIntent::RelativeColorimetric,
                ..TransformOptions::default()
            },
        );
        if let Ok(transform) = transform {
            // ICC device values count ink: 0 is paper white.
            let ink: Vec<u8> = if inverted {
                cmyk.iter().map(|v| 255 - v).collect()
            } else {
                cmyk.to_vec()
            };
            let mut rgb = vec![0u8; cmyk.len() / 4 * 3];
            if transform.transform(&ink, &mut rgb).is_ok() {
                return rgb;
            }
        }
    }
    cmyk.chunks_exact(4)
        .flat_map(|p| {
            let [c, m, y, k] = if inverted {
                [p[0], p[1], p[2], p[3]]
            } else {
                [255 - p[0], 255 - p[1], 255 - p[2], 255 - p[3]]
            };
            // With the inverted convention each sample is the amount of light let through.
            let ch = |v: u8| ((u32::from(v) * u32::from(k) + 127) / 255) as u8;
            [ch(c), ch(m), ch(y)]
        })
        .collect()
}

/// The ICC profile of a JPEG: the payloads of its `ICC_PROFILE` APP2 segments, in sequence order.
fn jpeg_icc_profile(b: &[u8]) -> Option<Vec<u8>> {
    const TAG: &[u8] = b"ICC_PROFILE\0";
    let mut chunks = Vec::new();
    // The header was walked once already: it is well formed.
    let _ = super::container::jpeg_segments(b, |marker, body| {
        if marker == 0xE2 && body.starts_with(TAG) && body.len() > TAG.len() + 2 {
            chunks.push((body[TAG.len()], body[TAG.len() + 2..].to_vec()));
        }
    });
    if chunks.is_empty() {
        return None;
    }
    chunks.sort_by_key(|(seq, _)| *seq);
    Some(chunks.into_iter().flat_map(|(_, data)| data).collect())
}

/// The ICC profile of a WebP: its `ICCP` chunk (the container walk already checked the chunks).
fn webp_icc_profile(b: &[u8]) -> Option<Vec<u8>> {
    let mut at = 12;
    while let Some(chunk) = b.get(at..at + 8) {
        let len = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]) as usize;
        let body = b.get(at + 8..(at + 8).checked_add(len)?)?;
        if &chunk[..4] == b"ICCP" {
            return Some(body.to_vec());
        }
        at = at.checked_add(8 + len + (len & 1))?;
    }
    None
}

fn reader(bytes: &[u8], kind: ContentType, limits: Limits) -> ImageReader<Cursor<&[u8]>> {
    let mut r = ImageReader::new(Cursor::new(bytes));
    r.set_format(match kind {
        ContentType::Jpeg => ImageFormat::Jpeg,
        ContentType::Png => ImageFormat::Png,
        ContentType::Webp => ImageFormat::WebP,
        ContentType::Gif => ImageFormat::Gif,
        // Only raster types reach the decoders (see `container::walk`).
        _ => ImageFormat::Png,
    });
    r.limits(limits);
    r
}

/// 8-bit RGB or RGBA, whatever the source depth, palette or transparency.
fn from_dynamic(image: DynamicImage) -> Raster {
    let (width, height) = (image.width(), image.height());
    if image.color().has_alpha() {
        Raster {
            width,
            height,
            channels: 4,
            data: image.into_rgba8().into_raw(),
        }
        .drop_opaque_alpha()
    } else {
        Raster {
            width,
            height,
            channels: 3,
            data: image.into_rgb8().into_raw(),
        }
    }
}

fn corrupt(e: &dyn std::fmt::Display) -> Rejection {
    Rejection::new(
        RejectionCode::Corrupt,
        format!("the image could not be decoded: {e}"),
    )
}

fn image_rejection(err: ImageError) -> Rejection {
    match err {
        ImageError::Limits(_) => Rejection::new(
            RejectionCode::TooLargeDimensions,
            "the image is over the decoding limits",
        ),
        ImageError::Unsupported(e) => Rejection::new(
            RejectionCode::Corrupt,
            format!("the image uses a feature that cannot be decoded: {e}"),
        ),
        other => corrupt(&other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_scale_that_covers_the_target() {
        let h = |width, height| Header { width, height };
        let scale = |hd: Header, t| {
            let f = jpeg_scale(hd, t);
            (f.num(), f.denom())
        };
        assert_eq!(scale(h(4000, 3000), Some(800)), (1, 4));
        assert_eq!(scale(h(3000, 2000), Some(800)), (1, 2));
        assert_eq!(scale(h(1800, 1200), Some(800)), (1, 2));
        assert_eq!(scale(h(800, 600), Some(800)), (1, 1));
        assert_eq!(scale(h(100, 78), Some(800)), (1, 1));
        assert_eq!(scale(h(4000, 3000), None), (1, 1));
    }

    #[test]
    fn webp_shrinks_by_whole_factors() {
        let h = |width, height| Header { width, height };
        assert_eq!(webp_scale(h(3000, 2000), Some(800)), (1000, 667));
        assert_eq!(webp_scale(h(1024, 772), Some(800)), (1024, 772));
        assert_eq!(webp_scale(h(1024, 772), None), (1024, 772));
    }

    #[test]
    fn inverted_cmyk_white_and_black() {
        let white = vec![255, 255, 255];
        assert_eq!(cmyk_to_rgb(&[255, 255, 255, 255], true, None), white);
        assert_eq!(cmyk_to_rgb(&[255, 255, 255, 0], true, None), vec![0, 0, 0]);
        assert_eq!(cmyk_to_rgb(&[0, 0, 0, 0], false, None), white);
        // A profile that does not parse falls back to the same arithmetic.
        assert_eq!(cmyk_to_rgb(&[0, 0, 0, 0], false, Some(b"junk")), white);
    }
}
