//! S3 `ObjectCreated` on the upload prefix -> process each object. Returns `Err` only for faults
//! worth a retry; a rejected upload is a normal outcome.

use lambda_runtime::{Diagnostic, LambdaEvent};
use media_core::MediaService;
use media_core::events;
use serde_json::{Value, json};

/// Handles one event (one or more records).
pub async fn handle(
    service: &MediaService,
    event: LambdaEvent<Value>,
) -> Result<Value, Diagnostic> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_runtime::Context;
    use media_provision::testkit::{SAMPLE_OWNER, TestStack, corpus_file, sample_event};

    /// A stack whose service has the pipeline, as this function wires it.
    async fn stack() -> Result<TestStack, Box<dyn std::error::Error>> {
        let mut stack = TestStack::new(&[]).await?;
        stack.service = stack
            .service
            .clone()
            .with_processor(crate::processor(&stack.config));
        Ok(stack)
    }

    async fn run(
        stack: &TestStack,
        file: &str,
        id: &str,
    ) -> Result<Value, Box<dyn std::error::Error>> {
        let text = sample_event("process", file, id)?.replace("media-bucket", &stack.config.bucket);
        let event = LambdaEvent::new(serde_json::from_str(&text)?, Context::default());
        handle(&stack.service, event)
            .await
            .map_err(|d| d.error_message.into())
    }

    #[tokio::test]
    async fn real_s3_and_emulator_events_both_process_the_upload()
    -> Result<(), Box<dyn std::error::Error>> {
        let stack = stack().await?;
        let bytes = corpus_file("Kodak_CX7530.jpg")?;
        for file in ["s3-object-created.json", "emulator-object-created.json"] {
            let media = stack
                .upload(SAMPLE_OWNER, "image/jpeg", &bytes, true)
                .await?;
            // The sample keys carry a date folder; point them at this upload's real key.
            let date_folder = &media.key["uploads/".len().."uploads/2026/11/22".len()];
            let text = sample_event("process", file, media.media_id.as_str())?;
            let text = text
                .replace("2026/11/22", date_folder)
                .replace("2026%2F11%2F22", &date_folder.replace('/', "%2F"));
            let text = text.replace("media-bucket", &stack.config.bucket);
            let event = LambdaEvent::new(serde_json::from_str(&text)?, Context::default());
            let report = handle(&stack.service, event)
                .await
                .map_err(|d| d.error_message)?;
            assert_eq!(
                report["outcomes"][0]["outcome"], "ready",
                "{file}: {report}"
            );
            // A repeated event changes nothing.
            let event = LambdaEvent::new(serde_json::from_str(&text)?, Context::default());
            let report = handle(&stack.service, event)
                .await
                .map_err(|d| d.error_message)?;
            assert_eq!(
                report["outcomes"][0]["outcome"], "alreadyProcessed",
                "{file}: {report}"
            );
        }
        Ok(())
    }

    #[tokio::test]
    async fn events_for_unknown_keys_and_other_buckets_are_harmless()
    -> Result<(), Box<dyn std::error::Error>> {
        let stack = stack().await?;
        // An upload no record owns (its record expired or was purged) is deleted.
        let orphan = "019aa7c1e2f37b8c9d0e1f2a3b4c5d6f";
        let key = format!("uploads/2026/11/22/{orphan}/original.jpg");
        let bucket = &stack.config.bucket;
        let body = b"x".to_vec().into();
        stack
            .clients
            .s3
            .put_object()
            .bucket(bucket)
            .key(&key)
            .body(body)
            .send()
            .await?;
        let report = run(&stack, "s3-object-created.json", orphan).await?;
        assert_eq!(report["outcomes"][0]["outcome"], "orphan");
        assert_eq!(stack.object_keys().await?, Vec::<String>::new());
        let text = sample_event(
            "process",
            "s3-object-created.json",
            "019aa7c1e2f37b8c9d0e1f2a3b4c5d6f",
        )?;
        let event = LambdaEvent::new(serde_json::from_str(&text)?, Context::default());
        let report = handle(&stack.service, event)
            .await
            .map_err(|d| d.error_message)?;
        assert_eq!(report["outcomes"], serde_json::json!([]), "another bucket");
        Ok(())
    }
}
