use chrono::TimeZone;

use super::*;

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 21, 30, 0)
        .single()
        .expect("valid date")
}

/// A clock that advances one second per reading, so every backup gets its own name.
fn ticking(start: DateTime<Utc>) -> Clock {
    let mut n = 0;
    Box::new(move || {
        n += 1;
        start + TimeDelta::seconds(n)
    })
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn line(n: usize, len: usize) -> Vec<u8> {
    let mut s = format!("{n:0width$}", width = len - 1).into_bytes();
    s.push(b'\n');
    s
}

#[test]
fn backup_names_follow_lumberjack() {
    let at = base() + TimeDelta::milliseconds(7);
    assert_eq!(
        backup_name(Path::new("/var/log/audit.log"), at),
        PathBuf::from("/var/log/audit-2026-11-21T21-30-00.007.log")
    );
    assert_eq!(
        backup_name(Path::new("/var/log/audit"), at),
        PathBuf::from("/var/log/audit-2026-11-21T21-30-00.007")
    );
    assert_eq!(
        backup_name(Path::new("logs/k8s.audit.json"), at),
        PathBuf::from("logs/k8s.audit-2026-11-21T21-30-00.007.json")
    );
    assert_eq!(
        time_from_name("audit-2026-11-21T21-30-00.007.log", "audit-", ".log"),
        Some(at)
    );
    assert_eq!(time_from_name("audit-latest.log", "audit-", ".log"), None);
    assert_eq!(
        time_from_name("other-2026-11-21T21-30-00.007.log", "audit-", ".log"),
        None
    );
}

#[test]
fn rotates_when_a_write_would_exceed_the_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.log");
    let mut f = RotatingFile::with_max_bytes(&path, 100, 0, 0).with_clock(ticking(base()));
    for n in 0..5 {
        f.write(&line(n, 40)).expect("write");
    }
    f.flush().expect("flush");
    let names = files(dir.path());
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(fs::read(&path).expect("current"), line(4, 40));
    let backups: Vec<&String> = names.iter().filter(|n| *n != "audit.log").collect();
    let first = fs::read(dir.path().join(backups[0])).expect("backup");
    assert_eq!(first, [line(0, 40), line(1, 40)].concat());
    assert!(
        backups
            .iter()
            .all(|b| b.starts_with("audit-2026-11-21T21-30-") && b.ends_with(".log"))
    );
}

#[test]
fn keeps_at_most_max_backups_newest_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.log");
    let mut f = RotatingFile::with_max_bytes(&path, 100, 2, 0).with_clock(ticking(base()));
    for n in 0..10 {
        f.write(&line(n, 60)).expect("write");
    }
    let names = files(dir.path());
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(fs::read(&path).expect("current"), line(9, 60));
    // The two newest backups hold lines 7 and 8.
    assert_eq!(
        fs::read(dir.path().join(&names[0])).expect("backup"),
        line(7, 60)
    );
    assert_eq!(
        fs::read(dir.path().join(&names[1])).expect("backup"),
        line(8, 60)
    );
}

#[test]
fn deletes_backups_older_than_max_age() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.log");
    let old = backup_name(&path, base() - TimeDelta::days(10));
    let recent = backup_name(&path, base() - TimeDelta::days(1));
    for p in [&old, &recent] {
        fs::write(p, b"x\n").expect("seed");
    }
    fs::write(dir.path().join("audit-keepme.log"), b"").expect("seed");
    fs::write(dir.path().join("other.log"), b"").expect("seed");
    let mut f = RotatingFile::with_max_bytes(&path, 100, 0, 7).with_clock(ticking(base()));
    f.write(b"hello\n").expect("write");
    assert!(!old.exists());
    assert!(recent.exists());
    assert!(dir.path().join("audit-keepme.log").exists());
    assert!(dir.path().join("other.log").exists());
}

#[test]
fn appends_to_an_existing_file_or_rotates_it_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.log");
    fs::write(&path, b"previous\n").expect("seed");
    let mut f = RotatingFile::with_max_bytes(&path, 100, 0, 0).with_clock(ticking(base()));
    f.write(b"next\n").expect("write");
    assert_eq!(fs::read(&path).expect("read"), b"previous\nnext\n");
    drop(f);

    fs::write(&path, vec![b'a'; 95]).expect("seed");
    let mut f = RotatingFile::with_max_bytes(&path, 100, 0, 0).with_clock(ticking(base()));
    f.write(b"12345\n").expect("write");
    assert_eq!(fs::read(&path).expect("read"), b"12345\n");
    assert_eq!(files(dir.path()).len(), 2);
}

#[test]
fn refuses_a_write_larger_than_the_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.log");
    let mut f = RotatingFile::with_max_bytes(&path, 10, 0, 0);
    let err = f.write(&[b'x'; 11]).expect_err("too large");
    assert_eq!(
        err.to_string(),
        "write length 11 exceeds maximum file size 10"
    );
    f.write(b"ok\n").expect("small write");
    assert_eq!(RotatingFile::new(&path, 0, 0, 0).max_bytes, 100 * MEGABYTE);
    assert_eq!(RotatingFile::new(&path, 3, 0, 0).max_bytes, 3 * MEGABYTE);
}
