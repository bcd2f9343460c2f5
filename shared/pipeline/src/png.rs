//! A fast path for the PNGs that photos and screenshots come as: 8-bit RGB or RGBA, not
//! interlaced, one frame. The whole IDAT stream is inflated in one call by libdeflate (about 1.3x
//! faster than the `png` crate's streaming inflate on a 6 MP photo, and inflate is most of a PNG's
//! decode), then the rows are unfiltered in place.
//!
//! Anything else (palette, grey, 16-bit, interlaced, tRNS, APNG), and any file this path finds
//! wrong in any way (a bad CRC, a short or long stream, an unknown filter), returns `None`: the
//! caller then decodes it with the `image` crate, which also gives the precise error. So this path
//! never accepts a file the general decoder would reject, nor rejects one it would accept.

use image::Limits;
use libdeflater::Decompressor;

use super::decode::Header;
use super::raster::Raster;

/// Largest inflated ICC profile read from `iCCP` (real ones are a few KiB; the container walk
/// already bounded the compressed size).
const MAX_ICC_BYTES: usize = 4 << 20;

/// The decoded pixels and the ICC profile, or `None` for a file this path does not take.
pub(super) fn decode(
    bytes: &[u8],
    header: Header,
    limits: &Limits,
) -> Option<(Raster, Option<Vec<u8>>)> {
    let chunks = read_chunks(bytes)?;
    let ihdr = chunks.ihdr?;
    if (ihdr.width, ihdr.height) != (header.width, header.height) {
        return None;
    }
    let channels: usize = match ihdr.color_type {
        2 => 3,
        6 => 4,
        _ => return None,
    };
    let (w, h) = (ihdr.width as usize, ihdr.height as usize);
    let stride = w.checked_mul(channels)?;
    let raw_len = stride.checked_add(1)?.checked_mul(h)?;
    // The pixel buffer counts against the decoding limits, as in the general path.
    let mut limits = limits.clone();
    limits.reserve(u64::try_from(raw_len).ok()?).ok()?;

    let joined;
    let stream: &[u8] = match chunks.idat.as_slice() {
        [] => return None,
        [one] => one,
        many => {
            joined = many.concat();
            &joined
        }
    };
    let mut data = vec![0u8; raw_len];
    let mut inflater = Decompressor::new();
    // Exactly `raw_len` bytes: a shorter stream is truncated, a longer one an error.
    if inflater.zlib_decompress(stream, &mut data).ok()? != raw_len {
        return None;
    }
    let icc = chunks
        .iccp
        .and_then(|body| inflate_icc(&mut inflater, body));
    unfilter_rows(&mut data, h, stride, channels)?;
    let raster = Raster {
        width: ihdr.width,
        height: ihdr.height,
        channels,
        data,
    };
    Some((raster.drop_opaque_alpha(), icc))
}

struct Ihdr {
    width: u32,
    height: u32,
    color_type: u8,
}

#[derive(Default)]
struct Chunks<'a> {
    ihdr: Option<Ihdr>,
    idat: Vec<&'a [u8]>,
    iccp: Option<&'a [u8]>,
}

/// Walks the chunks up to IEND, checking every CRC. `None` for anything this path leaves to the
/// general decoder.
fn read_chunks(bytes: &[u8]) -> Option<Chunks<'_>> {
    let mut chunks = Chunks::default();
    let mut at: usize = 8;
    let mut idat_ended = false;
    loop {
        let head = bytes.get(at..at.checked_add(8)?)?;
        let len = be32(&head[0..4]) as usize;
        let kind = &head[4..8];
        let end = at.checked_add(12)?.checked_add(len)?;
        let typed = bytes.get(at + 4..end - 4)?;
        let crc = bytes.get(end - 4..end)?;
        // A fuzzer cannot forge CRCs: under cargo-fuzz (`--cfg fuzzing`) the check is skipped
        // so that mutated chunks reach the inflater and the unfilter.
        if !cfg!(fuzzing) && crc32fast::hash(typed) != be32(crc) {
            return None;
        }
        let body = &typed[4..];
        if kind != b"IDAT" && !chunks.idat.is_empty() {
            idat_ended = true;
        }
        match kind {
            b"IHDR" => {
                if body.len() != 13 || chunks.ihdr.is_some() {
                    return None;
                }
                // Bit depth 8; compression, filter method and interlace all 0.
                if body[8] != 8 || body[10..13] != [0, 0, 0] {
                    return None;
                }
                chunks.ihdr = Some(Ihdr {
                    width: be32(&body[0..4]),
                    height: be32(&body[4..8]),
                    color_type: body[9],
                });
            }
            // IDAT chunks must be consecutive.
            b"IDAT" if idat_ended => return None,
            b"IDAT" => chunks.idat.push(body),
            b"iCCP" => chunks.iccp = Some(body),
            // Colour-key transparency and animation: the general decoder's job.
            b"tRNS" | b"acTL" | b"fcTL" | b"fdAT" => return None,
            b"IEND" => return Some(chunks),
            // Any other critical chunk (uppercase first letter: PLTE, or one this code does
            // not know): the general decoder decides.
            _ if kind[0].is_ascii_uppercase() => return None,
            _ => {}
        }
        at = end;
    }
}

/// The big-endian `u32` at the start of `b` (callers slice exactly four bytes).
fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// An `iCCP` body: name, NUL, compression method 0, zlib stream. A broken profile is dropped,
/// never a reason to reject the image.
fn inflate_icc(inflater: &mut Decompressor, body: &[u8]) -> Option<Vec<u8>> {
    let nul = body.iter().take(80).position(|&b| b == 0)?;
    let (&method, stream) = body.get(nul + 1..)?.split_first()?;
    if method != 0 {
        return None;
    }
    // A guess first (profiles deflate a few times over); if the profile is larger, the cap.
    let guess = MAX_ICC_BYTES.min(stream.len().saturating_mul(16).max(4096));
    for size in [guess, MAX_ICC_BYTES] {
        let mut out = vec![0u8; size];
        match inflater.zlib_decompress(stream, &mut out) {
            Ok(n) => {
                out.truncate(n);
                return Some(out);
            }
            Err(libdeflater::DecompressionError::InsufficientSpace) if size < MAX_ICC_BYTES => {}
            Err(_) => return None,
        }
    }
    None
}

/// Undoes the per-row filters in place, moving each row down over the filter bytes so that
/// `data` ends as `height` rows of `stride` bytes. `None` for an unknown filter type.
fn unfilter_rows(data: &mut Vec<u8>, height: usize, stride: usize, bpp: usize) -> Option<()> {
    for y in 0..height {
        let from = y * (stride + 1);
        let filter = data[from];
        let to = y * stride;
        data.copy_within(from + 1..from + 1 + stride, to);
        let (done, rest) = data.split_at_mut(to);
        let cur = &mut rest[..stride];
        let prev = (y > 0).then(|| &done[to - stride..]);
        match (filter, bpp) {
            (0, _) => {}
            (1, _) => sub(cur, bpp),
            (2, _) => {
                if let Some(prev) = prev {
                    cur.iter_mut()
                        .zip(prev)
                        .for_each(|(c, p)| *c = c.wrapping_add(*p));
                }
            }
            (3, _) => average(cur, prev, bpp),
            // Paeth with no row above predicts from the left only, as Sub does.
            (4, _) if prev.is_none() => sub(cur, bpp),
            (4, 3) => paeth::<3>(cur, prev?),
            (4, 4) => paeth::<4>(cur, prev?),
            _ => return None,
        }
    }
    data.truncate(height * stride);
    Some(())
}

fn sub(cur: &mut [u8], bpp: usize) {
    for i in bpp..cur.len() {
        cur[i] = cur[i].wrapping_add(cur[i - bpp]);
    }
}

fn average(cur: &mut [u8], prev: Option<&[u8]>, bpp: usize) {
    for i in 0..cur.len() {
        let left = if i >= bpp { u16::from(cur[i - bpp]) } else { 0 };
        let up = prev.map_or(0, |p| u16::from(p[i]));
        cur[i] = cur[i].wrapping_add(((left + up) >> 1) as u8);
    }
}

/// Paeth, one pixel at a time with the channels side by side. The predictor is stb_image's
/// formulation (equal to the specification's, fewer operations on the path from one pixel to
/// the next): about 25% faster than the specification's text on a 6 MP photo.
fn paeth<const N: usize>(cur: &mut [u8], prev: &[u8]) {
    let mut left = [0i16; N];
    let mut up_left = [0i16; N];
    for (px, above) in cur.chunks_exact_mut(N).zip(prev.chunks_exact(N)) {
        for k in 0..N {
            let (a, b, c) = (left[k], i16::from(above[k]), up_left[k]);
            let threshold = c * 3 - (a + b);
            let (lo, hi) = (a.min(b), a.max(b));
            let predicted = if threshold <= lo {
                hi
            } else if hi <= threshold {
                lo
            } else {
                c
            };
            let value = px[k].wrapping_add(predicted as u8);
            px[k] = value;
            left[k] = i16::from(value);
            up_left[k] = b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes with the `image` crate (its PNG encoder picks filters adaptively), decodes
    /// through this path and through the general one, and compares.
    fn round_trip(channels: usize, width: u32, height: u32) {
        let data: Vec<u8> = (0..width as usize * height as usize * channels)
            .map(|i| ((i * 7919) ^ ((i >> 3) * 31)) as u8)
            .collect();
        let mut png = Vec::new();
        let color = if channels == 4 {
            image::ExtendedColorType::Rgba8
        } else {
            image::ExtendedColorType::Rgb8
        };
        for filter in [
            image::codecs::png::FilterType::NoFilter,
            image::codecs::png::FilterType::Sub,
            image::codecs::png::FilterType::Up,
            image::codecs::png::FilterType::Avg,
            image::codecs::png::FilterType::Paeth,
            image::codecs::png::FilterType::Adaptive,
        ] {
            png.clear();
            image::ImageEncoder::write_image(
                image::codecs::png::PngEncoder::new_with_quality(
                    &mut png,
                    image::codecs::png::CompressionType::Fast,
                    filter,
                ),
                &data,
                width,
                height,
                color,
            )
            .expect("encode");
            let (raster, icc) =
                decode(&png, Header { width, height }, &Limits::default()).expect("fast path");
            assert_eq!(icc, None);
            assert_eq!((raster.width, raster.height), (width, height));
            assert_eq!(raster.channels, channels, "{filter:?}");
            assert_eq!(raster.data, data, "{filter:?}");
        }
    }

    /// The predictor equals the specification's for every (a, b, c).
    #[test]
    fn paeth_matches_the_specification() {
        let spec = |a: i16, b: i16, c: i16| {
            let (pa, pb, pc) = ((b - c).abs(), (a - c).abs(), (a + b - 2 * c).abs());
            if pa <= pb && pa <= pc {
                a
            } else if pb <= pc {
                b
            } else {
                c
            }
        };
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                for c in 0..=255u8 {
                    // The first pixel is made to unfilter to `a`; the second then has
                    // left a, above b and upper-left c, and a raw value of 0.
                    let mut row = [a.wrapping_sub(spec(0, i16::from(c), 0) as u8), 0];
                    paeth::<1>(&mut row, &[c, b]);
                    assert_eq!(row[0], a);
                    assert_eq!(row[1], spec(i16::from(a), i16::from(b), i16::from(c)) as u8);
                }
            }
        }
    }

    #[test]
    fn every_filter_round_trips() {
        round_trip(3, 37, 23);
        round_trip(4, 41, 19);
        round_trip(3, 1, 1);
    }

    /// Every corpus PNG this path takes decodes to exactly the `image` crate's pixels, and the
    /// ones it leaves are the ones it should leave.
    #[test]
    fn corpus_pngs_match_the_general_decoder() {
        let dir = std::env::var("MEDIA_CORPUS_DIR").map_or_else(
            |_| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"),
            std::path::PathBuf::from,
        );
        let mut taken = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("the corpus (MEDIA_CORPUS_DIR)") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "png") {
                continue;
            }
            let bytes = std::fs::read(&path).expect("read");
            let Ok(reference) =
                image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
            else {
                continue;
            };
            let header = Header {
                width: reference.width(),
                height: reference.height(),
            };
            if let Some((raster, _)) = decode(&bytes, header, &Limits::default()) {
                let expected = if raster.channels == 4 {
                    reference.into_rgba8().into_raw()
                } else {
                    reference.into_rgb8().into_raw()
                };
                assert_eq!(raster.data, expected, "{}", path.display());
                taken.push(path.file_name().map(|n| n.to_string_lossy().into_owned()));
            }
        }
        // The one 8-bit, non-interlaced RGB file without tRNS in the corpus.
        assert_eq!(taken, [Some("exif2c08.png".to_owned())]);
    }

    #[test]
    fn what_it_leaves_to_the_general_decoder() {
        let mut png = Vec::new();
        image::ImageEncoder::write_image(
            image::codecs::png::PngEncoder::new(&mut png),
            &[1, 2, 3, 4, 5, 6],
            2,
            1,
            image::ExtendedColorType::Rgb8,
        )
        .expect("encode");
        let header = Header {
            width: 2,
            height: 1,
        };
        assert!(decode(&png, header, &Limits::default()).is_some());
        // A flipped bit in any chunk fails its CRC.
        for at in 8..png.len() {
            let mut bad = png.clone();
            bad[at] ^= 0x10;
            assert!(decode(&bad, header, &Limits::default()).is_none(), "{at}");
        }
        // Truncated anywhere.
        for len in 0..png.len() {
            assert!(decode(&png[..len], header, &Limits::default()).is_none());
        }
        // Over the allocation limit.
        let mut tight = Limits::default();
        tight.max_alloc = Some(4);
        assert!(decode(&png, header, &tight).is_none());
        // Grey and palette files go the general way.
        let mut grey = Vec::new();
        image::ImageEncoder::write_image(
            image::codecs::png::PngEncoder::new(&mut grey),
            &[1, 2],
            2,
            1,
            image::ExtendedColorType::L8,
        )
        .expect("encode");
        assert!(decode(&grey, header, &Limits::default()).is_none());
        // So do transparency keys and animation, even with valid CRCs.
        for (kind, body) in [
            (b"tRNS", &[0u8, 1, 0, 2, 0, 3][..]),
            (b"acTL", &[0, 0, 0, 1, 0, 0, 0, 0][..]),
        ] {
            let with = with_chunk_after_ihdr(&png, kind, body);
            assert!(image::load_from_memory(&with).is_ok());
            assert!(decode(&with, header, &Limits::default()).is_none());
        }
        // An unknown critical chunk is left to the general decoder too.
        let with = with_chunk_after_ihdr(&png, b"ABCD", b"x");
        assert!(decode(&with, header, &Limits::default()).is_none());
        // An unknown ancillary chunk is skipped.
        let with = with_chunk_after_ihdr(&png, b"teXt", b"a\0b");
        assert!(decode(&with, header, &Limits::default()).is_some());
    }

    #[test]
    fn icc_profiles_inflate_whatever_their_ratio() {
        let mut inflater = Decompressor::new();
        for profile in [
            vec![7u8; 300],
            vec![0u8; 1 << 20],
            (0..9000u32).map(|i| (i * 131 % 251) as u8).collect(),
        ] {
            let mut body = b"icc\0\0".to_vec();
            let mut compressor =
                libdeflater::Compressor::new(libdeflater::CompressionLvl::default());
            let mut z = vec![0u8; compressor.zlib_compress_bound(profile.len())];
            let n = compressor
                .zlib_compress(&profile, &mut z)
                .expect("compress");
            body.extend_from_slice(&z[..n]);
            assert_eq!(inflate_icc(&mut inflater, &body), Some(profile));
        }
        // Over the cap, or not zlib: dropped.
        let mut body = b"icc\0\0".to_vec();
        let mut compressor = libdeflater::Compressor::new(libdeflater::CompressionLvl::default());
        let big = vec![0u8; MAX_ICC_BYTES + 1];
        let mut z = vec![0u8; compressor.zlib_compress_bound(big.len())];
        let n = compressor.zlib_compress(&big, &mut z).expect("compress");
        body.extend_from_slice(&z[..n]);
        assert_eq!(inflate_icc(&mut inflater, &body), None);
        assert_eq!(inflate_icc(&mut inflater, b"icc\0\0not zlib"), None);
    }

    fn with_chunk_after_ihdr(png: &[u8], kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let ihdr_end = 8 + 8 + 13 + 4;
        let mut out = png[..ihdr_end].to_vec();
        out.extend_from_slice(&u32::try_from(body.len()).expect("len").to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(body);
        out.extend_from_slice(&crc.finalize().to_be_bytes());
        out.extend_from_slice(&png[ihdr_end..]);
        out
    }
}
