//! Exactly-once effects under retries: a fault proxy between the system and the emulator loses the
//! answer of each write the system makes (after the write took effect), fails calls on every
//! attempt, drops connections and delays calls; each test checks what the client was told, the
//! record and every object. Also: random faults over many uploads, and the billable S3 requests
//! of one upload's whole life.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use e2e::fault_proxy::{Fault, Matcher, Service, billable_class};
use e2e::{TestApp, TestResult, corpus, spawn_app_behind_proxy, token};
use serde_json::{Value, json};

const PHOTO: &str = "Kodak_CX7530.jpg";

fn dynamo(op: &'static str) -> Matcher {
    Matcher::op(Service::DynamoDb, op)
}

fn s3(op: &'static str) -> Matcher {
    Matcher::op(Service::S3, op)
}

/// The PutObject of the derivative whose key contains `name`.
fn derivative(name: &'static str) -> Matcher {
    s3("PutObject").key("derivatives/").key(name)
}

/// The objects a ready JPEG leaves: three thumbnails and the served original.
fn ready_keys(id: &str) -> BTreeSet<String> {
    ["small.webp", "medium.webp", "large.webp", "original.jpg"]
        .iter()
        .map(|name| format!("derivatives/{id}/{name}"))
        .collect()
}

async fn keys(t: &TestApp) -> TestResult<BTreeSet<String>> {
    Ok(t.object_keys().await?.into_iter().collect())
}

/// The stored record's status (read directly, past the proxy), or `None` when it is gone.
async fn stored_status(t: &TestApp, id: &str) -> TestResult<Option<String>> {
    Ok(t.stored_item(id)
        .await?
        .and_then(|i| i.get("status").and_then(|v| v.as_s().ok()).cloned()))
}

/// Uploads the photo as `user` and waits until it is processed; returns its id and final view.
async fn upload_photo(t: &TestApp, user: &str) -> TestResult<(String, Value)> {
    let bytes = corpus(PHOTO)?;
    let presigned = t
        .upload(&token(user), "p.jpg", "image/jpeg", &bytes)
        .await?;
    let id = presigned["mediaId"].as_str().ok_or("no id")?.to_owned();
    let view = t.wait_processed(&token(user), &id).await?;
    Ok((id, view))
}

/// Waits (at most 15 s) until the bucket holds exactly `want`.
async fn wait_for_objects(t: &TestApp, want: &BTreeSet<String>) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(15);
    for _ in 0..150 {
        if keys(t).await? == *want || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(keys(t).await?, *want);
    Ok(())
}

#[tokio::test]
async fn a_lost_create_answer_still_presigns_the_record_it_made() -> TestResult {
    let (t, proxy) = spawn_app_behind_proxy(&[]).await?;
    // The records and their quota reservation are one transaction.
    proxy.once(dynamo("TransactWriteItems"), 0, Fault::LoseAnswer);
    let (id, view) = upload_photo(&t, "alice").await?;
    assert!(proxy.rules_spent(), "the rule met the create");
    assert_eq!(view["status"], "ready");
    assert_eq!(t.record_count().await?, 1);
    let size = i64::try_from(corpus(PHOTO)?.len())?;
    assert_eq!(t.stored_usage("alice").await?, (1, size), "reserved once");
    wait_for_objects(&t, &ready_keys(&id)).await?;

    // Failing on every attempt: a clear 500, and nothing stored.
    proxy.times(dynamo("TransactWriteItems"), 3, Fault::Fail);
    let r = t
        .presign(
            Some(&token("alice")),
            &json!({"filename": "a.jpg", "contentType": "image/jpeg", "size": 10}),
        )
        .await?;
    assert_eq!(r.status, 500);
    assert_eq!(r.body["error"]["code"], "internal");
    assert_eq!(t.record_count().await?, 1);
    assert_eq!(t.stored_usage("alice").await?, (1, size));
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_lost_mark_ready_answer_finishes_the_success_path() -> TestResult {
    let (t, proxy) = spawn_app_behind_proxy(&[]).await?;
    proxy.once(dynamo("UpdateItem").body("servedKey"), 0, Fault::LoseAnswer);
    let (id, view) = upload_photo(&t, "alice").await?;
    assert!(proxy.rules_spent());
    assert_eq!(view["status"], "ready");
    assert_eq!(view["thumbnails"].as_object().map(|o| o.len()), Some(3));
    // The upload is deleted once processed, as for any ready media.
    wait_for_objects(&t, &ready_keys(&id)).await?;

    // Every attempt of one delivery answered as a failure (the first one applied): the event
    // fails, and its redelivery finds the record ready and finishes the job.
    proxy.times(dynamo("UpdateItem").body("servedKey"), 3, Fault::LoseAnswer);
    let (id, view) = upload_photo(&t, "bob").await?;
    // The record reads ready as soon as the first attempt lands; the run goes on failing.
    assert_eq!(view["status"], "ready");
    let mut want = ready_keys(&id);
    want.extend(keys(&t).await?.into_iter().filter(|k| !k.contains(&id)));
    wait_for_objects(&t, &want).await?;
    assert!(proxy.rules_spent());
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_lost_mark_rejected_answer_still_rejects_and_deletes_the_upload() -> TestResult {
    let (t, proxy) = spawn_app_behind_proxy(&[]).await?;
    proxy.once(
        dynamo("TransactWriteItems").body("rejection = :r"),
        0,
        Fault::LoseAnswer,
    );
    let text = b"this is not a photo at all, only text".repeat(10);
    let presigned = t
        .upload(&token("alice"), "t.jpg", "image/jpeg", &text)
        .await?;
    let id = presigned["mediaId"].as_str().ok_or("no id")?;
    let view = t.wait_processed(&token("alice"), id).await?;
    assert!(proxy.rules_spent());
    assert_eq!(view["status"], "rejected");
    assert_eq!(view["rejection"]["code"], "not_an_image", "{view}");
    wait_for_objects(&t, &BTreeSet::new()).await?;
    assert_eq!(t.stored_usage("alice").await?, (0, 0), "given back once");
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_lost_soft_delete_answer_is_still_a_204_and_a_repeat_too() -> TestResult {
    let (t, proxy) = spawn_app_behind_proxy(&[]).await?;
    let (id, _) = upload_photo(&t, "alice").await?;
    proxy.once(
        dynamo("TransactWriteItems").body("deletedAt"),
        0,
        Fault::LoseAnswer,
    );
    assert_eq!(t.delete(&token("alice"), &id).await?.status, 204);
    assert!(proxy.rules_spent());
    assert_eq!(t.get(&token("alice"), &id).await?.status, 404);
    assert_eq!(t.delete(&token("alice"), &id).await?.status, 204, "again");
    let other = t.delete(&token("mallory"), &id).await?;
    assert_eq!(other.status, 404, "someone else's: {:?}", other.body);
    assert_eq!(stored_status(&t, &id).await?.as_deref(), Some("deleted"));
    assert_eq!(t.stored_usage("alice").await?, (0, 0), "given back once");
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn lost_expire_and_remove_answers_still_count_and_leave_nothing() -> TestResult {
    let (t, proxy) = spawn_app_behind_proxy(&[
        ("PRESIGN_EXPIRY_SECONDS", "1"),
        ("PENDING_TTL_SECONDS", "1"),
        ("CLEANUP_GRACE_PERIOD_HOURS", "0"),
    ])
    .await?;
    let alice = token("alice");
    // One upload that never arrives, one that is deleted.
    let never = t
        .presign(
            Some(&alice),
            &json!({"filename": "a.jpg", "contentType": "image/jpeg", "size": 10}),
        )
        .await?;
    assert_eq!(never.status, 200);
    let (id, _) = upload_photo(&t, "alice").await?;
    assert_eq!(t.delete(&alice, &id).await?.status, 204);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    proxy.once(
        dynamo("TransactWriteItems").body(":expired"),
        0,
        Fault::LoseAnswer,
    );
    proxy.once(dynamo("DeleteItem"), 0, Fault::LoseAnswer);
    proxy.once(dynamo("DeleteItem"), 0, Fault::LoseAnswerDrop);
    let summary = t.app.service.run_cleanup().await?;
    assert!(proxy.rules_spent());
    assert_eq!(
        (summary.expired, summary.purged, summary.failures),
        (1, 1, 0),
        "{summary:?}"
    );
    t.assert_nothing_stored().await?;
    assert_eq!(
        t.stored_usage("alice").await?,
        (0, 0),
        "each given back once"
    );
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn each_s3_write_and_delete_of_process_can_lose_its_answer() -> TestResult {
    let (t, proxy) = spawn_app_behind_proxy(&[]).await?;
    let mut want = BTreeSet::new();
    let cases: [(Matcher, Fault); 7] = [
        (derivative("/small."), Fault::LoseAnswer),
        (derivative("/medium."), Fault::LoseAnswerDrop),
        (derivative("/large."), Fault::LoseAnswer),
        (derivative("/original."), Fault::LoseAnswer),
        (s3("DeleteObject").key("uploads/"), Fault::LoseAnswer),
        (s3("GetObject").key("uploads/"), Fault::Drop),
        (dynamo("GetItem"), Fault::Delay(Duration::from_millis(1500))),
    ];
    for (i, (matcher, fault)) in cases.into_iter().enumerate() {
        proxy.once(matcher, 0, fault);
        let (id, view) = upload_photo(&t, "alice").await?;
        assert!(proxy.rules_spent(), "case {i}");
        assert_eq!(view["status"], "ready", "case {i}");
        want.extend(ready_keys(&id));
        wait_for_objects(&t, &want).await?;
    }
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn each_call_of_a_videos_processing_can_lose_its_answer() -> TestResult {
    let (t, proxy) = spawn_app_behind_proxy(&[]).await?;
    let movie = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("av/mp4parse-white.mp4"),
    )?;
    let mut want = BTreeSet::new();
    let cases: [(Matcher, Fault); 6] = [
        (s3("HeadObject").key("uploads/"), Fault::LoseAnswerDrop),
        (s3("GetObject").key("uploads/"), Fault::Drop),
        (s3("GetObject").key("uploads/"), Fault::LoseAnswer),
        (s3("CopyObject"), Fault::LoseAnswer),
        (s3("CopyObject"), Fault::Fail),
        (dynamo("UpdateItem").body("servedKey"), Fault::LoseAnswer),
    ];
    for (i, (matcher, fault)) in cases.into_iter().enumerate() {
        proxy.once(matcher, 0, fault);
        let presigned = t
            .upload(&token("alice"), "white.mp4", "video/mp4", &movie)
            .await?;
        let id = presigned["mediaId"].as_str().ok_or("no id")?.to_owned();
        let view = t.wait_processed(&token("alice"), &id).await?;
        assert!(proxy.rules_spent(), "case {i}");
        assert_eq!(view["status"], "ready", "case {i}: {view}");
        assert_eq!(view["metadata"]["durationSeconds"], 10.0, "case {i}");
        want.insert(format!("derivatives/{id}/original.mp4"));
        wait_for_objects(&t, &want).await?;
    }
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn each_s3_delete_of_cleanup_can_lose_its_answer() -> TestResult {
    let (t, proxy) = spawn_app_behind_proxy(&[("CLEANUP_GRACE_PERIOD_HOURS", "0")]).await?;
    let alice = token("alice");
    let (first, _) = upload_photo(&t, "alice").await?;
    let (second, _) = upload_photo(&t, "alice").await?;
    for id in [&first, &second] {
        assert_eq!(t.delete(&alice, id).await?.status, 204);
    }
    for (n, fault) in [Fault::LoseAnswer, Fault::LoseAnswerDrop, Fault::Fail]
        .into_iter()
        .enumerate()
    {
        proxy.once(s3("DeleteObject").key("derivatives/"), n * 2, fault);
    }
    let summary = t.app.service.run_cleanup().await?;
    assert!(proxy.rules_spent());
    assert_eq!((summary.purged, summary.failures), (2, 0), "{summary:?}");
    assert_eq!(summary.objects_deleted, 8, "4 served objects each");
    t.assert_nothing_stored().await?;
    t.app.shutdown().await;
    Ok(())
}

/// Cleanup racing a processing run: the media is deleted and purged while the run is held up
/// (before its last derivative lands, or before it marks the record ready). Whichever of the two
/// comes last deletes what the run wrote.
#[tokio::test]
async fn cleanup_racing_a_processing_run_leaves_no_derivative_behind() -> TestResult {
    let (t, proxy) = spawn_app_behind_proxy(&[("CLEANUP_GRACE_PERIOD_HOURS", "0")]).await?;
    let alice = token("alice");
    let holds = [
        derivative("/large."),
        dynamo("UpdateItem").body("servedKey"),
    ];
    for (i, hold) in holds.into_iter().enumerate() {
        proxy.once(hold, 0, Fault::Delay(Duration::from_secs(3)));
        let bytes = corpus(PHOTO)?;
        let presigned = t.upload(&alice, "p.jpg", "image/jpeg", &bytes).await?;
        let id = presigned["mediaId"].as_str().ok_or("no id")?;
        // Wait (bounded) until the run is held up at the delayed call.
        let deadline = Instant::now() + Duration::from_secs(15);
        while proxy
            .calls()
            .iter()
            .all(|c| !matches!(c.fault, Some(Fault::Delay(_))))
        {
            assert!(
                Instant::now() < deadline,
                "case {i}: the run never got there"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(t.delete(&alice, id).await?.status, 204);
        let summary = t.app.service.run_cleanup().await?;
        assert_eq!((summary.purged, summary.failures), (1, 0), "case {i}");
        // The run resumes, finds its record gone, and deletes what it wrote.
        wait_for_objects(&t, &BTreeSet::new()).await?;
        assert_eq!(t.record_count().await?, 0, "case {i}");
        proxy.clear_calls();
    }
    t.app.shutdown().await;
    Ok(())
}

/// Sends `req` until it answers below 500 (at most 5 times): what a client does with a 5xx.
async fn retry<F, Fut>(mut send: F) -> TestResult<e2e::Reply>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = TestResult<e2e::Reply>>,
{
    let mut last = None;
    for _ in 0..5 {
        match send().await {
            Ok(r) if r.status < 500 => return Ok(r),
            Ok(r) => last = Some(format!("{}: {}", r.status, r.body)),
            Err(e) => last = Some(e.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("still failing after 5 tries: {last:?}").into())
}

#[tokio::test]
async fn thirty_uploads_under_ten_percent_random_faults_all_end_right() -> TestResult {
    let (t, proxy) = spawn_app_behind_proxy(&[
        ("PRESIGN_EXPIRY_SECONDS", "1"),
        ("PENDING_TTL_SECONDS", "1"),
        ("CLEANUP_GRACE_PERIOD_HOURS", "0"),
    ])
    .await?;
    let alice = token("alice");
    let bytes = corpus(PHOTO)?;
    let faults = [
        Fault::Fail,
        Fault::LoseAnswer,
        Fault::Drop,
        Fault::LoseAnswerDrop,
    ];
    proxy.random(
        &[Service::S3, Service::DynamoDb, Service::Sqs],
        100,
        &faults,
        0x5eed,
    );

    let mut ids = Vec::new();
    let mut refused_presigns = 0;
    for _ in 0..30 {
        let body = json!({"filename": "p.jpg", "contentType": "image/jpeg", "size": bytes.len()});
        let presigned = match retry(|| t.presign(Some(&alice), &body)).await {
            Ok(r) => r,
            Err(_) => {
                refused_presigns += 1;
                continue;
            }
        };
        assert_eq!(presigned.status, 200, "{:?}", presigned.body);
        let url = presigned.body["url"].as_str().ok_or("no url")?;
        let headers = presigned.body["headers"].as_object().ok_or("no headers")?;
        let mut stored = false;
        for _ in 0..5 {
            let mut put = t.http.put(url).body(bytes.clone());
            for (name, value) in headers {
                put = put.header(name, value.as_str().unwrap_or_default());
            }
            if put.send().await.is_ok_and(|r| r.status().is_success()) {
                stored = true;
                break;
            }
        }
        assert!(stored, "the PUT failed 5 times");
        ids.push(
            presigned.body["mediaId"]
                .as_str()
                .ok_or("no id")?
                .to_owned(),
        );
    }

    // Every acknowledged upload ends ready (polling through the faults, bounded).
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut want = BTreeSet::new();
    for id in &ids {
        let mut status = Value::Null;
        while Instant::now() < deadline {
            if let Ok(r) = t.get(&alice, id).await
                && r.status == 200
                && r.body["status"] != "pending"
            {
                status = r.body["status"].clone();
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(status, "ready", "{id}");
        want.extend(ready_keys(id));
    }
    let seen = proxy.calls();
    let injected = seen.iter().filter(|c| c.fault.is_some()).count();
    eprintln!(
        "random faults: {injected} of {} calls, {refused_presigns} presigns refused after 5 tries",
        seen.len()
    );
    assert!(injected >= 20, "the faults were injected: {injected}");
    // Nothing but the served objects, and no upload left in uploads/ (a redelivered or
    // re-PUT event may still be on its way: wait, bounded).
    wait_for_objects(&t, &want).await?;

    // Delete everything through the faults, then clean up until nothing is left.
    for id in &ids {
        let r = retry(|| t.delete(&alice, id)).await?;
        assert_eq!(r.status, 204, "{id}: {:?}", r.body);
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..10 {
        if let Ok(s) = t.app.service.run_cleanup().await
            && s.failures == 0
            && t.record_count().await? == 0
        {
            break;
        }
    }
    proxy.heal();
    t.app.service.run_cleanup().await?;
    t.assert_nothing_stored().await?;
    // Every reservation (of ready media, and of presigns whose answers were lost) was given
    // back exactly once.
    assert_eq!(t.stored_usage("alice").await?, (0, 0));
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn one_uploads_whole_life_costs_at_most_five_billable_s3_requests() -> TestResult {
    let (t, proxy) = spawn_app_behind_proxy(&[("CLEANUP_GRACE_PERIOD_HOURS", "0")]).await?;
    let alice = token("alice");
    let (id, view) = upload_photo(&t, "alice").await?;
    assert_eq!(view["status"], "ready");
    wait_for_objects(&t, &ready_keys(&id)).await?;
    assert_eq!(t.get(&alice, &id).await?.status, 200);
    assert_eq!(t.delete(&alice, &id).await?.status, 204);
    let summary = t.app.service.run_cleanup().await?;
    assert_eq!(summary.purged, 1);
    t.assert_nothing_stored().await?;

    let mut by_op: BTreeMap<(&'static str, String), usize> = BTreeMap::new();
    for call in proxy.calls().iter().filter(|c| c.service == Service::S3) {
        let class = billable_class(&call.operation).unwrap_or("other");
        *by_op.entry((class, call.operation.clone())).or_default() += 1;
    }
    eprintln!("S3 requests for one image upload, processing, GET, delete and purge:");
    for ((class, op), n) in &by_op {
        eprintln!("  {class:<20} {op:<16} {n}");
    }
    let billable: usize = by_op
        .iter()
        .filter(|((class, _), _)| *class == "PUT/COPY/POST/LIST")
        .map(|(_, n)| n)
        .sum();
    eprintln!("  billable PUT/COPY/POST/LIST requests: {billable}");
    assert!(billable <= 5, "{billable} billable requests: {by_op:?}");
    assert!(
        !by_op.keys().any(|(_, op)| op.starts_with("List")),
        "no listing: {by_op:?}"
    );
    t.app.shutdown().await;
    Ok(())
}

/// The local runner hands S3 events to the process handler several at a time, as Lambda runs one
/// invocation per event: while one run is held up, another upload is processed to the end.
#[tokio::test]
async fn the_local_runner_processes_events_concurrently() -> TestResult {
    let (t, proxy) = spawn_app_behind_proxy(&[]).await?;
    let alice = token("alice");
    let bytes = corpus(PHOTO)?;
    proxy.once(
        s3("GetObject").key("uploads/"),
        0,
        Fault::Delay(Duration::from_secs(4)),
    );
    let held = t.upload(&alice, "held.jpg", "image/jpeg", &bytes).await?;
    let held = held["mediaId"].as_str().ok_or("no id")?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while !proxy.rules_spent() {
        assert!(Instant::now() < deadline, "the first run never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let (_, view) = upload_photo(&t, "alice").await?;
    assert_eq!(view["status"], "ready");
    assert_eq!(
        t.get(&alice, held).await?.body["status"],
        "pending",
        "the first run is still held up ({:?} later)",
        started.elapsed()
    );
    assert_eq!(t.wait_processed(&alice, held).await?["status"], "ready");
    t.app.shutdown().await;
    Ok(())
}

/// Records queued before the cleanup lists were sharded (`gcQueue` = `pending` or `purge`) are
/// still found: cleanup reads every shard and the unsharded values.
#[tokio::test]
async fn cleanup_still_finds_records_queued_before_sharding() -> TestResult {
    use aws_sdk_dynamodb::types::AttributeValue::S;
    let (t, _proxy) = spawn_app_behind_proxy(&[("CLEANUP_GRACE_PERIOD_HOURS", "0")]).await?;
    let table = t.app.service.config().table.clone();
    for (id, status, queue) in [
        ("019aa7c1e2f37b8c9d0e1f2a3b4c5d01", "pending", "pending"),
        ("019aa7c1e2f37b8c9d0e1f2a3b4c5d02", "deleted", "purge"),
    ] {
        let key = format!("uploads/2026/01/01/{id}/original.jpg");
        let mut put = t
            .direct
            .dynamodb
            .put_item()
            .table_name(&table)
            .item("id", S(id.into()))
            .item("ownerId", S("alice".into()))
            .item("status", S(status.into()))
            .item("filename", S("old.jpg".into()))
            .item("contentType", S("image/jpeg".into()))
            .item(
                "size",
                aws_sdk_dynamodb::types::AttributeValue::N("3".into()),
            )
            .item("objectKey", S(key.clone()))
            .item("createdAt", S("2026-01-01T00:00:00.000Z".into()))
            .item("updatedAt", S("2026-01-01T00:00:00.000Z".into()))
            .item("gcQueue", S(queue.into()))
            .item("gcDue", S("2026-01-01T01:00:00.000Z".into()));
        if status == "pending" {
            put = put.item("expiresAt", S("2026-01-01T01:00:00.000Z".into()));
        }
        put.send().await?;
        if status == "pending" {
            continue; // its upload never arrived (an upload would be processed at once)
        }
        t.direct
            .s3
            .put_object()
            .bucket(&t.app.service.config().bucket)
            .key(&key)
            .body(b"old".to_vec().into())
            .send()
            .await?;
    }
    let summary = t.app.service.run_cleanup().await?;
    assert_eq!(
        (summary.expired, summary.purged, summary.failures),
        (1, 1, 0),
        "{summary:?}"
    );
    assert_eq!(
        summary.bytes_reclaimed, 3,
        "the one upload that arrived (3 bytes), found by HEAD"
    );
    t.assert_nothing_stored().await?;
    t.app.shutdown().await;
    Ok(())
}
