//! The `kubelet-sim` binary: many simulated kubelets in one process (see `kubelet::sim`).

use std::io::IsTerminal;

use clap::Parser;

/// mimalloc instead of the C library's allocator, as in kube-apiserver: a fifth of this
/// process's CPU went to glibc's malloc and free under load.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
use kubelet::sim::{self, Options};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    init_tracing(options.verbosity);
    sim::run(options).await
}

/// Upstream's -v: 0-1 info, 2-4 debug, 5+ trace; RUST_LOG overrides.
fn init_tracing(v: u8) {
    let level = match v {
        0..=1 => "info",
        2..=4 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "{level},hyper=info,hyper_util=info,tower=info,rustls=info,kube_client=info,kube_runtime=info"
        ))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
