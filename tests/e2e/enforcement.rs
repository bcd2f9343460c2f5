//! The presign contract, enforced by a server that checks it. The emulator accepts any upload, so
//! these tests run against `s3s-fs` (pinned 0.14.1, `make s3s-fs`), an S3 server on the local
//! filesystem that verifies SigV4 signatures, presigned expiry and POST policies. Every presigned
//! request comes from our own `S3ObjectStore`; every upload is a plain HTTP request, as a browser
//! sends it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e::TestResult;
use media_core::aws::{AwsClients, S3ObjectStore};
use media_core::domain::{ContentType, ObjectKey};
use media_core::ports::{ObjectStore, PresignedPost, PresignedRequest};
use media_core::provision::testkit::unique_name;

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
    http: reqwest::Client,
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
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()?,
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
    ) -> TestResult<u16> {
        let mut req = self.http.put(&presigned.url);
        for (k, v) in &presigned.headers {
            if !k.eq_ignore_ascii_case("content-type") {
                req = req.header(k, v);
            }
        }
        Ok(req
            .header("content-type", content_type)
            .body(body)
            .send()
            .await?
            .status()
            .as_u16())
    }

    /// Posts a multipart form: the policy's fields (with `changes`), then the file.
    async fn post(
        &self,
        post: &PresignedPost,
        changes: &[(&str, &str)],
        body: Vec<u8>,
    ) -> TestResult<u16> {
        let mut form = reqwest::multipart::Form::new();
        for (k, v) in &post.fields {
            let v = changes
                .iter()
                .find(|(ck, _)| ck == k)
                .map_or(v.as_str(), |(_, cv)| cv);
            form = form.text(k.clone(), v.to_owned());
        }
        form = form.part(
            "file",
            reqwest::multipart::Part::bytes(body).file_name("photo.jpg"),
        );
        Ok(self
            .http
            .post(&post.url)
            .multipart(form)
            .send()
            .await?
            .status()
            .as_u16())
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
    assert!((400..500).contains(&status), "one byte longer: {status}");
    let status = f.put(&p, "image/png", good.clone()).await?;
    assert!((400..500).contains(&status), "another type: {status}");
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
    assert!((400..500).contains(&status), "tampered signature: {status}");
    assert_eq!(f.stored(&key).await?, None);

    // The declared upload succeeds.
    let status = f.put(&p, "image/jpeg", good.clone()).await?;
    assert_eq!(status, 200);
    assert_eq!(f.stored(&key).await?, Some(good.clone()));

    // An expired URL is refused.
    let key = f.key("expired");
    let p = f
        .store
        .presign_put(&key, ContentType::Jpeg, 1000, None, Duration::from_secs(1))
        .await?;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let status = f.put(&p, "image/jpeg", good.clone()).await?;
    assert!((400..500).contains(&status), "expired: {status}");
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
    assert!((400..500).contains(&status), "another body: {status}");
    // (s3s-fs 0.14.1 writes the body before it checks the checksum, so the refused body is left
    // in its store; S3 stores nothing on BadDigest. Only the refusal is the contract here.)
    let status = f.put(&p, "image/jpeg", good.clone()).await?;
    assert_eq!(status, 200);
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
    assert!((400..500).contains(&status), "over the range: {status}");
    let other = f.key("elsewhere");
    let status = f.post(&post, &[("key", other.as_str())], body(10)).await?;
    assert!((400..500).contains(&status), "another key: {status}");
    assert_eq!(f.stored(&other).await?, None);
    let status = f
        .post(&post, &[("Content-Type", "text/html")], body(10))
        .await?;
    assert!((400..500).contains(&status), "another type: {status}");
    let sig = post.fields.get("x-amz-signature").ok_or("no signature")?;
    let tampered = format!(
        "{}{}",
        if sig.starts_with('0') { "1" } else { "0" },
        &sig[1..]
    );
    let status = f
        .post(&post, &[("x-amz-signature", &tampered)], body(10))
        .await?;
    assert!((400..500).contains(&status), "tampered: {status}");
    assert_eq!(f.stored(&key).await?, None);

    // Within the range, as given: stored.
    let good = body(1000);
    let status = f.post(&post, &[], good.clone()).await?;
    assert!((200..300).contains(&status), "the good upload: {status}");
    assert_eq!(f.stored(&key).await?, Some(good));

    // An expired policy is refused.
    let key = f.key("post-expired");
    let post = f
        .store
        .presign_post(&key, ContentType::Jpeg, 1000, Duration::from_secs(1))
        .await?;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let status = f.post(&post, &[], body(10)).await?;
    assert!((400..500).contains(&status), "expired: {status}");
    assert_eq!(f.stored(&key).await?, None);
    Ok(())
}
