//! The ledger's spool: finished records in local files until the database has them.
//!
//! A record is appended here before it reaches the database, so that a crash, or a shutdown
//! while the database is away, loses no record the kernel holds.
//!
//! The spool is a directory (`[database] spool_dir`) of segment files, `spool-<first seq>.jsonl`,
//! one JSON line per record: `{"seq":N,"request":{…},"attempts":[…]}` (the attempts the database
//! keeps). Sequence numbers grow by one per record, across segments and restarts. The ledger
//! writes records to the database in sequence order, so the written ones are always a prefix; a
//! closed segment whose last record is written is deleted. A `lock` file in the directory is held
//! (`flock`) for the life of the process: two gateways never share a spool.
//!
//! Appends are plain `write(2)`s with no `fsync`, as nginx writes its access log: a killed process
//! loses nothing it had written; an operating-system crash may lose the last seconds.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{spool_line, LedgerRecord};

const SEGMENT_PREFIX: &str = "spool-";
const SEGMENT_SUFFIX: &str = ".jsonl";
const LOCK_FILE: &str = "lock";

/// A segment holding anything is closed after this long, so that under a steady load (or once
/// idle) the files of written records are deleted within about a second of being written: most
/// of them never reach the disk, since the kernel writes dirty pages back after ~30 s.
pub const ROTATE_EVERY: Duration = Duration::from_secs(1);

/// Why the spool could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the spool directory {dir} is in use by another llm-gateway process{holder}: give each instance its own `[database] spool_dir`")]
    Locked { dir: PathBuf, holder: String },
    #[error("failed to open the spool directory {dir} ([database] spool_dir): {source}")]
    Open { dir: PathBuf, source: io::Error },
}

/// A segment file and the records it holds.
#[derive(Debug)]
struct Segment {
    first: u64,
    /// The last record appended (`first - 1` while empty).
    last: u64,
    path: PathBuf,
    bytes: u64,
}

/// The segment being appended to.
struct Active {
    file: File,
    segment: Segment,
    opened: Instant,
}

/// What one append did.
#[derive(Debug)]
pub struct Appended {
    /// The sequence number of the first record appended.
    pub first: u64,
    /// Whether every record reached the file (else the error says why).
    pub result: io::Result<()>,
}

/// The writing side of the spool: owned by the spooler thread (start-up replay first).
pub struct Spool {
    dir: PathBuf,
    /// Held, locked, for as long as the spool lives.
    _lock: File,
    segment_bytes: u64,
    closed: VecDeque<Segment>,
    active: Option<Active>,
    next_seq: u64,
    /// The lines of one append, reused.
    buf: Vec<u8>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("dir", &self.dir)
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

impl Spool {
    /// Opens (creating it if needed) and locks the spool directory. Segments left by an earlier
    /// run are kept, for [`super::replay`]; new records are numbered after theirs.
    pub fn open(dir: &Path, segment_bytes: u64) -> Result<Self, SpoolError> {
        let open_error = |source| SpoolError::Open {
            dir: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(open_error)?;
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))
            .map_err(open_error)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = lock.read_to_string(&mut pid);
                let pid = pid.trim();
                return Err(SpoolError::Locked {
                    dir: dir.to_path_buf(),
                    holder: if pid.is_empty() {
                        String::new()
                    } else {
                        format!(" (pid {pid})")
                    },
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(open_error(e)),
        }
        // Who holds the lock, for the message a second instance gets.
        lock.set_len(0)
            .and_then(|()| lock.write_all(std::process::id().to_string().as_bytes()))
            .map_err(open_error)?;

        let mut closed = VecDeque::new();
        let found = list_segments(dir).map_err(open_error)?;
        for (i, (first, path)) in found.iter().enumerate() {
            let last = match found.get(i + 1) {
                Some((next, _)) => next.saturating_sub(1).max(first.saturating_sub(1)),
                None => last_seq_in(path).map_err(open_error)?.unwrap_or(first - 1),
            };
            let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
            closed.push_back(Segment {
                first: *first,
                last,
                path: path.clone(),
                bytes,
            });
        }
        let next_seq = closed.back().map_or(1, |s| s.last.max(s.first) + 1);
        Ok(Self {
            dir: dir.to_path_buf(),
            _lock: lock,
            segment_bytes,
            closed,
            active: None,
            next_seq,
            buf: Vec::new(),
        })
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The sequence number of the last record appended (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// Segment files on disk.
    pub fn segments(&self) -> usize {
        self.closed.len() + usize::from(self.active.is_some())
    }

    /// Bytes in the segment files.
    pub fn bytes(&self) -> u64 {
        self.closed.iter().map(|s| s.bytes).sum::<u64>()
            + self.active.as_ref().map_or(0, |a| a.segment.bytes)
    }

    /// Appends `records` as the next sequence numbers, in one `write(2)`.
    pub fn append(&mut self, records: &[LedgerRecord]) -> Appended {
        let first = self.next_seq;
        self.buf.clear();
        for (seq, record) in (first..).zip(records) {
            spool_line::write(&mut self.buf, seq, record);
        }
        self.next_seq += records.len() as u64;
        Appended {
            first,
            result: self.write_buf(first),
        }
    }

    fn write_buf(&mut self, first: u64) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let active = match &mut self.active {
            Some(active) => active,
            None => {
                let path = self.dir.join(segment_name(first));
                let file = OpenOptions::new()
                    .append(true)
                    .create_new(true)
                    .open(&path)?;
                self.active.insert(Active {
                    file,
                    segment: Segment {
                        first,
                        last: first - 1,
                        path,
                        bytes: 0,
                    },
                    opened: Instant::now(),
                })
            }
        };
        active.segment.last = self.next_seq - 1;
        match active.file.write_all(&self.buf) {
            Ok(()) => {
                active.segment.bytes += self.buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                // What was written may end in a torn line: the segment ends there (readers skip
                // it), and the next append starts a new one.
                active.segment.bytes = active.file.metadata().map_or(0, |m| m.len());
                self.close_active();
                Err(e)
            }
        }
    }

    /// Closes the current segment when it is full or old enough, and deletes the closed
    /// segments whose records are all written (`written` is the last written sequence number).
    pub fn maintain(&mut self, written: u64) -> io::Result<()> {
        if let Some(active) = &self.active {
            if active.segment.bytes >= self.segment_bytes || active.opened.elapsed() >= ROTATE_EVERY
            {
                self.close_active();
            }
        }
        self.remove_written(written)
    }

    /// Deletes the closed segments whose records are all written.
    pub fn remove_written(&mut self, written: u64) -> io::Result<()> {
        while let Some(segment) = self.closed.front() {
            if segment.last > written {
                break;
            }
            match std::fs::remove_file(&segment.path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            self.closed.pop_front();
        }
        Ok(())
    }

    /// Closes the current segment and hands every segment to the disk (at shutdown: what is
    /// left then must outlive the machine too, not only the process).
    pub fn close(&mut self) {
        self.close_active();
        for segment in &self.closed {
            let _ = File::open(&segment.path).and_then(|f| f.sync_data());
        }
        let _ = File::open(&self.dir).and_then(|d| d.sync_all());
    }

    fn close_active(&mut self) {
        if let Some(active) = self.active.take() {
            self.closed.push_back(active.segment);
        }
    }
}

fn segment_name(first: u64) -> String {
    format!("{SEGMENT_PREFIX}{first:020}{SEGMENT_SUFFIX}")
}

/// The segment files in `dir`, by first sequence number.
fn list_segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(first) = name
            .to_str()
            .and_then(|n| n.strip_prefix(SEGMENT_PREFIX))
            .and_then(|n| n.strip_suffix(SEGMENT_SUFFIX))
            .and_then(|n| n.parse::<u64>().ok())
            .filter(|first| *first > 0)
        else {
            continue;
        };
        found.push((first, entry.path()));
    }
    found.sort();
    Ok(found)
}

/// The highest sequence number in a segment file.
fn last_seq_in(path: &Path) -> io::Result<Option<u64>> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut line = Vec::new();
    let mut last = None;
    while reader.read_until(b'\n', &mut line)? > 0 {
        if let Some(seq) = spool_line::seq(&line) {
            last = Some(last.map_or(seq, |l: u64| l.max(seq)));
        }
        line.clear();
    }
    Ok(last)
}

/// Where the next read starts: the record `next`, and where in which segment it was found.
#[derive(Debug, Clone)]
pub struct Cursor {
    next: u64,
    at: Option<(u64, u64)>,
}

impl Cursor {
    /// Reads from sequence number `next` on.
    pub fn from(next: u64) -> Self {
        Self { next, at: None }
    }

    /// The next sequence number this cursor reads.
    pub fn next(&self) -> u64 {
        self.next
    }
}

/// Records read back, in sequence order.
#[derive(Debug)]
pub struct ReadBack {
    pub records: Vec<(u64, LedgerRecord)>,
    /// Every record up to this one has been read or is missing.
    pub scanned_to: u64,
    /// Sequence numbers in the range read that no segment holds (they could not be written).
    pub missing: u64,
    /// Where the next read continues.
    pub cursor: Cursor,
}

/// Reads up to `limit` records from `cursor` on, up to `upto` while a spooler appends (`None`:
/// all there is, nothing is appending). A line cut short — a write interrupted by a crash or a
/// full disk — or that cannot be parsed is skipped, with a warning.
pub fn read(dir: &Path, cursor: &Cursor, upto: Option<u64>, limit: usize) -> io::Result<ReadBack> {
    let segments = list_segments(dir)?;
    let from = cursor.next;
    let (mut index, mut offset) = match cursor.at {
        Some((first, offset)) if segments.iter().any(|(f, _)| *f == first) => (
            segments.iter().position(|(f, _)| *f == first).unwrap_or(0),
            offset,
        ),
        _ => (
            segments
                .partition_point(|(first, _)| *first <= from)
                .saturating_sub(1),
            0,
        ),
    };
    let mut records = Vec::new();
    let mut expected = from;
    let mut missing = 0;
    let mut line = Vec::new();
    while let Some((first, path)) = segments.get(index) {
        let file = match File::open(path) {
            Ok(file) => file,
            // Deleted since the listing: all its records were written, none is needed here.
            Err(e) if e.kind() == io::ErrorKind::NotFound && index + 1 < segments.len() => {
                index += 1;
                offset = 0;
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut reader = BufReader::new(file);
        reader.seek(SeekFrom::Start(offset))?;
        let mut number = 0usize;
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 {
                break;
            }
            number += 1;
            let seq = spool_line::seq(&line);
            if let (Some(seq), Some(upto)) = (seq, upto) {
                if seq > upto {
                    return Ok(ReadBack {
                        records,
                        scanned_to: upto,
                        missing: missing + (upto + 1).saturating_sub(expected),
                        cursor: Cursor {
                            next: upto + 1,
                            at: Some((*first, offset)),
                        },
                    });
                }
            }
            if !line.ends_with(b"\n") {
                if upto.is_some() && index + 1 == segments.len() {
                    // The newest segment, being appended to: this is a write in progress, not
                    // finished when the read began. Read it next time.
                    break;
                }
                tracing::warn!(file = %path.display(), line = number, "skipped a torn line at the end of a spool segment (a write cut short)");
                offset += n as u64;
                break;
            }
            offset += n as u64;
            let Some(seq) = seq else {
                tracing::warn!(file = %path.display(), line = number, "skipped an unreadable line in the spool");
                continue;
            };
            if seq < expected {
                continue;
            }
            match spool_line::parse(&line) {
                Ok((_, record)) => {
                    missing += seq - expected;
                    expected = seq + 1;
                    records.push((seq, record));
                    if records.len() >= limit {
                        return Ok(ReadBack {
                            records,
                            scanned_to: seq,
                            missing,
                            cursor: Cursor {
                                next: seq + 1,
                                at: Some((*first, offset)),
                            },
                        });
                    }
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), line = number, error = %e, "skipped an unreadable line in the spool");
                }
            }
        }
        if index + 1 == segments.len() {
            break;
        }
        index += 1;
        offset = 0;
    }
    let scanned_to = match upto {
        Some(upto) => {
            missing += (upto + 1).saturating_sub(expected);
            upto.max(expected - 1)
        }
        None => expected - 1,
    };
    let at = segments.get(index).map(|(first, _)| (*first, offset));
    Ok(ReadBack {
        records,
        scanned_to,
        missing,
        cursor: Cursor {
            next: scanned_to + 1,
            at,
        },
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use entities::{attempts, requests};

    fn record(id: &str) -> LedgerRecord {
        LedgerRecord {
            request: requests::Model {
                id: id.to_string(),
                endpoint: "chat_completions".into(),
                outcome: "ok".into(),
                model_used: Some("gpt-4o".into()),
                cost_usd: Some(0.25),
                ..requests::Model::default()
            },
            attempts: vec![attempts::Model {
                id: 0,
                request_id: id.to_string(),
                ts_ms: 1,
                attempt: 0,
                provider_id: "openai".into(),
                model: "gpt-4o".into(),
                status: Some(200),
                error_kind: None,
                error_message: None,
                latency_ms: 3,
                mitigated: false,
            }],
        }
    }

    fn ids(read: &ReadBack) -> Vec<(u64, String)> {
        read.records
            .iter()
            .map(|(seq, r)| (*seq, r.request.id.clone()))
            .collect()
    }

    #[test]
    fn records_read_back_as_they_were_appended_in_sequence_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.append(&[record("a"), record("b")]).result.unwrap();
        spool.close();
        spool.append(&[record("c")]).result.unwrap();

        let read = super::read(dir.path(), &Cursor::from(1), None, 100).unwrap();

        assert_eq!(
            ids(&read),
            vec![(1, "a".into()), (2, "b".into()), (3, "c".into())]
        );
        assert_eq!(read.records[0].1.request, record("a").request);
        assert_eq!(
            read.records[0].1.attempts,
            vec![],
            "a single successful attempt is not stored"
        );
        assert_eq!((read.scanned_to, read.missing), (3, 0));
        assert_eq!(spool.segments(), 2);
    }

    #[test]
    fn the_attempts_of_a_failover_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        let mut failover = record("a");
        let mut failed = failover.attempts[0].clone();
        failed.error_kind = Some("upstream_http_500".into());
        failed.mitigated = true;
        failover.attempts.insert(0, failed);
        spool.append(&[failover.clone()]).result.unwrap();

        let read = super::read(dir.path(), &Cursor::from(1), None, 100).unwrap();

        assert_eq!(read.records[0].1.attempts, failover.attempts);
    }

    #[test]
    fn a_read_resumes_where_the_last_one_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool
            .append(&[record("a"), record("b"), record("c")])
            .result
            .unwrap();

        let first = super::read(dir.path(), &Cursor::from(1), Some(3), 2).unwrap();
        spool.append(&[record("d")]).result.unwrap();
        let second = super::read(dir.path(), &first.cursor, Some(4), 10).unwrap();
        let from_scratch = super::read(dir.path(), &Cursor::from(3), Some(4), 10).unwrap();

        assert_eq!(ids(&first), vec![(1, "a".into()), (2, "b".into())]);
        assert_eq!(ids(&second), vec![(3, "c".into()), (4, "d".into())]);
        assert_eq!(ids(&from_scratch), ids(&second));
    }

    #[test]
    fn a_live_read_stops_at_the_last_record_handed_over() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool
            .append(&[record("a"), record("b"), record("c")])
            .result
            .unwrap();

        let read = super::read(dir.path(), &Cursor::from(1), Some(2), 10).unwrap();

        assert_eq!(ids(&read), vec![(1, "a".into()), (2, "b".into())]);
        assert_eq!(read.cursor.next(), 3);
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_numbering_goes_on_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.append(&[record("a"), record("b")]).result.unwrap();
        drop(spool);
        let path = dir.path().join(segment_name(1));
        let text = std::fs::read(&path).unwrap();
        // A crash in the middle of the second line.
        std::fs::write(&path, &text[..text.len() - 40]).unwrap();

        let read = super::read(dir.path(), &Cursor::from(1), None, 100).unwrap();
        let reopened = Spool::open(dir.path(), 1 << 20).unwrap();

        assert_eq!(ids(&read), vec![(1, "a".into())]);
        assert_eq!(
            reopened.last_seq(),
            2,
            "the torn record's number is not reused"
        );
    }

    #[test]
    fn written_segments_are_deleted_once_closed() {
        let dir = tempfile::tempdir().unwrap();
        // Every append fills a segment.
        let mut spool = Spool::open(dir.path(), 1).unwrap();
        for id in ["a", "b", "c"] {
            spool.append(&[record(id)]).result.unwrap();
            spool.maintain(0).unwrap();
        }
        assert_eq!(spool.segments(), 3);

        spool.maintain(2).unwrap();

        assert_eq!(spool.segments(), 1);
        let left = super::read(dir.path(), &Cursor::from(1), None, 100).unwrap();
        assert_eq!(ids(&left), vec![(3, "c".into())]);
    }

    #[test]
    fn a_second_spool_on_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Spool::open(dir.path(), 1 << 20).unwrap();

        let second = Spool::open(dir.path(), 1 << 20).unwrap_err();

        let message = second.to_string();
        assert!(message.contains("spool_dir"), "{message}");
        assert!(
            message.contains(&std::process::id().to_string()),
            "{message}"
        );
    }
}
