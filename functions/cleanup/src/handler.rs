//! The scheduled cleanup: expire stale pending uploads, purge media past the grace period, and
//! return the one-line summary (also logged).

use lambda_runtime::{Diagnostic, LambdaEvent};
use media_core::MediaService;
use media_core::service::CleanupSummary;
use serde_json::Value;

/// Handles one scheduled event (its content is not used).
pub async fn handle(service: &MediaService, _event: LambdaEvent<Value>) -> Result<CleanupSummary, Diagnostic> {
    service.run_cleanup().await.map_err(|e| {
        tracing::error!(error = %e, cause = ?e, "cleanup run failed");
        Diagnostic { error_type: "Retryable".into(), error_message: e.to_string() }
    })
}
