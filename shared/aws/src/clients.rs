//! The one place that builds the SDK clients, from the environment Lambda gives a function (not
//! through `aws-config`: see [`environment`]). `AWS_ENDPOINT_URL` (the SDK's own variable) points
//! them at an emulator, and `AWS_ENDPOINT_URL_S3` (and the other services' own) one of them
//! elsewhere.

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_types::SdkConfig;
use media_core::config::Config;

/// The SDK clients, built once at cold start.
#[derive(Debug, Clone)]
pub struct AwsClients {
    /// S3.
    pub s3: aws_sdk_s3::Client,
    /// DynamoDB.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// The shared SDK configuration (for other clients, such as SQS in the local runner).
    pub sdk_config: SdkConfig,
    /// The services' own endpoints (`AWS_ENDPOINT_URL_<SERVICE>`), for the clients built later.
    service_endpoints: Vec<(&'static str, String)>,
}

impl AwsClients {
    /// A CloudFront client on the same configuration. Built on demand: only cleanup invalidates,
    /// and a client built here is code linked into every function.
    pub fn cloudfront(&self) -> aws_sdk_cloudfront::Client {
        aws_sdk_cloudfront::Client::new(&self.config_for("CLOUDFRONT"))
    }

    /// An EventBridge client on the same configuration, built on demand like CloudFront's: only
    /// the functions that change a media's state publish.
    pub fn eventbridge(&self) -> aws_sdk_eventbridge::Client {
        aws_sdk_eventbridge::Client::new(&self.config_for("EVENTBRIDGE"))
    }

    /// The shared configuration, with `service`'s own endpoint if it has one.
    fn config_for(&self, service: &str) -> SdkConfig {
        config_for(&self.sdk_config, &self.service_endpoints, service)
    }

    /// The clients as a function builds them at cold start, from what Lambda puts in the
    /// environment (see [`environment`]).
    pub async fn from_config(config: &Config) -> Self {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self::with(environment(env), config.s3_force_path_style)
    }

    /// The clients for a local emulator at `endpoint`, with dummy credentials (an emulator accepts
    /// any) and path-style S3 URLs (a loopback address has no bucket subdomains), whatever the
    /// environment says: used by `media-dev` and the tests only.
    pub async fn for_emulator(endpoint: &str) -> Self {
        Self::for_local_server(endpoint, "test", "test").await
    }

    /// The clients for a local S3-compatible server at `endpoint` that checks signatures made
    /// with these (dummy) keys; path-style, region `us-east-1`. Tests only.
    pub async fn for_local_server(endpoint: &str, access_key: &str, secret_key: &str) -> Self {
        let settings = Settings {
            region: Some("us-east-1".to_owned()),
            credentials: Some(Credentials::new(
                access_key, secret_key, None, None, "local",
            )),
            endpoint_url: Some(endpoint.to_owned()),
            service_endpoints: Vec::new(),
            use_fips: false,
            use_dual_stack: false,
        };
        Self::with(settings, true)
    }

    fn with(settings: Settings, force_path_style: bool) -> Self {
        // rustls on ring: no aws-lc C build, so the arm64 cross-build needs no cmake.
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let credentials = match settings.credentials {
            Some(credentials) => SharedCredentialsProvider::new(credentials),
            None => SharedCredentialsProvider::new(NoCredentials),
        };
        let mut sdk_config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(settings.region.map(Region::new))
            .credentials_provider(credentials)
            .retry_config(RetryConfig::standard())
            .http_client(http)
            .use_fips(settings.use_fips)
            .use_dual_stack(settings.use_dual_stack);
        sdk_config.set_endpoint_url(settings.endpoint_url);
        let sdk_config = sdk_config.build();
        let endpoints = settings.service_endpoints;
        let s3_config =
            aws_sdk_s3::config::Builder::from(&config_for(&sdk_config, &endpoints, "S3"))
                .force_path_style(force_path_style)
                // Without this, presigned PUT URLs carry a checksum of an empty body and uploads fail.
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
                .build();
        Self {
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            dynamodb: aws_sdk_dynamodb::Client::new(&config_for(
                &sdk_config,
                &endpoints,
                "DYNAMODB",
            )),
            sdk_config,
            service_endpoints: endpoints,
        }
    }
}

/// `shared`, with `service`'s own endpoint among `endpoints` in place of the shared one if it has
/// one.
fn config_for(
    shared: &SdkConfig,
    endpoints: &[(&'static str, String)],
    service: &str,
) -> SdkConfig {
    match endpoints.iter().find(|(name, _)| *name == service) {
        Some((_, url)) => shared.to_builder().endpoint_url(url).build(),
        None => shared.clone(),
    }
}

/// What the SDK clients are built from.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The region (`AWS_REGION`); none fails every call, as the SDK does.
    pub region: Option<String>,
    /// Static credentials; none fails every call with "no credentials".
    pub credentials: Option<Credentials>,
    /// Another endpoint than AWS's (an emulator).
    pub endpoint_url: Option<String>,
    /// One service's own endpoint, over `endpoint_url`: (`S3`, `DYNAMODB`, `EVENTBRIDGE` or
    /// `CLOUDFRONT`, its URL).
    pub service_endpoints: Vec<(&'static str, String)>,
    /// FIPS endpoints.
    pub use_fips: bool,
    /// Dual-stack endpoints.
    pub use_dual_stack: bool,
}

/// The settings a Lambda function finds in its environment, read through `env` (which answers
/// `None` for a variable that is unset or empty).
///
/// This is the part of `aws-config`'s default chain that applies in Lambda, without the rest
/// (profile files, SSO, IMDS, ECS and web-identity providers and the STS client they need), which
/// was a tenth of an API function's code:
/// - the region: `AWS_REGION`, else `AWS_DEFAULT_REGION`;
/// - the credentials: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, which
///   Lambda sets from the function's role for the life of the execution environment;
/// - `AWS_ENDPOINT_URL` and the services' own `AWS_ENDPOINT_URL_S3`, `_DYNAMODB`, `_EVENTBRIDGE`
///   and `_CLOUDFRONT` (unless `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is `true`),
///   `AWS_USE_FIPS_ENDPOINT` and `AWS_USE_DUALSTACK_ENDPOINT`.
///
/// Retries are the SDK's standard mode (3 attempts), as `aws-config` sets them.
pub fn environment(env: impl Fn(&str) -> Option<String>) -> Settings {
    let flag = |name: &str| env(name).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let credentials = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(key), Some(secret)) => Some(Credentials::new(
            key,
            secret,
            env("AWS_SESSION_TOKEN"),
            None,
            "environment",
        )),
        _ => None,
    };
    let ignore_endpoints = flag("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    let service_endpoints = ["S3", "DYNAMODB", "EVENTBRIDGE", "CLOUDFRONT"]
        .into_iter()
        .filter(|_| !ignore_endpoints)
        .filter_map(|service| Some((service, env(&format!("AWS_ENDPOINT_URL_{service}"))?)))
        .collect();
    Settings {
        region: env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")),
        credentials,
        endpoint_url: env("AWS_ENDPOINT_URL").filter(|_| !ignore_endpoints),
        service_endpoints,
        use_fips: flag("AWS_USE_FIPS_ENDPOINT"),
        use_dual_stack: flag("AWS_USE_DUALSTACK_ENDPOINT"),
    }
}

/// The credentials provider when the environment has none: every call fails, saying so.
#[derive(Debug)]
struct NoCredentials;

impl ProvideCredentials for NoCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::ready(Err(CredentialsError::not_loaded(
            "no credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set",
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Settings {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        environment(|name| vars.get(name).filter(|v| !v.is_empty()).cloned())
    }

    #[test]
    fn lambdas_environment_gives_region_credentials_and_no_endpoint() {
        let s = settings(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
        ]);
        assert_eq!(s.region.as_deref(), Some("eu-west-1"));
        let Some(creds) = s.credentials else {
            panic!("no credentials read");
        };
        assert_eq!(creds.access_key_id(), "AKIDEXAMPLE");
        assert_eq!(creds.secret_access_key(), "secret");
        assert_eq!(creds.session_token(), Some("token"));
        assert_eq!(s.endpoint_url, None);
        assert!(!s.use_fips && !s.use_dual_stack);
    }

    #[test]
    fn defaults_endpoints_and_missing_parts() {
        let s = settings(&[
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_USE_FIPS_ENDPOINT", "TRUE"),
            ("AWS_USE_DUALSTACK_ENDPOINT", "false"),
        ]);
        assert_eq!(s.region.as_deref(), Some("us-east-1"));
        // A key without its secret is no credentials.
        assert_eq!(s.credentials, None);
        assert_eq!(s.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
        assert!(s.use_fips && !s.use_dual_stack);
        assert_eq!(s.service_endpoints, []);

        // A service's own endpoint, beside the shared one.
        let s = settings(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:6000"),
        ]);
        assert_eq!(
            s.service_endpoints,
            [("S3", "http://127.0.0.1:6000".to_owned())]
        );

        let s = settings(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:6000"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
            ("AWS_REGION", ""),
        ]);
        assert_eq!(s.endpoint_url, None);
        assert_eq!(s.service_endpoints, []);
        assert_eq!(s.region, None);
    }

    /// The first request line a client sends to `listener`, answered with an empty `200`.
    async fn first_request(listener: &tokio::net::TcpListener) -> String {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let accepted = tokio::time::timeout(std::time::Duration::from_secs(10), listener.accept());
        let Ok(Ok((stream, _))) = accepted.await else {
            return String::from("no request");
        };
        let mut stream = BufReader::new(stream);
        let mut line = String::new();
        let _ = stream.read_line(&mut line).await;
        let _ = stream
            .get_mut()
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await;
        line.trim_end().to_owned()
    }

    #[tokio::test]
    async fn a_services_own_endpoint_overrides_the_shared_one_for_that_service_only() {
        let shared = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bound");
        let own = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bound");
        let url =
            |l: &tokio::net::TcpListener| format!("http://{}", l.local_addr().expect("an address"));
        let clients = AwsClients::with(
            settings(&[
                ("AWS_REGION", "us-east-1"),
                ("AWS_ACCESS_KEY_ID", "test"),
                ("AWS_SECRET_ACCESS_KEY", "test"),
                ("AWS_ENDPOINT_URL", &url(&shared)),
                ("AWS_ENDPOINT_URL_S3", &url(&own)),
            ]),
            true,
        );
        let s3 = clients.s3.clone();
        let call = tokio::spawn(async move { s3.head_bucket().bucket("media").send().await });
        assert_eq!(first_request(&own).await, "HEAD /media/ HTTP/1.1");
        let _ = call.await;
        // DynamoDB keeps the shared endpoint.
        let dynamodb = clients.dynamodb.clone();
        let call = tokio::spawn(async move { dynamodb.list_tables().send().await });
        assert_eq!(first_request(&shared).await, "POST / HTTP/1.1");
        let _ = call.await;
    }

    #[tokio::test]
    async fn without_credentials_a_call_fails_before_it_is_sent() {
        // Port 9 (discard) on loopback: nothing is sent, the signer fails first.
        let clients = AwsClients::with(
            settings(&[
                ("AWS_REGION", "us-east-1"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
            ]),
            true,
        );
        let result = clients.s3.head_bucket().bucket("b").send().await;
        let err = match result {
            Ok(_) => String::from("succeeded"),
            Err(e) => format!("{}", aws_sdk_s3::error::DisplayErrorContext(e)),
        };
        assert!(err.contains("no credentials"), "{err}");
    }
}
