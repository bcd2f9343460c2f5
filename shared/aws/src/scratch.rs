//! Scratch copies of large objects: a private, unnamed file in the temporary directory (Lambda's
//! `/tmp`, its ephemeral storage), mapped read-only once it is written. The parsers then read it
//! like a byte slice while the kernel pages it in and out: the function's heap does not grow with
//! the file, and the pages are cache the kernel reclaims first.
//!
//! Mapping a file is `unsafe` because another process could change it under the mapping; this
//! module is the only place that maps one, and only a file nobody else can reach (see
//! [`map`]). With the pipeline's libwebp call and its AV1 decoder, the workspace's third
//! exception to `unsafe_code = "deny"`.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;

/// A scratch file for one object: created in the temporary directory and unlinked at once
/// (`O_TMPFILE` on Linux), so it has no name another process could open, and its space is
/// freed when the last handle or mapping goes, whatever happens to the run.
pub(crate) fn scratch() -> io::Result<File> {
    tempfile::tempfile()
}

/// A written scratch file's bytes, mapped read-only.
pub(crate) struct Mapped(Option<memmap2::Mmap>);

impl AsRef<[u8]> for Mapped {
    fn as_ref(&self) -> &[u8] {
        self.0.as_deref().unwrap_or_default()
    }
}

/// Maps `file`, a file [`scratch`] made and the caller has finished writing, read-only; the
/// handle is closed (the mapping keeps the file).
pub(crate) fn map(file: File) -> io::Result<Mapped> {
    if file.metadata()?.len() == 0 {
        // An empty mapping is an error on Linux; an empty file is an empty slice.
        return Ok(Mapped(None));
    }
    // SAFETY: the mapping's bytes change only if the file is written or truncated. The file has
    // no name (`scratch`), this is its only handle, and the handle is dropped here unwritten after
    // the mapping is made, so nothing can write to it for as long as the mapping lives.
    let map = unsafe { memmap2::Mmap::map(&file)? };
    drop(file);
    Ok(Mapped(Some(map)))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_written_scratch_file_reads_back_as_a_slice() {
        let mut file = scratch().expect("a scratch file");
        file.write_all(b"%PDF-1.7 and the rest").expect("written");
        let mapped = map(file).expect("mapped");
        assert_eq!(mapped.as_ref(), b"%PDF-1.7 and the rest");
        let empty = map(scratch().expect("a scratch file")).expect("mapped");
        assert!(empty.as_ref().is_empty());
    }
}
