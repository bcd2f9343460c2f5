//! Encoders for the derivatives. Every encoder here writes pixels only: no EXIF, XMP, GPS or ICC
//! payload of the original can reach a derivative, because none is ever handed to them.

use std::io::Cursor;

use image::ImageEncoder;
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use turbojpeg::{Compressor, PixelFormat, Subsamp};

use super::raster::Raster;
use media_core::config::ThumbnailFormat;

pub use media_core::config::DEFAULT_WEBP_METHOD;

/// Encoding failed; only possible with a malformed [`Raster`] or out of memory.
#[derive(Debug, thiserror::Error)]
#[error("encoding failed: {0}")]
pub struct EncodeFailed(String);

/// Encoder settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeOptions {
    /// The output format.
    pub format: ThumbnailFormat,
    /// Lossy quality, 1-100.
    pub quality: u8,
    /// libwebp's method, 0 (fastest) to 6 (smallest).
    pub webp_method: u8,
}

/// Encodes a raster in the chosen format.
pub fn encode(raster: &Raster, opts: EncodeOptions) -> Result<Vec<u8>, EncodeFailed> {
    match opts.format {
        ThumbnailFormat::Webp => webp(raster, opts.quality, opts.webp_method),
        ThumbnailFormat::Jpeg => jpeg(raster, opts.quality),
        ThumbnailFormat::Png => png(raster),
    }
}

/// Lossy WebP (with lossy alpha where the source has alpha).
pub fn webp(raster: &Raster, quality: u8, method: u8) -> Result<Vec<u8>, EncodeFailed> {
    let layout = if raster.has_alpha() {
        webp::PixelLayout::Rgba
    } else {
        webp::PixelLayout::Rgb
    };
    if raster.data.len() != raster.width as usize * raster.height as usize * raster.channels {
        return Err(EncodeFailed("buffer size does not match".into()));
    }
    let mut config =
        webp::WebPConfig::new().map_err(|()| EncodeFailed("libwebp version mismatch".into()))?;
    config.quality = f32::from(quality.clamp(1, 100));
    config.method = i32::from(method.min(6));
    config.alpha_compression = 1;
    webp::Encoder::new(&raster.data, layout, raster.width, raster.height)
        .encode_advanced(&config)
        .map(|m| m.to_vec())
        .map_err(|e| EncodeFailed(format!("{e:?}")))
}

/// Baseline JPEG, 4:2:0 below quality 90 and 4:4:4 from 90 up (libvips's rule); alpha is
/// composited over white.
pub fn jpeg(raster: &Raster, quality: u8) -> Result<Vec<u8>, EncodeFailed> {
    let flat;
    let rgb = if raster.has_alpha() {
        flat = raster.clone().flatten();
        &flat
    } else {
        raster
    };
    let failed = |e: turbojpeg::Error| EncodeFailed(e.to_string());
    let mut c = Compressor::new().map_err(failed)?;
    c.set_quality(i32::from(quality.clamp(1, 100)))
        .map_err(failed)?;
    c.set_subsamp(if quality >= 90 {
        Subsamp::None
    } else {
        Subsamp::Sub2x2
    })
    .map_err(failed)?;
    let image = turbojpeg::Image {
        pixels: rgb.data.as_slice(),
        width: rgb.width as usize,
        pitch: rgb.width as usize * 3,
        height: rgb.height as usize,
        format: PixelFormat::RGB,
    };
    c.compress_to_vec(image).map_err(failed)
}

/// PNG with fast compression: derivatives are small, and speed matters more than bytes here.
pub fn png(raster: &Raster) -> Result<Vec<u8>, EncodeFailed> {
    let mut out = Vec::new();
    let color = if raster.has_alpha() {
        image::ExtendedColorType::Rgba8
    } else {
        image::ExtendedColorType::Rgb8
    };
    PngEncoder::new_with_quality(
        Cursor::new(&mut out),
        CompressionType::Fast,
        PngFilter::Adaptive,
    )
    .write_image(&raster.data, raster.width, raster.height, color)
    .map_err(|e| EncodeFailed(e.to_string()))?;
    Ok(out)
}
