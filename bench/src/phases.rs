//! The order of a run: connect, create the namespaces, run each benchmark, then clean up
//! (always, also after an error or Ctrl-C) and print the table. Each phase adds rows.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use http::StatusCode;
use kube::Config;

use crate::conn::{JSON, Op, Pool, config_from, describe_failure};
use crate::fixtures::{self, collection, configmap, creates, pod, role, role_binding};
use crate::report::{Row, fmt_bytes, render};
use crate::{Args, Plan, crds, encodings, load, watch};

/// A namespace this run created.
struct Namespace {
    name: String,
    /// ConfigMaps created in it, so a fill can top it up.
    configmaps: usize,
    /// Other resources created in it, emptied by cleanup after the configmaps.
    holds: &'static [&'static str],
}

/// The state shared by the phases.
struct Bench<'a> {
    plan: &'a Plan,
    config: Config,
    pool: Pool,
    prefix: String,
    namespaces: Vec<Namespace>,
    /// CRDs this run created and has not deleted yet.
    crds: Vec<String>,
    rows: Vec<Row>,
}

/// Runs every benchmark not skipped, cleans up, and prints the table.
pub async fn run(args: &Args, plan: &Plan) -> Result<()> {
    let kubeconfig = match &args.kubeconfig {
        Some(path) => path.clone(),
        None => std::env::var("KUBECONFIG")
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| {
                std::env::var("HOME")
                    .ok()
                    .map(|home| format!("{home}/.kube/config"))
            })
            .ok_or_else(|| anyhow!("no kubeconfig: pass --kubeconfig or export KUBECONFIG"))?,
    };
    let config = config_from(&kubeconfig).await?;
    let server = config.cluster_url.to_string();
    let connections = plan
        .conns
        .iter()
        .copied()
        .chain([plan.list_conns])
        .max()
        .unwrap_or(1);
    eprintln!("+++ opening {connections} connections to {server}");
    let pool = Pool::open(&config, connections).await.with_context(|| {
        format!("cannot talk to the apiserver at {server} (from {kubeconfig}); is it running? hack/local-up.sh starts one and prints the KUBECONFIG to export")
    })?;
    let version = pool
        .first()
        .server_version()
        .await
        .unwrap_or_else(|_| "unknown version".into());
    let prefix = format!("bench-{}", fixtures::random_suffix());
    eprintln!("+++ {server} is {version}; namespaces {prefix}*");

    let mut bench = Bench {
        plan,
        config,
        pool,
        prefix,
        namespaces: Vec::new(),
        crds: Vec::new(),
        rows: Vec::new(),
    };
    tokio::spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "!!! interrupted: letting in-flight requests finish, then cleaning up (Ctrl-C again quits at once)"
            );
            load::request_stop();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    let outcome = bench.phases(args).await;
    if let Err(e) = &outcome {
        eprintln!("!!! stopping early: {e:#}");
    }
    let cleanup = if args.keep {
        eprintln!(
            "+++ --keep: leaving namespaces {}* (and CRDs in group {}.bench.example.com) in place",
            bench.prefix, bench.prefix
        );
        Ok(())
    } else {
        bench.cleanup().await
    };
    if let (Err(_), Err(e)) = (&outcome, &cleanup) {
        eprintln!("!!! {e:#}");
    }

    println!("bench-apiserver against {server} ({version}); {}", host());
    println!("plan: {}", describe(plan));
    println!();
    print!("{}", render(&bench.rows));
    outcome.and(cleanup)
}

/// Fails once Ctrl-C was pressed, so no new phase starts.
fn interrupted() -> Result<()> {
    if load::stopping() {
        bail!("interrupted");
    }
    Ok(())
}

/// The client host's CPUs and load: other work on the host skews every number.
fn host() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    format!("client host: {cpus} CPUs, 1-minute load average {load} at the end")
}

fn describe(plan: &Plan) -> String {
    format!(
        "{} creates/gets per conns {:?}, lists of {:?} x{}, {} watchers x {} updates, {} pods, {} roles with {} gets",
        plan.count,
        plan.conns,
        plan.list_sizes,
        plan.list_repeats,
        plan.watchers,
        plan.watch_updates,
        plan.pods,
        plan.roles,
        plan.authz_gets
    )
}

impl Bench<'_> {
    async fn phases(&mut self, args: &Args) -> Result<()> {
        if !args.skip_creates || !args.skip_watch {
            self.namespace("").await?;
        }
        if !args.skip_creates {
            self.creates().await?;
        }
        if !args.skip_crds {
            interrupted()?;
            self.custom_resources(args.keep).await?;
        }
        if !args.skip_gets || !args.skip_lists {
            interrupted()?;
            self.gets_and_lists(!args.skip_gets, !args.skip_lists)
                .await?;
        }
        if !args.skip_watch {
            interrupted()?;
            self.watch().await?;
        }
        if !args.skip_pods {
            interrupted()?;
            self.pods().await?;
        }
        if !args.skip_authz {
            interrupted()?;
            self.authz().await?;
        }
        interrupted()
    }

    /// Creates `<prefix><suffix>` and returns its index in `self.namespaces`.
    async fn namespace(&mut self, suffix: &str) -> Result<usize> {
        let name = format!("{}{suffix}", self.prefix);
        fixtures::create_namespace(self.pool.first(), &name).await?;
        self.namespaces.push(Namespace {
            name,
            configmaps: 0,
            holds: &[],
        });
        Ok(self.namespaces.len() - 1)
    }

    fn limit(&self) -> Duration {
        self.plan.phase_timeout
    }

    /// ConfigMap creates at each connection count, into the main namespace.
    async fn creates(&mut self) -> Result<()> {
        let ns = self.namespaces[0].name.clone();
        for &conns in &self.plan.conns {
            interrupted()?;
            eprintln!(
                "+++ create: {} configmaps over {conns} connections",
                self.plan.count
            );
            let names = (0..self.plan.count).map(|i| format!("c{conns}-{i:06}"));
            let ops = Arc::new(creates(&ns, "configmaps", names, configmap));
            let outcome = load::run(
                self.pool.take(conns),
                ops,
                StatusCode::CREATED,
                self.limit(),
            )
            .await;
            self.namespaces[0].configmaps += outcome.ok();
            self.rows.push(Row::from_outcome(
                "create configmap",
                conns,
                &outcome,
                false,
            ));
        }
        Ok(())
    }

    /// ConfigMap, widget and gadget creates side by side (see [`crds`]).
    async fn custom_resources(&mut self, keep: bool) -> Result<()> {
        let index = self.namespace("-crds").await?;
        let ns = self.namespaces[index].name.clone();
        let spec = crds::Spec {
            ns: &ns,
            prefix: &self.prefix,
            count: self.plan.count,
            conns: &self.plan.conns,
            limit: self.limit(),
            keep,
        };
        let rows = crds::run(&self.pool, &spec, &mut self.crds).await?;
        self.rows.extend(rows);
        Ok(())
    }

    /// Fills a namespace to each list size in turn; gets run against the first size,
    /// lists against every size.
    async fn gets_and_lists(&mut self, gets: bool, lists: bool) -> Result<()> {
        let index = self.namespace("-lists").await?;
        let ns = self.namespaces[index].name.clone();
        let sizes = if lists {
            self.plan.list_sizes.clone()
        } else {
            self.plan.list_sizes[..1].to_vec()
        };
        for (step, &size) in sizes.iter().enumerate() {
            interrupted()?;
            self.fill(index, size).await?;
            if gets && step == 0 {
                for &conns in &self.plan.conns {
                    interrupted()?;
                    interrupted()?;
                    eprintln!(
                        "+++ get: {} gets of {size} configmaps over {conns} connections",
                        self.plan.count
                    );
                    let path = collection(&ns, "configmaps");
                    let ops: Vec<Op> = (0..self.plan.count)
                        .map(|i| Op::get(format!("{path}/cm-{:06}", i % size), JSON))
                        .collect();
                    let outcome = load::run(
                        self.pool.take(conns),
                        Arc::new(ops),
                        StatusCode::OK,
                        self.limit(),
                    )
                    .await;
                    self.rows
                        .push(Row::from_outcome("get configmap", conns, &outcome, true));
                }
            }
            if lists {
                self.list(&ns, size).await?;
            }
        }
        Ok(())
    }

    /// Creates ConfigMaps `cm-NNNNNN` in namespace `index` until it holds `size`.
    async fn fill(&mut self, index: usize, size: usize) -> Result<()> {
        let held = self.namespaces[index].configmaps;
        if held >= size {
            return Ok(());
        }
        let conns = self.plan.conns.iter().copied().max().unwrap_or(1);
        eprintln!(
            "+++ fill: creating {} configmaps (to {size}) over {conns} connections",
            size - held
        );
        let ns = self.namespaces[index].name.clone();
        let ops = Arc::new(creates(
            &ns,
            "configmaps",
            (held..size).map(|i| format!("cm-{i:06}")),
            configmap,
        ));
        let outcome = load::run(
            self.pool.take(conns),
            ops,
            StatusCode::CREATED,
            self.limit(),
        )
        .await;
        self.namespaces[index].configmaps += outcome.ok();
        if outcome.ok() < size - held {
            bail!(
                "filling {ns} to {size} configmaps failed: {}",
                outcome.note()
            );
        }
        Ok(())
    }

    /// Lists `size` ConfigMaps on one connection and on `list_conns` connections.
    async fn list(&mut self, ns: &str, size: usize) -> Result<()> {
        let op = Op::get(collection(ns, "configmaps"), JSON);
        let reply = self.pool.first().send_ok(&op).await?;
        let list: serde_json::Value =
            serde_json::from_slice(&reply.body).context("the list of configmaps is not JSON")?;
        let items = list
            .get("items")
            .and_then(|i| i.as_array())
            .map_or(0, Vec::len);
        let check = if items == size {
            String::new()
        } else {
            format!("returned {items} items, expected {size}")
        };
        for conns in [1, self.plan.list_conns] {
            interrupted()?;
            eprintln!(
                "+++ list: {} lists of {size} configmaps ({}) over {conns} connections",
                self.plan.list_repeats,
                fmt_bytes(reply.body.len() as u64)
            );
            let ops = Arc::new(vec![op.clone(); self.plan.list_repeats * conns]);
            let outcome = load::run(self.pool.take(conns), ops, StatusCode::OK, self.limit()).await;
            let mut row =
                Row::from_outcome(format!("list {size} configmaps"), conns, &outcome, true);
            row.prepend_note(check.as_str());
            self.rows.push(row);
        }
        Ok(())
    }

    async fn watch(&mut self) -> Result<()> {
        let ns = self.namespaces[0].name.clone();
        let writers = self.pool.take(self.plan.conns[0]);
        let spec = watch::FanOut {
            ns: &ns,
            watchers: self.plan.watchers,
            updates: self.plan.watch_updates,
            limit: self.limit(),
        };
        let rows = watch::run(&self.config, writers, &spec).await?;
        self.namespaces[0].configmaps += writers.len();
        self.rows.extend(rows);
        Ok(())
    }

    /// Creates the pods, then lists them as JSON and as protobuf.
    async fn pods(&mut self) -> Result<()> {
        let index = self.namespace("-pods").await?;
        self.namespaces[index].holds = &["pods"];
        let ns = self.namespaces[index].name.clone();
        let conns = self.plan.conns.iter().copied().max().unwrap_or(1);
        eprintln!(
            "+++ pods: creating {} pods over {conns} connections",
            self.plan.pods
        );
        let ops = Arc::new(creates(
            &ns,
            "pods",
            (0..self.plan.pods).map(|i| format!("pod-{i:06}")),
            pod,
        ));
        let outcome = load::run(
            self.pool.take(conns),
            ops,
            StatusCode::CREATED,
            self.limit(),
        )
        .await;
        self.rows
            .push(Row::from_outcome("create pod", conns, &outcome, false));
        if outcome.ok() < self.plan.pods {
            bail!(
                "creating {} pods failed: {}",
                self.plan.pods,
                outcome.note()
            );
        }
        eprintln!(
            "+++ pods: {} lists per encoding",
            self.plan.pod_list_repeats
        );
        let rows = encodings::compare(
            self.pool.first(),
            &ns,
            self.plan.pods,
            self.plan.pod_list_repeats,
            self.limit(),
        )
        .await?;
        self.rows.extend(rows);
        Ok(())
    }

    /// Gets of one ConfigMap as the kubeconfig's user (system:masters, which the authorizer
    /// lets through without looking at RBAC), then as `bench-reader` by impersonation, which
    /// RBAC authorizes through one binding among `roles` others in the namespace.
    async fn authz(&mut self) -> Result<()> {
        const READER: &str = "bench-reader";
        let index = self.namespace("-authz").await?;
        self.namespaces[index].holds = &["roles", "rolebindings"];
        let ns = self.namespaces[index].name.clone();
        let conns = self.plan.conns.iter().copied().max().unwrap_or(1);
        eprintln!(
            "+++ authz: creating {} roles and bindings over {conns} connections",
            self.plan.roles + 1
        );
        // The reader's role and binding come last, after everyone else's.
        let names = || {
            (0..self.plan.roles)
                .map(|i| format!("bench-user-{i:06}"))
                .chain([READER.to_string()])
        };
        let mut ops = creates(&ns, "roles", names(), role);
        ops.extend(creates(&ns, "rolebindings", names(), role_binding));
        ops.extend(creates(
            &ns,
            "configmaps",
            std::iter::once("cm-authz".to_string()),
            configmap,
        ));
        let planned = ops.len();
        let outcome = load::run(
            self.pool.take(conns),
            Arc::new(ops),
            StatusCode::CREATED,
            self.limit(),
        )
        .await;
        if outcome.ok() < planned {
            bail!(
                "creating {} roles and bindings failed: {}",
                self.plan.roles + 1,
                outcome.note()
            );
        }
        self.namespaces[index].configmaps += 1;
        let get = Op::get(format!("{}/cm-authz", collection(&ns, "configmaps")), JSON);
        let as_reader = get.clone().impersonating(READER);
        // The authorizer sees new bindings through a watch: wait until it lets the reader in.
        let deadline = tokio::time::Instant::now() + self.limit();
        loop {
            let reply = self.pool.first().send(&as_reader).await?;
            if reply.status == StatusCode::OK {
                break;
            }
            if tokio::time::Instant::now() >= deadline || load::stopping() {
                bail!(
                    "{READER} still cannot get a configmap in {ns}: {}",
                    describe_failure(&reply)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let conns = self.plan.conns[0];
        let mut rows = Vec::new();
        for (name, op) in [
            ("get configmap (system:masters)", get),
            ("get configmap (RBAC, impersonated)", as_reader),
        ] {
            interrupted()?;
            eprintln!(
                "+++ authz: {} gets as {} over {conns} connections",
                self.plan.authz_gets,
                op.impersonate.unwrap_or("the kubeconfig user")
            );
            let ops = Arc::new(vec![op; self.plan.authz_gets]);
            let outcome = load::run(self.pool.take(conns), ops, StatusCode::OK, self.limit()).await;
            rows.push(Row::from_outcome(name, conns, &outcome, true));
        }
        if let [masters, rbac] = rows.as_mut_slice()
            && let (Some(base), Some(rate)) = (masters.rate, rbac.rate)
        {
            let ratio = format!(
                "RBAC via impersonation: {:.2}x the ops/s of system:masters; {n} roles + {n} bindings of other users; also pays the impersonation check",
                rate / base,
                n = self.plan.roles
            );
            rbac.prepend_note(ratio);
        }
        self.rows.extend(rows);
        Ok(())
    }

    /// Deletes the CRDs a stopped phase left (and so their objects); empties each
    /// namespace with deletecollection (timed, as rows), then deletes it without waiting:
    /// with no namespace controller it stays Terminating.
    async fn cleanup(&mut self) -> Result<()> {
        let conn = self.pool.first().clone();
        let mut failures = Vec::new();
        for name in std::mem::take(&mut self.crds) {
            eprintln!("+++ cleanup: deleting crd {name}");
            if let Err(e) = crds::delete(&conn, &name, self.limit()).await {
                failures.push(format!("{e:#}"));
            }
        }
        for ns in &self.namespaces {
            for resource in ["configmaps"].iter().chain(ns.holds) {
                eprintln!("+++ cleanup: deletecollection of {resource} in {}", ns.name);
                match fixtures::delete_collection(&conn, &ns.name, resource).await {
                    Ok((_, 0)) => {}
                    Ok((took, deleted)) => self.rows.push(Row {
                        name: format!("deletecollection {deleted} {resource}"),
                        conns: 1,
                        ops: 1,
                        rate: None,
                        p50: Some(took),
                        p99: None,
                        bytes: None,
                        note: String::new(),
                    }),
                    Err(e) => failures.push(format!("{e:#}")),
                }
            }
            eprintln!("+++ cleanup: deleting namespace {}", ns.name);
            if let Err(e) = fixtures::delete_namespace(&conn, &ns.name).await {
                failures.push(format!("{e:#}"));
            }
        }
        if failures.is_empty() {
            return Ok(());
        }
        Err(anyhow!(
            "cleanup failed ({}); delete the leftovers with `kubectl delete crd,namespace -l {}={} --wait=false`",
            failures.join("; "),
            fixtures::LABEL.0,
            fixtures::LABEL.1
        ))
    }
}
