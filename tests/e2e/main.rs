//! End-to-end tests: the whole system on the local emulator, driven over HTTP as a client drives it.
//! Each test starts its own system on its own bucket, table and queue.

mod av;
mod documents;
mod enforcement;
mod events;
mod faults;
mod grants;
mod heif;
mod invoke;
mod library;
mod multipart;
mod operations;
mod quotas;
mod restore;
mod scanning;
mod server_upload;
mod template;

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use e2e::{TestApp, TestResult, corpus, spawn_app, time_now, token};
use media_dev::auth;
use serde_json::{Value, json};

fn decode(bytes: &[u8]) -> TestResult<image::DynamicImage> {
    Ok(image::load_from_memory(bytes)?)
}

/// Downloads the three thumbnails of a ready media and checks format, size and that no metadata of
/// the original came along. Returns them decoded, by name.
async fn check_thumbnails(
    t: &TestApp,
    media: &Value,
    expected: &[(&str, u32, u32)],
) -> TestResult<Vec<(String, image::DynamicImage)>> {
    let mut out = Vec::new();
    for (name, w, h) in expected {
        let url = media["thumbnails"][name]
            .as_str()
            .ok_or(format!("no {name} thumbnail"))?;
        let (status, bytes) = t.download(url).await?;
        assert_eq!(status, 200, "{name}");
        assert_eq!(
            image::guess_format(&bytes)?,
            image::ImageFormat::WebP,
            "{name}"
        );
        for marker in [&b"EXIF"[..], b"XMP ", b"ICCP", b"Exif"] {
            assert!(
                !bytes.windows(4).any(|w| w == marker),
                "{name} carries {marker:?}"
            );
        }
        let img = decode(&bytes)?;
        assert_eq!((img.width(), img.height()), (*w, *h), "{name}");
        out.push((name.to_string(), img));
    }
    Ok(out)
}

#[tokio::test]
async fn a_photo_goes_through_its_whole_life_and_leaves_nothing_behind() -> TestResult {
    let t = spawn_app(&[("CLEANUP_GRACE_PERIOD_HOURS", "0")]).await?;
    let alice = token("alice");
    let bob = token("bob");
    let photo = corpus("Portrait_6.jpg")?; // stored 1800x1200 with EXIF orientation 6

    let presigned = t
        .upload(&alice, "Portrait 6.jpg", "image/jpeg", &photo)
        .await?;
    let id = presigned["mediaId"].as_str().ok_or("no mediaId")?;
    assert_eq!(presigned["method"], "PUT");
    assert_eq!(presigned["expires"], 900);

    let media = t.wait_processed(&alice, id).await?;
    assert_eq!(media["status"], "ready", "{media}");
    assert_eq!(media["filename"], "Portrait 6.jpg");
    assert_eq!(
        (
            media["metadata"]["width"].as_u64(),
            media["metadata"]["height"].as_u64()
        ),
        (Some(1200), Some(1800))
    );
    assert_eq!(media["metadata"]["format"], "jpeg");
    assert_eq!(media["metadata"]["size"].as_u64(), Some(photo.len() as u64));
    assert_eq!(media["metadata"]["exif"]["orientation"], 6);
    assert_eq!(
        media["metadata"]["sha256"],
        "eb1f8c59199fc7d27361cb1bb9b82cb91f77cc0bd2934be516bcebb2e2eb9d33",
        "the SHA-256 recorded in the corpus manifest"
    );
    assert!(media.get("rejection").is_none());
    check_thumbnails(
        &t,
        &media,
        &[
            ("small", 100, 150),
            ("medium", 267, 400),
            ("large", 533, 800),
        ],
    )
    .await?;
    let original_url = media["originalUrl"]
        .as_str()
        .ok_or("no originalUrl")?
        .to_owned();
    assert_eq!(t.download(&original_url).await?, (200, photo.clone()));
    let mut keys = t.object_keys().await?;
    keys.sort();
    let expected: Vec<String> = ["large.webp", "medium.webp", "original.jpg", "small.webp"]
        .iter()
        .map(|f| format!("derivatives/{id}/{f}"))
        .collect();
    assert_eq!(
        keys, expected,
        "the upload itself is gone; a validated copy is served"
    );

    // The presigned PUT is still valid: new bytes sent to it after validation are never served.
    let tampered = vec![b'x'; photo.len()];
    let put = t
        .http
        .put(presigned["url"].as_str().ok_or("no url")?)
        .header("Content-Type", "image/jpeg")
        .body(tampered)
        .send()
        .await?;
    assert!(put.status().is_success());
    let upload_key = presigned["key"].as_str().ok_or("no key")?.to_owned();
    for _ in 0..150 {
        if !t.object_keys().await?.contains(&upload_key) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        !t.object_keys().await?.contains(&upload_key),
        "the re-upload is deleted"
    );
    let again = t.get(&alice, id).await?.body;
    assert_eq!(again["metadata"], media["metadata"]);
    let (status, served) = t
        .download(again["originalUrl"].as_str().ok_or("no originalUrl")?)
        .await?;
    assert_eq!(
        (status, served == photo),
        (200, true),
        "the validated bytes are still what is served"
    );

    let confirmed = t.confirm(&alice, id).await?;
    assert_eq!(
        (confirmed.status, confirmed.body["status"].as_str()),
        (200, Some("ready"))
    );

    // Another user sees none of it.
    assert_eq!(t.get(&bob, id).await?.status, 404);
    assert_eq!(t.confirm(&bob, id).await?.status, 404);
    assert_eq!(t.delete(&bob, id).await?.status, 404);
    assert_eq!(
        t.get(&alice, id).await?.status,
        200,
        "bob's delete did nothing"
    );

    let deleted = t.delete(&alice, id).await?;
    assert_eq!((deleted.status, deleted.body.clone()), (204, Value::Null));
    let gone = t.get(&alice, id).await?;
    assert_eq!(
        (gone.status, gone.body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    assert_eq!(t.confirm(&alice, id).await?.status, 404);
    // Nothing serves after a delete; the versions stay for a restore until cleanup.
    assert_eq!(t.object_keys().await?, Vec::<String>::new());
    let versions = t
        .direct
        .s3
        .list_object_versions()
        .bucket(&t.app.service.config().bucket)
        .prefix("derivatives/")
        .send()
        .await?;
    assert_eq!(
        versions.versions().len(),
        4,
        "soft delete keeps the objects' versions until cleanup"
    );

    let summary = t.app.service.run_cleanup().await?;
    assert_eq!(
        (summary.purged, summary.objects_deleted, summary.failures),
        (1, 4, 0),
        "{summary:?}"
    );
    assert!(summary.bytes_reclaimed > photo.len() as u64);
    t.assert_nothing_stored().await?;
    t.app.shutdown().await;
    Ok(())
}

/// WebP and PNG orientations, end to end, in the forms writers use (the pipeline's corpus test
/// checks all eight in every form): a WebP whose EXIF chunk starts with `Exif\0\0`, a WebP with
/// XMP only, and a PNG with a compressed XMP packet, each stored sideways (orientation 6).
#[tokio::test]
async fn webp_and_png_orientations_come_out_upright_end_to_end() -> TestResult {
    let t = spawn_app(&[]).await?;
    let alice = token("alice");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/pipeline/tests/fixtures/orientation");
    for (file, mime) in [
        ("portrait-6-exifheader.webp", "image/webp"),
        ("portrait-6-xmp.webp", "image/webp"),
        ("portrait-6-xmp.png", "image/png"),
    ] {
        let p = t
            .upload(&alice, file, mime, &std::fs::read(dir.join(file))?)
            .await?;
        let media = t
            .wait_processed(&alice, p["mediaId"].as_str().ok_or("no id")?)
            .await?;
        assert_eq!(media["status"], "ready", "{file}: {media}");
        // Stored 120 x 80, displayed upright.
        let m = &media["metadata"];
        assert_eq!(
            (
                m["width"].as_u64(),
                m["height"].as_u64(),
                m["exif"]["orientation"].as_u64()
            ),
            (Some(80), Some(120), Some(6)),
            "{file}"
        );
        check_thumbnails(&t, &media, &[("small", 80, 120)]).await?;
    }
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn every_exif_orientation_comes_out_upright() -> TestResult {
    let t = spawn_app(&[]).await?;
    let alice = token("alice");
    // Reference: orientation 1. The others must look the same once processed.
    let mut smalls = Vec::new();
    for n in 1..=8 {
        let p = t
            .upload(
                &alice,
                "p.jpg",
                "image/jpeg",
                &corpus(&format!("Portrait_{n}.jpg"))?,
            )
            .await?;
        let media = t
            .wait_processed(&alice, p["mediaId"].as_str().ok_or("no id")?)
            .await?;
        assert_eq!(
            (
                media["metadata"]["width"].as_u64(),
                media["metadata"]["height"].as_u64()
            ),
            (Some(1200), Some(1800))
        );
        let thumbs = check_thumbnails(&t, &media, &[("small", 100, 150)]).await?;
        smalls.push((n, thumbs.into_iter().next().ok_or("no thumb")?.1.to_rgb8()));
    }
    let (_, reference) = &smalls[0];
    for (n, img) in &smalls[1..] {
        let diff: u64 = reference
            .as_raw()
            .iter()
            .zip(img.as_raw())
            .map(|(a, b)| u64::from(a.abs_diff(*b)))
            .sum();
        let mean = diff as f64 / reference.as_raw().len() as f64;
        assert!(
            mean < 12.0,
            "orientation {n} differs from upright by {mean:.1} per channel"
        );
    }
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn png_and_webp_photos_and_exif_gps_are_handled() -> TestResult {
    let t = spawn_app(&[]).await?;
    let alice = token("alice");
    let cases = [
        ("4.webp", "image/webp", (1024, 772)),
        ("basn2c16.png", "image/png", (32, 32)),
        ("tbrn2c08.png", "image/png", (32, 32)),
        ("Kodak_CX7530.jpg", "image/jpeg", (100, 78)),
    ];
    for (file, ct, (w, h)) in cases {
        let p = t.upload(&alice, file, ct, &corpus(file)?).await?;
        let media = t
            .wait_processed(&alice, p["mediaId"].as_str().ok_or("no id")?)
            .await?;
        assert_eq!(media["status"], "ready", "{file}: {media}");
        assert_eq!(
            (
                media["metadata"]["width"].as_u64(),
                media["metadata"]["height"].as_u64()
            ),
            (Some(w), Some(h)),
            "{file}"
        );
        assert_eq!(
            media["thumbnails"].as_object().map(|o| o.len()),
            Some(3),
            "{file}"
        );
        if file == "Kodak_CX7530.jpg" {
            let exif = &media["metadata"]["exif"];
            assert_eq!(exif["make"], "EASTMAN KODAK COMPANY");
            assert_eq!(exif["model"], "KODAK CX7530 ZOOM DIGITAL CAMERA");
            assert_eq!(exif["dateTime"], "2005:08:13 09:47:23");
            let (lat, lon) = (
                exif["gpsLatitude"].as_f64().unwrap_or(0.0),
                exif["gpsLongitude"].as_f64().unwrap_or(0.0),
            );
            assert!(
                (lat - -0.37130).abs() < 1e-4 && (lon - 36.05642).abs() < 1e-4,
                "gps {lat},{lon}"
            );
            // Never upscaled: a 100x78 photo keeps its size in every thumbnail.
            check_thumbnails(
                &t,
                &media,
                &[("small", 100, 78), ("medium", 100, 78), ("large", 100, 78)],
            )
            .await?;
        }
    }
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_text_file_named_jpg_is_rejected_and_nothing_of_it_stays_servable() -> TestResult {
    let t = spawn_app(&[]).await?;
    let alice = token("alice");
    let payload = corpus("imagetragik1_payload_url_touch.jpg")?;
    let p = t.upload(&alice, "cat.jpg", "image/jpeg", &payload).await?;
    let id = p["mediaId"].as_str().ok_or("no id")?;
    let media = t.wait_processed(&alice, id).await?;
    assert_eq!(media["status"], "rejected");
    assert_eq!(media["rejection"]["code"], "not_an_image");
    assert!(
        media["rejection"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert_eq!(
        (media["originalUrl"].clone(), media["thumbnails"].clone()),
        (Value::Null, json!({}))
    );
    assert_eq!(
        t.object_keys().await?,
        Vec::<String>::new(),
        "the object is deleted and no derivative exists"
    );
    // Even a URL to its old key serves nothing.
    let key = p["key"].as_str().ok_or("no key")?;
    let url = t
        .app
        .stack
        .clients
        .s3
        .get_object()
        .bucket(&t.app.service.config().bucket)
        .key(key)
        .presigned(PresigningConfig::expires_in(Duration::from_secs(60))?)
        .await?;
    assert_eq!(t.download(url.uri()).await?.0, 404);
    assert_eq!(t.get(&token("bob"), id).await?.status, 404);
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_declared_type_that_does_not_match_the_content_is_rejected() -> TestResult {
    let t = spawn_app(&[]).await?;
    let alice = token("alice");
    let p = t
        .upload(&alice, "x.jpg", "image/jpeg", &corpus("basn3p08.png")?)
        .await?;
    let media = t
        .wait_processed(&alice, p["mediaId"].as_str().ok_or("no id")?)
        .await?;
    assert_eq!(
        (
            media["status"].as_str(),
            media["rejection"]["code"].as_str()
        ),
        (Some("rejected"), Some("type_mismatch"))
    );
    assert_eq!(t.object_keys().await?, Vec::<String>::new());
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_api_refuses_missing_bad_and_expired_tokens() -> TestResult {
    let t = spawn_app(&[]).await?;
    let body = json!({"filename": "a.jpg", "contentType": "image/jpeg", "size": 10});
    let now = time_now();
    let bad_tokens = [
        None,
        Some("not-a-token".to_owned()),
        Some(auth::sign("another-secret", "alice", now, now + 600)),
        Some(auth::sign(e2e::SECRET, "alice", now - 1200, now - 600)),
    ];
    for bad in &bad_tokens {
        let r = t.presign(bad.as_deref(), &body).await?;
        assert_eq!(r.status, 401, "{bad:?}");
        assert_eq!(r.body["error"]["code"], "unauthorized");
        let r = t.http.get(format!(
            "{}/api/v1/upload/0123456789abcdef0123456789abcdef",
            t.app.url()
        ));
        let r = match bad {
            Some(b) => r.bearer_auth(b),
            None => r,
        }
        .send()
        .await?;
        assert_eq!(r.status().as_u16(), 401);
    }
    assert_eq!(
        t.http
            .get(format!("{}/health", t.app.url()))
            .send()
            .await?
            .status()
            .as_u16(),
        200
    );
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn presign_validates_its_input_and_never_trusts_the_filename() -> TestResult {
    let t = spawn_app(&[]).await?;
    let alice = token("alice");
    for (body, status, code) in [
        (
            json!({"filename": "a.svg", "contentType": "image/svg+xml", "size": 100}),
            415,
            "unsupported_type",
        ),
        (
            json!({"filename": "a.jpg", "contentType": "image/jpeg", "size": 0}),
            400,
            "invalid_request",
        ),
        (
            json!({"filename": "a.jpg", "contentType": "image/jpeg", "size": 5 * 1024 * 1024 + 1}),
            413,
            "too_large",
        ),
        (
            json!({"contentType": "image/jpeg", "size": 100}),
            400,
            "invalid_request",
        ),
        (json!([1, 2, 3]), 400, "invalid_request"),
    ] {
        let r = t.presign(Some(&alice), &body).await?;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}"
        );
    }
    let r = t.presign(Some(&alice), &json!({"filename": "../../etc/passwd\u{0}.jpg", "contentType": "image/jpeg", "size": 10})).await?;
    assert_eq!(r.status, 200);
    let key = r.body["key"].as_str().ok_or("no key")?;
    assert!(!key.contains("passwd") && !key.contains(".."), "{key}");
    let media = t
        .get(&alice, r.body["mediaId"].as_str().ok_or("no id")?)
        .await?;
    assert_eq!(
        (
            media.body["filename"].as_str(),
            media.body["status"].as_str()
        ),
        (Some("passwd.jpg"), Some("pending"))
    );
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn confirm_before_the_upload_is_a_conflict() -> TestResult {
    let t = spawn_app(&[]).await?;
    let alice = token("alice");
    let r = t
        .presign(
            Some(&alice),
            &json!({"filename": "a.jpg", "contentType": "image/jpeg", "size": 10}),
        )
        .await?;
    let c = t
        .confirm(&alice, r.body["mediaId"].as_str().ok_or("no id")?)
        .await?;
    assert_eq!(
        (c.status, c.body["error"]["code"].as_str()),
        (409, Some("not_uploaded"))
    );
    assert_eq!(t.confirm(&alice, "nonsense").await?.status, 404);
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn uploads_that_never_complete_expire_and_late_events_change_nothing() -> TestResult {
    let t = spawn_app(&[
        ("PRESIGN_EXPIRY_SECONDS", "1"),
        ("PENDING_TTL_SECONDS", "1"),
    ])
    .await?;
    let alice = token("alice");
    let never = t
        .presign(
            Some(&alice),
            &json!({"filename": "a.jpg", "contentType": "image/jpeg", "size": 10}),
        )
        .await?;
    // A second upload that does arrive: it must survive the expiry of the first.
    let bytes = corpus("Kodak_CX7530.jpg")?;
    let lost = t
        .presign(
            Some(&alice),
            &json!({"filename": "b.jpg", "contentType": "image/jpeg", "size": bytes.len()}),
        )
        .await?;
    let lost_key = lost.body["key"].as_str().ok_or("no key")?.to_owned();
    t.app
        .stack
        .clients
        .s3
        .put_object()
        .bucket(&t.app.service.config().bucket)
        .key(&lost_key)
        .body(bytes.clone().into())
        .send()
        .await?;
    let processed = t
        .wait_processed(&alice, lost.body["mediaId"].as_str().ok_or("no id")?)
        .await?;
    assert_eq!(processed["status"], "ready");

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let summary = t.app.service.run_cleanup().await?;
    assert_eq!(
        (summary.expired, summary.purged, summary.failures),
        (1, 0, 0),
        "only the pending one: {summary:?}"
    );
    assert_eq!(
        t.get(&alice, never.body["mediaId"].as_str().ok_or("no id")?)
            .await?
            .status,
        404
    );
    assert_eq!(
        t.get(&alice, lost.body["mediaId"].as_str().ok_or("no id")?)
            .await?
            .status,
        200
    );

    // A repeated event for the ready media does not undo or redo anything.
    let key = media_core::domain::ObjectKey::from_raw(lost_key);
    let outcome = t.app.service.process_upload(&key).await?;
    assert!(
        matches!(
            outcome,
            media_core::process::ProcessOutcome::AlreadyProcessed { .. }
        ),
        "{outcome:?}"
    );
    assert_eq!(t.record_count().await?, 1);
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_late_upload_after_delete_stays_deleted_and_cleanup_removes_it() -> TestResult {
    let t = spawn_app(&[("CLEANUP_GRACE_PERIOD_HOURS", "0")]).await?;
    let alice = token("alice");
    let bytes = corpus("Kodak_CX7530.jpg")?;
    let p = t
        .presign(
            Some(&alice),
            &json!({"filename": "a.jpg", "contentType": "image/jpeg", "size": bytes.len()}),
        )
        .await?;
    let id = p.body["mediaId"].as_str().ok_or("no id")?.to_owned();
    assert_eq!(t.delete(&alice, &id).await?.status, 204);

    // The upload lands after the delete; its event is delivered and processed.
    let key = p.body["key"].as_str().ok_or("no key")?.to_owned();
    t.app
        .stack
        .clients
        .s3
        .put_object()
        .bucket(&t.app.service.config().bucket)
        .key(&key)
        .content_type("image/jpeg")
        .body(bytes.into())
        .send()
        .await?;
    let outcome = t
        .app
        .service
        .process_upload(&media_core::domain::ObjectKey::from_raw(key))
        .await?;
    assert!(
        matches!(
            outcome,
            media_core::process::ProcessOutcome::AlreadyProcessed { .. }
        ),
        "{outcome:?}"
    );
    assert_eq!(
        t.get(&alice, &id).await?.status,
        404,
        "a late event cannot undo the delete"
    );

    let summary = t.app.service.run_cleanup().await?;
    assert_eq!((summary.purged, summary.failures), (1, 0), "{summary:?}");
    t.assert_nothing_stored().await?;
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn with_a_cdn_configured_urls_are_cdn_urls() -> TestResult {
    let t = spawn_app(&[("CDN_BASE_URL", "https://cdn.example.com/")]).await?;
    let alice = token("alice");
    let p = t
        .upload(&alice, "k.jpg", "image/jpeg", &corpus("Kodak_CX7530.jpg")?)
        .await?;
    let id = p["mediaId"].as_str().ok_or("no id")?;
    let media = t.wait_processed(&alice, id).await?;
    assert_eq!(media["status"], "ready");
    assert_eq!(
        media["originalUrl"],
        format!("https://cdn.example.com/derivatives/{id}/original.jpg")
    );
    for name in ["small", "medium", "large"] {
        assert_eq!(
            media["thumbnails"][name],
            format!("https://cdn.example.com/derivatives/{id}/{name}.webp")
        );
    }
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn hostile_corpus_files_are_rejected_with_their_reason_and_leave_nothing_servable()
-> TestResult {
    let t = spawn_app(&[]).await?;
    let alice = token("alice");
    let cases = [
        ("truncated.jpg", "image/jpeg", "corrupt"),
        ("giant-image.jpg", "image/jpeg", "too_large_dimensions"),
        ("xcrn0g04.png", "image/png", "not_an_image"),
        ("SVG_XSS1.svg", "image/png", "not_an_image"),
        // An AVIF declared as WebP: AVIF is decoded now, so another type is a mismatch.
        ("pitm.avif", "image/webp", "type_mismatch"),
    ];
    let mut ids = Vec::new();
    for (file, declared, _) in cases {
        let p = t.upload(&alice, file, declared, &corpus(file)?).await?;
        ids.push(p["mediaId"].as_str().ok_or("no mediaId")?.to_owned());
    }
    for ((file, _, code), id) in cases.iter().zip(&ids) {
        let media = t.wait_processed(&alice, id).await?;
        assert_eq!(media["status"], "rejected", "{file}");
        assert_eq!(media["rejection"]["code"], *code, "{file}");
        assert!(
            media.get("originalUrl").is_none_or(Value::is_null),
            "{file}"
        );
    }
    // Neither the uploads nor anything derived from them is left in the bucket.
    let keys = t.object_keys().await?;
    assert!(
        keys.iter()
            .all(|k| !ids.iter().any(|id| k.contains(id.as_str()))),
        "{keys:?}"
    );
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_animated_gif_is_accepted_and_an_original_can_be_served_as_webp() -> TestResult {
    let t = spawn_app(&[("CONVERT_ORIGINAL_TO_WEBP", "true")]).await?;
    let alice = token("alice");

    let gif = t
        .upload(
            &alice,
            "squares.gif",
            "image/gif",
            &corpus("rotating-squares.gif")?,
        )
        .await?;
    let gif_id = gif["mediaId"].as_str().ok_or("no mediaId")?;
    let media = t.wait_processed(&alice, gif_id).await?;
    assert_eq!(media["status"], "ready", "{media}");
    assert_eq!(media["metadata"]["frames"], 30);
    assert!(media["metadata"]["blurhash"].is_string());
    check_thumbnails(&t, &media, &[("small", 80, 80), ("large", 80, 80)]).await?;

    // A PNG photo: its WebP is far smaller, so the WebP is what the original's URL serves.
    let photo = decode(&corpus("Landscape_1.jpg")?)?.resize(900, 600, image::imageops::Triangle);
    let mut png = Vec::new();
    photo.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
    let p = t.upload(&alice, "landscape.png", "image/png", &png).await?;
    let id = p["mediaId"].as_str().ok_or("no mediaId")?;
    let media = t.wait_processed(&alice, id).await?;
    assert_eq!(media["status"], "ready", "{media}");
    let url = media["originalUrl"].as_str().ok_or("no originalUrl")?;
    assert!(
        url.contains(&format!("derivatives/{id}/original.webp")),
        "{url}"
    );
    let (status, bytes) = t.download(url).await?;
    assert_eq!(status, 200);
    assert!(bytes.len() < png.len());
    let served = decode(&bytes)?;
    assert_eq!((served.width(), served.height()), (900, 600));
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_batch_is_presigned_whole_or_refused_whole() -> TestResult {
    let t = spawn_app(&[]).await?;
    let alice = token("alice");
    let file = |name: &str, size: u64| json!({"filename": name, "contentType": "image/jpeg", "size": size});

    let r = t
        .presign(
            Some(&alice),
            &json!({"files": [file("a.jpg", 1000), {"filename": "b.png", "contentType": "image/png", "size": 2000, "method": "POST"}]}),
        )
        .await?;
    assert_eq!(r.status, 200, "{}", r.body);
    let files = r.body["files"].as_array().ok_or("no files")?;
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["method"], "PUT");
    assert_eq!(files[1]["method"], "POST");
    assert_eq!(files[1]["fields"]["Content-Type"], "image/png");
    assert_eq!(files[1]["fields"]["key"], files[1]["key"]);
    assert_ne!(files[0]["mediaId"], files[1]["mediaId"]);
    assert_eq!(t.record_count().await?, 2);

    // Eleven files, 21 MB in all, or one bad file: refused, and no record is created.
    let eleven: Vec<Value> = (0..11).map(|i| file(&format!("{i}.jpg"), 100)).collect();
    let too_big: Vec<Value> = (0..5)
        .map(|i| file(&format!("{i}.jpg"), 4_400_000))
        .collect();
    let one_bad = vec![
        file("ok.jpg", 100),
        json!({"filename": "x.svg", "contentType": "image/svg+xml", "size": 10}),
    ];
    for (files, status, code) in [
        (eleven, 400, "too_many_files"),
        (too_big, 413, "batch_too_large"),
        (one_bad, 415, "unsupported_type"),
        (vec![], 400, "invalid_request"),
    ] {
        let r = t.presign(Some(&alice), &json!({ "files": files })).await?;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (status, Some(code)),
            "{}",
            r.body
        );
    }
    assert_eq!(t.record_count().await?, 2);
    Ok(())
}

#[tokio::test]
async fn a_form_post_to_a_presigned_policy_is_processed() -> TestResult {
    let t = spawn_app(&[]).await?;
    let alice = token("alice");
    let photo = corpus("Landscape_1.jpg")?;
    let r = t
        .presign(
            Some(&alice),
            &json!({"filename": "Landscape 1.jpg", "contentType": "image/jpeg", "size": photo.len(), "method": "POST"}),
        )
        .await?;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["method"], "POST");
    let id = r.body["mediaId"].as_str().ok_or("no mediaId")?;
    let fields = r.body["fields"].as_object().ok_or("no fields")?;
    for f in [
        "key",
        "Content-Type",
        "policy",
        "x-amz-algorithm",
        "x-amz-credential",
        "x-amz-date",
        "x-amz-signature",
    ] {
        assert!(fields.contains_key(f), "no {f} in {fields:?}");
    }
    // A plain multipart form, the fields first and the file last, as a browser's FormData sends it.
    let mut form = reqwest::multipart::Form::new();
    for (k, v) in fields {
        form = form.text(k.clone(), v.as_str().unwrap_or_default().to_owned());
    }
    form = form.part(
        "file",
        reqwest::multipart::Part::bytes(photo).file_name("Landscape 1.jpg"),
    );
    let url = r.body["url"].as_str().ok_or("no url")?;
    let status = t.http.post(url).multipart(form).send().await?.status();
    assert!(status.is_success(), "POST: {status}");
    let media = t.wait_processed(&alice, id).await?;
    assert_eq!(media["status"], "ready", "{media}");
    assert_eq!(media["metadata"]["width"], 1800);
    Ok(())
}

#[tokio::test]
async fn a_browsers_preflight_of_a_presigned_put_passes_on_the_local_stack() -> TestResult {
    let t = spawn_app(&[]).await?;
    let alice = token("alice");
    let r = t
        .presign(
            Some(&alice),
            &json!({"filename": "a.jpg", "contentType": "image/jpeg", "size": 1000}),
        )
        .await?;
    let url = r.body["url"].as_str().ok_or("no url")?;
    // What a browser sends before a cross-origin PUT with a Content-Type header.
    let preflight = |origin: &'static str| {
        t.http
            .request(reqwest::Method::OPTIONS, url)
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "PUT")
            .header("Access-Control-Request-Headers", "content-type")
            .send()
    };
    let resp = preflight("http://app.example.com").await?;
    assert_eq!(resp.status(), 200);
    let allow = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    assert!(
        ["*", "http://app.example.com"].contains(&allow("access-control-allow-origin").as_str()),
        "{:?}",
        resp.headers()
    );
    assert!(
        allow("access-control-allow-methods").contains("put"),
        "{:?}",
        resp.headers()
    );

    // moto answers preflights whatever the bucket's rules say, so the rules themselves are
    // compared with template.yaml's: the local bucket must behave as the deployed one.
    let cors = t
        .app
        .stack
        .clients
        .s3
        .get_bucket_cors()
        .bucket(&t.app.service.config().bucket)
        .send()
        .await?;
    let rule = cors
        .cors_rules()
        .first()
        .ok_or("no CORS rule on the local bucket")?;
    let template: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml"),
    )?)?;
    let deployed =
        &template["Resources"]["MediaBucket"]["Properties"]["CorsConfiguration"]["CorsRules"][0];
    let list = |v: &serde_yaml::Value| -> Vec<String> {
        v.as_sequence()
            .map(|s| {
                s.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        rule.allowed_methods(),
        list(&deployed["AllowedMethods"]).as_slice()
    );
    assert_eq!(
        rule.allowed_headers(),
        list(&deployed["AllowedHeaders"]).as_slice()
    );
    assert_eq!(
        rule.expose_headers(),
        list(&deployed["ExposedHeaders"]).as_slice()
    );
    assert_eq!(
        rule.max_age_seconds(),
        deployed["MaxAge"].as_i64().map(|m| m as i32)
    );
    assert_eq!(rule.allowed_origins(), ["*"]);
    Ok(())
}

#[tokio::test]
async fn the_local_api_serves_its_openapi_document() -> TestResult {
    let t = spawn_app(&[]).await?;
    let resp = t
        .http
        .get(format!("{}/openapi.json", t.app.url()))
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    let doc: Value = resp.json().await?;
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/v1/upload/presign"]["post"].is_object());
    Ok(())
}
