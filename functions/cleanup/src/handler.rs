//! The scheduled cleanup: expire stale pending uploads, purge media past the grace period, and
//! return the one-line summary (also logged).

use lambda_runtime::{Diagnostic, LambdaEvent};
use media_core::MediaService;
use media_core::cleanup::CleanupSummary;
use serde_json::Value;

/// Handles one scheduled event (its content is not used).
pub async fn handle(
    service: &MediaService,
    _event: LambdaEvent<Value>,
) -> Result<CleanupSummary, Diagnostic> {
    service.run_cleanup().await.map_err(|e| {
        tracing::error!(error = %e, cause = ?e, "cleanup run failed");
        Diagnostic {
            error_type: "Retryable".into(),
            error_message: e.to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_runtime::Context;
    use media_core::domain::{MediaId, OwnerId};
    use media_provision::testkit::{SAMPLE_MEDIA_ID, TestStack, corpus_file, sample_event};

    #[tokio::test]
    async fn the_scheduled_event_purges_deleted_media_past_the_grace_period()
    -> Result<(), Box<dyn std::error::Error>> {
        let mut stack = TestStack::new(&[("CLEANUP_GRACE_PERIOD_HOURS", "0")]).await?;
        // Processing needs the pipeline, which only the process function links.
        stack.service = stack.service.clone().with_processor(std::sync::Arc::new(
            media_pipeline::Pipeline::new(media_pipeline::PipelineOptions::default()),
        ));
        // And the malware scan (the environment's clamd), which it also adds.
        if let Some(scanner) = media_aws::wire::scanner(&stack.config) {
            stack.service = stack.service.clone().with_scanner(scanner);
        }
        let bytes = corpus_file("Kodak_CX7530.jpg")?;
        let media = stack.upload("u", "image/jpeg", &bytes, true).await?;
        let key = media_core::domain::ObjectKey::from_raw(media.key.clone());
        stack.service.process_upload(&key).await?;
        let kept = stack.upload("u", "image/jpeg", &bytes, true).await?;
        stack
            .service
            .delete_media(&OwnerId::parse("u")?, &media.media_id)
            .await?;
        assert_eq!(
            stack.object_keys().await?.len(),
            1,
            "the deleted media serves nothing; the kept upload is still there"
        );

        let event = |text: String| -> Result<_, serde_json::Error> {
            Ok(LambdaEvent::new(
                serde_json::from_str(&text)?,
                Context::default(),
            ))
        };
        let summary = handle(
            &stack.service,
            event(sample_event("cleanup", "scheduled.json", SAMPLE_MEDIA_ID)?)?,
        )
        .await
        .map_err(|d| d.error_message)?;
        assert_eq!(
            (
                summary.purged,
                summary.expired,
                summary.objects_deleted,
                summary.failures
            ),
            (1, 0, 4, 0)
        );
        assert!(summary.bytes_reclaimed > bytes.len() as u64);
        assert_eq!(stack.object_keys().await?, vec![kept.key.clone()]);
        assert!(
            stack
                .service
                .get_media(
                    &OwnerId::parse("u")?,
                    &MediaId::parse(kept.media_id.as_str())?
                )
                .await
                .is_ok()
        );

        // A second run has nothing to do.
        let again = handle(
            &stack.service,
            event(sample_event("cleanup", "scheduled.json", SAMPLE_MEDIA_ID)?)?,
        )
        .await
        .map_err(|d| d.error_message)?;
        assert_eq!((again.purged, again.objects_deleted), (0, 0));
        Ok(())
    }

    #[tokio::test]
    async fn expired_uploads_are_removed_with_any_object_they_left()
    -> Result<(), Box<dyn std::error::Error>> {
        let stack = TestStack::new(&[
            ("PRESIGN_EXPIRY_SECONDS", "1"),
            ("PENDING_TTL_SECONDS", "1"),
        ])
        .await?;
        let bytes = corpus_file("Kodak_CX7530.jpg")?;
        // One upload arrived but its event was lost; one never arrived. Neither is processed.
        let arrived = stack.upload("u", "image/jpeg", &bytes, true).await?;
        stack.upload("u", "image/jpeg", &bytes, false).await?;
        assert_eq!(stack.object_keys().await?, vec![arrived.key.clone()]);
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

        let event = LambdaEvent::new(Value::Null, Context::default());
        let summary = handle(&stack.service, event)
            .await
            .map_err(|d| d.error_message)?;
        assert_eq!(
            (summary.expired, summary.purged, summary.failures),
            (2, 0, 0),
            "{summary:?}"
        );
        assert_eq!(
            (summary.objects_deleted, summary.bytes_reclaimed),
            (1, bytes.len() as u64)
        );
        assert_eq!(stack.object_keys().await?, Vec::<String>::new());
        let records = stack
            .clients
            .dynamodb
            .scan()
            .table_name(&stack.config.table)
            .filter_expression("attribute_exists(ownerId)")
            .send()
            .await?;
        assert_eq!(records.items().len(), 0);
        Ok(())
    }
}
