//! The media library over HTTP: the list with its cursor and filters, descriptive fields at
//! presign and by merge patch, versions and `If-Match`.

use std::time::Duration;

use e2e::fault_proxy::{Fault, Matcher, Service};
use e2e::{TestApp, TestResult, corpus, spawn_app, spawn_app_behind_proxy, token};
use serde_json::{Value, json};

async fn presign(t: &TestApp, user: &str, body: Value) -> TestResult<String> {
    let r = t.presign(Some(&token(user)), &body).await?;
    assert_eq!(r.status, 200, "{}", r.body);
    Ok(r.body["mediaId"].as_str().ok_or("no id")?.to_owned())
}

fn file(name: &str) -> Value {
    json!({"filename": name, "contentType": "image/jpeg", "size": 10})
}

/// Presigns `n` files for `user`, a few milliseconds apart; ids newest first.
async fn presign_many(t: &TestApp, user: &str, n: usize) -> TestResult<Vec<String>> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(presign(t, user, file(&format!("{i}.jpg"))).await?);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    ids.reverse();
    Ok(ids)
}

fn error_code(r: &e2e::Reply) -> &str {
    r.body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn the_list_pages_through_an_owners_media_newest_first() -> TestResult {
    let t = spawn_app(&[]).await?;
    let alice = token("alice");
    let ids = presign_many(&t, "alice", 7).await?;
    presign(&t, "bob", file("b.jpg")).await?;

    // Pages of 3: 3 + 3 + 1, in order, and the last page says there is no next.
    let first = t.list(&alice, "limit=3").await?;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(first.body["items"][0]["id"], ids[0].as_str());
    assert_eq!(first.body["items"][0]["version"], 1);
    assert_eq!(t.list_all(&alice, "limit=3").await?, ids);
    assert_eq!(t.list_all(&alice, "limit=100").await?, ids);
    let all = t.list(&alice, "").await?;
    assert_eq!(all.body["nextCursor"], Value::Null);
    assert_eq!(all.body["items"].as_array().map(Vec::len), Some(7));

    // A deleted media leaves the list at once.
    assert_eq!(t.delete(&alice, &ids[1]).await?.status, 204);
    let mut live = ids.clone();
    live.remove(1);
    assert_eq!(t.list_all(&alice, "limit=2").await?, live);

    // The cursor is bound to its owner and to its query.
    let cursor = first.body["nextCursor"].as_str().ok_or("no cursor")?;
    let foreign = t
        .list(&token("bob"), &format!("limit=3&cursor={cursor}"))
        .await?;
    assert_eq!(
        (foreign.status, error_code(&foreign)),
        (400, "invalid_cursor")
    );
    let other_query = t
        .list(&alice, &format!("limit=3&status=ready&cursor={cursor}"))
        .await?;
    assert_eq!(
        (other_query.status, error_code(&other_query)),
        (400, "invalid_cursor")
    );
    for bad in ["x", "eyJ2IjoxfQ", "%00"] {
        let r = t.list(&alice, &format!("cursor={bad}")).await?;
        assert_eq!((r.status, error_code(&r)), (400, "invalid_cursor"), "{bad}");
    }
    // Bad parameters are named.
    for (query, param) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("status=deleted", "status"),
        ("kind=movie", "kind"),
        ("createdAfter=yesterday", "createdAfter"),
        ("createdBefore=2026-13-01T00:00:00Z", "createdBefore"),
        ("entityType=product", "entityId"),
        ("tag=a%2Fb", "tag"),
    ] {
        let r = t.list(&alice, query).await?;
        assert_eq!(
            (r.status, error_code(&r)),
            (400, "invalid_request"),
            "{query}"
        );
        let message = r.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(param), "{query}: {message}");
    }
    assert_eq!(t.list("not-a-token", "").await?.status, 401);
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn pages_never_repeat_or_skip_while_media_are_added() -> TestResult {
    let t = spawn_app(&[]).await?;
    let alice = token("alice");
    let before = presign_many(&t, "alice", 12).await?;

    // Page through 2 at a time while 12 more are presigned concurrently.
    let adder = {
        let http = t.http.clone();
        let url = format!("{}/api/v1/upload/presign", t.app.url());
        let alice = alice.clone();
        tokio::spawn(async move {
            let mut ok = 0;
            for i in 0..12 {
                let r = http
                    .post(&url)
                    .bearer_auth(&alice)
                    .json(&file(&format!("new-{i}.jpg")))
                    .send()
                    .await;
                if r.is_ok_and(|r| r.status() == 200) {
                    ok += 1;
                }
                tokio::time::sleep(Duration::from_millis(4)).await;
            }
            ok
        })
    };
    let seen = t.list_all(&alice, "limit=2").await?;
    assert_eq!(adder.await?, 12);

    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "an item was repeated: {seen:?}");
    // Every item that existed before paging began is seen, in order; new ones may come first.
    let old: Vec<&String> = seen.iter().filter(|id| before.contains(id)).collect();
    assert_eq!(old, before.iter().collect::<Vec<_>>());
    assert_eq!(t.list_all(&alice, "limit=5").await?.len(), 24);
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn filters_narrow_the_list() -> TestResult {
    let t = spawn_app(&[]).await?;
    let alice = token("alice");
    let photo = corpus("Kodak_CX7530.jpg")?;
    let ready = t.upload(&alice, "ready.jpg", "image/jpeg", &photo).await?;
    let ready = ready["mediaId"].as_str().ok_or("no id")?.to_owned();
    let rejected = t
        .upload(&alice, "bad.jpg", "image/jpeg", &photo[..photo.len() / 3])
        .await?;
    let rejected = rejected["mediaId"].as_str().ok_or("no id")?.to_owned();
    assert_eq!(t.wait_processed(&alice, &ready).await?["status"], "ready");
    assert_eq!(
        t.wait_processed(&alice, &rejected).await?["status"],
        "rejected"
    );
    let middle = time::OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let linked = presign(
        &t,
        "alice",
        json!({"filename": "p.jpg", "contentType": "image/jpeg", "size": 10,
            "tags": ["Red", "sale"], "entity": {"type": "product", "id": "42"}}),
    )
    .await?;
    let other = presign(
        &t,
        "alice",
        json!({"filename": "q.jpg", "contentType": "image/jpeg", "size": 10,
            "tags": ["blue"], "entity": {"type": "product", "id": "43"}}),
    )
    .await?;
    // Bob's media linked to the same entity is never in Alice's list.
    presign(
        &t,
        "bob",
        json!({"filename": "b.jpg", "contentType": "image/jpeg", "size": 10,
            "tags": ["red"], "entity": {"type": "product", "id": "42"}}),
    )
    .await?;

    let ids = |q: &'static str| t.list_all(&alice, q);
    assert_eq!(ids("status=ready").await?, [ready.as_str()]);
    assert_eq!(ids("status=rejected").await?, [rejected.as_str()]);
    assert_eq!(
        ids("status=pending").await?,
        [other.as_str(), linked.as_str()]
    );
    assert_eq!(ids("kind=image&limit=1").await?.len(), 4);
    assert_eq!(ids("tag=%20RED%20").await?, [linked.as_str()]);
    assert_eq!(ids("tag=green").await?, Vec::<String>::new());
    assert_eq!(
        ids("entityType=product&entityId=42").await?,
        [linked.as_str()]
    );
    assert_eq!(
        ids("entityType=product&entityId=42&tag=blue").await?,
        Vec::<String>::new()
    );
    let m = media_core::domain::format_time(middle);
    let after = t.list_all(&alice, &format!("createdAfter={m}")).await?;
    assert_eq!(after, [other.as_str(), linked.as_str()]);
    let before = t.list_all(&alice, &format!("createdBefore={m}")).await?;
    assert_eq!(before.len(), 2);
    assert!(before.contains(&ready) && before.contains(&rejected));
    // Any offset; a '+' offset percent-encoded.
    let shifted = (middle.to_offset(time::macros::offset!(+5:30)))
        .format(&time::format_description::well_known::Rfc3339)?
        .replace('+', "%2B");
    assert_eq!(
        t.list_all(&alice, &format!("createdAfter={shifted}"))
            .await?
            .len(),
        2
    );
    // Bounds that leave nothing between them: an empty page.
    let r = t
        .list(&alice, &format!("createdAfter={m}&createdBefore={m}"))
        .await?;
    assert_eq!(
        (r.status, r.body["items"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_merge_patch_describes_media_with_versions_and_if_match() -> TestResult {
    let t = spawn_app(&[]).await?;
    let alice = token("alice");
    let photo = corpus("Kodak_CX7530.jpg")?;
    let presigned = t
        .presign(
            Some(&alice),
            &json!({"filename": "bike.jpg", "contentType": "image/jpeg", "size": photo.len(),
                "alt": "A bicycle", "tags": ["Bike", "bike", " red "]}),
        )
        .await?;
    assert_eq!(presigned.status, 200, "{}", presigned.body);
    let id = presigned.body["mediaId"]
        .as_str()
        .ok_or("no id")?
        .to_owned();
    let got = t.get(&alice, &id).await?;
    assert_eq!(got.etag.as_deref(), Some("\"1\""));
    assert_eq!(got.body["alt"], "A bicycle");
    assert_eq!(got.body["tags"], json!(["bike", "red"]));

    // Set, remove, keep; the version grows by one and is the ETag.
    let r = t
        .patch(
            &alice,
            &id,
            &json!({"title": "Red bike", "alt": null, "entity": {"type": "product", "id": "42"}}),
            Some("\"1\""),
        )
        .await?;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.etag.as_deref(), Some("\"2\""));
    assert_eq!(r.body["version"], 2);
    assert_eq!(r.body["alt"], Value::Null);
    assert_eq!(r.body["title"], "Red bike");
    assert_eq!(r.body["tags"], json!(["bike", "red"]));

    // A stale If-Match: 412, and nothing changes.
    let stale = t
        .patch(&alice, &id, &json!({"title": "x"}), Some("\"1\""))
        .await?;
    assert_eq!(
        (stale.status, error_code(&stale)),
        (412, "precondition_failed")
    );
    assert_eq!(t.get(&alice, &id).await?.body["title"], "Red bike");
    // `*` matches any version; a patch that changes nothing keeps the version.
    let same = t
        .patch(&alice, &id, &json!({"title": "Red bike"}), Some("*"))
        .await?;
    assert_eq!((same.status, same.body["version"].as_u64()), (200, Some(2)));

    // Processing keeps the description and adds a version.
    t.http
        .put(presigned.body["url"].as_str().ok_or("no url")?)
        .header("content-type", "image/jpeg")
        .header("content-length", photo.len())
        .body(photo.clone())
        .send()
        .await?
        .error_for_status()?;
    let ready = t.wait_processed(&alice, &id).await?;
    assert_eq!(
        (ready["status"].as_str(), ready["version"].as_u64()),
        (Some("ready"), Some(3))
    );
    assert_eq!(ready["title"], "Red bike");
    assert_eq!(ready["entity"], json!({"type": "product", "id": "42"}));

    // Refusals name the field and change nothing.
    for (body, field) in [
        (json!({"status": "ready"}), "status"),
        (json!({"id": "x"}), "id"),
        (json!({"alt": "x".repeat(1001)}), "alt"),
        (json!({"tags": ["a/b"]}), "tags"),
        (
            json!({"tags": (0..21).map(|i| format!("t{i}")).collect::<Vec<_>>()}),
            "tags",
        ),
        (
            json!({"entity": {"type": "Product", "id": "1"}}),
            "entity.type",
        ),
        (
            json!({"entity": {"type": "product", "id": ""}}),
            "entity.id",
        ),
        (json!({"description": 5}), "description"),
    ] {
        let r = t.patch(&alice, &id, &body, None).await?;
        assert_eq!(
            (r.status, error_code(&r)),
            (400, "invalid_request"),
            "{body}"
        );
        let message = r.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(field), "{body}: {message}");
    }
    assert_eq!(t.get(&alice, &id).await?.body["version"], 3);
    let form = t
        .http
        .patch(format!("{}/api/v1/upload/{id}", t.app.url()))
        .bearer_auth(&alice)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await?;
    assert_eq!(form.status(), 415);

    // Someone else's media, and deleted media: 404.
    assert_eq!(
        t.patch(&token("bob"), &id, &json!({"title": "x"}), None)
            .await?
            .status,
        404
    );
    assert_eq!(t.delete(&alice, &id).await?.status, 204);
    assert_eq!(
        t.patch(&alice, &id, &json!({"title": "x"}), None)
            .await?
            .status,
        404
    );

    // A batch presign takes the fields per file, and refuses a bad one naming it.
    let batch = t
        .presign(
            Some(&alice),
            &json!({"files": [
                {"filename": "a.jpg", "contentType": "image/jpeg", "size": 10, "title": "A"},
                {"filename": "b.jpg", "contentType": "image/jpeg", "size": 10, "tags": ["x/y"]}]}),
        )
        .await?;
    assert_eq!((batch.status, error_code(&batch)), (400, "invalid_request"));
    assert!(
        batch.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("files[1]: tags")),
        "{}",
        batch.body
    );
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_patch_whose_answer_is_lost_is_applied_once() -> TestResult {
    let (t, proxy) = spawn_app_behind_proxy(&[]).await?;
    let alice = token("alice");
    let id = presign(&t, "alice", file("a.jpg")).await?;
    proxy.once(
        Matcher::op(Service::DynamoDb, "UpdateItem").body("title"),
        0,
        Fault::LoseAnswer,
    );
    let r = t
        .patch(&alice, &id, &json!({"title": "T"}), Some("\"1\""))
        .await?;
    assert!(proxy.rules_spent(), "the rule met the update");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.body["version"].as_u64(), r.etag.as_deref()),
        (Some(2), Some("\"2\""))
    );
    assert_eq!(t.get(&alice, &id).await?.body["version"], 2);
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_last_page_of_processed_media_says_there_is_no_next() -> TestResult {
    let t = spawn_app(&[]).await?;
    let alice = token("alice");
    let photo = corpus("Kodak_CX7530.jpg")?;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let p = t.upload(&alice, "p.jpg", "image/jpeg", &photo).await?;
        let id = p["mediaId"].as_str().ok_or("no id")?.to_owned();
        assert_eq!(t.wait_processed(&alice, &id).await?["status"], "ready");
        ids.push(id);
    }
    let first = t.list(&alice, "limit=2").await?;
    assert_eq!(first.body["items"].as_array().map(Vec::len), Some(2));
    let cursor = first.body["nextCursor"].as_str().ok_or("no cursor")?;
    let second = t.list(&alice, &format!("limit=2&cursor={cursor}")).await?;
    assert_eq!(
        second.body["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        second.body
    );
    assert_eq!(second.body["nextCursor"], Value::Null, "{}", second.body);
    t.app.shutdown().await;
    Ok(())
}
