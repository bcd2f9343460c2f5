//! Each function's sample event in `events/`, invoked through the real Lambda Runtime API:
//! `cargo lambda watch` runs the function binaries as Lambda would, `cargo lambda invoke
//! --data-file` sends the event files as they are, and the functions talk to the emulator.
//!
//! The events name bucket `media-bucket`, owner `user-123` and media
//! `019aa7c1e2f37b8c9d0e1f2a3b4c5d6e` at `uploads/2026/11/22/<id>/original.jpg`; this test seeds
//! that record and object, then walks the media's life: get, confirm, process, get, delete,
//! cleanup, and a fresh presign.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e::{TestResult, corpus};
use media_aws::{AwsClients, DynamoMediaRepository};
use media_core::domain::{ContentType, Media, MediaId, MediaStatus, ObjectKey, OwnerId};
use media_core::ports::MediaRepository;
use media_provision::testkit::{SAMPLE_MEDIA_ID, SAMPLE_OWNER, unique_name};
use media_provision::{ensure_bucket, ensure_table, local_endpoint};
use serde_json::Value;

const BUCKET: &str = "media-bucket";
const KEY: &str = "uploads/2026/11/22/019aa7c1e2f37b8c9d0e1f2a3b4c5d6e/original.jpg";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn cargo_lambda() -> TestResult<PathBuf> {
    let path = repo().join(".venv/bin/cargo-lambda");
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("{} is missing: run `make venv`", path.display()).into())
    }
}

/// `cargo lambda watch`, stopped (with the functions it runs) when dropped.
struct Watch {
    child: Child,
    port: u16,
}

impl Drop for Watch {
    fn drop(&mut self) {
        // Its own process group: the functions it started go with it. The signal goes through
        // killpg(2), never through a `kill` program: procps' `kill -TERM -<pgid>` misreads some
        // negative ids (one that starts with 1 became -1, every process the user may signal).
        use nix::sys::signal::{Signal, killpg};
        use nix::unistd::Pid;
        let pgid = match i32::try_from(self.child.id()) {
            Ok(id) if id > 1 => Pid::from_raw(id),
            _ => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return;
            }
        };
        let _ = killpg(pgid, Signal::SIGTERM);
        // At most 10 s to stop its functions, then SIGKILL for the whole group.
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = killpg(pgid, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

fn free_port() -> TestResult<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn start_watch(table: &str) -> TestResult<Watch> {
    use std::os::unix::process::CommandExt;
    let port = free_port()?;
    let log = std::fs::File::create(repo().join(format!(".local/cargo-lambda-watch-{port}.log")))?;
    let vars = [
        format!("MEDIA_BUCKET={BUCKET}"),
        format!("MEDIA_TABLE={table}"),
        "CLEANUP_GRACE_PERIOD_HOURS=0".to_owned(),
        // The functions build their clients as in AWS; a loopback emulator needs path-style URLs.
        "S3_FORCE_PATH_STYLE=true".to_owned(),
        "AWS_LAMBDA_LOG_FORMAT=JSON".to_owned(),
        "RUST_LOG=info".to_owned(),
    ];
    let mut cmd = Command::new(cargo_lambda()?);
    cmd.current_dir(repo())
        .args(["lambda", "watch", "--quiet", "--ignore-changes"])
        .args(["--invoke-address", "127.0.0.1", "--invoke-port"])
        .arg(port.to_string())
        .args(["--timeout", "300"]);
    for v in &vars {
        cmd.args(["--env-var", v]);
    }
    // AWS_ENDPOINT_URL and the dummy credentials come from scripts/with-emulator.sh.
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0);
    let child = cmd.spawn()?;
    let watch = Watch { child, port };
    // At most 60 s for the runtime API to listen.
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(60) {
            return Err("cargo lambda watch did not start listening within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(watch)
}

/// `cargo lambda invoke <function> --data-file events/<function>/<file>`: the function's answer.
fn invoke(port: u16, function: &str, file: &str) -> TestResult<Value> {
    let data = repo().join("events").join(function).join(file);
    let out = Command::new(cargo_lambda()?)
        .current_dir(repo())
        .args([
            "lambda",
            "invoke",
            function,
            "--invoke-address",
            "127.0.0.1",
        ])
        .args(["--invoke-port", &port.to_string()])
        .args(["--output-format", "json", "--data-file"])
        .arg(&data)
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "invoke {function} {file} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// An API Gateway response: status and parsed JSON body.
fn http(response: &Value) -> TestResult<(u64, Value)> {
    let status = response["statusCode"].as_u64().ok_or("no statusCode")?;
    let body = match response["body"].as_str() {
        Some(b) if !b.is_empty() => serde_json::from_str(b)?,
        _ => Value::Null,
    };
    Ok((status, body))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_sample_event_runs_through_the_lambda_runtime_api() -> TestResult {
    let table = unique_name("invoke");
    let clients = AwsClients::for_emulator(&local_endpoint()?).await;
    ensure_bucket(&clients, BUCKET).await?;
    ensure_table(&clients, &table).await?;

    // The sample media: a pending record and its uploaded object.
    let photo = corpus("Landscape_2.jpg")?;
    let now = time::OffsetDateTime::now_utc();
    let media = Media {
        id: MediaId::parse(SAMPLE_MEDIA_ID)?,
        owner: OwnerId::parse(SAMPLE_OWNER)?,
        status: MediaStatus::Pending,
        filename: "sample.jpg".into(),
        content_type: ContentType::Jpeg,
        size: photo.len() as u64,
        key: ObjectKey::from_raw(KEY),
        created_at: now,
        updated_at: now,
        expires_at: Some(now + Duration::from_secs(3600)),
        deleted_at: None,
        served_original: None,
        served_size: None,
        metadata: None,
        derivatives: Default::default(),
        rejection: None,
        describe: Default::default(),
        version: 1,
        deleted_from: None,
        holds_quota: true,
        upload_id: None,
    };
    DynamoMediaRepository::new(clients.dynamodb.clone(), &table)
        .create(std::slice::from_ref(&media), &Default::default())
        .await?;
    clients
        .s3
        .put_object()
        .bucket(BUCKET)
        .key(KEY)
        .content_type("image/jpeg")
        .body(photo.into())
        .send()
        .await?;

    let watch = tokio::task::spawn_blocking(move || start_watch(&table).map_err(|e| e.to_string()))
        .await??;
    let port = watch.port;
    let run = |function: &'static str, file: &'static str| async move {
        tokio::task::spawn_blocking(move || invoke(port, function, file).map_err(|e| e.to_string()))
            .await?
            .map_err(Into::<Box<dyn std::error::Error>>::into)
    };

    let (status, body) = http(&run("get", "get.json").await?)?;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("pending")),
        "{body}"
    );

    let (status, body) = http(&run("confirm", "confirm.json").await?)?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], SAMPLE_MEDIA_ID);

    let (status, body) = http(&run("library", "update.json").await?)?;
    assert_eq!((status, body["version"].as_u64()), (200, Some(2)), "{body}");
    let (status, body) = http(&run("library", "list.json").await?)?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["items"][0]["alt"], "A red bicycle against a wall",
        "{body}"
    );

    let outcome = run("process", "s3-object-created.json").await?;
    assert_eq!(outcome["outcomes"][0]["outcome"], "ready", "{outcome}");

    let (status, body) = http(&run("get", "get.json").await?)?;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("ready")),
        "{body}"
    );
    assert_eq!(body["metadata"]["width"], 1800);
    for size in ["small", "medium", "large"] {
        assert!(body["thumbnails"][size].is_string(), "{body}");
    }

    let (status, _) = http(&run("delete", "delete.json").await?)?;
    assert_eq!(status, 204);
    let (status, body) = http(&run("library", "restore.json").await?)?;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("ready")),
        "{body}"
    );
    let (status, _) = http(&run("delete", "delete.json").await?)?;
    assert_eq!(status, 204);
    // The public download link: no authorizer in the event; an unknown token.
    let (status, _) = http(&run("library", "use-grant.json").await?)?;
    assert_eq!(status, 404);

    let summary = run("cleanup", "scheduled.json").await?;
    assert_eq!(summary["purged"], 1, "{summary}");
    assert_eq!(summary["failures"], 0, "{summary}");

    let (status, body) = http(&run("presign", "presign.json").await?)?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["method"], "PUT");
    assert!(
        body["key"]
            .as_str()
            .is_some_and(|k| k.starts_with("uploads/")),
        "{body}"
    );
    drop(watch);
    Ok(())
}
