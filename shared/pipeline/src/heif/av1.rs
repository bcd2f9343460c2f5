//! One AV1 picture (an AVIF image item, a tile, an alpha plane or a sequence's first frame),
//! decoded by rav1d through its dav1d-compatible API, into the planar frame heifer's colour
//! conversion reads.
//!
//! The API is dav1d's C one, so the calls are `unsafe`; each is commented with what makes it
//! sound. rav1d decodes on the calling thread when given one thread, and needs more stack than a
//! worker thread has: each picture is decoded on a thread of its own with a larger stack, and
//! there in a forked child process, because a panic inside rav1d's `extern "C"` functions cannot
//! unwind and aborts the process it is in (see `fuzz/known-crashes/`).
//!
//! This is the one module of the workspace allowed `unsafe`: rav1d offers no other API, and the
//! child process needs `fork`, `mmap` and `waitpid`.
#![allow(unsafe_code)]

use std::mem::MaybeUninit;
use std::ptr::NonNull;

use heifer::heifer_hevc_dec::recon::Frame;
use rav1d::include::dav1d::data::Dav1dData;
use rav1d::include::dav1d::dav1d::{Dav1dContext, Dav1dSettings};
use rav1d::include::dav1d::headers::{
    DAV1D_PIXEL_LAYOUT_I400, DAV1D_PIXEL_LAYOUT_I420, DAV1D_PIXEL_LAYOUT_I422,
    DAV1D_PIXEL_LAYOUT_I444,
};
use rav1d::include::dav1d::picture::Dav1dPicture;
use rav1d::src::lib::{
    dav1d_close, dav1d_data_create, dav1d_data_unref, dav1d_default_settings, dav1d_get_picture,
    dav1d_open, dav1d_picture_unref, dav1d_send_data,
};

/// The decoding thread's stack.
const STACK_BYTES: usize = 16 << 20;
/// dav1d's "try again" (`-EAGAIN`; Linux is the only target).
const AGAIN: i32 = -11;
/// Most send/receive rounds for one picture: a still image needs one or two.
const MAX_ROUNDS: usize = 64;

/// A decoded picture and the colour its sequence header declares.
pub(crate) struct Picture {
    /// The planes, at their coded bit depth, with the matrix and range of the sequence header.
    pub frame: Frame,
    /// `color_primaries` (H.273).
    pub primaries: u8,
    /// `transfer_characteristics` (H.273).
    pub transfer: u8,
}

/// Decodes the first picture of `obus` (a temporal unit: what an AVIF item holds), refusing one
/// of more than `max_pixels`.
///
/// The decoding runs in a child process: a panic inside rav1d's `extern "C"` functions cannot
/// unwind and aborts whatever process it is in, so it must not be this one. The child writes the
/// picture into a shared anonymous mapping and exits; if it dies instead, the picture is refused.
pub(crate) fn decode(obus: &[u8], max_pixels: u64) -> Result<Picture, String> {
    if obus.is_empty() {
        return Err("the AV1 item is empty".into());
    }
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("av1".into())
            .stack_size(STACK_BYTES)
            .spawn_scoped(scope, || in_child(obus, max_pixels))
            .map_err(|e| format!("the AV1 decoder could not start: {e}"))?
            .join()
            .unwrap_or_else(|_| Err("the AV1 decoder failed on this picture".into()))
    })
}

/// The bytes of the result's header: 4 unused, the length of an error message, then the 13
/// little-endian `u32` fields of a picture (see `write_picture`).
const HEADER: usize = 64;

/// A shared anonymous mapping, unmapped once.
struct Shared {
    ptr: *mut u8,
    len: usize,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: `ptr` and `len` are those `mmap` returned, unmapped only here.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

fn in_child(obus: &[u8], max_pixels: u64) -> Result<Picture, String> {
    // Room for the largest picture the limit allows: three full planes of 16-bit samples.
    let len = usize::try_from(max_pixels.saturating_mul(6))
        .ok()
        .and_then(|n| n.checked_add(HEADER))
        .ok_or("the pixel limit is too large")?;
    // SAFETY: a new anonymous mapping; the result is checked before use. MAP_NORESERVE: only
    // the pages written count.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err("no memory for the AV1 picture".into());
    }
    let shared = Shared {
        ptr: ptr.cast(),
        len,
    };
    // SAFETY: the child only decodes, writes into the mapping and `_exit`s: it runs no destructor
    // and no code of the parent's other threads, and glibc's allocator is usable after `fork`.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err("the AV1 decoder's process could not start".into());
    }
    if pid == 0 {
        let written = std::panic::catch_unwind(|| {
            decode_here(obus, max_pixels).map(|p| write_picture(&p, &shared))
        });
        let code = match written {
            Ok(Ok(true)) => 0,
            Ok(Ok(false)) => 3,
            Ok(Err(message)) => {
                // SAFETY: within the mapping: HEADER bytes, then the message.
                let out = unsafe { std::slice::from_raw_parts_mut(shared.ptr, shared.len) };
                let bytes = message.as_bytes();
                let n = bytes.len().min(shared.len - HEADER);
                out[HEADER..HEADER + n].copy_from_slice(&bytes[..n]);
                out[4..8].copy_from_slice(&(n as u32).to_le_bytes());
                2
            }
            Err(_) => 4,
        };
        // SAFETY: ends the child at once, running nothing of the parent's state.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child; a signal's interruption (EINTR) waits again, so the child
    // is always reaped.
    let waited = loop {
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        if waited != -1 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
        {
            break waited;
        }
    };
    if waited != pid || !libc::WIFEXITED(status) {
        return Err("the AV1 decoder crashed on this picture".into());
    }
    // SAFETY: the child has exited; the mapping is ours alone and `len` bytes long.
    let out = unsafe { std::slice::from_raw_parts(shared.ptr, shared.len) };
    match libc::WEXITSTATUS(status) {
        0 => read_picture(out),
        2 => {
            let n = (u32_at(out, 4) as usize).min(shared.len - HEADER);
            Err(String::from_utf8_lossy(&out[HEADER..HEADER + n]).into_owned())
        }
        3 => Err("the AV1 picture is larger than the pixel limit allows".into()),
        _ => Err("the AV1 decoder failed on this picture".into()),
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Writes a picture into the shared mapping (in the child); `false` when it does not fit.
fn write_picture(p: &Picture, shared: &Shared) -> bool {
    // SAFETY: the mapping is `len` bytes long and only this process writes it now.
    let out = unsafe { std::slice::from_raw_parts_mut(shared.ptr, shared.len) };
    let f = &p.frame;
    let fields = [
        f.widths[0],
        f.widths[1],
        f.widths[2],
        f.heights[0],
        f.heights[1],
        f.heights[2],
        u32::from(f.bit_depth[0]),
        u32::from(f.bit_depth[1]),
        u32::from(f.chroma_format),
        u32::from(f.full_range),
        u32::from(f.matrix_coeffs),
        u32::from(p.primaries),
        u32::from(p.transfer),
    ];
    let samples: usize = f.planes.iter().map(Vec::len).sum();
    if HEADER + samples * 2 > out.len() {
        return false;
    }
    for (i, v) in fields.iter().enumerate() {
        out[8 + i * 4..12 + i * 4].copy_from_slice(&v.to_le_bytes());
    }
    let mut at = HEADER;
    for plane in &f.planes {
        for &v in plane {
            out[at..at + 2].copy_from_slice(&v.to_le_bytes());
            at += 2;
        }
    }
    true
}

/// Reads the picture the child wrote.
fn read_picture(out: &[u8]) -> Result<Picture, String> {
    let field = |i: usize| u32_at(out, 8 + i * 4);
    let small = |i: usize| u8::try_from(field(i)).map_err(|_| "a bad picture header".to_owned());
    let (widths, heights) = (
        [field(0), field(1), field(2)],
        [field(3), field(4), field(5)],
    );
    let mut at = HEADER;
    let mut planes: [Vec<u16>; 3] = Default::default();
    for (i, plane) in planes.iter_mut().enumerate() {
        let n = widths[i] as usize * heights[i] as usize;
        let bytes = out.get(at..at + n * 2).ok_or("a bad picture header")?;
        *plane = bytes
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect();
        at += n * 2;
    }
    Ok(Picture {
        frame: Frame {
            widths,
            heights,
            planes,
            bit_depth: [small(6)?, small(7)?],
            chroma_format: small(8)?,
            full_range: field(9) != 0,
            matrix_coeffs: small(10)?,
        },
        primaries: small(11)?,
        transfer: small(12)?,
    })
}

/// An open decoder, closed once whatever happens.
struct Context(Option<Dav1dContext>);

impl Drop for Context {
    fn drop(&mut self) {
        if self.0.is_some() {
            // SAFETY: the context came from `dav1d_open` and is closed only here.
            unsafe { dav1d_close(Some(NonNull::from(&mut self.0))) };
        }
    }
}

/// Data handed to the decoder, released once whatever happens.
struct Data(Dav1dData);

impl Drop for Data {
    fn drop(&mut self) {
        // SAFETY: the data came from `dav1d_data_create`; unref of consumed data is a no-op.
        unsafe { dav1d_data_unref(Some(NonNull::from(&mut self.0))) };
    }
}

/// A decoded picture, released once.
struct Decoded(Dav1dPicture);

impl Drop for Decoded {
    fn drop(&mut self) {
        // SAFETY: the picture was written by `dav1d_get_picture` (a picture, or an empty one).
        unsafe { dav1d_picture_unref(Some(NonNull::from(&mut self.0))) };
        // rav1d 1.1.0's unref leaves a new, empty ITU-T T.35 `Arc` in the picture (it resets the
        // picture to a default one, which allocates it): release that too, or each picture
        // leaks 48 bytes (found by the fuzzer's leak checker).
        if let Some(raw) = self.0.itut_t35_ref.take() {
            // SAFETY: rav1d made this from `RawArc::from_arc` when it wrote the picture back,
            // and nothing else holds it.
            drop(unsafe { raw.into_arc() });
        }
    }
}

fn decode_here(obus: &[u8], max_pixels: u64) -> Result<Picture, String> {
    let mut settings = MaybeUninit::<Dav1dSettings>::uninit();
    // SAFETY: `dav1d_default_settings` writes every field of the struct it is given.
    let mut settings = unsafe {
        dav1d_default_settings(NonNull::from(&mut settings).cast());
        settings.assume_init()
    };
    // One thread: the function has about one vCPU, and a run is one file.
    settings.n_threads = 1;
    settings.max_frame_delay = 1;
    // The highest-quality layer only, as libavif does.
    settings.all_layers = 0;
    settings.frame_size_limit = u32::try_from(max_pixels).unwrap_or(u32::MAX);
    // No logger: rav1d would print each complaint about a damaged stream to stderr, outside the
    // function's JSON logs; the rejection says what was wrong. (Its fields are private; a null
    // callback is dav1d's documented way to turn logging off.)
    // SAFETY: `Dav1dLogger` is `repr(C)` of an optional pointer and an optional function
    // pointer, for both of which all-zero bytes are `None`.
    unsafe { std::ptr::write_bytes(&raw mut settings.logger, 0, 1) };

    let mut context = Context(None);
    // SAFETY: both pointers are to live locals; `dav1d_open` writes the context or `None`.
    let opened = unsafe {
        dav1d_open(
            Some(NonNull::from(&mut context.0)),
            Some(NonNull::from(&mut settings)),
        )
    };
    if opened.0 < 0 || context.0.is_none() {
        return Err(format!("the AV1 decoder could not open ({})", opened.0));
    }

    let mut data = Data(Dav1dData::default());
    // SAFETY: `data.0` is a live local the call fills; it returns a buffer of `obus.len()` bytes.
    let buffer = unsafe { dav1d_data_create(Some(NonNull::from(&mut data.0)), obus.len()) };
    if buffer.is_null() {
        return Err("no memory for the AV1 data".into());
    }
    // SAFETY: `buffer` holds `obus.len()` writable bytes, and cannot overlap `obus`.
    unsafe { std::ptr::copy_nonoverlapping(obus.as_ptr(), buffer, obus.len()) };

    let mut drained = false;
    for _ in 0..MAX_ROUNDS {
        if data.0.sz > 0 {
            // SAFETY: the context is open and `data.0` came from `dav1d_data_create`.
            let sent = unsafe { dav1d_send_data(context.0, Some(NonNull::from(&mut data.0))) };
            if sent.0 < 0 && sent.0 != AGAIN {
                return Err(format!("the AV1 data does not decode ({})", sent.0));
            }
        }
        let mut picture = Decoded(Dav1dPicture::default());
        // SAFETY: the context is open; the call writes the picture, which `Decoded` releases
        // (releasing an empty picture is a no-op).
        let got = unsafe { dav1d_get_picture(context.0, Some(NonNull::from(&mut picture.0))) };
        if got.0 == 0 {
            return to_frame(&picture.0);
        }
        if got.0 != AGAIN {
            return Err(format!("the AV1 picture does not decode ({})", got.0));
        }
        // All data is in and no picture came out: one more call drains the decoder (a picture
        // shown by a later `show_existing_frame`), then there is none.
        if data.0.sz == 0 {
            if drained {
                break;
            }
            drained = true;
        }
    }
    Err("the AV1 data holds no picture".into())
}

/// Copies the planes of a decoded picture into a [`Frame`].
fn to_frame(picture: &Dav1dPicture) -> Result<Picture, String> {
    let p = &picture.p;
    let (width, height) = (
        u32::try_from(p.w).map_err(|_| "negative width")?,
        u32::try_from(p.h).map_err(|_| "negative height")?,
    );
    let (chroma_format, chroma_w, chroma_h) = match p.layout {
        DAV1D_PIXEL_LAYOUT_I400 => (0, 0, 0),
        DAV1D_PIXEL_LAYOUT_I420 => (1, width.div_ceil(2), height.div_ceil(2)),
        DAV1D_PIXEL_LAYOUT_I422 => (2, width.div_ceil(2), height),
        DAV1D_PIXEL_LAYOUT_I444 => (3, width, height),
        other => return Err(format!("unknown AV1 pixel layout {other}")),
    };
    let depth = u8::try_from(p.bpc).map_err(|_| "bad bit depth")?;
    if !matches!(depth, 8 | 10 | 12) || width == 0 || height == 0 {
        return Err(format!("a {width}x{height} picture at {depth} bits"));
    }
    let plane = |index: usize, w: u32, h: u32| -> Result<Vec<u16>, String> {
        if w == 0 {
            return Ok(Vec::new());
        }
        let base = picture.data[index].ok_or("a plane is missing")?;
        let stride = picture.stride[index.min(1)];
        let row_bytes = w as usize * if depth == 8 { 1 } else { 2 };
        if stride.unsigned_abs() < row_bytes {
            return Err("a plane's stride is shorter than its rows".into());
        }
        let mut samples = Vec::with_capacity(w as usize * h as usize);
        for y in 0..h as isize {
            // SAFETY: dav1d's planes hold `h` rows of `stride` bytes each, of which the first
            // `row_bytes` are the row's samples (`u16` ones, 2-aligned, above 8 bits).
            unsafe {
                let row = base.as_ptr().cast::<u8>().offset(y * stride);
                if depth == 8 {
                    let row = std::slice::from_raw_parts(row, w as usize);
                    samples.extend(row.iter().map(|&v| u16::from(v)));
                } else {
                    let row = std::slice::from_raw_parts(row.cast::<u16>(), w as usize);
                    samples.extend_from_slice(row);
                }
            }
        }
        Ok(samples)
    };
    let planes = [
        plane(0, width, height)?,
        plane(1, chroma_w, chroma_h)?,
        plane(2, chroma_w, chroma_h)?,
    ];
    let header = picture
        .seq_hdr
        .ok_or("the picture has no sequence header")?;
    // SAFETY: the sequence header lives as long as the picture, which is still referenced.
    let header = unsafe { header.as_ref() };
    Ok(Picture {
        frame: Frame {
            widths: [width, chroma_w, chroma_w],
            heights: [height, chroma_h, chroma_h],
            planes,
            bit_depth: [depth, depth],
            chroma_format,
            full_range: header.color_range != 0,
            matrix_coeffs: u8::try_from(header.mtrx).unwrap_or(2),
        },
        primaries: u8::try_from(header.pri).unwrap_or(2),
        transfer: u8::try_from(header.trc).unwrap_or(2),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use heifer::heifer_isobmff::HeifFile;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// The AV1 data of a real photo (libavif's kodim03, 768x512, 8-bit 4:2:0).
    fn photo() -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/avif/libavif-kodim03-8bit.avif"
        );
        let bytes = std::fs::read(path)?;
        let file = HeifFile::parse(&bytes)?;
        Ok(file.item_data(file.primary_id)?.into_owned())
    }

    #[test]
    fn a_photo_decodes_at_its_size_depth_and_layout() -> TestResult {
        let picture = decode(&photo()?, 50_000_000)?;
        let frame = &picture.frame;
        assert_eq!(
            (frame.widths, frame.heights),
            ([768, 384, 384], [512, 256, 256])
        );
        assert_eq!((frame.bit_depth, frame.chroma_format), ([8, 8], 1));
        assert_eq!(
            frame.planes.each_ref().map(Vec::len),
            [768 * 512, 384 * 256, 384 * 256]
        );
        Ok(())
    }

    #[test]
    fn a_picture_over_the_pixel_limit_is_refused_by_the_decoder() -> TestResult {
        let error = decode(&photo()?, 768 * 512 - 1).err().ok_or("decoded")?;
        assert!(error.contains("does not decode"), "{error}");
        Ok(())
    }

    #[test]
    fn empty_garbage_and_cut_data_are_errors_never_panics() -> TestResult {
        assert!(decode(&[], 1000).is_err());
        assert!(decode(b"\x12\0\x0a\x0bnot an AV1 stream", 1000).is_err());
        let obus = photo()?;
        for cut in (1..obus.len()).step_by(1499) {
            // A cut picture may still decode (its missing tiles come out grey); it must not
            // panic, and what comes out has the picture's size.
            if let Ok(picture) = decode(&obus[..cut], 50_000_000) {
                assert_eq!(picture.frame.widths[0], 768);
            }
        }
        Ok(())
    }
}
