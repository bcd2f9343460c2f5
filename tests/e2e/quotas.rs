//! Per-owner quotas and the presign rate limit, over HTTP: exact at the edge, under concurrency,
//! all or nothing for a batch, and given back exactly once.

use std::time::Duration;

use e2e::{TestApp, TestResult, corpus, spawn_app, token};
use serde_json::{Value, json};

fn file(size: u64) -> Value {
    json!({"filename": "a.jpg", "contentType": "image/jpeg", "size": size})
}

fn code(r: &e2e::Reply) -> &str {
    r.body["error"]["code"].as_str().unwrap_or_default()
}

async fn usage(t: &TestApp, user: &str) -> TestResult<Value> {
    let r = t
        .http
        .get(format!("{}/api/v1/usage", t.app.url()))
        .bearer_auth(token(user))
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    Ok(r.json().await?)
}

/// Waits (at most 16 s) until at least 15 s are left in the current clock minute, so that a test
/// of the per-minute window never straddles two windows.
async fn early_in_a_minute() {
    let second = time::OffsetDateTime::now_utc().second();
    if second > 44 {
        tokio::time::sleep(Duration::from_secs(u64::from(61 - second))).await;
    }
}

#[tokio::test]
async fn the_files_quota_is_exact_and_given_back_once() -> TestResult {
    let t = spawn_app(&[("QUOTA_FILES_PER_OWNER", "3")]).await?;
    let alice = token("alice");
    let mut ids = Vec::new();
    for _ in 0..3 {
        let r = t.presign(Some(&alice), &file(10)).await?;
        assert_eq!(r.status, 200, "{}", r.body);
        ids.push(r.body["mediaId"].as_str().ok_or("no id")?.to_owned());
    }
    let over = t.presign(Some(&alice), &file(10)).await?;
    assert_eq!((over.status, code(&over)), (403, "quota_exceeded"));
    let message = over.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("3 of 3 files"), "{message}");
    assert_eq!(
        usage(&t, "alice").await?,
        json!({"files": 3, "bytes": 30, "limits": {"files": 3, "bytes": 10737418240_u64}})
    );
    // Other owners have their own quota.
    assert_eq!(t.presign(Some(&token("bob")), &file(10)).await?.status, 200);

    // A delete gives the room back; a restore takes it again, and is refused when it is gone.
    assert_eq!(t.delete(&alice, &ids[0]).await?.status, 204);
    assert_eq!(usage(&t, "alice").await?["files"], 2);
    let refill = t.presign(Some(&alice), &file(10)).await?;
    assert_eq!(refill.status, 200);
    let no_room = t.restore(&alice, &ids[0]).await?;
    assert_eq!((no_room.status, code(&no_room)), (403, "quota_exceeded"));
    assert_eq!(usage(&t, "alice").await?["files"], 3);
    assert_eq!(t.delete(&alice, &ids[1]).await?.status, 204);
    assert_eq!(t.restore(&alice, &ids[0]).await?.status, 200);
    assert_eq!(usage(&t, "alice").await?["files"], 3);

    // A batch is all or nothing: one file of room, two asked, nothing created.
    assert_eq!(t.delete(&alice, &ids[2]).await?.status, 204);
    let before = t.record_count().await?;
    let batch = t
        .presign(Some(&alice), &json!({"files": [file(1), file(1)]}))
        .await?;
    assert_eq!((batch.status, code(&batch)), (403, "quota_exceeded"));
    assert_eq!(t.record_count().await?, before);
    let one = t
        .presign(Some(&alice), &json!({"files": [file(1)]}))
        .await?;
    assert_eq!(one.status, 200);
    assert_eq!(usage(&t, "alice").await?["files"], 3);
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_bytes_quota_can_be_filled_exactly_and_rejections_give_back() -> TestResult {
    let photo = corpus("Kodak_CX7530.jpg")?;
    let size = photo.len() as u64;
    let limit = size + 100;
    let t = spawn_app(&[("QUOTA_BYTES_PER_OWNER", &limit.to_string())]).await?;
    let alice = token("alice");
    // A file that is rejected gives its bytes back when it is.
    let bad = t
        .upload(&alice, "bad.jpg", "image/jpeg", &photo[..photo.len() / 2])
        .await?;
    let bad = bad["mediaId"].as_str().ok_or("no id")?.to_owned();
    assert_eq!(t.wait_processed(&alice, &bad).await?["status"], "rejected");
    assert_eq!(usage(&t, "alice").await?["bytes"], 0);

    let good = t.upload(&alice, "ok.jpg", "image/jpeg", &photo).await?;
    let good = good["mediaId"].as_str().ok_or("no id")?.to_owned();
    assert_eq!(t.wait_processed(&alice, &good).await?["status"], "ready");
    // Filling the quota exactly is allowed; one byte more is not.
    assert_eq!(t.presign(Some(&alice), &file(100)).await?.status, 200);
    let over = t.presign(Some(&alice), &file(1)).await?;
    assert_eq!((over.status, code(&over)), (403, "quota_exceeded"));
    let u = usage(&t, "alice").await?;
    assert_eq!(
        (u["files"].as_u64(), u["bytes"].as_u64()),
        (Some(2), Some(limit))
    );
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn twenty_concurrent_presigns_at_the_edge_of_the_quota_stay_exact() -> TestResult {
    let t = spawn_app(&[("QUOTA_FILES_PER_OWNER", "10")]).await?;
    let alice = token("alice");
    for _ in 0..5 {
        assert_eq!(t.presign(Some(&alice), &file(7)).await?.status, 200);
    }
    let url = format!("{}/api/v1/upload/presign", t.app.url());
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (http, url, alice) = (t.http.clone(), url.clone(), alice.clone());
            tokio::spawn(async move {
                let r = http
                    .post(&url)
                    .bearer_auth(&alice)
                    .json(&file(7))
                    .send()
                    .await;
                r.map(|r| r.status().as_u16()).unwrap_or(0)
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await?);
    }
    statuses.sort_unstable();
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 403).count();
    assert_eq!((ok, refused), (5, 15), "{statuses:?}");
    assert_eq!(usage(&t, "alice").await?["files"], 10);
    assert_eq!(usage(&t, "alice").await?["bytes"], 70);
    assert_eq!(t.record_count().await?, 10);
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn presigns_are_rate_limited_per_owner_before_the_quota() -> TestResult {
    let t = spawn_app(&[
        ("PRESIGN_RATE_PER_MINUTE", "2"),
        ("QUOTA_FILES_PER_OWNER", "1"),
    ])
    .await?;
    let alice = token("alice");
    early_in_a_minute().await;
    let first = t.presign(Some(&alice), &file(5)).await?;
    assert_eq!(first.status, 200);
    // Refused by the quota: these do not count against the rate.
    for _ in 0..2 {
        let r = t.presign(Some(&alice), &file(5)).await?;
        assert_eq!((r.status, code(&r)), (403, "quota_exceeded"));
    }
    let id = first.body["mediaId"].as_str().ok_or("no id")?;
    assert_eq!(t.delete(&alice, id).await?.status, 204);
    // A batch is one request.
    let second = t
        .presign(Some(&alice), &json!({"files": [file(5)]}))
        .await?;
    assert_eq!(second.status, 200, "{}", second.body);
    // The third request this minute is over the rate: 429 with Retry-After, checked before the
    // quota (which is full again).
    let resp = t
        .http
        .post(format!("{}/api/v1/upload/presign", t.app.url()))
        .bearer_auth(&alice)
        .json(&file(5))
        .send()
        .await?;
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or("no Retry-After")?;
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = resp.json().await?;
    assert_eq!(body["error"]["code"], "rate_limited");
    // Another owner is not limited by Alice's requests.
    assert_eq!(t.presign(Some(&token("bob")), &file(5)).await?.status, 200);
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn zero_turns_the_quotas_and_the_rate_limit_off() -> TestResult {
    let t = spawn_app(&[
        ("QUOTA_FILES_PER_OWNER", "0"),
        ("QUOTA_BYTES_PER_OWNER", "0"),
        ("PRESIGN_RATE_PER_MINUTE", "0"),
    ])
    .await?;
    let alice = token("alice");
    for _ in 0..3 {
        assert_eq!(t.presign(Some(&alice), &file(5)).await?.status, 200);
    }
    assert_eq!(
        usage(&t, "alice").await?,
        json!({"files": 3, "bytes": 15, "limits": {"files": 0, "bytes": 0}})
    );
    t.app.shutdown().await;
    Ok(())
}
