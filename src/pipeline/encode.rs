//! Result bodies: NDJSON serialised lazily one assessment chunk at a time, whole JSON, and
//! gzip-compressed JSON (the snapshot).

use std::io::Write as _;

use bytes::Bytes;
use serde::Serialize;

use crate::results::{Chunks, StoreError};

/// A file body: produced whole, or streamed as NDJSON chunks.
pub(super) enum Body<'a> {
    Whole(Result<Bytes, StoreError>),
    Ndjson(NdjsonChunks<'a>),
    Stream(Chunks<'a>),
}

/// NDJSON serialised lazily, one batch of records (an assessment chunk) at a time.
pub struct NdjsonChunks<'a> {
    remaining: Box<dyn Iterator<Item = Result<Vec<u8>, serde_json::Error>> + Send + 'a>,
    /// How many records the file holds.
    pub records: u64,
}

impl std::fmt::Debug for NdjsonChunks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NdjsonChunks")
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

impl Iterator for NdjsonChunks<'_> {
    type Item = Result<Bytes, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.remaining
            .next()
            .map(|chunk| chunk.map(Bytes::from).map_err(serialise_error))
    }
}

/// Serialises batches of records as NDJSON as they are produced, one upload chunk per batch;
/// `records` is how many they hold in all (for the manifest).
pub fn ndjson_stream<'a, B, T>(
    records: u64,
    batches: impl Iterator<Item = B> + Send + 'a,
) -> NdjsonChunks<'a>
where
    B: IntoIterator<Item = T>,
    T: Serialize,
{
    let chunks = batches.map(|batch| {
        let mut out = Vec::with_capacity(64 * 1024);
        for record in batch {
            serde_json::to_writer(&mut out, &record)?;
            out.push(b'\n');
        }
        Ok(out)
    });
    NdjsonChunks {
        remaining: Box::new(chunks),
        records,
    }
}

/// A document serialised piece by piece (one upload chunk per piece), such as
/// `attack-graph.json`.
pub fn json_chunks<'a>(
    pieces: impl Iterator<Item = Result<Vec<u8>, serde_json::Error>> + Send + 'a,
) -> Chunks<'a> {
    Box::new(pieces.map(|piece| piece.map(Bytes::from).map_err(serialise_error)))
}

/// Serialises a value as gzip-compressed JSON.
pub fn gzip_json<T: Serialize>(value: &T) -> Result<Bytes, StoreError> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // serde_json writes token by token; unbuffered, each tiny write costs the encoder a pass
    // over its whole output buffer (at 50,000 identities that was seconds of memset).
    let mut buffered = std::io::BufWriter::with_capacity(256 * 1024, &mut encoder);
    serde_json::to_writer(&mut buffered, value).map_err(serialise_error)?;
    buffered
        .flush()
        .map_err(|e| serialise_error(serde_json::Error::io(e)))?;
    drop(buffered);
    encoder
        .flush()
        .map_err(|e| serialise_error(serde_json::Error::io(e)))?;
    let bytes = encoder
        .finish()
        .map_err(|e| serialise_error(serde_json::Error::io(e)))?;
    Ok(Bytes::from(bytes))
}

pub(super) fn json_bytes<T: Serialize>(value: &T) -> Result<Bytes, StoreError> {
    serde_json::to_vec_pretty(value)
        .map(Bytes::from)
        .map_err(serialise_error)
}

fn serialise_error(e: serde_json::Error) -> StoreError {
    StoreError::Io {
        operation: "serialise",
        path: String::new(),
        message: e.to_string(),
    }
}
