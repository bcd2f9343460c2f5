//! The document validators (PDF, ZIP and OOXML, CSV, text) with the production defaults, on
//! arbitrary bytes, declared as the family the bytes look like (the last byte picks among the
//! family's types) so that mutations reach every validator. Any panic is found (libfuzzer-sys's
//! hook aborts before the pipeline's last-resort catch).

#![no_main]

use libfuzzer_sys::fuzz_target;
use media_core::domain::ContentType;
use media_pipeline::{PipelineOptions, process_image};

fuzz_target!(|data: &[u8]| {
    let pick = usize::from(data.last().copied().unwrap_or(0));
    let declared = if data.starts_with(b"%PDF") {
        ContentType::Pdf
    } else if data.starts_with(b"PK") {
        [ContentType::Zip, ContentType::Docx, ContentType::Xlsx, ContentType::Pptx][pick % 4]
    } else {
        [ContentType::Csv, ContentType::Text][pick % 2]
    };
    let options = PipelineOptions::default();
    let _ = process_image(data, declared, None, &options);
});
