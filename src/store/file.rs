//! The state file on disk: appends in group commits (one `fsync` per batch),
//! cut back to the last whole record when an append fails, and compaction by
//! write-to-temp, `fsync`, rename, `fsync` of the directory. Owned by the
//! store writer thread after start-up; nothing else writes the file.

use super::{Record, State, StoreError, encode_record, replay};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The state file, opened for appending after replay.
#[derive(Debug)]
pub struct StoreFile {
    path: PathBuf,
    file: File,
    /// Bytes known to be whole records; a failed append is cut back to here.
    good_len: u64,
    /// The file ends without `\n`: write one before the next record.
    missing_newline: bool,
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io {
        action,
        path,
        source,
    }
}

/// Replays `path`, cuts off a torn last line, and opens the file for
/// appending. Creates the file when missing.
pub fn open(path: &Path) -> Result<(State, StoreFile), StoreError> {
    let replay = replay(path)?;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io_error("opening", path))?;
    if let Some(line) = replay.torn_line {
        log::warn!(
            "state file {} line {line}: incomplete last line (procjon stopped while writing it); dropped it",
            path.display()
        );
        file.set_len(replay.good_len)
            .map_err(io_error("truncating", path))?;
        file.sync_all().map_err(io_error("syncing", path))?;
    }
    let mut store = StoreFile {
        path: path.to_path_buf(),
        file,
        good_len: replay.good_len,
        missing_newline: replay.missing_newline,
    };
    let mut state = replay.state;
    if wants_compaction(state.lines, state.live_lines()) {
        let lines = store.compact(&state.compacted())?;
        log_compaction(path, state.lines, lines);
        state.lines = lines;
    }
    Ok((state, store))
}

/// Compact when the file holds this many times the live lines (plus slack).
const COMPACT_FACTOR: u64 = 4;
/// Never compact files smaller than this many lines over the live lines.
pub(super) const COMPACT_SLACK: u64 = 10_000;

/// The most lines a file with `live` live lines may have before it is compacted.
pub(super) fn compaction_threshold(live: u64) -> u64 {
    COMPACT_FACTOR
        .saturating_mul(live)
        .saturating_add(COMPACT_SLACK)
}

/// Whether a file of `lines` lines, `live` of them live, is worth compacting.
pub(super) fn wants_compaction(lines: u64, live: u64) -> bool {
    lines > compaction_threshold(live)
}

/// The info line of a compaction (tests and people look for it).
pub(super) fn log_compaction(path: &Path, before: u64, after: u64) {
    log::info!(
        "compacted state file {}: {before} lines to {after}",
        path.display()
    );
}

impl StoreFile {
    /// The path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends records and syncs them to disk. On failure the file is cut
    /// back to its last whole record, so a retry can't follow a torn line.
    pub fn append(&mut self, records: &[Record]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(records.len() * 128);
        if self.missing_newline {
            buf.push(b'\n');
        }
        for record in records {
            encode_record(record, &mut buf);
        }
        let result = self
            .file
            .write_all(&buf)
            .map_err(io_error("appending to", &self.path))
            .and_then(|()| {
                self.file
                    .sync_data()
                    .map_err(io_error("syncing", &self.path))
            });
        match result {
            Ok(()) => {
                self.good_len += buf.len() as u64;
                self.missing_newline = false;
                Ok(())
            }
            Err(err) => {
                if let Err(cut) = self.file.set_len(self.good_len) {
                    // The next append would follow a torn fragment, and the
                    // replay would stop at it: say so where people look.
                    log::error!(
                        "state file {}: cutting a failed append back to {} bytes failed: {cut}; \
                         if procjon stops now, the line after byte {} is torn: delete it before \
                         starting again (procjon check-state shows it)",
                        self.path.display(),
                        self.good_len,
                        self.good_len
                    );
                }
                Err(err)
            }
        }
    }

    /// Rewrites the file as `records` only (see
    /// [`super::compacted_records`]): write a temp file, fsync, rename over
    /// the old one, fsync the directory. Returns how many lines it has.
    pub fn compact(&mut self, records: &[Record]) -> Result<u64, StoreError> {
        let tmp = self.path.with_extension("jsonl.compacting");
        let mut buf = Vec::with_capacity(records.len() * 128);
        for record in records {
            encode_record(record, &mut buf);
        }
        let write = || -> Result<File, StoreError> {
            let mut file = File::create(&tmp).map_err(io_error("creating", &tmp))?;
            file.write_all(&buf).map_err(io_error("writing", &tmp))?;
            file.sync_all().map_err(io_error("syncing", &tmp))?;
            std::fs::rename(&tmp, &self.path).map_err(io_error("renaming over", &self.path))?;
            sync_dir(&self.path)?;
            OpenOptions::new()
                .append(true)
                .open(&self.path)
                .map_err(io_error("reopening", &self.path))
        };
        match write() {
            Ok(file) => {
                self.file = file;
                self.good_len = buf.len() as u64;
                self.missing_newline = false;
                Ok(records.len() as u64)
            }
            Err(err) => {
                let _ = std::fs::remove_file(&tmp);
                Err(err)
            }
        }
    }
}

fn sync_dir(path: &Path) -> Result<(), StoreError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("syncing the directory of", path))
}
