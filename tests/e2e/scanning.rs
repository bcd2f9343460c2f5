//! Malware scanning against a real clamd (Debian's, with the project's test signatures in
//! `tests/clamav/`): the EICAR test file, EICAR in a ZIP, EICAR after a valid JPEG's end, the
//! project's own pattern in a PDF stream and in a video scanned in windows: each `rejected` /
//! `malware`, no object left. A clamd that stops answering: the event is retried, and the upload
//! becomes `ready` once clamd answers again, never before. (Every other end-to-end test runs with
//! the suite's clamd too: clean files of every kind still become `ready`.)

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e::{TestApp, TestResult, corpus, spawn_app, token};
use media_core::ports::{Scanner, Verdict};
use media_core::scanning::ClamdSettings;
use serde_json::Value;

/// The project's own test pattern (`MediaUpload.Test-Pattern` in tests/clamav).
const PATTERN: &[u8] = b"MEDIA-UPLOAD-MALWARE-TEST-PATTERN-7F3A";

/// The EICAR test file, built here: written out whole in the repository, other tools would flag
/// the source file itself.
fn eicar() -> Vec<u8> {
    let mut e = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$".to_vec();
    for part in ["EICAR", "-STANDARD-ANTIVIRUS-TEST-FILE!", "$H+H*"] {
        e.extend_from_slice(part.as_bytes());
    }
    e
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// CRC-32 (IEEE), for the ZIP below.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (!(crc & 1)).wrapping_add(1));
        }
    }
    !crc
}

/// A ZIP holding one stored file.
fn zip_of(name: &str, data: &[u8]) -> Vec<u8> {
    let (crc, len, n) = (crc32(data), data.len() as u32, name.len() as u16);
    let mut z = Vec::new();
    z.extend_from_slice(b"PK\x03\x04\x14\0\0\0\0\0\0\0\0\0");
    for v in [crc, len, len] {
        z.extend_from_slice(&v.to_le_bytes());
    }
    z.extend_from_slice(&n.to_le_bytes());
    z.extend_from_slice(&0u16.to_le_bytes());
    z.extend_from_slice(name.as_bytes());
    z.extend_from_slice(data);
    let central = z.len() as u32;
    z.extend_from_slice(b"PK\x01\x02\x14\0\x14\0\0\0\0\0\0\0\0\0");
    for v in [crc, len, len] {
        z.extend_from_slice(&v.to_le_bytes());
    }
    z.extend_from_slice(&n.to_le_bytes());
    z.extend_from_slice(&[0; 12]);
    z.extend_from_slice(&0u32.to_le_bytes());
    z.extend_from_slice(name.as_bytes());
    let size = z.len() as u32 - central;
    z.extend_from_slice(b"PK\x05\x06\0\0\0\0\x01\0\x01\0");
    z.extend_from_slice(&size.to_le_bytes());
    z.extend_from_slice(&central.to_le_bytes());
    z.extend_from_slice(&0u16.to_le_bytes());
    z
}

/// A one-page PDF whose content stream shows `text`, with a correct cross-reference table.
fn pdf_showing(text: &[u8]) -> Vec<u8> {
    let mut content = b"BT /F1 12 Tf 72 712 Td (".to_vec();
    content.extend_from_slice(text);
    content.extend_from_slice(b") Tj ET");
    let mut objects: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_vec(),
    ];
    let mut stream = format!("<< /Length {} >>\nstream\n", content.len()).into_bytes();
    stream.extend_from_slice(&content);
    stream.extend_from_slice(b"\nendstream");
    objects.push(stream);
    objects.push(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec());
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        pdf.extend_from_slice(body);
        pdf.extend_from_slice(b"\nendobj\n");
    }
    let xref = pdf.len();
    pdf.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        pdf.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    pdf
}

/// A real movie (tests/av) with `fill` in a `free` box of `pad` bytes after its `ftyp`, at
/// `at` bytes into that box.
fn movie_with(fill: &[u8], pad: usize, at: usize) -> TestResult<Vec<u8>> {
    let movie = std::fs::read(repo().join("tests/av/mp4parse-white.mp4"))?;
    let ftyp = u32::from_be_bytes(movie[..4].try_into()?) as usize;
    let mut file = movie[..ftyp].to_vec();
    let mut free = vec![0u8; pad];
    free[..4].copy_from_slice(&(pad as u32).to_be_bytes());
    free[4..8].copy_from_slice(b"free");
    free[at..at + fill.len()].copy_from_slice(fill);
    file.extend_from_slice(&free);
    file.extend_from_slice(&movie[ftyp..]);
    Ok(file)
}

async fn outcome(t: &TestApp, name: &str, content_type: &str, bytes: &[u8]) -> TestResult<Value> {
    let presigned = t.upload(&token("alice"), name, content_type, bytes).await?;
    let id = presigned["mediaId"].as_str().ok_or("no id")?;
    t.wait_processed(&token("alice"), id).await
}

#[tokio::test]
async fn malware_in_any_kind_of_file_is_rejected_and_deleted() -> TestResult {
    let t = spawn_app(&[]).await?;
    let eicar = eicar();
    let mut polyglot = corpus("Kodak_CX7530.jpg")?;
    polyglot.extend_from_slice(&eicar);
    let infected: [(&str, &str, Vec<u8>, &str); 4] = [
        ("eicar.txt", "text/plain", eicar.clone(), "Eicar"),
        (
            "eicar.zip",
            "application/zip",
            zip_of("eicar.com", &eicar),
            "Eicar",
        ),
        ("photo.jpg", "image/jpeg", polyglot, "Eicar"),
        (
            "report.pdf",
            "application/pdf",
            pdf_showing(PATTERN),
            "MediaUpload.Test-Pattern",
        ),
    ];
    for (name, content_type, bytes, signature) in infected {
        let media = outcome(&t, name, content_type, &bytes).await?;
        assert_eq!(media["status"], "rejected", "{name}: {media}");
        assert_eq!(media["rejection"]["code"], "malware", "{name}: {media}");
        let message = media["rejection"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(signature), "{name}: {message}");
    }
    // Through the API (`POST /api/v1/upload`), the same stage.
    let form = reqwest::multipart::Form::new().part(
        "files",
        reqwest::multipart::Part::bytes(eicar.clone())
            .file_name("eicar.txt")
            .mime_str("text/plain")?,
    );
    let resp = t
        .http
        .post(format!("{}/api/v1/upload", t.app.url()))
        .bearer_auth(token("alice"))
        .multipart(form)
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 201);
    let created: Value = resp.json().await?;
    let id = created["files"][0]["id"].as_str().ok_or("no id")?;
    let media = t.wait_processed(&token("alice"), id).await?;
    assert_eq!(media["rejection"]["code"], "malware", "{media}");
    assert_eq!(
        t.object_keys().await?,
        Vec::<String>::new(),
        "no object is left"
    );
    // The same PDF without the pattern is a good PDF: the scan is what refused the other.
    let clean = outcome(&t, "report.pdf", "application/pdf", &pdf_showing(b"Hello")).await?;
    assert_eq!(clean["status"], "ready", "{clean}");
    assert_eq!(clean["metadata"]["scan"], "clean");
    Ok(())
}

#[tokio::test]
async fn a_video_larger_than_one_scan_is_scanned_in_overlapping_windows() -> TestResult {
    const MIB: usize = 1024 * 1024;
    // 4 MiB a scan (images and documents must then fit it too).
    let small = (4 * MIB).to_string();
    let t = spawn_app(&[
        ("CLAMAV_STREAM_MAX_BYTES", &small),
        ("MAX_FILE_SIZE", &small),
        ("MAX_DOCUMENT_SIZE", &small),
    ])
    .await?;
    // The pattern straddles the first window's end (4 MiB into the file): the second window,
    // which starts 1 MiB earlier, holds it whole. And one deep in the file's fourth window.
    for at in [4 * MIB - 60, 11 * MIB] {
        let movie = movie_with(PATTERN, 14 * MIB, at)?;
        let media = outcome(&t, "movie.mp4", "video/mp4", &movie).await?;
        assert_eq!(media["rejection"]["code"], "malware", "at {at}: {media}");
    }
    let clean = outcome(&t, "movie.mp4", "video/mp4", &movie_with(b"", 14 * MIB, 8)?).await?;
    assert_eq!(clean["status"], "ready", "{clean}");
    assert_eq!(clean["metadata"]["scan"], "clean");
    Ok(())
}

/// A clamd of this test's own (scripts/clamd.sh), on a free port.
struct OwnClamd {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl OwnClamd {
    fn start() -> TestResult<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = repo().join(".local").join(format!("clamd-e2e-{port}"));
        let child = Command::new(repo().join("scripts/clamd.sh"))
            .arg(port.to_string())
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(30) {
                return Err("clamd did not start within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Self { child, port, dir })
    }

    fn signal(&self, signal: nix::sys::signal::Signal) -> TestResult {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id())?);
        nix::sys::signal::kill(pid, signal)?;
        Ok(())
    }
}

impl Drop for OwnClamd {
    fn drop(&mut self) {
        let _ = self.signal(nix::sys::signal::Signal::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn while_clamd_does_not_answer_nothing_becomes_ready_and_the_event_is_retried() -> TestResult
{
    let clamd = OwnClamd::start()?;
    let address = format!("127.0.0.1:{}", clamd.port);
    let t = spawn_app(&[
        ("CLAMAV_ADDRESS", &address),
        ("CLAMAV_TIMEOUT_SECONDS", "2"),
    ])
    .await?;
    // Stopped: connections are accepted by the kernel, nothing answers; each scan times out.
    clamd.signal(nix::sys::signal::Signal::SIGSTOP)?;
    let photo = corpus("Kodak_CX7530.jpg")?;
    let presigned = t
        .upload(&token("alice"), "p.jpg", "image/jpeg", &photo)
        .await?;
    let id = presigned["mediaId"].as_str().ok_or("no id")?;
    // The first attempt times out after 2 s; the event comes back 5 s after it was taken.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let media = t.get(&token("alice"), id).await?;
    assert_eq!(
        media.body["status"], "pending",
        "never ready unscanned: {}",
        media.body
    );
    clamd.signal(nix::sys::signal::Signal::SIGCONT)?;
    let media = t.wait_processed(&token("alice"), id).await?;
    assert_eq!(media["status"], "ready", "{media}");
    assert_eq!(media["metadata"]["scan"], "clean");

    // The adapter alone: a clamd that is gone is an error, never a verdict.
    drop(clamd);
    let scanner = media_aws::ClamdScanner::new(ClamdSettings {
        address,
        timeout: Duration::from_secs(2),
        stream_max: 64 * 1024 * 1024,
    });
    assert!(scanner.start().await.is_err(), "connection refused");
    Ok(())
}

#[tokio::test]
async fn the_clamd_adapter_streams_to_the_limit_and_no_further() -> TestResult {
    let address = std::env::var("CLAMAV_ADDRESS")?;
    let scanner = media_aws::ClamdScanner::new(ClamdSettings {
        address,
        timeout: Duration::from_secs(30),
        stream_max: 4 * 1024 * 1024,
    });
    let verdict = |bytes: Vec<u8>| {
        let scanner = &scanner;
        async move {
            let mut session = scanner.start().await?;
            for chunk in bytes.chunks(1024 * 1024) {
                session.send(chunk).await?;
            }
            session.finish().await
        }
    };
    assert_eq!(verdict(vec![b'a'; 4 * 1024 * 1024]).await?, Verdict::Clean);
    let found = verdict(eicar()).await?;
    assert!(
        matches!(&found, Verdict::Infected(name) if name.contains("Eicar")),
        "{found:?}"
    );
    // One byte over the limit is refused before it is sent: never "clean".
    assert!(verdict(vec![b'a'; 4 * 1024 * 1024 + 1]).await.is_err());
    Ok(())
}
