//! Helpers for the kubectl-driven end-to-end suite in `tests/`.
//!
//! Every test drives a running cluster through the real `kubectl` binary, exactly as a
//! user types it, and compares what kubectl prints with what upstream kubectl prints
//! against a real cluster. The cluster comes from `CONFORMANCE_KUBECONFIG` and the
//! binary from `KUBECTL`; `hack/test.sh` sets both. Nothing here talks to the API
//! server directly: if kubectl cannot see it, neither can the suite.
//!
//! Each test works in its own [`Namespace`] (deleted when the test ends, pass or fail)
//! and its own scratch directory, which is kubectl's working directory so that file
//! names in error messages read as a user would see them (`error when creating "x.yaml"`).

mod matcher;

pub use matcher::{assert_lines, assert_table, header, matches, normalize, table};

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long one kubectl invocation may take before the test fails.
pub const KUBECTL_TIMEOUT: Duration = Duration::from_secs(60);

/// The cluster under test and the kubectl binary that drives it.
pub struct Cluster {
    kubectl: PathBuf,
    kubeconfig: PathBuf,
    cache_dir: tempfile::TempDir,
    minor: u32,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// The cluster named by the environment. Panics, failing the test, when it is not set:
/// a conformance run that silently tests nothing is worse than one that fails.
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| {
        let kubeconfig = std::env::var_os("CONFORMANCE_KUBECONFIG").unwrap_or_else(|| {
            panic!(
                "CONFORMANCE_KUBECONFIG is not set. The conformance suite needs a running \
                 cluster: run hack/test.sh (it starts one and sets CONFORMANCE_KUBECONFIG and \
                 KUBECTL), or start one with hack/local-up.sh and run \
                 `CONFORMANCE_KUBECONFIG=_output/local/admin.kubeconfig KUBECTL=_output/bin/kubectl \
                 cargo test -p conformance -- --test-threads=1`"
            )
        });
        let kubectl = std::env::var_os("KUBECTL").map(PathBuf::from).unwrap_or_else(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            root.join("_output/bin/kubectl")
        });
        let mut cluster = Cluster {
            kubectl,
            kubeconfig: PathBuf::from(kubeconfig),
            // A fresh discovery cache per run: a cache left by an older server build
            // would hide discovery bugs (and invent others).
            cache_dir: tempfile::tempdir().expect("create kubectl cache dir"),
            minor: 0,
        };
        let out = cluster.run(&["version", "--client", "-o", "json"], None, Path::new("."));
        let version: serde_json::Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("kubectl version --client -o json: {e}\n{out}"));
        let minor = version["clientVersion"]["minor"].as_str().unwrap_or_default();
        cluster.minor = minor.trim_end_matches('+').parse().unwrap_or_else(|_| {
            panic!("cannot read kubectl's minor version from {version}")
        });
        cluster
    })
}

/// What one kubectl invocation did.
pub struct Output {
    /// The command line, for failure messages.
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "$ {}\n[{}]\n--- stdout\n{}--- stderr\n{}---",
            self.command, self.status, self.stdout, self.stderr
        )
    }
}

impl Output {
    /// Asserts exit code 0 and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert!(self.status.success(), "kubectl failed:\n{self}");
        &self.stdout
    }

    /// Asserts a non-zero exit code and returns stderr.
    #[track_caller]
    pub fn fails(&self) -> &str {
        assert!(
            !self.status.success(),
            "kubectl succeeded but should have failed:\n{self}"
        );
        &self.stderr
    }

    /// Asserts that stdout is exactly `want` (plus the final newline kubectl prints).
    #[track_caller]
    pub fn ok_exactly(&self, want: &str) {
        let got = self.ok();
        assert_eq!(
            got.trim_end_matches('\n'),
            want.trim_end_matches('\n'),
            "\n{self}"
        );
    }

    /// Asserts a failure whose stderr is exactly `want` (ignoring the final newline).
    #[track_caller]
    pub fn fails_exactly(&self, want: &str) {
        let got = self.fails();
        assert_eq!(
            got.trim_end_matches('\n'),
            want.trim_end_matches('\n'),
            "\n{self}"
        );
    }

    /// Asserts a failure whose stderr contains `want`.
    #[track_caller]
    pub fn fails_with(&self, want: &str) {
        let got = self.fails();
        assert!(got.contains(want), "stderr lacks {want:?}\n{self}");
    }
}

impl Cluster {
    /// The kubectl minor version (32, 35, ...), for the few outputs that changed.
    pub fn minor(&self) -> u32 {
        self.minor
    }

    /// The server URL from the kubeconfig, as kubectl prints it.
    pub fn server(&self) -> String {
        let out = self.run(
            &[
                "config",
                "view",
                "--minify",
                "-o",
                "jsonpath={.clusters[0].cluster.server}",
            ],
            None,
            Path::new("."),
        );
        out.ok().to_string()
    }

    fn command(&self, program: &Path, args: &[&str], dir: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(dir)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.cache_dir.path())
            // helm keeps its cache, config and data beside kubectl's cache
            .env("HELM_CACHE_HOME", self.cache_dir.path().join("helm-cache"))
            .env(
                "HELM_CONFIG_HOME",
                self.cache_dir.path().join("helm-config"),
            )
            .env("HELM_DATA_HOME", self.cache_dir.path().join("helm-data"))
            .env_remove("KUBE_EDITOR")
            .env_remove("EDITOR")
            .env_remove("KUBECTL_EXTERNAL_DIFF");
        cmd
    }

    /// The helm binary: `$HELM`, else `_output/bin/helm` (hack/install-deps.sh puts helm 4
    /// there).
    pub fn helm_path(&self) -> PathBuf {
        std::env::var_os("HELM")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../_output/bin/helm"))
    }

    /// Runs helm with `args` in `dir` against the cluster, bounded by [`KUBECTL_TIMEOUT`].
    pub fn helm(&self, args: &[&str], dir: &Path) -> Output {
        self.run_program(&self.helm_path(), "helm", args, None, dir, &[])
    }

    /// Runs kubectl with `args` in `dir`, feeding `stdin`, bounded by [`KUBECTL_TIMEOUT`].
    pub fn run(&self, args: &[&str], stdin: Option<&str>, dir: &Path) -> Output {
        self.run_env(args, stdin, dir, &[])
    }

    /// Like [`Cluster::run`] with extra environment variables.
    pub fn run_env(
        &self,
        args: &[&str],
        stdin: Option<&str>,
        dir: &Path,
        env: &[(&str, &str)],
    ) -> Output {
        self.run_program(&self.kubectl, "kubectl", args, stdin, dir, env)
    }

    fn run_program(
        &self,
        program: &Path,
        label: &str,
        args: &[&str],
        stdin: Option<&str>,
        dir: &Path,
        env: &[(&str, &str)],
    ) -> Output {
        let mut cmd = self.command(program, args, dir);
        cmd.envs(env.iter().copied())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let command = format!("{label} {}", shell_words(args));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin");
            let input = input.to_string();
            std::thread::spawn(move || pipe.write_all(input.as_bytes()));
        }
        let stdout = read_in_background(child.stdout.take().expect("stdout"));
        let stderr = read_in_background(child.stderr.take().expect("stderr"));
        let status = wait_with_timeout(&mut child, KUBECTL_TIMEOUT)
            .unwrap_or_else(|| panic!("{command}: still running after {KUBECTL_TIMEOUT:?}"));
        Output {
            command,
            status,
            stdout: stdout.join().expect("stdout reader"),
            stderr: stderr.join().expect("stderr reader"),
        }
    }

    /// Starts kubectl and returns its stdout as a stream of lines (for `get -w`).
    pub fn spawn(&self, args: &[&str], dir: &Path) -> Stream {
        let mut child = self
            .command(&self.kubectl, args, dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.kubectl.display()));
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = read_in_background(child.stderr.take().expect("stderr"));
        Stream {
            command: format!("kubectl {}", shell_words(args)),
            child,
            lines,
            stderr: Some(stderr),
        }
    }
}

/// A long-running kubectl whose stdout is read line by line. Killed when dropped.
pub struct Stream {
    command: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Stream {
    /// The next line of output, failing the test if none comes within `timeout`.
    #[track_caller]
    pub fn next_line(&mut self, timeout: Duration) -> String {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => line,
            Err(e) => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let stderr = self.stderr.take().map(|h| h.join().unwrap_or_default());
                panic!(
                    "{}: no line within {timeout:?} ({e}); stderr:\n{}",
                    self.command,
                    stderr.unwrap_or_default()
                )
            }
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_in_background(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait for kubectl") {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn shell_words(args: &[&str]) -> String {
    let quote = |a: &&str| {
        if !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_=./:,@".contains(c))
        {
            a.to_string()
        } else {
            format!("'{}'", a.replace('\'', r"'\''"))
        }
    };
    args.iter().map(quote).collect::<Vec<_>>().join(" ")
}

/// A name no other test (nor an earlier run against the same cluster) has used:
/// `prefix-<pid><counter><time>` in base 36, a valid DNS label.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let suffix = format!(
        "{}{}{}",
        base36(std::process::id() as u64),
        base36(n as u64),
        base36(t % 36u64.pow(4))
    );
    let mut name = format!("{prefix}-{suffix}");
    name.truncate(63);
    name
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}

/// A namespace of the test's own, with a scratch directory, deleted on drop.
/// Cluster-scoped objects the test creates are registered with
/// [`Namespace::cleanup_cluster_object`] so that they go too.
pub struct Namespace {
    pub name: String,
    dir: tempfile::TempDir,
    cluster_objects: Vec<String>,
}

impl Namespace {
    /// Creates the namespace with `kubectl create namespace`, checking what it prints.
    #[track_caller]
    pub fn new(prefix: &str) -> Namespace {
        let name = unique_name(prefix);
        let ns = Namespace {
            name: name.clone(),
            dir: tempfile::tempdir().expect("scratch dir"),
            cluster_objects: Vec::new(),
        };
        ns.kubectl(&["create", "namespace", &name])
            .ok_exactly(&format!("namespace/{name} created"));
        ns
    }

    pub fn cluster(&self) -> &'static Cluster {
        cluster()
    }

    /// The scratch directory: kubectl's working directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs kubectl as typed, without adding `-n`.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        cluster().run(args, None, self.dir())
    }

    /// `args` with `-n <this namespace>` added (before a `--`, which starts a command).
    fn with_ns<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let at = args.iter().position(|a| *a == "--").unwrap_or(args.len());
        let mut all = args[..at].to_vec();
        all.extend(["-n", self.name.as_str()]);
        all.extend_from_slice(&args[at..]);
        all
    }

    /// Runs kubectl in this namespace (`-n` added).
    pub fn k(&self, args: &[&str]) -> Output {
        cluster().run(&self.with_ns(args), None, self.dir())
    }

    /// Like [`Namespace::k`], feeding `stdin` (for `-f -`).
    pub fn k_stdin(&self, args: &[&str], stdin: &str) -> Output {
        cluster().run(&self.with_ns(args), Some(stdin), self.dir())
    }

    /// Like [`Namespace::k`] with extra environment variables.
    pub fn k_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        cluster().run_env(&self.with_ns(args), None, self.dir(), env)
    }

    /// Starts a long-running kubectl in this namespace (`get -w`).
    pub fn spawn(&self, args: &[&str]) -> Stream {
        cluster().spawn(&self.with_ns(args), self.dir())
    }

    /// Makes sure the `default` ServiceAccount exists, as pods need it (upstream's
    /// ServiceAccount admission rejects pods without it). Waits briefly for a
    /// controller to make it, then makes it itself.
    pub fn default_serviceaccount(&self) {
        let exists = || {
            self.k(&["get", "serviceaccount", "default", "-o", "name"])
                .status
                .success()
        };
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = self.k(&["create", "serviceaccount", "default"]);
        assert!(
            out.status.success() || exists(),
            "cannot make the default ServiceAccount:\n{out}"
        );
    }

    /// `kind/name@resourceVersion` of every object of the listed resources, one per
    /// line: compared before and after a rejected request to prove nothing changed.
    #[track_caller]
    pub fn snapshot(&self, resources: &str) -> String {
        let template = r#"jsonpath={range .items[*]}{.kind}/{.metadata.name}@{.metadata.resourceVersion}{"\n"}{end}"#;
        self.k(&["get", resources, "-o", template]).ok().to_string()
    }

    /// Writes `contents` to `file` in the scratch directory; returns the file name,
    /// which is what kubectl is given (so it prints it as the user would see it).
    pub fn write(&self, file: &str, contents: &str) -> String {
        let path = self.dir().join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("make scratch dir");
        }
        std::fs::write(path, contents).expect("write scratch file");
        file.to_string()
    }

    /// Writes an executable shell script (an EDITOR for `kubectl edit`); returns its path.
    pub fn script(&self, file: &str, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir().join(file);
        std::fs::write(&path, format!("#!/bin/sh\nset -e\n{body}\n")).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path.to_string_lossy().into_owned()
    }

    /// `kubectl get <what> -o json`, parsed.
    #[track_caller]
    pub fn get_json(&self, what: &[&str]) -> serde_json::Value {
        let mut args = vec!["get"];
        args.extend_from_slice(what);
        args.extend(["-o", "json"]);
        let out = self.k(&args);
        serde_json::from_str(out.ok()).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
    }

    /// `kubectl get <what> -o jsonpath=<path>`.
    #[track_caller]
    pub fn jsonpath(&self, what: &[&str], path: &str) -> String {
        let mut args = vec!["get"];
        args.extend_from_slice(what);
        let arg = format!("jsonpath={path}");
        args.extend(["-o", &arg]);
        self.k(&args).ok().to_string()
    }

    /// Asserts that `kubectl get <what>` says NotFound.
    #[track_caller]
    pub fn assert_not_found(&self, resource: &str, name: &str) {
        self.k(&["get", resource, name]).fails_exactly(&format!(
            "Error from server (NotFound): {resource} \"{name}\" not found"
        ));
    }

    /// Deletes a cluster-scoped object (`kind/name`) when the test ends.
    pub fn cleanup_cluster_object(&mut self, kind_name: &str) {
        self.cluster_objects.push(kind_name.to_string());
    }

    /// Polls `check` every 50 ms until it returns true or `timeout` passes.
    #[track_caller]
    pub fn eventually(&self, what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !check() {
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        for obj in &self.cluster_objects {
            let _ = self.kubectl(&["delete", obj, "--ignore-not-found", "--wait=false"]);
        }
        // --wait=false: without a namespace controller the namespace stays Terminating.
        let _ = self.kubectl(&[
            "delete",
            "namespace",
            &self.name,
            "--ignore-not-found",
            "--wait=false",
        ]);
    }
}

/// What `kubectl delete` prints for one object: 1.33 and later name the namespace.
pub fn deleted(kind: &str, name: &str, namespace: Option<&str>, suffix: &str) -> String {
    let mut op = "deleted".to_string();
    if let Some(ns) = namespace.filter(|_| cluster().minor() >= 33) {
        op = format!("{op} from {ns} namespace");
    }
    format!("{kind} \"{name}\" {op}{suffix}")
}

/// Removes ANSI colour escapes (`kubectl cluster-info` colours its output).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The current time as RFC 3339 in UTC (`2024-01-02T03:04:05Z`), for objects that
/// carry timestamps (events).
pub fn now_rfc3339() -> String {
    rfc3339(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs() as i64,
    )
}

fn rfc3339(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Decodes standard base64 (Secret data).
pub fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .unwrap_or_else(|e| panic!("bad base64 {s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_825_600), "2000-02-29T12:00:00Z");
    }

    #[test]
    fn unique_names_are_dns_labels() {
        let (a, b) = (unique_name("conf"), unique_name("conf"));
        assert_ne!(a, b);
        assert!(
            a.len() <= 63
                && a.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'),
            "{a}"
        );
    }

    #[test]
    fn ansi_is_stripped() {
        assert_eq!(
            strip_ansi("\u{1b}[0;32mKubernetes\u{1b}[0m at"),
            "Kubernetes at"
        );
    }
}
