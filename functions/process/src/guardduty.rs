//! GuardDuty Malware Protection for S3's "Object Scan Result" event, as EventBridge delivers it
//! (`aws_lambda_events`' `EventBridgeEvent`, its `detail` typed here): the verdict that starts
//! processing when `MALWARE_SCANNER=guardduty`.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use media_core::domain::ObjectKey;
use media_core::process::ScanResult;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The event's `detail-type`.
pub const DETAIL_TYPE: &str = "GuardDuty Malware Protection Object Scan Result";

/// The event's `detail`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanResultDetail {
    /// `COMPLETED`, `SKIPPED` or `FAILED`.
    #[serde(default)]
    pub scan_status: Option<String>,
    /// The object scanned.
    pub s3_object_details: S3ObjectDetails,
    /// The verdict.
    pub scan_result_details: ScanResultDetails,
}

/// `detail.s3ObjectDetails`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3ObjectDetails {
    /// The bucket.
    pub bucket_name: String,
    /// The key, as stored (not encoded).
    pub object_key: String,
    /// The version scanned.
    #[serde(default)]
    pub e_tag: Option<String>,
}

/// `detail.scanResultDetails`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanResultDetails {
    /// `NO_THREATS_FOUND`, `THREATS_FOUND`, `UNSUPPORTED`, `ACCESS_DENIED` or `FAILED`.
    pub scan_result_status: String,
    /// The threats found (`null` when none).
    #[serde(default)]
    pub threats: Option<Vec<Threat>>,
}

/// One threat found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Threat {
    /// Its name (`EICAR-Test-File (not a virus)`, ...).
    pub name: String,
}

/// One verdict: the bucket, the object and its version, and the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The bucket.
    pub bucket: String,
    /// The object.
    pub key: ObjectKey,
    /// Its version (ETag, unquoted) that was scanned.
    pub etag: String,
    /// The result.
    pub result: ScanResult,
}

/// Why an event of this type could not be read.
#[derive(Debug, thiserror::Error)]
pub enum VerdictError {
    /// The JSON is not the event's shape.
    #[error("not a GuardDuty scan result: {0}")]
    Shape(#[from] serde_json::Error),
    /// A status this code does not know: not a verdict it may act on.
    #[error("unknown scan result status {0:?}")]
    Status(String),
    /// No ETag: the version scanned is unknown.
    #[error("the scan result names no ETag")]
    NoEtag,
}

/// The verdict in `event`, `Ok(None)` when it is another kind of event.
pub fn verdict(event: &Value) -> Result<Option<Verdict>, VerdictError> {
    if event.get("detail-type").and_then(Value::as_str) != Some(DETAIL_TYPE) {
        return Ok(None);
    }
    let event: EventBridgeEvent<ScanResultDetail> = serde_json::from_value(event.clone())?;
    let details = event.detail.scan_result_details;
    let result = match details.scan_result_status.as_str() {
        "NO_THREATS_FOUND" => ScanResult::NoThreatsFound,
        "THREATS_FOUND" => ScanResult::ThreatsFound(
            details
                .threats
                .unwrap_or_default()
                .into_iter()
                .map(|t| t.name)
                .collect(),
        ),
        "UNSUPPORTED" => ScanResult::Unsupported,
        "ACCESS_DENIED" => ScanResult::AccessDenied,
        "FAILED" => ScanResult::Failed,
        other => return Err(VerdictError::Status(other.to_owned())),
    };
    let object = event.detail.s3_object_details;
    let etag = object
        .e_tag
        .map(|e| e.trim_matches('"').to_owned())
        .filter(|e| !e.is_empty())
        .ok_or(VerdictError::NoEtag)?;
    Ok(Some(Verdict {
        bucket: object.bucket_name,
        key: ObjectKey::from_raw(object.object_key),
        etag,
        result,
    }))
}
