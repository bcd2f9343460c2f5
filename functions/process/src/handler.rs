//! S3 `ObjectCreated` on the upload prefix -> process each object; with
//! `MALWARE_SCANNER=guardduty`, GuardDuty's "Object Scan Result" event -> process the object as
//! its verdict says. Returns `Err` only for faults worth a retry; a rejected upload is a normal
//! outcome.

use lambda_runtime::{Diagnostic, LambdaEvent};
use media_core::MediaService;
use media_core::events;
use serde_json::{Value, json};

/// Handles one event (one or more records).
pub async fn handle(
    service: &MediaService,
    event: LambdaEvent<Value>,
) -> Result<Value, Diagnostic> {
    let retryable = |key: &dyn std::fmt::Display, e: media_core::process::ProcessError| {
        tracing::error!(key = %key, error = %e, cause = ?e, "processing failed; will be retried");
        Diagnostic {
            error_type: "Retryable".into(),
            error_message: e.to_string(),
        }
    };
    match crate::guardduty::verdict(&event.payload) {
        Ok(None) => {}
        Ok(Some(v)) if v.bucket != service.config().bucket => {
            tracing::warn!(bucket = %v.bucket, key = %v.key, "verdict for another bucket ignored");
            return Ok(json!({ "outcomes": [] }));
        }
        Ok(Some(v)) => {
            let outcome = service
                .process_scanned(&v.key, &v.etag, v.result)
                .await
                .map_err(|e| retryable(&v.key, e))?;
            return Ok(json!({ "outcomes": [outcome] }));
        }
        Err(e) => {
            // Not retried: the same event would fail the same way. The upload stays pending
            // (never ready unscanned) until cleanup expires it; the log line names the event.
            tracing::error!(error = %e, "a GuardDuty verdict this function cannot read");
            return Ok(json!({ "outcomes": [], "error": e.to_string() }));
        }
    }
    let mut outcomes = Vec::new();
    for record in events::object_created(&event.payload) {
        if record.bucket != service.config().bucket {
            tracing::warn!(bucket = %record.bucket, key = %record.key, "event for another bucket ignored");
            continue;
        }
        let outcome = service
            .process_upload(&record.key)
            .await
            .map_err(|e| retryable(&record.key, e))?;
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
        stack.service = crate::processing(stack.service.clone(), &stack.config);
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

    /// A ready-to-scan upload in a GuardDuty stack, and the sample verdict `file` for it.
    async fn verdict_for(
        stack: &TestStack,
        file: &str,
    ) -> Result<(String, Value), Box<dyn std::error::Error>> {
        let bytes = corpus_file("Kodak_CX7530.jpg")?;
        let media = stack
            .upload(SAMPLE_OWNER, "image/jpeg", &bytes, true)
            .await?;
        let head = stack
            .clients
            .s3
            .head_object()
            .bucket(&stack.config.bucket)
            .key(&media.key)
            .send()
            .await?;
        let etag = head
            .e_tag()
            .unwrap_or_default()
            .trim_matches('"')
            .to_owned();
        let date_folder = &media.key["uploads/".len().."uploads/2026/11/22".len()];
        let text = sample_event("process", file, media.media_id.as_str())?
            .replace("2026/11/22", date_folder)
            .replace("media-bucket", &stack.config.bucket)
            .replace(
                "\"eTag\": \"d41d8cd98f00b204e9800998ecf8427e\"",
                &format!("\"eTag\": \"{etag}\""),
            );
        Ok((media.media_id.to_string(), serde_json::from_str(&text)?))
    }

    /// The media as its owner's GET shows it.
    async fn view(stack: &TestStack, id: &str) -> Result<Value, Box<dyn std::error::Error>> {
        let owner = media_core::domain::OwnerId::parse(SAMPLE_OWNER)?;
        let id = media_core::domain::MediaId::parse(id)?;
        Ok(serde_json::to_value(
            stack.service.get_media(&owner, &id).await?,
        )?)
    }

    async fn handle_value(
        stack: &TestStack,
        event: Value,
    ) -> Result<Value, Box<dyn std::error::Error>> {
        handle(&stack.service, LambdaEvent::new(event, Context::default()))
            .await
            .map_err(|d| d.error_message.into())
    }

    #[tokio::test]
    async fn guardduty_verdicts_start_processing_and_none_becomes_ready_unscanned()
    -> Result<(), Box<dyn std::error::Error>> {
        let mut stack = TestStack::new(&[("MALWARE_SCANNER", "guardduty")]).await?;
        stack.service = crate::processing(stack.service.clone(), &stack.config);
        let status = |report: &Value| report["outcomes"][0]["outcome"].as_str().map(str::to_owned);

        // The S3 event does nothing in this mode: the verdict starts processing.
        let (id, verdict) = verdict_for(&stack, "guardduty-no-threats-found.json").await?;
        let key = verdict["detail"]["s3ObjectDetails"]["objectKey"].clone();
        let s3_event = serde_json::json!({"Records": [{"eventSource": "aws:s3",
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": stack.config.bucket}, "object": {"key": key}}}]});
        let report = handle_value(&stack, s3_event).await?;
        assert_eq!(status(&report).as_deref(), Some("awaitingScan"), "{report}");
        // A verdict on another version (the object was replaced since) changes nothing.
        let mut stale = verdict.clone();
        stale["detail"]["s3ObjectDetails"]["eTag"] = "0123456789abcdef0123456789abcdef".into();
        let report = handle_value(&stack, stale).await?;
        assert_eq!(status(&report).as_deref(), Some("missing"), "{report}");
        let report = handle_value(&stack, verdict).await?;
        assert_eq!(status(&report).as_deref(), Some("ready"), "{report}");
        assert_eq!(view(&stack, &id).await?["metadata"]["scan"], "clean");

        for (file, code) in [
            ("guardduty-threats-found.json", "malware"),
            ("guardduty-unsupported.json", "scan_unsupported"),
            ("guardduty-access-denied.json", "scan_failed"),
            ("guardduty-failed.json", "scan_failed"),
        ] {
            let (_, verdict) = verdict_for(&stack, file).await?;
            let report = handle_value(&stack, verdict).await?;
            assert_eq!(
                report["outcomes"][0]["outcome"], "rejected",
                "{file}: {report}"
            );
            assert_eq!(report["outcomes"][0]["code"], code, "{file}: {report}");
        }
        // Only the one ready upload's objects are left: every refused upload is deleted.
        let keys = stack.object_keys().await?;
        assert!(keys.iter().all(|k| k.contains(&id)), "{keys:?}");

        // An unknown status is logged, not retried, and nothing is processed.
        let (_, mut odd) = verdict_for(&stack, "guardduty-no-threats-found.json").await?;
        odd["detail"]["scanResultDetails"]["scanResultStatus"] = "MAYBE".into();
        let report = handle_value(&stack, odd).await?;
        assert_eq!(report["outcomes"], serde_json::json!([]), "{report}");

        // SCAN_UNSUPPORTED=allow lets an unscannable file through, marked as such.
        let mut stack = TestStack::new(&[
            ("MALWARE_SCANNER", "guardduty"),
            ("SCAN_UNSUPPORTED", "allow"),
        ])
        .await?;
        stack.service = crate::processing(stack.service.clone(), &stack.config);
        let (id, verdict) = verdict_for(&stack, "guardduty-unsupported.json").await?;
        let report = handle_value(&stack, verdict).await?;
        assert_eq!(status(&report).as_deref(), Some("ready"), "{report}");
        assert_eq!(view(&stack, &id).await?["metadata"]["scan"], "unsupported");
        Ok(())
    }
}
