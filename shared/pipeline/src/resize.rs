//! Lanczos3 resizing with `fast_image_resize` (SIMD: AVX2/SSE4.1 on x86_64, NEON on arm64).
//! Alpha is premultiplied for the convolution and restored after it, so transparent pixels never
//! bleed their colour into their neighbours.

use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use super::raster::Raster;

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

/// A reusable resizer: it keeps its scratch buffers between calls.
#[derive(Default)]
pub struct Lanczos {
    resizer: Resizer,
}

/// The resizer refused its input; only possible with a malformed [`Raster`].
#[derive(Debug, thiserror::Error)]
#[error("resize failed: {0}")]
pub struct ResizeFailed(String);

impl Lanczos {
    /// `src` resized to exactly `width` x `height`.
    pub fn resize(
        &mut self,
        src: &Raster,
        width: u32,
        height: u32,
    ) -> Result<Raster, ResizeFailed> {
        if (src.width, src.height) == (width, height) {
            return Ok(src.clone());
        }
        let pixel_type = if src.channels == 4 {
            PixelType::U8x4
        } else {
            PixelType::U8x3
        };
        let view =
            fast_image_resize::images::ImageRef::new(src.width, src.height, &src.data, pixel_type)
                .map_err(|e| ResizeFailed(e.to_string()))?;
        let mut dst = Image::new(width, height, pixel_type);
        let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
        self.resizer
            .resize(&view, &mut dst, &options)
            .map_err(|e| ResizeFailed(e.to_string()))?;
        Ok(Raster {
            width,
            height,
            channels: src.channels,
            data: dst.into_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_inside_never_upscales() {
        assert_eq!(fit_inside(1800, 1200, 800), (800, 533));
        assert_eq!(fit_inside(1200, 1800, 150), (100, 150));
        assert_eq!(fit_inside(32, 32, 150), (32, 32));
        assert_eq!(fit_inside(10000, 1, 150), (150, 1));
    }

    #[test]
    fn a_flat_colour_stays_flat() -> Result<(), ResizeFailed> {
        let src = Raster {
            width: 40,
            height: 20,
            channels: 4,
            data: [200, 100, 50, 128].repeat(800),
        };
        let out = Lanczos::default().resize(&src, 10, 5)?;
        assert_eq!(out.data.len(), 10 * 5 * 4);
        // Premultiplying by alpha 128 and back rounds by at most one step.
        let near = |p: &[u8]| {
            p.iter()
                .zip([200u8, 100, 50, 128])
                .all(|(a, b)| a.abs_diff(b) <= 1)
        };
        assert!(out.data.chunks_exact(4).all(near), "{:?}", &out.data[..8]);
        Ok(())
    }
}
