//! `media-dev serve | token <user> [--ttl SECONDS] | cleanup | process <file> [...]`

use std::process::ExitCode;
use std::time::Duration;

use media_dev::pipeline_cli::{self, ProcessArgs};
use media_dev::{App, Options, auth, local_config, local_config_default};

const USAGE: &str = "usage:
  media-dev serve                     run the API, event delivery and cleanup timer on the local emulator
  media-dev token <user> [--ttl SECS] print a token for <user> (default ttl 3600 s)
  media-dev cleanup                   run the cleanup handler once and print its summary
  media-dev process <file> [--out DIR] [--repeat N] [--type MIME]
                                      run the process function's image pipeline on a local file
                                      (THUMBNAIL_* and limits from the environment); print the
                                      metadata that would be stored or the rejection; write the
                                      derivatives to DIR; exit 0 if accepted, 3 if rejected";

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn")
            }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["serve"] => serve().await,
        ["token", user] => token(user, 3600),
        ["token", user, "--ttl", ttl] => match ttl.parse() {
            Ok(ttl) => token(user, ttl),
            Err(_) => Err("--ttl takes a number of seconds".into()),
        },
        ["cleanup"] => cleanup().await,
        ["process", rest @ ..] => return process(rest),
        _ => Err(USAGE.into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("media-dev: {e}");
            let mut source = e.source();
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn process(args: &[&str]) -> ExitCode {
    let run = || -> Result<bool> {
        let args = ProcessArgs::parse(args).map_err(|e| format!("{e}\n{USAGE}"))?;
        let options = process::pipeline_options(&config_without_scanner()?);
        let report = pipeline_cli::run(&args, &options)?;
        println!("{}", serde_json::to_string_pretty(&report.json)?);
        Ok(report.accepted)
    };
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(3),
        Err(e) => {
            eprintln!("media-dev: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn token(user: &str, ttl: i64) -> Result {
    let secret =
        std::env::var("LOCAL_JWT_SECRET").unwrap_or_else(|_| auth::DEFAULT_SECRET.to_owned());
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    println!("{}", auth::sign(&secret, user, now, now + ttl));
    Ok(())
}

async fn serve() -> Result {
    let config = local_config()?;
    let options = Options::from_env();
    let app = App::start(config, options).await?;
    tracing::info!(
        "media-dev ready: API on {} (GET /health); Ctrl-C to stop",
        app.url()
    );
    tokio::signal::ctrl_c().await?;
    tracing::info!("stopping");
    app.shutdown().await;
    Ok(())
}

/// The local configuration for a command that scans nothing (`process`, the pipeline alone;
/// `cleanup`): no scanner needs to be named for it.
fn config_without_scanner()
-> std::result::Result<media_core::Config, media_core::config::ConfigError> {
    media_core::Config::from_lookup(|name| {
        std::env::var(name)
            .ok()
            .or_else(|| (name == "MALWARE_SCANNER").then(|| "none".to_owned()))
            .or_else(|| local_config_default(name))
    })
}

async fn cleanup() -> Result {
    let config = config_without_scanner()?;
    let options = media_dev::Options::from_env();
    let stack = media_dev::stack::provision(&config, &options.cors_origins, None).await?;
    let service = media_aws::wire::with_clients(&config, &stack.clients);
    let event = lambda_runtime::LambdaEvent::new(
        serde_json::Value::Null,
        lambda_runtime::Context::default(),
    );
    let summary = tokio::time::timeout(
        Duration::from_secs(300),
        cleanup::handler::handle(&service, event),
    )
    .await?
    .map_err(|e| e.error_message)?;
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}
