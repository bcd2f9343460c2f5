//! Resumable uploads in parts through Companion's S3 routes (`/api/v1/upload/s3/multipart`): the
//! parts go straight to S3 with presigned URLs, the server checks the size at complete, and the
//! completed object is processed like any upload.

use std::time::Duration;

use e2e::{TestApp, TestResult, spawn_app, token};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const MIB: usize = 1024 * 1024;

/// `len` bytes of text (letters and newlines): a valid `text/plain` file of any size.
fn text(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            if i % 80 == 79 {
                b'\n'
            } else {
                b'a' + ((i / 7 + usize::from(seed)) % 26) as u8
            }
        })
        .collect()
}

/// A call to a multipart route as `user`: status and JSON body.
async fn call(
    t: &TestApp,
    method: reqwest::Method,
    user: &str,
    path_and_query: &str,
    body: Option<Value>,
) -> TestResult<(u16, Value)> {
    let mut req = t
        .http
        .request(
            method,
            format!("{}/api/v1/upload/s3{path_and_query}", t.app.url()),
        )
        .bearer_auth(token(user));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

/// An upload in progress, as the start answered it.
struct Upload {
    key: String,
    upload_id: String,
    media_id: String,
}

impl Upload {
    fn path(&self, rest: &str) -> String {
        let id = percent_encoding::utf8_percent_encode(
            &self.upload_id,
            percent_encoding::NON_ALPHANUMERIC,
        );
        let key =
            percent_encoding::utf8_percent_encode(&self.key, percent_encoding::NON_ALPHANUMERIC);
        format!("/multipart/{id}{rest}?key={key}")
    }
}

async fn start(t: &TestApp, user: &str, body: Value) -> TestResult<Upload> {
    let (status, reply) = call(t, reqwest::Method::POST, user, "/multipart", Some(body)).await?;
    assert_eq!(status, 200, "{reply}");
    Ok(Upload {
        key: reply["key"].as_str().ok_or("no key")?.to_owned(),
        upload_id: reply["uploadId"].as_str().ok_or("no uploadId")?.to_owned(),
        media_id: reply["mediaId"].as_str().ok_or("no mediaId")?.to_owned(),
    })
}

/// Signs part `number` and PUTs `bytes` to it: the part's ETag.
async fn put_part(
    t: &TestApp,
    user: &str,
    upload: &Upload,
    number: u32,
    bytes: &[u8],
) -> TestResult<String> {
    let (status, signed) = call(
        t,
        reqwest::Method::GET,
        user,
        &upload.path(&format!("/{number}")),
        None,
    )
    .await?;
    assert_eq!(status, 200, "{signed}");
    assert!(signed["expires"].as_u64().is_some_and(|e| e > 0));
    let url = signed["url"].as_str().ok_or("no url")?;
    let resp = t.http.put(url).body(bytes.to_vec()).send().await?;
    assert!(resp.status().is_success(), "part PUT: {}", resp.status());
    Ok(resp
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .ok_or("no ETag")?
        .to_owned())
}

/// `POST .../complete` of `upload` as alice with these parts: status and body.
async fn complete(t: &TestApp, upload: &Upload, etags: &[String]) -> TestResult<(u16, Value)> {
    let path = upload.path("/complete");
    call(t, reqwest::Method::POST, "alice", &path, Some(parts(etags))).await
}

/// Fails unless S3 no longer knows the upload (aborted: its parts are gone).
async fn assert_aborted(t: &TestApp, upload: &Upload) {
    let listed = t
        .direct
        .s3
        .list_parts()
        .bucket(&t.app.service.config().bucket)
        .key(&upload.key)
        .upload_id(&upload.upload_id)
        .send()
        .await;
    assert!(listed.is_err(), "the upload was aborted");
}

fn parts(etags: &[String]) -> Value {
    json!({"parts": etags.iter().enumerate().map(|(i, e)| json!({"PartNumber": i + 1, "ETag": e})).collect::<Vec<_>>()})
}

#[tokio::test]
async fn a_file_uploaded_in_parts_resumes_completes_and_is_processed() -> TestResult {
    let t = spawn_app(&[]).await?;
    let file = text(11 * MIB + 12_345, 1);
    let upload = start(
        &t,
        "alice",
        json!({"filename": "notes.txt", "type": "text/plain",
               "metadata": {"name": "notes.txt", "type": "text/plain", "title": "Field notes"}}),
    )
    .await?;
    assert!(upload.key.starts_with("uploads/"), "{}", upload.key);
    assert!(!upload.key.contains("notes"), "the key is the server's own");

    // Two parts, then the upload is "interrupted": a resumed client lists what arrived.
    let chunks: Vec<&[u8]> = file.chunks(5 * MIB).collect();
    assert_eq!(chunks.len(), 3);
    let mut etags = Vec::new();
    for (i, chunk) in chunks.iter().take(2).enumerate() {
        etags.push(put_part(&t, "alice", &upload, i as u32 + 1, chunk).await?);
    }
    let (status, listed) = call(&t, reqwest::Method::GET, "alice", &upload.path(""), None).await?;
    assert_eq!(status, 200, "{listed}");
    let listed = listed.as_array().ok_or("not a list")?;
    assert_eq!(listed.len(), 2);
    for (i, p) in listed.iter().enumerate() {
        assert_eq!(p["PartNumber"], i + 1);
        assert_eq!(p["ETag"], etags[i].as_str());
        assert_eq!(p["Size"], 5 * MIB);
    }
    etags.push(put_part(&t, "alice", &upload, 3, chunks[2]).await?);

    let (status, done) = complete(&t, &upload, &etags).await?;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["key"], upload.key.as_str());
    assert_eq!(done["mediaId"], upload.media_id.as_str());
    assert!(done["bucket"].is_string());
    assert!(
        done["location"]
            .as_str()
            .is_some_and(|l| l.ends_with(&format!("/api/v1/upload/{}", upload.media_id))),
        "{done}"
    );
    // A complete repeated (its answer lost) answers the same.
    let (status, again) = complete(&t, &upload, &etags).await?;
    assert_eq!((status, &again), (200, &done));

    let media = t.wait_processed(&token("alice"), &upload.media_id).await?;
    assert_eq!(media["status"], "ready", "{media}");
    assert_eq!(media["kind"], "text");
    assert_eq!(media["title"], "Field notes");
    assert_eq!(media["size"], file.len());
    assert_eq!(media["metadata"]["size"], file.len());
    assert_eq!(
        media["metadata"]["sha256"],
        hex::encode(Sha256::digest(&file))
    );
    assert_eq!(t.stored_usage("alice").await?, (1, file.len() as i64));
    // Once processed, the upload routes no longer answer for it (but complete, which is done).
    let (status, _) = call(&t, reqwest::Method::GET, "alice", &upload.path(""), None).await?;
    assert_eq!(status, 404);
    let (status, _) = complete(&t, &upload, &etags).await?;
    assert_eq!(status, 200);
    Ok(())
}

#[tokio::test]
async fn an_upload_over_its_kinds_limit_is_refused_at_complete_and_leaves_no_object() -> TestResult
{
    let limit = 8 * MIB;
    let t = spawn_app(&[("MAX_DOCUMENT_SIZE", &limit.to_string())]).await?;
    // Declared over the limit: refused at the start.
    let (status, reply) = call(
        &t,
        reqwest::Method::POST,
        "alice",
        "/multipart",
        Some(json!({"filename": "a.txt", "type": "text/plain", "metadata": {"size": limit + 1}})),
    )
    .await?;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (413, Some("too_large"))
    );

    // Undeclared: the parts decide, at complete.
    let upload = start(
        &t,
        "alice",
        json!({"filename": "a.txt", "type": "text/plain"}),
    )
    .await?;
    assert_eq!(t.stored_usage("alice").await?, (1, 0));
    let etags = vec![
        put_part(&t, "alice", &upload, 1, &text(5 * MIB, 2)).await?,
        put_part(&t, "alice", &upload, 2, &text(4 * MIB, 3)).await?,
    ];
    // A third part could only make the file larger than 10 MiB: refused before it is sent.
    let (status, reply) = call(&t, reqwest::Method::GET, "alice", &upload.path("/3"), None).await?;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (413, Some("too_large"))
    );

    for _ in 0..2 {
        let (status, reply) = complete(&t, &upload, &etags).await?;
        assert_eq!(
            (status, reply["error"]["code"].as_str()),
            (413, Some("too_large")),
            "{reply}"
        );
    }
    let media = t.get(&token("alice"), &upload.media_id).await?;
    assert_eq!(media.body["status"], "rejected");
    assert_eq!(media.body["rejection"]["code"], "too_large");
    assert_eq!(t.object_keys().await?, Vec::<String>::new());
    assert_eq!(t.stored_usage("alice").await?, (0, 0));
    assert_aborted(&t, &upload).await;
    Ok(())
}

#[tokio::test]
async fn the_routes_answer_only_for_the_callers_own_pending_upload() -> TestResult {
    let t = spawn_app(&[]).await?;
    let upload = start(
        &t,
        "alice",
        json!({"filename": "a.txt", "type": "text/plain"}),
    )
    .await?;
    let etag = put_part(&t, "alice", &upload, 1, b"hello").await?;
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    let delete = reqwest::Method::DELETE;
    let other = Upload {
        key: upload
            .key
            .replace(&upload.media_id, "019aa7c1e2f37b8c9d0e1f2a3b4c5d6e"),
        upload_id: upload.upload_id.clone(),
        media_id: String::new(),
    };
    let wrong_id = Upload {
        key: upload.key.clone(),
        upload_id: "not-this-one".into(),
        media_id: String::new(),
    };
    let one = json!({"parts": [{"PartNumber": 1, "ETag": etag}]});
    // Another owner, another key, another upload id: 404 on every route.
    for (user, u) in [("bob", &upload), ("alice", &other), ("alice", &wrong_id)] {
        for (method, rest, body) in [
            (&get, "", None),
            (&get, "/1", None),
            (&post, "/complete", Some(one.clone())),
            (&delete, "", None),
        ] {
            let (status, reply) = call(&t, method.clone(), user, &u.path(rest), body).await?;
            assert_eq!(
                (status, reply["error"]["code"].as_str()),
                (404, Some("not_found")),
                "{user} {method} {rest}"
            );
        }
    }
    // Malformed: 400.
    for (method, path, body) in [
        (&get, upload.path("/0"), None),
        (&get, upload.path("/10001"), None),
        (&get, upload.path("/x"), None),
        (&get, format!("/multipart/{}/1", upload.upload_id), None),
        (&post, upload.path("/complete"), Some(json!({"parts": []}))),
        (
            &post,
            upload.path("/complete"),
            Some(
                json!({"parts": [{"PartNumber": 2, "ETag": etag}, {"PartNumber": 1, "ETag": etag}]}),
            ),
        ),
        (
            &post,
            upload.path("/complete"),
            Some(json!({"parts": [{"PartNumber": 1, "ETag": "\"0000\""}]})),
        ),
        (
            &post,
            upload.path("/complete"),
            Some(json!({"parts": "all"})),
        ),
        (
            &post,
            "/multipart".to_owned(),
            Some(json!({"filename": "a.txt"})),
        ),
        (
            &post,
            "/multipart".to_owned(),
            Some(json!({"filename": "a.txt", "type": "text/plain", "metadata": {"size": "lots"}})),
        ),
    ] {
        let (status, reply) = call(&t, method.clone(), "alice", &path, body).await?;
        assert_eq!(
            (status, reply["error"]["code"].as_str()),
            (400, Some("invalid_request")),
            "{method} {path}"
        );
    }
    let (status, reply) = call(
        &t,
        post.clone(),
        "alice",
        "/multipart",
        Some(json!({"filename": "a.exe", "type": "application/x-msdownload"})),
    )
    .await?;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (415, Some("unsupported_type"))
    );

    // Abort: S3 frees the parts, the media goes and its quota comes back; a repeat is the same.
    for _ in 0..2 {
        let (status, reply) = call(&t, delete.clone(), "alice", &upload.path(""), None).await?;
        assert_eq!((status, reply), (200, json!({})));
    }
    assert_eq!(t.get(&token("alice"), &upload.media_id).await?.status, 404);
    assert_eq!(t.stored_usage("alice").await?, (0, 0));
    let (status, _) = call(&t, get.clone(), "alice", &upload.path(""), None).await?;
    assert_eq!(status, 404);
    t.app.service.run_cleanup().await?;
    t.assert_nothing_stored().await?;
    Ok(())
}

#[tokio::test]
async fn cleanup_aborts_an_upload_never_completed() -> TestResult {
    let t = spawn_app(&[
        ("PRESIGN_EXPIRY_SECONDS", "1"),
        ("MULTIPART_PENDING_TTL_SECONDS", "1"),
    ])
    .await?;
    let upload = start(
        &t,
        "alice",
        json!({"filename": "a.txt", "type": "text/plain"}),
    )
    .await?;
    put_part(&t, "alice", &upload, 1, &text(5 * MIB, 4)).await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let summary = t.app.service.run_cleanup().await?;
    assert_eq!(summary.expired, 1, "{summary:?}");
    assert_aborted(&t, &upload).await;
    t.assert_nothing_stored().await?;
    assert_eq!(t.stored_usage("alice").await?, (0, 0));
    Ok(())
}

/// Each write of an upload in parts loses its answer once (after it took effect): the client is
/// told what happened, and the record, the usage and the objects end as they would without it.
#[tokio::test]
async fn each_write_of_an_upload_in_parts_can_lose_its_answer() -> TestResult {
    use e2e::fault_proxy::{Fault, Matcher, Service};
    let (t, proxy) = e2e::spawn_app_behind_proxy(&[]).await?;
    let s3 = |op| Matcher::op(Service::S3, op);
    let dynamo = |op| Matcher::op(Service::DynamoDb, op);
    let file = text(6 * MIB, 5);
    let completes = [
        ("start", s3("CreateMultipartUpload")),
        ("record", dynamo("TransactWriteItems")),
        ("settle", dynamo("TransactWriteItems").body("#z = :size")),
        ("complete", s3("CompleteMultipartUpload")),
    ];
    let mut total = 0;
    for (what, matcher) in completes {
        proxy.once(matcher, 0, Fault::LoseAnswer);
        let upload = start(
            &t,
            "alice",
            json!({"filename": "a.txt", "type": "text/plain"}),
        )
        .await?;
        let etags = vec![
            put_part(&t, "alice", &upload, 1, &file[..5 * MIB]).await?,
            put_part(&t, "alice", &upload, 2, &file[5 * MIB..]).await?,
        ];
        let (status, done) = complete(&t, &upload, &etags).await?;
        assert_eq!(status, 200, "{what}: {done}");
        assert!(proxy.rules_spent(), "{what}: the rule met its call");
        let media = t.wait_processed(&token("alice"), &upload.media_id).await?;
        assert_eq!(media["status"], "ready", "{what}: {media}");
        assert_eq!(media["size"], file.len(), "{what}");
        total += 1;
        assert_eq!(
            t.stored_usage("alice").await?,
            (total, total * file.len() as i64),
            "{what}: counted once"
        );
    }

    for (what, matcher) in [
        ("abort", s3("AbortMultipartUpload")),
        ("expire", dynamo("TransactWriteItems").body(":expired")),
    ] {
        proxy.once(matcher, 0, Fault::LoseAnswer);
        let upload = start(
            &t,
            "alice",
            json!({"filename": "a.txt", "type": "text/plain"}),
        )
        .await?;
        put_part(&t, "alice", &upload, 1, b"hello").await?;
        let (status, reply) =
            call(&t, reqwest::Method::DELETE, "alice", &upload.path(""), None).await?;
        assert_eq!((status, reply), (200, json!({})), "{what}");
        assert!(proxy.rules_spent(), "{what}: the rule met its call");
        assert_eq!(
            t.get(&token("alice"), &upload.media_id).await?.status,
            404,
            "{what}"
        );
        assert_eq!(
            t.stored_usage("alice").await?,
            (total, total * file.len() as i64),
            "{what}: given back once"
        );
    }
    t.app.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_params_route_gives_a_presigned_post_for_a_file_sent_whole() -> TestResult {
    let t = spawn_app(&[]).await?;
    let photo = e2e::corpus("Kodak_CX7530.jpg")?;
    let query = format!(
        "/params?filename=Kodak.jpg&type=image%2Fjpeg&metadata%5Bname%5D=Kodak.jpg&metadata%5Bsize%5D={}&metadata%5Balt%5D=A%20camera",
        photo.len()
    );
    let (status, params) = call(&t, reqwest::Method::GET, "alice", &query, None).await?;
    assert_eq!(status, 200, "{params}");
    assert_eq!(params["method"], "POST");
    assert!(params["expires"].as_u64().is_some_and(|e| e > 0));
    let mut form = reqwest::multipart::Form::new();
    for (k, v) in params["fields"].as_object().ok_or("no fields")? {
        form = form.text(k.clone(), v.as_str().unwrap_or_default().to_owned());
    }
    form = form.part(
        "file",
        reqwest::multipart::Part::bytes(photo).file_name("Kodak.jpg"),
    );
    let url = params["url"].as_str().ok_or("no url")?;
    let posted = t.http.post(url).multipart(form).send().await?.status();
    assert!(posted.is_success(), "POST: {posted}");
    let id = params["mediaId"].as_str().ok_or("no mediaId")?;
    let media = t.wait_processed(&token("alice"), id).await?;
    assert_eq!(media["status"], "ready", "{media}");
    assert_eq!(media["alt"], "A camera");

    // Without the size, the record cannot be made: a clear 400.
    let (status, reply) = call(
        &t,
        reqwest::Method::GET,
        "alice",
        "/params?filename=a.jpg&type=image%2Fjpeg",
        None,
    )
    .await?;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (400, Some("invalid_request"))
    );
    Ok(())
}

#[tokio::test]
async fn the_parts_are_listed_to_the_last_page() -> TestResult {
    let t = spawn_app(&[]).await?;
    let upload = start(
        &t,
        "alice",
        json!({"filename": "a.txt", "type": "text/plain"}),
    )
    .await?;
    // S3 lists at most 1000 parts a page: 1001 parts of one byte each (sent straight to the
    // emulator: only a complete checks part sizes) take two pages.
    let bucket = t.app.service.config().bucket.clone();
    for number in 1..=1001 {
        t.direct
            .s3
            .upload_part()
            .bucket(&bucket)
            .key(&upload.key)
            .upload_id(&upload.upload_id)
            .part_number(number)
            .body(vec![b'a'].into())
            .send()
            .await?;
    }
    let (status, listed) = call(&t, reqwest::Method::GET, "alice", &upload.path(""), None).await?;
    assert_eq!(status, 200, "{listed}");
    let numbers: Vec<u64> = listed
        .as_array()
        .ok_or("not a list")?
        .iter()
        .filter_map(|p| p["PartNumber"].as_u64())
        .collect();
    assert_eq!(numbers, (1..=1001).collect::<Vec<u64>>());
    Ok(())
}

#[tokio::test]
async fn a_video_uploaded_in_parts_is_read_by_ranges_and_served_from_its_copy() -> TestResult {
    let t = spawn_app(&[]).await?;
    // A real movie with 12 MiB of padding between its `ftyp` and the rest: the probe must skip it
    // (with ranged reads, as over a file of gigabytes) to find the `moov` box.
    let movie = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("av/mp4parse-white.mp4"),
    )?;
    let ftyp = u32::from_be_bytes(movie[..4].try_into()?) as usize;
    let pad = 12 * MIB;
    let mut file = movie[..ftyp].to_vec();
    file.extend_from_slice(&(pad as u32).to_be_bytes());
    file.extend_from_slice(b"free");
    file.resize(ftyp + pad, 0);
    file.extend_from_slice(&movie[ftyp..]);

    let upload = start(
        &t,
        "alice",
        json!({"filename": "white.mp4", "type": "video/mp4",
               "metadata": {"name": "white.mp4", "type": "video/mp4", "size": file.len()}}),
    )
    .await?;
    let mut etags = Vec::new();
    for (i, chunk) in file.chunks(5 * MIB).enumerate() {
        etags.push(put_part(&t, "alice", &upload, i as u32 + 1, chunk).await?);
    }
    let (status, done) = complete(&t, &upload, &etags).await?;
    assert_eq!(status, 200, "{done}");

    let media = t.wait_processed(&token("alice"), &upload.media_id).await?;
    assert_eq!(media["status"], "ready", "{media}");
    assert_eq!(media["kind"], "video");
    let meta = &media["metadata"];
    assert_eq!(
        (
            &meta["format"],
            &meta["width"],
            &meta["height"],
            &meta["videoCodec"]
        ),
        (&json!("mp4"), &json!(320), &json!(240), &json!("avc1")),
        "{meta}"
    );
    assert_eq!(meta["durationSeconds"], 10.0);
    assert_eq!(meta["frameRate"], 30.0);
    assert_eq!(meta["sha256"], hex::encode(Sha256::digest(&file)));
    let (status, served) = t
        .download(media["originalUrl"].as_str().ok_or("no original")?)
        .await?;
    assert_eq!(status, 200);
    assert!(
        served == file,
        "the served copy is the upload, byte for byte"
    );
    let keys = t.object_keys().await?;
    assert_eq!(
        keys,
        [format!("derivatives/{}/original.mp4", upload.media_id)],
        "the upload is gone; its copy serves"
    );
    Ok(())
}
