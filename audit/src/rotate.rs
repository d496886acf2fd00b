//! A size-rotated log file with lumberjack's semantics, which upstream uses behind
//! `--audit-log-maxsize`, `--audit-log-maxbackup` and `--audit-log-maxage`:
//!
//! * a write that would take the file past the size limit first renames it to
//!   `<name>-<UTC time as 2006-01-02T15-04-05.000><ext>` and starts a fresh file;
//! * a single write larger than the limit is refused;
//! * after each rotation (and on first open) backups beyond the newest `max_backups`, and
//!   backups whose name-encoded time is older than `max_age_days`, are deleted; 0 disables
//!   either rule. A size limit of 0 means lumberjack's default of 100 MB.
//!
//! Blocking file I/O: only the backend's writer thread uses this.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};

/// Size used when `max_size_mb` is 0, as lumberjack.
pub const DEFAULT_MAX_SIZE_MB: u64 = 100;
const MEGABYTE: u64 = 1024 * 1024;
const BACKUP_TIME_FORMAT: &str = "%Y-%m-%dT%H-%M-%S%.3f";

/// A clock, replaceable so tests can control backup names and ages.
pub type Clock = Box<dyn FnMut() -> DateTime<Utc> + Send>;

/// An append-only file rotated by size, pruning old backups by count and age.
pub struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    max_backups: u32,
    max_age_days: u32,
    file: Option<File>,
    size: u64,
    clock: Clock,
}

impl RotatingFile {
    /// A rotating file at `path`; nothing is opened until the first write.
    pub fn new(path: &Path, max_size_mb: u32, max_backups: u32, max_age_days: u32) -> Self {
        let mb = match u64::from(max_size_mb) {
            0 => DEFAULT_MAX_SIZE_MB,
            n => n,
        };
        Self::with_max_bytes(path, mb.saturating_mul(MEGABYTE), max_backups, max_age_days)
    }

    /// Like [`RotatingFile::new`] with the limit in bytes (0 is taken as 1 byte).
    pub fn with_max_bytes(
        path: &Path,
        max_bytes: u64,
        max_backups: u32,
        max_age_days: u32,
    ) -> Self {
        RotatingFile {
            path: path.to_path_buf(),
            max_bytes: max_bytes.max(1),
            max_backups,
            max_age_days,
            file: None,
            size: 0,
            clock: Box::new(Utc::now),
        }
    }

    /// Replaces the clock used for backup names and the age cutoff.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Appends `data` in one write, rotating first if it would not fit.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let len = data.len() as u64;
        if len > self.max_bytes {
            return Err(io::Error::other(format!(
                "write length {len} exceeds maximum file size {}",
                self.max_bytes
            )));
        }
        if self.file.is_none() {
            self.open_existing_or_new(len)?;
        }
        if self.size + len > self.max_bytes {
            self.rotate()?;
        }
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("log file not open"))?;
        file.write_all(data)?;
        self.size += len;
        Ok(())
    }

    /// Flushes the current file, if open.
    pub fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }

    /// Closes the current file and moves it aside, then prunes backups.
    pub fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        self.open_new()?;
        self.prune();
        Ok(())
    }

    fn open_existing_or_new(&mut self, write_len: u64) -> io::Result<()> {
        self.prune();
        let meta = match fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return self.open_new(),
            Err(e) => return Err(e),
        };
        if meta.len() + write_len >= self.max_bytes {
            return self.rotate();
        }
        match OpenOptions::new().append(true).open(&self.path) {
            Ok(f) => {
                self.file = Some(f);
                self.size = meta.len();
                Ok(())
            }
            // An unopenable existing file is moved aside rather than blocking all writes.
            Err(_) => self.open_new(),
        }
    }

    fn open_new(&mut self) -> io::Result<()> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let mut options = OpenOptions::new();
        options.create(true).write(true).truncate(true);
        if let Ok(meta) = fs::metadata(&self.path) {
            let backup = backup_name(&self.path, (self.clock)());
            fs::rename(&self.path, &backup)?;
            copy_mode(&mut options, &meta);
        } else {
            default_mode(&mut options);
        }
        self.file = Some(options.open(&self.path)?);
        self.size = 0;
        Ok(())
    }

    /// Deletes backups beyond the count limit and older than the age limit. Failures are
    /// logged, not returned: a stuck backup must not stop the audit log.
    fn prune(&mut self) {
        if self.max_backups == 0 && self.max_age_days == 0 {
            return;
        }
        let mut backups = match self.backups() {
            Ok(b) => b,
            Err(err) => {
                tracing::warn!(path = %self.path.display(), "cannot list audit log backups: {err}");
                return;
            }
        };
        let mut remove = Vec::new();
        let keep = self.max_backups as usize;
        if keep > 0 && backups.len() > keep {
            remove.extend(backups.split_off(keep));
        }
        if self.max_age_days > 0 {
            let cutoff = (self.clock)() - TimeDelta::days(i64::from(self.max_age_days));
            remove.extend(backups.into_iter().filter(|(t, _)| *t < cutoff));
        }
        for (_, path) in remove {
            if let Err(err) = fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), "cannot remove audit log backup: {err}");
            }
        }
    }

    /// Backups next to the log, newest first by the time encoded in their names.
    fn backups(&self) -> io::Result<Vec<(DateTime<Utc>, PathBuf)>> {
        let (prefix, ext) = prefix_and_ext(&self.path);
        let dir = match self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(d) => d.to_path_buf(),
            None => PathBuf::from("."),
        };
        let mut found = Vec::new();
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(true) {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(t) = time_from_name(&name, &format!("{prefix}-"), &ext) {
                found.push((t, entry.path()));
            }
        }
        found.sort_by_key(|(t, _)| std::cmp::Reverse(*t));
        Ok(found)
    }
}

/// `dir/name.ext` -> `dir/name-<time>.ext`.
pub fn backup_name(path: &Path, at: DateTime<Utc>) -> PathBuf {
    let (prefix, ext) = prefix_and_ext(path);
    let name = format!("{prefix}-{}{ext}", at.format(BACKUP_TIME_FORMAT));
    path.with_file_name(name)
}

/// The file name split at its last dot, as Go's `filepath.Ext` does (`.log`, or empty).
fn prefix_and_ext(path: &Path) -> (String, String) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.rfind('.') {
        Some(i) => (name[..i].to_string(), name[i..].to_string()),
        None => (name, String::new()),
    }
}

fn time_from_name(name: &str, prefix: &str, ext: &str) -> Option<DateTime<Utc>> {
    let stamp = name.strip_prefix(prefix)?.strip_suffix(ext)?;
    NaiveDateTime::parse_from_str(stamp, BACKUP_TIME_FORMAT)
        .ok()
        .map(|t| t.and_utc())
}

#[cfg(unix)]
fn copy_mode(options: &mut OpenOptions, meta: &fs::Metadata) {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    options.mode(meta.permissions().mode() & 0o7777);
}

#[cfg(not(unix))]
fn copy_mode(_: &mut OpenOptions, _: &fs::Metadata) {}

#[cfg(unix)]
fn default_mode(options: &mut OpenOptions) {
    use std::os::unix::fs::OpenOptionsExt;
    // Audit logs hold request bodies and user names; keep them owner-only as upstream does.
    options.mode(0o600);
}

#[cfg(not(unix))]
fn default_mode(_: &mut OpenOptions) {}

#[cfg(test)]
#[path = "rotate_tests.rs"]
mod tests;
