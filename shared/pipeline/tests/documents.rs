//! The document corpus (`tests/documents/MANIFEST.tsv`): every file, declared as its row says,
//! is accepted with the metadata the row checks, or refused with the row's code.

use std::path::PathBuf;

use media_core::domain::{ContentType, MediaMetadata};
use media_pipeline::{PipelineOptions, process_image};

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/documents")
}

/// The value a check names, as text (`none` for an absent field).
fn field(m: &MediaMetadata, thumbnails: usize, key: &str) -> Option<String> {
    let opt = |v: Option<String>| Some(v.unwrap_or_else(|| "none".to_owned()));
    match key {
        "pages" => opt(m.pages.map(|v| v.to_string())),
        "encrypted" => opt(m.encrypted.map(|v| v.to_string())),
        "title" => opt(m.title.clone()),
        "author" => opt(m.author.clone()),
        "entries" => opt(m.entries.map(|v| v.to_string())),
        "rows" => opt(m.rows.map(|v| v.to_string())),
        "columns" => opt(m.columns.map(|v| v.to_string())),
        "formulaCells" => opt(m.formula_cells.map(|v| v.to_string())),
        "lines" => opt(m.lines.map(|v| v.to_string())),
        "thumbnails" => Some(thumbnails.to_string()),
        _ => None,
    }
}

#[test]
fn every_corpus_file_meets_its_manifest_row() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = std::fs::read_to_string(corpus().join("MANIFEST.tsv"))?;
    let opts = PipelineOptions::default();
    let mut failures = Vec::new();
    let mut rows = 0;
    for line in manifest.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        rows += 1;
        let cols: Vec<&str> = line.split('\t').collect();
        let [file, declared, expect, checks, ..] = cols[..] else {
            return Err(format!("bad manifest row {line:?}").into());
        };
        let declared = ContentType::from_extension(declared)
            .ok_or_else(|| format!("{file}: unknown declared type {declared}"))?;
        let bytes = std::fs::read(corpus().join(file))?;
        let result = process_image(&bytes, declared, Some(declared.extension()), &opts);
        let what = format!("{file} as {declared}");
        match (expect.strip_prefix("reject:"), result) {
            (Some(code), Err(r)) if r.code.as_str() == code => {}
            (Some(code), Err(r)) => failures.push(format!(
                "{what}: expected {code}, got {} ({})",
                r.code.as_str(),
                r.message
            )),
            (Some(code), Ok(_)) => failures.push(format!("{what}: expected {code}, accepted")),
            (None, Err(r)) => failures.push(format!(
                "{what}: expected accept, got {} ({})",
                r.code.as_str(),
                r.message
            )),
            (None, Ok(p)) => {
                if p.metadata.size != bytes.len() as u64 || p.metadata.sha256.len() != 64 {
                    failures.push(format!("{what}: size or sha256 missing"));
                }
                for check in checks.split(';').filter(|c| !c.is_empty()) {
                    let (key, want) = check.split_once('=').unwrap_or((check, ""));
                    match field(&p.metadata, p.thumbnails.len(), key) {
                        Some(got) if got == want => {}
                        got => failures.push(format!("{what}: {key} is {got:?}, not {want:?}")),
                    }
                }
            }
        }
    }
    assert!(rows >= 40, "the manifest has {rows} rows");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}
