//! The `media-dev` command line, run as a process against the test emulator.

use std::process::Command;

use media_provision::testkit::unique_name;

fn media_dev() -> Command {
    Command::new(env!("CARGO_BIN_EXE_media-dev"))
}

#[test]
fn token_prints_a_token_the_local_authorizer_accepts() -> Result<(), Box<dyn std::error::Error>> {
    let out = media_dev()
        .args(["token", "alice", "--ttl", "60"])
        .env("LOCAL_JWT_SECRET", "s3cret")
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let claims = media_dev::auth::verify("s3cret", token.trim(), now).map_err(|e| e.to_string())?;
    assert_eq!(claims.get("sub").map(String::as_str), Some("alice"));
    assert!(
        media_dev::auth::verify("s3cret", token.trim(), now + 61).is_err(),
        "expires after its ttl"
    );
    Ok(())
}

#[test]
fn cleanup_runs_once_and_prints_its_summary() -> Result<(), Box<dyn std::error::Error>> {
    let name = unique_name("cli");
    let out = media_dev()
        .arg("cleanup")
        .env("MEDIA_BUCKET", &name)
        .env("MEDIA_TABLE", &name)
        .env("CLEANUP_GRACE_PERIOD_HOURS", "0")
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(summary["purged"], 0);
    assert_eq!(summary["failures"], 0);
    assert!(summary["bytesReclaimed"].is_u64());
    Ok(())
}

#[test]
fn bad_usage_fails_with_the_usage_text() -> Result<(), Box<dyn std::error::Error>> {
    let out = media_dev().arg("frobnicate").output()?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage:"));
    Ok(())
}
