//! Video and audio through the whole stack: presigned, uploaded, read by the process function by
//! ranges (never whole), served as uploaded from a copy made inside S3; or refused and deleted.
//! And the S3 adapter's large-object reads and copies against the emulator.

use std::collections::BTreeMap;

use e2e::{TestApp, TestResult, corpus, spawn_app, token};
use media_aws::S3ObjectStore;
use media_core::domain::ObjectKey;
use media_core::ports::{ObjectReader, ObjectStore};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const MIB: usize = 1024 * 1024;

/// A file of the video and audio corpus (`tests/av`, see its MANIFEST.tsv).
fn av(name: &str) -> TestResult<Vec<u8>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("av")
        .join(name);
    Ok(std::fs::read(path)?)
}

/// A manifest row: file, declared type, expected outcome, checks.
type Row = (String, String, String, BTreeMap<String, String>);

/// The manifest's rows.
fn manifest() -> TestResult<Vec<Row>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("av/MANIFEST.tsv");
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            let checks = cols
                .get(3)
                .unwrap_or(&"")
                .split(';')
                .filter_map(|c| c.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            (
                cols[0].to_owned(),
                cols[1].to_owned(),
                cols[2].to_owned(),
                checks,
            )
        })
        .collect())
}

/// Uploads `bytes` as `content_type` and waits for the outcome.
async fn process(
    t: &TestApp,
    user: &str,
    name: &str,
    content_type: &str,
    bytes: &[u8],
) -> TestResult<Value> {
    let presigned = t.upload(&token(user), name, content_type, bytes).await?;
    let id = presigned["mediaId"].as_str().ok_or("no id")?;
    t.wait_processed(&token(user), id).await
}

/// Holds a ready record's metadata to the manifest's checks.
fn check(file: &str, meta: &Value, checks: &BTreeMap<String, String>) {
    let field = |k: &str| match k {
        "duration" => "durationSeconds",
        "width" => "width",
        "height" => "height",
        "video" => "videoCodec",
        "audio" => "audioCodec",
        "fps" => "frameRate",
        "rate" => "sampleRate",
        "channels" => "channels",
        _ => "",
    };
    for (k, want) in checks {
        let name = field(k);
        if name.is_empty() {
            continue;
        }
        let got = &meta[name];
        match (got.as_f64(), want.parse::<f64>()) {
            (Some(g), Ok(w)) => assert!((g - w).abs() < 0.01, "{file}: {name} {g} != {w}"),
            _ => assert_eq!(got.as_str(), Some(want.as_str()), "{file}: {name}"),
        }
    }
}

#[tokio::test]
async fn every_video_and_audio_file_of_the_corpus_ends_as_its_manifest_says() -> TestResult {
    let t = spawn_app(&[]).await?;
    let rows = manifest()?;
    // All at once: each is a presign, a PUT and a wait.
    let outcomes = futures_util::future::try_join_all(rows.iter().map(|(file, declared, _, _)| {
        let t = &t;
        async move {
            let bytes = av(file)?;
            let media = process(t, "alice", file, declared, &bytes).await?;
            TestResult::Ok((media, bytes))
        }
    }))
    .await?;
    for ((file, declared, expect, checks), (media, bytes)) in rows.iter().zip(outcomes) {
        if expect == "accept" {
            assert_eq!(media["status"], "ready", "{file}: {media}");
            let kind = if declared.starts_with("video/") {
                "video"
            } else {
                "audio"
            };
            assert_eq!(media["kind"], kind, "{file}");
            assert_eq!(media["thumbnails"], json!({}), "{file}: no poster frames");
            let meta = &media["metadata"];
            assert_eq!(meta["size"], bytes.len(), "{file}");
            assert_eq!(
                meta["sha256"],
                hex::encode(Sha256::digest(&bytes)),
                "{file}"
            );
            assert!(meta["bitRate"].as_u64().is_some(), "{file}: {meta}");
            check(file, meta, checks);
            // Served exactly as uploaded, with its type.
            let resp = reqwest::get(media["originalUrl"].as_str().ok_or("no original")?).await?;
            assert_eq!(resp.headers()["content-type"], declared.as_str(), "{file}");
            assert_eq!(resp.bytes().await?.to_vec(), bytes, "{file}");
        } else {
            assert_eq!(media["status"], "rejected", "{file}: {media}");
            assert_eq!(
                media["rejection"]["code"],
                expect.as_str(),
                "{file}: {media}"
            );
        }
    }
    // Nothing is left under the upload prefix; only the served copies remain.
    let keys = t.object_keys().await?;
    assert!(keys.iter().all(|k| !k.starts_with("uploads/")), "{keys:?}");
    let accepted = rows.iter().filter(|r| r.2 == "accept").count();
    assert_eq!(keys.len(), accepted, "{keys:?}");

    let alice = token("alice");
    let videos = t.list_all(&alice, "kind=video&status=ready").await?;
    let audio = t.list_all(&alice, "kind=audio&status=ready").await?;
    let count = |prefix: &str| {
        rows.iter()
            .filter(|r| r.2 == "accept" && r.1.starts_with(prefix))
            .count()
    };
    assert_eq!(
        (videos.len(), audio.len()),
        (count("video/"), count("audio/"))
    );
    Ok(())
}

#[tokio::test]
async fn a_file_that_is_not_what_it_claims_is_refused_with_its_reason() -> TestResult {
    let t = spawn_app(&[]).await?;
    let mp3 = av("rodio-RL.mp3")?;
    let webm = av("libwebm-stereo-left-right.webm")?;
    let m4a = av("rodio-RL.m4a")?;
    let mp4 = av("mp4parse-white.mp4")?;
    let jpeg = corpus("Kodak_CX7530.jpg")?;
    for (name, declared, bytes, code) in [
        ("photo.mp4", "video/mp4", &jpeg, "not_video_or_audio"),
        ("song.ogg", "audio/ogg", &mp3, "type_mismatch"),
        ("clip.mp4", "video/mp4", &webm, "type_mismatch"),
        // The ISO family: a movie is not audio, and sound alone is not a movie.
        ("movie.m4a", "audio/mp4", &mp4, "type_mismatch"),
        ("sound.mp4", "video/mp4", &m4a, "type_mismatch"),
    ] {
        let media = process(&t, "bob", name, declared, bytes).await?;
        assert_eq!(media["status"], "rejected", "{name}: {media}");
        assert_eq!(media["rejection"]["code"], code, "{name}: {media}");
    }
    // A type the client names another way is the same type.
    let media = process(&t, "bob", "RL.m4a", "audio/x-m4a", &m4a).await?;
    assert_eq!(
        (&media["status"], &media["contentType"]),
        (&json!("ready"), &json!("audio/mp4"))
    );
    // The refused files are gone; the one accepted is served from its copy.
    let id = media["id"].as_str().ok_or("no id")?;
    assert_eq!(
        t.object_keys().await?,
        [format!("derivatives/{id}/original.m4a")]
    );
    Ok(())
}

#[tokio::test]
async fn over_five_gib_a_video_must_upload_in_parts_and_over_its_limit_not_at_all() -> TestResult {
    let t = spawn_app(&[
        ("MAX_VIDEO_SIZE", "10737418240"),
        ("MAX_AUDIO_SIZE", "1000"),
    ])
    .await?;
    let alice = token("alice");
    let presign = |name: &str, content_type: &str, size: u64| json!({"filename": name, "contentType": content_type, "size": size});
    let big = t
        .presign(Some(&alice), &presign("a.mp4", "video/mp4", 6 << 30))
        .await?;
    assert_eq!(big.status, 413, "{:?}", big.body);
    assert_eq!(big.body["error"]["code"], "too_large");
    let message = big.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("/api/v1/upload/s3/multipart"), "{message}");
    let ok = t
        .presign(Some(&alice), &presign("a.mp4", "video/mp4", 5 << 30))
        .await?;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    let over = t
        .presign(Some(&alice), &presign("a.mp3", "audio/mpeg", 1001))
        .await?;
    assert_eq!(
        (over.status, &over.body["error"]["code"]),
        (413, &json!("too_large"))
    );
    Ok(())
}

/// The adapter on a bucket of the emulator, copying in parts above `copy_limit`.
fn store(t: &TestApp, copy_limit: u64) -> S3ObjectStore {
    S3ObjectStore::new(&t.direct, t.app.service.config().bucket.clone())
        .with_single_copy_limit(copy_limit)
}

async fn put(t: &TestApp, key: &str, bytes: Vec<u8>) -> TestResult<String> {
    let out = t
        .direct
        .s3
        .put_object()
        .bucket(&t.app.service.config().bucket)
        .key(key)
        .body(bytes.into())
        .send()
        .await?;
    Ok(out.e_tag().ok_or("no ETag")?.to_owned())
}

#[tokio::test]
async fn large_objects_are_read_by_ranges_hashed_and_copied_only_as_the_version_first_seen()
-> TestResult {
    let t = spawn_app(&[]).await?;
    let s3 = store(&t, 5 * MIB as u64);
    let bytes: Vec<u8> = (0..(21 * MIB + 7)).map(|i| (i * 31 % 251) as u8).collect();
    let key = ObjectKey::from_raw("uploads/large.bin");
    let etag = put(&t, key.as_str(), bytes.clone()).await?;

    let stat = s3.stat(&key).await?.ok_or("no object")?;
    assert_eq!(
        (stat.size, stat.etag.as_str()),
        (bytes.len() as u64, etag.as_str())
    );
    let range = s3.read_range(&key, &etag, 10 * MIB as u64, 100).await?;
    assert_eq!(range.as_deref(), Some(&bytes[10 * MIB..10 * MIB + 100]));
    let tail = s3
        .read_range(&key, &etag, bytes.len() as u64 - 3, 100)
        .await?;
    assert_eq!(tail.as_deref(), Some(&bytes[bytes.len() - 3..]));
    let past = s3
        .read_range(&key, &etag, bytes.len() as u64 + 5, 10)
        .await?;
    assert_eq!(past.as_deref(), Some(&[][..]));
    let digest = s3.digest(&key, &etag, stat.size).await?.ok_or("changed")?;
    assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(&bytes)));
    // Copied to a scratch file and mapped, hashed on the way (large documents).
    let spooled = s3.spool(&key, &etag, stat.size).await?.ok_or("changed")?;
    assert_eq!(spooled.sha256, digest);
    assert!((*spooled.bytes).as_ref() == bytes.as_slice());
    drop(spooled);

    // Copied in parts (5 MiB here; 1 GiB parts over 5 GiB in production), byte for byte.
    let to = ObjectKey::from_raw("derivatives/large/original.mp4");
    assert!(s3.copy(&key, &etag, stat.size, &to, "video/mp4").await?);
    let copy = t
        .direct
        .s3
        .get_object()
        .bucket(&t.app.service.config().bucket)
        .key(to.as_str())
        .send()
        .await?;
    assert_eq!(copy.content_type(), Some("video/mp4"));
    assert_eq!(copy.body.collect().await?.into_bytes().to_vec(), bytes);
    // And whole below the limit.
    let small = ObjectKey::from_raw("uploads/small.bin");
    let small_etag = put(&t, small.as_str(), bytes[..MIB].to_vec()).await?;
    let to_small = ObjectKey::from_raw("derivatives/small/original.mp4");
    assert!(
        s3.copy(&small, &small_etag, MIB as u64, &to_small, "video/mp4")
            .await?
    );

    // Replaced after the HEAD: every read and copy of the old version refuses.
    put(&t, key.as_str(), b"other bytes".to_vec()).await?;
    assert_eq!(s3.read_range(&key, &etag, 0, 10).await?, None);
    assert_eq!(s3.digest(&key, &etag, stat.size).await?, None);
    assert!(s3.spool(&key, &etag, stat.size).await?.is_none());
    let gone = ObjectKey::from_raw("derivatives/gone/original.mp4");
    assert!(!s3.copy(&key, &etag, stat.size, &gone, "video/mp4").await?);
    assert!(
        !s3.copy(&small, "\"0123\"", MIB as u64, &gone, "video/mp4")
            .await?
    );
    assert_eq!(s3.stat(&gone).await?, None, "a refused copy writes nothing");
    // Deleted: likewise.
    s3.delete(&key).await?;
    assert_eq!(s3.stat(&key).await?, None);
    assert_eq!(s3.read_range(&key, &etag, 0, 10).await?, None);
    assert!(!s3.copy(&key, &etag, stat.size, &gone, "video/mp4").await?);
    Ok(())
}
