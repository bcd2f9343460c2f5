//! Events for the app's backend, end to end on the emulator: an EventBridge rule on the bus the
//! system publishes to, targeting an SQS queue, receives one event per state change. Each test
//! has its own bus: tests run in parallel on one emulator.

use std::time::{Duration, Instant};

use e2e::fault_proxy::{Fault, Matcher, Service};
use e2e::{TestApp, TestResult, corpus, spawn_app, spawn_app_behind_proxy, token};
use media_provision::testkit::unique_name;
use serde_json::Value;

/// A queue that receives every event of `source` `media-upload` on the app's bus.
async fn subscribe(t: &TestApp) -> TestResult<String> {
    let bus = t
        .app
        .service
        .config()
        .event_bus_name
        .clone()
        .unwrap_or_else(|| "default".to_owned());
    let sqs = aws_sdk_sqs::Client::new(&t.direct.sdk_config);
    let name = unique_name("events");
    let url = sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await?
        .queue_url()
        .ok_or("no queue url")?
        .to_owned();
    let arn = format!("arn:aws:sqs:us-east-1:123456789012:{name}");
    let eb = t.direct.eventbridge();
    eb.put_rule()
        .name(&name)
        .event_bus_name(&bus)
        .event_pattern(r#"{"source": ["media-upload"]}"#)
        .send()
        .await?;
    eb.put_targets()
        .rule(&name)
        .event_bus_name(&bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(arn)
                .build()?,
        )
        .send()
        .await?;
    Ok(url)
}

/// Receives events from `queue` until `want` have arrived (at most 15 s); the events in order.
async fn receive(t: &TestApp, queue: &str, want: usize) -> TestResult<Vec<Value>> {
    let sqs = aws_sdk_sqs::Client::new(&t.direct.sdk_config);
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut events = Vec::new();
    for _ in 0..150 {
        if events.len() >= want || Instant::now() > deadline {
            break;
        }
        let out = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .send()
            .await?;
        for m in out.messages() {
            events.push(serde_json::from_str::<Value>(m.body().unwrap_or("{}"))?);
            if let Some(handle) = m.receipt_handle() {
                sqs.delete_message()
                    .queue_url(queue)
                    .receipt_handle(handle)
                    .send()
                    .await?;
            }
        }
        if out.messages().is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(events)
}

fn summary(events: &[Value]) -> Vec<(String, String, u64)> {
    let mut out: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e["detail-type"].as_str().unwrap_or_default().to_owned(),
                e["detail"]["id"].as_str().unwrap_or_default().to_owned(),
                e["detail"]["version"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn every_state_change_is_announced_once_on_the_named_bus() -> TestResult {
    let bus = unique_name("bus");
    let t = spawn_app(&[
        ("EVENT_BUS_NAME", &bus),
        ("CLEANUP_GRACE_PERIOD_HOURS", "0"),
    ])
    .await?;
    let queue = subscribe(&t).await?;
    let alice = token("alice");

    let (ready, _) = t.ready_photo("alice").await?;
    let photo = corpus("Kodak_CX7530.jpg")?;
    let bad = t
        .upload(&alice, "bad.jpg", "image/jpeg", &photo[..photo.len() / 3])
        .await?;
    let bad = bad["mediaId"].as_str().ok_or("no id")?.to_owned();
    assert_eq!(t.wait_processed(&alice, &bad).await?["status"], "rejected");
    assert_eq!(t.delete(&alice, &ready).await?.status, 204);
    assert_eq!(t.restore(&alice, &ready).await?.status, 200);
    assert_eq!(t.delete(&alice, &ready).await?.status, 204);
    let purged = t.app.service.run_cleanup().await?;
    assert_eq!(purged.purged, 1, "{purged:?}");

    let events = receive(&t, &queue, 6).await?;
    let mut want = vec![
        ("Media Ready".to_owned(), ready.clone(), 2),
        ("Media Rejected".to_owned(), bad.clone(), 2),
        ("Media Deleted".to_owned(), ready.clone(), 3),
        ("Media Restored".to_owned(), ready.clone(), 4),
        ("Media Deleted".to_owned(), ready.clone(), 5),
        ("Media Purged".to_owned(), ready.clone(), 5),
    ];
    want.sort();
    assert_eq!(summary(&events), want);
    for e in &events {
        assert_eq!(e["source"], "media-upload");
        assert_eq!(e["detail"]["ownerId"], "alice");
        // The media without URLs: apps ask the API for those.
        let text = e["detail"].to_string();
        assert!(!text.contains("http"), "{text}");
    }
    let ready_event = events
        .iter()
        .find(|e| e["detail-type"] == "Media Ready")
        .ok_or("no ready event")?;
    assert_eq!(ready_event["detail"]["status"], "ready");
    let view = t.get(&alice, &ready).await?;
    assert_eq!(view.status, 404, "purged");
    assert!(ready_event["detail"]["metadata"]["width"].as_u64() > Some(0));
    assert!(ready_event["detail"]["thumbnails"]["small"].is_array());
    let rejected = events
        .iter()
        .find(|e| e["detail-type"] == "Media Rejected")
        .ok_or("no rejected event")?;
    assert_eq!(rejected["detail"]["rejection"]["code"], "corrupt");
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_failed_publish_fails_the_call_and_its_retry_publishes_once() -> TestResult {
    let bus = unique_name("bus");
    let (t, proxy) = spawn_app_behind_proxy(&[("EVENT_BUS_NAME", &bus)]).await?;
    let queue = subscribe(&t).await?;
    let alice = token("alice");
    let (id, _) = t.ready_photo("alice").await?;
    assert_eq!(receive(&t, &queue, 1).await?.len(), 1, "the ready event");

    // The delete is stored, its event is not: the call fails, and the retry announces it.
    proxy.times(
        Matcher::op(Service::EventBridge, "PutEvents"),
        3,
        Fault::Fail,
    );
    let first = t.delete(&alice, &id).await?;
    assert_eq!(first.status, 500, "{:?}", first.body);
    assert!(proxy.rules_spent(), "every attempt of the SDK failed");
    let retry = t.delete(&alice, &id).await?;
    assert_eq!(retry.status, 204);
    let events = receive(&t, &queue, 1).await?;
    assert_eq!(
        summary(&events),
        [("Media Deleted".to_owned(), id.clone(), 3)]
    );
    t.app.shutdown().await;
    Ok(())
}
