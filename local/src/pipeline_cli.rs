//! `media-dev process <file>`: the process function's pipeline, exactly, on a local file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use media_core::domain::{ContentType, MediaMetadata, Rejection};
use media_pipeline::av::{self, RangeSource};
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
/// `out`, and reports the metadata that would be stored, or the rejection. Video and audio are
/// read as the process function reads them: by ranges, and hashed as a stream, never whole.
pub fn run(args: &ProcessArgs, opts: &PipelineOptions) -> std::io::Result<ProcessReport> {
    let ext = args
        .file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_owned);
    let declared = args
        .declared
        .or_else(|| ext.as_deref().and_then(ContentType::from_extension))
        .unwrap_or(ContentType::Jpeg);
    if declared.kind().is_streamed() {
        return run_streamed(args, declared, ext.as_deref(), opts);
    }
    let bytes = std::fs::read(&args.file)?;

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
    let outcome = match result {
        Some(Ok(processed)) => {
            let thumbnails = write(&processed, args.out.as_deref(), &args.file)?;
            Some(Ok(json!({
                "metadata": processed.metadata,
                "thumbnails": thumbnails,
                "originalWebp": processed.original_webp.as_ref().map(Vec::len),
            })))
        }
        Some(Err(rejection)) => Some(Err(rejection)),
        None => None,
    };
    Ok(report(outcome, timing))
}

/// The report of the last run: `ready` with `fields` (metadata, thumbnails, ...) or `rejected`
/// with the rejection, and the timing either way.
fn report(outcome: Option<Result<Value, Rejection>>, timing: Value) -> ProcessReport {
    let json = match outcome {
        Some(Ok(mut fields)) => {
            fields["status"] = json!("ready");
            fields["timing"] = timing;
            fields
        }
        Some(Err(rejection)) => json!({
            "status": "rejected",
            "rejection": rejection,
            "timing": timing,
        }),
        None => json!({}),
    };
    let accepted = json["status"] == "ready";
    ProcessReport { json, accepted }
}

/// A local file read by ranges, counting its reads.
struct FileSource {
    file: std::fs::File,
    size: u64,
    reads: u64,
}

impl RangeSource for FileSource {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&mut self, offset: u64, len: usize) -> Result<Vec<u8>, String> {
        use std::os::unix::fs::FileExt;
        self.reads += 1;
        let len = len.min(usize::try_from(self.size.saturating_sub(offset)).unwrap_or(usize::MAX));
        let mut buf = vec![0; len];
        self.file
            .read_exact_at(&mut buf, offset)
            .map_err(|e| e.to_string())?;
        Ok(buf)
    }
}

fn run_streamed(
    args: &ProcessArgs,
    declared: ContentType,
    ext: Option<&str>,
    opts: &PipelineOptions,
) -> std::io::Result<ProcessReport> {
    use std::io::Read;
    let file = std::fs::File::open(&args.file)?;
    let size = file.metadata()?.len();
    let mut runs = Vec::with_capacity(args.repeat);
    let mut result = None;
    let mut reads = 0;
    for _ in 0..args.repeat {
        let mut source = FileSource {
            file: file.try_clone()?,
            size,
            reads: 0,
        };
        let started = Instant::now();
        result = Some(av::check(&mut source, declared, ext, opts));
        runs.push(started.elapsed());
        reads = source.reads;
    }
    // The hash streams, 8 MiB at a time, as the process function's does.
    let hashing = Instant::now();
    let mut hasher = Sha256::new();
    let mut chunk = vec![0; 8 * 1024 * 1024];
    let mut reader = std::fs::File::open(&args.file)?;
    loop {
        let n = reader.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        hasher.update(&chunk[..n]);
    }
    let sha256 = hex::encode(hasher.finalize());
    let mut timing = timing(&mut runs, None);
    timing["sha256Ms"] = json!(ms(hashing.elapsed()));
    timing["probeReads"] = json!(reads);
    let outcome = result.map(|r| {
        r.map(|metadata| {
            json!({
                "metadata": MediaMetadata { sha256, ..metadata },
                "thumbnails": [],
            })
        })
    });
    Ok(report(outcome, timing))
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

    #[test]
    fn video_and_audio_are_read_by_ranges_and_hashed_as_a_stream() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/av");
        let args = ProcessArgs::parse(&[dir.join("rodio-RL.mp3").to_str().unwrap()]).unwrap();
        let report = run(&args, &PipelineOptions::default()).unwrap();
        assert!(report.accepted, "{}", report.json);
        let bytes = std::fs::read(&args.file).unwrap();
        assert_eq!(
            report.json["metadata"]["sha256"],
            hex::encode(Sha256::digest(&bytes))
        );
        assert_eq!(report.json["metadata"]["audioCodec"], "mp3");
        assert!(report.json["timing"]["probeReads"].as_u64().unwrap() > 0);
        // Declared as something it is not: refused, with the reason.
        let mut wrong = args.clone();
        wrong.declared = Some(ContentType::Flac);
        let report = run(&wrong, &PipelineOptions::default()).unwrap();
        assert!(!report.accepted);
        assert_eq!(report.json["rejection"]["code"], "type_mismatch");
    }
}
