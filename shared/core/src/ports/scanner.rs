//! Malware scanning: the stage no upload skips before it can become `ready`.

use async_trait::async_trait;

/// What a scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No signature matched.
    Clean,
    /// A signature matched: its name (`Eicar-Test-Signature`, ...).
    Infected(String),
}

/// The scanner could not give a verdict (unreachable, timed out, an `ERROR` reply, a stream over
/// its limit): never "clean", always worth a retry of the event.
#[derive(Debug, thiserror::Error)]
#[error("the malware scanner failed to {operation}")]
pub struct ScanError {
    /// What was being done.
    pub operation: String,
    /// The cause.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl ScanError {
    /// A failure to do `operation`, for this `source`.
    pub fn new(
        operation: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            operation: operation.into(),
            source: source.into(),
        }
    }
}

/// One scan in progress: the file's bytes go in, in order, chunk by chunk; then the verdict.
#[async_trait]
pub trait ScanSession: Send {
    /// Sends the next bytes of the file.
    async fn send(&mut self, chunk: &[u8]) -> Result<(), ScanError>;
    /// Ends the file and waits for the verdict.
    async fn finish(self: Box<Self>) -> Result<Verdict, ScanError>;
}

/// A malware scanner that reads the file from this function (clamd's `INSTREAM`).
#[async_trait]
pub trait Scanner: Send + Sync {
    /// The most bytes one session may carry (clamd's `StreamMaxLength`): a larger video or audio
    /// file is scanned in overlapping windows of at most this; every other kind fits one session.
    fn max_stream(&self) -> u64;
    /// Starts a scan.
    async fn start(&self) -> Result<Box<dyn ScanSession>, ScanError>;
}
