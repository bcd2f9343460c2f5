//! The scanning stage: every upload, whatever its kind and however it arrived, is streamed
//! through the malware scanner before it can become `ready`. A verdict of "infected" rejects it
//! (`malware`); a scanner that cannot give a verdict fails the event, which is retried, so that
//! nothing is ever `ready` unscanned.

use std::time::Instant;

use tracing::info;

use super::ProcessError;
use crate::domain::{Media, ObjectKey, Rejection, RejectionCode};
use crate::metrics::Unit;
use crate::ports::{Scanner, Verdict};
use crate::scanning::MalwareScanner;
use crate::service::MediaService;

/// Bytes per `send` to the scanner, and per ranged GET while scanning an object.
const CHUNK: usize = 1024 * 1024;
/// Bytes per ranged GET of an object being scanned.
const READ: usize = 8 * 1024 * 1024;
/// How much consecutive windows of a large file share: a signature shorter than this is found
/// wherever it lies, also across a window's edge.
pub(crate) const OVERLAP: u64 = 1024 * 1024;

/// The windows (start, end) that cover `size` bytes, each at most `max` long, consecutive ones
/// sharing [`OVERLAP`] bytes.
pub(crate) fn windows(size: u64, max: u64) -> Vec<(u64, u64)> {
    let step = max.saturating_sub(OVERLAP).max(1);
    let mut out = vec![(0, size.min(max))];
    while let Some(&(start, end)) = out.last() {
        if end >= size {
            break;
        }
        let next = start + step;
        out.push((next, (next + max).min(size)));
    }
    out
}

impl MediaService {
    /// The scanner `process_upload` must use, or `None` when scanning is off
    /// (`MALWARE_SCANNER=none`).
    fn scanner_in_force(&self) -> Result<Option<&dyn Scanner>, ProcessError> {
        match &self.config.malware_scanner {
            MalwareScanner::Clamd(_) => self
                .scanner
                .as_deref()
                .map(Some)
                .ok_or(ProcessError::NoScanner),
            MalwareScanner::None | MalwareScanner::GuardDuty { .. } => Ok(None),
        }
    }

    /// Scans a file held in memory: `None` when clean (or scanning is off), else the rejection.
    pub(super) async fn scan_bytes(
        &self,
        media: &Media,
        bytes: &[u8],
    ) -> Result<Option<Rejection>, ProcessError> {
        let Some(scanner) = self.scanner_in_force()? else {
            return Ok(None);
        };
        let started = Instant::now();
        let verdict = async {
            let mut session = scanner.start().await?;
            for chunk in bytes.chunks(CHUNK) {
                session.send(chunk).await?;
            }
            session.finish().await
        }
        .await;
        self.scanned(media, verdict.map(Some), started)
    }

    /// Scans the object's version `etag` by ranged reads, in overlapping windows when it is
    /// larger than one scan may be. `Ok(Err(()))` when the object changed or went meanwhile.
    pub(super) async fn scan_object(
        &self,
        media: &Media,
        key: &ObjectKey,
        etag: &str,
        size: u64,
    ) -> Result<Result<Option<Rejection>, ()>, ProcessError> {
        let Some(scanner) = self.scanner_in_force()? else {
            return Ok(Ok(None));
        };
        let started = Instant::now();
        let mut verdict = Ok(Some(Verdict::Clean));
        for (start, end) in windows(size, scanner.max_stream()) {
            let mut session = match scanner.start().await {
                Ok(s) => s,
                Err(e) => {
                    verdict = Err(e);
                    break;
                }
            };
            let mut offset = start;
            while offset < end {
                let len = READ.min(usize::try_from(end - offset).unwrap_or(READ));
                let Some(bytes) = self.reader()?.read_range(key, etag, offset, len).await? else {
                    return Ok(Err(()));
                };
                if bytes.is_empty() {
                    return Ok(Err(()));
                }
                offset += bytes.len() as u64;
                for chunk in bytes.chunks(CHUNK) {
                    if let Err(e) = session.send(chunk).await {
                        verdict = Err(e);
                        break;
                    }
                }
                if verdict.is_err() {
                    break;
                }
            }
            if verdict.is_err() {
                break;
            }
            verdict = session.finish().await.map(Some);
            if !matches!(verdict, Ok(Some(Verdict::Clean))) {
                break;
            }
        }
        self.scanned(media, verdict, started).map(Ok)
    }

    /// What the metadata says of the scan a ready file passed: `clean`, `unsupported` (GuardDuty
    /// could not scan it and the operator lets such files through), or nothing when scanning is
    /// off.
    pub(super) fn scan_label(&self, gate: &super::Gate) -> Option<String> {
        match (gate, &self.config.malware_scanner) {
            (_, MalwareScanner::None) => None,
            (
                super::Gate::Scanned {
                    unsupported: true, ..
                },
                _,
            ) => Some("unsupported".into()),
            _ => Some("clean".into()),
        }
    }

    /// Counts and logs a scan, and turns its verdict into the rejection it calls for.
    fn scanned(
        &self,
        media: &Media,
        verdict: Result<Option<Verdict>, crate::ports::ScanError>,
        started: Instant,
    ) -> Result<Option<Rejection>, ProcessError> {
        let scanner = self.config.malware_scanner.as_str();
        let label = match &verdict {
            Ok(Some(Verdict::Clean)) | Ok(None) => "clean",
            Ok(Some(Verdict::Infected(_))) => "infected",
            Err(_) => "error",
        };
        self.metrics
            .count("scan_total", &[("scanner", scanner), ("verdict", label)], 1);
        self.metrics.record(
            "scan_duration_seconds",
            Unit::Seconds,
            &[("scanner", scanner)],
            started.elapsed().as_secs_f64(),
        );
        info!(
            media_id = %media.id, key = %media.key, scanner, verdict = label,
            scan_ms = started.elapsed().as_millis() as u64, "scanned upload"
        );
        match verdict? {
            Some(Verdict::Infected(signature)) => Ok(Some(Rejection::new(
                RejectionCode::Malware,
                format!("the file carries malware: {signature}"),
            ))),
            Some(Verdict::Clean) | None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_every_byte_and_overlap() {
        const M: u64 = 1024 * 1024;
        assert_eq!(windows(0, 64 * M), [(0, 0)]);
        assert_eq!(windows(10, 64 * M), [(0, 10)]);
        assert_eq!(windows(64 * M, 64 * M), [(0, 64 * M)]);
        assert_eq!(
            windows(64 * M + 1, 64 * M),
            [(0, 64 * M), (63 * M, 64 * M + 1)]
        );
        for size in [5 * M, 100 * M, 5 * 1024 * M + 7] {
            let w = windows(size, 8 * M);
            assert_eq!(w.first().map(|w| w.0), Some(0));
            assert_eq!(w.last().map(|w| w.1), Some(size));
            for pair in w.windows(2) {
                assert_eq!(pair[0].1 - pair[1].0, OVERLAP, "{pair:?}");
            }
            assert!(w.iter().all(|(s, e)| e - s <= 8 * M));
        }
    }
}
