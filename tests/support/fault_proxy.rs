//! A fault-injecting HTTP proxy between the AWS SDK and the emulator. Every call is forwarded
//! unless a rule says otherwise, and every call is logged (service and operation), which is also
//! how the tests count billable requests.
//!
//! Rules are one-shot or counted: "lose the answer of the Nth matching call after forwarding it",
//! "fail a matching call on every attempt", "drop the connection", "delay". Random faults come
//! from a seeded generator, so a run's fault pattern depends only on the order of the calls.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Which AWS service a call went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    /// Amazon S3 (path-style requests).
    S3,
    /// Amazon DynamoDB.
    DynamoDb,
    /// Amazon SQS.
    Sqs,
    /// Amazon EventBridge.
    EventBridge,
    /// Anything else.
    Other,
}

/// One call as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Call {
    /// The service.
    pub service: Service,
    /// The operation: DynamoDB's and SQS's `X-Amz-Target` action, or S3's operation as told by
    /// method, path and query (`PutObject`, `GetObject`, `ListObjectsV2`, `PostObject`, ...).
    pub operation: String,
    /// S3's object key (empty for bucket operations and other services).
    pub key: String,
    /// What the proxy did with it.
    pub fault: Option<Fault>,
}

/// What a rule does to a call it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward the call, let it take effect, then answer 500 as if the answer were lost.
    LoseAnswer,
    /// Forward the call, let it take effect, then close the connection without an answer.
    LoseAnswerDrop,
    /// Answer 500 (a throttle-like transient error) without forwarding.
    Fail,
    /// Close the connection without forwarding or answering.
    Drop,
    /// Wait this long, then forward.
    Delay(Duration),
}

/// Which calls a rule applies to.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    /// The service, if it matters.
    pub service: Option<Service>,
    /// The operation, if it matters.
    pub operation: Option<&'static str>,
    /// Substrings the S3 key must all contain.
    pub key_contains: Vec<&'static str>,
    /// A substring of the request body (a DynamoDB update expression's values, say).
    pub body_contains: Option<&'static str>,
}

impl Matcher {
    /// Calls of `operation` to `service`.
    pub fn op(service: Service, operation: &'static str) -> Self {
        Self {
            service: Some(service),
            operation: Some(operation),
            ..Self::default()
        }
    }

    /// Only those whose body contains `text`.
    pub fn body(mut self, text: &'static str) -> Self {
        self.body_contains = Some(text);
        self
    }

    /// Only those whose S3 key contains `text` (and any other text given).
    pub fn key(mut self, text: &'static str) -> Self {
        self.key_contains.push(text);
        self
    }

    fn matches(&self, call: &Call, body: &[u8]) -> bool {
        self.service.is_none_or(|s| s == call.service)
            && self.operation.is_none_or(|o| o == call.operation)
            && self.key_contains.iter().all(|k| call.key.contains(k))
            && self
                .body_contains
                .is_none_or(|t| body.windows(t.len().max(1)).any(|w| w == t.as_bytes()))
    }
}

/// A rule: skip `skip` matching calls, then apply `fault` to the next `times` ones.
#[derive(Debug, Clone)]
struct Rule {
    matcher: Matcher,
    fault: Fault,
    skip: usize,
    times: usize,
}

/// Faults at random: each call to one of `services` fails with probability `per_mille`/1000,
/// with a fault drawn from `faults`.
#[derive(Debug, Clone)]
struct Random {
    services: Vec<Service>,
    per_mille: u64,
    faults: Vec<Fault>,
    state: u64,
}

impl Random {
    /// xorshift64*: deterministic for a seed, no dependency.
    fn next(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<Rule>,
    random: Option<Random>,
    calls: Vec<Call>,
}

/// A running proxy. Dropping it stops it.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    _stop: watch::Sender<bool>,
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1 that forwards to `upstream` (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let (stop, mut stopped) = watch::channel(false);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(std::io::Error::other)?;
        let upstream: Arc<str> = upstream.trim_end_matches('/').into();
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = stopped.changed() => return,
                };
                let Ok((stream, _)) = accepted else { continue };
                let (state, client, upstream) =
                    (Arc::clone(&shared), client.clone(), Arc::clone(&upstream));
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        handle(
                            req,
                            Arc::clone(&state),
                            client.clone(),
                            Arc::clone(&upstream),
                        )
                    });
                    // A dropped connection ends here with an error: that is the point.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            state,
            _stop: stop,
        })
    }

    /// The proxy's URL, for `AWS_ENDPOINT_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `fault` to the `nth` matching call from now (0 = the next one), once.
    pub fn once(&self, matcher: Matcher, nth: usize, fault: Fault) {
        self.lock().rules.push(Rule {
            matcher,
            fault,
            skip: nth,
            times: 1,
        });
    }

    /// Applies `fault` to the next `times` matching calls.
    pub fn times(&self, matcher: Matcher, times: usize, fault: Fault) {
        self.lock().rules.push(Rule {
            matcher,
            fault,
            skip: 0,
            times,
        });
    }

    /// Faults at random from now on: `per_mille` of the calls to `services`, each fault drawn
    /// from `faults`, from a generator seeded with `seed`.
    pub fn random(&self, services: &[Service], per_mille: u64, faults: &[Fault], seed: u64) {
        self.lock().random = Some(Random {
            services: services.to_vec(),
            per_mille,
            faults: faults.to_vec(),
            state: seed.max(1),
        });
    }

    /// Removes every rule and the random faults.
    pub fn heal(&self) {
        let mut state = self.lock();
        state.rules.clear();
        state.random = None;
    }

    /// True when every counted rule has been used up.
    pub fn rules_spent(&self) -> bool {
        self.lock().rules.iter().all(|r| r.times == 0)
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Forgets the calls seen so far.
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }
}

/// What the state decides for one call.
fn decide(state: &Mutex<State>, mut call: Call, body: &[u8]) -> Option<Fault> {
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    let mut fault = None;
    for rule in state.rules.iter_mut() {
        if rule.times == 0 || !rule.matcher.matches(&call, body) {
            continue;
        }
        if rule.skip > 0 {
            rule.skip -= 1;
            continue;
        }
        rule.times -= 1;
        fault = Some(rule.fault);
        break;
    }
    if fault.is_none()
        && let Some(random) = state.random.as_mut()
        && random.services.contains(&call.service)
        && !random.faults.is_empty()
        && random.next() % 1000 < random.per_mille
    {
        let pick = (random.next() % random.faults.len() as u64) as usize;
        fault = Some(random.faults[pick]);
    }
    call.fault = fault;
    state.calls.push(call);
    fault
}

type Reply = Response<Full<Bytes>>;

async fn handle(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
    client: reqwest::Client,
    upstream: Arc<str>,
) -> Result<Reply, std::io::Error> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    let call = classify(&parts, &body);
    let service = call.service;
    let fault = decide(&state, call, &body);
    match fault {
        Some(Fault::Fail) => return Ok(error_reply(service)),
        Some(Fault::Drop) => return Err(std::io::Error::other("connection dropped by a rule")),
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        _ => {}
    }
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut forward = client.request(parts.method.clone(), format!("{upstream}{path}"));
    for (name, value) in &parts.headers {
        if name != http::header::CONTENT_LENGTH && name != http::header::TRANSFER_ENCODING {
            forward = forward.header(name, value);
        }
    }
    let answer = forward
        .body(body)
        .send()
        .await
        .map_err(std::io::Error::other)?;
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.map_err(std::io::Error::other)?;
    match fault {
        Some(Fault::LoseAnswer) => return Ok(error_reply(service)),
        Some(Fault::LoseAnswerDrop) => {
            return Err(std::io::Error::other("answer lost by a rule"));
        }
        _ => {}
    }
    let mut reply = Response::new(Full::new(bytes));
    *reply.status_mut() = status;
    // Content-Length passes through: the body is forwarded whole (no decompression), and a
    // HEAD's length is the object's, not its empty body's.
    for (name, value) in &headers {
        if name != http::header::TRANSFER_ENCODING && name != http::header::CONNECTION {
            reply.headers_mut().append(name, value.clone());
        }
    }
    Ok(reply)
}

/// A transient server error in the service's own format, which the SDK retries.
fn error_reply(service: Service) -> Reply {
    let (content_type, body) = match service {
        Service::DynamoDb => (
            "application/x-amz-json-1.0",
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected fault"}"#.to_owned(),
        ),
        Service::Sqs => (
            "application/x-amz-json-1.0",
            r#"{"__type":"com.amazonaws.sqs#InternalError","message":"injected fault"}"#
                .to_owned(),
        ),
        Service::EventBridge => (
            "application/x-amz-json-1.1",
            r#"{"__type":"InternalException","message":"injected fault"}"#.to_owned(),
        ),
        _ => (
            "application/xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>injected fault</Message></Error>".to_owned(),
        ),
    };
    let mut reply = Response::new(Full::new(Bytes::from(body)));
    *reply.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        reply.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    reply
}

/// Names a call by its service and operation.
fn classify(parts: &http::request::Parts, body: &[u8]) -> Call {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let target = header("x-amz-target");
    let call = |service, operation: &str, key: &str| Call {
        service,
        operation: operation.to_owned(),
        key: key.to_owned(),
        fault: None,
    };
    if let Some(op) = target.strip_prefix("DynamoDB_20120810.") {
        return call(Service::DynamoDb, op, "");
    }
    if let Some(op) = target.strip_prefix("AmazonSQS.") {
        return call(Service::Sqs, op, "");
    }
    if let Some(op) = target.strip_prefix("AWSEvents.") {
        return call(Service::EventBridge, op, "");
    }
    let query = parts.uri.query().unwrap_or_default();
    if query.contains("Action=") || String::from_utf8_lossy(body).starts_with("Action=") {
        return call(Service::Sqs, "query", "");
    }
    // S3, path-style: /bucket[/key]
    let path = parts.uri.path().trim_start_matches('/');
    let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
    let has = |q: &str| {
        query
            .split('&')
            .any(|p| p == q || p.starts_with(&format!("{q}=")))
    };
    let method = parts.method.as_str();
    let op = match (method, key.is_empty()) {
        (_, _) if bucket.is_empty() => "ListBuckets",
        ("GET", true) if has("list-type") => "ListObjectsV2",
        ("GET", true) if has("uploads") => "ListMultipartUploads",
        ("GET", true) => "ListObjects",
        ("POST", true) if has("delete") => "DeleteObjects",
        ("POST", true) => "PostObject",
        ("PUT", true) => "PutBucketConfiguration",
        ("DELETE", true) => "DeleteBucket",
        ("HEAD", true) => "HeadBucket",
        ("GET", false) if has("uploadId") => "ListParts",
        ("GET", false) => "GetObject",
        ("HEAD", false) => "HeadObject",
        ("PUT", false) if has("partNumber") => "UploadPart",
        ("PUT", false) if !header("x-amz-copy-source").is_empty() => "CopyObject",
        ("PUT", false) => "PutObject",
        ("POST", false) if has("uploads") => "CreateMultipartUpload",
        ("POST", false) if has("uploadId") => "CompleteMultipartUpload",
        ("DELETE", false) if has("uploadId") => "AbortMultipartUpload",
        ("DELETE", false) => "DeleteObject",
        _ => "Other",
    };
    let key = percent_encoding::percent_decode_str(key).decode_utf8_lossy();
    call(Service::S3, op, &key)
}

/// S3's request classes as billed: PUT, COPY, POST and LIST requests cost about ten times as
/// much as GET and HEAD; DELETE is free.
pub fn billable_class(operation: &str) -> Option<&'static str> {
    match operation {
        "PutObject"
        | "CopyObject"
        | "PostObject"
        | "UploadPart"
        | "CreateMultipartUpload"
        | "CompleteMultipartUpload"
        | "ListObjectsV2"
        | "ListObjects"
        | "ListParts"
        | "ListMultipartUploads"
        | "ListBuckets"
        | "PutBucketConfiguration" => Some("PUT/COPY/POST/LIST"),
        "GetObject" | "HeadObject" | "HeadBucket" => Some("GET/HEAD"),
        "DeleteObject" | "DeleteObjects" | "AbortMultipartUpload" | "DeleteBucket" => {
            Some("DELETE (free)")
        }
        _ => None,
    }
}
