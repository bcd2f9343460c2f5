//! Documents, spreadsheets, archives and text through the whole stack: presigned, uploaded,
//! validated by the process function, served as uploaded (or refused and deleted).

use e2e::{TestApp, TestResult, spawn_app, token};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A file of the document corpus (`tests/documents`, see its MANIFEST.tsv).
fn document(name: &str) -> TestResult<Vec<u8>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("documents")
        .join(name);
    Ok(std::fs::read(path)?)
}

/// Uploads a corpus file as `content_type` and waits for the outcome.
async fn process(t: &TestApp, user: &str, file: &str, content_type: &str) -> TestResult<Value> {
    let presigned = t
        .upload(&token(user), file, content_type, &document(file)?)
        .await?;
    let id = presigned["mediaId"].as_str().ok_or("no id")?;
    t.wait_processed(&token(user), id).await
}

#[tokio::test]
async fn documents_are_validated_and_served_exactly_as_uploaded() -> TestResult {
    let t = spawn_app(&[]).await?;
    let alice = token("alice");

    let pdf = process(&t, "alice", "pdfjs-basicapi.pdf", "application/pdf").await?;
    assert_eq!(pdf["status"], "ready", "{pdf}");
    assert_eq!(pdf["kind"], "document");
    assert_eq!(pdf["metadata"]["pages"], 3);
    assert_eq!(pdf["metadata"]["title"], "Basic API Test");
    assert_eq!(pdf["metadata"]["author"], "Brendan Dahl");
    assert_eq!(pdf["metadata"]["encrypted"], false);
    assert_eq!(pdf["metadata"]["format"], "pdf");
    // The first page as thumbnails, WebP, fitted in their boxes (A4 portrait).
    for (name, height) in [("small", 150), ("medium", 400), ("large", 800)] {
        let url = pdf["thumbnails"][name].as_str().ok_or("no thumbnail")?;
        let (status, bytes) = t.download(url).await?;
        assert_eq!(status, 200);
        let img = image::load_from_memory(&bytes)?;
        assert_eq!(img.height(), height, "{name}");
        assert!(img.width() < img.height(), "{name} is portrait");
    }
    let url = pdf["originalUrl"].as_str().ok_or("no original")?;
    let resp = reqwest::get(url).await?;
    assert_eq!(resp.headers()["content-type"], "application/pdf");
    assert_eq!(
        resp.bytes().await?.to_vec(),
        document("pdfjs-basicapi.pdf")?
    );

    let csv = process(&t, "alice", "datasets-country-list.csv", "text/csv").await?;
    assert_eq!(csv["status"], "ready", "{csv}");
    assert_eq!(csv["kind"], "spreadsheet");
    assert_eq!(
        (
            &csv["metadata"]["rows"],
            &csv["metadata"]["columns"],
            &csv["metadata"]["formulaCells"]
        ),
        (&json!(250), &json!(2), &json!(0))
    );
    assert_eq!(csv["thumbnails"], json!({}));
    let resp = reqwest::get(csv["originalUrl"].as_str().ok_or("no original")?).await?;
    // Text is served with its charset, so a browser never guesses one.
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");

    let docx = process(
        &t,
        "alice",
        "poi-sample.docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    )
    .await?;
    assert_eq!(docx["status"], "ready", "{docx}");
    assert_eq!(docx["kind"], "document");
    assert_eq!(docx["metadata"]["entries"], 19);

    let text = process(&t, "alice", "pypdf-crazyones.txt", "text/plain").await?;
    assert_eq!(
        (&text["kind"], &text["metadata"]["lines"]),
        (&json!("text"), &json!(18))
    );

    // The kind filter of the library.
    let documents = t.list_all(&alice, "kind=document").await?;
    let ids = |v: &Value| v["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(documents, [ids(&docx), ids(&pdf)]);
    assert_eq!(t.list_all(&alice, "kind=spreadsheet").await?, [ids(&csv)]);
    Ok(())
}

#[tokio::test]
async fn hostile_documents_are_refused_with_their_reason_and_deleted() -> TestResult {
    let t = spawn_app(&[]).await?;
    let docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
    for (file, content_type, code) in [
        ("poi-SimpleMacro.docm", docx, "active_content"),
        ("pdfjs-js-authors.pdf", "application/pdf", "active_content"),
        (
            "patt-zip-slip-admin.zip",
            "application/zip",
            "unsafe_archive",
        ),
        (
            "gen-bomb-overlap.zip",
            "application/zip",
            "archive_too_large",
        ),
        (
            "gen-polyglot-pdf-zip.pdf",
            "application/pdf",
            "type_mismatch",
        ),
        ("patt-xss.html", "text/plain", "not_a_document"),
        ("gen-latin1.txt", "text/plain", "corrupt"),
    ] {
        let media = process(&t, "bob", file, content_type).await?;
        assert_eq!(media["status"], "rejected", "{file}: {media}");
        assert_eq!(media["rejection"]["code"], code, "{file}: {media}");
        assert!(media["originalUrl"].is_null(), "{file}");
    }
    // Nothing of a refused file is left to serve.
    assert_eq!(t.object_keys().await?, Vec::<String>::new());
    Ok(())
}

#[tokio::test]
async fn documents_have_their_own_size_limit_and_one_may_exceed_the_batch_total() -> TestResult {
    let t = spawn_app(&[]).await?;
    let alice = token("alice");
    let one = |name: &str, content_type: &str, size: u64| json!({"filename": name, "contentType": content_type, "size": size});
    // 30 MB: over MAX_TOTAL_SIZE (20 MiB) and MAX_FILE_SIZE, under MAX_DOCUMENT_SIZE.
    let r = t
        .presign(Some(&alice), &one("big.pdf", "application/pdf", 30_000_000))
        .await?;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = t
        .presign(
            Some(&alice),
            &json!({"files": [one("big.zip", "application/zip", 30_000_000)]}),
        )
        .await?;
    assert_eq!(r.status, 200, "a batch of one: {}", r.body);
    for (body, status, code) in [
        (one("big.jpg", "image/jpeg", 6_000_000), 413, "too_large"),
        (
            one("huge.pdf", "application/pdf", 52_428_801),
            413,
            "too_large",
        ),
        (
            json!({"files": [one("a.pdf", "application/pdf", 15_000_000), one("b.pdf", "application/pdf", 15_000_000)]}),
            413,
            "batch_too_large",
        ),
        (
            one("a.exe", "application/x-msdownload", 100),
            415,
            "unsupported_type",
        ),
    ] {
        let r = t.presign(Some(&alice), &body).await?;
        assert_eq!(
            (r.status, &r.body["error"]["code"]),
            (status, &json!(code)),
            "{body}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn with_a_cdn_a_documents_original_stays_private_and_only_its_thumbnails_use_it() -> TestResult
{
    let t = spawn_app(&[("CDN_BASE_URL", "https://cdn.example.com")]).await?;
    let pdf = process(&t, "alice", "pypdf-crazyones.pdf", "application/pdf").await?;
    assert_eq!(pdf["status"], "ready", "{pdf}");
    let original = pdf["originalUrl"].as_str().ok_or("no original")?;
    assert!(
        !original.starts_with("https://cdn.example.com/") && original.contains("X-Amz-Signature="),
        "{original}"
    );
    let thumbnail = pdf["thumbnails"]["small"].as_str().ok_or("no thumbnail")?;
    assert!(
        thumbnail.starts_with("https://cdn.example.com/derivatives/"),
        "{thumbnail}"
    );
    Ok(())
}

#[tokio::test]
async fn documents_over_the_in_memory_bound_are_read_through_a_scratch_file() -> TestResult {
    // 4,000 bytes in memory: every document below is larger (the CSV, the smallest, is 4,048
    // bytes), so each is copied to a scratch file and mapped (a fetch of one whole would be
    // refused at this bound).
    let t = spawn_app(&[("MAX_FILE_SIZE", "4000")]).await?;
    let docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

    let file = "pdfjs-tracemonkey.pdf";
    let pdf = process(&t, "alice", file, "application/pdf").await?;
    assert_eq!(pdf["status"], "ready", "{pdf}");
    assert_eq!(pdf["metadata"]["pages"], 14);
    assert_eq!(
        pdf["metadata"]["sha256"],
        hex::encode(Sha256::digest(document(file)?))
    );
    // The first page rendered from the mapping.
    let url = pdf["thumbnails"]["small"].as_str().ok_or("no thumbnail")?;
    let (status, bytes) = t.download(url).await?;
    assert_eq!(status, 200);
    assert_eq!(image::load_from_memory(&bytes)?.height(), 150);
    // The served copy, made inside S3, is the upload byte for byte.
    let resp = reqwest::get(pdf["originalUrl"].as_str().ok_or("no original")?).await?;
    assert_eq!(resp.headers()["content-type"], "application/pdf");
    assert_eq!(resp.bytes().await?.to_vec(), document(file)?);

    let archive = process(&t, "alice", "poi-sample.docx", docx).await?;
    assert_eq!(
        (&archive["status"], &archive["metadata"]["entries"]),
        (&json!("ready"), &json!(19)),
        "{archive}"
    );
    let csv = process(&t, "alice", "datasets-country-list.csv", "text/csv").await?;
    assert_eq!(
        (&csv["metadata"]["rows"], &csv["metadata"]["columns"]),
        (&json!(250), &json!(2)),
        "{csv}"
    );

    // The validators refuse from the mapping as they do from memory.
    for (file, content_type, code) in [
        ("pdfjs-js-authors.pdf", "application/pdf", "active_content"),
        ("poi-SimpleMacro.docm", docx, "active_content"),
        (
            "gen-bomb-overlap.zip",
            "application/zip",
            "archive_too_large",
        ),
        (
            "gen-polyglot-pdf-zip.pdf",
            "application/pdf",
            "type_mismatch",
        ),
    ] {
        let media = process(&t, "bob", file, content_type).await?;
        assert_eq!(media["rejection"]["code"], code, "{file}: {media}");
    }
    // A file larger than it was declared is refused for its size (it is not read whole).
    let bytes = document("pdfjs-tracemonkey.pdf")?;
    let presigned = t
        .presign(
            Some(&token("bob")),
            &json!({"filename": "small.pdf", "contentType": "application/pdf", "size": 1000}),
        )
        .await?;
    assert_eq!(presigned.status, 200, "{}", presigned.body);
    let id = presigned.body["mediaId"].as_str().ok_or("no id")?;
    let url = presigned.body["url"].as_str().ok_or("no url")?;
    let mut put = reqwest::Client::new().put(url).body(bytes);
    for (name, value) in presigned.body["headers"].as_object().ok_or("no headers")? {
        // The emulator enforces no signed length; the client must not be told a false one.
        if !name.eq_ignore_ascii_case("content-length") {
            put = put.header(name, value.as_str().unwrap_or_default());
        }
    }
    assert!(put.send().await?.status().is_success());
    let media = t.wait_processed(&token("bob"), id).await?;
    assert_eq!(media["rejection"]["code"], "size_mismatch", "{media}");
    // Nothing of bob's refused files is left.
    let left: Vec<String> = t.object_keys().await?;
    assert!(left.iter().all(|k| !k.starts_with("uploads/")), "{left:?}");
    Ok(())
}
