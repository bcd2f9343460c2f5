//! Lambda function `library`: the caller's media library — `GET /api/v1/upload` (list) and
//! `PATCH /api/v1/upload/{mediaId}` (describe). The handler, wired to the runtime by `main.rs`.

pub mod handler;
