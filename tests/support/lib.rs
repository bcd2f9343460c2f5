//! Support for the end-to-end tests: every test gets its own running system (API, event delivery)
//! on its own bucket, table and queue of the emulator, and talks to it over HTTP as a client would.

pub mod fault_proxy;

use std::time::{Duration, Instant};

use fault_proxy::FaultProxy;
use media_aws::AwsClients;
use media_dev::{App, Options, auth};
use media_provision::testkit::{self, test_config};
use serde_json::{Value, json};

/// Errors in tests carry their message; no test result depends on their type.
pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// The local authorizer's secret in tests.
pub const SECRET: &str = "e2e-secret";

/// One running system and an HTTP client for it.
pub struct TestApp {
    /// The running system.
    pub app: App,
    /// The HTTP client.
    pub http: reqwest::Client,
    /// Clients that talk to the emulator directly, for inspecting state past any proxy.
    pub direct: AwsClients,
}

/// A response: status and JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Parsed body.
    pub body: Value,
    /// The `ETag` header, if any.
    pub etag: Option<String>,
}

/// Starts the system on fresh resources with `overrides` on the configuration.
pub async fn spawn_app(overrides: &[(&str, &str)]) -> TestResult<TestApp> {
    start(overrides, None).await
}

/// Starts the system with every AWS call it makes (S3, DynamoDB, SQS, and the presigned URLs it
/// hands out) going through a fault proxy in front of the emulator.
pub async fn spawn_app_behind_proxy(
    overrides: &[(&str, &str)],
) -> TestResult<(TestApp, FaultProxy)> {
    let proxy = FaultProxy::start(&media_provision::local_endpoint()?).await?;
    let app = start(overrides, Some(proxy.url())).await?;
    proxy.clear_calls();
    Ok((app, proxy))
}

async fn start(overrides: &[(&str, &str)], endpoint: Option<String>) -> TestResult<TestApp> {
    let config = test_config(overrides)?;
    let options = Options {
        port: 0,
        jwt_secret: SECRET.to_owned(),
        cleanup_interval: None,
        cors_origins: vec!["*".to_owned()],
        endpoint,
        process_concurrency: media_dev::worker::DEFAULT_CONCURRENCY,
    };
    let app = App::start(config, options)
        .await
        .map_err(|e| e.to_string())?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let direct = AwsClients::for_emulator(&media_provision::local_endpoint()?).await;
    Ok(TestApp { app, http, direct })
}

/// A valid token for `user`.
pub fn token(user: &str) -> String {
    let now = time_now();
    auth::sign(SECRET, user, now, now + 600)
}

/// Seconds since the epoch.
pub fn time_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// A file of the shared corpus.
pub fn corpus(name: &str) -> TestResult<Vec<u8>> {
    Ok(media_provision::testkit::corpus_file(name)?)
}

async fn reply(resp: reqwest::Response) -> TestResult<Reply> {
    let status = resp.status().as_u16();
    let etag = resp
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = resp.bytes().await?;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)?
    };
    Ok(Reply { status, body, etag })
}

impl TestApp {
    fn api(&self, path: &str) -> String {
        format!("{}{path}", self.app.url())
    }

    /// `POST /api/v1/upload/presign` with `body`, as `token`'s owner.
    pub async fn presign(&self, token: Option<&str>, body: &Value) -> TestResult<Reply> {
        let mut req = self
            .http
            .post(self.api("/api/v1/upload/presign"))
            .json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        reply(req.send().await?).await
    }

    /// Presigns `bytes` as `content_type` and PUTs them to the URL with the headers given.
    /// Returns the presign response body.
    pub async fn upload(
        &self,
        token: &str,
        filename: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> TestResult<Value> {
        let presigned = self
            .presign(
                Some(token),
                &json!({"filename": filename, "contentType": content_type, "size": bytes.len()}),
            )
            .await?;
        assert_eq!(presigned.status, 200, "presign: {:?}", presigned.body);
        let url = presigned.body["url"].as_str().ok_or("no url")?;
        let mut put = self.http.put(url).body(bytes.to_vec());
        for (name, value) in presigned.body["headers"].as_object().ok_or("no headers")? {
            put = put.header(name, value.as_str().unwrap_or_default());
        }
        let status = put.send().await?.status();
        assert!(status.is_success(), "PUT to the presigned URL: {status}");
        Ok(presigned.body)
    }

    /// Uploads the corpus photo `Kodak_CX7530.jpg` as `user` and waits until it is ready; its id
    /// and its view.
    pub async fn ready_photo(&self, user: &str) -> TestResult<(String, Value)> {
        let presigned = self
            .upload(
                &token(user),
                "p.jpg",
                "image/jpeg",
                &corpus("Kodak_CX7530.jpg")?,
            )
            .await?;
        let id = presigned["mediaId"].as_str().ok_or("no id")?.to_owned();
        let view = self.wait_processed(&token(user), &id).await?;
        assert_eq!(view["status"], "ready", "{view}");
        Ok((id, view))
    }

    /// `GET /api/v1/upload/{id}`.
    pub async fn get(&self, token: &str, id: &str) -> TestResult<Reply> {
        reply(
            self.http
                .get(self.api(&format!("/api/v1/upload/{id}")))
                .bearer_auth(token)
                .send()
                .await?,
        )
        .await
    }

    /// `POST /api/v1/upload/confirm`.
    pub async fn confirm(&self, token: &str, id: &str) -> TestResult<Reply> {
        let req = self
            .http
            .post(self.api("/api/v1/upload/confirm"))
            .bearer_auth(token)
            .json(&json!({"mediaId": id}));
        reply(req.send().await?).await
    }

    /// `DELETE /api/v1/upload/{id}`.
    pub async fn delete(&self, token: &str, id: &str) -> TestResult<Reply> {
        reply(
            self.http
                .delete(self.api(&format!("/api/v1/upload/{id}")))
                .bearer_auth(token)
                .send()
                .await?,
        )
        .await
    }

    /// `GET /api/v1/upload?<query>` (the query as written, already encoded).
    pub async fn list(&self, token: &str, query: &str) -> TestResult<Reply> {
        reply(
            self.http
                .get(self.api(&format!("/api/v1/upload?{query}")))
                .bearer_auth(token)
                .send()
                .await?,
        )
        .await
    }

    /// Every item of `token`'s list for `query`, page by page (at most 100 pages); the ids in order.
    pub async fn list_all(&self, token: &str, query: &str) -> TestResult<Vec<String>> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..100 {
            let q = match &cursor {
                Some(c) => format!("{query}&cursor={c}"),
                None => query.to_owned(),
            };
            let r = self.list(token, &q).await?;
            assert_eq!(r.status, 200, "{q}: {}", r.body);
            for item in r.body["items"].as_array().ok_or("no items")? {
                ids.push(item["id"].as_str().ok_or("no id")?.to_owned());
            }
            match r.body["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return Ok(ids),
            }
        }
        Err("more than 100 pages".into())
    }

    /// `PATCH /api/v1/upload/{id}` with a merge patch, and `If-Match` when given.
    pub async fn patch(
        &self,
        token: &str,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> TestResult<Reply> {
        let mut req = self
            .http
            .patch(self.api(&format!("/api/v1/upload/{id}")))
            .bearer_auth(token)
            .header("content-type", "application/merge-patch+json")
            .body(body.to_string());
        if let Some(m) = if_match {
            req = req.header("if-match", m);
        }
        reply(req.send().await?).await
    }

    /// `POST /api/v1/upload/{id}/restore`.
    pub async fn restore(&self, token: &str, id: &str) -> TestResult<Reply> {
        reply(
            self.http
                .post(self.api(&format!("/api/v1/upload/{id}/restore")))
                .bearer_auth(token)
                .send()
                .await?,
        )
        .await
    }

    /// Polls GET until the media leaves `pending` (at most 30 s, 150 polls) and returns it.
    pub async fn wait_processed(&self, token: &str, id: &str) -> TestResult<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        for _ in 0..150 {
            let r = self.get(token, id).await?;
            if r.status == 200 && r.body["status"] != "pending" {
                return Ok(r.body);
            }
            if Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(format!("media {id} still pending after 30 s").into())
    }

    /// Downloads a URL; returns status and bytes.
    pub async fn download(&self, url: &str) -> TestResult<(u16, Vec<u8>)> {
        let resp = self.http.get(url).send().await?;
        Ok((resp.status().as_u16(), resp.bytes().await?.to_vec()))
    }

    /// The keys of every object in this test's bucket.
    pub async fn object_keys(&self) -> TestResult<Vec<String>> {
        testkit::object_keys(&self.direct, &self.app.service.config().bucket).await
    }

    /// Fails unless this test's bucket holds no object and its table no record.
    pub async fn assert_nothing_stored(&self) -> TestResult {
        assert_eq!(
            self.object_keys().await?,
            Vec::<String>::new(),
            "objects left"
        );
        assert_eq!(self.record_count().await?, 0, "records left");
        Ok(())
    }

    /// The number of media records in this test's table (a scan is fine for a test table); the
    /// owners' usage and rate-window items are not media.
    pub async fn record_count(&self) -> TestResult<usize> {
        let out = self
            .direct
            .dynamodb
            .scan()
            .table_name(&self.app.service.config().table)
            .filter_expression("attribute_exists(ownerId)")
            .send()
            .await?;
        Ok(out.items().len())
    }

    /// The item with key `id` as stored, read directly and strongly consistent (past any proxy),
    /// or `None` when there is none.
    pub async fn stored_item(
        &self,
        id: &str,
    ) -> TestResult<
        Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
    > {
        let out = self
            .direct
            .dynamodb
            .get_item()
            .table_name(&self.app.service.config().table)
            .key(
                "id",
                aws_sdk_dynamodb::types::AttributeValue::S(id.to_owned()),
            )
            .consistent_read(true)
            .send()
            .await?;
        Ok(out.item().cloned())
    }

    /// `owner`'s usage item as stored: (files, bytes), zeros when there is none.
    pub async fn stored_usage(&self, owner: &str) -> TestResult<(i64, i64)> {
        let item = self.stored_item(&format!("usage#{owner}")).await?;
        let number = |name: &str| -> i64 {
            item.as_ref()
                .and_then(|i| i.get(name))
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok((number("files"), number("bytes")))
    }
}
