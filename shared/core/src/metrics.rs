//! Metrics as CloudWatch Embedded Metric Format (EMF): JSON lines on stdout that CloudWatch Logs
//! turns into metrics, with no agent, no API call and no latency on the request path.
//!
//! The names and labels are the seed's Prometheus ones, so the same dashboards read both:
//! `upload_total{status,type}`, `upload_duration_seconds{type}`, `upload_size_bytes{type}`,
//! `storage_operations_total{operation,status}`; plus `upload_rejected_total{reason}` and the
//! cleanup counters `cleanup_*` (no dimensions).
//!
//! Values are gathered per use case and written in one flush, one line per dimension set.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use crate::domain::{ContentType, ObjectKey};
use crate::ports::{
    Fetched, ObjectReader, ObjectStat, ObjectStore, ObjectWriter, PresignedPost, PresignedRequest,
    Spooled, StoreError,
};

/// The unit of a metric, as EMF names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unit {
    /// A count.
    Count,
    /// Seconds.
    Seconds,
    /// Bytes.
    Bytes,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Seconds => "Seconds",
            Self::Bytes => "Bytes",
        }
    }
}

/// Where finished EMF lines go: stdout on Lambda, a buffer in tests.
pub type Sink = Arc<dyn Fn(&str) + Send + Sync>;

type Dimensions = Vec<(&'static str, String)>;

#[derive(Default)]
struct Pending {
    // dimension set -> metric name -> (unit, values)
    by_dimensions: BTreeMap<Dimensions, BTreeMap<&'static str, (Unit, Vec<f64>)>>,
}

/// A recorder of metrics; cheap to clone, shared by the service and its metered store.
#[derive(Clone)]
pub struct Metrics {
    namespace: Option<Arc<str>>,
    pending: Arc<Mutex<Pending>>,
    sink: Sink,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// EMF allows at most 100 values of one metric in one line.
const MAX_VALUES: usize = 100;

impl Metrics {
    /// Metrics under `namespace`, written to stdout; `None` records nothing.
    pub fn stdout(namespace: Option<&str>) -> Self {
        Self::with_sink(
            namespace,
            Arc::new(|line: &str| {
                use std::io::Write;
                // One write per line, so concurrent log lines never interleave with it.
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(format!("{line}\n").as_bytes());
                let _ = out.flush();
            }),
        )
    }

    /// Metrics that record nothing.
    pub fn disabled() -> Self {
        Self::stdout(None)
    }

    /// Metrics under `namespace`, each flushed line handed to `sink`.
    pub fn with_sink(namespace: Option<&str>, sink: Sink) -> Self {
        Self {
            namespace: namespace.map(Arc::from),
            pending: Arc::new(Mutex::new(Pending::default())),
            sink,
        }
    }

    /// Adds one value of `name` under the given dimensions.
    pub fn record(&self, name: &'static str, unit: Unit, dims: &[(&'static str, &str)], v: f64) {
        if self.namespace.is_none() {
            return;
        }
        let dims: Dimensions = dims.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending
            .by_dimensions
            .entry(dims)
            .or_default()
            .entry(name)
            .or_insert_with(|| (unit, Vec::new()))
            .1
            .push(v);
    }

    /// Adds `n` to the counter `name`.
    pub fn count(&self, name: &'static str, dims: &[(&'static str, &str)], n: u64) {
        self.record(name, Unit::Count, dims, n as f64);
    }

    /// Writes everything recorded since the last flush, one EMF line per dimension set.
    pub fn flush(&self) {
        let Some(namespace) = &self.namespace else {
            return;
        };
        let pending =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        let timestamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        for (dims, metrics) in pending.by_dimensions {
            for line in emf_lines(namespace, timestamp, &dims, metrics) {
                (self.sink)(&line);
            }
        }
    }
}

fn emf_lines(
    namespace: &str,
    timestamp: u64,
    dims: &Dimensions,
    metrics: BTreeMap<&'static str, (Unit, Vec<f64>)>,
) -> Vec<String> {
    // Counters are summed (one value); distributions keep their values, 100 per line at most.
    let mut chunks: Vec<Map<String, Value>> = Vec::new();
    let mut definitions: Vec<Vec<Value>> = Vec::new();
    for (name, (unit, values)) in metrics {
        let parts: Vec<Value> = if unit == Unit::Count {
            vec![json!(values.iter().sum::<f64>())]
        } else {
            values
                .chunks(MAX_VALUES)
                .map(|c| if c.len() == 1 { json!(c[0]) } else { json!(c) })
                .collect()
        };
        for (i, value) in parts.into_iter().enumerate() {
            if chunks.len() <= i {
                chunks.push(Map::new());
                definitions.push(Vec::new());
            }
            chunks[i].insert(name.to_owned(), value);
            definitions[i].push(json!({ "Name": name, "Unit": unit.as_str() }));
        }
    }
    let dimension_names: Vec<&str> = dims.iter().map(|(k, _)| *k).collect();
    chunks
        .into_iter()
        .zip(definitions)
        .map(|(mut body, defs)| {
            for (k, v) in dims {
                body.insert((*k).to_owned(), json!(v));
            }
            body.insert(
                "_aws".to_owned(),
                json!({
                    "Timestamp": timestamp,
                    "CloudWatchMetrics": [{
                        "Namespace": namespace,
                        "Dimensions": [dimension_names],
                        "Metrics": defs,
                    }],
                }),
            );
            Value::Object(body).to_string()
        })
        .collect()
}

/// An object storage port ([`ObjectStore`], [`ObjectReader`] or [`ObjectWriter`]) that counts
/// every operation of the one it wraps by outcome (`storage_operations_total{operation,status}`).
pub struct Metered<T: ?Sized> {
    inner: Arc<T>,
    metrics: Metrics,
}

impl<T: ?Sized> Metered<T> {
    /// Wraps `inner`.
    pub fn new(inner: Arc<T>, metrics: Metrics) -> Self {
        Self { inner, metrics }
    }

    fn note<R>(&self, operation: &str, r: Result<R, StoreError>) -> Result<R, StoreError> {
        let status = if r.is_ok() { "success" } else { "error" };
        self.metrics.count(
            "storage_operations_total",
            &[("operation", operation), ("status", status)],
            1,
        );
        r
    }
}

#[async_trait]
impl ObjectStore for Metered<dyn ObjectStore> {
    async fn presign_put(
        &self,
        key: &ObjectKey,
        content_type: ContentType,
        length: u64,
        sha256: Option<&str>,
        expires_in: std::time::Duration,
    ) -> Result<PresignedRequest, StoreError> {
        let r = self
            .inner
            .presign_put(key, content_type, length, sha256, expires_in)
            .await;
        self.note("presign_put", r)
    }

    async fn presign_post(
        &self,
        key: &ObjectKey,
        content_type: ContentType,
        max_length: u64,
        expires_in: std::time::Duration,
    ) -> Result<PresignedPost, StoreError> {
        let r = self
            .inner
            .presign_post(key, content_type, max_length, expires_in)
            .await;
        self.note("presign_post", r)
    }

    async fn presign_get(
        &self,
        key: &ObjectKey,
        expires_in: std::time::Duration,
    ) -> Result<String, StoreError> {
        let r = self.inner.presign_get(key, expires_in).await;
        self.note("presign_get", r)
    }

    async fn presign_download(
        &self,
        key: &ObjectKey,
        content_disposition: &str,
        content_type: &str,
        expires_in: std::time::Duration,
    ) -> Result<String, StoreError> {
        let r = self
            .inner
            .presign_download(key, content_disposition, content_type, expires_in)
            .await;
        self.note("presign_download", r)
    }

    async fn stat(&self, key: &ObjectKey) -> Result<Option<ObjectStat>, StoreError> {
        let r = self.inner.stat(key).await;
        self.note("head", r)
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        let r = self.inner.delete(key).await;
        self.note("delete", r)
    }

    async fn undelete(&self, keys: &[ObjectKey]) -> Result<Vec<ObjectKey>, StoreError> {
        let r = self.inner.undelete(keys).await;
        self.note("undelete", r)
    }
}

#[async_trait]
impl ObjectReader for Metered<dyn ObjectReader> {
    async fn read_range(
        &self,
        key: &ObjectKey,
        etag: &str,
        offset: u64,
        len: usize,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let r = self.inner.read_range(key, etag, offset, len).await;
        self.note("get_range", r)
    }

    async fn digest(
        &self,
        key: &ObjectKey,
        etag: &str,
        size: u64,
    ) -> Result<Option<[u8; 32]>, StoreError> {
        let r = self.inner.digest(key, etag, size).await;
        self.note("get", r)
    }

    async fn copy(
        &self,
        from: &ObjectKey,
        etag: &str,
        size: u64,
        to: &ObjectKey,
        content_type: &str,
    ) -> Result<bool, StoreError> {
        let r = self.inner.copy(from, etag, size, to, content_type).await;
        self.note("copy", r)
    }

    async fn spool(
        &self,
        key: &ObjectKey,
        etag: &str,
        size: u64,
    ) -> Result<Option<Spooled>, StoreError> {
        let r = self.inner.spool(key, etag, size).await;
        self.note("get", r)
    }

    async fn fetch(
        &self,
        key: &ObjectKey,
        if_match: Option<&str>,
        max_bytes: u64,
    ) -> Result<Fetched, StoreError> {
        let r = self.inner.fetch(key, if_match, max_bytes).await;
        self.note("get", r)
    }
}

#[async_trait]
impl ObjectWriter for Metered<dyn ObjectWriter> {
    async fn put(
        &self,
        key: &ObjectKey,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<(), StoreError> {
        let r = self.inner.put(key, bytes, content_type).await;
        self.note("put", r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captured(namespace: Option<&str>) -> (Metrics, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let metrics = Metrics::with_sink(
            namespace,
            Arc::new(move |l: &str| sink.lock().unwrap().push(l.to_owned())),
        );
        (metrics, lines)
    }

    #[test]
    fn one_emf_line_per_dimension_set() {
        let (m, buf) = captured(Some("MediaUpload/test"));
        m.count(
            "upload_total",
            &[("status", "ready"), ("type", "image/jpeg")],
            1,
        );
        m.count(
            "upload_total",
            &[("status", "ready"), ("type", "image/jpeg")],
            1,
        );
        m.record(
            "upload_duration_seconds",
            Unit::Seconds,
            &[("type", "image/jpeg")],
            0.25,
        );
        m.record(
            "upload_size_bytes",
            Unit::Bytes,
            &[("type", "image/jpeg")],
            1000.0,
        );
        m.count("cleanup_purged_total", &[], 3);
        m.flush();
        let lines = buf.lock().unwrap().clone();
        assert_eq!(lines.len(), 3, "{lines:#?}");
        let docs: Vec<Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let ready = docs.iter().find(|d| d.get("status").is_some()).unwrap();
        assert_eq!(ready["upload_total"], json!(2.0));
        assert_eq!(ready["type"], "image/jpeg");
        let cw = &ready["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "MediaUpload/test");
        assert_eq!(cw["Dimensions"], json!([["status", "type"]]));
        assert_eq!(
            cw["Metrics"],
            json!([{"Name": "upload_total", "Unit": "Count"}])
        );
        assert!(ready["_aws"]["Timestamp"].as_u64().unwrap() > 1_700_000_000_000);

        let typed = docs
            .iter()
            .find(|d| d.get("upload_size_bytes").is_some())
            .unwrap();
        assert_eq!(typed["upload_duration_seconds"], json!(0.25));
        assert_eq!(
            typed["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            json!([
                {"Name": "upload_duration_seconds", "Unit": "Seconds"},
                {"Name": "upload_size_bytes", "Unit": "Bytes"}
            ])
        );
        let cleanup = docs
            .iter()
            .find(|d| d.get("cleanup_purged_total").is_some())
            .unwrap();
        assert_eq!(
            cleanup["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[]])
        );

        // A flush empties the buffer.
        m.flush();
        assert_eq!(buf.lock().unwrap().len(), 3);
    }

    #[test]
    fn distributions_are_split_at_one_hundred_values() {
        let (m, lines) = captured(Some("ns"));
        for i in 0..250 {
            m.record(
                "upload_size_bytes",
                Unit::Bytes,
                &[("type", "image/png")],
                i as f64,
            );
        }
        m.flush();
        let lines = lines.lock().unwrap().clone();
        let sizes: Vec<usize> = lines
            .iter()
            .map(|l| {
                let d: Value = serde_json::from_str(l).unwrap();
                d["upload_size_bytes"].as_array().map_or(1, Vec::len)
            })
            .collect();
        assert_eq!(sizes, [100, 100, 50]);
    }

    #[test]
    fn without_a_namespace_nothing_is_written() {
        let (m, lines) = captured(None);
        m.count("upload_total", &[("status", "ready"), ("type", "x")], 1);
        m.flush();
        assert!(lines.lock().unwrap().is_empty());
    }
}
