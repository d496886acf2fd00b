//! Starts a real kube-apiserver process on a random loopback port with fresh certificates
//! and an empty data dir, and hands out `kube` clients for it.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
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
    child: Child,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Pki {
    ca_pem: String,
    server_cert: String,
    server_key: String,
    admin_cert: String,
    admin_key: String,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.distinguished_name.push(DnType::CommonName, "test-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::CrlSign,
    ];
    let ca_cert = ca.self_signed(&ca_key).expect("ca cert");
    let issuer = rcgen::Issuer::new(ca, ca_key);

    let server_key = KeyPair::generate().expect("key");
    let mut sp = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    sp.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().expect("ip")));
    sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = sp.signed_by(&server_key, &issuer).expect("server cert");

    let admin_key = KeyPair::generate().expect("key");
    let mut ap = CertificateParams::new(Vec::<String>::new()).expect("params");
    ap.distinguished_name
        .push(DnType::CommonName, "kubernetes-admin");
    ap.distinguished_name
        .push(DnType::OrganizationName, "system:masters");
    ap.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let admin_cert = ap.signed_by(&admin_key, &issuer).expect("admin cert");
    Pki {
        ca_pem: ca_cert.pem(),
        server_cert: server_cert.pem(),
        server_key: server_key.serialize_pem(),
        admin_cert: admin_cert.pem(),
        admin_key: admin_key.serialize_pem(),
    }
}

/// Starts kube-apiserver over the certificates and data in `dir`.
fn spawn(dir: &std::path::Path, port: u16, extra: &[&str], log: std::fs::File) -> Child {
    let path = |n: &str| -> PathBuf { dir.join(n) };
    Command::new(env!("CARGO_BIN_EXE_kube-apiserver"))
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--secure-port={port}"))
        .arg(format!("--tls-cert-file={}", path("server.crt").display()))
        .arg(format!(
            "--tls-private-key-file={}",
            path("server.key").display()
        ))
        .arg(format!("--client-ca-file={}", path("ca.crt").display()))
        .arg(format!("--data-dir={}", path("data").display()))
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
        let dir = tempfile::tempdir().expect("tempdir");
        let p = pki();
        let path = |n: &str| -> PathBuf { dir.path().join(n) };
        std::fs::write(path("ca.crt"), &p.ca_pem).expect("write");
        std::fs::write(path("server.crt"), &p.server_cert).expect("write");
        std::fs::write(path("server.key"), &p.server_key).expect("write");
        let port = free_port();
        let log = std::fs::File::create(path("apiserver.log")).expect("log");
        let mut child = spawn(dir.path(), port, extra, log);
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: https://127.0.0.1:{port}\n    certificate-authority-data: {}\nusers:\n- name: admin\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: t\n  context:\n    cluster: t\n    user: admin\ncurrent-context: t\n",
            B64.encode(&p.ca_pem),
            B64.encode(&p.admin_cert),
            B64.encode(&p.admin_key)
        );
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
        }
    }

    pub async fn client(&self) -> kube::Client {
        let kc = kube::config::Kubeconfig::from_yaml(&self.kubeconfig).expect("kubeconfig");
        let cfg =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .expect("config");
        let client = kube::Client::try_from(cfg).expect("client");
        // wait until bootstrap objects exist
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let req = http::Request::get("/readyz").body(Vec::new()).expect("req");
            if client.request_text(req).await.is_ok_and(|t| t == "ok") {
                return client;
            }
            assert!(
                Instant::now() < deadline,
                "kube-apiserver never became ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("apiserver.log")).unwrap_or_default()
    }

    /// Kills the server (SIGKILL) and starts it again on the same data.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let log = std::fs::File::options()
            .append(true)
            .open(self.dir.path().join("apiserver.log"))
            .expect("log");
        self.child = spawn(self.dir.path(), self.port, &[], log);
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
