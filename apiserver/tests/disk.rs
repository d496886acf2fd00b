//! A full disk under the embedded store: writes fail with a clear 500 Status and change
//! nothing, reads go on, and writes work again once space returns; a restart finds
//! everything acknowledged. A read-only data directory stops the server at start with a
//! message naming the directory and the flag. The data directory is a small tmpfs mounted for the test (we run as root).

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use testenv as common;

/// Unmounts when dropped, after the server using it has stopped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Self {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .expect("running mount");
        assert!(
            out.status.success(),
            "mounting a tmpfs needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name}, "data": {"pad": "y".repeat(2048)}
    }))
    .expect("configmap")
}

/// Fills the filesystem at `dir` with one file until it is full.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("filler");
    let chunk = vec![0u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.flush();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_clearly_and_recovers() {
    let mut mount = None;
    let mut server = common::TestServer::start_with_data_dir(&[], |data| {
        mount = Some(Tmpfs::mount(data, "16m"));
    });
    let data = server.dir.path().join("data");
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    api.create(&PostParams::default(), &cm("before"))
        .await
        .expect("create before");
    let filler = fill(&data);
    // keep writing until the database cannot grow (SQLite may have free pages left)
    let mut refused = None;
    for i in 0..2_000 {
        match api
            .create(&PostParams::default(), &cm(&format!("full-{i}")))
            .await
        {
            Ok(_) => continue,
            Err(kube::Error::Api(s)) => {
                refused = Some(s);
                break;
            }
            Err(e) => panic!("a full disk must give a Status, not {e:?}"),
        }
    }
    let status = refused.expect("writes kept succeeding on a full disk");
    assert_eq!(status.code, 500, "{status:?}");
    assert!(
        status.message.contains("full"),
        "the message says why: {}",
        status.message
    );
    // reads go on
    assert!(api.get("before").await.is_ok());
    let during = api.list(&ListParams::default()).await.expect("list");
    std::fs::remove_file(&filler).expect("free the space");
    api.create(&PostParams::default(), &cm("after"))
        .await
        .expect("writes work again");
    // the store on disk is whole: everything acknowledged is there after a restart
    server.restart();
    let client = server.client().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let after = api
        .list(&ListParams::default())
        .await
        .expect("list after restart");
    let names: Vec<String> = after
        .items
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    for c in during.items.iter().filter_map(|c| c.metadata.name.as_ref()) {
        assert!(names.contains(c), "{c} was lost");
    }
    assert!(names.contains(&"after".to_string()));
    server.stop();
    drop(mount);
}

#[test]
fn a_read_only_data_dir_is_a_clear_start_error() {
    let mut mount = None;
    let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        common::TestServer::start_with_data_dir(&[], |data| {
            let m = Tmpfs::mount(data, "1m");
            let ok = Command::new("mount")
                .args(["-o", "remount,ro"])
                .arg(data)
                .status()
                .expect("remount");
            assert!(ok.success(), "remount read-only");
            mount = Some(m);
        })
    }));
    let why = match started {
        Ok(_) => panic!("kube-apiserver started on a read-only data directory"),
        Err(p) => p.downcast_ref::<String>().cloned().unwrap_or_default(),
    };
    assert!(why.contains("opening the store in"), "{why}");
    assert!(
        why.contains("check --data-dir and its permissions"),
        "{why}"
    );
    drop(mount);
}
