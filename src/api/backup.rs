//! `GET /api/v1/backup`: a backup of the running node's store (`backup::write`), streamed as it
//! is read. `rw` tokens only: a backup holds every body this node holds, TLP:RED included.

use std::io::{self, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use super::error::ApiError;
use super::{Inner, Writer};

/// Bytes gathered before a chunk is handed to the connection.
pub const CHUNK_BYTES: usize = 64 * 1024;
/// Chunks waiting for a slow client: bounds a backup's memory (1 MiB) and makes the store
/// reader wait for the network instead of reading ahead.
pub const CHUNKS_QUEUE_MAX: usize = 16;

/// `GET /api/v1/backup`.
pub async fn backup(State(inner): State<Arc<Inner>>, _: Writer) -> Result<Response, ApiError> {
    let store = inner.node.store.clone();
    let node = inner.node.name.clone();
    // The heads first (see `backup`'s module docs): the file holds every log up to these.
    let heads = store.heads();
    let entries: u64 = heads.values().map(|t| t.seq).sum();
    let (tx, rx) = mpsc::channel(CHUNKS_QUEUE_MAX);
    tokio::task::spawn_blocking(move || {
        let mut w = ChunkWriter { tx, buf: Vec::with_capacity(CHUNK_BYTES) };
        match crate::backup::write(&store, &node, heads, &mut w, &mut |_| {}) {
            Ok(s) => tracing::info!(entries = s.entries, forks = s.forks, bytes = s.bytes, "backup sent"),
            Err(e) => {
                tracing::warn!(error = %e, "backup stopped");
                // The client sees the stream end early, without an end record: an incomplete file.
                let _ = w.tx.blocking_send(Err(io::Error::other(e.to_string())));
            }
        }
    });
    let file = format!("attachment; filename=\"ctix-{}-{}.backup\"", inner.node.name, crate::now_ms() / 1000);
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_DISPOSITION, file),
            (header::HeaderName::from_static("x-ctix-backup-entries"), entries.to_string()),
        ],
        Body::from_stream(Chunks(rx)),
    )
        .into_response())
}

/// Hands the backup's bytes to the response in chunks of `CHUNK_BYTES`.
struct ChunkWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_BYTES)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client closed the connection"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= CHUNK_BYTES {
            self.send()?;
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// The receiving end as the stream axum sends.
struct Chunks(mpsc::Receiver<io::Result<Bytes>>);

impl futures_core::Stream for Chunks {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}
