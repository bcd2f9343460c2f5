//! `media-dev process <file>`: the process function's pipeline, exactly, on a local file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use media_core::domain::ContentType;
use media_pipeline::{PipelineOptions, Processed, process_with_checksum};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// What `media-dev process` was asked to do.
#[derive(Debug, Clone)]
pub struct ProcessArgs {
    /// The file to process.
    pub file: PathBuf,
    /// Where to write the derivatives (none when absent).
    pub out: Option<PathBuf>,
    /// How many times to run the pipeline in this process (for timing).
    pub repeat: usize,
    /// The declared type; by default the one the file's extension names.
    pub declared: Option<ContentType>,
}

impl ProcessArgs {
    /// Parses `<file> [--out DIR] [--repeat N] [--type MIME]`.
    pub fn parse(args: &[&str]) -> Result<Self, String> {
        let mut file = None;
        let mut out = None;
        let mut repeat = 1;
        let mut declared = None;
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .map(|v| (*v).to_owned())
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match *arg {
                "--out" => out = Some(PathBuf::from(value("--out")?)),
                "--repeat" => {
                    repeat = value("--repeat")?
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or("--repeat takes a positive number")?;
                }
                "--type" => {
                    declared =
                        Some(ContentType::parse(&value("--type")?).map_err(|e| e.to_string())?);
                }
                other if other.starts_with("--") => return Err(format!("unknown option {other}")),
                path if file.is_none() => file = Some(PathBuf::from(path)),
                extra => return Err(format!("unexpected argument {extra}")),
            }
        }
        Ok(Self {
            file: file.ok_or("process needs a file")?,
            out,
            repeat,
            declared,
        })
    }
}

/// The outcome: the JSON to print, and whether the file was accepted.
pub struct ProcessReport {
    /// `{status, metadata|rejection, thumbnails, timing}`.
    pub json: Value,
    /// Whether the pipeline accepted the file.
    pub accepted: bool,
}

/// Runs the pipeline `repeat` times on the file (read once), writes the last run's derivatives to
/// `out`, and reports the metadata that would be stored, or the rejection.
pub fn run(args: &ProcessArgs, opts: &PipelineOptions) -> std::io::Result<ProcessReport> {
    let bytes = std::fs::read(&args.file)?;
    let ext = args
        .file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_owned);
    let declared = args
        .declared
        .or_else(|| ext.as_deref().and_then(ContentType::from_extension))
        .unwrap_or(ContentType::Jpeg);

    // Hashed once, outside the timed runs: the process function hashes the object while it
    // downloads (`Fetched::Bytes`), so the hash is not part of its processing time either.
    let hashing = Instant::now();
    let sha256: [u8; 32] = Sha256::digest(&bytes).into();
    let hash_time = hashing.elapsed();

    let mut runs = Vec::with_capacity(args.repeat);
    let mut result = None;
    for _ in 0..args.repeat {
        let started = Instant::now();
        let r = process_with_checksum(&bytes, sha256, declared, ext.as_deref(), opts);
        runs.push(started.elapsed());
        result = Some(r);
    }
    let mut timing = timing(&mut runs, result.as_ref().and_then(|r| r.as_ref().ok()));
    timing["sha256Ms"] = json!(ms(hash_time));
    let json = match result {
        Some(Ok(processed)) => {
            let thumbnails = write(&processed, args.out.as_deref(), &args.file)?;
            json!({
                "status": "ready",
                "metadata": processed.metadata,
                "thumbnails": thumbnails,
                "originalWebp": processed.original_webp.as_ref().map(Vec::len),
                "timing": timing,
            })
        }
        Some(Err(rejection)) => json!({
            "status": "rejected",
            "rejection": rejection,
            "timing": timing,
        }),
        None => json!({}),
    };
    let accepted = json["status"] == "ready";
    Ok(ProcessReport { json, accepted })
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

fn timing(runs: &mut [Duration], last: Option<&Processed>) -> Value {
    runs.sort();
    let median = runs.get(runs.len() / 2).copied().unwrap_or_default();
    let mut t = json!({
        "runs": runs.len(),
        "medianMs": ms(median),
        "minMs": ms(runs.first().copied().unwrap_or_default()),
        "maxMs": ms(runs.last().copied().unwrap_or_default()),
        "peakRssKiB": peak_rss_kib(),
    });
    if let Some(p) = last {
        t["lastRun"] = json!({
            "inspectMs": ms(p.timings.inspect),
            "decodeMs": ms(p.timings.decode),
            "resizeMs": ms(p.timings.resize),
            "encodeMs": ms(p.timings.encode),
        });
    }
    t
}

/// The process's peak resident memory (Linux `VmHWM`), when it can be read.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn write(processed: &Processed, out: Option<&Path>, source: &Path) -> std::io::Result<Vec<Value>> {
    let stem = source
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("image");
    if let Some(dir) = out {
        std::fs::create_dir_all(dir)?;
    }
    let mut listed = Vec::new();
    for t in &processed.thumbnails {
        let mut entry = json!({
            "name": t.name, "width": t.width, "height": t.height, "bytes": t.bytes.len(),
            "contentType": t.format.mime(),
        });
        if let Some(dir) = out {
            let path = dir.join(format!("{stem}.{}.{}", t.name, t.format.extension()));
            std::fs::write(&path, &t.bytes)?;
            entry["file"] = json!(path.display().to_string());
        }
        listed.push(entry);
    }
    if let (Some(dir), Some(webp)) = (out, &processed.original_webp) {
        std::fs::write(dir.join(format!("{stem}.original.webp")), webp)?;
    }
    Ok(listed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        let a = ProcessArgs::parse(&["a.jpg", "--repeat", "20", "--out", "o"]).unwrap();
        assert_eq!((a.repeat, a.out.as_deref()), (20, Some(Path::new("o"))));
        assert!(ProcessArgs::parse(&["a.jpg", "--repeat", "0"]).is_err());
        assert!(ProcessArgs::parse(&["--out", "o"]).is_err());
        assert!(ProcessArgs::parse(&["a", "b"]).is_err());
        let t = ProcessArgs::parse(&["a.bin", "--type", "image/png"]).unwrap();
        assert_eq!(t.declared, Some(ContentType::Png));
    }
}
