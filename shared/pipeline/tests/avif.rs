//! AVIF images through the pipeline: the real files of `tests/avif/` (each with its source and
//! licence in `MANIFEST.tsv`: photos, a grid, alpha, 10- and 12-bit, transforms, animations,
//! hostile files), every truncation of one, the frame limit, and files that lie about their type.

use std::path::{Path, PathBuf};

use media_core::domain::{ContentType, RejectionCode};
use media_core::ports::Processed;
use media_pipeline::{PipelineOptions, process_image};

mod support;

use support::{TestResult, has_alpha};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/avif")
}

fn read(name: &str) -> TestResult<Vec<u8>> {
    Ok(std::fs::read(dir().join(name))?)
}

fn accept(bytes: &[u8], opts: &PipelineOptions) -> TestResult<Processed> {
    process_image(bytes, ContentType::Avif, Some("avif"), opts).map_err(|r| format!("{r:?}").into())
}

#[test]
fn every_file_of_the_avif_corpus_ends_as_its_manifest_says() -> TestResult {
    assert_eq!(support::every_row_ends_as_its_manifest_says(&dir())?, 19);
    Ok(())
}

#[test]
fn a_rotated_image_with_alpha_comes_out_upright_with_its_alpha() -> TestResult {
    // Stored 512x256 with `irot` on the colour and the alpha item: displayed, it is portrait.
    let processed = accept(
        &read("libavif-abc-alpha-irot.avif")?,
        &PipelineOptions::default(),
    )?;
    assert_eq!(
        (processed.metadata.width, processed.metadata.height),
        (Some(256), Some(512))
    );
    let large = &processed.thumbnails[0];
    assert_eq!((large.width, large.height), (256, 512));
    assert!(has_alpha(&large.bytes));
    Ok(())
}

#[test]
fn a_grid_is_refused_by_its_declared_size_before_any_tile_is_decoded() -> TestResult {
    let bytes = read("libavif-sofa-grid.avif")?;
    let opts = PipelineOptions {
        max_pixels: 1024 * 770 - 1,
        ..PipelineOptions::default()
    };
    let rejection = process_image(&bytes, ContentType::Avif, Some("avif"), &opts)
        .err()
        .ok_or("accepted")?;
    assert_eq!(rejection.code, RejectionCode::TooLargeDimensions);
    assert!(
        rejection.message.contains("1024x770"),
        "{}",
        rejection.message
    );
    Ok(())
}

#[test]
fn an_animation_reports_its_frames_and_is_held_to_the_frame_limit() -> TestResult {
    let bytes = read("libavif-animated-8bit.avif")?;
    let processed = accept(&bytes, &PipelineOptions::default())?;
    let frames = processed.metadata.frames.ok_or("no frame count")?;
    assert!(frames > 1);
    let opts = PipelineOptions {
        max_frames: frames - 1,
        ..PipelineOptions::default()
    };
    let rejection = process_image(&bytes, ContentType::Avif, Some("avif"), &opts)
        .err()
        .ok_or("accepted")?;
    assert_eq!(rejection.code, RejectionCode::TooManyFrames);
    Ok(())
}

#[test]
fn an_animation_without_its_still_image_shows_its_first_frame() -> TestResult {
    // The same file with its `meta` box renamed `free`: only the track is left, and its first
    // frame must be the picture the still image showed.
    let bytes = read("libavif-animated-12bit.avif")?;
    let at = bytes
        .windows(4)
        .position(|w| w == b"meta")
        .ok_or("no meta box")?;
    let mut track_only = bytes.clone();
    track_only[at..at + 4].copy_from_slice(b"free");
    let opts = PipelineOptions::default();
    let (still, first) = (accept(&bytes, &opts)?, accept(&track_only, &opts)?);
    assert_eq!(
        (
            first.metadata.width,
            first.metadata.height,
            first.metadata.frames
        ),
        (
            still.metadata.width,
            still.metadata.height,
            still.metadata.frames
        )
    );
    assert!(first.metadata.frames.is_some_and(|f| f > 1));
    assert_eq!(first.metadata.dominant_color, still.metadata.dominant_color);
    Ok(())
}

#[test]
fn every_truncation_is_refused_never_a_panic() -> TestResult {
    let opts = PipelineOptions::default();
    for file in [
        "libavif-kodim03-8bit.avif",
        "libavif-animated-alpha-exif.avif",
    ] {
        let bytes = read(file)?;
        let cuts = (0..bytes.len()).step_by(211).chain([bytes.len() - 1]);
        for cut in cuts {
            let result = process_image(&bytes[..cut], ContentType::Avif, Some("avif"), &opts);
            // A cut inside the last frame of an animation leaves the still image whole.
            let Err(rejection) = result else {
                assert!(
                    file.contains("animated"),
                    "{file} cut at {cut} was accepted"
                );
                continue;
            };
            assert!(
                matches!(
                    rejection.code,
                    RejectionCode::Corrupt | RejectionCode::NotAnImage
                ),
                "{file} cut at {cut}: {rejection:?}"
            );
        }
    }
    Ok(())
}

#[test]
fn a_file_that_is_not_what_it_claims_is_refused_with_its_reason() -> TestResult {
    let opts = PipelineOptions::default();
    let avif = read("libavif-kodim03-8bit.avif")?;
    let heic = std::fs::read(dir().join("../heif/pillow-sony-exif.heic"))?;
    let code = |bytes: &[u8], declared, ext| {
        process_image(bytes, declared, Some(ext), &opts)
            .err()
            .map(|r| r.code)
    };
    // AVIF and HEIC share the container, not the coding: neither passes for the other.
    assert_eq!(
        code(&avif, ContentType::Heic, "heic"),
        Some(RejectionCode::TypeMismatch)
    );
    assert_eq!(
        code(&heic, ContentType::Avif, "avif"),
        Some(RejectionCode::TypeMismatch)
    );
    assert_eq!(
        code(&avif, ContentType::Avif, "heic"),
        Some(RejectionCode::TypeMismatch)
    );
    assert_eq!(
        code(&avif, ContentType::Jpeg, "jpg"),
        Some(RejectionCode::TypeMismatch)
    );
    assert_eq!(
        code(b"plain text, no image", ContentType::Avif, "avif"),
        Some(RejectionCode::NotAnImage)
    );
    Ok(())
}

#[test]
fn a_picture_that_makes_the_decoder_abort_is_corrupt_and_this_process_lives_on() -> TestResult {
    // A fuzzer's find: rav1d 1.1.0 panics inside its `extern "C"` send_data on it, which aborts
    // the process it runs in. It runs in a child process, so here it is only a corrupt file.
    let bytes =
        std::fs::read(dir().join("../../fuzz/known-crashes/rav1d-1.1.0-on-error-unwrap.avif"))?;
    let rejection = process_image(
        &bytes,
        ContentType::Avif,
        Some("avif"),
        &PipelineOptions::default(),
    )
    .err()
    .ok_or("accepted")?;
    assert_eq!(
        rejection.code,
        RejectionCode::Corrupt,
        "{}",
        rejection.message
    );
    assert!(
        rejection.message.contains("crashed"),
        "{}",
        rejection.message
    );
    // And the next file decodes as before.
    accept(
        &read("libavif-kodim03-8bit.avif")?,
        &PipelineOptions::default(),
    )?;
    Ok(())
}
