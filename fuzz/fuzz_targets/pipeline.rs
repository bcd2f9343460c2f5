//! The whole image pipeline with the production defaults (limits, sizes, format), on arbitrary bytes. The pipeline catches
//! panics as a last resort, but libfuzzer-sys's panic hook aborts first, so any panic is found.

#![no_main]

use libfuzzer_sys::fuzz_target;
use media_core::domain::ContentType;
use media_pipeline::{PipelineOptions, Sniffed, process_image, sniff};

fuzz_target!(|data: &[u8]| {
    // Declare what the bytes look like, so that mutations reach the decoders.
    let declared = match sniff(data) {
        Sniffed::Raster(t) => t,
        _ => ContentType::Jpeg,
    };
    let options = PipelineOptions::default();
    let _ = process_image(data, declared, None, &options);
});
