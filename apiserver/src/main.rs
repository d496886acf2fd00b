//! kube-apiserver: the Kubernetes API server, in Rust. Flags keep upstream's names.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;

/// mimalloc instead of the C library's allocator: the server allocates and frees a
/// JSON tree per request, and glibc's malloc and free took a fifth of its CPU under load.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod admission;
mod aggregator;
mod auditing;
mod authn;
mod authz;
mod bootstrap;
mod bootstraptoken;
mod conversion;
mod crd;
mod fieldmanager;
mod fieldvalidation;
mod handlers;
mod impersonation;
mod metrics;
mod negotiation;
mod nodeauthz;
mod patching;
mod quota;
mod registry;
mod request_info;
mod requestheader;
mod rest;
mod server;
mod serviceaccount;
mod storage;
mod strategy;
mod version;
mod webhooks;

/// Upstream-named flags users actually pass.
#[derive(Parser, Debug)]
#[command(name = "kube-apiserver", version = version::GIT_VERSION, about = "The Kubernetes API server")]
struct Flags {
    /// The IP address on which to listen for the --secure-port port.
    #[arg(long, default_value = "0.0.0.0")]
    bind_address: String,
    /// The port on which to serve HTTPS with authentication and authorization.
    #[arg(long, default_value_t = 6443)]
    secure_port: u16,
    /// The IP address on which to advertise the apiserver to members of the cluster.
    #[arg(long, default_value = "127.0.0.1")]
    advertise_address: String,
    /// File containing the default x509 certificate for HTTPS.
    #[arg(long)]
    tls_cert_file: String,
    /// File containing the default x509 private key matching --tls-cert-file.
    #[arg(long)]
    tls_private_key_file: String,
    /// If set, any request presenting a client certificate signed by one of the authorities
    /// in this file is authenticated with an identity from the certificate's CN and O.
    #[arg(long)]
    client_ca_file: Option<String>,
    /// List of etcd servers to connect with (scheme://ip:port), comma separated. When
    /// set, etcd holds the data instead of the embedded store.
    #[arg(long, value_delimiter = ',')]
    etcd_servers: Vec<String>,
    /// The prefix to prepend to all resource paths in etcd.
    #[arg(long, default_value = "/registry")]
    etcd_prefix: String,
    /// SSL Certificate Authority file used to secure etcd communication.
    #[arg(long)]
    etcd_cafile: Option<PathBuf>,
    /// SSL certification file used to secure etcd communication.
    #[arg(long)]
    etcd_certfile: Option<PathBuf>,
    /// SSL key file used to secure etcd communication.
    #[arg(long)]
    etcd_keyfile: Option<PathBuf>,
    /// Directory of the embedded store (used when --etcd-servers is not set).
    #[arg(long, default_value = "/var/lib/kube-apiserver")]
    data_dir: PathBuf,
    /// A CIDR notation IP range from which to assign service cluster IPs.
    #[arg(long, default_value = "10.0.0.0/24")]
    service_cluster_ip_range: String,
    /// A port range to reserve for services with NodePort visibility.
    #[arg(long, default_value = "30000-32767")]
    service_node_port_range: String,
    /// The interval of compaction requests. 0 disables compaction.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    etcd_compaction_interval: Duration,
    /// If set, the file used to secure the secure port via token authentication
    /// (CSV: token,user,uid,"group1,group2").
    #[arg(long)]
    token_auth_file: Option<PathBuf>,
    /// Enables anonymous requests to the secure port (as system:anonymous in
    /// system:unauthenticated).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    anonymous_auth: bool,
    /// Enable to allow secrets of type 'bootstrap.kubernetes.io/token' in the 'kube-system'
    /// namespace to be used for TLS bootstrapping authentication.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    enable_bootstrap_token_auth: bool,
    /// Identifier of the service account token issuer (the `iss` claim).
    #[arg(long)]
    service_account_issuer: Option<String>,
    /// File containing PEM-encoded public (or private) keys used to verify
    /// service-account tokens. May be given several times.
    #[arg(long)]
    service_account_key_file: Vec<PathBuf>,
    /// Path to the file holding the private key that signs service-account tokens.
    #[arg(long)]
    service_account_signing_key_file: Option<PathBuf>,
    /// Identifiers of the API; tokens must name one of them (default: the issuer).
    #[arg(long, value_delimiter = ',')]
    api_audiences: Vec<String>,
    /// Ordered list of plug-ins to do authorization on the secure port: AlwaysAllow,
    /// AlwaysDeny, RBAC.
    #[arg(long, default_value = "AlwaysAllow")]
    authorization_mode: String,
    /// Root certificate bundle to verify client certificates on incoming requests before
    /// trusting usernames in headers specified by --requestheader-username-headers.
    #[arg(long)]
    requestheader_client_ca_file: Option<String>,
    /// List of client certificate common names to allow to provide usernames in headers
    /// specified by --requestheader-username-headers. If empty, any client certificate
    /// validated by the authorities in --requestheader-client-ca-file is allowed.
    #[arg(long, value_delimiter = ',')]
    requestheader_allowed_names: Vec<String>,
    /// List of request headers to inspect for usernames. X-Remote-User is common.
    #[arg(long, value_delimiter = ',')]
    requestheader_username_headers: Vec<String>,
    /// List of request headers to inspect for UIDs. X-Remote-Uid is suggested.
    #[arg(long, value_delimiter = ',')]
    requestheader_uid_headers: Vec<String>,
    /// List of request headers to inspect for groups. X-Remote-Group is suggested.
    #[arg(long, value_delimiter = ',')]
    requestheader_group_headers: Vec<String>,
    /// List of request header prefixes to inspect. X-Remote-Extra- is suggested.
    #[arg(long, value_delimiter = ',')]
    requestheader_extra_headers_prefix: Vec<String>,
    /// Admission plugins to enable in addition to the default ones (comma separated).
    #[arg(long, value_delimiter = ',')]
    enable_admission_plugins: Vec<String>,
    /// Admission plugins to disable, even if in the default set (comma separated).
    #[arg(long, value_delimiter = ',')]
    disable_admission_plugins: Vec<String>,
    /// File with admission control configuration (an AdmissionConfiguration).
    #[arg(long)]
    admission_control_config_file: Option<PathBuf>,
    /// Path to the file that defines the audit policy configuration.
    #[arg(long)]
    audit_policy_file: Option<PathBuf>,
    /// If set, all requests coming to the apiserver will be logged to this file. '-'
    /// means standard out.
    #[arg(long)]
    audit_log_path: Option<PathBuf>,
    /// The maximum number of days to retain old audit log files.
    #[arg(long, default_value_t = 0)]
    audit_log_maxage: u32,
    /// The maximum number of old audit log files to retain.
    #[arg(long, default_value_t = 0)]
    audit_log_maxbackup: u32,
    /// The maximum size in megabytes of the audit log file before it gets rotated.
    #[arg(long, default_value_t = 0)]
    audit_log_maxsize: u32,
    /// Format of saved audits: "json" (one event per line).
    #[arg(long, default_value = "json")]
    audit_log_format: String,
    /// Client certificate the aggregator presents to aggregated API servers (with
    /// --proxy-client-key-file).
    #[arg(long)]
    proxy_client_cert_file: Option<PathBuf>,
    /// Private key of --proxy-client-cert-file.
    #[arg(long)]
    proxy_client_key_file: Option<PathBuf>,
    /// Number for the log level verbosity.
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    verbosity: u8,
}

use machinery::duration::parse_duration;

fn init_logging(v: u8) {
    // as upstream: -v=2 is the usual production level; every request is logged from -v=3
    let level = match v {
        0..=2 => "info",
        3 | 4 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("kube_apiserver={level},warn"))
    });
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

#[tokio::main]
async fn main() -> Result<()> {
    let flags = Flags::parse();
    init_logging(flags.verbosity);
    let config = server::Config {
        bind_address: flags.bind_address.clone(),
        secure_port: flags.secure_port,
        advertise_address: flags.advertise_address.clone(),
        tls_cert_file: flags.tls_cert_file.clone(),
        tls_private_key_file: flags.tls_private_key_file.clone(),
        client_ca_file: flags.client_ca_file.clone(),
        requestheader: requestheader::Options {
            client_ca_file: flags.requestheader_client_ca_file.clone(),
            allowed_names: flags.requestheader_allowed_names.clone(),
            username_headers: flags.requestheader_username_headers.clone(),
            uid_headers: flags.requestheader_uid_headers.clone(),
            group_headers: flags.requestheader_group_headers.clone(),
            extra_headers_prefix: flags.requestheader_extra_headers_prefix.clone(),
        },
    };
    let tls = server::tls_config(&config)?;
    // kubectl's client-side apply reads the patch strategies from OpenAPI
    let _ = openapi::set_extension_source(patch::openapi_extensions);
    let allocators = strategy::Allocators::new(
        &flags.service_cluster_ip_range,
        &flags.service_node_port_range,
    )
    .map_err(anyhow::Error::msg)
    .context("invalid --service-cluster-ip-range or --service-node-port-range")?;
    let store = open_store(&flags).await?;
    tracing::info!(
        revision = store.current_revision(),
        objects = store.count("/registry/"),
        "store loaded"
    );
    let modes = authz::parse_modes(&flags.authorization_mode)
        .map_err(anyhow::Error::msg)
        .context("invalid --authorization-mode")?;
    let authorizer = Arc::new(authz::Authorizer::new(modes, store.clone()));
    let rest = rest::Rest {
        store,
        registry: registry::Registry::with_builtins(),
        allocators: Arc::new(allocators),
        authorizer,
        quotas: Default::default(),
        crds: Default::default(),
        webhooks: Default::default(),
        aggregator: Arc::new(aggregator::Aggregator::new(proxy_identity(&flags)?)),
        plugins: Arc::new(
            admission::plugins::Plugins::from_flags(
                &flags.enable_admission_plugins,
                &flags.disable_admission_plugins,
            )
            .map_err(anyhow::Error::msg)
            .context("invalid --enable-admission-plugins or --disable-admission-plugins")?
            .with_config(match &flags.admission_control_config_file {
                Some(path) => admission::config::load(path)
                    .map_err(anyhow::Error::msg)
                    .context("invalid --admission-control-config-file")?,
                None => Default::default(),
            }),
        ),
    };
    bootstrap::restore_allocations(&rest);
    tokio::spawn(rest::follow_claims(rest.clone()));
    crd::controller::start(rest.clone()).await;
    let listener = server::listen(&config).await?;
    let tokens = match &flags.token_auth_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading --token-auth-file {}", path.display()))?;
            authn::parse_token_file(&text)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("parsing --token-auth-file {}", path.display()))?
        }
        None => Default::default(),
    };
    let mut authenticator = authn::Authenticator::new(tokens, flags.anonymous_auth);
    let token_issuer = match &flags.service_account_issuer {
        Some(issuer) => {
            let mut keys = flags.service_account_key_file.clone();
            if keys.is_empty() {
                keys.extend(flags.service_account_signing_key_file.clone());
            }
            let t = serviceaccount::TokenIssuer::load(
                issuer,
                &flags.api_audiences,
                flags.service_account_signing_key_file.as_deref(),
                &keys,
            )
            .map_err(anyhow::Error::msg)
            .context("loading service-account keys (--service-account-key-file, --service-account-signing-key-file)")?;
            Some(Arc::new(t))
        }
        None => None,
    };
    if let Some(t) = &token_issuer {
        authenticator = authenticator.with_service_accounts(t.clone(), rest.store.clone());
    }
    if flags.enable_bootstrap_token_auth {
        authenticator = authenticator.with_bootstrap_tokens(rest.store.clone());
    }
    let auditor = auditing::Auditor::new(&auditing::Flags {
        policy_file: flags.audit_policy_file.clone(),
        log: audit::LogOptions {
            path: flags.audit_log_path.clone().unwrap_or_default(),
            max_age_days: flags.audit_log_maxage,
            max_backups: flags.audit_log_maxbackup,
            max_size_mb: flags.audit_log_maxsize,
            format: flags.audit_log_format.clone(),
            ..Default::default()
        },
    })?;
    let mut state = server::AppState::new(rest.clone(), config, authenticator, token_issuer);
    state.auditor = auditor;
    let state = Arc::new(state);
    bootstrap::ensure(&rest, &flags.advertise_address, flags.secure_port)
        .await
        .context("creating the bootstrap objects")?;
    aggregator::register_local(&rest).await;
    requestheader::publish(
        &rest,
        flags.client_ca_file.as_deref(),
        &state.config.requestheader,
    )
    .await
    .context("publishing kube-system/extension-apiserver-authentication")?;
    state.bootstrapped.store(true, Ordering::Release);
    tokio::spawn(aggregator::run(rest.clone()));
    if !flags.etcd_compaction_interval.is_zero() {
        let store = rest.store.clone();
        let every = flags.etcd_compaction_interval;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = store.compact(storage::DEFAULT_HISTORY as u64).await {
                    tracing::warn!(error = %e, "compaction failed");
                }
            }
        });
    }
    tracing::info!(address = %format!("{}:{}", flags.bind_address, flags.secure_port), "serving securely");
    server::serve(state, listener, tls).await
}

/// The front-proxy client identity from --proxy-client-cert-file/--proxy-client-key-file.
fn proxy_identity(flags: &Flags) -> Result<Option<aggregator::ProxyIdentity>> {
    let (Some(cert), Some(key)) = (&flags.proxy_client_cert_file, &flags.proxy_client_key_file)
    else {
        anyhow::ensure!(
            flags.proxy_client_cert_file.is_none() && flags.proxy_client_key_file.is_none(),
            "--proxy-client-cert-file and --proxy-client-key-file go together"
        );
        return Ok(None);
    };
    let certs = server::load_certs(&cert.to_string_lossy())?;
    let key = server::load_key(&key.to_string_lossy())?;
    Ok(Some(aggregator::ProxyIdentity {
        certs,
        key: Arc::new(key),
    }))
}

/// How long a starting server keeps trying an etcd that does not serve yet.
const ETCD_STARTUP_WAIT: Duration = Duration::from_secs(60);

/// Connects to etcd and loads its state into the watch cache.
async fn open_etcd_store(cfg: &storage::etcd::EtcdConfig) -> anyhow::Result<storage::Store> {
    let etcd = storage::etcd::Etcd::connect(cfg).await.with_context(|| {
        format!(
            "connecting to etcd at {} (check --etcd-servers and that etcd is running)",
            cfg.servers.join(",")
        )
    })?;
    storage::Store::open_etcd(etcd, storage::DEFAULT_HISTORY)
        .await
        .context("loading the state from etcd")
}

/// The embedded store in `--data-dir`, or etcd when `--etcd-servers` is given.
async fn open_store(flags: &Flags) -> anyhow::Result<storage::Store> {
    if !flags.etcd_servers.is_empty() {
        tracing::info!(servers = ?flags.etcd_servers, prefix = %flags.etcd_prefix, "connecting to etcd");
        let cfg = storage::etcd::EtcdConfig {
            servers: flags.etcd_servers.clone(),
            prefix: flags.etcd_prefix.clone(),
            ca_file: flags.etcd_cafile.clone(),
            cert_file: flags.etcd_certfile.clone(),
            key_file: flags.etcd_keyfile.clone(),
        };
        // an etcd that was just started accepts connections before it serves; like
        // upstream's apiserver, wait for it a while instead of exiting at once
        let deadline = std::time::Instant::now() + ETCD_STARTUP_WAIT;
        let mut delay = Duration::from_millis(200);
        loop {
            match open_etcd_store(&cfg).await {
                Ok(store) => return Ok(store),
                Err(e) if std::time::Instant::now() + delay < deadline => {
                    tracing::warn!(error = %format!("{e:#}"), "etcd is not serving yet, retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(e),
            }
        }
    }
    tracing::info!(data_dir = %flags.data_dir.display(), "opening the embedded store");
    let backend = storage::SqliteBackend::open(&flags.data_dir).with_context(|| {
        format!(
            "opening the store in {} (check --data-dir and its permissions)",
            flags.data_dir.display()
        )
    })?;
    storage::Store::open(Arc::new(backend), storage::DEFAULT_HISTORY)
        .await
        .context("loading the store")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
        assert!(parse_duration("5").is_err());
    }
}
