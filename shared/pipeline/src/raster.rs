//! Interleaved 8-bit sRGB pixels, RGB or RGBA: the one pixel layout between the decoders, the
//! resizer and the encoders.

/// An 8-bit image, 3 (RGB) or 4 (RGBA, straight alpha) channels, rows packed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raster {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// 3 or 4.
    pub channels: usize,
    /// `width * height * channels` bytes.
    pub data: Vec<u8>,
}

impl Raster {
    /// Whether it carries an alpha channel.
    pub fn has_alpha(&self) -> bool {
        self.channels == 4
    }

    /// Drops an alpha channel that is fully opaque, so that encoders need not store it.
    pub fn drop_opaque_alpha(mut self) -> Self {
        if self.channels == 4 && self.data.chunks_exact(4).all(|p| p[3] == 255) {
            // What `flatten` would give, without its arithmetic or a second buffer: each pixel's
            // R, G, B moved down in place (the write position never passes the read position).
            let pixels = self.data.len() / 4;
            for i in 0..pixels {
                let rgb = [self.data[4 * i], self.data[4 * i + 1], self.data[4 * i + 2]];
                self.data[3 * i..3 * i + 3].copy_from_slice(&rgb);
            }
            self.data.truncate(pixels * 3);
            self.channels = 3;
        }
        self
    }

    /// RGB, with any alpha composited over white (for formats without alpha).
    pub fn flatten(self) -> Self {
        if self.channels == 3 {
            return self;
        }
        let data = self
            .data
            .chunks_exact(4)
            .flat_map(|p| {
                let a = u32::from(p[3]);
                let over = |c: u8| ((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
                [over(p[0]), over(p[1]), over(p[2])]
            })
            .collect();
        Self {
            channels: 3,
            data,
            ..self
        }
    }

    /// RGBA bytes (alpha 255 where there was none).
    pub fn rgba(&self) -> std::borrow::Cow<'_, [u8]> {
        if self.channels == 4 {
            return std::borrow::Cow::Borrowed(&self.data);
        }
        std::borrow::Cow::Owned(
            self.data
                .chunks_exact(3)
                .flat_map(|p| [p[0], p[1], p[2], 255])
                .collect(),
        )
    }

    /// The image as displayed under an EXIF orientation (1-8; anything else is 1).
    pub fn oriented(&self, orientation: u8) -> Self {
        let (w, h) = (self.width as usize, self.height as usize);
        if !(2..=8).contains(&orientation) || w == 0 || h == 0 {
            return self.clone();
        }
        let swaps = orientation >= 5;
        let (dw, dh) = if swaps { (h, w) } else { (w, h) };
        let c = self.channels;
        let mut data = vec![0; self.data.len()];
        for y in 0..dh {
            for x in 0..dw {
                // The source pixel shown at display position (x, y).
                let (sx, sy) = match orientation {
                    2 => (w - 1 - x, y),
                    3 => (w - 1 - x, h - 1 - y),
                    4 => (x, h - 1 - y),
                    5 => (y, x),
                    6 => (y, h - 1 - x),
                    7 => (w - 1 - y, h - 1 - x),
                    _ => (w - 1 - y, x),
                };
                let from = (sy * w + sx) * c;
                let to = (y * dw + x) * c;
                data[to..to + c].copy_from_slice(&self.data[from..from + c]);
            }
        }
        Self {
            width: dw as u32,
            height: dh as u32,
            channels: c,
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2x3 RGB image whose red channel numbers the pixels 1..=6 row by row:
    /// 1 2
    /// 3 4
    /// 5 6
    fn numbered() -> Raster {
        Raster {
            width: 2,
            height: 3,
            channels: 3,
            data: (1..=6).flat_map(|v| [v, 0, 0]).collect(),
        }
    }

    fn reds(r: &Raster) -> Vec<u8> {
        r.data.chunks_exact(3).map(|p| p[0]).collect()
    }

    #[test]
    fn all_eight_orientations() {
        let cases: [(u8, (u32, u32), [u8; 6]); 8] = [
            (1, (2, 3), [1, 2, 3, 4, 5, 6]),
            (2, (2, 3), [2, 1, 4, 3, 6, 5]),
            (3, (2, 3), [6, 5, 4, 3, 2, 1]),
            (4, (2, 3), [5, 6, 3, 4, 1, 2]),
            (5, (3, 2), [1, 3, 5, 2, 4, 6]),
            (6, (3, 2), [5, 3, 1, 6, 4, 2]),
            (7, (3, 2), [6, 4, 2, 5, 3, 1]),
            (8, (3, 2), [2, 4, 6, 1, 3, 5]),
        ];
        for (o, dims, expected) in cases {
            let r = numbered().oriented(o);
            assert_eq!((r.width, r.height), dims, "orientation {o}");
            assert_eq!(reds(&r), expected, "orientation {o}");
        }
        assert_eq!(numbered().oriented(0), numbered());
        assert_eq!(numbered().oriented(200), numbered());
    }

    #[test]
    fn alpha_is_flattened_over_white() {
        let r = Raster {
            width: 2,
            height: 1,
            channels: 4,
            data: vec![0, 0, 0, 0, 10, 20, 30, 255],
        };
        assert_eq!(r.flatten().data, vec![255, 255, 255, 10, 20, 30]);
    }

    #[test]
    fn opaque_alpha_is_dropped_and_real_alpha_kept() {
        let opaque = Raster {
            width: 3,
            height: 1,
            channels: 4,
            data: vec![1, 2, 3, 255, 4, 5, 6, 255, 7, 8, 9, 255],
        };
        assert_eq!(opaque.clone().drop_opaque_alpha(), opaque.clone().flatten());
        assert_eq!(
            opaque.drop_opaque_alpha().data,
            vec![1, 2, 3, 4, 5, 6, 7, 8, 9]
        );
        let translucent = Raster {
            width: 1,
            height: 1,
            channels: 4,
            data: vec![1, 2, 3, 254],
        };
        assert_eq!(translucent.clone().drop_opaque_alpha(), translucent);
    }
}
