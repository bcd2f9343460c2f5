//! The one place that builds the SDK clients. `AWS_ENDPOINT_URL` (the SDK's own variable) points
//! them at an emulator.

use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use media_core::config::Config;

/// The SDK clients, built once at cold start.
#[derive(Debug, Clone)]
pub struct AwsClients {
    /// S3.
    pub s3: aws_sdk_s3::Client,
    /// DynamoDB.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// The shared SDK configuration (for other clients, such as SQS in the local runner).
    pub sdk_config: aws_config::SdkConfig,
}

impl AwsClients {
    /// A CloudFront client on the same configuration. Built on demand: only cleanup invalidates,
    /// and a client built here is code linked into every function.
    pub fn cloudfront(&self) -> aws_sdk_cloudfront::Client {
        aws_sdk_cloudfront::Client::new(&self.sdk_config)
    }

    /// An EventBridge client on the same configuration, built on demand like CloudFront's: only
    /// the functions that change a media's state publish.
    pub fn eventbridge(&self) -> aws_sdk_eventbridge::Client {
        aws_sdk_eventbridge::Client::new(&self.sdk_config)
    }

    /// Loads the SDK configuration from the environment and builds the clients.
    pub async fn from_config(config: &Config) -> Self {
        let loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        Self::with_loader(loader, config.s3_force_path_style).await
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
        let loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                access_key, secret_key, None, None, "local",
            ));
        Self::with_loader(loader, true).await
    }

    async fn with_loader(loader: aws_config::ConfigLoader, force_path_style: bool) -> Self {
        // rustls on ring: no aws-lc C build, so the arm64 cross-build needs no cmake.
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let sdk_config = loader.http_client(http).load().await;
        let s3_config = aws_sdk_s3::config::Builder::from(&sdk_config)
            .force_path_style(force_path_style)
            // Without this, presigned PUT URLs carry a checksum of an empty body and uploads fail.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        Self {
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk_config),
            sdk_config,
        }
    }
}
