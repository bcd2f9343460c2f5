//! The presign contract, enforced by a server that checks it. The emulator accepts any upload, so
//! these tests run against `s3s-fs` (pinned 0.14.1, `make s3s-fs`), an S3 server on the local
//! filesystem that verifies SigV4 signatures, presigned expiry and POST policies. Every presigned
//! request comes from our own `S3ObjectStore`; every upload is a plain HTTP request, as a browser
//! sends it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e::TestResult;
use media_aws::{AwsClients, S3ObjectStore};
use media_core::domain::{ContentType, ObjectKey};
use media_core::ports::{ObjectStore, PresignedPost, PresignedRequest};
use media_provision::testkit::unique_name;

const ACCESS_KEY: &str = "AKEXAMPLELOCAL";
const SECRET_KEY: &str = "SKEXAMPLELOCALDUMMYSECRET";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A running s3s-fs, stopped when dropped.
struct S3sFs {
    child: Child,
    endpoint: String,
    root: PathBuf,
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn start() -> TestResult<S3sFs> {
    let bin = repo().join(".tools/bin/s3s-fs");
    if !bin.is_file() {
        return Err(format!("{} is missing: run `make s3s-fs`", bin.display()).into());
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let root = repo().join(".local").join(unique_name("s3s-fs"));
    std::fs::create_dir_all(&root)?;
    let child = Command::new(bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
        .arg(&root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let server = S3sFs {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
        root,
    };
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(20) {
            return Err("s3s-fs did not start within 20 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(server)
}

struct Fixture {
    _server: S3sFs,
    clients: AwsClients,
    store: S3ObjectStore,
    bucket: String,
}

async fn fixture() -> TestResult<Fixture> {
    let server = start()?;
    let clients = AwsClients::for_local_server(&server.endpoint, ACCESS_KEY, SECRET_KEY).await;
    let bucket = unique_name("enforce");
    clients.s3.create_bucket().bucket(&bucket).send().await?;
    let store = S3ObjectStore::new(&clients, &bucket);
    Ok(Fixture {
        _server: server,
        clients,
        store,
        bucket,
    })
}

impl Fixture {
    fn key(&self, name: &str) -> ObjectKey {
        ObjectKey::from_raw(format!("uploads/2026/11/22/{name}/original.jpg"))
    }

    /// PUTs `body` to a presigned URL with its headers, `content_type` replacing the signed one.
    async fn put(
        &self,
        presigned: &PresignedRequest,
        content_type: &str,
        body: Vec<u8>,
    ) -> TestResult<Answer> {
        let mut headers: Vec<(String, String)> = presigned
            .headers
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("content-type"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        headers.push(("Content-Type".into(), content_type.into()));
        send_raw("PUT", &presigned.url, &headers, body).await
    }

    /// Posts a multipart form: the policy's fields (with `changes`), then the file.
    async fn post(
        &self,
        post: &PresignedPost,
        changes: &[(&str, &str)],
        body: Vec<u8>,
    ) -> TestResult<Answer> {
        let boundary = format!("e2e-{}", unique_name("boundary"));
        let mut form = Vec::new();
        for (k, v) in &post.fields {
            let v = changes
                .iter()
                .find(|(ck, _)| ck == k)
                .map_or(v.as_str(), |(_, cv)| cv);
            form.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        form.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"photo.jpg\"\r\n\r\n"
            )
            .as_bytes(),
        );
        form.extend_from_slice(&body);
        form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let content_type = format!("multipart/form-data; boundary={boundary}");
        send_raw(
            "POST",
            &post.url,
            &[("Content-Type".into(), content_type)],
            form,
        )
        .await
    }

    async fn stored(&self, key: &ObjectKey) -> TestResult<Option<Vec<u8>>> {
        match self
            .clients
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
        {
            Ok(out) => Ok(Some(out.body.collect().await?.into_bytes().to_vec())),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// What a server answered to a raw request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// The status line it sent.
    Status(u16),
    /// It closed (or reset) the connection before any byte of an answer arrived.
    ClosedWithoutAnswer,
}

impl Answer {
    /// A refusal: a 4xx, or a connection the server closed on the request without answering.
    fn refused(self) -> bool {
        match self {
            Self::Status(s) => (400..500).contains(&s),
            Self::ClosedWithoutAnswer => true,
        }
    }

    fn accepted(self) -> bool {
        matches!(self, Self::Status(200..=299))
    }
}

/// Sends one HTTP/1.1 request over a plain TCP connection, writing the body while it reads the
/// answer. s3s-fs answers a refused upload as soon as it knows, then closes the connection while
/// the body may still be coming; an HTTP client that writes the whole body before it reads
/// reports that as a broken connection (hyper's `IncompleteMessage`) instead of the refusal. Here
/// the writer's error is ignored and whatever the server sent before closing is read.
async fn send_raw(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> TestResult<Answer> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").ok_or("not an http URL")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let stream = tokio::net::TcpStream::connect(authority).await?;
    let (mut reader, mut writer) = stream.into_split();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let write = tokio::spawn(async move {
        // A refusal may close the connection mid-body: the error is expected and ignored. The
        // write half is kept open (dropping it half-closes the connection, which a server may
        // take for the client going away) until the answer has been read.
        let _ = writer.write_all(head.as_bytes()).await;
        let _ = writer.write_all(&body).await;
        let _ = writer.flush().await;
        writer
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let writer = tokio::time::timeout(Duration::from_secs(5), write).await;
    read.map_err(|_| "no answer within 20 s")?;
    drop(writer);
    if answer.is_empty() {
        return Ok(Answer::ClosedWithoutAnswer);
    }
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {text:?}"))?;
    Ok(Answer::Status(status))
}

fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[tokio::test]
async fn a_presigned_put_accepts_exactly_the_declared_upload() -> TestResult {
    let f = fixture().await?;
    let ttl = Duration::from_secs(900);
    let good = body(1000);

    // One byte longer, another content type, a tampered signature: refused, nothing stored.
    let key = f.key("longer");
    let p = f
        .store
        .presign_put(&key, ContentType::Jpeg, 1000, None, ttl)
        .await?;
    let status = f.put(&p, "image/jpeg", body(1001)).await?;
    assert!(status.refused(), "one byte longer: {status:?}");
    let status = f.put(&p, "image/png", good.clone()).await?;
    assert!(status.refused(), "another type: {status:?}");
    let mut tampered = p.clone();
    let at = tampered
        .url
        .find("X-Amz-Signature=")
        .ok_or("no signature in the URL")?
        + "X-Amz-Signature=".len();
    let flipped = if &tampered.url[at..=at] == "0" {
        "1"
    } else {
        "0"
    };
    tampered.url.replace_range(at..=at, flipped);
    let status = f.put(&tampered, "image/jpeg", good.clone()).await?;
    assert!(status.refused(), "tampered signature: {status:?}");
    assert_eq!(f.stored(&key).await?, None);

    // The declared upload succeeds.
    let status = f.put(&p, "image/jpeg", good.clone()).await?;
    assert_eq!(status, Answer::Status(200));
    assert_eq!(f.stored(&key).await?, Some(good.clone()));

    // An expired URL is refused.
    let key = f.key("expired");
    let p = f
        .store
        .presign_put(&key, ContentType::Jpeg, 1000, None, Duration::from_secs(1))
        .await?;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let status = f.put(&p, "image/jpeg", good.clone()).await?;
    assert!(status.refused(), "expired: {status:?}");
    assert_eq!(f.stored(&key).await?, None);
    Ok(())
}

#[tokio::test]
async fn a_pinned_sha256_refuses_any_other_body_of_the_same_length() -> TestResult {
    use base64::Engine;
    use sha2::Digest;
    let f = fixture().await?;
    let good = body(2000);
    let digest = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&good));
    let key = f.key("sha");
    let p = f
        .store
        .presign_put(
            &key,
            ContentType::Jpeg,
            2000,
            Some(&digest),
            Duration::from_secs(900),
        )
        .await?;
    assert!(
        p.headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("x-amz-checksum-sha256")),
        "{:?}",
        p.headers
    );
    let mut other = good.clone();
    other[0] ^= 0xff;
    let status = f.put(&p, "image/jpeg", other).await?;
    assert!(status.refused(), "another body: {status:?}");
    // (s3s-fs 0.14.1 writes the body before it checks the checksum, so the refused body is left
    // in its store; S3 stores nothing on BadDigest. Only the refusal is the contract here.)
    let status = f.put(&p, "image/jpeg", good.clone()).await?;
    assert_eq!(status, Answer::Status(200));
    assert_eq!(f.stored(&key).await?, Some(good));
    Ok(())
}

#[tokio::test]
async fn a_presigned_post_accepts_only_its_key_type_and_size_range() -> TestResult {
    let f = fixture().await?;
    let ttl = Duration::from_secs(900);
    let key = f.key("post");
    let post = f
        .store
        .presign_post(&key, ContentType::Jpeg, 1000, ttl)
        .await?;
    assert!(
        post.url.ends_with(&format!("/{}/", f.bucket)),
        "{}",
        post.url
    );

    // Over the size range, another key, another content type, a tampered signature: refused.
    let status = f.post(&post, &[], body(1001)).await?;
    assert!(status.refused(), "over the range: {status:?}");
    let other = f.key("elsewhere");
    let status = f.post(&post, &[("key", other.as_str())], body(10)).await?;
    assert!(status.refused(), "another key: {status:?}");
    assert_eq!(f.stored(&other).await?, None);
    let status = f
        .post(&post, &[("Content-Type", "text/html")], body(10))
        .await?;
    assert!(status.refused(), "another type: {status:?}");
    let sig = post.fields.get("x-amz-signature").ok_or("no signature")?;
    let tampered = format!(
        "{}{}",
        if sig.starts_with('0') { "1" } else { "0" },
        &sig[1..]
    );
    let status = f
        .post(&post, &[("x-amz-signature", &tampered)], body(10))
        .await?;
    assert!(status.refused(), "tampered: {status:?}");
    assert_eq!(f.stored(&key).await?, None);

    // Within the range, as given: stored.
    let good = body(1000);
    let status = f.post(&post, &[], good.clone()).await?;
    assert!(status.accepted(), "the good upload: {status:?}");
    assert_eq!(f.stored(&key).await?, Some(good));

    // An expired policy is refused.
    let key = f.key("post-expired");
    let post = f
        .store
        .presign_post(&key, ContentType::Jpeg, 1000, Duration::from_secs(1))
        .await?;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let status = f.post(&post, &[], body(10)).await?;
    assert!(status.refused(), "expired: {status:?}");
    assert_eq!(f.stored(&key).await?, None);
    Ok(())
}
