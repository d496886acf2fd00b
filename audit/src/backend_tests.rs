use std::sync::Mutex;
use std::sync::mpsc::Sender;

use serde_json::json;

use super::*;

fn options(path: PathBuf) -> LogOptions {
    LogOptions {
        path,
        ..LogOptions::default()
    }
}

fn read_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("read log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect()
}

#[test]
fn appends_one_json_event_per_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested/audit.log");
    let backend = LogBackend::open(&options(path.clone())).expect("open");
    assert!(
        path.exists(),
        "created at open, so bad paths fail at startup"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let events: Vec<Value> = (0..3)
        .map(|n| json!({"kind": "Event", "n": n, "s": "a\nb"}))
        .collect();
    for e in &events {
        backend.process(e.clone());
    }
    backend.flush();
    assert_eq!(read_lines(&path), events);
    assert_eq!((backend.dropped(), backend.failed()), (0, 0));
    // Dropping drains anything still queued.
    backend.process(json!({"n": 3}));
    drop(backend);
    assert_eq!(read_lines(&path).len(), 4);
}

#[test]
fn rotates_by_megabytes_and_prunes_backups() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.log");
    let opts = LogOptions {
        max_size_mb: 1,
        max_backups: 1,
        ..options(path.clone())
    };
    let backend = LogBackend::open(&opts).expect("open");
    let payload = "x".repeat(10_000);
    for n in 0..250 {
        backend.process(json!({"n": n, "payload": payload}));
    }
    backend.flush();
    assert_eq!(backend.failed(), 0);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "current file plus one backup: {names:?}");
    for name in &names {
        let p = dir.path().join(name);
        assert!(std::fs::metadata(&p).expect("stat").len() <= 1024 * 1024);
        assert!(!read_lines(&p).is_empty());
    }
    let last = read_lines(&path);
    assert_eq!(last.last().expect("line")["n"], 249);
}

#[test]
fn rejects_unusable_options() {
    let err = |o: LogOptions| match LogBackend::open(&o) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    };
    let legacy = LogOptions {
        format: "legacy".into(),
        ..options("audit.log".into())
    };
    assert!(err(legacy).contains("--audit-log-format=legacy is not supported"));
    let yaml = LogOptions {
        format: "yaml".into(),
        ..options("audit.log".into())
    };
    assert!(err(yaml).contains("invalid audit log format yaml"));
    assert!(err(LogOptions::default()).contains("--audit-log-path is empty"));
    assert!(!LogOptions::default().enabled());
    let file = tempfile::NamedTempFile::new().expect("temp file");
    let under_a_file = file.path().join("audit.log");
    assert!(err(options(under_a_file)).starts_with("failed to open audit log"));
}

#[test]
fn shareable_across_tasks() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<LogBackend>();
    assert_send_sync::<crate::Event>();
    assert_send_sync::<crate::Policy>();
}

#[test]
fn dash_means_stdout() {
    let backend = LogBackend::open(&options("-".into())).expect("stdout backend");
    backend.process(json!({"kind": "Event", "stage": "ResponseComplete"}));
    backend.flush();
    assert_eq!((backend.dropped(), backend.failed()), (0, 0));
}

/// A sink that reports each line and then blocks until the test lets it go.
struct Gate {
    entered: Sender<Vec<u8>>,
    release: Arc<Mutex<Receiver<()>>>,
}

impl LineSink for Gate {
    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        let _ = self.entered.send(line.to_vec());
        let release = self
            .release
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?;
        release.recv().map_err(io::Error::other)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn full_buffer_drops_and_counts_without_blocking() {
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let gate = Gate {
        entered: entered_tx,
        release: Arc::new(Mutex::new(release_rx)),
    };
    let backend = LogBackend::start(Box::new(gate), 1).expect("start");
    backend.process(json!(1));
    // The writer now holds event 1 inside the sink, so the one-slot buffer is empty.
    assert_eq!(entered.recv().expect("writer took event 1"), b"1\n");
    backend.process(json!(2)); // buffered
    backend.process(json!(3)); // dropped
    backend.process(json!(4)); // dropped
    assert_eq!(backend.dropped(), 2);
    for _ in 0..2 {
        release.send(()).expect("release");
    }
    assert_eq!(entered.recv().expect("event 2"), b"2\n");
    backend.flush();
    assert_eq!(backend.dropped(), 2);
    assert!(
        entered.try_recv().is_err(),
        "events 3 and 4 never reached the sink"
    );
}

struct Broken;

impl LineSink for Broken {
    fn write_line(&mut self, _: &[u8]) -> io::Result<()> {
        Err(io::Error::other("disk full"))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn write_errors_are_counted() {
    let backend = LogBackend::start(Box::new(Broken), 8).expect("start");
    backend.process(json!(1));
    backend.process(json!(2));
    backend.flush();
    assert_eq!((backend.dropped(), backend.failed()), (0, 2));
}
