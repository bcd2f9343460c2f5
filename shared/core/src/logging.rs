//! The functions' log output: what `lambda_runtime`'s `init_default_subscriber` does, without its
//! `EnvFilter`. That filter brings the regex engines (a quarter of a megabyte of every function's
//! code) for a level that Lambda sets as one word; `Targets` parses the same `target=level`
//! lists without them.
//!
//! - The level is `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced logging controls) if set, else
//!   `RUST_LOG`, else `INFO`. Both may be a level (`DEBUG`) or a comma-separated list of
//!   `target=level` directives with an optional default level (`info,aws_smithy_runtime=warn`);
//!   Lambda's `FATAL` is `ERROR`. Targets not named, and a value that does not parse, are at
//!   `INFO`.
//! - `AWS_LAMBDA_LOG_FORMAT=JSON` writes one JSON object per line; anything else, plain text.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber, writing to standard output. Call once, first thing in `main`;
/// a second call leaves the first subscriber in place.
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok();
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let filter = filter(level.as_deref());
    let format = tracing_subscriber::fmt::layer()
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .with_writer(std::io::stdout);
    let registry = tracing_subscriber::registry().with(filter);
    // `try_init`: a second call (tests) keeps the first subscriber.
    let _ = if json {
        registry.with(format.json()).try_init()
    } else {
        registry.with(format).try_init()
    };
}

/// The filter a level setting names (see the module's documentation).
pub fn filter(setting: Option<&str>) -> Targets {
    let default = Targets::new().with_default(LevelFilter::INFO);
    let Some(setting) = setting.map(str::trim).filter(|s| !s.is_empty()) else {
        return default;
    };
    if setting.eq_ignore_ascii_case("fatal") {
        return Targets::new().with_default(LevelFilter::ERROR);
    }
    match setting.parse::<Targets>() {
        // Only targets named (`aws_smithy_runtime=debug`): everything else at `INFO`.
        Ok(targets) if targets.default_level().is_none() => targets.with_default(LevelFilter::INFO),
        Ok(targets) => targets,
        Err(_) => default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn lambda_levels_and_directive_lists_parse() {
        assert!(filter(None).would_enable("any", &Level::INFO));
        assert!(!filter(None).would_enable("any", &Level::DEBUG));
        assert!(filter(Some("DEBUG")).would_enable("any", &Level::DEBUG));
        assert!(!filter(Some("WARN")).would_enable("any", &Level::INFO));
        assert!(filter(Some("FATAL")).would_enable("any", &Level::ERROR));
        assert!(!filter(Some("FATAL")).would_enable("any", &Level::WARN));

        let list = filter(Some("info,aws_smithy_runtime=warn"));
        assert!(list.would_enable("media_core::get", &Level::INFO));
        assert!(!list.would_enable("aws_smithy_runtime::client", &Level::INFO));
        assert!(list.would_enable("aws_smithy_runtime::client", &Level::WARN));
    }

    #[test]
    fn a_setting_that_does_not_parse_is_info() {
        for bad in ["", "  ", "loud", "a=b=c", "aws_smithy_runtime=debug"] {
            let f = filter(Some(bad));
            assert!(f.would_enable("x", &Level::INFO), "{bad:?}");
            assert!(!f.would_enable("x", &Level::DEBUG), "{bad:?}");
        }
    }
}
