//! The audit journal: how a call that moved no money (a free read, a refusal) is answered
//! before its audit row is in SQLite without a `kill -9` losing the row.
//!
//! The row is appended to a file of this store's own (one `write`, no fsync: once the
//! kernel has it, a killed process cannot lose it) and queued for the writer thread, which
//! inserts it with the next group commit, tagged `journal_ref = "<file>:<seq>"`. When every
//! row appended so far has committed, the file is emptied. Whoever opens the database next
//! replays the files of dead owners (an owner holds an exclusive lock on its file while
//! alive), inserting the rows whose `journal_ref` is not in the table yet, and deletes them.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use super::writer::Writer;
use crate::audit::AuditRow;
use crate::error::StoreError;

/// Empty the file once it is this large and fully committed.
const REWIND_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Serialize, Deserialize)]
struct Line {
    r#ref: String,
    row: AuditRow,
}

struct State {
    /// `None` until the first row (a store that journals nothing, like a CLI command,
    /// leaves no file) and after `close` removed it; the next append creates it.
    file: Option<File>,
    appended: u64,
    bytes: u64,
}

fn open_locked(path: &Path) -> Result<File, StoreError> {
    let file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .read(true)
        .open(path)?;
    file.try_lock()
        .map_err(|e| StoreError::Io(std::io::Error::other(e.to_string())))?;
    Ok(file)
}

pub(super) struct Journal {
    path: PathBuf,
    name: String,
    state: Mutex<State>,
    committed: AtomicU64,
    /// Rows whose insert failed (store locked, disk full): queued again with the next
    /// append. They are in the file meanwhile, so a crash does not lose them either.
    retry: Mutex<Vec<Pending>>,
}

/// A journaled row on its way to the database.
pub(super) type Pending = Arc<(AuditRow, String)>;

/// `<db file name>-audit-<16 hex>.jnl`, next to the database.
fn prefix(db: &Path) -> Option<(PathBuf, String)> {
    let dir = match db.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = db.file_name()?.to_str()?.to_string();
    Some((dir, format!("{name}-audit-")))
}

impl Journal {
    /// This store's journal; its file is created (and locked for as long as the store
    /// lives) with the first row.
    pub(super) fn create(db: &Path) -> Result<Journal, StoreError> {
        let (dir, prefix) = prefix(db).ok_or_else(|| {
            StoreError::Io(std::io::Error::other(format!(
                "{} has no usable file name for the audit journal",
                db.display()
            )))
        })?;
        let name = format!("{prefix}{:016x}.jnl", rand::random::<u64>());
        let path = dir.join(&name);
        Ok(Journal {
            path,
            name,
            state: Mutex::new(State {
                file: None,
                appended: 0,
                bytes: 0,
            }),
            committed: AtomicU64::new(0),
            retry: Mutex::new(Vec::new()),
        })
    }

    /// Append `row`; `queue` is called with its reference while the journal is held, so
    /// rows reach the writer in the order they were written. `Err` hands the row back
    /// (nothing was written): the caller records it synchronously instead.
    #[allow(clippy::result_large_err)] // Err hands the caller's row back
    pub(super) fn append(&self, row: AuditRow, queue: impl Fn(Pending)) -> Result<(), AuditRow> {
        let mut st = self.state.lock();
        let st = &mut *st;
        let file = match &mut st.file {
            Some(f) => f,
            None => match open_locked(&self.path) {
                Ok(f) => st.file.insert(f),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot create the audit journal; recording synchronously");
                    return Err(row);
                }
            },
        };
        for p in std::mem::take(&mut *self.retry.lock()) {
            queue(p);
        }
        if st.bytes >= REWIND_BYTES
            && self.committed.load(Ordering::Acquire) == st.appended
            && file.set_len(0).is_ok()
        {
            st.bytes = 0;
        }
        let seq = st.appended + 1;
        let line = Line {
            r#ref: format!("{}:{seq}", self.name),
            row,
        };
        let mut bytes = match serde_json::to_vec(&line) {
            Ok(b) => b,
            Err(_) => return Err(line.row),
        };
        bytes.push(b'\n');
        if let Err(e) = file.write_all(&bytes) {
            tracing::warn!(error = %e, "audit journal write failed; recording synchronously");
            return Err(line.row);
        }
        st.appended = seq;
        st.bytes += bytes.len() as u64;
        queue(Arc::new((line.row, line.r#ref)));
        Ok(())
    }

    /// Called from the writer thread when a queued row's transaction ends.
    pub(super) fn done(&self, row: Pending, result: Result<(), StoreError>) {
        match result {
            Ok(()) => {
                self.committed.fetch_add(1, Ordering::AcqRel);
            }
            Err(e) => {
                tracing::error!(error = %e, "an audit row could not be stored yet; it is kept in the journal and tried again");
                self.retry.lock().push(row);
            }
        }
    }

    /// Queue the rows waiting for a retry (before a read that must see every row).
    pub(super) fn retry_now(&self, queue: impl Fn(Pending)) {
        let _st = self.state.lock();
        for p in std::mem::take(&mut *self.retry.lock()) {
            queue(p);
        }
    }

    /// Remove the file if every row is in the database (otherwise the next opener replays
    /// it). Rows appended later reopen it.
    pub(super) fn close(&self) {
        let mut st = self.state.lock();
        if st.file.is_some()
            && self.committed.load(Ordering::Acquire) == st.appended
            && std::fs::remove_file(&self.path).is_ok()
        {
            st.file = None;
            st.bytes = 0;
        }
    }
}

/// Replay the journals of stores that died with rows not yet in the database, then delete
/// them. A journal whose owner is alive (its lock is held) is left alone.
pub(super) fn recover(db: &Path, writer: &Writer) -> Result<usize, StoreError> {
    let Some((dir, prefix)) = prefix(db) else {
        return Ok(0);
    };
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(_) => return Ok(0),
    };
    let mut replayed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with(&prefix) && name.ends_with(".jnl")) {
            continue;
        }
        let path = entry.path();
        let Ok(file) = OpenOptions::new().read(true).write(true).open(&path) else {
            continue;
        };
        if file.try_lock().is_err() {
            continue; // a live store owns it
        }
        let lines = read_lines(&file);
        if !lines.is_empty() {
            let n = name.clone();
            replayed += writer.write(move |c| insert_missing(c, &n, &lines))?;
        }
        std::fs::remove_file(&path)?;
    }
    Ok(replayed)
}

fn read_lines(file: &File) -> Vec<Line> {
    BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        // A torn last line was never acknowledged (its write did not complete).
        .filter_map(|l| serde_json::from_str::<Line>(&l).ok())
        .collect()
}

/// Insert the journal's rows that the database does not have yet (inside the writer's
/// transaction).
fn insert_missing(conn: &Connection, name: &str, lines: &[Line]) -> Result<usize, StoreError> {
    // Every row of a journal shares its reference prefix (the file it was first written to).
    let prefixes: HashSet<&str> = lines
        .iter()
        .filter_map(|l| l.r#ref.rsplit_once(':').map(|(p, _)| p))
        .collect();
    let mut present = HashSet::new();
    for prefix in prefixes {
        let mut stmt = conn.prepare_cached(
            "SELECT journal_ref FROM audit WHERE journal_ref >= ?1 AND journal_ref < ?2",
        )?;
        // ';' sorts right after ':'
        let rows = stmt.query_map(params![format!("{prefix}:"), format!("{prefix};")], |r| {
            r.get::<_, String>(0)
        })?;
        for r in rows {
            present.insert(r?);
        }
    }
    let mut n = 0;
    for l in lines.iter().filter(|l| !present.contains(&l.r#ref)) {
        super::rows::insert_audit(conn, &l.row, Some(&l.r#ref))?;
        n += 1;
    }
    if n > 0 {
        tracing::warn!(
            rows = n,
            journal = name,
            "replayed audit rows a stopped process had not stored"
        );
    }
    Ok(n)
}
