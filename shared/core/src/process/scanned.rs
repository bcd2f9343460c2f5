//! GuardDuty Malware Protection for S3's verdict on an upload: with `MALWARE_SCANNER=guardduty`,
//! the verdict event (not the S3 event) starts processing, so that processing never waits on a
//! scan still running and never races it.

use tracing::{info, warn};

use super::{Gate, ProcessError, ProcessOutcome};
use crate::domain::{ObjectKey, Rejection, RejectionCode};
use crate::scanning::MalwareScanner;
use crate::service::MediaService;

/// `scanResultDetails.scanResultStatus`, with the threats found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanResult {
    /// `NO_THREATS_FOUND`.
    NoThreatsFound,
    /// `THREATS_FOUND`, with the threats' names.
    ThreatsFound(Vec<String>),
    /// `UNSUPPORTED`: GuardDuty cannot scan this object (password-protected archive, over its size
    /// limit, ...).
    Unsupported,
    /// `ACCESS_DENIED`: GuardDuty's role could not read it.
    AccessDenied,
    /// `FAILED`: the scan failed.
    Failed,
}

impl ScanResult {
    /// The status as GuardDuty names it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::NoThreatsFound => "NO_THREATS_FOUND",
            Self::ThreatsFound(_) => "THREATS_FOUND",
            Self::Unsupported => "UNSUPPORTED",
            Self::AccessDenied => "ACCESS_DENIED",
            Self::Failed => "FAILED",
        }
    }
}

impl MediaService {
    /// Processes the upload GuardDuty scanned (version `etag` of `key`) as its verdict says: no
    /// threat, processing as usual (only that version); threats, `malware`; unsupported,
    /// `scan_unsupported` (or processing, marked `scan: "unsupported"`, with
    /// `SCAN_UNSUPPORTED=allow`); access denied or failed, `scan_failed`. Never `ready` unscanned.
    pub async fn process_scanned(
        &self,
        key: &ObjectKey,
        etag: &str,
        result: ScanResult,
    ) -> Result<ProcessOutcome, ProcessError> {
        let MalwareScanner::GuardDuty { allow_unsupported } = self.config.malware_scanner else {
            warn!(key = %key, status = result.as_str(), outcome = "ignored",
                "a GuardDuty verdict, but MALWARE_SCANNER is not guardduty");
            return Ok(ProcessOutcome::Ignored);
        };
        let verdict = match &result {
            ScanResult::NoThreatsFound => "clean",
            ScanResult::ThreatsFound(_) => "infected",
            ScanResult::Unsupported => "unsupported",
            ScanResult::AccessDenied | ScanResult::Failed => "error",
        };
        self.metrics.count(
            "scan_total",
            &[("scanner", "guardduty"), ("verdict", verdict)],
            1,
        );
        info!(key = %key, status = result.as_str(), verdict, "GuardDuty scanned an upload");
        let refused = |code, message: String| Gate::Refused(Rejection::new(code, message));
        let gate = match result {
            ScanResult::NoThreatsFound => Gate::Scanned {
                etag: etag.to_owned(),
                unsupported: false,
            },
            ScanResult::Unsupported if allow_unsupported => Gate::Scanned {
                etag: etag.to_owned(),
                unsupported: true,
            },
            ScanResult::ThreatsFound(threats) => refused(
                RejectionCode::Malware,
                format!(
                    "the file carries malware: {}",
                    if threats.is_empty() {
                        "a threat GuardDuty did not name".to_owned()
                    } else {
                        threats.join(", ")
                    }
                ),
            ),
            ScanResult::Unsupported => refused(
                RejectionCode::ScanUnsupported,
                "the malware scanner cannot scan this file (encrypted, or over its limits)".into(),
            ),
            ScanResult::AccessDenied => refused(
                RejectionCode::ScanFailed,
                "the malware scanner was denied access to the file".into(),
            ),
            ScanResult::Failed => {
                refused(RejectionCode::ScanFailed, "the malware scan failed".into())
            }
        };
        self.process_object(key, &gate).await
    }
}
