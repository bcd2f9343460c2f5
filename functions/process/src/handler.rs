//! S3 `ObjectCreated` on the upload prefix -> process each object. Returns `Err` only for faults
//! worth a retry; a rejected upload is a normal outcome.

use lambda_runtime::{Diagnostic, LambdaEvent};
use media_core::MediaService;
use media_core::events;
use serde_json::{Value, json};

/// Handles one event (one or more records).
pub async fn handle(service: &MediaService, event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
    let mut outcomes = Vec::new();
    for record in events::object_created(&event.payload) {
        if record.bucket != service.config().bucket {
            tracing::warn!(bucket = %record.bucket, key = %record.key, "event for another bucket ignored");
            continue;
        }
        let outcome = service.process_upload(&record.key).await.map_err(|e| {
            tracing::error!(key = %record.key, error = %e, cause = ?e, "processing failed; will be retried");
            Diagnostic { error_type: "Retryable".into(), error_message: e.to_string() }
        })?;
        outcomes.push(outcome);
    }
    Ok(json!({ "outcomes": outcomes }))
}
