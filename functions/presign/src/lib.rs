//! Lambda function `presign`: the handler, wired to the runtime by `main.rs`.

pub mod handler;
pub mod multipart;
