//! `POST /api/v1/upload`: files sent through the API as multipart/form-data become pending media
//! exactly as presigned uploads do, and are processed by the same S3 event.

use e2e::{TestApp, TestResult, corpus, spawn_app, token};
use serde_json::{Value, json};

const BOUNDARY: &str = "----e2e-boundary-7MA4YWxkTrZu0gW";

/// One part: name, filename, content type, bytes.
type Part<'a> = (&'a str, Option<&'a str>, Option<&'a str>, &'a [u8]);

/// One refused request: caller, content type, body, status, code.
type Refused<'a> = (Option<&'a str>, String, Vec<u8>, u16, &'a str);

/// A multipart/form-data body.
fn multipart(parts: &[Part<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, filename, content_type, bytes) in parts {
        body.extend(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"").bytes(),
        );
        if let Some(f) = filename {
            body.extend(format!("; filename=\"{f}\"").bytes());
        }
        body.extend(b"\r\n");
        if let Some(t) = content_type {
            body.extend(format!("Content-Type: {t}\r\n").bytes());
        }
        body.extend(b"\r\n");
        body.extend(*bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{BOUNDARY}--\r\n").bytes());
    body
}

async fn post(
    t: &TestApp,
    user: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> TestResult<(u16, Value)> {
    let mut req = t
        .http
        .post(format!("{}/api/v1/upload", t.app.url()))
        .header("content-type", content_type)
        .body(body);
    if let Some(u) = user {
        req = req.bearer_auth(token(u));
    }
    let resp = req.send().await?;
    Ok((
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    ))
}

fn form() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

#[tokio::test]
async fn files_sent_through_the_api_are_stored_and_processed_like_presigned_ones() -> TestResult {
    let t = spawn_app(&[]).await?;
    let pdf = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("documents/pypdf-crazyones.pdf"),
    )?;
    let jpeg = corpus("Kodak_CX7530.jpg")?;
    let body = multipart(&[
        ("files", Some("manual.pdf"), Some("application/pdf"), &pdf),
        ("files", Some("photo.jpg"), Some("image/jpeg"), &jpeg),
        ("title", None, None, b"Product kit"),
        ("tags", None, None, br#"["kit", "v2"]"#),
    ]);
    let (status, reply) = post(&t, Some("alice"), &form(), body).await?;
    assert_eq!(status, 201, "{reply}");
    let files = reply["files"].as_array().ok_or("no files")?;
    assert_eq!(files.len(), 2);
    for (file, kind) in files.iter().zip(["document", "image"]) {
        assert_eq!(file["status"], "pending", "{file}");
        assert_eq!(file["kind"], kind);
        assert_eq!(file["title"], "Product kit");
        assert_eq!(file["tags"], json!(["kit", "v2"]));
        let id = file["id"].as_str().ok_or("no id")?;
        let done = t.wait_processed(&token("alice"), id).await?;
        assert_eq!(done["status"], "ready", "{done}");
    }
    assert_eq!(files[0]["filename"], "manual.pdf");
    assert_eq!(files[0]["size"], pdf.len());
    let usage = t.stored_usage("alice").await?;
    assert_eq!(usage, (2, (pdf.len() + jpeg.len()) as i64));
    Ok(())
}

#[tokio::test]
async fn server_uploads_are_refused_before_anything_is_stored() -> TestResult {
    let t = spawn_app(&[]).await?;
    let big = vec![b'a'; 4_300_000];
    let cases: Vec<Refused<'_>> = vec![
        (
            Some("alice"),
            form(),
            multipart(&[("files", Some("big.txt"), Some("text/plain"), &big)]),
            413,
            "too_large",
        ),
        (
            None,
            form(),
            multipart(&[("files", Some("a.txt"), Some("text/plain"), b"hi")]),
            401,
            "unauthorized",
        ),
        (
            Some("alice"),
            "application/json".into(),
            b"{}".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            Some("alice"),
            form(),
            multipart(&[("title", None, None, b"no files")]),
            400,
            "invalid_request",
        ),
        (
            Some("alice"),
            form(),
            multipart(&[("files", Some("a.svg"), Some("image/svg+xml"), b"<svg/>")]),
            415,
            "unsupported_type",
        ),
        (
            Some("alice"),
            form(),
            multipart(&[
                ("files", Some("a.txt"), Some("text/plain"), b""),
                ("files", Some("b.txt"), Some("text/plain"), b"x"),
            ]),
            400,
            "invalid_request",
        ),
        (
            Some("alice"),
            form(),
            multipart(&[
                ("files", Some("a.txt"), Some("text/plain"), b"x"),
                ("owner", None, None, b"bob"),
            ]),
            400,
            "invalid_request",
        ),
        (
            Some("alice"),
            form(),
            b"--not-the-boundary\r\n".to_vec(),
            400,
            "invalid_request",
        ),
    ];
    for (user, content_type, body, status, code) in cases {
        let (got, reply) = post(&t, user, &content_type, body).await?;
        assert_eq!(
            (got, &reply["error"]["code"]),
            (status, &json!(code)),
            "{reply}"
        );
        if code == "too_large" {
            let message = reply["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains("/api/v1/upload/presign"), "{message}");
        }
    }
    t.assert_nothing_stored().await?;
    Ok(())
}
