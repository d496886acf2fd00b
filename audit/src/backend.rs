//! The `log` audit backend (`--audit-log-path` and friends): events go through a bounded
//! channel to one dedicated thread that appends them as JSON lines and rotates the file.
//!
//! Upstream defaults this backend to a *blocking* mode in which the request waits for the
//! write. Here [`LogBackend::process`] never blocks, so it is safe on an async runtime: if
//! the writer falls behind and the buffer (`--audit-log-buffer-size`, default 10000) is
//! full, the event is dropped and counted in [`LogBackend::dropped`], like upstream's
//! non-blocking modes do. Dropping the backend drains what was queued, then joins the thread.

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

use serde_json::Value;

use crate::Error;
use crate::rotate::RotatingFile;

/// Default capacity of the event buffer, as upstream's `--audit-log-buffer-size`.
pub const DEFAULT_BUFFER_SIZE: usize = 10_000;

/// The `--audit-log-*` flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOptions {
    /// `--audit-log-path`: the file to append to; `-` is standard output; empty disables.
    pub path: PathBuf,
    /// `--audit-log-maxage`: days to keep backups, by the time in their names; 0 keeps all.
    pub max_age_days: u32,
    /// `--audit-log-maxbackup`: backups to keep; 0 keeps all.
    pub max_backups: u32,
    /// `--audit-log-maxsize`: megabytes before rotating; 0 means lumberjack's default, 100.
    pub max_size_mb: u32,
    /// `--audit-log-format`: only `json` is implemented; `legacy` is refused.
    pub format: String,
    /// `--audit-log-buffer-size`: events queued before new ones are dropped.
    pub buffer_size: usize,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            path: PathBuf::new(),
            max_age_days: 0,
            max_backups: 0,
            max_size_mb: 0,
            format: "json".into(),
            buffer_size: DEFAULT_BUFFER_SIZE,
        }
    }
}

impl LogOptions {
    /// Whether audit logging is on: upstream enables it by a non-empty `--audit-log-path`.
    pub fn enabled(&self) -> bool {
        !self.path.as_os_str().is_empty()
    }

    /// Checks the flags as upstream does at startup.
    pub fn validate(&self) -> Result<(), Error> {
        if !self.enabled() {
            return Err(Error::InvalidOptions("--audit-log-path is empty".into()));
        }
        match self.format.as_str() {
            "json" => Ok(()),
            "legacy" => Err(Error::InvalidOptions(
                "--audit-log-format=legacy is not supported by this server, use --audit-log-format=json".into(),
            )),
            other => Err(Error::InvalidOptions(format!(
                "invalid audit log format {other}, allowed formats are \"json\",\"legacy\""
            ))),
        }
    }
}

/// Where the writer thread puts lines.
pub(crate) trait LineSink: Send {
    fn write_line(&mut self, line: &[u8]) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()>;
}

impl LineSink for RotatingFile {
    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        self.write(line)
    }
    fn flush(&mut self) -> io::Result<()> {
        RotatingFile::flush(self)
    }
}

struct Stdout;

impl LineSink for Stdout {
    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        let mut out = io::stdout().lock();
        out.write_all(line)?;
        out.flush()
    }
    fn flush(&mut self) -> io::Result<()> {
        io::stdout().flush()
    }
}

enum Message {
    Event(Value),
    Flush(SyncSender<()>),
}

#[derive(Default)]
struct Counters {
    dropped: AtomicU64,
    failed: AtomicU64,
}

/// The running log backend. Cheap to share behind an `Arc`; `process` takes `&self`.
pub struct LogBackend {
    sender: Option<SyncSender<Message>>,
    counters: Arc<Counters>,
    writer: Option<JoinHandle<()>>,
}

impl LogBackend {
    /// Validates the options, creates the log file (mode 0600, parents 0700) so that a bad
    /// path fails at startup as upstream does, and starts the writer thread.
    pub fn open(opts: &LogOptions) -> Result<LogBackend, Error> {
        opts.validate()?;
        if opts.path.as_os_str() == "-" {
            return Self::start(Box::new(Stdout), opts.buffer_size);
        }
        ensure_log_file(&opts.path).map_err(|source| Error::OpenLog {
            path: opts.path.display().to_string(),
            source,
        })?;
        let file = RotatingFile::new(
            &opts.path,
            opts.max_size_mb,
            opts.max_backups,
            opts.max_age_days,
        );
        Self::start(Box::new(file), opts.buffer_size)
    }

    /// Starts a backend writing to any sink (the file or stdout in production, fakes in tests).
    pub(crate) fn start(sink: Box<dyn LineSink>, buffer_size: usize) -> Result<LogBackend, Error> {
        // A zero-capacity channel would be a rendezvous and drop nearly everything.
        let (sender, receiver) = mpsc::sync_channel(buffer_size.max(1));
        let counters = Arc::new(Counters::default());
        let thread_counters = Arc::clone(&counters);
        let writer = std::thread::Builder::new()
            .name("audit-log-writer".into())
            .spawn(move || run_writer(sink, receiver, &thread_counters))
            .map_err(Error::SpawnWriter)?;
        Ok(LogBackend {
            sender: Some(sender),
            counters,
            writer: Some(writer),
        })
    }

    /// Queues one event (a value from [`crate::Event::at_stage`]) without blocking; drops
    /// and counts it if the buffer is full.
    pub fn process(&self, event: Value) {
        let Some(sender) = self.sender.as_ref() else {
            return;
        };
        match sender.try_send(Message::Event(event)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                let n = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                // Rate-limit the warning: a full buffer means thousands of drops a second.
                if n.is_power_of_two() {
                    tracing::warn!(dropped = n, "audit log buffer full, dropping audit events");
                }
            }
        }
    }

    /// Events dropped because the buffer was full (or the writer had stopped).
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Events that reached the writer but could not be written (I/O errors, or a line
    /// larger than the maximum file size).
    pub fn failed(&self) -> u64 {
        self.counters.failed.load(Ordering::Relaxed)
    }

    /// Waits until every event queued before this call is written. Blocks the calling
    /// thread: meant for tests and shutdown, not for request handlers.
    pub fn flush(&self) {
        let Some(sender) = self.sender.as_ref() else {
            return;
        };
        let (ack, done) = mpsc::sync_channel(1);
        if sender.send(Message::Flush(ack)).is_ok() {
            let _ = done.recv();
        }
    }
}

impl Drop for LogBackend {
    fn drop(&mut self) {
        // Closing the channel lets the writer drain the queue and exit.
        self.sender = None;
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!("audit log writer thread panicked");
        }
    }
}

fn run_writer(mut sink: Box<dyn LineSink>, receiver: Receiver<Message>, counters: &Counters) {
    for message in receiver {
        match message {
            Message::Event(event) => {
                let mut line = event.to_string().into_bytes();
                line.push(b'\n');
                if let Err(err) = sink.write_line(&line) {
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::error!("failed to write audit event: {err}");
                }
            }
            Message::Flush(ack) => {
                if let Err(err) = sink.flush() {
                    tracing::error!("failed to flush audit log: {err}");
                }
                let _ = ack.send(());
            }
        }
    }
    let _ = sink.flush();
}

/// Creates the log's directory (0700) and the file (0600) if missing, and checks that it
/// can be opened for appending.
fn ensure_log_file(path: &std::path::Path) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop)
}

#[cfg(test)]
#[path = "backend_tests.rs"]
mod tests;
