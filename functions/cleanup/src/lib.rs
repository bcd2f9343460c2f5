//! Lambda function `cleanup`: the handler, wired to the runtime by `main.rs`.

pub mod handler;
