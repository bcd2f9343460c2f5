//! HEIC/HEIF photos through the pipeline: the real files of `tests/heif/` (each with its source
//! and licence in `MANIFEST.tsv`), every truncation of one, and files that lie about their type.

use std::path::{Path, PathBuf};

use media_core::domain::{ContentType, RejectionCode};
use media_pipeline::{PipelineOptions, process_image};

mod support;

use support::TestResult;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/heif")
}

fn read(name: &str) -> TestResult<Vec<u8>> {
    Ok(std::fs::read(dir().join(name))?)
}

#[test]
fn every_file_of_the_heif_corpus_ends_as_its_manifest_says() -> TestResult {
    assert_eq!(support::every_row_ends_as_its_manifest_says(&dir())?, 11);
    Ok(())
}

#[test]
fn an_iphone_photo_stored_sideways_comes_out_portrait() -> TestResult {
    // Stored 4032x3024 with `irot`: displayed, it is 3024 wide and 4032 high.
    let processed = process_image(
        &read("pillow-arrow-iphone8-rotated.heic")?,
        ContentType::Heic,
        Some("heic"),
        &PipelineOptions::default(),
    )
    .map_err(|r| format!("{r:?}"))?;
    assert_eq!(
        (processed.metadata.width, processed.metadata.height),
        (Some(3024), Some(4032))
    );
    let large = &processed.thumbnails[0];
    assert_eq!((large.width, large.height), (600, 800));
    Ok(())
}

#[test]
fn every_truncation_is_refused_never_a_panic() -> TestResult {
    let bytes = read("pillow-sony-exif.heic")?;
    let opts = PipelineOptions::default();
    let cuts = (0..bytes.len()).step_by(97).chain([bytes.len() - 1]);
    for cut in cuts {
        let result = process_image(&bytes[..cut], ContentType::Heic, Some("heic"), &opts);
        let rejection = result.err().ok_or(format!("cut at {cut} was accepted"))?;
        assert!(
            matches!(
                rejection.code,
                RejectionCode::Corrupt | RejectionCode::NotAnImage
            ),
            "cut at {cut}: {rejection:?}"
        );
    }
    Ok(())
}

#[test]
fn a_file_that_is_not_what_it_claims_is_refused_with_its_reason() -> TestResult {
    let opts = PipelineOptions::default();
    let heic = read("pillow-sony-exif.heic")?;
    let png = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/orientation/portrait-1-exif.png"),
    )?;
    let code = |bytes: &[u8], declared, ext| {
        process_image(bytes, declared, Some(ext), &opts)
            .err()
            .map(|r| r.code)
    };
    assert_eq!(
        code(&heic, ContentType::Jpeg, "jpg"),
        Some(RejectionCode::TypeMismatch)
    );
    assert_eq!(
        code(&png, ContentType::Heic, "heic"),
        Some(RejectionCode::TypeMismatch)
    );
    assert_eq!(
        code(b"plain text, no image", ContentType::Heic, "heic"),
        Some(RejectionCode::NotAnImage)
    );
    // An AVIF (AV1 in HEIF) is not a HEIC.
    let mut avif = b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf".to_vec();
    avif.extend_from_slice(&[0; 64]);
    assert_eq!(
        code(&avif, ContentType::Heic, "heic"),
        Some(RejectionCode::TypeMismatch)
    );
    // HEIC and HEIF name the same files: either declaration (and extension) is accepted.
    assert!(process_image(&heic, ContentType::Heif, Some("heif"), &opts).is_ok());
    Ok(())
}
