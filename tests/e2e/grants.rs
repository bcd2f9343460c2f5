//! Downloads and download grants over HTTP: the owner's download redirect, and links that work
//! without a token a bounded number of times until they expire, counted atomically.

use aws_sdk_dynamodb::types::AttributeValue;
use e2e::{TestApp, TestResult, spawn_app, token};
use serde_json::{Value, json};

/// A client that shows redirects instead of following them.
fn no_redirects() -> TestResult<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// `GET` (with the bearer token, if any): status, `Location`, JSON body.
async fn get(url: &str, bearer: Option<&str>) -> TestResult<(u16, Option<String>, Value)> {
    let mut req = no_redirects()?.get(url);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = resp.bytes().await?;
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok((status, location, body))
}

async fn ready_pdf(t: &TestApp, user: &str, filename: &str) -> TestResult<(String, Vec<u8>)> {
    let bytes = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("documents/pypdf-crazyones.pdf"),
    )?;
    let presigned = t
        .upload(&token(user), filename, "application/pdf", &bytes)
        .await?;
    let id = presigned["mediaId"].as_str().ok_or("no id")?.to_owned();
    let view = t.wait_processed(&token(user), &id).await?;
    assert_eq!(view["status"], "ready", "{view}");
    Ok((id, bytes))
}

async fn create_grant(t: &TestApp, user: &str, id: &str, body: &Value) -> TestResult<(u16, Value)> {
    let resp = t
        .http
        .post(format!("{}/api/v1/upload/{id}/grants", t.app.url()))
        .bearer_auth(token(user))
        .json(body)
        .send()
        .await?;
    Ok((resp.status().as_u16(), resp.json().await?))
}

#[tokio::test]
async fn the_owner_downloads_a_file_under_its_own_name() -> TestResult {
    let t = spawn_app(&[]).await?;
    let (id, bytes) = ready_pdf(&t, "alice", "Été 2026; \"final\".pdf").await?;
    let url = format!("{}/api/v1/upload/{id}/download", t.app.url());
    let (status, location, _) = get(&url, Some(&token("alice"))).await?;
    assert_eq!(status, 302);
    let location = location.ok_or("no Location")?;
    // A one-minute URL that overrides the answer's headers.
    assert!(location.contains("X-Amz-Expires=60"), "{location}");
    assert!(
        location.contains("response-content-disposition="),
        "{location}"
    );
    let resp = reqwest::get(&location).await?;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-disposition"],
        "attachment; filename*=UTF-8''%C3%89t%C3%A9%202026%3B%20%22final%22.pdf"
    );
    assert_eq!(resp.headers()["content-type"], "application/pdf");
    assert_eq!(resp.bytes().await?.to_vec(), bytes);

    // Someone else, or no token: not found / unauthorized; pending: not ready.
    assert_eq!(get(&url, Some(&token("mallory"))).await?.0, 404);
    assert_eq!(get(&url, None).await?.0, 401);
    let pending = t
        .presign(
            Some(&token("alice")),
            &json!({"filename": "p.pdf", "contentType": "application/pdf", "size": 10}),
        )
        .await?;
    let pending_id = pending.body["mediaId"].as_str().ok_or("no id")?;
    let (status, _, body) = get(
        &format!("{}/api/v1/upload/{pending_id}/download", t.app.url()),
        Some(&token("alice")),
    )
    .await?;
    assert_eq!((status, &body["error"]["code"]), (409, &json!("not_ready")));
    Ok(())
}

#[tokio::test]
async fn a_grant_downloads_until_its_count_or_its_time_runs_out_or_it_is_revoked() -> TestResult {
    let t = spawn_app(&[]).await?;
    let (id, bytes) = ready_pdf(&t, "shop", "manual.pdf").await?;

    let (status, grant) = create_grant(
        &t,
        "shop",
        &id,
        &json!({"expiresIn": 3600, "maxDownloads": 2, "label": "order 1234"}),
    )
    .await?;
    assert_eq!(status, 201, "{grant}");
    assert_eq!(
        (&grant["maxDownloads"], &grant["downloads"], &grant["label"]),
        (&json!(2), &json!(0), &json!("order 1234"))
    );
    let link = grant["url"].as_str().ok_or("no url")?.to_owned();
    assert!(
        link.starts_with(&format!("{}/api/v1/download/", t.app.url())),
        "{link}"
    );
    // The link needs no token; each use redirects to the file, until the count runs out.
    for _ in 0..2 {
        let (status, location, _) = get(&link, None).await?;
        assert_eq!(status, 302);
        let resp = reqwest::get(location.ok_or("no Location")?).await?;
        assert_eq!(
            resp.headers()["content-disposition"],
            "attachment; filename*=UTF-8''manual.pdf"
        );
        assert_eq!(resp.bytes().await?.to_vec(), bytes);
    }
    let (status, _, body) = get(&link, None).await?;
    assert_eq!(
        (status, &body["error"]["code"]),
        (410, &json!("grant_exhausted"))
    );

    // The list shows it, counted, without its link; tokens are stored only as hashes.
    let list_url = format!("{}/api/v1/upload/{id}/grants", t.app.url());
    let (status, _, list) = get(&list_url, Some(&token("shop"))).await?;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"][0]["grantId"], grant["grantId"]);
    assert_eq!(list["items"][0]["downloads"], 2);
    assert!(list["items"][0].get("url").is_none());
    let token_in_link = link.rsplit('/').next().ok_or("no token")?;
    let stored = t
        .stored_item(&format!(
            "grant#{}",
            grant["grantId"].as_str().unwrap_or_default()
        ))
        .await?
        .ok_or("no grant item")?;
    assert!(
        stored
            .values()
            .all(|v| v.as_s().map_or(true, |s| !s.contains(token_in_link))),
        "the token is stored"
    );
    assert_eq!(get(&list_url, Some(&token("mallory"))).await?.0, 404);

    // Expiry: the grant's time is moved into the past.
    let (_, unlimited) = create_grant(&t, "shop", &id, &json!({"expiresIn": 60})).await?;
    assert_eq!(unlimited["maxDownloads"], Value::Null);
    let unlimited_link = unlimited["url"].as_str().ok_or("no url")?.to_owned();
    assert_eq!(get(&unlimited_link, None).await?.0, 302);
    t.direct
        .dynamodb
        .update_item()
        .table_name(&t.app.service.config().table)
        .key(
            "id",
            AttributeValue::S(format!(
                "grant#{}",
                unlimited["grantId"].as_str().unwrap_or_default()
            )),
        )
        .update_expression("SET expiresAtMs = :past")
        .expression_attribute_values(":past", AttributeValue::N("1000".into()))
        .send()
        .await?;
    let (status, _, body) = get(&unlimited_link, None).await?;
    assert_eq!(
        (status, &body["error"]["code"]),
        (410, &json!("grant_expired"))
    );

    // Revoked: 404, and revoking again is still 204.
    let (_, third) = create_grant(&t, "shop", &id, &json!({"expiresIn": 600})).await?;
    let third_link = third["url"].as_str().ok_or("no url")?.to_owned();
    let revoke_url = format!(
        "{}/api/v1/upload/{id}/grants/{}",
        t.app.url(),
        third["grantId"].as_str().unwrap_or_default()
    );
    for _ in 0..2 {
        let resp = t
            .http
            .delete(&revoke_url)
            .bearer_auth(token("shop"))
            .send()
            .await?;
        assert_eq!(resp.status(), 204);
    }
    assert_eq!(get(&third_link, None).await?.0, 404);

    // Deleting the media revokes every grant it has.
    let (_, fourth) = create_grant(&t, "shop", &id, &json!({"expiresIn": 600})).await?;
    let fourth_link = fourth["url"].as_str().ok_or("no url")?.to_owned();
    assert_eq!(t.delete(&token("shop"), &id).await?.status, 204);
    assert_eq!(get(&fourth_link, None).await?.0, 404);
    assert!(
        t.stored_item(&format!(
            "grant#{}",
            fourth["grantId"].as_str().unwrap_or_default()
        ))
        .await?
        .is_none()
    );

    // Unknown and malformed tokens.
    for bad in ["x", &"A".repeat(43), "..%2F..%2Fetc"] {
        let (status, _, _) = get(&format!("{}/api/v1/download/{bad}", t.app.url()), None).await?;
        assert_eq!(status, 404, "{bad}");
    }
    Ok(())
}

#[tokio::test]
async fn grant_requests_are_checked_and_need_a_ready_media() -> TestResult {
    let t = spawn_app(&[]).await?;
    let (id, _) = ready_pdf(&t, "shop", "m.pdf").await?;
    for body in [
        json!({}),
        json!({"expiresIn": 59}),
        json!({"expiresIn": 2_592_001}),
        json!({"expiresIn": 60, "maxDownloads": 0}),
        json!({"expiresIn": 60, "maxDownloads": 1001}),
        json!({"expiresIn": 60, "label": "x".repeat(201)}),
    ] {
        let (status, reply) = create_grant(&t, "shop", &id, &body).await?;
        assert_eq!(
            (status, &reply["error"]["code"]),
            (400, &json!("invalid_request")),
            "{body}"
        );
    }
    let (status, _) = create_grant(&t, "mallory", &id, &json!({"expiresIn": 60})).await?;
    assert_eq!(status, 404);
    let pending = t
        .presign(
            Some(&token("shop")),
            &json!({"filename": "p.pdf", "contentType": "application/pdf", "size": 10}),
        )
        .await?;
    let pending_id = pending.body["mediaId"].as_str().ok_or("no id")?;
    let (status, reply) = create_grant(&t, "shop", pending_id, &json!({"expiresIn": 60})).await?;
    assert_eq!(
        (status, &reply["error"]["code"]),
        (409, &json!("not_ready"))
    );
    Ok(())
}

#[tokio::test]
async fn twenty_concurrent_uses_of_a_three_download_grant_serve_exactly_three() -> TestResult {
    let t = spawn_app(&[]).await?;
    let (id, _) = ready_pdf(&t, "shop", "m.pdf").await?;
    let (status, grant) = create_grant(
        &t,
        "shop",
        &id,
        &json!({"expiresIn": 600, "maxDownloads": 3}),
    )
    .await?;
    assert_eq!(status, 201);
    let link = grant["url"].as_str().ok_or("no url")?.to_owned();
    let mut uses = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let link = link.clone();
        uses.spawn(async move {
            get(&link, None)
                .await
                .map(|(status, _, _)| status)
                .map_err(|e| e.to_string())
        });
    }
    let mut statuses = Vec::new();
    while let Some(done) = uses.join_next().await {
        statuses.push(done??);
    }
    statuses.sort_unstable();
    assert_eq!(
        statuses.iter().filter(|s| **s == 302).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 410).count(),
        17,
        "{statuses:?}"
    );
    let (_, _, list) = get(
        &format!("{}/api/v1/upload/{id}/grants", t.app.url()),
        Some(&token("shop")),
    )
    .await?;
    assert_eq!(list["items"][0]["downloads"], 3);
    Ok(())
}
