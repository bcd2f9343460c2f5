//! Reading an object by ranges: what the process function needs for files too large to hold.

/// What a `HEAD` of an object says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectStat {
    /// Its size in bytes.
    pub size: u64,
    /// Its ETag, quotes included: the version every later read and copy insists on
    /// (`If-Match`), so that all of them see the same bytes.
    pub etag: String,
}

/// A file read by ranges: an S3 object with ranged GETs in the process function, a slice or a
/// local file in tests and in `media-dev process`.
pub trait RangeSource {
    /// The file's size in bytes.
    fn size(&self) -> u64;
    /// Up to `len` bytes from `offset` (fewer only at the end of the file).
    fn read_at(&mut self, offset: u64, len: usize) -> Result<Vec<u8>, String>;
}
