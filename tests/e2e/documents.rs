//! Documents, spreadsheets, archives and text through the whole stack: presigned, uploaded,
//! validated by the process function, served as uploaded (or refused and deleted).

use e2e::{TestApp, TestResult, spawn_app, token};
use serde_json::{Value, json};

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
