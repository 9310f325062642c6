//! Start-up replay: what an earlier run left in the spool and the database lacks, written once.
//!
//! It runs before the gateway accepts a request.
//! An earlier run leaves records behind when it was killed, or stopped while the database was
//! away. Some of them may be in the database already (the last batch before a crash may have
//! been committed): the replay asks which ids the database has and writes only the others,
//! through the ledger's own batch write, so the rollups count every record once.

use std::time::Instant;

use sea_orm::{DatabaseConnection, DbErr};

use super::spool::{self, Cursor, Spool};
use super::store;

/// What the replay did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    /// Records found in the spool.
    pub found: usize,
    /// Of those, the ones the database did not have, now written.
    pub written: usize,
}

/// Why the replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("failed to read the ledger spool {dir}: {source}")]
    Read { dir: String, source: std::io::Error },
    #[error("failed to write the records left in the ledger spool {dir} to the database ({written} of them written): {source}; the rest stay there for the next start")]
    Write {
        dir: String,
        written: usize,
        source: DbErr,
    },
}

/// Writes what `spool` holds from an earlier run and the database lacks, in batches of
/// `batch_size`, in sequence order; then deletes those segments.
pub async fn replay(
    db: &DatabaseConnection,
    spool: &mut Spool,
    batch_size: usize,
) -> Result<Replayed, ReplayError> {
    let mut done = Replayed::default();
    if spool.segments() == 0 {
        return Ok(done);
    }
    let started = Instant::now();
    let dir = spool.dir().to_path_buf();
    let dir_name = dir.display().to_string();
    tracing::info!(dir = %dir_name, segments = spool.segments(), "writing the ledger records an earlier run left in the spool");
    let mut cursor = Cursor::from(1);
    loop {
        // Reading is blocking file I/O, but nothing else runs yet: the server is not started.
        let read =
            spool::read(&dir, &cursor, None, batch_size).map_err(|source| ReplayError::Read {
                dir: dir_name.clone(),
                source,
            })?;
        if read.records.is_empty() {
            break;
        }
        cursor = read.cursor;
        let batch: Vec<_> = read.records.into_iter().map(|(_, r)| r).collect();
        done.found += batch.len();
        done.written +=
            store::write_unwritten(db, &batch)
                .await
                .map_err(|source| ReplayError::Write {
                    dir: dir_name.clone(),
                    written: done.written,
                    source,
                })?;
    }
    if let Err(e) = spool.remove_written(spool.last_seq()) {
        // Harmless: the next start finds them in the database and writes nothing twice.
        tracing::warn!(error = %e, dir = %dir_name, "failed to delete replayed spool segments");
    }
    tracing::info!(
        found = done.found,
        written = done.written,
        already_in_database = done.found - done.written,
        took_ms = started.elapsed().as_millis() as u64,
        "ledger spool replayed"
    );
    Ok(done)
}
