//! What the HEIC and AVIF corpus tests share: reading a `MANIFEST.tsv` of real files (each with
//! its source and licence) and holding every row to what it says.

use std::collections::BTreeMap;
use std::path::Path;

use media_core::domain::ContentType;
use media_pipeline::{PipelineOptions, process_image};

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// Whether a WebP derivative carries an alpha channel (lossy WebP keeps it in an `ALPH` chunk).
pub fn has_alpha(webp: &[u8]) -> bool {
    webp.windows(4).any(|w| w == b"ALPH")
}

/// Processes every file `dir/MANIFEST.tsv` lists and checks it ends as its row says: refused
/// with the row's code, or accepted with the row's `key=value` checks (`width`, `height`,
/// `make`, `model`, `gps`, `frames`, `alpha`), three upright thumbnails and no EXIF orientation
/// reported (in HEIF files the container's transforms decide). Returns the number of rows.
pub fn every_row_ends_as_its_manifest_says(dir: &Path) -> TestResult<usize> {
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv"))?;
    let opts = PipelineOptions::default();
    let mut rows = 0;
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        assert!(
            cols.len() == 9 && !cols[4].is_empty() && !cols[7].is_empty(),
            "a row needs 9 columns, a source and a licence: {line}"
        );
        let (file, declared, expect) = (cols[0], ContentType::parse(cols[1])?, cols[2]);
        let checks: BTreeMap<&str, &str> = cols[3]
            .split(';')
            .filter_map(|c| c.split_once('='))
            .collect();
        let ext = file.rsplit_once('.').map(|(_, e)| e);
        let result = process_image(&std::fs::read(dir.join(file))?, declared, ext, &opts);
        rows += 1;
        if expect != "accept" {
            let rejection = result.err().ok_or(format!("{file} was accepted"))?;
            assert_eq!(
                rejection.code.as_str(),
                expect,
                "{file}: {}",
                rejection.message
            );
            continue;
        }
        let processed = result.map_err(|r| format!("{file}: {r:?}"))?;
        let meta = &processed.metadata;
        assert_eq!(meta.format, declared.format_name(), "{file}");
        let large = processed.thumbnails.first().ok_or("no thumbnails")?;
        for (key, want) in &checks {
            let yes_no = |b: bool| Some(if b { "yes" } else { "no" }.to_owned());
            let got = match *key {
                "width" => meta.width.map(|v| v.to_string()),
                "height" => meta.height.map(|v| v.to_string()),
                "make" => meta.exif.make.clone(),
                "model" => meta.exif.model.clone(),
                "gps" => yes_no(meta.exif.gps_latitude.is_some()),
                "frames" => meta.frames.map(|v| v.to_string()),
                "alpha" => yes_no(has_alpha(&large.bytes)),
                other => return Err(format!("unknown check {other}").into()),
            };
            assert_eq!(got.as_deref(), Some(*want), "{file}: {key}");
        }
        // Upright: the thumbnails have the displayed shape (after clap, irot and imir).
        let (w, h) = (meta.width.unwrap_or(0), meta.height.unwrap_or(0));
        assert_eq!(
            large.width >= large.height,
            w >= h,
            "{file}: thumbnail shape"
        );
        assert_eq!(meta.exif.orientation, None, "{file}");
        assert_eq!(processed.thumbnails.len(), 3, "{file}");
    }
    Ok(rows)
}
