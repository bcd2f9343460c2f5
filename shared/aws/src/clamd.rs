//! [`ClamdScanner`]: the malware scanner port on a clamd, over its TCP socket with the `INSTREAM`
//! protocol (for self-hosted and S3-compatible deployments where a clamd is reachable). Not an
//! AWS service, but an adapter all the same: the core knows only the port.
//!
//! `zINSTREAM\0`, then the file as chunks (a 4-byte big-endian length, the bytes), then a zero
//! length; clamd answers `stream: OK`, `stream: <signature> FOUND`, or a line ending in `ERROR`
//! (a stream over its `StreamMaxLength` among them). Anything but `OK` and `FOUND` is a failure,
//! never "clean"; so are a connection refused and a timeout on any step.

use std::time::Duration;

use async_trait::async_trait;
use media_core::ports::{ScanError, ScanSession, Scanner, Verdict};
use media_core::scanning::ClamdSettings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The most bytes clamd's answer may have.
const MAX_REPLY: usize = 4096;

/// [`Scanner`] on a clamd.
#[derive(Debug, Clone)]
pub struct ClamdScanner {
    settings: ClamdSettings,
}

impl ClamdScanner {
    /// A scanner on the clamd these settings name.
    pub fn new(settings: ClamdSettings) -> Self {
        Self { settings }
    }
}

/// A step that took longer than the timeout.
#[derive(Debug, thiserror::Error)]
#[error("no answer within {0:?}")]
struct TimedOut(Duration);

/// What clamd answered, when it was not a verdict.
#[derive(Debug, thiserror::Error)]
#[error("clamd answered {0:?}")]
struct Reply(String);

async fn within<T>(
    limit: Duration,
    operation: &str,
    step: impl Future<Output = std::io::Result<T>>,
) -> Result<T, ScanError> {
    match tokio::time::timeout(limit, step).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ScanError::new(operation, e)),
        Err(_) => Err(ScanError::new(operation, TimedOut(limit))),
    }
}

#[async_trait]
impl Scanner for ClamdScanner {
    fn max_stream(&self) -> u64 {
        self.settings.stream_max
    }

    async fn start(&self) -> Result<Box<dyn ScanSession>, ScanError> {
        let limit = self.settings.timeout;
        let mut stream = within(
            limit,
            "connect to clamd",
            TcpStream::connect(&self.settings.address),
        )
        .await?;
        within(limit, "start a scan", stream.write_all(b"zINSTREAM\0")).await?;
        Ok(Box::new(ClamdSession {
            stream,
            limit,
            sent: 0,
            max: self.settings.stream_max,
        }))
    }
}

struct ClamdSession {
    stream: TcpStream,
    limit: Duration,
    sent: u64,
    max: u64,
}

impl ClamdSession {
    /// clamd's answer, up to its NUL (or the connection's end).
    async fn reply(&mut self) -> Result<String, ScanError> {
        let mut reply = Vec::new();
        let mut buf = [0u8; 512];
        while reply.len() < MAX_REPLY && !reply.contains(&0) {
            let n = within(
                self.limit,
                "read clamd's verdict",
                self.stream.read(&mut buf),
            )
            .await?;
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buf[..n]);
        }
        let end = reply.iter().position(|b| *b == 0).unwrap_or(reply.len());
        Ok(String::from_utf8_lossy(&reply[..end]).trim().to_owned())
    }
}

#[async_trait]
impl ScanSession for ClamdSession {
    async fn send(&mut self, chunk: &[u8]) -> Result<(), ScanError> {
        self.sent += chunk.len() as u64;
        if self.sent > self.max {
            return Err(ScanError::new(
                "scan a stream",
                Reply(format!(
                    "(not sent) more than {} bytes in one scan",
                    self.max
                )),
            ));
        }
        let len = u32::try_from(chunk.len()).map_err(|e| ScanError::new("send a chunk", e))?;
        let sent = within(self.limit, "send a chunk to clamd", async {
            self.stream.write_all(&len.to_be_bytes()).await?;
            self.stream.write_all(chunk).await
        })
        .await;
        if let Err(e) = sent {
            // clamd closes the stream when it refuses it (over its StreamMaxLength): its reason
            // is in its answer.
            return match self.reply().await {
                Ok(reply) if !reply.is_empty() => {
                    Err(ScanError::new("scan a stream", Reply(reply)))
                }
                _ => Err(e),
            };
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<Verdict, ScanError> {
        within(self.limit, "end a scan", self.stream.write_all(&[0; 4])).await?;
        let reply = self.reply().await?;
        parse(&reply)
    }
}

/// clamd's answer to one `INSTREAM`.
fn parse(reply: &str) -> Result<Verdict, ScanError> {
    let verdict = reply.strip_prefix("stream:").map(str::trim);
    match verdict {
        Some("OK") => Ok(Verdict::Clean),
        Some(v) if v.ends_with(" FOUND") && !v.ends_with("ERROR") => Ok(Verdict::Infected(
            v.trim_end_matches(" FOUND").trim().to_owned(),
        )),
        _ => Err(ScanError::new("scan a stream", Reply(reply.to_owned()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ok_and_found_are_verdicts() {
        assert_eq!(parse("stream: OK").ok(), Some(Verdict::Clean));
        assert_eq!(
            parse("stream: Eicar-Test-Signature FOUND").ok(),
            Some(Verdict::Infected("Eicar-Test-Signature".into()))
        );
        for failure in [
            "INSTREAM size limit exceeded. ERROR",
            "stream: Can't allocate memory ERROR",
            "",
            "UNKNOWN COMMAND",
            "stream:",
        ] {
            assert!(parse(failure).is_err(), "{failure:?}");
        }
    }
}
