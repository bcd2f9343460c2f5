//! The video and audio container probes on arbitrary bytes: any panic, any read past the probe's
//! budget, any hang is found. The bytes are the file; reads past its end come back short, as from
//! S3.

#![no_main]

use libfuzzer_sys::fuzz_target;
use media_pipeline::av::{SliceSource, probe};

fuzz_target!(|data: &[u8]| {
    let _ = probe(&mut SliceSource(data));
});
