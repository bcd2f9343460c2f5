//! What an app paints before the thumbnail arrives: a BlurHash and a dominant colour, both taken
//! from the smallest (already oriented) derivative, so they cost well under a millisecond.

use super::raster::Raster;

/// The BlurHash of an image: 4 components along its longer side, 3 along the shorter.
pub fn blurhash(r: &Raster) -> Option<String> {
    if r.width == 0 || r.height == 0 {
        return None;
    }
    let (x, y) = if r.width >= r.height { (4, 3) } else { (3, 4) };
    // Transparent pixels count as white, as a page behind them usually is.
    let flat = r.clone().flatten();
    blurhash::encode(x, y, flat.width, flat.height, &flat.rgba()).ok()
}

/// The dominant colour as `#rrggbb`: the mean of the most populated cell of a 4-bit-per-channel
/// histogram, ignoring mostly transparent pixels.
pub fn dominant_color(r: &Raster) -> Option<String> {
    const CELLS: usize = 1 << 12;
    let mut count = vec![0u32; CELLS];
    let mut sums = vec![[0u64; 3]; CELLS];
    for p in r.data.chunks_exact(r.channels) {
        if r.channels == 4 && p[3] < 128 {
            continue;
        }
        let cell =
            (usize::from(p[0] >> 4) << 8) | (usize::from(p[1] >> 4) << 4) | usize::from(p[2] >> 4);
        count[cell] += 1;
        for (s, v) in sums[cell].iter_mut().zip(p) {
            *s += u64::from(*v);
        }
    }
    let (best, &n) = count.iter().enumerate().max_by_key(|(_, n)| **n)?;
    if n == 0 {
        return None;
    }
    let [r, g, b] = sums[best].map(|s| (s / u64::from(n)) as u8);
    Some(format!("#{r:02x}{g:02x}{b:02x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mostly_red_image_is_red() {
        let mut data = [250, 10, 10].repeat(90);
        data.extend([10, 10, 250].repeat(10));
        let r = Raster {
            width: 10,
            height: 10,
            channels: 3,
            data,
        };
        assert_eq!(dominant_color(&r).as_deref(), Some("#fa0a0a"));
        let hash = blurhash(&r).unwrap_or_default();
        // 4x3 components: 1 size + 1 max + 4 DC + 2 per AC component (11).
        assert_eq!(hash.len(), 1 + 1 + 4 + 2 * 11);
    }

    #[test]
    fn a_fully_transparent_image_has_no_dominant_colour() {
        let r = Raster {
            width: 2,
            height: 2,
            channels: 4,
            data: vec![0; 16],
        };
        assert_eq!(dominant_color(&r), None);
        assert!(blurhash(&r).is_some());
    }
}
