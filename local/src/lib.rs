//! `media-dev`: the whole system on a local AWS emulator. The API runs each route's own Lambda
//! handler behind a local JWT authorizer, S3 events reach the process handler through an SQS queue
//! (the emulator's S3 notifications), and the cleanup handler runs on a timer.

pub mod auth;
pub mod pipeline_cli;
pub mod server;
pub mod stack;
pub mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use media_core::{Config, MediaService};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Defaults for running locally, under the environment: a fixed bucket and table on the emulator.
pub fn local_config() -> Result<Config, media_core::config::ConfigError> {
    Config::from_lookup(|name| {
        std::env::var(name)
            .ok()
            .or_else(|| local_config_default(name))
    })
}

/// The local stack's own defaults: its bucket and table names.
pub fn local_config_default(name: &str) -> Option<String> {
    match name {
        "MEDIA_BUCKET" | "MEDIA_TABLE" => Some("media-local".to_owned()),
        _ => None,
    }
}

/// How to run the local system.
#[derive(Debug, Clone)]
pub struct Options {
    /// Port on 127.0.0.1 (0: any free port).
    pub port: u16,
    /// HS256 secret of the local authorizer.
    pub jwt_secret: String,
    /// How often cleanup runs (`None`: never on its own).
    pub cleanup_interval: Option<Duration>,
    /// CORS origins allowed on the API.
    pub cors_origins: Vec<String>,
    /// The emulator's URL, when not `AWS_ENDPOINT_URL` (the tests put a fault proxy there).
    pub endpoint: Option<String>,
    /// How many S3 events the process handler works on at once (Lambda runs them concurrently).
    pub process_concurrency: usize,
}

impl Options {
    /// From `PORT`, `LOCAL_JWT_SECRET`, `CLEANUP_INTERVAL_SECONDS` and `CORS_ALLOWED_ORIGINS`.
    pub fn from_env() -> Self {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        Self {
            port: var("PORT").and_then(|p| p.parse().ok()).unwrap_or(3000),
            jwt_secret: var("LOCAL_JWT_SECRET").unwrap_or_else(|| auth::DEFAULT_SECRET.to_owned()),
            cleanup_interval: Some(Duration::from_secs(
                var("CLEANUP_INTERVAL_SECONDS")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(300),
            ))
            .filter(|d| !d.is_zero()),
            cors_origins: var("CORS_ALLOWED_ORIGINS")
                .unwrap_or_else(|| "*".to_owned())
                .split(',')
                .map(|s| s.trim().to_owned())
                .collect(),
            endpoint: None,
            process_concurrency: worker::DEFAULT_CONCURRENCY,
        }
    }
}

/// A running local system.
pub struct App {
    /// Where the API listens.
    pub addr: SocketAddr,
    /// The service, for inspecting state.
    pub service: MediaService,
    /// The provisioned stack.
    pub stack: stack::LocalStack,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Anything that stops the local system from starting.
pub type StartError = Box<dyn std::error::Error + Send + Sync>;

impl App {
    /// Provisions the stack, then starts the API, the event delivery and the cleanup timer.
    pub async fn start(config: Config, options: Options) -> Result<Self, StartError> {
        let stack =
            stack::provision(&config, &options.cors_origins, options.endpoint.as_deref()).await?;
        let service = process::processing(
            media_aws::wire::with_clients(&config, &stack.clients),
            &config,
        );
        let listener = TcpListener::bind(("127.0.0.1", options.port)).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let state = Arc::new(server::ApiState {
            service: service.clone(),
            jwt_secret: options.jwt_secret,
            stack: stack.clone(),
            cors_origins: options.cors_origins,
        });
        let mut tasks = vec![
            tokio::spawn(server::serve(listener, state, stopped.clone())),
            tokio::spawn(worker::deliver_events(
                service.clone(),
                stack.clone(),
                options.process_concurrency,
                stopped.clone(),
            )),
        ];
        if let Some(interval) = options.cleanup_interval {
            tasks.push(tokio::spawn(worker::cleanup_timer(
                service.clone(),
                interval,
                stopped,
            )));
        }
        Ok(Self {
            addr,
            service,
            stack,
            stop,
            tasks,
        })
    }

    /// The API's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops every task it started and waits (bounded) for them.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}
