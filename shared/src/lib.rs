//! The core of the media upload backend: domain types, configuration, the image pipeline, the
//! service with one method per use case, its ports (object storage, the media repository and an
//! optional CDN cache) and their AWS adapters, and the service's metrics.
//!
//! Every Lambda function in `functions/` is a thin handler over [`service::MediaService`].

#![warn(missing_docs)]

pub mod api;
pub mod aws;
pub mod config;
pub mod domain;
pub mod events;
pub mod metrics;
pub mod pipeline;
pub mod ports;
pub mod post_policy;
#[cfg(feature = "provision")]
pub mod provision;
pub mod service;

pub use config::Config;
pub use service::MediaService;
