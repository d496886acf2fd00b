//! Test support shared by every crate's integration tests: starts a real kube-apiserver
//! process on a random loopback port with fresh certificates and an empty data dir, and
//! hands out `kube` clients for it.
//!
//! The binary is `$KUBE_APISERVER_BIN` when set, else the workspace's
//! `target/release/kube-apiserver` (`cargo build --release -p kube-apiserver` makes it).

pub mod webhook_server;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};

pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub kubeconfig: String,
    ca_pem: String,
    ca_key: String,
    child: Child,
    bin: PathBuf,
    extra: Vec<String>,
}

/// The kube-apiserver binary tests start.
pub fn apiserver_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("KUBE_APISERVER_BIN") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/kube-apiserver");
    assert!(
        p.exists(),
        "{} is missing: build it with `cargo build --release -p kube-apiserver` or set KUBE_APISERVER_BIN",
        p.display()
    );
    p
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Pki {
    ca_pem: String,
    ca_key: String,
    server_cert: String,
    server_key: String,
    admin_cert: String,
    admin_key: String,
}

fn ca_params() -> CertificateParams {
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.distinguished_name.push(DnType::CommonName, "test-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::CrlSign,
    ];
    ca
}

/// Another CA (certificate and key, PEM), e.g. a front-proxy CA; sign with [`client_cert`].
pub fn new_ca() -> (String, String) {
    let key = KeyPair::generate().expect("ca key");
    let cert = ca_params().self_signed(&key).expect("ca cert");
    (cert.pem(), key.serialize_pem())
}

/// A client certificate and key for `user` in `groups`, signed by the CA.
pub fn client_cert(ca_key: &str, user: &str, groups: &[&str]) -> (String, String) {
    let issuer = rcgen::Issuer::new(ca_params(), KeyPair::from_pem(ca_key).expect("ca key"));
    let key = KeyPair::generate().expect("key");
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name.push(DnType::CommonName, user);
    for g in groups {
        p.distinguished_name.push(DnType::OrganizationName, *g);
    }
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = p.signed_by(&key, &issuer).expect("client cert");
    (cert.pem(), key.serialize_pem())
}

/// A kubeconfig for the server on `port` with the given client credentials.
fn kubeconfig(port: u16, ca: &str, cert: &str, key: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: https://127.0.0.1:{port}\n    certificate-authority-data: {}\nusers:\n- name: u\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: t\n  context:\n    cluster: t\n    user: u\ncurrent-context: t\n",
        B64.encode(ca),
        B64.encode(cert),
        B64.encode(key)
    )
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().expect("ca key");
    let ca_key_pem = ca_key.serialize_pem();
    let ca_cert = ca_params().self_signed(&ca_key).expect("ca cert");
    let issuer = rcgen::Issuer::new(ca_params(), ca_key);
    let server_key = KeyPair::generate().expect("key");
    let mut sp = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    sp.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().expect("ip")));
    sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = sp.signed_by(&server_key, &issuer).expect("server cert");
    let (admin_cert, admin_key) = client_cert(&ca_key_pem, "kubernetes-admin", &["system:masters"]);
    Pki {
        ca_pem: ca_cert.pem(),
        ca_key: ca_key_pem,
        server_cert: server_cert.pem(),
        server_key: server_key.serialize_pem(),
        admin_cert,
        admin_key,
    }
}

/// As upstream's integration test framework: without a controller-manager there is no
/// `default` ServiceAccount and nothing lifts the not-ready taint of new nodes, so those
/// two plugins are off unless a test chooses the admission plugins itself.
fn default_admission(extra: &[String]) -> Vec<String> {
    if extra.iter().any(|a| a.contains("-admission-plugins")) {
        return Vec::new();
    }
    vec!["--disable-admission-plugins=ServiceAccount,TaintNodesByCondition".into()]
}

/// Starts kube-apiserver over the certificates and data in `dir`.
fn spawn(bin: &Path, dir: &Path, port: u16, extra: &[String], log: std::fs::File) -> Child {
    let path = |n: &str| -> PathBuf { dir.join(n) };
    Command::new(bin)
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--secure-port={port}"))
        .arg(format!("--tls-cert-file={}", path("server.crt").display()))
        .arg(format!(
            "--tls-private-key-file={}",
            path("server.key").display()
        ))
        .arg(format!("--client-ca-file={}", path("ca.crt").display()))
        .arg(format!("--data-dir={}", path("data").display()))
        .args(default_admission(extra))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start kube-apiserver")
}

impl TestServer {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Self {
        Self::start_bin(&apiserver_bin(), extra)
    }

    /// Starts the given kube-apiserver binary with extra flags.
    pub fn start_bin(bin: &Path, extra: &[&str]) -> Self {
        Self::start_prepared(bin, extra, |_| {})
    }

    /// Starts kube-apiserver after `prepare` has seen its (still empty) data directory,
    /// e.g. to mount a small filesystem there.
    pub fn start_with_data_dir(extra: &[&str], prepare: impl FnOnce(&Path)) -> Self {
        Self::start_prepared(&apiserver_bin(), extra, prepare)
    }

    fn start_prepared(bin: &Path, extra: &[&str], prepare: impl FnOnce(&Path)) -> Self {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        prepare(&data);
        let p = pki();
        let path = |n: &str| -> PathBuf { dir.path().join(n) };
        std::fs::write(path("ca.crt"), &p.ca_pem).expect("write");
        std::fs::write(path("server.crt"), &p.server_cert).expect("write");
        std::fs::write(path("server.key"), &p.server_key).expect("write");
        let port = free_port();
        let log = std::fs::File::create(path("apiserver.log")).expect("log");
        let mut child = spawn(bin, dir.path(), port, &extra, log);
        let kubeconfig = kubeconfig(port, &p.ca_pem, &p.admin_cert, &p.admin_key);
        std::fs::write(path("kubeconfig"), &kubeconfig).expect("write kubeconfig");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(path("apiserver.log")).unwrap_or_default();
                panic!("kube-apiserver exited with {status}:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "kube-apiserver did not start listening"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        TestServer {
            dir,
            port,
            kubeconfig,
            child,
            ca_pem: p.ca_pem,
            ca_key: p.ca_key,
            bin: bin.to_path_buf(),
            extra,
        }
    }

    /// A client authenticating as `user` in `groups` (a fresh client certificate).
    pub async fn client_as(&self, user: &str, groups: &[&str]) -> kube::Client {
        let (cert, key) = client_cert(&self.ca_key, user, groups);
        let yaml = kubeconfig(self.port, &self.ca_pem, &cert, &key);
        let kc = kube::config::Kubeconfig::from_yaml(&yaml).expect("kubeconfig");
        let cfg =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .expect("config");
        kube::Client::try_from(cfg).expect("client")
    }

    /// A client presenting `cert`/`key` (PEM, any CA) and sending `headers` on every
    /// request, as a front proxy does.
    pub async fn client_with_cert(
        &self,
        cert: &str,
        key: &str,
        headers: &[(&str, &str)],
    ) -> kube::Client {
        let yaml = kubeconfig(self.port, &self.ca_pem, cert, key);
        let kc = kube::config::Kubeconfig::from_yaml(&yaml).expect("kubeconfig");
        let mut cfg =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .expect("config");
        for (k, v) in headers {
            cfg.headers.push((
                http::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
                http::HeaderValue::from_str(v).expect("header value"),
            ));
        }
        cfg.default_retry = false;
        kube::Client::try_from(cfg).expect("client")
    }

    /// A kubeconfig (YAML) for `user` in `groups`, with a fresh client certificate.
    pub fn kubeconfig_as(&self, user: &str, groups: &[&str]) -> String {
        let (cert, key) = client_cert(&self.ca_key, user, groups);
        kubeconfig(self.port, &self.ca_pem, &cert, &key)
    }

    /// The cluster CA's certificate and key (PEM), to sign more credentials.
    pub fn ca(&self) -> (&str, &str) {
        (&self.ca_pem, &self.ca_key)
    }

    /// A client authenticating with a bearer token (no client certificate).
    pub async fn client_with_token(&self, token: &str) -> kube::Client {
        let yaml = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: https://127.0.0.1:{}\n    certificate-authority-data: {}\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: t\n  context:\n    cluster: t\n    user: u\ncurrent-context: t\n",
            self.port,
            B64.encode(&self.ca_pem)
        );
        let kc = kube::config::Kubeconfig::from_yaml(&yaml).expect("kubeconfig");
        let cfg =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .expect("config");
        kube::Client::try_from(cfg).expect("client")
    }

    pub async fn client(&self) -> kube::Client {
        self.admin_client(true).await
    }

    /// An admin client that shows every answer as the server gave it: kube's client
    /// otherwise retries 429/503/504 with backoff (for minutes) before reporting them.
    pub async fn client_without_retries(&self) -> kube::Client {
        self.admin_client(false).await
    }

    async fn admin_client(&self, retry: bool) -> kube::Client {
        let kc = kube::config::Kubeconfig::from_yaml(&self.kubeconfig).expect("kubeconfig");
        let mut cfg =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .expect("config");
        cfg.default_retry = retry;
        let client = kube::Client::try_from(cfg).expect("client");
        // Wait until bootstrap objects exist; as long as the server itself waits for a
        // store that does not serve yet (etcd under load), and no less.
        let deadline = Instant::now() + Duration::from_secs(70);
        loop {
            let req = http::Request::get("/readyz").body(Vec::new()).expect("req");
            if client.request_text(req).await.is_ok_and(|t| t == "ok") {
                return client;
            }
            if Instant::now() >= deadline {
                let log = self.log();
                let tail: Vec<&str> = log.lines().rev().take(80).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                panic!(
                    "kube-apiserver never became ready; the end of its log:\n{}",
                    tail.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Where the admin kubeconfig is written.
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// The server's address, `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("apiserver.log")).unwrap_or_default()
    }

    /// Kills the server (SIGKILL) and waits for it to be gone.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the server (SIGKILL) and starts it again on the same data.
    pub fn restart(&mut self) {
        self.stop();
        let _ = self.child.wait();
        let log = std::fs::File::options()
            .append(true)
            .open(self.dir.path().join("apiserver.log"))
            .expect("log");
        self.child = spawn(&self.bin, self.dir.path(), self.port, &self.extra, log);
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real etcd (Debian's `etcd-server`) on free loopback ports with its data in a
/// temporary directory; killed when dropped.
pub struct Etcd {
    pub endpoint: String,
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

impl Etcd {
    /// Starts etcd and waits until it takes connections.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut e = Etcd {
            endpoint: String::new(),
            dir,
            client_port: free_port(),
            peer_port: free_port(),
            child: None,
        };
        e.endpoint = format!("http://127.0.0.1:{}", e.client_port);
        e.spawn();
        e
    }

    fn spawn(&mut self) {
        let bin = std::env::var("ETCD_BIN").unwrap_or_else(|_| "etcd".into());
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("etcd.log"))
            .expect("etcd log");
        let child = Command::new(&bin)
            .arg("--name=test")
            .arg(format!(
                "--data-dir={}",
                self.dir.path().join("data").display()
            ))
            .arg(format!("--listen-client-urls={}", self.endpoint))
            .arg(format!("--advertise-client-urls={}", self.endpoint))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=test={peer}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("starting {bin}: {e} (install Debian's etcd-server: hack/install-deps.sh)")
            });
        self.child = Some(child);
        // etcd takes connections before it has elected itself and serves; wait for a
        // healthy /health.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.healthy() {
            assert!(
                Instant::now() < deadline,
                "etcd did not become healthy:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether etcd answers `/health` with `"health":"true"`.
    fn healthy(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", self.client_port)) else {
            return false;
        };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
        let mut answer = String::new();
        conn.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .and_then(|_| conn.read_to_string(&mut answer))
            .is_ok()
            && answer.contains("\"health\":\"true\"")
    }

    /// etcd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
