//! The whole image pipeline with production limits, on arbitrary bytes. The pipeline catches
//! panics as a last resort, but libfuzzer-sys's panic hook aborts first, so any panic is found.

#![no_main]

use libfuzzer_sys::fuzz_target;
use media_core::config::{ThumbnailFormat, ThumbnailSize};
use media_core::domain::ContentType;
use media_core::pipeline::{DEFAULT_WEBP_METHOD, PipelineOptions, Sniffed, process_image, sniff};

fn production() -> PipelineOptions {
    let size = |name: &str, size| ThumbnailSize {
        name: name.into(),
        size,
    };
    PipelineOptions {
        allowed_types: ContentType::ALL.to_vec(),
        max_pixels: 50_000_000,
        max_side: 16384,
        max_bytes: 5 << 20,
        max_frames: 1000,
        max_metadata_bytes: 1 << 20,
        sizes: vec![size("small", 150), size("medium", 400), size("large", 800)],
        format: ThumbnailFormat::Webp,
        quality: 80,
        webp_method: DEFAULT_WEBP_METHOD,
        convert_original_to_webp: false,
    }
}

fuzz_target!(|data: &[u8]| {
    // Declare what the bytes look like, so that mutations reach the decoders.
    let declared = match sniff(data) {
        Sniffed::Raster(t) => t,
        _ => ContentType::Jpeg,
    };
    let _ = process_image(data, declared, None, &production());
});
