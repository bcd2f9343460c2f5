use lambda_http::{Error, run, service_fn};
use media_core::Config;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let service = media_aws::wire::publishing_service(&config).await;
    run(service_fn(|req| library::handler::handle(&service, req))).await
}
