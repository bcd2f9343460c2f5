//! Deleting really stops serving, and a restore within the grace period brings media back as it
//! was: over HTTP, with the presigned URLs handed out before the delete.

use e2e::fault_proxy::{Fault, Matcher, Service};
use e2e::{TestApp, TestResult, corpus, spawn_app, spawn_app_behind_proxy, token};
use serde_json::{Value, json};

/// Every URL a ready media's answer hands out.
fn urls(view: &Value) -> Vec<String> {
    let mut urls: Vec<String> = view["thumbnails"]
        .as_object()
        .map(|o| {
            o.values()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    urls.extend(view["originalUrl"].as_str().map(str::to_owned));
    urls
}

async fn statuses(t: &TestApp, urls: &[String]) -> TestResult<Vec<u16>> {
    let mut out = Vec::new();
    for u in urls {
        out.push(t.download(u).await?.0);
    }
    Ok(out)
}

async fn restore(t: &TestApp, user: &str, id: &str) -> TestResult<e2e::Reply> {
    t.restore(&token(user), id).await
}

#[tokio::test]
async fn a_delete_stops_every_url_and_a_restore_serves_them_again() -> TestResult {
    let t = spawn_app(&[]).await?;
    let alice = token("alice");
    let (id, view) = t.ready_photo("alice").await?;
    let handed_out = urls(&view);
    assert_eq!(handed_out.len(), 4);
    assert_eq!(statuses(&t, &handed_out).await?, [200; 4]);
    assert_eq!(view["version"], 2);

    // After the delete answers, no URL handed out before serves the bytes.
    assert_eq!(t.delete(&alice, &id).await?.status, 204);
    for status in statuses(&t, &handed_out).await? {
        assert!(status == 403 || status == 404, "{status}");
    }
    assert_eq!(t.get(&alice, &id).await?.status, 404);

    // Someone else cannot restore it; its owner can, and gets it back as it was.
    assert_eq!(restore(&t, "bob", &id).await?.status, 404);
    let back = restore(&t, "alice", &id).await?;
    assert_eq!(back.status, 200, "{}", back.body);
    assert_eq!(back.body["status"], "ready");
    assert_eq!(back.body["version"], 4, "ready 2, deleted 3, restored 4");
    assert_eq!(back.etag.as_deref(), Some("\"4\""));
    assert_eq!(back.body["metadata"], view["metadata"]);
    // The old URLs serve again, byte for byte.
    for url in &handed_out {
        let (status, _) = t.download(url).await?;
        assert_eq!(status, 200, "{url}");
    }
    let listed = t.list_all(&alice, "").await?;
    assert_eq!(listed, [id.as_str()]);

    // Not deleted: 409; unknown: 404.
    let again = restore(&t, "alice", &id).await?;
    assert_eq!(
        (again.status, again.body["error"]["code"].as_str()),
        (409, Some("not_deleted"))
    );
    assert_eq!(
        restore(&t, "alice", "0000000000000000000000000000000a")
            .await?
            .status,
        404
    );
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn pending_and_rejected_media_come_back_as_they_were() -> TestResult {
    let t = spawn_app(&[]).await?;
    let alice = token("alice");
    let pending = t
        .presign(
            Some(&alice),
            &json!({"filename": "later.jpg", "contentType": "image/jpeg", "size": 10, "alt": "kept"}),
        )
        .await?;
    let pending = pending.body["mediaId"].as_str().ok_or("no id")?.to_owned();
    let photo = corpus("Kodak_CX7530.jpg")?;
    let rejected = t
        .upload(&alice, "bad.jpg", "image/jpeg", &photo[..photo.len() / 3])
        .await?;
    let rejected = rejected["mediaId"].as_str().ok_or("no id")?.to_owned();
    assert_eq!(
        t.wait_processed(&alice, &rejected).await?["status"],
        "rejected"
    );

    for (id, status) in [(&pending, "pending"), (&rejected, "rejected")] {
        assert_eq!(t.delete(&alice, id).await?.status, 204);
        let back = restore(&t, "alice", id).await?;
        assert_eq!(
            (back.status, back.body["status"].as_str()),
            (200, Some(status)),
            "{}",
            back.body
        );
    }
    assert_eq!(t.get(&alice, &pending).await?.body["alt"], "kept");
    // A restored pending upload is queued for expiry again, like any pending upload.
    let item = t.stored_item(&pending).await?.ok_or("no record")?;
    assert!(
        item.get("gcQueue")
            .and_then(|v| v.as_s().ok())
            .is_some_and(|q| q.starts_with("pending#"))
    );
    assert!(item.contains_key("expiresAtEpoch"));
    assert!(!item.contains_key("deletedAt") && !item.contains_key("deletedFrom"));
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn purged_media_cannot_be_restored() -> TestResult {
    let t = spawn_app(&[("CLEANUP_GRACE_PERIOD_HOURS", "0")]).await?;
    let alice = token("alice");
    let (id, _) = t.ready_photo("alice").await?;
    assert_eq!(t.delete(&alice, &id).await?.status, 204);
    let summary = t.app.service.run_cleanup().await?;
    assert_eq!(summary.purged, 1, "{summary:?}");
    assert_eq!(restore(&t, "alice", &id).await?.status, 404);
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn lost_answers_of_a_delete_and_a_restore_still_end_right() -> TestResult {
    let (t, proxy) = spawn_app_behind_proxy(&[]).await?;
    let alice = token("alice");
    let (id, view) = t.ready_photo("alice").await?;
    let handed_out = urls(&view);

    // The delete marker's answer is lost: the delete still answers 204 and nothing serves.
    proxy.once(
        Matcher::op(Service::S3, "DeleteObject").key("derivatives/"),
        0,
        Fault::LoseAnswer,
    );
    assert_eq!(t.delete(&alice, &id).await?.status, 204);
    assert!(proxy.rules_spent());
    for status in statuses(&t, &handed_out).await? {
        assert!(status == 403 || status == 404, "{status}");
    }

    // The restore's record write is applied and its answer lost: still 200, at version 4.
    proxy.once(
        // A restore of ready media is one transaction with its quota reservation.
        Matcher::op(Service::DynamoDb, "TransactWriteItems").body("deletedFrom"),
        0,
        Fault::LoseAnswer,
    );
    let back = restore(&t, "alice", &id).await?;
    assert!(proxy.rules_spent());
    assert_eq!(
        (back.status, back.body["version"].as_u64()),
        (200, Some(4)),
        "{}",
        back.body
    );
    assert_eq!(statuses(&t, &handed_out).await?, [200; 4]);
    t.app.shutdown().await;
    Ok(())
}
